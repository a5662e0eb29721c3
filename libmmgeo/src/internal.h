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

/* The inverse profile as a linear map with rounding and clipping (the per-pixel loop's form). */
typedef struct {
    double a, b, lo, hi;
    int integer;
    int raw; /* values as they are (MMGEO_IO_RAW) */
} mmgeo_output_map;
void mmgeo_profile_output_map(const mmgeo_profile *p, GDALDataType t, mmgeo_output_map *m);
static inline double mmgeo_output_apply(const mmgeo_output_map *m, float v) {
    if (m->raw) return v;
    double x = v < -1.0f ? -1.0 : v > 1.0f ? 1.0 : v == v ? (double)v : 0.0; /* NaN -> 0 */
    double y = m->a * x + m->b;
    if (m->integer) {
        y = floor(y + 0.5);
        y = y < m->lo ? m->lo : y > m->hi ? m->hi : y;
    }
    return y;
}

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
#endif
