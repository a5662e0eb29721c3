/*
 * mm_batch: many translations from a manifest (CSV or JSON Lines: input, output, task, options),
 * resumable. Each item runs exactly as mm_translate runs its command line (translate_cmd.c: the
 * same option parser, checks, messages and job), in a child process of its own (fork, no exec):
 * its messages are the item's record, a crash or an exhausted memory is that item's failure, and
 * -j N runs N at once. After a success a stamp OUTPUT.mmstamp.json records what made the output
 * (input and model SHA-256, the normalised options, the version); a rerun skips the items whose
 * stamp still matches. See man/mm_batch.1 and docs/batch.md.
 */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <cpl_conv.h>
#include <cpl_string.h>
#include <errno.h>
#include <gdal.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "batch.h"
#include "mm.h"
#include "mmgeo.h"
#include "part_file.h"
#include "tool_stac.h"
#include "translate_cmd.h"

static const char *TOOL = "mm_batch";

/* a child's exit status for an item whose stamp matched */
#define EXIT_UP_TO_DATE 3

static void usage(FILE *f) {
    fprintf(f,
            "Usage: mm_batch [--help] [--help-general] [--version] [-q] [-j N] [--report FILE]\n"
            "         [--no-stac] [--catalog FILE]\n"
            "         [--output-dir DIR --task SOURCE:TARGET [--stac-asset KEY]] (STAC manifests)\n"
            "         [mm_translate's options: -of FORMAT, -co NAME=VALUE, --config KEY VALUE,\n"
            "          --model FILE, --device cpu|cuda, --threads N, --precision bf16|fp32,\n"
            "          --steps N, --guidance G, --seed N, --sampler euler|heun|euler_maruyama,\n"
            "          --overlap PX, --batch N, --seamless, -b BAND, -srcwin XOFF YOFF XSIZE YSIZE,\n"
            "          -projwin ULX ULY LRX LRY, -ot TYPE, --profile MODALITY=SPEC,\n"
            "          --aoi FILE, --aoi-layer NAME, --gsd M, --nonfinite error|nodata,\n"
            "          --max-pixels N, --force, --sar-units db|linear|amplitude, --sar-band N,\n"
            "          --samples K, --spread band|sidecar]\n"
            "         MANIFEST\n"
            "Runs the translations of MANIFEST, a CSV file (header input,output,task[,options]) or\n"
            "JSON Lines ({\"input\": ..., \"output\": ..., \"task\": \"sar:rgb\", \"options\": ...}),\n"
            "or a STAC ItemCollection or Catalog (catalog.json: its items, its children's; each\n"
            "Item's input its asset KEY, else the one with role data, else the only GeoTIFF;\n"
            "the output DIR/ID.tif),\n"
            "each as mm_translate would with the options given here, then the item's own. A\n"
            "stamp OUTPUT.mmstamp.json records each output's input, model and options; items\n"
            "whose stamp matches are skipped. Exit status 0 when every item succeeded or was up\n"
            "to date, 1 when one failed, 2 for a bad manifest or usage. Each output gets a STAC\n"
            "item OUTPUT.stac.json and the batch a STAC catalog (catalog.json beside MANIFEST)\n"
            "unless --no-stac. See mm_batch(1).\n"
            "The model: --model, else $MM_MODEL, else the default model (%s).\n",
            mm_tool_default_model());
    mm_batch_plan_usage(f);
}
static void no_usage(FILE *f) { (void)f; }

/* ---- the manifest ------------------------------------------------------------------------- */

enum { ST_PENDING, ST_RUNNING, ST_OK, ST_SKIPPED, ST_FAILED, ST_NOT_RUN };
static const char *status_name[] = {"pending", "running", "ok", "skipped", "failed", "not run"};

typedef struct {
    char *input, *output, *task; /* paths resolved against the manifest's folder */
    char **args;                 /* the options, split into words (a GDAL string list) */
    char *error;                 /* why it failed */
    char **warnings;
    int line, status;
    pid_t pid;
    FILE *log; /* the child's stderr */
    double t0, seconds;
    /* from a STAC manifest: the Item's id, the asset taken as the input, the Item (linked from
       the output's STAC item as derived_from) and its href */
    char *stac_id, *asset, *src_href;
    cJSON *src_item;
    double pixels; /* the input's width x height (0 when it cannot be opened), for the progress */
} item;

/* what a STAC manifest needs from the command line (taken out of argv before mm_translate's
   parser sees it) */
typedef struct {
    const char *asset, *out_dir, *task;
    const char *ext; /* the outputs' file extension, from -of */
} stac_opts;

typedef struct {
    item *v;
    int n, cap;
} items;

static char *dupstr(const char *s) { return strdup(s ? s : ""); }

/* path as written in the manifest, relative to the manifest's folder */
static char *resolve(const char *dir, const char *p) {
    if (!dir || p[0] == '/' || !strncmp(p, "/vsi", 4)) return dupstr(p);
    char *r = malloc(strlen(dir) + strlen(p) + 2);
    sprintf(r, "%s/%s", dir, p);
    return r;
}

/* The options text split into words as a POSIX shell would (blanks; '...'; "..." with \" and \\;
 * a backslash outside quotes), with no expansion. NULL after *err on an unterminated quote. */
static char **split_words(const char *s, const char **err) {
    char **out = NULL;
    size_t n = strlen(s);
    char *w = malloc(n + 1);
    size_t k = 0;
    int in_word = 0;
    for (size_t i = 0; i <= n; i++) {
        const char ch = s[i];
        if (ch == 0 || ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r') {
            if (in_word) {
                w[k] = 0;
                out = CSLAddString(out, w);
            }
            k = 0, in_word = 0;
            if (ch == 0) break;
        } else if (ch == '\'') {
            in_word = 1;
            const char *e = strchr(s + i + 1, '\'');
            if (!e) goto unterminated;
            memcpy(w + k, s + i + 1, (size_t)(e - s - i - 1));
            k += (size_t)(e - s - i - 1);
            i = (size_t)(e - s);
        } else if (ch == '"') {
            in_word = 1;
            for (i++;; i++) {
                if (s[i] == 0) goto unterminated;
                if (s[i] == '"') break;
                if (s[i] == '\\' && (s[i + 1] == '"' || s[i + 1] == '\\')) i++;
                w[k++] = s[i];
            }
        } else if (ch == '\\' && s[i + 1]) {
            in_word = 1;
            w[k++] = s[++i];
        } else {
            in_word = 1;
            w[k++] = ch;
        }
    }
    free(w);
    return out;
unterminated:
    free(w);
    CSLDestroy(out);
    *err = "an unterminated quote in the options";
    return NULL;
}

static int add_item(items *it, const char *dir, int line, const char *in, const char *out,
                    const char *task, const char *opts, char **opt_list, char *msg, size_t len) {
    if (!in || !*in || !out || !*out || !task || !*task) {
        snprintf(msg, len, "line %d: an item needs input, output and task", line);
        return -1;
    }
    if (it->n == it->cap) {
        it->cap = it->cap ? 2 * it->cap : 16;
        it->v = realloc(it->v, (size_t)it->cap * sizeof *it->v);
    }
    item *x = &it->v[it->n++];
    memset(x, 0, sizeof *x);
    x->line = line;
    x->input = resolve(dir, in);
    x->output = resolve(dir, out);
    x->task = dupstr(task);
    if (opt_list)
        x->args = opt_list;
    else if (opts) {
        const char *e = NULL;
        x->args = split_words(opts, &e);
        if (e) x->error = dupstr(e); /* the item fails with it */
    }
    return 0;
}

/* One CSV record from *p (RFC 4180: quoted fields with "" for a quote, CRLF or LF); the fields
 * in a GDAL list, *p advanced. NULL at the end. */
static char **csv_record(const char **p, int *line, int *bad) {
    const char *s = *p;
    if (!*s) return NULL;
    char **f = NULL;
    size_t cap = 64, k = 0;
    char *w = malloc(cap);
    for (;;) {
        int quoted = 0;
        k = 0;
        if (*s == '"') {
            quoted = 1;
            for (s++;; s++) {
                if (!*s) {
                    *bad = 1;
                    break;
                }
                if (*s == '"') {
                    if (s[1] == '"')
                        s++;
                    else {
                        s++;
                        break;
                    }
                }
                if (*s == '\n') ++*line;
                if (k + 2 > cap) w = realloc(w, cap *= 2);
                w[k++] = *s;
            }
        }
        while (*s && *s != ',' && *s != '\n' && *s != '\r') {
            if (k + 2 > cap) w = realloc(w, cap *= 2);
            w[k++] = *s++;
        }
        w[k] = 0;
        /* unquoted fields are trimmed */
        char *b = w;
        if (!quoted) {
            while (*b == ' ' || *b == '\t') b++;
            size_t e = strlen(b);
            while (e && (b[e - 1] == ' ' || b[e - 1] == '\t')) b[--e] = 0;
        }
        f = CSLAddString(f, b);
        if (*s == ',') {
            s++;
            continue;
        }
        if (*s == '\r') s++;
        if (*s == '\n') s++;
        break;
    }
    free(w);
    *p = s;
    return f;
}

/* Reads MANIFEST into it; 0, or -1 after msg. */
/* The items of a STAC manifest (an ItemCollection or a Catalog, parsed as root): the input is the
 * chosen asset, the output OUT_DIR/ID.EXT, the task --task's. 0, or -1 after msg. */
static int read_stac_manifest(const char *path, cJSON *root, const stac_opts *so, items *it,
                              char *msg, size_t len) {
    if (!so->out_dir || !so->task) {
        snprintf(msg, len, "a STAC %s as the manifest needs %s (see mm_batch(1))",
                 mm_batch_stac_kind(root) == 1 ? "ItemCollection" : "Catalog",
                 !so->out_dir && !so->task ? "--output-dir DIR and --task SOURCE:TARGET"
                 : !so->out_dir            ? "--output-dir DIR (where the outputs go)"
                                           : "--task SOURCE:TARGET (e.g. sar:rgb)");
        return -1;
    }
    mm_batch_stac_entry *e = NULL;
    int n = 0;
    if (mm_batch_read_stac(path, root, so->asset, &e, &n, msg, len)) return -1;
    for (int i = 0; i < n; i++) {
        /* the output's name: the id, with what a file name should not hold replaced by _ */
        char *name = strdup(e[i].id);
        for (char *q = name; *q; q++)
            if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') ||
                  *q == '-' || *q == '_' || (*q == '.' && q != name)))
                *q = '_';
        char *out = NULL;
        if (asprintf(&out, "%s/%s.%s", so->out_dir, name, so->ext) < 0) out = NULL;
        free(name);
        if (!out || add_item(it, NULL, i + 1, e[i].input ? e[i].input : e[i].where, out, so->task,
                             NULL, NULL, msg, len)) {
            free(out);
            mm_batch_stac_free(e, n);
            return -1;
        }
        free(out);
        item *x = &it->v[it->n - 1];
        x->stac_id = strdup(e[i].id);
        x->asset = e[i].asset ? strdup(e[i].asset) : NULL;
        x->src_href = e[i].href ? strdup(e[i].href) : NULL;
        x->src_item = e[i].item, e[i].item = NULL;
        if (e[i].error) {
            free(x->error);
            x->error = strdup(e[i].error); /* a bad item: recorded, the rest go on */
        }
    }
    mm_batch_stac_free(e, n);
    return 0;
}

/* Reads MANIFEST into it; 0, or -1 after msg. *is_stac: the manifest was STAC. */
static int read_manifest(const char *path, const stac_opts *so, items *it, int *is_stac, char *msg,
                         size_t len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(msg, len, "cannot open '%s': %s", path, strerror(errno));
        return -1;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (size_t r; (r = fread(buf + n, 1, cap - n - 1, f)) > 0;) {
        n += r;
        if (n + 1 == cap) buf = realloc(buf, cap *= 2);
    }
    const int rerr = ferror(f);
    fclose(f);
    buf[n] = 0;
    if (rerr || strlen(buf) != n) {
        snprintf(msg, len, "'%s' %s", path,
                 rerr ? "could not be read" : "is not a text file (a NUL byte)");
        free(buf);
        return -1;
    }
    char *dir = NULL;
    const char *slash = strrchr(path, '/');
    if (slash) dir = strndup(path, (size_t)(slash - path) + (slash == path));
    const char *s = buf;
    if (!strncmp(s, "\xEF\xBB\xBF", 3)) s += 3; /* a UTF-8 byte order mark */
    const char *first = s + strspn(s, " \t\r\n");
    int rc = 0, line = 0;
    cJSON *whole = NULL;
    if (*first == '{') { /* one JSON document: a STAC ItemCollection or Catalog? */
        const char *end = NULL;
        whole = cJSON_ParseWithOpts(first, &end, 1);
        if (!mm_batch_stac_kind(whole)) cJSON_Delete(whole), whole = NULL;
    }
    *is_stac = whole != NULL;
    if (!whole && (so->asset || so->out_dir || so->task)) {
        snprintf(msg, len, "%s is for a STAC manifest (an ItemCollection or a Catalog); this one "
                           "is %s",
                 so->asset ? "--stac-asset" : so->out_dir ? "--output-dir" : "--task",
                 *first == '{' ? "JSON Lines" : "CSV");
        rc = -1;
    } else if (whole) {
        rc = read_stac_manifest(path, whole, so, it, msg, len);
        cJSON_Delete(whole);
    } else if (*first == '{') { /* JSON Lines */
        while (*s && !rc) {
            line++;
            const char *e = strchr(s, '\n');
            char *l = e ? strndup(s, (size_t)(e - s)) : strdup(s);
            s = e ? e + 1 : s + strlen(s);
            if (!l[strspn(l, " \t\r")]) {
                free(l);
                continue;
            }
            cJSON *o = cJSON_Parse(l);
            free(l);
            if (!cJSON_IsObject(o)) {
                snprintf(msg, len, "line %d: not a JSON object", line);
                rc = -1;
            } else {
                const char *k[3] = {"input", "output", "task"}, *v[3];
                for (int i = 0; i < 3 && !rc; i++) {
                    cJSON *j = cJSON_GetObjectItemCaseSensitive(o, k[i]);
                    v[i] = cJSON_IsString(j) ? j->valuestring : NULL;
                    if (j && !v[i]) {
                        snprintf(msg, len, "line %d: \"%s\" is not a string", line, k[i]);
                        rc = -1;
                    }
                }
                cJSON *op = cJSON_GetObjectItemCaseSensitive(o, "options");
                const char *ops = NULL;
                char **list = NULL;
                if (!rc && op && !cJSON_IsNull(op)) {
                    if (cJSON_IsString(op))
                        ops = op->valuestring;
                    else if (cJSON_IsArray(op)) {
                        cJSON *a;
                        cJSON_ArrayForEach(a, op) {
                            if (!cJSON_IsString(a)) {
                                snprintf(msg, len, "line %d: \"options\" has a non-string", line);
                                rc = -1;
                                break;
                            }
                            list = CSLAddString(list, a->valuestring);
                        }
                    } else {
                        snprintf(msg, len,
                                 "line %d: \"options\" must be a string or an array of strings",
                                 line);
                        rc = -1;
                    }
                }
                for (cJSON *c = o->child; c && !rc; c = c->next)
                    if (strcmp(c->string, "input") && strcmp(c->string, "output") &&
                        strcmp(c->string, "task") && strcmp(c->string, "options")) {
                        snprintf(msg, len, "line %d: unknown key \"%s\"", line, c->string);
                        rc = -1;
                    }
                if (!rc) rc = add_item(it, dir, line, v[0], v[1], v[2], ops, list, msg, len);
                else CSLDestroy(list);
            }
            cJSON_Delete(o);
        }
    } else { /* CSV with a header */
        int bad = 0, col[4] = {-1, -1, -1, -1};
        static const char *names[4] = {"input", "output", "task", "options"};
        line = 1;
        char **h = csv_record(&s, &line, &bad);
        for (int i = 0; h && h[i] && !rc; i++) {
            int k = 0;
            while (k < 4 && strcasecmp(h[i], names[k])) k++;
            if (k == 4 || col[k] >= 0) {
                snprintf(msg, len, "line 1: %s column '%s' (the header is input,output,task[,options])",
                         k == 4 ? "unknown" : "a second", h[i]);
                rc = -1;
            } else
                col[k] = i;
        }
        CSLDestroy(h);
        if (!rc && (col[0] < 0 || col[1] < 0 || col[2] < 0)) {
            snprintf(msg, len, "line 1: the header must name input, output and task "
                               "(input,output,task[,options])");
            rc = -1;
        }
        while (!rc) {
            line++;
            const int at = line;
            char **r = csv_record(&s, &line, &bad);
            if (!r) break;
            if (bad) {
                snprintf(msg, len, "line %d: an unterminated quote", at);
                rc = -1;
            }
            const int nf = CSLCount(r);
            const int blank = nf == 0 || (nf == 1 && !r[0][0]);
            if (!rc && !blank && r[0][0] != '#') {
                if (nf > 4) {
                    snprintf(msg, len, "line %d: %d fields (at most 4: quote a field that has a comma)",
                             at, nf);
                    rc = -1;
                } else {
                    const char *v[4];
                    for (int k = 0; k < 4; k++) v[k] = col[k] >= 0 && col[k] < nf ? r[col[k]] : NULL;
                    rc = add_item(it, dir, at, v[0], v[1], v[2], v[3], NULL, msg, len);
                }
            }
            CSLDestroy(r);
        }
    }
    if (!rc && it->n == 0) {
        snprintf(msg, len, "no items");
        rc = -1;
    }
    for (int i = 0; i < it->n && !rc; i++)
        for (int k = 0; k < i; k++)
            if (!strcmp(it->v[i].output, it->v[k].output)) {
                if (it->v[i].stac_id)
                    snprintf(msg, len, "the STAC items '%s' and '%s' write the same output '%s'",
                             it->v[k].stac_id, it->v[i].stac_id, it->v[i].output);
                else
                    snprintf(msg, len, "lines %d and %d write the same output '%s'", it->v[k].line,
                             it->v[i].line, it->v[i].output);
                rc = -1;
                break;
            }
    free(dir);
    free(buf);
    return rc;
}

/* ---- one item, in its child process --------------------------------------------------------- */

char *mm_batch_stamp_path(const char *output) {
    char *p = malloc(strlen(output) + 16);
    sprintf(p, "%s.mmstamp.json", output);
    return p;
}

/* The options that decide the output, normalised (after parsing: "--steps=8" and "--steps 8" are
 * the same; --threads, --batch, -q, --max-pixels, --force, --config are not recorded: the output
 * is the same whatever they are). */
static cJSON *normalised_options(const mm_translate_cmd *c) {
    const mm_tool_opts *o = &c->opt;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "source", c->task_src ? c->task_src : "");
    cJSON_AddStringToObject(j, "target", c->task_tgt ? c->task_tgt : "");
#define STR(k, v)                                                                                  \
    if (v) cJSON_AddStringToObject(j, k, v)
    STR("of", o->format);
    if (o->co) {
        cJSON *a = cJSON_AddArrayToObject(j, "co");
        for (char **p = o->co; *p; p++) cJSON_AddItemToArray(a, cJSON_CreateString(*p));
    }
    STR("ot", c->out_type);
    if (strcmp(c->processor, "model")) cJSON_AddStringToObject(j, "processor", c->processor);
    if (c->window) cJSON_AddNumberToObject(j, "window", c->window);
    STR("device", o->device);
    STR("precision", o->precision);
    STR("sampler", o->sampler);
    if (o->steps > 0) cJSON_AddNumberToObject(j, "steps", o->steps);
    if (o->guidance >= 0) {
        char g[32];
        snprintf(g, sizeof g, "%.9g", o->guidance);
        cJSON_AddStringToObject(j, "guidance", g);
    }
    if (o->seed_set) {
        char s[32];
        snprintf(s, sizeof s, "%llu", (unsigned long long)o->seed);
        cJSON_AddStringToObject(j, "seed", s);
    }
    if (o->overlap >= 0) cJSON_AddNumberToObject(j, "overlap", o->overlap);
    if (o->profiles.n) {
        cJSON *a = cJSON_AddArrayToObject(j, "profile");
        for (int i = 0; i < o->profiles.n; i++)
            cJSON_AddItemToArray(a, cJSON_CreateString(o->profiles.spec[i]));
    }
    if (o->aoi) {
        char hex[65], err[512];
        cJSON_AddStringToObject(j, "aoi", o->aoi);
        if (!mmgeo_sha256_file(o->aoi, hex, err, sizeof err))
            cJSON_AddStringToObject(j, "aoi_sha256", hex);
    }
    STR("aoi_layer", o->aoi_layer);
    if (o->n_bands) {
        cJSON *a = cJSON_AddArrayToObject(j, "b");
        for (int i = 0; i < o->n_bands; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(o->bands[i]));
    }
    if (o->has_srcwin) {
        cJSON *a = cJSON_AddArrayToObject(j, "srcwin");
        for (int i = 0; i < 4; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(o->srcwin[i]));
    }
    if (o->has_projwin) {
        cJSON *a = cJSON_AddArrayToObject(j, "projwin");
        for (int i = 0; i < 4; i++) {
            char v[40];
            snprintf(v, sizeof v, "%.17g", o->projwin[i]);
            cJSON_AddItemToArray(a, cJSON_CreateString(v));
        }
    }
    if (o->seamless) cJSON_AddTrueToObject(j, "seamless");
    if (o->gsd > 0) {
        char v[40];
        snprintf(v, sizeof v, "%.17g", o->gsd);
        cJSON_AddStringToObject(j, "gsd", v);
    }
    if (o->sar.units) {
        static const char *u[] = {"", "db", "linear", "amplitude"};
        cJSON_AddStringToObject(j, "sar_units", u[o->sar.units]);
    }
    if (o->sar.band) cJSON_AddNumberToObject(j, "sar_band", o->sar.band);
    if (o->nonfinite) cJSON_AddStringToObject(j, "nonfinite", o->nonfinite == MMGEO_NONFINITE_ERROR ? "error" : "nodata");
    if (o->samples.samples > 1) { /* --samples K: the mean of K samples, and where the spread goes */
        cJSON_AddNumberToObject(j, "samples", o->samples.samples);
        cJSON_AddStringToObject(j, "spread",
                                o->samples.spread == MMGEO_SPREAD_BAND ? "band" : "sidecar");
    }
#undef STR
    return j;
}

static long long mtime_ns(const struct stat *st) {
    return (long long)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
}

/* The stamp's key: everything that decides the output, as one canonical JSON text. NULL when the
 * input or the model cannot be read (the run then fails with mm_translate's message). */
static char *stamp_key(const mm_translate_cmd *c, const char *input, cJSON **fields) {
    char in_hex[65], model_hex[65], err[1024];
    if (mmgeo_sha256_file(input, in_hex, err, sizeof err)) return NULL;
    if (mmgeo_sha256_file(c->opt.model_path, model_hex, err, sizeof err)) return NULL;
    return mm_batch_stamp_key_hex(c, in_hex, model_hex, fields);
}

char *mm_batch_stamp_key(const mm_translate_cmd *c, const char *input, cJSON **fields) {
    return stamp_key(c, input, fields);
}

char *mm_batch_stamp_key_sources(const mm_translate_cmd *c, cJSON **fields) {
    if (c->n_src < 1) return NULL;
    char hex[MMGEO_MAX_IO][65], model_hex[65], err[1024];
    const char *h[MMGEO_MAX_IO];
    for (int i = 0; i < c->n_src; i++) {
        if (!c->src_path[i] || mmgeo_sha256_file(c->src_path[i], hex[i], err, sizeof err))
            return NULL;
        h[i] = hex[i];
    }
    if (mmgeo_sha256_file(c->opt.model_path, model_hex, err, sizeof err)) return NULL;
    return mm_batch_stamp_key_hexes(c, h, c->n_src, model_hex, fields);
}

char *mm_batch_stamp_key_hex(const mm_translate_cmd *c, const char *in_hex, const char *model_hex,
                             cJSON **fields) {
    return mm_batch_stamp_key_hexes(c, &in_hex, 1, model_hex, fields);
}

char *mm_batch_stamp_key_hexes(const mm_translate_cmd *c, const char *const *in_hex, int n,
                               const char *model_hex, cJSON **fields) {
    cJSON *k = cJSON_CreateObject();
    cJSON_AddStringToObject(k, "version", MM_VERSION_STRING);
    cJSON_AddStringToObject(k, "input_sha256", in_hex[0]);
    if (n > 1) { /* several sources: every one decides the output */
        cJSON *a = cJSON_AddArrayToObject(k, "sources_sha256");
        for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateString(in_hex[i]));
    }
    cJSON_AddStringToObject(k, "model_sha256", model_hex);
    cJSON_AddItemToObject(k, "options", normalised_options(c));
    char *text = cJSON_PrintUnformatted(k);
    *fields = k;
    return text;
}

/* 1 when the stamp at sp has key and the output it describes is there unchanged */
int mm_batch_stamp_matches(const char *sp, const char *key, const char *output) {
    FILE *f = fopen(sp, "rb");
    if (!f) return 0;
    char buf[65536];
    const size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    cJSON *j = cJSON_Parse(buf);
    int ok = 0;
    struct stat st;
    if (j && !stat(output, &st) && S_ISREG(st.st_mode)) {
        cJSON *k = cJSON_GetObjectItemCaseSensitive(j, "key");
        cJSON *sz = cJSON_GetObjectItemCaseSensitive(j, "output_size");
        cJSON *mt = cJSON_GetObjectItemCaseSensitive(j, "output_mtime_ns");
        char now[32];
        snprintf(now, sizeof now, "%lld", mtime_ns(&st));
        ok = cJSON_IsString(k) && !strcmp(k->valuestring, key) && cJSON_IsNumber(sz) &&
             sz->valuedouble == (double)st.st_size && cJSON_IsString(mt) &&
             !strcmp(mt->valuestring, now);
    }
    cJSON_Delete(j);
    return ok;
}

int mm_batch_write_stamp(const char *sp, const char *key, cJSON *fields, const char *input,
                         const char *task, const char *output) {
    struct stat st;
    if (stat(output, &st)) {
        fprintf(stderr, "%s: the output '%s' is not there after the run: %s\n", TOOL, output,
                strerror(errno));
        return -1;
    }
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "tool", "mm_batch " MM_VERSION_STRING);
    cJSON_AddStringToObject(j, "input", input);
    cJSON_AddStringToObject(j, "task", task);
    cJSON_AddItemReferenceToObject(j, "version", cJSON_GetObjectItem(fields, "version"));
    cJSON_AddItemReferenceToObject(j, "input_sha256", cJSON_GetObjectItem(fields, "input_sha256"));
    cJSON *all = cJSON_GetObjectItem(fields, "sources_sha256");
    if (all) cJSON_AddItemReferenceToObject(j, "sources_sha256", all);
    cJSON_AddItemReferenceToObject(j, "model_sha256", cJSON_GetObjectItem(fields, "model_sha256"));
    cJSON_AddItemReferenceToObject(j, "options", cJSON_GetObjectItem(fields, "options"));
    cJSON_AddNumberToObject(j, "output_size", (double)st.st_size);
    char mt[32];
    snprintf(mt, sizeof mt, "%lld", mtime_ns(&st));
    cJSON_AddStringToObject(j, "output_mtime_ns", mt);
    cJSON_AddStringToObject(j, "key", key);
    const int rc = mm_part_write_json(sp, j);
    if (rc) fprintf(stderr, "%s: cannot write the stamp '%s': %s\n", TOOL, sp, strerror(errno));
    cJSON_Delete(j);
    return rc;
}

/* The item's exit status: 0 done, EXIT_UP_TO_DATE, 1 or 2 failed (the message on stderr), 130
 * interrupted. */
static int run_item(const item *x, int argc, char **argv, int jobs) {
    if (x->error) {
        fprintf(stderr, "%s: %s\n", TOOL, x->error);
        return 2;
    }
    /* mm_batch's own arguments but MANIFEST, the item's options, then -- INPUT OUTPUT */
    const int na = CSLCount(x->args);
    char **av = calloc((size_t)(argc + na + 4), sizeof *av);
    int n = 0;
    for (int i = 0; i < argc - 1; i++) av[n++] = argv[i];
    for (int i = 0; i < na; i++) av[n++] = x->args[i];
    av[n++] = "--";
    av[n++] = x->input;
    av[n++] = x->output;
    const char *colon = strchr(x->task, ':');
    if (!colon || strchr(colon + 1, ':')) {
        fprintf(stderr, "%s: bad task '%s': expected SOURCE:TARGET (e.g. sar:rgb)\n", TOOL,
                x->task);
        return 2;
    }
    char *src = strndup(x->task, (size_t)(colon - x->task));
    mm_translate_cmd c;
    mm_translate_cmd_init(&c, TOOL, MM_TR_ITEM);
    c.task_src = src[0] ? src : NULL;
    c.task_tgt = colon[1] ? colon + 1 : NULL;
    c.n_default_args = argc - 2;
    const int p = mm_translate_cmd_parse(&c, n, av, no_usage);
    if (p) {
        if (p == 1) fprintf(stderr, "%s: --help and --version are not options of an item\n", TOOL);
        return 2;
    }
    c.opt.quiet = 1;
    /* -co NAME=VALUE: an item's value replaces the default's of the same NAME */
    char **co = NULL;
    for (char **q = c.opt.co; q && *q; q++) {
        char *key = NULL;
        const char *v = CPLParseNameValue(*q, &key);
        co = key && v ? CSLSetNameValue(co, key, v) : CSLAddString(co, *q);
        CPLFree(key);
    }
    CSLDestroy(c.opt.co);
    c.opt.co = co;
    if (c.opt.threads == 0 && jobs > 1) { /* the cores shared among the items running at once */
        const long nc = sysconf(_SC_NPROCESSORS_ONLN);
        c.opt.threads = nc > jobs ? (int)(nc / jobs) : 1;
    }
    cJSON *fields = NULL;
    char *key = stamp_key(&c, x->input, &fields);
    char *sp = mm_batch_stamp_path(x->output);
    /* an input from a STAC manifest: the output's item links the source's Item (written here,
       not by the run) */
    const int stac = c.stac;
    if (x->src_item) c.stac = 0;
    if (key && mm_batch_stamp_matches(sp, key, x->output)) {
        /* up to date; its STAC item (made from the output alone) written if a run without one
           (--no-stac) left none */
        char *ip = stac ? mm_tool_stac_path(x->output) : NULL;
        const int missing = ip && access(ip, F_OK) != 0;
        free(ip);
        if (missing && mm_tool_stac_item_source(TOOL, x->output, x->src_href, x->src_item))
            return 1;
        return EXIT_UP_TO_DATE;
    }
    if (unlink(sp) && errno != ENOENT) {
        fprintf(stderr, "%s: cannot remove the stale stamp '%s': %s\n", TOOL, sp, strerror(errno));
        return 1;
    }
    int rc = mm_translate_cmd_run(&c, TOOL);
    if (rc == 0 && stac && !c.stac &&
        mm_tool_stac_item_source(TOOL, x->output, x->src_href, x->src_item))
        rc = 1;
    if (rc == 0) {
        if (!key) { /* the input changed under the run: hash it again */
            key = stamp_key(&c, x->input, &fields);
            if (!key) {
                fprintf(stderr, "%s: cannot read '%s' or the model for the stamp\n", TOOL, x->input);
                return 1;
            }
        }
        if (mm_batch_write_stamp(sp, key, fields, x->input, x->task, x->output)) rc = 1;
    }
    return rc; /* the child exits: nothing is freed */
}

/* ---- the batch -------------------------------------------------------------------------- */

static volatile sig_atomic_t g_interrupted = 0;
static void on_signal(int sig) { g_interrupted = sig; }

static char *read_all(FILE *f) {
    fflush(f);
    const long n = ftell(f);
    char *b = calloc((size_t)(n > 0 ? n : 0) + 1, 1);
    rewind(f);
    if (n > 0 && fread(b, 1, (size_t)n, f) != (size_t)n) b[0] = 0;
    return b;
}

static void finish(item *x, int st, double now) {
    x->seconds = now - x->t0;
    char *log = x->log ? read_all(x->log) : dupstr("");
    if (x->log) fclose(x->log);
    x->log = NULL;
    /* the last line is the error; warnings are kept */
    char *last = NULL, *save = NULL;
    const size_t pre = strlen(TOOL) + 2;
    for (char *l = strtok_r(log, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        if (!strncmp(l, TOOL, pre - 2) && !strncmp(l + pre - 2, ": ", 2)) l += pre;
        if (!strncmp(l, "warning: ", 9))
            x->warnings = CSLAddString(x->warnings, l + 9);
        else if (*l)
            last = l;
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        x->status = ST_OK;
    else if (WIFEXITED(st) && WEXITSTATUS(st) == EXIT_UP_TO_DATE)
        x->status = ST_SKIPPED;
    else {
        x->status = ST_FAILED;
        char why[256];
        if (WIFSIGNALED(st))
            snprintf(why, sizeof why, "the item's process was killed by signal %d (%s)",
                     WTERMSIG(st), strsignal(WTERMSIG(st)));
        else if (WEXITSTATUS(st) == 130)
            snprintf(why, sizeof why, "interrupted");
        else
            snprintf(why, sizeof why, "failed with exit status %d", WEXITSTATUS(st));
        free(x->error);
        x->error = dupstr(last && !(WIFEXITED(st) && WEXITSTATUS(st) == 130) ? last : why);
    }
    free(log);
}

static void fmt_time(double s, char *b, size_t n) {
    if (s < 60)
        snprintf(b, n, "%.0f s", s);
    else if (s < 3600)
        snprintf(b, n, "%d min %02d s", (int)(s / 60), (int)s % 60);
    else
        snprintf(b, n, "%d h %02d min", (int)(s / 3600), (int)(s / 60) % 60);
}

static int write_report(const char *path, const char *manifest, const items *it, double total,
                        const int count[6]) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "tool", "mm_batch " MM_VERSION_STRING);
    cJSON_AddStringToObject(j, "manifest", manifest);
    cJSON_AddNumberToObject(j, "ok", count[ST_OK]);
    cJSON_AddNumberToObject(j, "skipped", count[ST_SKIPPED]);
    cJSON_AddNumberToObject(j, "failed", count[ST_FAILED]);
    cJSON_AddNumberToObject(j, "not_run", count[ST_NOT_RUN]);
    cJSON_AddNumberToObject(j, "seconds", total);
    cJSON *a = cJSON_AddArrayToObject(j, "items");
    for (int i = 0; i < it->n; i++) {
        const item *x = &it->v[i];
        cJSON *o = cJSON_CreateObject();
        if (x->stac_id) { /* from a STAC manifest: the Item, and the asset taken */
            cJSON_AddStringToObject(o, "stac_item", x->stac_id);
            if (x->src_href) cJSON_AddStringToObject(o, "stac_href", x->src_href);
            if (x->asset)
                cJSON_AddStringToObject(o, "asset", x->asset);
            else
                cJSON_AddNullToObject(o, "asset");
        } else
            cJSON_AddNumberToObject(o, "line", x->line);
        cJSON_AddStringToObject(o, "input", x->input);
        cJSON_AddStringToObject(o, "output", x->output);
        cJSON_AddStringToObject(o, "task", x->task);
        cJSON_AddStringToObject(o, "status", status_name[x->status]);
        if (x->error && x->status == ST_FAILED)
            cJSON_AddStringToObject(o, "error", x->error);
        else
            cJSON_AddNullToObject(o, "error");
        if (x->warnings) {
            cJSON *w = cJSON_AddArrayToObject(o, "warnings");
            for (char **p = x->warnings; *p; p++) cJSON_AddItemToArray(w, cJSON_CreateString(*p));
        }
        cJSON_AddNumberToObject(o, "seconds", (double)(long)(x->seconds * 1000 + 0.5) / 1000);
        cJSON_AddItemToArray(a, o);
    }
    const int rc = mm_part_write_json(path, j);
    if (rc) fprintf(stderr, "%s: cannot write the report '%s': %s\n", TOOL, path, strerror(errno));
    cJSON_Delete(j);
    return rc;
}

/* The batch's STAC Catalog (--catalog FILE, else catalog.json beside the manifest) linking the
 * items of the outputs that are there (done or up to date). */
static int write_catalog(const mm_translate_cmd *c, const char *manifest, const items *it,
                         int quiet) {
    char *path = NULL;
    const char *slash = strrchr(manifest, '/');
    if (c->catalog)
        path = strdup(c->catalog);
    else if (asprintf(&path, "%.*scatalog.json", slash ? (int)(slash - manifest + 1) : 0,
                      manifest) < 0)
        path = NULL;
    const char *base = slash ? slash + 1 : manifest, *dot = strrchr(base, '.');
    char id[512];
    snprintf(id, sizeof id, "mm_batch-%.*s",
             dot && dot != base ? (int)(dot - base) : (int)strlen(base), base);
    char **paths = NULL;
    int n = 0;
    for (int i = 0; i < it->n; i++) {
        const item *x = &it->v[i];
        if (x->status != ST_OK && x->status != ST_SKIPPED) continue;
        char *ip = mm_tool_stac_path(x->output);
        if (ip && access(ip, F_OK) == 0) paths = CSLAddString(paths, ip), n++;
        free(ip);
    }
    const int rc = path ? mm_tool_stac_catalog(TOOL, path, id,
                                               "Synthetic images made by mm_batch (MetaEarth-MM) "
                                               "from the manifest's inputs; not observations.",
                                               (const char *const *)paths, n)
                        : -1;
    if (!rc && !quiet)
        fprintf(stderr, "%s: STAC catalog %s (%d item%s)\n", TOOL, path, n, n == 1 ? "" : "s");
    CSLDestroy(paths);
    free(path);
    return rc ? 1 : 0;
}

int main(int argc, char **argv) {
    /* one scene over a Slurm cluster (batch_plan.c); a manifest named so is ./plan */
    if (argc > 1 && (!strcmp(argv[1], "plan") || !strcmp(argv[1], "chunk") ||
                     !strcmp(argv[1], "stitch")))
        return mm_batch_plan_main(argc - 1, argv + 1);
    if (mm_args_general(TOOL, argc, argv, usage, "GDAL", GDALVersionInfo("RELEASE_NAME")))
        return 0;
    /* a STAC manifest's options (--stac-asset, --output-dir, --task): mm_batch's own, taken out
       before mm_translate's parser (and each item's) sees the rest */
    stac_opts so = {0};
    {
        static const char *const names[3] = {"--stac-asset", "--output-dir", "--task"};
        const char **dst[3] = {&so.asset, &so.out_dir, &so.task};
        int k = 1;
        for (int i = 1; i < argc; i++) {
            int hit = -1;
            const char *val = NULL;
            for (int o = 0; o < 3 && hit < 0 && i < argc - 1; o++) {
                const size_t l = strlen(names[o]);
                if (!strcmp(argv[i], names[o])) {
                    hit = o;
                    if (i + 1 < argc - 1) val = argv[++i];
                } else if (!strncmp(argv[i], names[o], l) && argv[i][l] == '=')
                    hit = o, val = argv[i] + l + 1;
            }
            if (hit < 0) {
                argv[k++] = argv[i];
                continue;
            }
            if (!val || !*val) {
                fprintf(stderr, "%s: %s needs a value before MANIFEST\n", TOOL, names[hit]);
                return 2;
            }
            *dst[hit] = val;
        }
        argv[k] = NULL;
        argc = k;
    }
    if (so.task) {
        const char *colon = strchr(so.task, ':');
        if (!colon || strchr(colon + 1, ':') || !colon[1]) {
            fprintf(stderr, "%s: bad --task '%s': expected SOURCE:TARGET (e.g. sar:rgb; SOURCE may "
                            "be empty)\n", TOOL, so.task);
            return 2;
        }
    }
    /* the arguments as given (getopt permutes argv): each item re-parses them */
    char **orig = calloc((size_t)argc + 1, sizeof *orig);
    for (int i = 0; i < argc; i++) orig[i] = argv[i];
    mm_translate_cmd cmd;
    mm_translate_cmd_init(&cmd, TOOL, MM_TR_BATCH);
    const int p = mm_translate_cmd_parse(&cmd, argc, argv, usage);
    if (p) {
        mm_translate_cmd_free(&cmd);
        free(orig);
        return p == 1 ? 0 : 2;
    }
    if (cmd.manifest != orig[argc - 1]) {
        fprintf(stderr, "%s: MANIFEST comes last, after the options\n", TOOL);
        mm_translate_cmd_free(&cmd);
        free(orig);
        return 2;
    }
    const int jobs = cmd.jobs, quiet = cmd.opt.quiet;
    const char *report = cmd.report, *manifest = cmd.manifest;
    items it = {0};
    char msg[2048];
    /* a STAC manifest's outputs: OUT_DIR/ID.EXT, EXT the format's (tif for GTiff and COG) */
    char ext[32] = "tif";
    if (cmd.opt.format && !EQUAL(cmd.opt.format, "GTiff") && !EQUAL(cmd.opt.format, "COG")) {
        GDALAllRegister();
        GDALDriverH drv = GDALGetDriverByName(cmd.opt.format);
        const char *e = drv ? GDALGetMetadataItem(drv, GDAL_DMD_EXTENSION, NULL) : NULL;
        if (e && *e) snprintf(ext, sizeof ext, "%s", e);
    }
    so.ext = ext;
    int is_stac = 0;
    int bad_manifest = read_manifest(manifest, &so, &it, &is_stac, msg, sizeof msg);
    char *stac_catalog = NULL;
    if (!bad_manifest && is_stac) {
        struct stat st;
        if (stat(so.out_dir, &st) && (errno != ENOENT || mkdir(so.out_dir, 0777))) {
            snprintf(msg, sizeof msg, "cannot make the output folder '%s': %s", so.out_dir,
                     strerror(errno));
            bad_manifest = -1;
        } else if (!stat(so.out_dir, &st) && !S_ISDIR(st.st_mode)) {
            snprintf(msg, sizeof msg, "--output-dir '%s' is not a folder", so.out_dir);
            bad_manifest = -1;
        }
        /* the batch's catalog: OUT_DIR/catalog.json unless --catalog; never the manifest */
        if (!bad_manifest && !cmd.catalog &&
            asprintf(&stac_catalog, "%s/catalog.json", so.out_dir) >= 0)
            cmd.catalog = stac_catalog;
        char *a = cmd.stac && cmd.catalog ? realpath(cmd.catalog, NULL) : NULL,
             *b = a ? realpath(manifest, NULL) : NULL;
        if (!bad_manifest && a && b && !strcmp(a, b)) {
            snprintf(msg, sizeof msg,
                     "the batch's STAC catalog '%s' would replace the manifest; name another with "
                     "--catalog FILE or --output-dir DIR",
                     cmd.catalog);
            bad_manifest = -1;
        }
        free(a), free(b);
    }
    if (bad_manifest) {
        fprintf(stderr, "%s: %s: %s\n", TOOL, manifest, msg);
    }
    int rc = 2;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: waitpid returns */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    const double t_start = mm_now_seconds();
    if (bad_manifest) goto out;
    int next = 0, running = 0, finished = 0, count[6] = {0}, forwarded = 0;
    double busy = 0; /* seconds of the items that ran (not the skipped ones) */
    int ran = 0;
    /* pixels, for the progress: every input's, those finished, and the done items' rate */
    double px_all = 0, px_fin = 0, px_ok = 0, sec_ok = 0;
    if (!quiet) {
        GDALAllRegister();
        CPLPushErrorHandler(CPLQuietErrorHandler);
        for (int i = 0; i < it.n; i++) {
            item *x = &it.v[i];
            GDALDatasetH d = x->error ? NULL : GDALOpenEx(x->input, GDAL_OF_RASTER, NULL, NULL, NULL);
            if (d) x->pixels = (double)GDALGetRasterXSize(d) * GDALGetRasterYSize(d), GDALClose(d);
            px_all += x->pixels;
        }
        CPLPopErrorHandler();
    }
    while (finished < it.n) {
        while (!g_interrupted && running < jobs && next < it.n) {
            item *x = &it.v[next++];
            x->t0 = mm_now_seconds();
            x->log = tmpfile();
            fflush(stdout);
            fflush(stderr);
            const pid_t pid = x->log ? fork() : -1;
            if (pid == 0) {
                signal(SIGINT, SIG_DFL);
                signal(SIGTERM, SIG_DFL);
                dup2(fileno(x->log), 2);
                const int rc = run_item(x, argc, orig, jobs);
                fflush(stderr);
                _exit(rc);
            }
            if (pid < 0) {
                x->status = ST_FAILED;
                x->error = dupstr(x->log ? "cannot start the item's process (fork failed)"
                                         : "cannot make the item's log (tmpfile failed)");
                if (x->log) fclose(x->log);
                x->log = NULL;
                count[ST_FAILED]++;
                finished++;
                continue;
            }
            x->pid = pid;
            x->status = ST_RUNNING;
            running++;
        }
        if (running == 0) break;
        int st;
        const pid_t pid = waitpid(-1, &st, 0);
        if (pid < 0) {
            if (errno != EINTR) break;
            if (g_interrupted && !forwarded) { /* SIGTERM to mm_batch alone: pass it on */
                for (int i = 0; i < it.n; i++)
                    if (it.v[i].status == ST_RUNNING) kill(it.v[i].pid, SIGTERM);
                forwarded = 1;
            }
            continue;
        }
        item *x = NULL;
        for (int i = 0; i < it.n && !x; i++)
            if (it.v[i].status == ST_RUNNING && it.v[i].pid == pid) x = &it.v[i];
        if (!x) continue;
        const double now = mm_now_seconds();
        finish(x, st, now);
        running--;
        finished++;
        count[x->status]++;
        if (x->status != ST_SKIPPED) busy += x->seconds, ran++;
        px_fin += x->pixels;
        if (x->status == ST_OK && x->pixels > 0) px_ok += x->pixels, sec_ok += x->seconds;
        if (x->status == ST_FAILED && x->stac_id)
            fprintf(stderr, "%s: failed: %s (STAC item %s): %s\n", TOOL, x->output, x->stac_id,
                    x->error);
        else if (x->status == ST_FAILED)
            fprintf(stderr, "%s: failed: %s (line %d): %s\n", TOOL, x->output, x->line, x->error);
        if (!quiet) {
            char eta[64] = "", px[96] = "";
            const int left = it.n - finished;
            const double par = jobs < left ? jobs : left;
            if (left && px_ok > 0 && sec_ok > 0 && px_all > px_fin) {
                /* the pixels left at the rate of the items done */
                char t[32];
                fmt_time((px_all - px_fin) / (px_ok / sec_ok) / par, t, sizeof t);
                snprintf(eta, sizeof eta, "; about %s left", t);
            } else if (left && ran) { /* no pixel rate yet: the mean item time */
                char t[32];
                fmt_time(busy / ran * left / par, t, sizeof t);
                snprintf(eta, sizeof eta, "; about %s left", t);
            }
            if (px_all > 0)
                snprintf(px, sizeof px, "; %.3g of %.3g Mpx (%.0f %%)", px_fin / 1e6, px_all / 1e6,
                         100 * px_fin / px_all);
            fprintf(stderr, "%s: [%d/%d] %s %s (%.1f s); %d ok, %d skipped, %d failed%s%s\n",
                    TOOL, finished, it.n, status_name[x->status], x->output, x->seconds,
                    count[ST_OK], count[ST_SKIPPED], count[ST_FAILED], px, eta);
        }
    }
    for (int i = 0; i < it.n; i++)
        if (it.v[i].status == ST_PENDING) it.v[i].status = ST_NOT_RUN, count[ST_NOT_RUN]++;
    const double total = mm_now_seconds() - t_start;
    if (!quiet) {
        fprintf(stderr, "%-8s %9s  %s\n", "status", "seconds", "output (error)");
        for (int i = 0; i < it.n; i++) {
            const item *x = &it.v[i];
            fprintf(stderr, "%-8s %9.1f  %s%s%s%s\n", status_name[x->status], x->seconds, x->output,
                    x->status == ST_FAILED ? " (" : "", x->status == ST_FAILED ? x->error : "",
                    x->status == ST_FAILED ? ")" : "");
        }
        char t[32];
        fmt_time(total, t, sizeof t);
        fprintf(stderr, "%s: %d items: %d done, %d skipped (up to date), %d failed%s in %s\n",
                TOOL, it.n, count[ST_OK], count[ST_SKIPPED], count[ST_FAILED],
                count[ST_NOT_RUN] ? ", the rest not run (interrupted)" : "", t);
    }
    rc = count[ST_FAILED] || count[ST_NOT_RUN] ? 1 : 0;
    if (report && write_report(report, manifest, &it, total, count)) rc = 1;
    if (cmd.stac && write_catalog(&cmd, manifest, &it, quiet)) rc = 1;
    if (g_interrupted) {
        fprintf(stderr, "%s: interrupted; %d item%s not run\n", TOOL, count[ST_NOT_RUN],
                count[ST_NOT_RUN] == 1 ? "" : "s");
        rc = 130;
    }
out:
    for (int i = 0; i < it.n; i++) {
        item *x = &it.v[i];
        free(x->input), free(x->output), free(x->task), free(x->error);
        free(x->stac_id), free(x->asset), free(x->src_href);
        cJSON_Delete(x->src_item);
        CSLDestroy(x->args);
        CSLDestroy(x->warnings);
    }
    free(it.v);
    mm_translate_cmd_free(&cmd);
    free(stac_catalog);
    free(orig);
    return rc;
}
