/*
 * mm_make_sar_units DIR: one small SAR scene (72 x 54, UTM 32N, 10 m; sigma0 from -20 to -1 dB)
 * as users hold it, for tests/geo/sar_units.sh:
 *   sar_db.tif       Float32 sigma0 dB, no unit type, no SAR_UNITS item
 *   sar_dbunit.tif   the same with the band unit type "dB"
 *   sar_dbmeta.tif   the same with the dataset item SAR_UNITS=db
 *   sar_linear.tif   Float32 10^(dB / 10)
 *   sar_amp.tif      UInt16 DN = round(A 10^(dB / 20)), A = MMGEO_SAR_CAL_A
 *   sar_ampf.tif     the same DN as Float32 (median far above 1.5: refused without units)
 *   sar_vvvh.tif     2 bands, descriptions VV (the linear scene times 3) and VH (the linear scene)
 *   sar_pol.tif      2 bands, POLARISATION items VH (the linear scene) and VV
 *   sar_two.tif      2 bands without labels, band 2 the linear scene
 * mm_make_sar_units --maxdiff A B: the largest |a - b| over the pixels of all bands of two rasters
 * of one size (NaN when they differ in size or bands).
 */
#include <cpl_string.h>
#include <gdal.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmgeo.h"
#include "rasters.h"

enum { W = 72, H = 54 };

static double scene_db(int x, int y) {
    const double f = 0.5 + 0.3 * sin(x / 7.0) * cos(y / 5.0) + 0.2 * sin((x + y) / 11.0);
    return -20.0 + 19.0 * f; /* f in [0, 1] */
}

typedef enum { V_DB, V_LINEAR, V_AMP } value_kind;

static double value(value_kind k, int x, int y, double scale) {
    const double d = scene_db(x, y);
    switch (k) {
    case V_DB: return d;
    case V_LINEAR: return scale * pow(10.0, d / 10.0);
    default: return floor(MMGEO_SAR_CAL_A * pow(10.0, d / 20.0) + 0.5);
    }
}

/* label: per band "D:text" (description) or "P:text" (POLARISATION item) or NULL */
static int write_raster(const char *dir, const char *name, GDALDataType t, int nb,
                        const value_kind *k, const double *scale, const char *const *label,
                        const char *unit, const char *item) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    GDALDatasetH ds = GDALCreate(GDALGetDriverByName("GTiff"), path, W, H, nb, t, NULL);
    if (!ds) return 1;
    raster_set_utm(ds); /* the 10 m UTM 32N grid of the test rasters */
    if (item) GDALSetMetadataItem(ds, "SAR_UNITS", item, NULL);
    double buf[W * H];
    int bad = 0;
    for (int b = 0; b < nb; b++) {
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                buf[y * W + x] = value(k[b], x, y, scale[b]);
        GDALRasterBandH band = GDALGetRasterBand(ds, b + 1);
        if (unit) GDALSetRasterUnitType(band, unit);
        if (label && label[b]) {
            if (label[b][0] == 'D')
                GDALSetDescription(band, label[b] + 2);
            else
                GDALSetMetadataItem(band, "POLARISATION", label[b] + 2, NULL);
        }
        bad |= GDALRasterIO(band, GF_Write, 0, 0, W, H, buf, W, H, GDT_Float64, 0, 0) != CE_None;
    }
    GDALClose(ds);
    if (bad) fprintf(stderr, "mm_make_sar_units: cannot write %s\n", path);
    return bad;
}

static int maxdiff(const char *a, const char *b) {
    GDALDatasetH da = GDALOpen(a, GA_ReadOnly), db = GDALOpen(b, GA_ReadOnly);
    double m = 0;
    if (!da || !db || GDALGetRasterXSize(da) != GDALGetRasterXSize(db) ||
        GDALGetRasterYSize(da) != GDALGetRasterYSize(db) ||
        GDALGetRasterCount(da) != GDALGetRasterCount(db)) {
        m = NAN;
    } else {
        const int w = GDALGetRasterXSize(da), h = GDALGetRasterYSize(da);
        double *x = malloc(sizeof(double) * (size_t)w * h),
               *y = malloc(sizeof(double) * (size_t)w * h);
        for (int k = 1; x && y && k <= GDALGetRasterCount(da); k++) {
            if (GDALRasterIO(GDALGetRasterBand(da, k), GF_Read, 0, 0, w, h, x, w, h, GDT_Float64, 0,
                             0) != CE_None ||
                GDALRasterIO(GDALGetRasterBand(db, k), GF_Read, 0, 0, w, h, y, w, h, GDT_Float64, 0,
                             0) != CE_None) {
                m = NAN;
                break;
            }
            for (size_t i = 0; i < (size_t)w * h; i++)
                if (fabs(x[i] - y[i]) > m || x[i] != x[i] || y[i] != y[i])
                    m = x[i] == x[i] && y[i] == y[i] ? fabs(x[i] - y[i]) : NAN;
        }
        free(x), free(y);
    }
    if (da) GDALClose(da);
    if (db) GDALClose(db);
    printf("%.9g\n", m);
    return m == m ? 0 : 1;
}

int main(int argc, char **argv) {
    GDALAllRegister();
    if (argc == 4 && !strcmp(argv[1], "--maxdiff")) return maxdiff(argv[2], argv[3]);
    if (argc != 2) {
        fprintf(stderr, "usage: mm_make_sar_units DIR | --maxdiff A B\n");
        return 2;
    }
    const char *d = argv[1];
    const value_kind db[1] = {V_DB}, lin[1] = {V_LINEAR}, amp[1] = {V_AMP},
                     lin2[2] = {V_LINEAR, V_LINEAR};
    const double one[2] = {1, 1}, vv_vh[2] = {3, 1}, vh_vv[2] = {1, 3}, two[2] = {3, 1};
    const char *desc[2] = {"D:VV", "D:VH"}, *pol[2] = {"P:VH", "P:VV"};
    int bad = write_raster(d, "sar_db.tif", GDT_Float32, 1, db, one, NULL, NULL, NULL);
    bad |= write_raster(d, "sar_dbunit.tif", GDT_Float32, 1, db, one, NULL, "dB", NULL);
    bad |= write_raster(d, "sar_dbmeta.tif", GDT_Float32, 1, db, one, NULL, NULL, "db");
    bad |= write_raster(d, "sar_linear.tif", GDT_Float32, 1, lin, one, NULL, NULL, NULL);
    bad |= write_raster(d, "sar_amp.tif", GDT_UInt16, 1, amp, one, NULL, NULL, NULL);
    bad |= write_raster(d, "sar_ampf.tif", GDT_Float32, 1, amp, one, NULL, NULL, NULL);
    bad |= write_raster(d, "sar_vvvh.tif", GDT_Float32, 2, lin2, vv_vh, desc, NULL, NULL);
    bad |= write_raster(d, "sar_pol.tif", GDT_Float32, 2, lin2, vh_vv, pol, NULL, NULL);
    bad |= write_raster(d, "sar_two.tif", GDT_Float32, 2, lin2, two, NULL, NULL, NULL);
    GDALDestroyDriverManager();
    return bad;
}
