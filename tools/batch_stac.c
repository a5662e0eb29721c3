/*
 * mm_batch's STAC manifests (batch.h): a STAC 1.0 ItemCollection (a GeoJSON FeatureCollection of
 * Items) or a Catalog (or Collection) whose links rel "item" are read and rel "child" followed,
 * recursively, with relative hrefs resolved against the file that holds them and cycles refused.
 * Each Item gives one entry: its id, the asset chosen as the input, and the Item itself (for the
 * output's derived_from link). An Item whose file cannot be read or whose input asset is missing
 * or ambiguous is an entry with an error, so that the batch records it and goes on.
 */
#define _GNU_SOURCE /* realpath, strndup */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "batch.h"
#include "read_file.h"

/* depth of child catalogs followed; a deeper tree is surely a mistake (or a cycle through
 * different spellings that realpath could not see) */
#define MAX_DEPTH 64

typedef struct {
    mm_batch_stac_entry *v;
    int n, cap;
    char **seen_items; /* real paths of the item files taken (one linked twice is taken once) */
    int n_seen, cap_seen;
    char **done_cats; /* catalogs read (a catalog reached twice, not in a cycle, is read once) */
    int n_done, cap_done;
    const char *asset_key;
    char *msg;
    size_t len;
} reader;

static void push_str(char ***v, int *n, int *cap, const char *s) {
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 16;
        *v = realloc(*v, (size_t)*cap * sizeof **v);
    }
    (*v)[(*n)++] = strdup(s);
}

static int has_str(char **v, int n, const char *s) {
    for (int i = 0; i < n; i++)
        if (!strcmp(v[i], s)) return 1;
    return 0;
}

static mm_batch_stac_entry *new_entry(reader *r) {
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 16;
        r->v = realloc(r->v, (size_t)r->cap * sizeof *r->v);
    }
    mm_batch_stac_entry *e = &r->v[r->n++];
    memset(e, 0, sizeof *e);
    return e;
}

static void set_error(mm_batch_stac_entry *e, const char *fmt, ...) {
    char b[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, sizeof b, fmt, ap);
    va_end(ap);
    free(e->error);
    e->error = strdup(b);
}

/* The folder of path ("." when it has none), malloc'd. */
static char *dir_of(const char *path) {
    const char *s = strrchr(path, '/');
    if (!s) return strdup(".");
    if (s == path) return strdup("/");
    return strndup(path, (size_t)(s - path));
}

/* href as a local path or a GDAL virtual path, relative ones resolved against the folder of the
 * file base that holds it; NULL (and *why) for a scheme that cannot be read. */
static char *resolve_href(const char *base, const char *href, const char **why) {
    if (!strncasecmp(href, "file://", 7)) href += 7;
    if (!strncmp(href, "/vsi", 4) || href[0] == '/') return strdup(href);
    if (!strncasecmp(href, "http://", 7) || !strncasecmp(href, "https://", 8)) {
        char *p = NULL;
        return asprintf(&p, "/vsicurl/%s", href) < 0 ? NULL : p;
    }
    const char *colon = strchr(href, ':'), *slash = strchr(href, '/');
    if (colon && (!slash || colon < slash) && colon - href > 1) { /* s3://, ftp:, ... */
        *why = "a URL scheme mm_batch cannot read (a local path, file://, http:// or https:// "
               "is needed)";
        return NULL;
    }
    char *d = dir_of(base), *p = NULL;
    const char *h = href;
    while (!strncmp(h, "./", 2))
        h += 2;
    if (asprintf(&p, "%s/%s", d, h) < 0) p = NULL;
    free(d);
    return p;
}

/* "image/tiff; application=geotiff" (with any profile, e.g. cloud-optimized) */
static int is_geotiff(const cJSON *asset) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(asset, "type");
    if (!cJSON_IsString(t)) return 0;
    const char *s = t->valuestring;
    return !strncasecmp(s, "image/tiff", 10) && strcasestr(s, "application=geotiff") != NULL;
}

static int has_role(const cJSON *asset, const char *role) {
    const cJSON *roles = cJSON_GetObjectItemCaseSensitive(asset, "roles"), *x;
    cJSON_ArrayForEach(x, roles) if (cJSON_IsString(x) && !strcmp(x->valuestring, role)) return 1;
    return 0;
}

/* The keys of assets, for messages: "a, b, c". */
static void asset_keys(const cJSON *assets, char *b, size_t n) {
    b[0] = 0;
    const cJSON *a;
    cJSON_ArrayForEach(a, assets) {
        const size_t l = strlen(b);
        snprintf(b + l, n - l, "%s'%s'", l ? ", " : "", a->string);
    }
}

/* Fills e from the STAC Item it (owned by the entry afterwards): id, the input asset, the item. */
static void take_item(reader *r, mm_batch_stac_entry *e, cJSON *it, const char *base) {
    e->item = it;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(it, "type");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
    if (cJSON_IsString(id) && id->valuestring[0]) {
        free(e->id);
        e->id = strdup(id->valuestring);
    }
    if (!cJSON_IsObject(it) || !cJSON_IsString(type) || strcmp(type->valuestring, "Feature")) {
        set_error(e, "not a STAC Item (no \"type\": \"Feature\")");
        return;
    }
    if (!cJSON_IsString(id) || !id->valuestring[0]) {
        set_error(e, "the STAC Item has no \"id\"");
        return;
    }
    const cJSON *assets = cJSON_GetObjectItemCaseSensitive(it, "assets");
    if (!cJSON_IsObject(assets) || !assets->child) {
        set_error(e, "the STAC Item '%s' has no assets", e->id);
        return;
    }
    char keys[1024];
    asset_keys(assets, keys, sizeof keys);
    const cJSON *pick = NULL;
    if (r->asset_key) { /* --stac-asset KEY */
        pick = cJSON_GetObjectItemCaseSensitive(assets, r->asset_key);
        if (!pick) {
            set_error(e, "the STAC Item '%s' has no asset '%s' (its assets: %s)", e->id,
                      r->asset_key, keys);
            return;
        }
    } else {
        /* the asset with role data; among several, the only GeoTIFF; without any role data, the
           only GeoTIFF */
        int n_data = 0, n_tif = 0, n_data_tif = 0;
        const cJSON *a, *data = NULL, *tif = NULL, *data_tif = NULL;
        cJSON_ArrayForEach(a, assets) {
            const int d = has_role(a, "data"), t = is_geotiff(a);
            if (d) n_data++, data = a;
            if (t) n_tif++, tif = a;
            if (d && t) n_data_tif++, data_tif = a;
        }
        if (n_data == 1)
            pick = data;
        else if (n_data > 1 && n_data_tif == 1)
            pick = data_tif;
        else if (n_data == 0 && n_tif == 1)
            pick = tif;
        else if (n_data > 1 || n_tif > 1) {
            set_error(e,
                      "the STAC Item '%s': which asset is the input is ambiguous (%d with role "
                      "\"data\", %d GeoTIFF, among %s); choose one with --stac-asset KEY",
                      e->id, n_data, n_data_tif ? n_data_tif : n_tif, keys);
            return;
        } else {
            set_error(e,
                      "the STAC Item '%s' has no input asset (none with role \"data\" or of type "
                      "GeoTIFF among %s); choose one with --stac-asset KEY",
                      e->id, keys);
            return;
        }
    }
    const cJSON *href = cJSON_GetObjectItemCaseSensitive(pick, "href");
    if (!cJSON_IsString(href) || !href->valuestring[0]) {
        set_error(e, "the asset '%s' of the STAC Item '%s' has no \"href\"", pick->string, e->id);
        return;
    }
    const char *why = NULL;
    char *in = resolve_href(base, href->valuestring, &why);
    if (!in) {
        set_error(e, "the asset '%s' of the STAC Item '%s': '%s' is %s", pick->string, e->id,
                  href->valuestring, why ? why : "not a path (out of memory)");
        return;
    }
    free(e->input);
    e->input = in;
    e->asset = strdup(pick->string);
}

/* The item file at path: one entry (with an error when it cannot be read). */
static void read_item_file(reader *r, const char *path, const char *from) {
    char *real = realpath(path, NULL);
    if (real && has_str(r->seen_items, r->n_seen, real)) { /* linked twice: taken once */
        free(real);
        return;
    }
    if (real) push_str(&r->seen_items, &r->n_seen, &r->cap_seen, real);
    mm_batch_stac_entry *e = new_entry(r);
    /* until the item says, its id is its file name without .json */
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    const size_t bl = strlen(b);
    e->id = bl > 5 && !strcasecmp(b + bl - 5, ".json") ? strndup(b, bl - 5) : strdup(b);
    e->href = strdup(real ? real : path);
    e->where = strdup(path);
    free(real);
    char *text = mm_read_text_file(path);
    if (!text) {
        set_error(e, "cannot read the STAC Item '%s' (linked from '%s'): %s", path, from,
                  strerror(errno));
        return;
    }
    const char *end = NULL;
    cJSON *it = cJSON_ParseWithOpts(text, &end, 1);
    if (!it)
        set_error(e, "the STAC Item '%s' is not valid JSON (at byte %ld)", path,
                  end ? (long)(end - text) : 0L);
    else
        take_item(r, e, it, path);
    free(text);
}

static int fail(reader *r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, r->len, fmt, ap);
    va_end(ap);
    return -1;
}

/* A Catalog (or Collection) at path, parsed as cat: its items, then its children, depth-first;
 * stack: the real paths of the catalogs above it (a link back to one is a cycle). */
static int read_catalog(reader *r, const char *path, const cJSON *cat, char **stack, int depth) {
    const cJSON *links = cJSON_GetObjectItemCaseSensitive(cat, "links"), *l;
    if (links && !cJSON_IsArray(links)) return fail(r, "'%s': \"links\" is not an array", path);
    for (int pass = 0; pass < 2; pass++) /* the items first, then the children */
        cJSON_ArrayForEach(l, links) {
            const cJSON *rel = cJSON_GetObjectItemCaseSensitive(l, "rel");
            const cJSON *href = cJSON_GetObjectItemCaseSensitive(l, "href");
            if (!cJSON_IsString(rel)) continue;
            const int is_item = !strcmp(rel->valuestring, "item");
            const int is_child = !strcmp(rel->valuestring, "child");
            if (!(pass == 0 ? is_item : is_child)) continue;
            if (!cJSON_IsString(href) || !href->valuestring[0])
                return fail(r, "'%s': a link rel \"%s\" without \"href\"", path, rel->valuestring);
            const char *why = NULL;
            char *p = resolve_href(path, href->valuestring, &why);
            if (!p || !strncmp(p, "/vsi", 4)) {
                free(p);
                return fail(r, "'%s': the link to '%s' is %s", path, href->valuestring,
                            why ? why : "not a local file (catalogs are read from local files)");
            }
            if (is_item) {
                read_item_file(r, p, path);
                free(p);
                continue;
            }
            char *real = realpath(p, NULL);
            if (!real) {
                const int rc = fail(r, "'%s': cannot read the child catalog '%s': %s", path,
                                    href->valuestring, strerror(errno));
                free(p);
                return rc;
            }
            for (int i = 0; i <= depth; i++)
                if (!strcmp(stack[i], real)) {
                    const int rc = fail(r,
                                        "a cycle in the catalog's links: '%s' links (rel child) to "
                                        "'%s', which is above it",
                                        path, href->valuestring);
                    free(p), free(real);
                    return rc;
                }
            if (has_str(r->done_cats, r->n_done, real)) { /* reached twice, not a cycle */
                free(p), free(real);
                continue;
            }
            if (depth + 1 >= MAX_DEPTH) {
                free(p), free(real);
                return fail(r, "'%s': child catalogs nested more than %d deep", path, MAX_DEPTH);
            }
            char *text = mm_read_text_file(p);
            if (!text) {
                const int rc =
                    fail(r, "cannot read the child catalog '%s': %s", p, strerror(errno));
                free(p), free(real);
                return rc;
            }
            const char *end = NULL;
            cJSON *child = cJSON_ParseWithOpts(text, &end, 1);
            const cJSON *type = cJSON_GetObjectItemCaseSensitive(child, "type");
            int rc = 0;
            if (!child)
                rc = fail(r, "the child catalog '%s' is not valid JSON (at byte %ld)", p,
                          end ? (long)(end - text) : 0L);
            else if (!cJSON_IsString(type) || (strcmp(type->valuestring, "Catalog") &&
                                               strcmp(type->valuestring, "Collection")))
                rc = fail(r, "'%s' (a child of '%s') is not a STAC Catalog or Collection", p, path);
            free(text);
            if (!rc) {
                push_str(&r->done_cats, &r->n_done, &r->cap_done, real);
                stack[depth + 1] = real;
                rc = read_catalog(r, p, child, stack, depth + 1);
            }
            cJSON_Delete(child);
            free(p), free(real);
            if (rc) return rc;
        }
    return 0;
}

int mm_batch_stac_kind(const cJSON *root) {
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "type");
    if (!cJSON_IsObject(root) || !cJSON_IsString(type)) return 0;
    if (!strcmp(type->valuestring, "FeatureCollection")) return 1;
    if (!strcmp(type->valuestring, "Catalog") || !strcmp(type->valuestring, "Collection")) return 2;
    return 0;
}

int mm_batch_read_stac(const char *path, cJSON *root, const char *asset_key,
                       mm_batch_stac_entry **out, int *n, char *msg, size_t len) {
    reader r = {0};
    r.asset_key = asset_key, r.msg = msg, r.len = len;
    int rc = 0;
    const int kind = mm_batch_stac_kind(root);
    if (kind == 1) { /* ItemCollection: the items in place; relative hrefs against this file */
        const cJSON *feats = cJSON_GetObjectItemCaseSensitive(root, "features");
        if (!cJSON_IsArray(feats)) rc = fail(&r, "the FeatureCollection has no \"features\" array");
        char *real = realpath(path, NULL);
        int k = 0;
        const cJSON *fs = rc ? NULL : feats;
        cJSON *f;
        cJSON_ArrayForEach(f, fs) {
            k++;
            mm_batch_stac_entry *e = new_entry(&r);
            char w[64];
            snprintf(w, sizeof w, "feature %d", k);
            e->where = strdup(w);
            e->id = strdup(w);
            take_item(&r, e, cJSON_Duplicate(f, 1), path);
            /* the source item's href: its self link, else the ItemCollection's file */
            const cJSON *links = cJSON_GetObjectItemCaseSensitive(f, "links"), *l;
            cJSON_ArrayForEach(l, links) {
                const cJSON *rel = cJSON_GetObjectItemCaseSensitive(l, "rel");
                const cJSON *href = cJSON_GetObjectItemCaseSensitive(l, "href");
                if (cJSON_IsString(rel) && !strcmp(rel->valuestring, "self") &&
                    cJSON_IsString(href) && href->valuestring[0] && !e->href) {
                    const char *why = NULL;
                    char *p = resolve_href(path, href->valuestring, &why);
                    char *rp = p && strncmp(p, "/vsi", 4) ? realpath(p, NULL) : NULL;
                    e->href = rp ? rp : p ? p : NULL;
                    if (rp) free(p);
                }
            }
            if (!e->href) e->href = strdup(real ? real : path);
        }
        free(real);
    } else if (kind == 2) {
        char *real = realpath(path, NULL);
        if (!real) {
            rc = fail(&r, "cannot resolve '%s': %s", path, strerror(errno));
        } else {
            char *stack[MAX_DEPTH] = {real};
            push_str(&r.done_cats, &r.n_done, &r.cap_done, real);
            rc = read_catalog(&r, path, root, stack, 0);
            free(real);
        }
    } else {
        rc = fail(&r, "not a STAC ItemCollection or Catalog");
    }
    for (int i = 0; i < r.n_seen; i++)
        free(r.seen_items[i]);
    for (int i = 0; i < r.n_done; i++)
        free(r.done_cats[i]);
    free(r.seen_items), free(r.done_cats);
    if (!rc && r.n == 0)
        rc = fail(&r, "the STAC %s has no items", kind == 1 ? "ItemCollection" : "Catalog");
    if (rc) {
        mm_batch_stac_free(r.v, r.n);
        r.v = NULL, r.n = 0;
    }
    *out = r.v;
    *n = r.n;
    return rc;
}

void mm_batch_stac_free(mm_batch_stac_entry *v, int n) {
    for (int i = 0; i < n; i++) {
        free(v[i].id), free(v[i].input), free(v[i].asset), free(v[i].href), free(v[i].where);
        free(v[i].error);
        cJSON_Delete(v[i].item);
    }
    free(v);
}
