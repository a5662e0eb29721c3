/* Blending window results into output pixels: the one implementation that mmgeo_run and the
 * region renderer (region.c) share, so that their pixels are bit-identical. */
#include <math.h>

#include "internal.h"

int mmgeo_type_representable(GDALDataType t, double v) {
    if (GDALDataTypeIsFloating(t)) return 1;
    if (v != floor(v)) return 0;
    switch (t) {
    case GDT_Byte: return v >= 0 && v <= 255;
    case GDT_UInt16: return v >= 0 && v <= 65535;
    case GDT_Int16: return v >= -32768 && v <= 32767;
    case GDT_UInt32: return v >= 0 && v <= 4294967295.0;
    case GDT_Int32: return v >= -2147483648.0 && v <= 2147483647.0;
    default: return 0;
    }
}

void mmgeo_blend_add(const float *w1, int So, int wx0, int wy0, int gw, int gh, int ax0, int ay0,
                     int aw, int ah, size_t plane, int nt, const int *channels,
                     const float *const *res, float *wsum, float *const *acc) {
    int pa = ax0 - wx0 > 0 ? ax0 - wx0 : 0, pb = ax0 + aw - wx0 < So ? ax0 + aw - wx0 : So;
    if (gw - wx0 < pb) pb = gw - wx0;
    if (pa < -wx0) pa = -wx0;
    const size_t oplane = (size_t)So * So;
    for (int py = 0; py < So && wy0 + py < gh; py++) {
        const int Y = wy0 + py;
        if (Y < ay0 || Y >= ay0 + ah || Y < 0) continue;
        const float wy = w1[py];
        const size_t row = (size_t)(Y - ay0) * aw;
        float *ws = wsum + row + (wx0 - ax0);
        for (int px = pa; px < pb; px++)
            ws[px] += wy * w1[px];
        for (int j = 0; j < nt; j++)
            for (int c = 0; c < channels[j]; c++) {
                const float *d = res[j] + (size_t)c * oplane + (size_t)py * So;
                float *a = acc[j] + (size_t)c * plane + row + (wx0 - ax0);
                for (int px = pa; px < pb; px++)
                    a[px] += wy * w1[px] * d[px];
            }
    }
}
