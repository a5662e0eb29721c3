/* A run: open the sources, cut the window grid, process, blend, write the targets. */
#define _GNU_SOURCE /* VSIStatBufL is struct stat64 */
#include <cpl_conv.h>
#include <cpl_string.h>
#include <gdal.h>
#include <math.h>
#include <ogr_srs_api.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "internal.h"
#include "pipeline.h"

void mmgeo_job_init(mmgeo_job *job) {
    memset(job, 0, sizeof *job);
    job->overlap = -1; /* a quarter of the window */
    job->batch = 4;
}

typedef mmgeo_src source;

enum { OUT_PLAIN = 0, OUT_NODATA, OUT_MASK };

typedef struct {
    GDALDriverH drv; /* the requested format */
    int stage;       /* written to a GTiff stage file, then CreateCopy'd */
    GDALDatasetH ds; /* the dataset written (stage or temporary) */
    char tmp[4096];  /* temporary name in the format */
    char stage_path[4096];
    GDALDataType type;
    int channels;
    int mode;
    double nodata;
    float *acc;
} target;

static void warnf(const mmgeo_job *job, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warnf(const mmgeo_job *job, const char *fmt, ...) {
    if (!job->warn) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    job->warn(job->warn_user, msg);
}

static const char *gdal_msg(void) {
    const char *m = CPLGetLastErrorMsg();
    return m && *m ? m : "GDAL gave no reason";
}

/* Percentile values of a band (over the whole raster, so independent of the processed extent). */
static int band_percentiles(GDALRasterBandH b, double plo, double phi, double *lo, double *hi,
                            char *err, size_t errlen) {
    double mm[2];
    if (GDALComputeRasterMinMax(b, TRUE, mm) != CE_None)
        return mmgeo_fail(err, errlen, "cannot compute the band statistics: %s", gdal_msg());
    enum { NB = 4096 };
    GUIntBig *h = calloc(NB, sizeof *h);
    if (!h) return mmgeo_fail(err, errlen, "out of memory");
    const double a = mm[0] - 0.5 * (mm[1] - mm[0]) / NB - 1e-9;
    const double z = mm[1] + 0.5 * (mm[1] - mm[0]) / NB + 1e-9;
    if (GDALGetRasterHistogramEx(b, a, z, NB, h, FALSE, TRUE, NULL, NULL) != CE_None) {
        free(h);
        return mmgeo_fail(err, errlen, "cannot compute the band histogram: %s", gdal_msg());
    }
    GUIntBig total = 0;
    for (int i = 0; i < NB; i++)
        total += h[i];
    const double width = (z - a) / NB;
    double q[2] = {plo, phi}, out[2] = {mm[0], mm[1]};
    for (int k = 0; k < 2 && total; k++) {
        const double want = q[k] / 100.0 * (double)total;
        GUIntBig cum = 0;
        for (int i = 0; i < NB; i++) {
            cum += h[i];
            if ((double)cum >= want) {
                out[k] = a + (i + 0.5) * width;
                break;
            }
        }
    }
    free(h);
    *lo = out[0], *hi = out[1];
    return 0;
}

GDALDatasetH mmgeo_open_raster(const char *path, char *err, size_t errlen) {
    CPLErrorReset();
    CPLPushErrorHandler(CPLQuietErrorHandler);
    GDALDatasetH ds = GDALOpenEx(path, GDAL_OF_RASTER | GDAL_OF_READONLY | GDAL_OF_VERBOSE_ERROR,
                                 NULL, NULL, NULL);
    CPLPopErrorHandler();
    if (ds) return ds;
    struct stat st;
    const char *m = CPLGetLastErrorMsg();
    if (path && !STARTS_WITH(path, "/vsi") && !strchr(path, ':') && stat(path, &st) != 0)
        mmgeo_fail(err, errlen, "cannot open '%s': %s", path, strerror(errno));
    else if (path && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        mmgeo_fail(err, errlen, "cannot open '%s' as a raster: it is a directory", path);
    else if (m && *m)
        mmgeo_fail(err, errlen, "cannot open '%s' as a raster: %s", path, m);
    else
        mmgeo_fail(err, errlen, "cannot open '%s' as a raster: no GDAL driver reads it", path);
    return NULL;
}

int mmgeo_open_source(const mmgeo_source *s, int channels, source *src, char *err, size_t errlen) {
    src->ds = mmgeo_open_raster(s->path, err, errlen);
    if (!src->ds) return MMGEO_ERROR;
    const int nfile = GDALGetRasterCount(src->ds);
    int bands[MMGEO_MAX_BANDS], nb = s->n_bands, alpha = 0;
    if (nb > 0) {
        memcpy(bands, s->bands, sizeof(int) * (size_t)nb);
        for (int i = 0; i < nb; i++)
            if (bands[i] < 1 || bands[i] > nfile)
                return mmgeo_fail(err, errlen, "'%s' has %d band%s; band %d does not exist",
                                  s->path, nfile, nfile == 1 ? "" : "s", bands[i]);
    } else {
        nb = nfile;
        /* an alpha band after the modality's channels is a mask, not data */
        if (nfile == channels + 1 &&
            GDALGetRasterColorInterpretation(GDALGetRasterBand(src->ds, nfile)) == GCI_AlphaBand)
            nb = channels, alpha = nfile;
        if (nb > MMGEO_MAX_BANDS) nb = MMGEO_MAX_BANDS + 1; /* reported below */
        for (int i = 0; i < nb && i < MMGEO_MAX_BANDS; i++)
            bands[i] = i + 1;
    }
    if (nb != channels)
        return mmgeo_fail(err, errlen,
                          "'%s' has %d band%s but modality '%s' needs %d; choose the bands with "
                          "-b, or name the modality with -s",
                          s->path, nb > MMGEO_MAX_BANDS ? nfile : nb, nb == 1 ? "" : "s",
                          s->modality, channels);
    src->nb = nb;
    src->profile = &s->profile;
    int per_dataset_read = 0;
    for (int i = 0; i < nb; i++) {
        src->band[i] = GDALGetRasterBand(src->ds, bands[i]);
        const GDALDataType dt = GDALGetRasterDataType(src->band[i]);
        if (GDALDataTypeIsComplex(dt)) src->complex = 1;
        const int flags = GDALGetMaskFlags(src->band[i]);
        if (!(flags & GMF_ALL_VALID) && !((flags & GMF_PER_DATASET) && per_dataset_read)) {
            src->mask[i] = GDALGetMaskBand(src->band[i]);
            if (flags & GMF_PER_DATASET) per_dataset_read = 1;
        } else if (alpha && i == 0) { /* GDAL masks with 8- and 16-bit alpha bands only */
            src->mask[0] = GDALGetRasterBand(src->ds, alpha);
        }
        if (s->profile.kind == MMGEO_IO_PERCENTILE &&
            band_percentiles(src->band[i], s->profile.lo, s->profile.hi, &src->plo[i], &src->phi[i],
                             err, errlen))
            return MMGEO_ERROR;
    }
    if (src->complex &&
        !(s->profile.kind == MMGEO_IO_SAR && s->profile.sar_input == MMGEO_SAR_COMPLEX))
        return mmgeo_fail(err, errlen,
                          "'%s' holds complex data, which only the SAR profile 'complex' reads "
                          "(modality '%s')",
                          s->path, s->modality);
    return 0;
}

/* Reads window (ox, oy) of a source into tile (C x S x S, [-1, 1]) and ANDs its validity into
 * valid (S x S). Pixels outside the raster replicate the edge. */
int mmgeo_read_window(mmgeo_src *src, int W, int H, int S, int ox, int oy, float *tile,
                      uint8_t *valid, double *raw, uint8_t *mraw, char *err, size_t errlen) {
    const int rw = ox + S <= W ? S : W - ox, rh = oy + S <= H ? S : H - oy;
    const size_t plane = (size_t)S * S;
    uint8_t *mask_now = NULL;
    for (int b = 0; b < src->nb; b++) {
        const int cx = src->complex ? 2 : 1;
        if (GDALRasterIO(src->band[b], GF_Read, ox, oy, rw, rh, raw, rw, rh,
                         src->complex ? GDT_CFloat64 : GDT_Float64, 0, 0) != CE_None)
            return mmgeo_fail(err, errlen, "cannot read %s: %s", GDALGetDescription(src->ds),
                              gdal_msg());
        if (src->mask[b]) {
            if (GDALRasterIO(src->mask[b], GF_Read, ox, oy, rw, rh, mraw, rw, rh, GDT_Byte, 0, 0) !=
                CE_None)
                return mmgeo_fail(err, errlen, "cannot read the mask of %s: %s",
                                  GDALGetDescription(src->ds), gdal_msg());
            mask_now = mraw;
        }
        float *t = tile + (size_t)b * plane;
        for (int py = 0; py < S; py++) {
            const int sy = py < rh ? py : rh - 1;
            for (int px = 0; px < S; px++) {
                const int sx = px < rw ? px : rw - 1;
                const size_t k = (size_t)sy * rw + sx;
                const double re = raw[k * cx], im = src->complex ? raw[k * cx + 1] : 0;
                int ok = re == re && im == im && (!mask_now || mask_now[k]) &&
                         mmgeo_profile_valid(src->profile, re);
                if (!ok) valid[(size_t)py * S + px] = 0;
                t[(size_t)py * S + px] =
                    ok ? mmgeo_profile_input(src->profile, re, im, src->plo[b], src->phi[b]) : 0;
            }
        }
    }
    return 0;
}

#define representable mmgeo_type_representable

static GDALDriverH pick_driver(const char *format, const char *path, char *err, size_t errlen) {
    if (format) {
        GDALDriverH d = GDALGetDriverByName(format);
        if (!d) return mmgeo_fail(err, errlen, "unknown output format '%s'", format), NULL;
        return d;
    }
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    if (!dot || !dot[1] || EQUAL(dot + 1, "tif") || EQUAL(dot + 1, "tiff"))
        return GDALGetDriverByName("GTiff");
    for (int i = 0; i < GDALGetDriverCount(); i++) {
        GDALDriverH d = GDALGetDriver(i);
        const char *ext = GDALGetMetadataItem(d, GDAL_DMD_EXTENSIONS, NULL);
        if (!GDALGetMetadataItem(d, GDAL_DCAP_RASTER, NULL) || !ext) continue;
        if (!GDALGetMetadataItem(d, GDAL_DCAP_CREATE, NULL) &&
            !GDALGetMetadataItem(d, GDAL_DCAP_CREATECOPY, NULL))
            continue;
        char **l = CSLTokenizeString2(ext, " ", 0);
        int hit = CSLFindString(l, dot + 1) >= 0;
        CSLDestroy(l);
        if (hit) return d;
    }
    return GDALGetDriverByName("GTiff");
}

/* ---- output safety -------------------------------------------------------------------------- */

/* The identity of a path: the file's device and inode; when it does not exist, its directory's
 * and its name. known 0: not a local file (compared as a string). */
typedef struct {
    int known, exists;
    dev_t dev;
    ino_t ino;
    mode_t mode;
    char name[1024];
} file_id;

static void split_path(const char *path, char *dir, size_t dn, const char **base) {
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(dir, dn, ".");
        *base = path;
    } else {
        snprintf(dir, dn, "%.*s", slash == path ? 1 : (int)(slash - path), path);
        *base = slash + 1;
    }
}

static void identify(const char *path, file_id *id) {
    memset(id, 0, sizeof *id);
    if (!path || !*path || STARTS_WITH(path, "/vsi")) return;
    struct stat st;
    if (stat(path, &st) == 0) {
        id->known = id->exists = 1;
        id->dev = st.st_dev, id->ino = st.st_ino, id->mode = st.st_mode;
        return;
    }
    if (errno != ENOENT) return;
    char dir[4096];
    const char *base;
    split_path(path, dir, sizeof dir, &base);
    if (!*base || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) return;
    id->known = 1;
    id->dev = st.st_dev, id->ino = st.st_ino;
    snprintf(id->name, sizeof id->name, "%s", base);
}

static int same_file(const file_id *a, const file_id *b, const char *pa, const char *pb) {
    if (!a->known || !b->known) return strcmp(pa, pb) == 0;
    return a->exists == b->exists && a->dev == b->dev && a->ino == b->ino &&
           strcmp(a->name, b->name) == 0;
}

static const char *kind_of(mode_t m) {
    return S_ISDIR(m)    ? "a directory"
           : S_ISFIFO(m) ? "a FIFO"
           : S_ISCHR(m)  ? "a character device"
           : S_ISBLK(m)  ? "a block device"
           : S_ISSOCK(m) ? "a socket"
                         : "not a regular file";
}

/* Whether process pid is gone (not merely someone else's). */
static int dead(long pid) {
    if (pid <= 0 || pid == (long)getpid()) return 0;
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

int mmgeo_remove_stale_temps(const char *path) {
    if (!path || !*path || STARTS_WITH(path, "/vsi")) return 0;
    char dir[4096], stem[1024];
    const char *base;
    split_path(path, dir, sizeof dir, &base);
    if (!*base) return 0;
    const char *dot = strrchr(base, '.');
    snprintf(stem, sizeof stem, "%.*s", dot && dot != base ? (int)(dot - base) : (int)strlen(base),
             base);
    /* the names run.c (temp_name) and resample.c (--gsd working and staged files) write */
    char pre[3][1100];
    snprintf(pre[0], sizeof pre[0], ".%s.mmtmp-", base);
    snprintf(pre[1], sizeof pre[1], ".%s.mmgsd-", base);
    snprintf(pre[2], sizeof pre[2], ".%s.mmgsd-", stem);
    DIR *d = opendir(dir);
    if (!d) return 0;
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        for (int k = 0; k < 3; k++) {
            const size_t n = strlen(pre[k]);
            if (strncmp(e->d_name, pre[k], n) != 0) continue;
            const char *p = e->d_name + n;
            char *end;
            const long pid = strtol(p, &end, 10);
            if (end == p || !dead(pid)) continue;
            char full[8200];
            snprintf(full, sizeof full, "%s/%s", dir, e->d_name);
            struct stat st;
            if (lstat(full, &st) == 0 && S_ISREG(st.st_mode) && unlink(full) == 0) removed++;
            break;
        }
    }
    closedir(d);
    return removed;
}

int mmgeo_check_targets(const mmgeo_job *job, char *err, size_t errlen) {
    const int ns = job->n_sources, nt = job->n_targets;
    file_id src[MMGEO_MAX_IO], tgt[MMGEO_MAX_IO];
    for (int i = 0; i < ns && i < MMGEO_MAX_IO; i++)
        identify(job->sources[i].path, &src[i]);
    for (int j = 0; j < nt && j < MMGEO_MAX_IO; j++) {
        const char *p = job->targets[j].path;
        if (!p || !*p) return mmgeo_fail(err, errlen, "a target has no file name");
        identify(p, &tgt[j]);
        if (tgt[j].exists && !S_ISREG(tgt[j].mode))
            return mmgeo_fail(err, errlen,
                              "the output '%s' is %s, not a regular file; it is not replaced "
                              "(name a file)",
                              p, kind_of(tgt[j].mode));
        for (int k = 0; k < j; k++)
            if (same_file(&tgt[k], &tgt[j], job->targets[k].path, p))
                return mmgeo_fail(err, errlen, "two targets are one file: '%s' and '%s'",
                                  job->targets[k].path, p);
        for (int i = 0; i < ns; i++)
            if (same_file(&src[i], &tgt[j], job->sources[i].path, p))
                return mmgeo_fail(err, errlen,
                                  "the output '%s' is the input '%s' (the same file); it would "
                                  "be replaced: name another output",
                                  p, job->sources[i].path);
    }
    for (int j = 0; j < nt && j < MMGEO_MAX_IO; j++)
        mmgeo_remove_stale_temps(job->targets[j].path);
    return 0;
}

static int is_true_false(const char *v) {
    static const char *const ok[] = {"YES", "NO", "TRUE", "FALSE", "ON", "OFF", "1", "0"};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        if (EQUAL(v, ok[i])) return 1;
    return 0;
}

int mmgeo_check_creation_options(GDALDriverH drv, char *const *co, char *err, size_t errlen) {
    if (!drv || !co || !*co) return 0;
    const char *xml = GDALGetDriverCreationOptionList(drv);
    if (!xml || !*xml) return 0;
    CPLXMLNode *root = CPLParseXMLString(xml);
    if (!root) return 0;
    const char *dn = GDALGetDriverShortName(drv);
    CPLXMLNode *list = CPLSearchXMLNode(root, "=CreationOptionList");
    int rc = 0;
    for (char *const *o = co; list && *o && !rc; o++) {
        char *key = NULL;
        const char *val = CPLParseNameValue(*o, &key);
        if (!key || !val) {
            rc = mmgeo_fail(err, errlen, "-co '%s' is not NAME=VALUE", *o);
            CPLFree(key);
            break;
        }
        CPLXMLNode *opt = NULL;
        for (CPLXMLNode *n = list->psChild; n && !opt; n = n->psNext) {
            if (n->eType != CXT_Element || !EQUAL(n->pszValue, "Option")) continue;
            const char *name = CPLGetXMLValue(n, "name", NULL);
            const char *alias = CPLGetXMLValue(n, "alias", NULL);
            if ((name && EQUAL(name, key)) || (alias && EQUAL(alias, key))) opt = n;
        }
        if (!opt) {
            rc = mmgeo_fail(err, errlen,
                            "unknown creation option %s for the format %s (its options: "
                            "gdalinfo --format %s)",
                            key, dn, dn);
        } else {
            const char *type = CPLGetXMLValue(opt, "type", "");
            if (EQUAL(type, "string-select")) {
                int hit = 0;
                char choices[1024] = "";
                for (CPLXMLNode *v = opt->psChild; v && !hit; v = v->psNext) {
                    if (v->eType != CXT_Element || !EQUAL(v->pszValue, "Value")) continue;
                    const char *txt = CPLGetXMLValue(v, "", "");
                    const char *alias = CPLGetXMLValue(v, "alias", NULL);
                    if (EQUAL(txt, val) || (alias && EQUAL(alias, val))) hit = 1;
                    const size_t l = strlen(choices);
                    snprintf(choices + l, sizeof choices - l, "%s%s", l ? ", " : "", txt);
                }
                if (!hit)
                    rc = mmgeo_fail(err, errlen,
                                    "the creation option %s=%s is not one the format %s takes "
                                    "(%s)",
                                    key, val, dn, choices);
            } else if (EQUAL(type, "boolean") && !is_true_false(val)) {
                rc = mmgeo_fail(err, errlen,
                                "the creation option %s=%s of the format %s is "
                                "not YES or NO",
                                key, val, dn);
            }
        }
        CPLFree(key);
    }
    CPLDestroyXMLNode(root);
    return rc;
}

int mmgeo_check_job_creation_options(const mmgeo_job *job, char *err, size_t errlen) {
    if (!job->create_options || !*job->create_options) return 0;
    for (int j = 0; j < job->n_targets && j < MMGEO_MAX_IO; j++) {
        GDALDriverH d = pick_driver(job->format, job->targets[j].path, err, errlen);
        if (!d) return MMGEO_ERROR;
        if (mmgeo_check_creation_options(d, job->create_options, err, errlen)) return MMGEO_ERROR;
    }
    return 0;
}

static void temp_name(char *out, size_t len, const char *path, const char *tag, const char *ext) {
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    const char *dot = strrchr(base, '.');
    if (!ext) ext = dot && dot != base ? dot : "";
    snprintf(out, len, "%.*s.%s.mmtmp-%ld%s%s", (int)(base - path), path, base, (long)getpid(), tag,
             ext);
}

static void remove_dataset(GDALDriverH drv, const char *path) {
    VSIStatBufL st;
    if (VSIStatL(path, &st) != 0) return;
    CPLPushErrorHandler(CPLQuietErrorHandler);
    if (GDALDeleteDataset(drv, path) != CE_None) VSIUnlink(path);
    CPLPopErrorHandler();
}

static char **default_options(GDALDriverH drv, const mmgeo_job *job, int channels,
                              GDALDataType type) {
    char **co = NULL;
    const char *name = GDALGetDriverShortName(drv);
    if (EQUAL(name, "GTiff")) {
        co = CSLSetNameValue(co, "TILED", "YES");
        co = CSLSetNameValue(co, "COMPRESS", "DEFLATE");
        co = CSLSetNameValue(co, "BIGTIFF", "IF_SAFER");
        if (channels == 3 && type == GDT_Byte) co = CSLSetNameValue(co, "PHOTOMETRIC", "RGB");
    } else if (EQUAL(name, "COG")) {
        co = CSLSetNameValue(co, "COMPRESS", "DEFLATE");
        co = CSLSetNameValue(co, "BIGTIFF", "IF_SAFER");
    }
    for (char **o = job->create_options; o && *o; o++) {
        char *key = NULL;
        const char *val = CPLParseNameValue(*o, &key);
        if (key && val) co = CSLSetNameValue(co, key, val);
        CPLFree(key);
    }
    return co;
}

GDALDriverH mmgeo_output_driver(const char *format, const char *path, char *err, size_t errlen) {
    return pick_driver(format, path, err, errlen);
}

char **mmgeo_output_options(GDALDriverH drv, char **co, int channels, GDALDataType type) {
    mmgeo_job j;
    memset(&j, 0, sizeof j);
    j.create_options = co;
    return default_options(drv, &j, channels, type);
}

static int create_target(const mmgeo_job *job, const mmgeo_target *t, target *o, source *s0, int x0,
                         int y0, int Wout, int Hout, int R, int src_mask, char *err,
                         size_t errlen) {
    o->drv = pick_driver(job->format, t->path, err, errlen);
    if (!o->drv) return MMGEO_ERROR;
    const int can_create = GDALGetMetadataItem(o->drv, GDAL_DCAP_CREATE, NULL) != NULL;
    if (!can_create && !GDALGetMetadataItem(o->drv, GDAL_DCAP_CREATECOPY, NULL))
        return mmgeo_fail(err, errlen, "GDAL cannot write the format %s",
                          GDALGetDriverShortName(o->drv));
    temp_name(o->tmp, sizeof o->tmp, t->path, "", NULL);
    GDALDriverH wdrv = o->drv;
    const char *wpath = o->tmp;
    if (!can_create) {
        o->stage = 1;
        wdrv = GDALGetDriverByName("GTiff");
        temp_name(o->stage_path, sizeof o->stage_path, t->path, "-stage", ".tif");
        wpath = o->stage_path;
    }
    char **co = default_options(wdrv, job, o->channels, o->type);
    if (o->stage) { /* the stage is tiled so the final copy reads it efficiently */
        char **c2 = default_options(wdrv, &(mmgeo_job){0}, o->channels, o->type);
        CSLDestroy(co);
        co = c2;
    }
    CPLErrorReset();
    CPLPushErrorHandler(CPLQuietErrorHandler);
    o->ds = GDALCreate(wdrv, wpath, Wout, Hout, o->channels, o->type, co);
    CPLPopErrorHandler();
    CSLDestroy(co);
    if (!o->ds)
        return mmgeo_fail(err, errlen, "cannot create '%s' (for '%s'): %s", wpath, t->path,
                          gdal_msg());

    /* georeferencing: geotransform (shifted to the processed window) or GCPs, CRS */
    double gt[6];
    if (!s0) { /* generation: the job's grid */
        double g[6];
        memcpy(g, job->grid.geotransform, sizeof g);
        GDALSetGeoTransform(o->ds, g);
        if (job->grid.srs) {
            OGRSpatialReferenceH srs = OSRNewSpatialReference(NULL);
            const int ok = OSRSetFromUserInput(srs, job->grid.srs) == OGRERR_NONE;
            if (ok) GDALSetSpatialRef(o->ds, srs);
            OSRDestroySpatialReference(srs);
            if (!ok) return mmgeo_fail(err, errlen, "cannot read the CRS '%s'", job->grid.srs);
        }
    } else if (GDALGetGeoTransform(s0->ds, gt) == CE_None) {
        double g2[6] = {gt[0] + x0 * gt[1] + y0 * gt[2], gt[1] * R, gt[2] * R,
                        gt[3] + x0 * gt[4] + y0 * gt[5], gt[4] * R, gt[5] * R};
        GDALSetGeoTransform(o->ds, g2);
        OGRSpatialReferenceH srs = GDALGetSpatialRef(s0->ds);
        if (srs) GDALSetSpatialRef(o->ds, srs);
    } else if (GDALGetGCPCount(s0->ds) > 0) {
        const int n = GDALGetGCPCount(s0->ds);
        GDAL_GCP *g = GDALDuplicateGCPs(n, GDALGetGCPs(s0->ds));
        for (int i = 0; i < n; i++)
            g[i].dfGCPPixel = (g[i].dfGCPPixel - x0) / R,
            g[i].dfGCPLine = (g[i].dfGCPLine - y0) / R;
        GDALSetGCPs2(o->ds, n, g, GDALGetGCPSpatialRef(s0->ds));
        GDALDeinitGCPs(n, g);
        CPLFree(g);
    }
    /* nodata: the source's, converted to the output type; else the source's mask */
    int has_nd = 0;
    double nd = s0 ? GDALGetRasterNoDataValue(s0->band[0], &has_nd) : 0;
    if (has_nd) {
        o->mode = OUT_NODATA;
        o->nodata = representable(o->type, nd) ? nd : 0;
        if (o->nodata != nd && !(nd != nd && o->nodata != o->nodata))
            warnf(job, "the nodata value %g of '%s' cannot be stored as %s; the output uses %g", nd,
                  GDALGetDescription(s0->ds), GDALGetDataTypeName(o->type), o->nodata);
        for (int c = 0; c < o->channels; c++)
            GDALSetRasterNoDataValue(GDALGetRasterBand(o->ds, c + 1), o->nodata);
    } else if (src_mask) {
        o->mode = OUT_MASK;
        if (GDALCreateDatasetMaskBand(o->ds, GMF_PER_DATASET) != CE_None)
            return mmgeo_fail(err, errlen, "cannot create the mask of '%s': %s", wpath, gdal_msg());
    }
    /* metadata: provenance */
    for (char **m = job->metadata; m && *m; m++) {
        char *key = NULL;
        const char *val = CPLParseNameValue(*m, &key);
        if (key && val) GDALSetMetadataItem(o->ds, key, val, NULL);
        CPLFree(key);
    }
    char desc[128];
    mmgeo_profile_describe(&t->profile, desc, sizeof desc);
    GDALSetMetadataItem(o->ds, "MM_MODALITY", t->modality, NULL);
    GDALSetMetadataItem(o->ds, "MM_IO_PROFILE", desc, NULL);
    if (t->profile.kind == MMGEO_IO_SAR && GDALDataTypeIsFloating(o->type)) {
        /* SAR written as sigma0 dB says so: read back without --sar-units */
        GDALSetMetadataItem(o->ds, "SAR_UNITS", "db", NULL);
        for (int c = 0; c < o->channels; c++)
            GDALSetRasterUnitType(GDALGetRasterBand(o->ds, c + 1), "dB");
    }
    mmgeo_spread_describe(o->ds, o->channels, t->spread_channels);
    return 0;
}

void mmgeo_spread_describe(GDALDatasetH ds, int channels, int spread) {
    if (spread <= 0 || spread > channels) return;
    const int c0 = channels - spread, of = spread == channels ? channels : c0;
    for (int c = c0; c < channels; c++) {
        GDALRasterBandH b = GDALGetRasterBand(ds, c + 1);
        char d[160];
        if (spread == channels) /* a sidecar: one spread per band of the output */
            snprintf(d, sizeof d, "spread of band %d: standard deviation over the samples", c + 1);
        else
            snprintf(d, sizeof d,
                     "spread: root mean square over bands 1-%d of the standard deviation over "
                     "the samples",
                     of);
        GDALSetDescription(b, d);
        GDALSetMetadataItem(b, "MM_SPREAD", "STDDEV", NULL);
        GDALSetMetadataItem(b, "MM_SPREAD_OF",
                            spread == channels ? CPLSPrintf("%d", c + 1) : CPLSPrintf("1-%d", of),
                            NULL);
    }
}

/* GDALClose returns void before GDAL 3.8: a failure shows as the last error. */
static int close_failed(GDALDatasetH ds) {
    CPLErrorReset();
    GDALClose(ds);
    return CPLGetLastErrorType() == CE_Failure || CPLGetLastErrorType() == CE_Fatal;
}

/* The progress of the final copy from the stage: only whether the job is interrupted (the bar
 * stays at its end). */
typedef struct {
    const mmgeo_job *job;
    int stopped;
} copy_watch;
static int CPL_STDCALL copy_progress(double f, const char *msg, void *arg) {
    copy_watch *w = arg;
    (void)f;
    if (w->job->progress && !w->job->progress(1.0, msg, w->job->progress_arg)) w->stopped = 1;
    return !w->stopped;
}

/* Closes the dataset written (and makes the final format from the stage) under its temporary
 * name; rename_target then moves it onto the target's name, once every target is written. */
static int finish_target(const mmgeo_job *job, const mmgeo_target *t, target *o, char *err,
                         size_t errlen) {
    CPLErrorReset();
    if (o->stage) {
        char **co = default_options(o->drv, job, o->channels, o->type);
        copy_watch w = {job, 0};
        CPLPushErrorHandler(CPLQuietErrorHandler);
        GDALDatasetH d = GDALCreateCopy(o->drv, o->tmp, o->ds, FALSE, co, copy_progress, &w);
        CPLPopErrorHandler();
        CSLDestroy(co);
        int bad = !d;
        if (d) bad |= close_failed(d);
        bad |= close_failed(o->ds);
        o->ds = NULL;
        remove_dataset(GDALGetDriverByName("GTiff"), o->stage_path);
        if (w.stopped) return mmgeo_fail(err, errlen, "interrupted"), MMGEO_INTERRUPTED;
        if (bad)
            return mmgeo_fail(err, errlen, "cannot write '%s' as %s: %s", t->path,
                              GDALGetDriverShortName(o->drv), gdal_msg());
    } else {
        int bad = close_failed(o->ds);
        o->ds = NULL;
        if (bad) return mmgeo_fail(err, errlen, "cannot write '%s': %s", t->path, gdal_msg());
    }
    return 0;
}

/* Renames the finished temporary file onto the target's name. */
static int rename_target(const mmgeo_target *t, target *o, char *err, size_t errlen) {
    char aux[4200], tmpaux[4200];
    snprintf(aux, sizeof aux, "%s.aux.xml", t->path);
    snprintf(tmpaux, sizeof tmpaux, "%s.aux.xml", o->tmp);
    VSIStatBufL st;
    if (VSIStatL(tmpaux, &st) != 0) VSIUnlink(aux); /* a stale side-car of an older file */
    CPLPushErrorHandler(CPLQuietErrorHandler);
    CPLErr e = GDALRenameDataset(o->drv, t->path, o->tmp);
    CPLPopErrorHandler();
    if (e != CE_None)
        return mmgeo_fail(err, errlen, "cannot rename '%s' to '%s': %s", o->tmp, t->path,
                          gdal_msg());
    o->tmp[0] = 0;
    return 0;
}

/* A target without nodata or mask meets its first invalid pixel (a NaN source pixel, say) at
 * output row `rows`: it gets its per-dataset mask now, valid over the rows written so far (they
 * had no invalid pixel), so that no invalid pixel is written as a valid one. */
static int add_mask_late(mmgeo_pipe *pipe, target *o, int rows, int Wout, char *err,
                         size_t errlen) {
    if (mmgeo_pipe_flush(pipe) != CE_None)
        return mmgeo_fail(err, errlen, "cannot write the output: %s", gdal_msg());
    CPLErrorReset();
    CPLPushErrorHandler(CPLQuietErrorHandler);
    const CPLErr e = GDALCreateDatasetMaskBand(o->ds, GMF_PER_DATASET);
    CPLPopErrorHandler();
    if (e != CE_None)
        return mmgeo_fail(err, errlen,
                          "the source has invalid pixels (NaN) and no nodata value, "
                          "and the output cannot get a mask: %s",
                          gdal_msg());
    GDALRasterBandH mb = GDALGetMaskBand(GDALGetRasterBand(o->ds, 1));
    uint8_t *ones = malloc((size_t)Wout);
    if (!ones) return mmgeo_fail(err, errlen, "out of memory");
    memset(ones, 255, (size_t)Wout);
    for (int y = 0; y < rows; y++)
        if (GDALRasterIO(mb, GF_Write, 0, y, Wout, 1, ones, Wout, 1, GDT_Byte, 0, 0) != CE_None) {
            free(ones);
            return mmgeo_fail(err, errlen, "cannot write the mask: %s", gdal_msg());
        }
    free(ones);
    o->mode = OUT_MASK;
    return 0;
}

int mmgeo_size_guard(const mmgeo_job *job, const char *what, double w, double h, double bytes,
                     char *err, size_t errlen) {
    if (job->force) return 0;
    const double maxpx = job->max_pixels > 0 ? job->max_pixels : MMGEO_DEFAULT_MAX_PIXELS;
    const long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    const double phys = pages > 0 && psz > 0 ? (double)pages * psz : 0;
    const double px = w * h;
    if (px <= maxpx && (!(phys > 0) || bytes <= phys)) return 0;
    char mem[256] = "";
    if (bytes > 0)
        snprintf(mem, sizeof mem, " and needs about %.0f MiB of memory (%.0f MiB physical)",
                 bytes / 1048576.0, phys / 1048576.0);
    return mmgeo_fail(err, errlen,
                      "the job is too large: the %s is %.0f x %.0f = %.4g pixels (limit %.4g, "
                      "--max-pixels)%s; give --force to run it anyway",
                      what, w, h, px, maxpx, mem);
}

int mmgeo_run(const mmgeo_job *job, const mmgeo_processor *proc, char *err, size_t errlen) {
    const int S = proc->window, ns = job->n_sources, nt = job->n_targets;
    if (ns != proc->n_sources || nt != proc->n_targets || ns < 0 || nt < 1 || ns > MMGEO_MAX_IO ||
        nt > MMGEO_MAX_IO || S < 1)
        return mmgeo_fail(err, errlen,
                          "the run has %d sources and %d targets, the processor "
                          "%d and %d (at least one target)",
                          ns, nt, proc->n_sources, proc->n_targets);
    const int A = job->align > 1 ? job->align : 1, R = job->out_scale > 1 ? job->out_scale : 1;
    const int O = job->overlap < 0 ? S / 4 / A * A : job->overlap;
    if (O >= S)
        return mmgeo_fail(err, errlen, "the overlap (%d) must be less than the window (%d)", O, S);
    if (S % A || O % A)
        return mmgeo_fail(err, errlen,
                          "the window (%d) and the overlap (%d) must be multiples of "
                          "%d here",
                          S, O, A);
    if (R > 1 && A != R)
        return mmgeo_fail(err, errlen, "a scaled output needs a grid aligned to the scale");
    const int So = S / R; /* target windows, in output cells */
    const int batch = job->batch > 0 ? job->batch : 1;
    /* before anything is read or written: the targets are not the sources (nor each other, nor
       devices), the creation options are the format's */
    if (mmgeo_check_targets(job, err, errlen) || mmgeo_check_job_creation_options(job, err, errlen))
        return MMGEO_ERROR;

    int rc = MMGEO_ERROR;
    source src[MMGEO_MAX_IO];
    target tgt[MMGEO_MAX_IO];
    memset(src, 0, sizeof src);
    memset(tgt, 0, sizeof tgt);
    int *ox = NULL, *oy = NULL, *oxo = NULL, *oyo = NULL;
    float *wsum = NULL, *srct[MMGEO_MAX_IO] = {0}, *dstt[MMGEO_MAX_IO] = {0}, *wx = NULL;
    uint8_t *valid = NULL, *tvalid = NULL, *mraw = NULL, *bad = NULL;
    long long nonfinite = 0;
    double *raw = NULL, *line = NULL;
    uint64_t *ids = NULL;
    int *slot_kx = NULL;
    mmgeo_pipe *pipe = NULL; /* pipeline.c: reads ahead and writes behind in threads */
    mmgeo_run_stats st = {0, 0, 0, 0, 0};

    for (int i = 0; i < ns; i++)
        if (mmgeo_open_source(&job->sources[i], proc->src_channels[i], &src[i], err, errlen))
            goto out;
    if (ns == 0 && (job->grid.width < 1 || job->grid.height < 1)) {
        mmgeo_fail(err, errlen, "a run without sources needs an output grid");
        goto out;
    }
    const int W = ns ? GDALGetRasterXSize(src[0].ds) : job->grid.width;
    const int H = ns ? GDALGetRasterYSize(src[0].ds) : job->grid.height;
    const int Wg = (W + R - 1) / R, Hg = (H + R - 1) / R; /* the output grid */
    int src_mask = 0;
    for (int i = 0; i < ns; i++) {
        if (GDALGetRasterXSize(src[i].ds) != W || GDALGetRasterYSize(src[i].ds) != H) {
            mmgeo_fail(err, errlen,
                       "'%s' is %dx%d pixels but '%s' is %dx%d; the sources must "
                       "share one grid",
                       job->sources[i].path, GDALGetRasterXSize(src[i].ds),
                       GDALGetRasterYSize(src[i].ds), job->sources[0].path, W, H);
            goto out;
        }
        for (int b = 0; b < src[i].nb; b++)
            src_mask |= src[i].mask[b] != NULL;
        double g0[6], g1[6];
        if (i > 0 && GDALGetGeoTransform(src[0].ds, g0) == CE_None &&
            GDALGetGeoTransform(src[i].ds, g1) == CE_None && memcmp(g0, g1, sizeof g0) != 0)
            warnf(job, "'%s' and '%s' have different geotransforms; the output takes the first's",
                  job->sources[0].path, job->sources[i].path);
    }
    if (ns ? !GDALGetSpatialRef(src[0].ds) && !GDALGetGCPSpatialRef(src[0].ds) : !job->grid.srs)
        warnf(job, "'%s' has no coordinate reference system; the output will have none",
              ns ? job->sources[0].path : "the output grid");
    int x0 = 0, y0 = 0, Wout = Wg, Hout = Hg;
    if (job->has_srcwin) {
        x0 = job->srcwin[0], y0 = job->srcwin[1], Wout = job->srcwin[2], Hout = job->srcwin[3];
        if (x0 < 0 || y0 < 0 || Wout < 1 || Hout < 1 || x0 > W - Wout || y0 > H - Hout) {
            mmgeo_fail(err, errlen, "-srcwin %d %d %d %d is not inside the %dx%d raster", x0, y0,
                       Wout, Hout, W, H);
            goto out;
        }
        if (R > 1) { /* the output cells the source window touches */
            const int cx1 = (x0 + Wout + R - 1) / R, cy1 = (y0 + Hout + R - 1) / R;
            x0 /= R, y0 /= R, Wout = cx1 - x0, Hout = cy1 - y0;
        }
    }
    const int x1 = x0 + Wout, y1 = y0 + Hout;

    for (int j = 0; j < nt; j++) {
        tgt[j].channels = proc->dst_channels[j];
        tgt[j].type = mmgeo_profile_out_type(&job->targets[j].profile, job->targets[j].modality);
    }
    { /* the size guard: output pixels and the memory of the strip and window buffers */
        double per_px = 4 + 1 + 1 + (job->nonfinite == MMGEO_NONFINITE_NODATA), win = 2.0 * S * S;
        int mc = 1;
        for (int j = 0; j < nt; j++) {
            per_px += 4.0 * tgt[j].channels;
            if (tgt[j].channels > mc) mc = tgt[j].channels;
            win += 4.0 * batch * tgt[j].channels * (double)So * So;
        }
        per_px += 8.0 * mc;
        for (int i = 0; i < ns; i++)
            win += 4.0 * batch * proc->src_channels[i] * (double)S * S;
        win += (double)batch * S * S + 17.0 * S * S;
        const double bytes = per_px * So * (double)Wout + win + job->extra_bytes;
        if (mmgeo_size_guard(job, "output", Wout, Hout, bytes, err, errlen)) goto out;
    }
    for (int j = 0; j < nt; j++)
        if (create_target(job, &job->targets[j], &tgt[j], ns ? &src[0] : NULL, x0 * R, y0 * R, Wout,
                          Hout, R, src_mask || job->aoi || job->nonfinite == MMGEO_NONFINITE_NODATA,
                          err, errlen))
            goto out;

    /* the grid, anchored to the raster */
    const int nx = mmgeo_grid_origins_aligned(W, S, O, A, NULL, 0),
              ny = mmgeo_grid_origins_aligned(H, S, O, A, NULL, 0);
    ox = malloc(sizeof(int) * (size_t)nx);
    oy = malloc(sizeof(int) * (size_t)ny);
    oxo = malloc(sizeof(int) * (size_t)nx);
    oyo = malloc(sizeof(int) * (size_t)ny);
    wx = malloc(sizeof(float) * (size_t)S);
    if (!ox || !oy || !oxo || !oyo || !wx) goto nomem;
    mmgeo_grid_origins_aligned(W, S, O, A, ox, nx);
    mmgeo_grid_origins_aligned(H, S, O, A, oy, ny);
    for (int k = 0; k < nx; k++)
        oxo[k] = ox[k] / R;
    for (int k = 0; k < ny; k++)
        oyo[k] = oy[k] / R;
    for (int i = 0; i < So; i++)
        wx[i] = mmgeo_blend_weight(i, So, O / R);
    int kxa = 0, kxb = nx - 1, kya = 0, kyb = ny - 1;
    while (oxo[kxa] + So <= x0)
        kxa++;
    while (oxo[kxb] >= x1)
        kxb--;
    while (oyo[kya] + So <= y0)
        kya++;
    while (oyo[kyb] >= y1)
        kyb--;

    /* buffers: one strip (So rows of the output width) of accumulators; one batch of windows */
    const size_t plane = (size_t)S * S, strip = (size_t)So * Wout, oplane = (size_t)So * So;
    wsum = calloc(strip, sizeof *wsum);
    valid = calloc(strip, 1);
    tvalid = malloc((size_t)batch * plane);
    raw = malloc(plane * 2 * sizeof(double));
    mraw = malloc(plane);
    ids = malloc(sizeof *ids * (size_t)batch);
    slot_kx = malloc(sizeof(int) * (size_t)batch);
    if (!wsum || !valid || !tvalid || !raw || !mraw || !ids || !slot_kx) goto nomem;
    if (job->nonfinite == MMGEO_NONFINITE_NODATA && !(bad = calloc(strip, 1))) goto nomem;
    int maxc = 1;
    for (int i = 0; i < ns; i++) {
        srct[i] = malloc(sizeof(float) * (size_t)batch * proc->src_channels[i] * plane);
        if (!srct[i]) goto nomem;
    }
    for (int j = 0; j < nt; j++) {
        dstt[j] = malloc(sizeof(float) * (size_t)batch * tgt[j].channels * oplane);
        tgt[j].acc = calloc(strip * (size_t)tgt[j].channels, sizeof(float));
        if (!dstt[j] || !tgt[j].acc) goto nomem;
        if (tgt[j].channels > maxc) maxc = tgt[j].channels;
    }
    line = malloc(sizeof(double) * (size_t)maxc * strip);
    uint8_t *mline = malloc(strip);
    if (!line || !mline) {
        free(mline);
        goto nomem;
    }

    pipe =
        mmgeo_pipe_start(src, ns, proc->src_channels, W, H, S, ox, kxa, kxb, oy, kya, kyb, batch);
    const double total = (double)(kxb - kxa + 1) * (kyb - kya + 1);
    st.windows = (long long)total;
    double done = 0;
    if (job->progress && !job->progress(0.0, NULL, job->progress_arg)) {
        free(mline); /* interrupted before the first window (LeakSanitizer saw it) */
        goto interrupted_m;
    }
    for (int ky = kya; ky <= kyb; ky++) {
        const int base = oyo[ky];
        for (int kx = kxa; kx <= kxb;) {
            int n = 0;
            for (; n < batch && kx <= kxb; kx++) {
                uint8_t *tv = tvalid + (size_t)n * plane;
                memset(tv, 1, plane);
                if (job->aoi && !mmgeo_aoi_window(job->aoi, ox[kx], oy[ky], S, W, H, tv)) {
                    st.skipped_aoi++, done++; /* outside the AOI: skipped (all its pixels are) */
                    continue;
                }
                for (int i = 0; i < ns; i++)
                    if (mmgeo_pipe_read_window(pipe, i, &src[i], W, H, S, ox[kx], oy[ky],
                                               srct[i] + (size_t)n * proc->src_channels[i] * plane,
                                               tv, raw, mraw, err, errlen)) {
                        free(mline);
                        goto out;
                    }
                int any = 0;
                if (R == 1) {
                    for (int py = 0; py < S && base + py < H; py++)
                        for (int px = 0; px < S && ox[kx] + px < W; px++) {
                            const int c = ox[kx] + px;
                            const uint8_t v = tv[(size_t)py * S + px];
                            any |= v;
                            if (c >= x0 && c < x1) valid[(size_t)py * Wout + (c - x0)] = v;
                        }
                } else { /* a cell is valid when every raster pixel under it is */
                    for (int cy = 0; cy < So && base + cy < Hg; cy++)
                        for (int cx = 0; cx < So && oxo[kx] + cx < Wg; cx++) {
                            uint8_t v = 1;
                            for (int py = cy * R; py < (cy + 1) * R && oy[ky] + py < H; py++)
                                for (int px = cx * R; px < (cx + 1) * R && ox[kx] + px < W; px++) {
                                    const uint8_t q = tv[(size_t)py * S + px];
                                    any |= q;
                                    v &= q;
                                }
                            const int c = oxo[kx] + cx;
                            if (c >= x0 && c < x1) valid[(size_t)cy * Wout + (c - x0)] = v;
                        }
                }
                if (!any) { /* entirely nodata: skipped */
                    st.skipped_nodata++;
                    done++;
                    continue;
                }
                ids[n] = mmgeo_tile_id(kx, ky);
                slot_kx[n] = kx;
                n++;
            }
            if (n > 0) {
                int prc =
                    proc->fn(proc->user, n, ids, (const float *const *)srct, dstt, err, errlen);
                if (prc == MMGEO_INTERRUPTED) {
                    free(mline);
                    goto interrupted;
                }
                if (prc) {
                    free(mline);
                    goto out;
                }
                for (int t = 0; t < n; t++) { /* NaN or Inf: never data */
                    const int kx = slot_kx[t];
                    long long nf = 0;
                    for (int cy = 0; cy < So; cy++)
                        for (int cx = 0; cx < So; cx++) {
                            int hit = 0;
                            for (int j = 0; j < nt; j++)
                                for (int c = 0; c < tgt[j].channels; c++) {
                                    float *v = dstt[j] +
                                               ((size_t)t * tgt[j].channels + c) * oplane +
                                               (size_t)cy * So + cx;
                                    if (!isfinite(*v)) *v = 0, hit = 1;
                                }
                            const int col = oxo[kx] + cx;
                            if (!hit || base + cy >= Hg || col >= Wg || col < x0 || col >= x1)
                                continue;
                            const size_t r = (size_t)cy * Wout + (col - x0);
                            if (!valid[r]) continue;
                            nf++;
                            if (bad) bad[r] = 1;
                        }
                    if (nf && !bad) {
                        mmgeo_fail(err, errlen,
                                   "the %s gave NaN or Inf at %lld pixel%s of the window at "
                                   "pixel offsets %d, %d (%d x %d pixels); nothing was written "
                                   "(--nonfinite nodata writes them as nodata)",
                                   proc->fn == mmgeo_process_model ||
                                           proc->fn == mmgeo_process_samples ||
                                           proc->fn == mmgeo_process_embed
                                       ? "model"
                                       : "processor",
                                   nf, nf == 1 ? "" : "s", ox[kx], oy[ky], S, S);
                        free(mline);
                        goto out;
                    }
                }
                for (int t = 0; t < n; t++) { /* blend.c: shared with the region renderer */
                    const float *res[MMGEO_MAX_IO];
                    float *acc[MMGEO_MAX_IO];
                    int ch[MMGEO_MAX_IO];
                    for (int j = 0; j < nt; j++) {
                        ch[j] = tgt[j].channels, acc[j] = tgt[j].acc;
                        res[j] = dstt[j] + (size_t)t * tgt[j].channels * oplane;
                    }
                    mmgeo_blend_add(wx, So, oxo[slot_kx[t]], base, Wg, Hg, x0, base, Wout, So,
                                    strip, nt, ch, res, wsum, acc);
                }
                done += n;
                st.processed += n;
            }
            if (job->progress && !job->progress(done / total, NULL, job->progress_arg)) {
                free(mline);
                goto interrupted_m;
            }
        }
        /* rows [base, next) are final */
        const int next = ky + 1 < ny ? oyo[ky + 1] : Hg;
        const int ra = base > y0 ? base : y0, rb = next < y1 ? next : y1;
        if (rb > ra) {
            const size_t nrow = (size_t)(rb - ra) * Wout;
            int any_invalid = 0;
            for (size_t k = 0; k < nrow; k++) {
                const size_t r = (size_t)(ra - base) * Wout + k;
                if (bad && bad[r] && valid[r]) valid[r] = 0, nonfinite++;
                any_invalid |= !valid[r];
            }
            for (int j = 0; j < nt && any_invalid; j++) /* NaN sources without nodata or mask */
                if (tgt[j].mode == OUT_PLAIN &&
                    add_mask_late(pipe, &tgt[j], ra - y0, Wout, err, errlen)) {
                    free(mline);
                    goto out;
                }
            for (int j = 0; j < nt; j++) {
                target *o = &tgt[j];
                mmgeo_output_map map, smap;
                mmgeo_profile_output_map(&job->targets[j].profile, o->type, &map);
                mmgeo_spread_map(&map, &smap);
                const int c_spread = o->channels - job->targets[j].spread_channels;
                for (int c = 0; c < o->channels; c++)
                    for (size_t k = 0; k < nrow; k++) {
                        const size_t r = (size_t)(ra - base) * Wout + k;
                        line[(size_t)c * nrow + k] = mmgeo_blend_pixel(
                            c < c_spread ? &map : &smap, o->acc[(size_t)c * strip + r], wsum[r],
                            valid[r], o->mode == OUT_NODATA, o->nodata, o->type);
                    }
                if (mmgeo_pipe_write(pipe, o->ds, NULL, 0, ra - y0, Wout, rb - ra, line,
                                     GDT_Float64, o->channels) != CE_None) {
                    mmgeo_fail(err, errlen, "cannot write '%s': %s", job->targets[j].path,
                               gdal_msg());
                    free(mline);
                    goto out;
                }
                if (o->mode == OUT_MASK) {
                    for (size_t k = 0; k < nrow; k++)
                        mline[k] = valid[(size_t)(ra - base) * Wout + k] ? 255 : 0;
                    GDALRasterBandH mb = GDALGetMaskBand(GDALGetRasterBand(o->ds, 1));
                    if (mmgeo_pipe_write(pipe, NULL, mb, 0, ra - y0, Wout, rb - ra, mline, GDT_Byte,
                                         1) != CE_None) {
                        mmgeo_fail(err, errlen, "cannot write the mask of '%s': %s",
                                   job->targets[j].path, gdal_msg());
                        free(mline);
                        goto out;
                    }
                }
            }
        }
        /* shift the strip up to the next window row */
        const int d = next - base;
        if (d > 0 && d < So) {
            const size_t keep = (size_t)(So - d) * Wout, off = (size_t)d * Wout;
            memmove(wsum, wsum + off, keep * sizeof *wsum);
            memset(wsum + keep, 0, off * sizeof *wsum);
            memmove(valid, valid + off, keep);
            memset(valid + keep, 0, off);
            if (bad) memmove(bad, bad + off, keep), memset(bad + keep, 0, off);
            for (int j = 0; j < nt; j++)
                for (int c = 0; c < tgt[j].channels; c++) {
                    float *a = tgt[j].acc + (size_t)c * strip;
                    memmove(a, a + off, keep * sizeof *a);
                    memset(a + keep, 0, off * sizeof *a);
                }
        } else if (d >= So) {
            memset(wsum, 0, strip * sizeof *wsum);
            memset(valid, 0, strip);
            if (bad) memset(bad, 0, strip);
            for (int j = 0; j < nt; j++)
                memset(tgt[j].acc, 0, strip * tgt[j].channels * sizeof(float));
        }
    }
    free(mline);
    if (mmgeo_pipe_flush(pipe) != CE_None) {
        mmgeo_fail(err, errlen, "cannot write the output: %s", gdal_msg());
        goto out;
    }
    mmgeo_pipe_free(pipe), pipe = NULL;
    for (int j = 0; j < nt; j++) {
        const int fr = finish_target(job, &job->targets[j], &tgt[j], err, errlen);
        if (fr == MMGEO_INTERRUPTED) goto interrupted;
        if (fr) goto out;
    }
    for (int j = 0; j < nt; j++) /* all written: now the names */
        if (rename_target(&job->targets[j], &tgt[j], err, errlen)) goto out;
    st.nonfinite = nonfinite;
    if (nonfinite)
        warnf(job, "the %s gave NaN or Inf at %lld output pixel%s; written as nodata",
              proc->fn == mmgeo_process_model || proc->fn == mmgeo_process_samples ||
                      proc->fn == mmgeo_process_embed
                  ? "model"
                  : "processor",
              nonfinite, nonfinite == 1 ? "" : "s");
    rc = 0;
    goto out;

nomem:
    mmgeo_fail(err, errlen, "out of memory");
    goto out;
interrupted_m:
    mmgeo_fail(err, errlen, "interrupted");
interrupted:
    rc = MMGEO_INTERRUPTED;
out:
    mmgeo_pipe_free(pipe); /* before the datasets its threads use are closed */
    for (int j = 0; j < nt; j++) {
        if (tgt[j].ds) GDALClose(tgt[j].ds);
        if (tgt[j].drv && tgt[j].tmp[0]) remove_dataset(tgt[j].drv, tgt[j].tmp);
        if (tgt[j].stage_path[0]) remove_dataset(GDALGetDriverByName("GTiff"), tgt[j].stage_path);
        free(tgt[j].acc);
        free(dstt[j]);
    }
    for (int i = 0; i < ns; i++) {
        if (src[i].ds) GDALClose(src[i].ds);
        free(srct[i]);
    }
    free(ox), free(oy), free(oxo), free(oyo), free(wx), free(wsum), free(valid), free(bad),
        free(tvalid), free(raw), free(mraw);
    free(ids), free(slot_kx), free(line);
    if (job->stats) *job->stats = st;
    return rc;
}
