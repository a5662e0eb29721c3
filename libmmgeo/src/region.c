/* The region renderer: any pixel rectangle of a run's target, computed from the windows of the
 * run's grid that cover it, blended by the same code as mmgeo_run (blend.c), so its pixels are
 * bit-identical to the same pixels of mmgeo_run's output. Window results go through a cache
 * (cache.c). docs/driver.md describes the design. */
#define _GNU_SOURCE
#include <cpl_conv.h>
#include <cpl_string.h>
#include <gdal_utils.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"

/* What regions opened with `share` have in common: the lock (around every render, so the
 * processor, the sources' GDAL handles and the buffers are used by one thread at a time), the
 * cache and the counters. */
typedef struct {
    pthread_mutex_t lock;
    int refs;
    mmgeo_cache *cache;
    mmgeo_region_stats stats;
} shared;

struct mmgeo_region {
    shared *sh;
    mmgeo_processor proc;
    mmgeo_source srcdef[MMGEO_MAX_IO];
    mmgeo_src src[MMGEO_MAX_IO];
    char vsi[MMGEO_MAX_IO][64]; /* reduced sources (/vsimem VRTs) */
    int ns, W, H, S, O, reduce, nx, ny, C, batch;
    int *ox, *oy;
    float *w1;
    GDALDataType type;
    int nodata_mode;
    double nodata;
    mmgeo_nonfinite nonfinite;  /* NaN or Inf from the processor: an error, or nodata */
    mmgeo_output_map map, smap; /* the target's values, its spread channels' */
    int spread;                 /* spread channels: the last ones (mmgeo_target) */
    char *settings, *source_tag, *ident;
    uint8_t prefix[32]; /* digest of settings and ident */
    double *raw;
    uint8_t *mraw;
    unsigned char *scratch; /* render buffers (under the lock) */
    size_t scratch_n;
};

static const char *gdal_msg(void) {
    const char *m = CPLGetLastErrorMsg();
    return m && *m ? m : "GDAL gave no reason";
}

void mmgeo_region_options_init(mmgeo_region_options *o) {
    memset(o, 0, sizeof *o);
    o->cache_mb = 256;
    o->reduce = 1;
}

static char *append(char *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *append(char *s, const char *fmt, ...) {
    if (!s) return NULL;
    va_list ap;
    va_start(ap, fmt);
    char *add = NULL;
    int n = vasprintf(&add, fmt, ap);
    va_end(ap);
    if (n < 0) {
        free(s);
        return NULL;
    }
    size_t a = strlen(s);
    char *r = realloc(s, a + (size_t)n + 1);
    if (!r) {
        free(s), free(add);
        return NULL;
    }
    memcpy(r + a, add, (size_t)n + 1);
    free(add);
    return r;
}

/* A source at 1 / f of its resolution: a VRT in /vsimem averaging f x f pixels. */
static int reduced_source(const char *path, int f, char *out, size_t outlen, void *tag, int i,
                          char *err, size_t errlen) {
    CPLPushErrorHandler(CPLQuietErrorHandler);
    GDALDatasetH ds = GDALOpenEx(path, GDAL_OF_RASTER | GDAL_OF_READONLY, NULL, NULL, NULL);
    CPLPopErrorHandler();
    if (!ds) return mmgeo_fail(err, errlen, "cannot open '%s' as a raster: %s", path, gdal_msg());
    char w[32], h[32];
    snprintf(w, sizeof w, "%d", (GDALGetRasterXSize(ds) + f - 1) / f);
    snprintf(h, sizeof h, "%d", (GDALGetRasterYSize(ds) + f - 1) / f);
    snprintf(out, outlen, "/vsimem/mmgeo_reduced_%p_%d.vrt", tag, i);
    char *argv[] = {"-of", "VRT", "-outsize", w, h, "-r", "average", NULL};
    GDALTranslateOptions *opt = GDALTranslateOptionsNew(argv, NULL);
    int bad = 0;
    GDALDatasetH o = GDALTranslate(out, ds, opt, &bad);
    GDALTranslateOptionsFree(opt);
    if (o) GDALClose(o); /* (before the source it refers to) */
    GDALClose(ds);
    if (!o) return mmgeo_fail(err, errlen, "cannot reduce '%s': %s", path, gdal_msg());
    return 0;
}

static void shared_release(shared *sh) {
    if (!sh) return;
    pthread_mutex_lock(&sh->lock);
    const int left = --sh->refs;
    pthread_mutex_unlock(&sh->lock);
    if (left) return;
    mmgeo_cache_close(sh->cache);
    pthread_mutex_destroy(&sh->lock);
    free(sh);
}

void mmgeo_region_close(mmgeo_region *r) {
    if (!r) return;
    for (int i = 0; i < r->ns; i++) {
        if (r->src[i].ds) GDALClose(r->src[i].ds);
        if (r->vsi[i][0]) VSIUnlink(r->vsi[i]);
    }
    shared_release(r->sh);
    free(r->ox), free(r->oy), free(r->w1), free(r->settings), free(r->source_tag), free(r->ident);
    free(r->raw), free(r->mraw), free(r->scratch);
    free(r);
}

int mmgeo_region_open(const mmgeo_job *job, const mmgeo_processor *proc,
                      const mmgeo_region_options *opt, mmgeo_region **out, char *err,
                      size_t errlen) {
    *out = NULL;
    mmgeo_region_options defaults;
    if (!opt) mmgeo_region_options_init(&defaults), opt = &defaults;
    const int S = proc->window, ns = job->n_sources;
    if (ns < 1 || ns > MMGEO_MAX_IO || ns != proc->n_sources || job->n_targets != 1 ||
        proc->n_targets != 1 || S < 1)
        return mmgeo_fail(err, errlen, "a region renders one target from 1 to %d sources",
                          MMGEO_MAX_IO);
    if (job->align > 1 || job->out_scale > 1 || job->has_srcwin || job->aoi)
        return mmgeo_fail(err, errlen,
                          "a region takes no grid alignment, scale, source window or area of "
                          "interest");
    const int O = job->overlap < 0 ? S / 4 : job->overlap;
    if (O >= S)
        return mmgeo_fail(err, errlen, "the overlap (%d) must be less than the window (%d)", O, S);
    mmgeo_region *r = calloc(1, sizeof *r);
    if (!r) return mmgeo_fail(err, errlen, "out of memory");
    r->proc = *proc;
    r->ns = ns, r->S = S, r->O = O, r->C = proc->dst_channels[0];
    r->reduce = opt->reduce > 1 ? opt->reduce : 1;
    r->nonfinite = opt->nonfinite;
    r->batch = job->batch > 0 ? job->batch : 1;
    if (opt->share) {
        r->sh = opt->share->sh;
        pthread_mutex_lock(&r->sh->lock);
        r->sh->refs++;
        pthread_mutex_unlock(&r->sh->lock);
    } else {
        r->sh = calloc(1, sizeof *r->sh);
        if (!r->sh) {
            free(r);
            return mmgeo_fail(err, errlen, "out of memory");
        }
        pthread_mutex_init(&r->sh->lock, NULL);
        r->sh->refs = 1;
        const double mb = opt->cache_mb > 0 ? opt->cache_mb : 0;
        if (mmgeo_cache_open(opt->cache_path, (size_t)(mb * 1048576.0), &r->sh->cache, err,
                             errlen)) {
            mmgeo_region_close(r);
            return MMGEO_ERROR;
        }
    }

    /* the sources (reduced ones through a VRT), their identity */
    r->settings = strdup("");
    r->source_tag = strdup("");
    r->ident = strdup("");
    for (int i = 0; i < ns; i++) {
        r->srcdef[i] = job->sources[i];
        const char *path = job->sources[i].path;
        char *abs = realpath(path, NULL);
        struct stat st;
        long long size = -1, mtime = -1;
        if (stat(path, &st) == 0) {
            size = (long long)st.st_size;
            mtime = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
        }
        r->source_tag = append(r->source_tag, "%s%s", i ? ";" : "", abs ? abs : path);
        r->ident = append(r->ident, "%s%s|%lld|%lld", i ? ";" : "", abs ? abs : path, size, mtime);
        free(abs);
        if (r->reduce > 1) {
            if (reduced_source(path, r->reduce, r->vsi[i], sizeof r->vsi[i], r, i, err, errlen)) {
                mmgeo_region_close(r);
                return MMGEO_ERROR;
            }
            r->srcdef[i].path = r->vsi[i];
        }
        if (mmgeo_open_source(&r->srcdef[i], proc->src_channels[i], &r->src[i], err, errlen)) {
            if (r->reduce > 1) /* the message names the VRT; name the source */
                mmgeo_fail(err, errlen, "cannot read '%s' reduced %d times", path, r->reduce);
            mmgeo_region_close(r);
            return MMGEO_ERROR;
        }
        r->src[i].profile = &r->srcdef[i].profile;
        char desc[128];
        mmgeo_profile_describe(&job->sources[i].profile, desc, sizeof desc);
        r->settings = append(r->settings, "source %d: %s, %s, bands", i,
                             job->sources[i].modality ? job->sources[i].modality : "", desc);
        for (int b = 0; b < job->sources[i].n_bands; b++)
            r->settings = append(r->settings, " %d", job->sources[i].bands[b]);
        r->settings = append(r->settings, "\n");
    }
    r->W = GDALGetRasterXSize(r->src[0].ds), r->H = GDALGetRasterYSize(r->src[0].ds);
    for (int i = 1; i < ns; i++)
        if (GDALGetRasterXSize(r->src[i].ds) != r->W || GDALGetRasterYSize(r->src[i].ds) != r->H) {
            mmgeo_fail(err, errlen,
                       "'%s' is %dx%d pixels but '%s' is %dx%d; the sources must "
                       "share one grid",
                       job->sources[i].path, GDALGetRasterXSize(r->src[i].ds),
                       GDALGetRasterYSize(r->src[i].ds), job->sources[0].path, r->W, r->H);
            mmgeo_region_close(r);
            return MMGEO_ERROR;
        }
    const mmgeo_target *t = &job->targets[0];
    char desc[128];
    mmgeo_profile_describe(&t->profile, desc, sizeof desc);
    r->type = mmgeo_profile_out_type(&t->profile, t->modality);
    r->settings = append(r->settings, "target: %s, %s, %s\nwindow %d, overlap %d, reduce %d\n%s",
                         t->modality ? t->modality : "", desc, GDALGetDataTypeName(r->type), S, O,
                         r->reduce, opt->key ? opt->key : "");
    if (!r->settings || !r->source_tag || !r->ident) {
        mmgeo_region_close(r);
        return mmgeo_fail(err, errlen, "out of memory");
    }
    mmgeo_profile_output_map(&t->profile, r->type, &r->map);
    mmgeo_spread_map(&r->map, &r->smap);
    r->spread = t->spread_channels > 0 && t->spread_channels <= r->C ? t->spread_channels : 0;
    if (r->spread) r->settings = append(r->settings, "spread channels %d\n", r->spread);
    {
        char *all = NULL;
        if (asprintf(&all, "mmgeo-region-v1\n%s\n%s", r->settings, r->ident) < 0) {
            mmgeo_region_close(r);
            return mmgeo_fail(err, errlen, "out of memory");
        }
        mmgeo_sha256(all, strlen(all), r->prefix);
        free(all);
    }
    /* nodata as mmgeo_run writes it */
    int has_nd = 0;
    const double nd = GDALGetRasterNoDataValue(r->src[0].band[0], &has_nd);
    if (has_nd) {
        r->nodata_mode = 1;
        r->nodata = mmgeo_type_representable(r->type, nd) ? nd : 0;
        if (r->nodata != nd && !(nd != nd && r->nodata != r->nodata) && job->warn &&
            r->reduce == 1) { /* as mmgeo_run warns */
            char msg[512];
            snprintf(msg, sizeof msg,
                     "the nodata value %g of '%s' cannot be stored as %s; the output uses %g", nd,
                     job->sources[0].path, GDALGetDataTypeName(r->type), r->nodata);
            job->warn(job->warn_user, msg);
        }
    }
    /* the grid */
    r->nx = mmgeo_grid_origins(r->W, S, O, NULL, 0);
    r->ny = mmgeo_grid_origins(r->H, S, O, NULL, 0);
    r->ox = malloc(sizeof(int) * (size_t)r->nx);
    r->oy = malloc(sizeof(int) * (size_t)r->ny);
    r->w1 = malloc(sizeof(float) * (size_t)S);
    r->raw = malloc(sizeof(double) * 2 * (size_t)S * S);
    r->mraw = malloc((size_t)S * S);
    if (!r->ox || !r->oy || !r->w1 || !r->raw || !r->mraw) {
        mmgeo_region_close(r);
        return mmgeo_fail(err, errlen, "out of memory");
    }
    mmgeo_grid_origins(r->W, S, O, r->ox, r->nx);
    mmgeo_grid_origins(r->H, S, O, r->oy, r->ny);
    for (int i = 0; i < S; i++)
        r->w1[i] = mmgeo_blend_weight(i, S, O);
    mmgeo_cache_disk_purge(r->sh->cache, r->source_tag, r->ident);
    *out = r;
    return 0;
}

void mmgeo_region_info(const mmgeo_region *r, mmgeo_region_info_t *info) {
    memset(info, 0, sizeof *info);
    info->width = r->W, info->height = r->H, info->bands = r->C, info->type = r->type;
    info->has_nodata = r->nodata_mode, info->nodata = r->nodata;
    info->has_mask = !r->nodata_mode && r->nonfinite == MMGEO_NONFINITE_NODATA;
    for (int i = 0; i < r->ns && !r->nodata_mode; i++)
        for (int b = 0; b < r->src[i].nb; b++) /* a mask; or floats, which may hold NaN */
            info->has_mask |= r->src[i].mask[b] != NULL ||
                              GDALDataTypeIsFloating(GDALGetRasterDataType(r->src[i].band[b]));
    info->window = r->S, info->overlap = r->O, info->reduce = r->reduce;
    info->spread_bands = r->spread;
}

void mmgeo_region_stats_get(const mmgeo_region *r, mmgeo_region_stats *s) {
    pthread_mutex_lock(&r->sh->lock);
    *s = r->sh->stats;
    pthread_mutex_unlock(&r->sh->lock);
    if (r->sh->cache) s->disk_errors = mmgeo_cache_disk_errors(r->sh->cache);
}

/* One window of a render: its memory value is [results C S^2 floats][valid S^2][any]. */
typedef struct {
    int kx, ky;
    unsigned char *val;
    uint8_t key_a[32], key_b[32];
    int todo;
    float *tiles; /* the sources' tiles when computed */
} win;

static inline uint64_t rotl64(uint64_t x, int r) {
    return x << r | x >> (64 - r);
}
static inline uint64_t mix64(uint64_t x) { /* a bijective avalanche of 64 bits */
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    return x ^ (x >> 33);
}

/* A 128-bit content checksum (not cryptographic: it tells a changed window from the stored one;
 * SHA-256 over a window's 256 KiB cost a quarter of a cached read). Two lanes of 64-bit words,
 * each multiplied, rotated and multiplied into its lane, the lanes crossed, then avalanched. */
static void checksum128(const void *data, size_t n, uint64_t out[2]) {
    const unsigned char *p = data;
    uint64_t a = 0x9e3779b97f4a7c15ULL ^ n, b = 0x632be59bd9b4e019ULL + n;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        uint64_t x, y;
        memcpy(&x, p + i, 8), memcpy(&y, p + i + 8, 8);
        a = rotl64(a ^ x * 0x87c37b91114253d5ULL, 31) * 0x4cf5ad432745937fULL;
        b = rotl64(b ^ y * 0x4cf5ad432745937fULL, 29) * 0x87c37b91114253d5ULL;
        a += b;
    }
    uint64_t t[2] = {0, 0};
    for (int k = 0; i < n; i++, k++)
        t[k / 8] |= (uint64_t)p[i] << (8 * (k % 8));
    a = mix64(a ^ t[0]), b = mix64(b + a + t[1]);
    out[0] = mix64(a + b), out[1] = mix64(b ^ out[0]);
}

/* The window's key without the content: the digest of the settings and the sources' identity
 * (made at open) and the window index. */
static void key_a(const mmgeo_region *r, int kx, int ky, uint8_t out[32]) {
    uint8_t buf[48];
    memcpy(buf, r->prefix, 32);
    const uint64_t id = mmgeo_tile_id(kx, ky);
    memcpy(buf + 32, "mmgeo-win", 8);
    memcpy(buf + 40, &id, 8);
    mmgeo_sha256(buf, sizeof buf, out);
}

int mmgeo_region_render(mmgeo_region *r, int x, int y, int w, int h, double *out, uint8_t *mask,
                        char *err, size_t errlen) {
    if (x < 0 || y < 0 || w < 1 || h < 1 || x > r->W - w || y > r->H - h)
        return mmgeo_fail(err, errlen, "the rectangle %d %d %d %d is not inside the %dx%d raster",
                          x, y, w, h, r->W, r->H);
    const int S = r->S, C = r->C, ns = r->ns;
    const size_t plane = (size_t)S * S, rplane = (size_t)w * h;
    const size_t vbytes = (size_t)C * plane * sizeof(float) + plane + 1;
    const size_t vstride = (vbytes + 15) / 16 * 16; /* each window's floats aligned */
    int ka = 0, kb = r->nx - 1, la = 0, lb = r->ny - 1;
    while (r->ox[ka] + S <= x)
        ka++;
    while (r->ox[kb] >= x + w)
        kb--;
    while (r->oy[la] + S <= y)
        la++;
    while (r->oy[lb] >= y + h)
        lb--;
    const int nwx = kb - ka + 1, nw = nwx * (lb - la + 1);
    int sumc = 0;
    for (int i = 0; i < ns; i++)
        sumc += r->proc.src_channels[i];

    int rc = MMGEO_ERROR;
    pthread_mutex_lock(&r->sh->lock); /* the whole render: the scratch buffer is the region's */
    /* the windows' values, then the accumulators, in the region's scratch buffer (reused, so a
       render does not fault in fresh pages) */
    const size_t need = (size_t)nw * vstride + rplane * (C + 1) * sizeof(float) + rplane;
    if (r->scratch_n < need) {
        free(r->scratch);
        r->scratch = malloc(need);
        r->scratch_n = r->scratch ? need : 0;
    }
    unsigned char *vals = r->scratch;
    float *acc = vals ? (float *)(vals + (size_t)nw * vstride) : NULL;
    float *wsum = acc ? acc + (size_t)C * rplane : NULL;
    uint8_t *valid = wsum ? (uint8_t *)(wsum + rplane) : NULL;
    if (acc) memset(acc, 0, rplane * (C + 1) * sizeof(float) + rplane);
    win *ws = calloc((size_t)nw, sizeof *ws);
    float *bsrc[MMGEO_MAX_IO] = {0}, *bdst = NULL;
    uint8_t *bad = NULL; /* pixels the network gave NaN or Inf (MMGEO_NONFINITE_NODATA) */
    uint64_t *ids = malloc(sizeof(uint64_t) * (size_t)r->batch);
    int *slot = malloc(sizeof(int) * (size_t)r->batch);
    if (!ws || !vals || !ids || !slot) goto nomem;
    for (int i = 0; i < ns; i++)
        if (!(bsrc[i] = malloc(sizeof(float) * (size_t)r->batch * r->proc.src_channels[i] * plane)))
            goto nomem;
    if (!(bdst = malloc(sizeof(float) * (size_t)r->batch * C * plane))) goto nomem;

    mmgeo_region_stats *st = &r->sh->stats;
    st->renders++;
    /* 1: the cached windows; read the others */
    int ntodo = 0;
    for (int k = 0; k < nw; k++) {
        win *q = &ws[k];
        q->kx = ka + k % nwx, q->ky = la + k / nwx;
        q->val = vals + (size_t)k * vstride;
        key_a(r, q->kx, q->ky, q->key_a);
        if (r->sh->cache && mmgeo_cache_mem_get(r->sh->cache, q->key_a, q->val, vbytes)) {
            st->mem_hits++;
            continue;
        }
        q->tiles = malloc(sizeof(float) * (size_t)sumc * plane);
        if (!q->tiles) goto nomem;
        uint8_t *tv = q->val + (size_t)C * plane * sizeof(float);
        memset(tv, 1, plane);
        for (int i = 0, c0 = 0; i < ns; c0 += r->proc.src_channels[i], i++)
            if (mmgeo_read_window(&r->src[i], r->W, r->H, S, r->ox[q->kx], r->oy[q->ky],
                                  q->tiles + (size_t)c0 * plane, tv, r->raw, r->mraw, err, errlen))
                goto out;
        int any = 0;
        for (int py = 0; py < S && r->oy[q->ky] + py < r->H; py++)
            for (int px = 0; px < S && r->ox[q->kx] + px < r->W; px++)
                any |= tv[py * S + px];
        q->val[vbytes - 1] = (unsigned char)any;
        if (!any) { /* entirely nodata: no model run (as mmgeo_run) */
            memset(q->val, 0, (size_t)C * plane * sizeof(float));
            st->skipped++;
            if (r->sh->cache) mmgeo_cache_mem_put(r->sh->cache, q->key_a, q->val, vbytes);
            continue;
        }
        /* the persistent key adds a checksum of what was read */
        uint64_t kb2[8];
        memcpy(kb2, q->key_a, 32);
        checksum128(q->tiles, sizeof(float) * (size_t)sumc * plane, kb2 + 4);
        checksum128(tv, plane, kb2 + 6);
        mmgeo_sha256(kb2, sizeof kb2, q->key_b);
        if (r->sh->cache && mmgeo_cache_disk_get(r->sh->cache, q->key_b, q->val,
                                                 (size_t)C * plane * sizeof(float))) {
            st->disk_hits++;
            mmgeo_cache_mem_put(r->sh->cache, q->key_a, q->val, vbytes);
            continue;
        }
        q->todo = 1;
        ntodo++;
    }
    /* 2: run the processor on the others, in batches */
    for (int k = 0; k < nw && ntodo;) {
        int n = 0;
        for (; n < r->batch && k < nw; k++) {
            win *q = &ws[k];
            if (!q->todo) continue;
            for (int i = 0, c0 = 0; i < ns; c0 += r->proc.src_channels[i], i++) {
                const size_t ci = (size_t)r->proc.src_channels[i] * plane;
                memcpy(bsrc[i] + n * ci, q->tiles + (size_t)c0 * plane, ci * sizeof(float));
            }
            ids[n] = mmgeo_tile_id(q->kx, q->ky);
            slot[n++] = k;
        }
        if (!n) break;
        float *dst[1] = {bdst};
        st->model_calls++;
        const int prc =
            r->proc.fn(r->proc.user, n, ids, (const float *const *)bsrc, dst, err, errlen);
        if (prc) {
            rc = prc;
            goto out;
        }
        for (int t = 0; t < n; t++) {
            win *q = &ws[slot[t]];
            memcpy(q->val, bdst + (size_t)t * C * plane, (size_t)C * plane * sizeof(float));
            st->computed++;
            if (r->sh->cache) {
                mmgeo_cache_disk_put(r->sh->cache, q->key_b, r->source_tag, r->ident, q->val,
                                     (size_t)C * plane * sizeof(float));
                mmgeo_cache_mem_put(r->sh->cache, q->key_a, q->val, vbytes);
            }
            q->todo = 0;
            ntodo--;
        }
    }

    /* 3: blend in grid order (rows of windows, then columns), as mmgeo_run; NaN or Inf from
       the network (kept as such in the caches) is an error naming the window, or, with
       MMGEO_NONFINITE_NODATA, makes the pixel invalid (bad) */
    if (r->nonfinite == MMGEO_NONFINITE_NODATA && !(bad = calloc(rplane, 1))) goto nomem;
    for (int k = 0; k < nw; k++) {
        const win *q = &ws[k];
        const int wx0 = r->ox[q->kx], wy0 = r->oy[q->ky];
        const uint8_t *tv = q->val + (size_t)C * plane * sizeof(float);
        const float *qv = (const float *)q->val;
        long long nf = 0;
        for (int py = 0; py < S && wy0 + py < r->H; py++) {
            const int Y = wy0 + py;
            if (Y < y || Y >= y + h) continue;
            for (int px = 0; px < S && wx0 + px < r->W; px++) {
                const int X = wx0 + px;
                if (X < x || X >= x + w) continue;
                const size_t o = (size_t)(Y - y) * w + (X - x);
                valid[o] = tv[py * S + px];
                int hit = 0;
                for (int c = 0; c < C && q->val[vbytes - 1]; c++)
                    hit |= !isfinite(qv[(size_t)c * plane + (size_t)py * S + px]);
                if (hit && valid[o]) {
                    nf++;
                    if (bad) bad[o] = 1;
                }
            }
        }
        if (nf && !bad) {
            mmgeo_fail(err, errlen,
                       "the model gave NaN or Inf at %lld pixel%s of the window at pixel offsets "
                       "%d, %d (%d x %d pixels); NONFINITE=NODATA reads them as nodata",
                       nf, nf == 1 ? "" : "s", wx0 * r->reduce, wy0 * r->reduce, S * r->reduce,
                       S * r->reduce);
            goto out;
        }
        if (!q->val[vbytes - 1]) continue;
        const float *res[1] = {(const float *)q->val};
        float *accs[1] = {acc};
        mmgeo_blend_add(r->w1, S, wx0, wy0, r->W, r->H, x, y, w, h, rplane, 1, &r->C, res, wsum,
                        accs);
    }
    for (size_t k = 0; bad && k < rplane; k++)
        if (bad[k]) valid[k] = 0;
    for (int c = 0; c < C; c++)
        for (size_t k = 0; k < rplane; k++)
            out[(size_t)c * rplane + k] = mmgeo_blend_pixel(
                c < C - r->spread ? &r->map : &r->smap, acc[(size_t)c * rplane + k], wsum[k],
                valid[k], r->nodata_mode, r->nodata, r->type);
    if (mask)
        for (size_t k = 0; k < rplane; k++)
            mask[k] = valid[k] ? 255 : 0;
    rc = 0;
    goto out;

nomem:
    mmgeo_fail(err, errlen, "out of memory");
out:
    pthread_mutex_unlock(&r->sh->lock);
    if (ws)
        for (int k = 0; k < nw; k++)
            free(ws[k].tiles);
    free(ws), free(ids), free(slot), free(bdst), free(bad);
    for (int i = 0; i < ns; i++)
        free(bsrc[i]);
    return rc;
}
