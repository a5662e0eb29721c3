/*
 * The scene simulator (docs/simulator.md). Pass 1 lays out land cover in world coordinates
 * (metres, so features keep their size at any ground sample distance); pass 2 renders each
 * modality from the class and per-object attributes of every pixel.
 *
 * Randomness is a hash of (seed, stream, integer coordinates): a pixel's values do not depend
 * on the scene size or on how the scene is cut, so two runs with one seed agree everywhere.
 */
#include "mmsim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const class_names[MM_SIM_N_CLASSES] = {
    "water", "forest", "grassland", "cropland", "bare soil", "urban ground", "building", "road"};

const char *mm_sim_class_name(int c) {
    return (c >= 0 && c < MM_SIM_N_CLASSES) ? class_names[c] : "unknown";
}

void mm_sim_params_default(mm_sim_params *p) {
    p->width = p->height = 256;
    p->gsd = 2.0;
    p->sar_looks = 4;
    p->sun_elevation_deg = 45.0;
    p->origin_x = p->origin_y = 0.0;
}

/* ---- hashing and noise ------------------------------------------------------------------- */

static inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t hash3(uint64_t seed, uint64_t stream, int64_t a, int64_t b) {
    return mix64(seed ^ mix64(stream * 0x9e3779b97f4a7c15ull ^ mix64((uint64_t)a * 0x632be59bd9b4e019ull ^
                                                                    (uint64_t)b * 0x85157af5ull)));
}

static inline double unit(uint64_t h) { return (double)(h >> 11) * (1.0 / 9007199254740992.0); }

/* Smooth value noise in [0, 1] at world position (x, y) with the given cell size. */
static double value_noise(uint64_t seed, uint64_t stream, double x, double y, double cell) {
    const double gx = x / cell, gy = y / cell;
    const double fx = floor(gx), fy = floor(gy);
    const int64_t ix = (int64_t)fx, iy = (int64_t)fy;
    double tx = gx - fx, ty = gy - fy;
    tx = tx * tx * (3 - 2 * tx);
    ty = ty * ty * (3 - 2 * ty);
    const double a = unit(hash3(seed, stream, ix, iy)), b = unit(hash3(seed, stream, ix + 1, iy));
    const double c = unit(hash3(seed, stream, ix, iy + 1)), d = unit(hash3(seed, stream, ix + 1, iy + 1));
    return (a + (b - a) * tx) + ((c + (d - c) * tx) - (a + (b - a) * tx)) * ty;
}

/* Fractal sum of 4 octaves, normalised to [0, 1]. */
static double fbm(uint64_t seed, uint64_t stream, double x, double y, double cell) {
    double sum = 0, amp = 1, norm = 0;
    for (int o = 0; o < 4; o++) {
        sum += amp * value_noise(seed, stream * 16 + (uint64_t)o, x, y, cell);
        norm += amp;
        amp *= 0.5;
        cell *= 0.5;
    }
    return sum / norm;
}

/* ---- layout -------------------------------------------------------------------------------- */

typedef struct {
    double angle, spacing_u, spacing_v; /* parcel grid */
    double river_angle, river_y0, river_amp, river_wave, river_width;
    int n_rivers;
    double urban_angle, block, road_width;
    double road_angle, road_offset;
    double building_height;
    double sun_az; /* radians, direction the light comes from */
} layout;

static void make_layout(uint64_t seed, layout *L) {
    const double pi = 3.14159265358979323846;
    L->angle = unit(hash3(seed, 1, 0, 0)) * pi;
    L->spacing_u = 80 + 80 * unit(hash3(seed, 1, 1, 0));
    L->spacing_v = 60 + 60 * unit(hash3(seed, 1, 2, 0));
    L->n_rivers = (int)(unit(hash3(seed, 1, 3, 0)) * 2.2);
    L->river_angle = unit(hash3(seed, 1, 4, 0)) * pi;
    L->river_y0 = (unit(hash3(seed, 1, 5, 0)) - 0.5) * 400;
    L->river_amp = 40 + 120 * unit(hash3(seed, 1, 6, 0));
    L->river_wave = 300 + 500 * unit(hash3(seed, 1, 7, 0));
    L->river_width = 14 + 26 * unit(hash3(seed, 1, 8, 0));
    L->urban_angle = unit(hash3(seed, 1, 9, 0)) * pi / 2;
    L->block = 60 + 50 * unit(hash3(seed, 1, 10, 0));
    L->road_width = 8 + 5 * unit(hash3(seed, 1, 11, 0));
    L->road_angle = unit(hash3(seed, 1, 12, 0)) * pi;
    L->road_offset = (unit(hash3(seed, 1, 13, 0)) - 0.5) * 600;
    L->building_height = 6 + 14 * unit(hash3(seed, 1, 14, 0));
    L->sun_az = 2.2 + 0.6 * unit(hash3(seed, 1, 15, 0));
}

static inline double floor_mod(double a, double m) { return a - m * floor(a / m); }

/* Class of world point (x, y) and an attribute hash (parcel or building identity). The scene is
 * centred on the origin so that its layout does not depend on its size. */
static int classify(uint64_t seed, const layout *L, double x, double y, uint32_t *attr) {
    *attr = 0;
    /* rivers: distance across a meandering centre line */
    for (int r = 0; r < L->n_rivers; r++) {
        const double a = L->river_angle + r * 1.1;
        const double u = x * cos(a) + y * sin(a), v = -x * sin(a) + y * cos(a);
        const double centre = L->river_y0 + r * 350 + L->river_amp * sin(u / L->river_wave * 6.283) +
                              60 * (fbm(seed, 40 + r, u, 0, 400) - 0.5);
        if (fabs(v - centre) < L->river_width / 2) return MM_SIM_WATER;
    }
    /* a main road crossing the scene */
    {
        const double a = L->road_angle;
        const double v = -x * sin(a) + y * cos(a) - L->road_offset;
        if (fabs(v) < L->road_width / 2) return MM_SIM_ROAD;
    }
    const double terrain = fbm(seed, 2, x, y, 700);
    if (terrain < 0.30) return MM_SIM_WATER; /* lakes in the lowest ground */
    /* urban patches: a road grid with buildings in the blocks */
    const double urban = fbm(seed, 3, x, y, 900);
    if (urban > 0.62) {
        const double a = L->urban_angle;
        const double u = x * cos(a) + y * sin(a), v = -x * sin(a) + y * cos(a);
        const double bu = floor_mod(u, L->block), bv = floor_mod(v, L->block);
        if (bu < L->road_width || bv < L->road_width) return MM_SIM_ROAD;
        const double lot = (L->block - L->road_width) / 2; /* 2 x 2 lots per block */
        const double lu = bu - L->road_width, lv = bv - L->road_width;
        const int64_t iu = (int64_t)floor(u / L->block) * 2 + (lu >= lot);
        const int64_t iv = (int64_t)floor(v / L->block) * 2 + (lv >= lot);
        const uint64_t h = hash3(seed, 5, iu, iv);
        const double pu = floor_mod(lu, lot), pv = floor_mod(lv, lot);
        const double inset = 2 + 4 * unit(h >> 3);
        if (unit(h) < 0.8 && pu > inset && pu < lot - inset && pv > inset && pv < lot - inset) {
            *attr = (uint32_t)(h >> 32) | 1u;
            return MM_SIM_BUILDING;
        }
        return MM_SIM_URBAN;
    }
    /* agriculture: rotated grid of parcels with grass margins */
    const double agri = fbm(seed, 4, x, y, 1100);
    if (agri > 0.5) {
        const double a = L->angle;
        const double u = x * cos(a) + y * sin(a), v = -x * sin(a) + y * cos(a);
        const double pu = floor_mod(u, L->spacing_u), pv = floor_mod(v, L->spacing_v);
        if (pu < 3 || pv < 3) return MM_SIM_GRASS;
        const uint64_t h = hash3(seed, 6, (int64_t)floor(u / L->spacing_u), (int64_t)floor(v / L->spacing_v));
        *attr = (uint32_t)(h >> 32);
        return unit(h) < 0.15 ? MM_SIM_BARE : MM_SIM_CROP;
    }
    const double moist = fbm(seed, 7, x, y, 500);
    if (moist > 0.56) return MM_SIM_FOREST;
    if (moist < 0.36) return MM_SIM_BARE;
    return MM_SIM_GRASS;
}

/* ---- rendering ------------------------------------------------------------------------------ */

typedef struct {
    float r, g, b, nir, sar_db;
} material;

/* Reflectances and backscatter of each class before texture (docs/simulator.md, table). */
static material base_material(int cls, uint32_t attr) {
    switch (cls) {
    case MM_SIM_WATER: return (material){0.04f, 0.07f, 0.09f, 0.02f, -23.0f};
    case MM_SIM_FOREST: return (material){0.05f, 0.11f, 0.05f, 0.45f, -7.5f};
    case MM_SIM_GRASS: return (material){0.10f, 0.19f, 0.08f, 0.40f, -12.0f};
    case MM_SIM_CROP: {
        static const material crops[3] = {{0.08f, 0.20f, 0.06f, 0.52f, -9.0f},   /* green crop */
                                          {0.30f, 0.27f, 0.12f, 0.32f, -11.5f},  /* ripe grain */
                                          {0.22f, 0.16f, 0.11f, 0.24f, -14.0f}}; /* ploughed */
        return crops[attr % 3];
    }
    case MM_SIM_BARE: return (material){0.30f, 0.25f, 0.19f, 0.33f, -15.0f};
    case MM_SIM_URBAN: return (material){0.24f, 0.24f, 0.23f, 0.25f, -10.0f};
    case MM_SIM_BUILDING: {
        static const material roofs[3] = {{0.35f, 0.15f, 0.12f, 0.30f, -5.0f},  /* tiles */
                                          {0.40f, 0.40f, 0.40f, 0.36f, -6.0f},  /* concrete */
                                          {0.60f, 0.60f, 0.58f, 0.50f, -4.0f}}; /* bright */
        return roofs[(attr >> 4) % 3];
    }
    default: return (material){0.13f, 0.13f, 0.14f, 0.15f, -20.0f}; /* road: smooth, dark */
    }
}

static const uint8_t osm_colours[MM_SIM_N_CLASSES][3] = {
    {170, 211, 223}, /* water */
    {173, 209, 158}, /* wood */
    {205, 235, 176}, /* grass */
    {238, 240, 213}, /* farmland */
    {234, 224, 200}, /* bare ground / sand */
    {224, 223, 223}, /* residential */
    {217, 208, 201}, /* building */
    {255, 255, 255}, /* road */
};
static const uint8_t osm_road_casing[3] = {187, 187, 187};
static const uint8_t osm_building_outline[3] = {196, 188, 180};

int mm_sim_osm_palette(uint8_t (*colour)[3], uint8_t *cls, int max) {
    for (int i = 0; i < MM_SIM_OSM_N_COLOURS && i < max; i++) {
        const int c = i < MM_SIM_N_CLASSES ? i : i == MM_SIM_N_CLASSES ? MM_SIM_ROAD : MM_SIM_BUILDING;
        const uint8_t *col = i < MM_SIM_N_CLASSES ? osm_colours[i]
                             : c == MM_SIM_ROAD   ? osm_road_casing
                                                  : osm_building_outline;
        if (colour) memcpy(colour[i], col, 3);
        if (cls) cls[i] = (uint8_t)c;
    }
    return MM_SIM_OSM_N_COLOURS;
}

static inline float clamp01(double v) { return (float)(v < 0 ? 0 : v > 1 ? 1 : v); }

int mm_sim_render(uint64_t seed, const mm_sim_params *p, uint8_t *label, float *rgb, float *nir,
                  float *pan, float *sar, uint8_t *osm) {
    if (!p || p->width < 1 || p->height < 1 || p->width > (1 << 20) || p->height > (1 << 20) ||
        !(p->gsd > 0.01 && p->gsd < 1000) || p->sar_looks < 1 || p->sar_looks > 64)
        return -1;
    const int W = p->width, H = p->height;
    const size_t n = (size_t)W * H;
    uint8_t *cls = malloc(n);
    uint32_t *attr = malloc(n * sizeof(uint32_t));
    if (!cls || !attr) {
        free(cls);
        free(attr);
        return -1;
    }
    layout L;
    make_layout(seed, &L);
    const double g = p->gsd;
    /* pixel centres in metres, scene centred on the origin */
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            const double wx = p->origin_x + (x + 0.5 - W / 2.0) * g;
            const double wy = p->origin_y + (y + 0.5 - H / 2.0) * g;
            cls[(size_t)y * W + x] = (uint8_t)classify(seed, &L, wx, wy, &attr[(size_t)y * W + x]);
        }
    const double elev = p->sun_elevation_deg * 3.14159265358979323846 / 180;
    const double shadow_len = L.building_height / tan(elev) / g; /* pixels */
    const double sdx = cos(L.sun_az), sdy = sin(L.sun_az);
    const double illum = 0.55 + 0.45 * sin(elev);
    const int radar_shadow = (int)ceil(L.building_height * 0.5 / g); /* sensor looks east */
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            const size_t i = (size_t)y * W + x;
            const int c = cls[i];
            const double wx = p->origin_x + (x + 0.5 - W / 2.0) * g;
            const double wy = p->origin_y + (y + 0.5 - H / 2.0) * g;
            material m = base_material(c, attr[i]);
            /* texture: canopy clumps, crop rows, soil roughness, water ripples */
            double tex = 1.0;
            const double fine = fbm(seed, 20, wx, wy, 6) - 0.5;
            switch (c) {
            case MM_SIM_FOREST: tex = 1.0 + 0.9 * fine + 0.25 * (fbm(seed, 21, wx, wy, 2.5) - 0.5); break;
            case MM_SIM_CROP: {
                const double u = wx * cos(L.angle) + wy * sin(L.angle);
                tex = 1.0 + 0.12 * sin(u * 6.283 / 3.0) + 0.2 * fine;
                break;
            }
            case MM_SIM_WATER: tex = 1.0 + 0.15 * fine; break;
            case MM_SIM_BUILDING: tex = 1.0 + 0.05 * fine; break;
            default: tex = 1.0 + 0.35 * fine; break;
            }
            /* cast shadows of buildings (optical) */
            double shade = 1.0;
            if (c != MM_SIM_BUILDING && shadow_len >= 1) {
                for (double s = 1; s <= shadow_len; s += 1) {
                    const int sx = x + (int)lround(s * sdx), sy = y + (int)lround(s * sdy);
                    if (sx >= 0 && sx < W && sy >= 0 && sy < H && cls[(size_t)sy * W + sx] == MM_SIM_BUILDING) {
                        shade = 0.45;
                        break;
                    }
                }
            }
            const double haze = 0.92 + 0.16 * fbm(seed, 22, wx, wy, 1500);
            const double k = illum * shade * haze;
            const float R = clamp01(m.r * tex * k), G = clamp01(m.g * tex * k), B = clamp01(m.b * tex * k);
            const float N = clamp01(m.nir * (1.0 + 0.7 * (tex - 1.0)) * k);
            if (label) label[i] = (uint8_t)c;
            if (rgb) {
                rgb[i] = R;
                rgb[n + i] = G;
                rgb[2 * n + i] = B;
            }
            if (nir) nir[i] = N;
            if (pan) pan[i] = clamp01(0.25 * R + 0.35 * G + 0.15 * B + 0.25 * N);
            if (sar) {
                double db = m.sar_db + 1.5 * fine * (c == MM_SIM_FOREST ? 1.5 : 1.0);
                if (c == MM_SIM_WATER) db += 3.0 * (fbm(seed, 23, wx, wy, 200) - 0.5); /* wind */
                if (c == MM_SIM_BUILDING) {
                    /* double bounce at the wall facing the sensor (looking east: the west wall) */
                    if (x > 0 && cls[i - 1] != MM_SIM_BUILDING) db = 8.0;
                    else if (unit(hash3(seed, 24, (int64_t)floor(wx / g), (int64_t)floor(wy / g))) < 0.03)
                        db = 4.0; /* point scatterers */
                } else {
                    for (int s = 1; s <= radar_shadow; s++) /* radar shadow east of buildings */
                        if (x - s >= 0 && cls[i - s] == MM_SIM_BUILDING) {
                            db = -24.0;
                            break;
                        }
                }
                /* multiplicative gamma speckle of L looks: mean of L unit exponentials */
                double sp = 0;
                const int64_t px = (int64_t)floor(wx / g), py = (int64_t)floor(wy / g);
                for (int l = 0; l < p->sar_looks; l++)
                    sp += -log(1.0 - unit(hash3(seed, 25 + (uint64_t)l, px, py)));
                sp /= p->sar_looks;
                sar[i] = (float)(db + 10.0 * log10(sp > 1e-12 ? sp : 1e-12));
            }
            if (osm) {
                const uint8_t *col = osm_colours[c];
                uint8_t o[3] = {col[0], col[1], col[2]};
                if (c == MM_SIM_ROAD) { /* casing: road pixels at the road's edge */
                    const int edge = (x > 0 && cls[i - 1] != MM_SIM_ROAD) || (x + 1 < W && cls[i + 1] != MM_SIM_ROAD) ||
                                     (y > 0 && cls[i - W] != MM_SIM_ROAD) || (y + 1 < H && cls[i + W] != MM_SIM_ROAD);
                    if (edge) memcpy(o, osm_road_casing, 3);
                }
                if (c == MM_SIM_BUILDING) { /* building outline */
                    const int edge = (x > 0 && cls[i - 1] != c) || (x + 1 < W && cls[i + 1] != c) ||
                                     (y > 0 && cls[i - W] != c) || (y + 1 < H && cls[i + W] != c);
                    if (edge) memcpy(o, osm_building_outline, 3);
                }
                osm[i] = o[0];
                osm[n + i] = o[1];
                osm[2 * n + i] = o[2];
            }
        }
    free(cls);
    free(attr);
    return 0;
}
