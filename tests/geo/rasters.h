/* Synthetic georeferenced rasters for the libmmgeo tests and the samples (GDAL C API). */
#ifndef MM_TEST_RASTERS_H
#define MM_TEST_RASTERS_H
#include <gdal.h>

typedef enum { GEO_NONE = 0, GEO_UTM, GEO_GEOGRAPHIC, GEO_ROTATED, GEO_GCPS } geo_kind;

typedef struct {
    int width, height, bands;
    GDALDataType type;
    geo_kind geo;
    int has_nodata;
    double nodata;
    int internal_mask; /* a per-dataset mask with a hole */
    const char *modality; /* MM_MODALITY item, or NULL */
} raster_spec;

/* The value of band b at (x, y): a scene-like pattern in the natural range of the type
 * (Byte 0..255, UInt16 0..10000, Float32 SAR intensity 10^(-2.5..0.5), complex: re/im). */
void raster_value(const raster_spec *s, int x, int y, int b, double *re, double *im);
/* Pixels set to nodata (has_nodata) or masked out (internal_mask): a block and a stripe. */
int raster_hole(const raster_spec *s, int x, int y);
/* Writes a GeoTIFF; returns 0 on success. */
int raster_write(const char *path, const raster_spec *s);
/* Georeferences ds on the 10 m grid of UTM 32N (EPSG:32632) whose top left corner is (500000,
 * 5000000), north up: GEO_UTM, and the grid of the samples (samples/make_samples.c) and of the
 * other test scenes. Returns 0 on success. */
int raster_set_utm(GDALDatasetH ds);
#endif
