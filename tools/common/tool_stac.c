/* STAC Items and Catalogs (tool_stac.h). */
#define _GNU_SOURCE /* realpath, timegm */
#include "tool_stac.h"

#include <cjson/cJSON.h>
#include <cpl_conv.h>
#include <cpl_string.h>
#include <errno.h>
#include <gdal.h>
#include <ogr_srs_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mm.h"
#include "part_file.h"

#define STAC_PROJ_EXT "https://stac-extensions.github.io/projection/v1.1.0/schema.json"
#define DENSIFY 16 /* points per footprint edge: the edges of a projected grid curve in WGS 84 */

char *mm_tool_stac_path(const char *dst) {
    char *p = malloc(strlen(dst) + 12);
    if (p) sprintf(p, "%s.stac.json", dst);
    return p;
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* A date or date-time as sources state it ("2020-12-04", "2020-12-04T16:20:31.5Z",
 * "2020:12:04 16:20:31" as TIFFTAG_DATETIME, "2020-12-04 16:20:31") in RFC 3339 UTC; 0 when it is
 * none of them. A time without a zone is taken as UTC. */
static int rfc3339(const char *v, char *out, size_t n) {
    int y, mo, d, h = 0, mi = 0, s = 0, k = 0;
    char sep1, sep2;
    if (!v || sscanf(v, "%4d%c%2d%c%2d%n", &y, &sep1, &mo, &sep2, &d, &k) != 5) return 0;
    if (!((sep1 == '-' && sep2 == '-') || (sep1 == ':' && sep2 == ':'))) return 0;
    const char *r = v + k;
    if (*r == 'T' || *r == ' ') {
        int k2 = 0;
        if (sscanf(r + 1, "%2d:%2d:%2d%n", &h, &mi, &s, &k2) != 3) return 0;
        r += 1 + k2;
        if (*r == '.')
            for (r++; *r >= '0' && *r <= '9'; r++) {
            }
        if (*r == 'Z' || *r == 'z') r++;
        else if (!strncmp(r, "+00:00", 6)) r += 6;
    }
    while (*r == ' ') r++;
    if (*r || y < 1 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 ||
        mi < 0 || mi > 59 || s < 0 || s > 60)
        return 0;
    char t[96];
    snprintf(t, sizeof t, "%04d-%02d-%02dT%02d:%02d:%02dZ", y, mo, d, h, mi, s);
    if (strlen(t) >= n) return 0;
    memcpy(out, t, strlen(t) + 1);
    return 1;
}

/* The STAC item beside a source (SRC.stac.json, as the tools write it, or SRC-without-extension
 * .json), parsed, or NULL. *path receives its name (malloc'd). */
static cJSON *source_item(const char *src, char **path) {
    const char *b = base_name(src), *dot = strrchr(b, '.');
    char *cand[2] = {mm_tool_stac_path(src), NULL};
    if (dot && dot != b && asprintf(&cand[1], "%.*s.json", (int)(dot - src), src) < 0)
        cand[1] = NULL;
    cJSON *found = NULL;
    for (int i = 0; i < 2 && !found; i++) {
        if (!cand[i]) continue;
        FILE *f = fopen(cand[i], "rb");
        if (!f) continue;
        char *text = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&text, &len);
        char buf[65536];
        size_t r;
        while (m && (r = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, r, m);
        fclose(f);
        if (m) fclose(m);
        cJSON *j = text ? cJSON_Parse(text) : NULL;
        free(text);
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
        if (cJSON_IsString(type) && !strcmp(type->valuestring, "Feature")) {
            found = j;
            *path = realpath(cand[i], NULL);
            if (!*path) *path = strdup(cand[i]);
        } else {
            cJSON_Delete(j);
        }
    }
    free(cand[0]), free(cand[1]);
    return found;
}

/* The acquisition time of the first source into props: datetime (or start/end_datetime and a
 * null datetime, as the STAC spec asks for a range), and metaearth:datetime_source saying where
 * it came from. */
static void source_datetime(cJSON *props, GDALDatasetH src, const cJSON *item,
                            const char *item_path, const char *now) {
    char a[40], b[40];
    if (item) { /* the source's own STAC item */
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(item, "properties");
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(p, "datetime");
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(p, "start_datetime");
        const cJSON *en = cJSON_GetObjectItemCaseSensitive(p, "end_datetime");
        if (cJSON_IsString(dt) || (cJSON_IsString(st) && cJSON_IsString(en))) {
            if (cJSON_IsString(dt))
                cJSON_AddStringToObject(props, "datetime", dt->valuestring);
            else
                cJSON_AddNullToObject(props, "datetime");
            if (cJSON_IsString(st) && cJSON_IsString(en)) {
                cJSON_AddStringToObject(props, "start_datetime", st->valuestring);
                cJSON_AddStringToObject(props, "end_datetime", en->valuestring);
            }
            char *w = NULL;
            if (asprintf(&w, "the source's STAC item %s", item_path) >= 0)
                cJSON_AddStringToObject(props, "metaearth:datetime_source", w);
            free(w);
            return;
        }
    }
    /* the source's metadata (dataset, then its first band), acquisition items first */
    GDALRasterBandH b1 = src && GDALGetRasterCount(src) > 0 ? GDALGetRasterBand(src, 1) : NULL;
    static const char *const range[][2] = {{"ACQUISITION_START_TIME", "ACQUISITION_STOP_TIME"},
                                           {"START_DATETIME", "END_DATETIME"}};
    static const char *const single[] = {"DATETIME",         "ACQUISITION_DATETIME",
                                         "ACQUISITION_DATE", "ACQUISITION_TIME",
                                         "SENSING_TIME",     "SENSING_DATE",
                                         "TIFFTAG_DATETIME"};
    for (int on = 0; on < 2; on++) {
        GDALMajorObjectH o = on ? (GDALMajorObjectH)b1 : (GDALMajorObjectH)src;
        if (!o) continue;
        for (size_t i = 0; i < sizeof range / sizeof *range; i++)
            if (rfc3339(GDALGetMetadataItem(o, range[i][0], NULL), a, sizeof a) &&
                rfc3339(GDALGetMetadataItem(o, range[i][1], NULL), b, sizeof b)) {
                cJSON_AddNullToObject(props, "datetime");
                cJSON_AddStringToObject(props, "start_datetime", a);
                cJSON_AddStringToObject(props, "end_datetime", b);
                cJSON_AddStringToObject(
                    props, "metaearth:datetime_source",
                    CPLSPrintf("the source's %s and %s metadata items", range[i][0], range[i][1]));
                return;
            }
        for (size_t i = 0; i < sizeof single / sizeof *single; i++)
            if (rfc3339(GDALGetMetadataItem(o, single[i], NULL), a, sizeof a)) {
                cJSON_AddStringToObject(props, "datetime", a);
                cJSON_AddStringToObject(props, "metaearth:datetime_source",
                                        CPLSPrintf("the source's %s metadata item%s", single[i],
                                                   !strcmp(single[i], "TIFFTAG_DATETIME")
                                                       ? " (the file's date, which may be later "
                                                         "than the acquisition)"
                                                       : ""));
                return;
            }
    }
    /* none: STAC needs a datetime; the processing time, and say so */
    cJSON_AddStringToObject(props, "datetime", now);
    cJSON_AddStringToObject(props, "metaearth:datetime_source",
                            "processing time: the source states no acquisition time");
}

/* The footprint of ds (geotransform and CRS) in WGS 84 into item: geometry (a counter-clockwise
 * ring, each edge densified) and bbox; the projection fields into props. A raster without a
 * geotransform or a CRS gets a null geometry and proj:epsg null. */
static int footprint(GDALDatasetH ds, cJSON *item, cJSON *props, char *err, size_t errlen) {
    const int W = GDALGetRasterXSize(ds), H = GDALGetRasterYSize(ds);
    double gt[6];
    const int has_gt = GDALGetGeoTransform(ds, gt) == CE_None;
    OGRSpatialReferenceH srs = GDALGetSpatialRef(ds);
    cJSON *shape = cJSON_AddArrayToObject(props, "proj:shape");
    cJSON_AddItemToArray(shape, cJSON_CreateNumber(H));
    cJSON_AddItemToArray(shape, cJSON_CreateNumber(W));
    if (has_gt) { /* STAC's (rasterio's affine) order: a b c d e f, then 0 0 1 */
        const double t[9] = {gt[1], gt[2], gt[0], gt[4], gt[5], gt[3], 0, 0, 1};
        cJSON_AddItemToObject(props, "proj:transform", cJSON_CreateDoubleArray(t, 9));
    }
    if (!srs) {
        cJSON_AddNullToObject(props, "proj:epsg");
        cJSON_AddNullToObject(item, "geometry");
        return 0;
    }
    const char *auth = OSRGetAuthorityName(srs, NULL), *code = OSRGetAuthorityCode(srs, NULL);
    int epsg = auth && code && EQUAL(auth, "EPSG") ? atoi(code) : 0;
    if (!epsg) { /* a CRS read from a file without its code (e.g. a WKT1 ESRI string) */
        OGRSpatialReferenceH c = OSRClone(srs);
        if (c && OSRAutoIdentifyEPSG(c) == OGRERR_NONE) {
            auth = OSRGetAuthorityName(c, NULL), code = OSRGetAuthorityCode(c, NULL);
            epsg = auth && code && EQUAL(auth, "EPSG") ? atoi(code) : 0;
        }
        OSRDestroySpatialReference(c);
    }
    if (epsg > 0)
        cJSON_AddNumberToObject(props, "proj:epsg", epsg);
    else
        cJSON_AddNullToObject(props, "proj:epsg");
    char *wkt = NULL;
    const char *const wopt[] = {"FORMAT=WKT2_2019", NULL};
    if (OSRExportToWktEx(srs, &wkt, wopt) == OGRERR_NONE && wkt)
        cJSON_AddStringToObject(props, "proj:wkt2", wkt);
    CPLFree(wkt);
    if (!has_gt) {
        cJSON_AddNullToObject(item, "geometry");
        return 0;
    }
    OGRSpatialReferenceH wgs = OSRNewSpatialReference(NULL);
    OSRSetWellKnownGeogCS(wgs, "WGS84");
    OSRSetAxisMappingStrategy(wgs, OAMS_TRADITIONAL_GIS_ORDER); /* longitude, latitude */
    OGRSpatialReferenceH from = OSRClone(srs);
    OSRSetAxisMappingStrategy(from, OAMS_TRADITIONAL_GIS_ORDER); /* as the geotransform's x, y */
    CPLPushErrorHandler(CPLQuietErrorHandler);
    OGRCoordinateTransformationH ct = OCTNewCoordinateTransformation(from, wgs);
    CPLPopErrorHandler();
    int rc = 0;
    enum { N = 4 * DENSIFY + 1 };
    double x[N], y[N];
    /* pixel corners (0,0) (0,H) (W,H) (W,0): counter-clockwise on a north-up grid, as GeoJSON
       (RFC 7946) asks of an exterior ring */
    const double cx[5] = {0, 0, W, W, 0}, cy[5] = {0, H, H, 0, 0};
    for (int e = 0, k = 0; e < 4; e++)
        for (int i = 0; i < DENSIFY; i++, k++) {
            const double f = (double)i / DENSIFY;
            const double px = cx[e] + f * (cx[e + 1] - cx[e]), py = cy[e] + f * (cy[e + 1] - cy[e]);
            x[k] = gt[0] + px * gt[1] + py * gt[2];
            y[k] = gt[3] + px * gt[4] + py * gt[5];
        }
    x[N - 1] = x[0], y[N - 1] = y[0];
    int ok[N];
    if (!ct || !OCTTransformEx(ct, N, x, y, NULL, ok)) {
        rc = -1;
        snprintf(err, errlen, "cannot transform the footprint to WGS 84: %s",
                 *CPLGetLastErrorMsg() ? CPLGetLastErrorMsg() : "PROJ gave no reason");
    } else {
        for (int k = 0; k < N && !rc; k++)
            if (!ok[k]) {
                rc = -1;
                snprintf(err, errlen, "a corner of the footprint has no WGS 84 coordinates");
            }
    }
    if (!rc) {
        double bb[4] = {x[0], y[0], x[0], y[0]};
        cJSON *geom = cJSON_AddObjectToObject(item, "geometry");
        cJSON_AddStringToObject(geom, "type", "Polygon");
        cJSON *rings = cJSON_AddArrayToObject(geom, "coordinates");
        cJSON *ring = cJSON_CreateArray();
        cJSON_AddItemToArray(rings, ring);
        for (int k = 0; k < N; k++) {
            const double p[2] = {x[k], y[k]};
            cJSON_AddItemToArray(ring, cJSON_CreateDoubleArray(p, 2));
            if (x[k] < bb[0]) bb[0] = x[k];
            if (y[k] < bb[1]) bb[1] = y[k];
            if (x[k] > bb[2]) bb[2] = x[k];
            if (y[k] > bb[3]) bb[3] = y[k];
        }
        cJSON_AddItemToObject(item, "bbox", cJSON_CreateDoubleArray(bb, 4));
    }
    if (ct) OCTDestroyCoordinateTransformation(ct);
    OSRDestroySpatialReference(from);
    OSRDestroySpatialReference(wgs);
    return rc;
}

/* The media type of a raster in its format (STAC's best-practice types). */
static const char *media_type(GDALDatasetH ds) {
    const char *d = GDALGetDriverShortName(GDALGetDatasetDriver(ds));
    const char *layout = GDALGetMetadataItem(ds, "LAYOUT", "IMAGE_STRUCTURE");
    if (EQUAL(d, "GTiff"))
        return layout && EQUAL(layout, "COG")
                   ? "image/tiff; application=geotiff; profile=cloud-optimized"
                   : "image/tiff; application=geotiff";
    if (EQUAL(d, "COG")) return "image/tiff; application=geotiff; profile=cloud-optimized";
    if (EQUAL(d, "PNG")) return "image/png";
    if (EQUAL(d, "JPEG")) return "image/jpeg";
    if (EQUAL(d, "JP2OpenJPEG")) return "image/jp2";
    return GDALGetMetadataItem(GDALGetDatasetDriver(ds), GDAL_DMD_MIMETYPE, NULL);
}

static cJSON *asset(const char *href, GDALDatasetH ds, const char *title, const char *role) {
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "href", href);
    const char *t = ds ? media_type(ds) : NULL;
    if (t) cJSON_AddStringToObject(a, "type", t);
    cJSON_AddStringToObject(a, "title", title);
    cJSON *roles = cJSON_AddArrayToObject(a, "roles");
    cJSON_AddItemToArray(roles, cJSON_CreateString("data"));
    if (role) cJSON_AddItemToArray(roles, cJSON_CreateString(role));
    return a;
}

/* An integer item of the output's metadata as a JSON number (when it is one). */
static void md_number(cJSON *props, const char *key, char **md, const char *item) {
    const char *v = CSLFetchNameValue(md, item);
    char *end;
    if (!v) return;
    const double d = strtod(v, &end);
    if (end != v && !*end) cJSON_AddNumberToObject(props, key, d);
}

static int write_json(const char *tool, const char *path, cJSON *j) {
    const int bad = mm_part_write_json(path, j);
    if (bad) fprintf(stderr, "%s: cannot write '%s': %s\n", tool, path, strerror(errno));
    return bad ? -1 : 0;
}

int mm_tool_stac_item(const char *tool, const char *dst) {
    return mm_tool_stac_item_source(tool, dst, NULL, NULL);
}

int mm_tool_stac_item_source(const char *tool, const char *dst, const char *source_href,
                             const cJSON *source) {
    char err[1024];
    GDALAllRegister(); /* (mm_batch calls it for an up-to-date output, without a run) */
    GDALDatasetH ds = mmgeo_open_raster(dst, err, sizeof err);
    if (!ds) {
        fprintf(stderr, "%s: the STAC item: %s\n", tool, err);
        return -1;
    }
    char **md = GDALGetMetadata(ds, NULL);
    /* what made it, from the output's own items: MM_SOURCE (modality:path;...), MM_MODALITY, and
       MM_SPREAD (a sidecar's name, beside the output) */
    mmgeo_job jb, *job = &jb;
    mmgeo_job_init(job);
    char **srcs = CSLTokenizeString2(CSLFetchNameValueDef(md, "MM_SOURCE", ""), ";", 0);
    char *mods[MMGEO_MAX_IO] = {0};
    for (int i = 0; srcs && srcs[i] && job->n_sources < MMGEO_MAX_IO; i++) {
        char *colon = strchr(srcs[i], ':');
        if (!colon) continue;
        mods[job->n_sources] = CPLStrdup(srcs[i]);
        mods[job->n_sources][colon - srcs[i]] = 0;
        job->sources[job->n_sources].modality = mods[job->n_sources];
        job->sources[job->n_sources++].path = colon + 1;
    }
    job->n_targets = 1;
    job->targets[0].modality = CSLFetchNameValueDef(md, "MM_MODALITY", "");
    char spread_buf[4200];
    const char *spread = NULL, *sp = CSLFetchNameValue(md, "MM_SPREAD");
    if (sp && !strncmp(sp, "sidecar ", 8)) {
        const char *sl = strrchr(dst, '/');
        snprintf(spread_buf, sizeof spread_buf, "%.*s%s", sl ? (int)(sl - dst + 1) : 0, dst,
                 sp + 8);
        spread = spread_buf;
    }
    GDALDatasetH sds = spread ? mmgeo_open_raster(spread, err, sizeof err) : NULL;
    GDALDatasetH src = job->n_sources ? mmgeo_open_raster(job->sources[0].path, err, sizeof err)
                                      : NULL;
    char now[40];
    const time_t t = time(NULL);
    struct tm tmv;
    gmtime_r(&t, &tmv);
    strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", &tmv);

    cJSON *item = cJSON_CreateObject();
    cJSON_AddStringToObject(item, "type", "Feature");
    cJSON_AddStringToObject(item, "stac_version", "1.0.0");
    cJSON *ext = cJSON_AddArrayToObject(item, "stac_extensions");
    cJSON_AddItemToArray(ext, cJSON_CreateString(STAC_PROJ_EXT));
    const char *b = base_name(dst), *dot = strrchr(b, '.');
    char id[1024];
    snprintf(id, sizeof id, "%.*s", dot && dot != b ? (int)(dot - b) : (int)strlen(b), b);
    cJSON_AddStringToObject(item, "id", id);
    cJSON *props = cJSON_CreateObject();
    int rc = footprint(ds, item, props, err, sizeof err);
    if (rc) fprintf(stderr, "%s: the STAC item of '%s': %s\n", tool, dst, err);

    /* properties: when, what made it, and that it is synthetic */
    char *src_item_path = NULL;
    cJSON *src_item = NULL;
    if (source_href && source) { /* the Item the input came from (a STAC manifest) */
        src_item = cJSON_Duplicate(source, 1);
        src_item_path = strdup(source_href);
    } else if (job->n_sources)
        src_item = source_item(job->sources[0].path, &src_item_path);
    source_datetime(props, src, src_item, src_item_path, now);
    cJSON_AddStringToObject(props, "created", now);
    char task[512] = "";
    for (int i = 0; i < job->n_sources; i++)
        snprintf(task + strlen(task), sizeof task - strlen(task), "%s%s", i ? "+" : "",
                 job->sources[i].modality ? job->sources[i].modality : "");
    snprintf(task + strlen(task), sizeof task - strlen(task), ":%s", job->targets[0].modality);
    const char *mname = CSLFetchNameValue(md, "MM_MODEL_NAME");
    cJSON_AddStringToObject(
        props, "description",
        CPLSPrintf("Synthetic %s image generated from %s by the MetaEarth-MM model %s; not an "
                   "observation.",
                   job->targets[0].modality, job->n_sources ? task : "nothing",
                   mname ? mname : ""));
    cJSON_AddTrueToObject(props, "metaearth:synthetic");
    cJSON_AddStringToObject(props, "metaearth:task", task);
    static const char *const strs[][2] = {
        {"metaearth:model", "MM_MODEL_NAME"},   {"metaearth:model_file", "MM_MODEL"},
        {"metaearth:model_sha256", "MM_MODEL_SHA256"}, {"metaearth:seed", "MM_SEED"},
        {"metaearth:sampler", "MM_SAMPLER"},    {"metaearth:version", "MM_TOOL"},
        {"metaearth:tiling", "MM_TILING"},      {"metaearth:io_profile", "MM_IO_PROFILE"},
        {"metaearth:processor", "MM_PROCESSOR"}};
    for (size_t i = 0; i < sizeof strs / sizeof *strs; i++) {
        const char *v = CSLFetchNameValue(md, strs[i][1]);
        if (v) cJSON_AddStringToObject(props, strs[i][0], v); /* seeds are 64-bit: strings */
    }
    md_number(props, "metaearth:steps", md, "MM_STEPS");
    md_number(props, "metaearth:guidance", md, "MM_GUIDANCE");
    const char *ks = CSLFetchNameValue(md, "MM_SAMPLES");
    cJSON_AddNumberToObject(props, "metaearth:samples", ks ? atoi(ks) : 1);
    cJSON *settings = cJSON_AddObjectToObject(props, "metaearth:options");
    for (char **m = md; m && *m; m++) { /* every MM_ item the output carries */
        char *key = NULL;
        const char *v = CPLParseNameValue(*m, &key);
        if (key && v && !strncmp(key, "MM_", 3)) cJSON_AddStringToObject(settings, key, v);
        CPLFree(key);
    }
    cJSON_AddItemToObject(item, "properties", props);

    /* links: the sources (and the source's own item) */
    cJSON *links = cJSON_AddArrayToObject(item, "links");
    for (int i = 0; i < job->n_sources; i++) {
        char *abs = realpath(job->sources[i].path, NULL);
        cJSON *l = cJSON_CreateObject();
        cJSON_AddStringToObject(l, "rel", "derived_from");
        cJSON_AddStringToObject(l, "href", abs ? abs : job->sources[i].path);
        GDALDatasetH s = i == 0 ? src : NULL;
        const char *mt = s ? media_type(s) : NULL;
        if (mt) cJSON_AddStringToObject(l, "type", mt);
        cJSON_AddStringToObject(l, "title",
                                CPLSPrintf("source (%s)", job->sources[i].modality
                                                              ? job->sources[i].modality
                                                              : ""));
        cJSON_AddItemToArray(links, l);
        free(abs);
    }
    if (src_item) {
        cJSON *l = cJSON_CreateObject();
        cJSON_AddStringToObject(l, "rel", "derived_from");
        cJSON_AddStringToObject(l, "href", src_item_path);
        cJSON_AddStringToObject(l, "type", "application/geo+json");
        const cJSON *sid = cJSON_GetObjectItemCaseSensitive(src_item, "id");
        cJSON_AddStringToObject(l, "title",
                                cJSON_IsString(sid)
                                    ? CPLSPrintf("the source's STAC item %s", sid->valuestring)
                                    : "the source's STAC item");
        cJSON_AddItemToArray(links, l);
    }

    /* assets: beside the item, so relative */
    cJSON *assets = cJSON_AddObjectToObject(item, "assets");
    cJSON_AddItemToObject(assets, "data",
                          asset(CPLSPrintf("./%s", b), ds,
                                CPLSPrintf("synthetic %s (%s)", job->targets[0].modality,
                                           ks ? "mean of the samples" : "one sample"),
                                NULL));
    if (spread)
        cJSON_AddItemToObject(assets, "spread",
                              asset(CPLSPrintf("./%s", base_name(spread)), sds,
                                    "spread: per-band standard deviation over the samples",
                                    "uncertainty"));

    if (!rc) {
        char *path = mm_tool_stac_path(dst);
        rc = path ? write_json(tool, path, item) : -1;
        free(path);
    }
    cJSON_Delete(item);
    cJSON_Delete(src_item);
    free(src_item_path);
    if (src) GDALClose(src);
    if (sds) GDALClose(sds);
    GDALClose(ds);
    CSLDestroy(srcs);
    for (int i = 0; i < MMGEO_MAX_IO; i++) CPLFree(mods[i]);
    return rc;
}

int mm_tool_stac_catalog(const char *tool, const char *path, const char *id,
                         const char *description, const char *const *items, int n) {
    char dir[4096];
    const char *slash = strrchr(path, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
    char *adir = realpath(dir, NULL);
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "type", "Catalog");
    cJSON_AddStringToObject(c, "stac_version", "1.0.0");
    cJSON_AddStringToObject(c, "id", id);
    cJSON_AddStringToObject(c, "description", description);
    cJSON *links = cJSON_AddArrayToObject(c, "links");
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "rel", "root");
    cJSON_AddStringToObject(root, "href", CPLSPrintf("./%s", base_name(path)));
    cJSON_AddStringToObject(root, "type", "application/json");
    cJSON_AddItemToArray(links, root);
    for (int i = 0; i < n; i++) {
        char *abs = realpath(items[i], NULL);
        const char *href = abs ? abs : items[i];
        const size_t dl = adir ? strlen(adir) : 0;
        char rel[4200];
        if (adir && !strncmp(href, adir, dl) && href[dl] == '/')
            snprintf(rel, sizeof rel, ".%s", href + dl); /* under the catalog's folder */
        else
            snprintf(rel, sizeof rel, "%s", href);
        cJSON *l = cJSON_CreateObject();
        cJSON_AddStringToObject(l, "rel", "item");
        cJSON_AddStringToObject(l, "href", rel);
        cJSON_AddStringToObject(l, "type", "application/geo+json");
        cJSON_AddItemToArray(links, l);
        free(abs);
    }
    free(adir);
    const int rc = write_json(tool, path, c);
    cJSON_Delete(c);
    return rc;
}
