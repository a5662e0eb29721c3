/* libmmgeo internals shared between its source files. */
#ifndef MMGEO_INTERNAL_H
#define MMGEO_INTERNAL_H
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include "mmgeo.h"

/* snprintf into err (NULL-safe); returns MMGEO_ERROR. */
int mmgeo_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Model value in [-1, 1] of one source pixel (re, im: the raw value; im is 0 unless complex).
 * plo/phi: the band's percentile values (PERCENTILE only). */
float mmgeo_profile_input(const mmgeo_profile *p, double re, double im, double plo, double phi);
/* Whether a source pixel has a value under the profile: not for zero or negative linear power or
 * amplitude of SAR (which have no dB value). */
int mmgeo_profile_valid(const mmgeo_profile *p, double re);

/* The inverse profile as a linear map with rounding and clipping (the per-pixel loop's form). */
typedef struct {
    double a, b, lo, hi;
    int integer;
    int raw;    /* values as they are (MMGEO_IO_RAW) */
    int spread; /* a spread (a standard deviation): scaled by a, no offset, no clip to [-1, 1] */
} mmgeo_output_map;
void mmgeo_profile_output_map(const mmgeo_profile *p, GDALDataType t, mmgeo_output_map *m);
/* The map of the spread channels of a target whose values map with m (mmgeo_target): a
 * standard deviation scales with the profile's slope and has no offset. */
static inline void mmgeo_spread_map(const mmgeo_output_map *m, mmgeo_output_map *s) {
    *s = *m;
    s->a = fabs(m->a), s->b = 0, s->spread = 1;
}
static inline double mmgeo_output_apply(const mmgeo_output_map *m, float v) {
    if (m->raw) return v;
    double x = m->spread   ? (v == v ? (double)v : 0.0)
               : v < -1.0f ? -1.0
               : v > 1.0f  ? 1.0
               : v == v    ? (double)v
                           : 0.0; /* NaN -> 0 */
    double y = m->a * x + m->b;
    if (m->integer) {
        y = floor(y + 0.5);
        y = y < m->lo ? m->lo : y > m->hi ? m->hi : y;
    }
    return y;
}

/* The size guard of a run (unless job->force): MMGEO_ERROR with the figures when the w x h grid
 * of `what` ("output", "working grid") has more than job->max_pixels pixels
 * (MMGEO_DEFAULT_MAX_PIXELS) or the run needs more than the physical memory (bytes). */
int mmgeo_size_guard(const mmgeo_job *job, const char *what, double w, double h, double bytes,
                     char *err, size_t errlen);

/* An open source of a run. */
typedef struct {
    GDALDatasetH ds;
    int nb;
    GDALRasterBandH band[MMGEO_MAX_BANDS];
    GDALRasterBandH mask[MMGEO_MAX_BANDS]; /* NULL: all valid (or shares an earlier band's) */
    int complex;
    double plo[MMGEO_MAX_BANDS], phi[MMGEO_MAX_BANDS];
    const mmgeo_profile *profile;
} mmgeo_src;
/* Opens a source for a modality of `channels` channels (checks the bands). */
int mmgeo_open_source(const mmgeo_source *s, int channels, mmgeo_src *src, char *err,
                      size_t errlen);
/* Reads window (ox, oy) of a source into tile (C x S x S, [-1, 1]) and ANDs its validity into
 * valid (S x S); pixels outside the raster replicate the edge. raw: 2 S^2 doubles, mraw: S^2. */
int mmgeo_read_window(mmgeo_src *src, int W, int H, int S, int ox, int oy, float *tile,
                      uint8_t *valid, double *raw, uint8_t *mraw, char *err, size_t errlen);
/* ---- blending (blend.c): shared by mmgeo_run and the region renderer ---------------------- */
/* Whether v is a value of data type t. */
int mmgeo_type_representable(GDALDataType t, double v);
/* Adds one window's results, weighted by the separable raised-cosine weights w1 (So values), into
 * accumulators: the window's origin is (wx0, wy0) on a grid of gw x gh cells; the accumulators
 * cover the rectangle (ax0, ay0, aw, ah) of that grid, row-major, planes of `plane` values:
 * wsum (one plane) and acc[j] (channels[j] planes) for each of the nt targets, whose window
 * results res[j] are channels[j] x So x So. Pixels outside the rectangle or the grid are left
 * alone. Each pixel sums its windows in the order of the calls, in float. */
void mmgeo_blend_add(const float *w1, int So, int wx0, int wy0, int gw, int gh, int ax0, int ay0,
                     int aw, int ah, size_t plane, int nt, const int *channels,
                     const float *const *res, float *wsum, float *const *acc);
/* The output value of one blended pixel (acc / wsum through the profile's map); an invalid pixel
 * is the nodata value (nodata_mode) or 0; a valid one that would equal nodata is nudged off it. */
static inline double mmgeo_blend_pixel(const mmgeo_output_map *map, float acc, float wsum,
                                       int valid, int nodata_mode, double nodata,
                                       GDALDataType type) {
    if (!valid) return nodata_mode ? nodata : 0;
    double v = mmgeo_output_apply(map, acc / wsum);
    if (nodata_mode && v == nodata) { /* a valid pixel must not read as nodata */
        if (GDALDataTypeIsFloating(type))
            v = nextafter(v, v > 0 ? 0 : 1);
        else
            v = mmgeo_type_representable(type, v + 1) ? v + 1 : v - 1;
    }
    return v;
}
/* Band descriptions and MM_SPREAD items of the last `spread` of `channels` bands of ds (the
 * spread channels of a target; mmgeo_target). */
void mmgeo_spread_describe(GDALDatasetH ds, int channels, int spread);
/* ---- the window cache (cache.c): memory LRU + SQLite; thread-safe --------------------------- */
typedef struct mmgeo_cache mmgeo_cache;
/* path NULL or "": memory only; mem_bytes 0: no memory cache. */
int mmgeo_cache_open(const char *path, size_t mem_bytes, mmgeo_cache **out, char *err,
                     size_t errlen);
void mmgeo_cache_close(mmgeo_cache *c);
/* 1 (and n bytes copied into buf) when key holds a value of n bytes, else 0. */
int mmgeo_cache_mem_get(mmgeo_cache *c, const uint8_t key[32], void *buf, size_t n);
void mmgeo_cache_mem_put(mmgeo_cache *c, const uint8_t key[32], const void *buf, size_t n);
int mmgeo_cache_disk_get(mmgeo_cache *c, const uint8_t key[32], void *buf, size_t n);
/* source, ident: the sources' paths and identity (paths, sizes, modification times) */
void mmgeo_cache_disk_put(mmgeo_cache *c, const uint8_t key[32], const char *source,
                          const char *ident, const void *buf, size_t n);
/* Deletes the stored windows of `source` whose identity is not `ident` (a changed file). */
void mmgeo_cache_disk_purge(mmgeo_cache *c, const char *source, const char *ident);
long long mmgeo_cache_disk_errors(mmgeo_cache *c);
#endif
