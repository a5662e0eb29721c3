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
} mmgeo_output_map;
void mmgeo_profile_output_map(const mmgeo_profile *p, GDALDataType t, mmgeo_output_map *m);
static inline double mmgeo_output_apply(const mmgeo_output_map *m, float v) {
    double x = v < -1.0f ? -1.0 : v > 1.0f ? 1.0 : v == v ? (double)v : 0.0; /* NaN -> 0 */
    double y = m->a * x + m->b;
    if (m->integer) {
        y = floor(y + 0.5);
        y = y < m->lo ? m->lo : y > m->hi ? m->hi : y;
    }
    return y;
}
#endif
