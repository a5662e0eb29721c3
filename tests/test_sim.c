/*
 * The scene simulator: deterministic by seed, independent of the scene size (a scene is a window
 * on a fixed world), and the modality physics of docs/simulator.md hold on average per class.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mmsim.h"

typedef struct {
    int W, H;
    uint8_t *label, *osm;
    float *rgb, *nir, *pan, *sar;
} scene;

static scene make(uint64_t seed, int W, int H, double ox, double oy) {
    scene s = {W, H, malloc((size_t)W * H), malloc((size_t)3 * W * H), malloc(sizeof(float) * 3 * W * H),
               malloc(sizeof(float) * W * H), malloc(sizeof(float) * W * H), malloc(sizeof(float) * W * H)};
    mm_sim_params p;
    mm_sim_params_default(&p);
    p.width = W;
    p.height = H;
    p.origin_x = ox;
    p.origin_y = oy;
    assert_int_equal(mm_sim_render(seed, &p, s.label, s.rgb, s.nir, s.pan, s.sar, s.osm), 0);
    return s;
}

static void drop(scene *s) {
    free(s->label), free(s->osm), free(s->rgb), free(s->nir), free(s->pan), free(s->sar);
}

static void test_deterministic(void **st) {
    (void)st;
    scene a = make(11, 96, 80, 0, 0), b = make(11, 96, 80, 0, 0), c = make(12, 96, 80, 0, 0);
    assert_memory_equal(a.label, b.label, 96 * 80);
    assert_memory_equal(a.sar, b.sar, sizeof(float) * 96 * 80);
    assert_memory_equal(a.rgb, b.rgb, sizeof(float) * 3 * 96 * 80);
    assert_memory_not_equal(a.sar, c.sar, sizeof(float) * 96 * 80);
    drop(&a), drop(&b), drop(&c);
}

/* A 64 x 64 scene centred 32 px (at 2 m) right and down of a 128 x 128 scene's centre is that
 * scene's bottom-right quadrant, pixel for pixel. */
static void test_window_of_world(void **st) {
    (void)st;
    scene big = make(5, 128, 128, 0, 0), part = make(5, 64, 64, 64, 64);
    for (int y = 0; y < 64; y++) {
        assert_memory_equal(part.label + y * 64, big.label + (y + 64) * 128 + 64, 64);
        assert_memory_equal(part.sar + y * 64, big.sar + (y + 64) * 128 + 64, 64 * sizeof(float));
    }
    drop(&big), drop(&part);
}

static void test_physics(void **st) {
    (void)st;
    double nir[MM_SIM_N_CLASSES] = {0}, sar[MM_SIM_N_CLASSES] = {0}, cnt[MM_SIM_N_CLASSES] = {0};
    for (uint64_t seed = 1; seed <= 6; seed++) {
        scene s = make(seed, 256, 256, 900.0 * seed, -700.0 * seed);
        for (int i = 0; i < 256 * 256; i++) {
            const int c = s.label[i];
            assert_true(c < MM_SIM_N_CLASSES);
            assert_true(s.rgb[i] >= 0 && s.rgb[i] <= 1 && s.nir[i] >= 0 && s.nir[i] <= 1);
            assert_true(isfinite(s.sar[i]));
            nir[c] += s.nir[i];
            sar[c] += pow(10.0, s.sar[i] / 10.0); /* mean in linear power */
            cnt[c]++;
        }
        drop(&s);
    }
    for (int c = 0; c < MM_SIM_N_CLASSES; c++) {
        if (cnt[c] == 0) continue;
        nir[c] /= cnt[c];
        sar[c] = 10.0 * log10(sar[c] / cnt[c]);
        printf("  %-13s %7.0f px  NIR %.3f  SAR %6.1f dB\n", mm_sim_class_name(c), cnt[c], nir[c], sar[c]);
    }
    assert_true(cnt[MM_SIM_WATER] > 0 && cnt[MM_SIM_FOREST] > 0 && cnt[MM_SIM_BUILDING] > 0);
    /* NIR bright on vegetation, dark on water */
    assert_true(nir[MM_SIM_FOREST] > nir[MM_SIM_BARE] && nir[MM_SIM_FOREST] > 0.3);
    assert_true(nir[MM_SIM_WATER] < 0.05);
    assert_true(nir[MM_SIM_GRASS] > nir[MM_SIM_URBAN]);
    /* SAR: specular water darkest of the natural classes, volume-scattering forest brighter
     * than grass, buildings (double bounce) brightest */
    assert_true(sar[MM_SIM_WATER] < sar[MM_SIM_BARE] && sar[MM_SIM_WATER] < sar[MM_SIM_GRASS]);
    assert_true(sar[MM_SIM_FOREST] > sar[MM_SIM_GRASS]);
    assert_true(sar[MM_SIM_BUILDING] > sar[MM_SIM_FOREST]);
}

static void test_speckle_statistics(void **st) {
    (void)st;
    /* gamma speckle of L looks: intensity / mean has variance 1 / L (here L = 4); measured on
     * the water of a large scene (wind texture adds a little) */
    scene s = make(3, 512, 512, 0, 0);
    double sum = 0, sq = 0;
    int n = 0;
    for (int i = 0; i < 512 * 512; i++)
        if (s.label[i] == MM_SIM_GRASS) {
            const double v = pow(10.0, s.sar[i] / 10.0);
            sum += v;
            sq += v * v;
            n++;
        }
    if (n > 1000) {
        const double m = sum / n, var = sq / n - m * m;
        printf("  grass: %d px, normalised intensity variance %.3f (1/L = 0.25)\n", n, var / (m * m));
        assert_true(var / (m * m) > 0.2 && var / (m * m) < 0.45);
    }
    drop(&s);
}

static void test_bad_params(void **st) {
    (void)st;
    mm_sim_params p;
    mm_sim_params_default(&p);
    p.width = 0;
    assert_int_equal(mm_sim_render(1, &p, NULL, NULL, NULL, NULL, NULL, NULL), -1);
    mm_sim_params_default(&p);
    p.gsd = -1;
    assert_int_equal(mm_sim_render(1, &p, NULL, NULL, NULL, NULL, NULL, NULL), -1);
    assert_int_equal(mm_sim_render(1, NULL, NULL, NULL, NULL, NULL, NULL, NULL), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deterministic), cmocka_unit_test(test_window_of_world),
        cmocka_unit_test(test_physics), cmocka_unit_test(test_speckle_statistics),
        cmocka_unit_test(test_bad_params)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
