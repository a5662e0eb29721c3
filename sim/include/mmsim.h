/*
 * mmsim: a physically motivated simulator of paired multi-modal scenes (docs/simulator.md).
 * One random land-cover layout (water bodies and rivers, forest, grassland, cropland parcels,
 * bare soil, urban blocks with buildings and roads) rendered as RGB, NIR, PAN, SAR and an OSM-style
 * map, plus the label map. Deterministic by seed; any size; no GDAL (mm_simulate adds the
 * georeferencing and writes GeoTIFFs).
 */
#ifndef MMSIM_H
#define MMSIM_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    MM_SIM_WATER = 0,
    MM_SIM_FOREST,
    MM_SIM_GRASS,
    MM_SIM_CROP,
    MM_SIM_BARE,
    MM_SIM_URBAN, /* sealed ground between buildings */
    MM_SIM_BUILDING,
    MM_SIM_ROAD,
    MM_SIM_N_CLASSES
};

const char *mm_sim_class_name(int c);

/* The OSM rendering's map colours: one fill per class plus the road casing (road pixels at a
 * road's edge) and the building outline, each with the class it stands for. Writes at most max
 * entries into colour and cls (either may be NULL) and returns the number of map colours,
 * MM_SIM_OSM_N_COLOURS. Classifying a rendering by the nearest of these recovers its label map. */
enum { MM_SIM_OSM_N_COLOURS = MM_SIM_N_CLASSES + 2 };
int mm_sim_osm_palette(uint8_t (*colour)[3], uint8_t *cls, int max);

typedef struct {
    int width, height;
    double gsd;       /* metres per pixel (scales features: rivers, parcels, buildings) */
    int sar_looks;    /* L of the gamma speckle (>= 1) */
    double sun_elevation_deg;
    double origin_x, origin_y; /* world position of the scene centre, metres (y down) */
} mm_sim_params;

void mm_sim_params_default(mm_sim_params *p);

/* All outputs width x height, row-major, caller-allocated (any may be NULL to skip):
 *   label  uint8 class index
 *   rgb    3 planes, reflectance in [0, 1]
 *   nir    1 plane, reflectance in [0, 1]
 *   pan    1 plane, reflectance in [0, 1]
 *   sar    1 plane, backscatter sigma0 in dB (with speckle)
 *   osm    3 planes, uint8 map colours
 * Returns 0, or -1 on invalid parameters or out of memory. Thread-safe (no global state). */
int mm_sim_render(uint64_t seed, const mm_sim_params *p, uint8_t *label, float *rgb, float *nir,
                  float *pan, float *sar, uint8_t *osm);

#ifdef __cplusplus
}
#endif
#endif
