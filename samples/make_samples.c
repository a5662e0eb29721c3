/*
 * mm_make_samples DIR [WIDTH HEIGHT]: writes small synthetic georeferenced scenes (UTM 32N,
 * 10 m pixels) of one landscape (a river, fields, a block of buildings) in three modalities:
 *   scene_sar.tif  Float32 SAR backscatter intensity (linear sigma0), nodata -9999 in a corner
 *   scene_rgb.tif  Byte RGB
 *   scene_nir.tif  UInt16 near-infrared reflectance (0..10000)
 * The samples in samples/ were made with `mm_make_samples samples` (100 x 70 pixels).
 */
#define _POSIX_C_SOURCE 200809L
#include <cpl_string.h>
#include <gdal.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "rasters.h" /* tests/geo: raster_set_utm */

static const char *TOOL = "mm_make_samples";

static void usage(FILE *f) {
    fprintf(f, "Usage: mm_make_samples [--help] [--help-general] [--version] DIR [WIDTH HEIGHT]\n"
               "Writes DIR/scene_sar.tif (Float32 linear sigma0, nodata -9999 in a corner),\n"
               "DIR/scene_rgb.tif (Byte RGB) and DIR/scene_nir.tif (UInt16 NIR): one synthetic\n"
               "landscape in UTM 32N at 10 m, WIDTH x HEIGHT pixels (default 100 x 70).\n");
}

enum { WATER, FIELD, BUILDING };

static int land(int x, int y, int W, int H, double *tex) {
    const double u = (double)x / W, v = (double)y / H;
    *tex = 0.5 + 0.5 * sin(40 * u + 3 * floor(5 * v)) * sin(37 * v + 2 * floor(4 * u));
    if (fabs(v - 0.5 - 0.15 * sin(6.28 * u)) < 0.06) return WATER;
    if (u > 0.65 && u < 0.9 && v > 0.1 && v < 0.35) return BUILDING;
    return FIELD;
}

static double sar(int cls, double tex, int b);

static int write_scene(const char *dir, const char *name, int W, int H, int nb, GDALDataType t,
                 int nodata_corner, double (*value)(int cls, double tex, int band)) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char **co = CSLSetNameValue(NULL, "COMPRESS", "DEFLATE");
    co = CSLSetNameValue(co, "TILED", "YES");
    co = CSLSetNameValue(co, "BLOCKXSIZE", "64"); /* the GTiff driver needs multiples of 16 */
    co = CSLSetNameValue(co, "BLOCKYSIZE", "64");
    if (nb == 3 && t == GDT_Byte) co = CSLSetNameValue(co, "PHOTOMETRIC", "RGB");
    GDALDatasetH ds = GDALCreate(GDALGetDriverByName("GTiff"), path, W, H, nb, t, co);
    CSLDestroy(co);
    if (!ds) return 1;
    raster_set_utm(ds); /* the 10 m UTM 32N grid of the test rasters */
    /* SAR: linear sigma0, said so (mm_translate reads it without --sar-units) */
    if (value == sar) GDALSetMetadataItem(ds, "SAR_UNITS", "linear", NULL);
    double *buf = malloc(sizeof(double) * (size_t)W * H);
    int bad = !buf;
    for (int b = 0; b < nb && !bad; b++) {
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                double tex;
                int cls = land(x, y, W, H, &tex);
                buf[(size_t)y * W + x] =
                    nodata_corner && x + y < W / 8 ? -9999 : value(cls, tex, b);
            }
        GDALRasterBandH band = GDALGetRasterBand(ds, b + 1);
        if (nodata_corner) GDALSetRasterNoDataValue(band, -9999);
        bad |= GDALRasterIO(band, GF_Write, 0, 0, W, H, buf, W, H, GDT_Float64, 0, 0) != CE_None;
    }
    free(buf);
    CPLErrorReset();
    GDALClose(ds);
    bad |= CPLGetLastErrorType() >= CE_Failure;
    if (bad) fprintf(stderr, "mm_make_samples: cannot write %s\n", path);
    else printf("%s\n", path);
    return bad;
}

static double sar(int cls, double tex, int b) {
    (void)b;
    const double db = cls == WATER ? -22 + 2 * tex : cls == BUILDING ? 2 + 3 * tex : -12 + 5 * tex;
    return pow(10.0, db / 10.0);
}
static double rgb(int cls, double tex, int b) {
    static const double water[3] = {30, 60, 90}, field[3] = {70, 110, 40}, bld[3] = {150, 140, 135};
    const double *c = cls == WATER ? water : cls == BUILDING ? bld : field;
    return floor(c[b] + 50 * tex);
}
static double nir(int cls, double tex, int b) {
    (void)b;
    return floor(cls == WATER ? 300 + 200 * tex : cls == BUILDING ? 2000 + 800 * tex
                                                              : 3500 + 2500 * tex);
}

int main(int argc, char **argv) {
    if (mm_args_general(TOOL, argc, argv, usage, "GDAL", GDALVersionInfo("RELEASE_NAME")))
        return 0;
    /* "--" ends the options; any other argument starting with '-' is not a directory here */
    int a = 1;
    if (a < argc && !strcmp(argv[a], "--")) a++;
    else if (a < argc && argv[a][0] == '-' && argv[a][1]) {
        fprintf(stderr, "%s: unknown option '%s'\n", TOOL, argv[a]);
        usage(stderr);
        return 2;
    }
    argv += a - 1;
    argc -= a - 1;
    if (argc != 2 && argc != 4) {
        usage(stderr);
        return 2;
    }
    const int W = argc == 4 ? atoi(argv[2]) : 100, H = argc == 4 ? atoi(argv[3]) : 70;
    if (W < 1 || H < 1) {
        fprintf(stderr, "mm_make_samples: bad size\n");
        return 2;
    }
    GDALAllRegister();
    int bad = write_scene(argv[1], "scene_sar.tif", W, H, 1, GDT_Float32, 1, sar);
    bad |= write_scene(argv[1], "scene_rgb.tif", W, H, 3, GDT_Byte, 0, rgb);
    bad |= write_scene(argv[1], "scene_nir.tif", W, H, 1, GDT_UInt16, 0, nir);
    GDALDestroyDriverManager();
    return bad;
}
