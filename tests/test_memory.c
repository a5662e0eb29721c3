/*
 * Working memory planned up front, and the mosaic (docs/cuda.md "Memory", "Mosaic").
 *
 * Runs on the device MM_TEST_DEVICE names (cpu, the default; cuda: exits 77 with "SKIPPED: no
 * CUDA device (...)" where there is none, which ctest shows as skipped):
 *   - the dry-run sizing grows with the batch, and a reserved context's translation allocates
 *     nothing (mm_context_alloc_count does not move) and gives the bits of an unreserved one;
 *     a larger batch than reserved does allocate (the counter is not stuck);
 *   - a budget too small fails with MM_ERROR_NOMEM and a message naming the bytes;
 *   - the automatic batch is the largest whose need fits (checked against the sizing itself),
 *     and from the free memory it is at least one tile (its figures are printed: "auto batch:");
 *   - the mosaic (mm_mosaic_*) gives the bits of the host blending loop of libmmgeo/src/run.c
 *     (windows partly outside the strip, overlaps, shifts), on any backend.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mm.h"

static mm_device device = MM_DEVICE_CPU;
static const char *device_name = "cpu";

static mm_model *open_tiny(void) {
    mm_model *m = NULL;
    char *err = NULL;
    if (mm_model_open(MM_GOLDEN_DIR "/tiny_model.safetensors", &m, &err) != MM_OK)
        fail_msg("model: %s", err);
    return m;
}

static mm_context *new_ctx(mm_model *m) {
    mm_context_params p;
    mm_context_params_default(&p);
    p.device = device;
    p.precision = MM_PRECISION_FP32;
    p.n_threads = 2;
    mm_context *ctx = NULL;
    char *err = NULL;
    if (mm_context_create(m, &p, &ctx, &err) != MM_OK) fail_msg("context: %s", err);
    return ctx;
}

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static float urand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

typedef struct {
    int sar, rgb, S;
} mods;

static mods model_mods(mm_model *m) {
    mods x = {mm_model_modality_index(m, "sar"), mm_model_modality_index(m, "rgb"),
              mm_model_image_size(m)};
    assert_true(x.sar >= 0 && x.rgb >= 0);
    return x;
}

/* a guided sar -> rgb translation of n tiles, 2 steps */
static mm_status translate(mm_context *ctx, mm_model *m, int n, const float *src, float *out) {
    const mods md = model_mods(m);
    uint64_t ids[8] = {3, 9, 4, 1, 7, 2, 8, 5};
    assert_true(n <= 8);
    mm_sample_params sp;
    mm_sample_params_default(m, &sp);
    sp.steps = 2;
    sp.guidance = 1.5f;
    sp.seed = 77;
    const float *srcs[1] = {src};
    float *dsts[1] = {out};
    return mm_translate(ctx, &sp, n, ids, 1, &md.sar, srcs, 1, &md.rgb, dsts);
}

static mm_workload workload(const mods *md, int n) {
    return (mm_workload){n, 1, &md->sar, 1, &md->rgb, 1.5f, 0};
}

static void test_reserve(void **state) {
    (void)state;
    mm_model *m = open_tiny();
    const mods md = model_mods(m);
    const size_t img = (size_t)md.S * md.S;
    float *src = malloc(4 * img * sizeof(float));
    float *a = malloc(4 * 3 * img * sizeof(float)), *b = malloc(6 * 3 * img * sizeof(float));
    assert_non_null(src), assert_non_null(a), assert_non_null(b);
    for (size_t i = 0; i < 4 * img; i++)
        src[i] = urand();

    /* the reference: a context that grows its workspace as it goes */
    mm_context *plain = new_ctx(m);
    assert_int_equal(translate(plain, m, 3, src, a), MM_OK);
    mm_context_free(plain);

    mm_context *ctx = new_ctx(m);
    mm_memory_plan p1, p3, p6, r;
    const mm_workload w1 = workload(&md, 1), w3 = workload(&md, 3), w6 = workload(&md, 6);
    assert_int_equal(mm_context_plan(ctx, &w1, &p1), MM_OK);
    assert_int_equal(mm_context_plan(ctx, &w3, &p3), MM_OK);
    assert_int_equal(mm_context_plan(ctx, &w6, &p6), MM_OK);
    printf("need (%s): 1 tile %zu B, 3 tiles %zu B, 6 tiles %zu B (scratch %zu B)\n", device_name,
           p1.total, p3.total, p6.total, p6.scratch);
    assert_true(p1.workspace > 0 && p1.total < p3.total && p3.total < p6.total);
    assert_int_equal(p3.n_tiles, 3);
    assert_int_equal(p3.total, p3.workspace + p3.scratch);
    assert_int_equal(p3.arena, 0); /* planning alone reserves nothing */

    assert_int_equal(mm_context_reserve(ctx, &w3, 0, &r), MM_OK);
    assert_int_equal(r.total, p3.total);
    assert_int_equal(r.arena, p3.total);
    const uint64_t before = mm_context_alloc_count(ctx);
    assert_int_equal(translate(ctx, m, 3, src, b), MM_OK);
    assert_int_equal(translate(ctx, m, 2, src, b + 4 * 3 * img), MM_OK); /* smaller: fits */
    const uint64_t after = mm_context_alloc_count(ctx);
    printf("allocations during two reserved translations (%s): %llu\n", device_name,
           (unsigned long long)(after - before));
    assert_int_equal(after, before);
    /* the arena changes where buffers live, not the bits */
    assert_memory_equal(a, b, 3 * 3 * img * sizeof(float));
    /* a larger batch than reserved grows what it lacks: the counter moves */
    assert_int_equal(translate(ctx, m, 4, src, b), MM_OK);
    assert_true(mm_context_alloc_count(ctx) > after);
    mm_context_free(ctx);
    free(src), free(a), free(b);
    mm_model_close(m);
}

static void test_budget_errors(void **state) {
    (void)state;
    mm_model *m = open_tiny();
    const mods md = model_mods(m);
    mm_context *ctx = new_ctx(m);
    mm_memory_plan p2, r;
    const mm_workload w2 = workload(&md, 2);
    assert_int_equal(mm_context_plan(ctx, &w2, &p2), MM_OK);
    assert_int_equal(mm_context_reserve(ctx, &w2, p2.total - 1, &r), MM_ERROR_NOMEM);
    const char *msg = mm_context_errmsg(ctx);
    printf("too small a budget: %s\n", msg);
    assert_non_null(strstr(msg, "needs"));
    assert_non_null(strstr(msg, "MiB"));
    assert_int_equal(r.arena, 0);
    /* the context still works (it grows its workspace as before) */
    const size_t img = (size_t)md.S * md.S;
    float *src = calloc(2 * img, sizeof(float)), *out = malloc(2 * 3 * img * sizeof(float));
    assert_int_equal(translate(ctx, m, 2, src, out), MM_OK);
    /* bad arguments */
    mm_workload bad = w2;
    bad.n_targets = 0;
    assert_int_equal(mm_context_reserve(ctx, &bad, 0, NULL), MM_ERROR_ARGUMENT);
    bad = w2;
    bad.n_tiles = 0;
    assert_int_equal(mm_context_reserve(ctx, &bad, 0, NULL), MM_ERROR_ARGUMENT);
    assert_int_equal(mm_context_reserve_auto(ctx, &w2, 0, 0, NULL), MM_ERROR_ARGUMENT);
    assert_int_equal(mm_context_reserve(ctx, NULL, 0, NULL), MM_ERROR_ARGUMENT);
    mm_context_free(ctx);
    free(src), free(out);
    mm_model_close(m);
}

static void test_auto_batch(void **state) {
    (void)state;
    mm_model *m = open_tiny();
    const mods md = model_mods(m);
    mm_context *ctx = new_ctx(m);
    mm_memory_plan p4, p5, r;
    const mm_workload w4 = workload(&md, 4), w5 = workload(&md, 5);
    assert_int_equal(mm_context_plan(ctx, &w4, &p4), MM_OK);
    assert_int_equal(mm_context_plan(ctx, &w5, &p5), MM_OK);
    /* a budget between the needs of 4 and 5 tiles: 4 */
    const size_t budget = p4.total + (p5.total - p4.total) / 2;
    assert_int_equal(mm_context_reserve_auto(ctx, &w4, 64, budget, &r), MM_OK);
    assert_int_equal(r.n_tiles, 4);
    assert_int_equal(r.arena, p4.total);
    /* the cap wins */
    assert_int_equal(mm_context_reserve_auto(ctx, &w4, 3, budget, &r), MM_OK);
    assert_int_equal(r.n_tiles, 3);
    /* not even one tile */
    mm_memory_plan p1;
    const mm_workload w1 = workload(&md, 1);
    assert_int_equal(mm_context_plan(ctx, &w1, &p1), MM_OK);
    assert_int_equal(mm_context_reserve_auto(ctx, &w4, 64, p1.total - 1, &r), MM_ERROR_NOMEM);
    assert_non_null(strstr(mm_context_errmsg(ctx), "needs"));
    /* from the free memory */
    assert_int_equal(mm_context_reserve_auto(ctx, &w4, 8, 0, &r), MM_OK);
    printf("auto batch (%s): %d tiles, arena %zu MiB (workspace %zu MiB, scratch %zu MiB), "
           "free %zu MiB of %zu MiB\n",
           device_name, r.n_tiles, r.arena >> 20, r.workspace >> 20, r.scratch >> 20,
           r.free_bytes >> 20, r.device_bytes >> 20);
    assert_true(r.n_tiles >= 1 && r.n_tiles <= 8);
    assert_true(r.free_bytes > 0 && r.device_bytes >= r.free_bytes);
    mm_context_free(ctx);
    mm_model_close(m);
}

/* ---- mosaic ---------------------------------------------------------------------------------- */

/* The host loop of libmmgeo/src/run.c (accumulate), written out for any window position. */
static void ref_accumulate(float *acc, float *wsum, int C, int Wd, int Ht, const float *win, int S,
                           int x0, int y0, const float *wx) {
    for (int py = 0; py < S; py++) {
        if (y0 + py < 0 || y0 + py >= Ht) continue;
        const float wy = wx[py];
        float *ws = wsum + (size_t)(y0 + py) * Wd + x0;
        for (int px = 0; px < S; px++)
            if (x0 + px >= 0 && x0 + px < Wd) ws[px] += wy * wx[px];
        for (int c = 0; c < C; c++) {
            const float *d = win + (size_t)c * S * S + (size_t)py * S;
            float *a = acc + ((size_t)c * Ht + y0 + py) * Wd + x0;
            for (int px = 0; px < S; px++)
                if (x0 + px >= 0 && x0 + px < Wd) a[px] += wy * wx[px] * d[px];
        }
    }
}

static void test_mosaic(void **state) {
    (void)state;
    mm_model *m = open_tiny();
    mm_context *ctx = new_ctx(m);
    enum { C = 3, S = 16, Wd = 45, Ht = 20, NW = 7 };
    float wx[S];
    for (int i = 0; i < S; i++)
        wx[i] = 0.5f - 0.5f * cosf(3.14159265f * (i + 0.5f) / S * 2.0f);
    mm_mosaic *mo = NULL;
    assert_int_equal(mm_mosaic_create(ctx, C, Wd, Ht, S, wx, wx, &mo), MM_OK);
    float *acc = calloc((size_t)C * Wd * Ht, sizeof(float)), *ws = calloc((size_t)Wd * Ht, 4);
    float *win = malloc((size_t)NW * C * S * S * sizeof(float));
    float *got = malloc((size_t)C * Wd * Ht * sizeof(float)), *gws = malloc((size_t)Wd * Ht * 4);
    float *want = malloc((size_t)C * Wd * Ht * sizeof(float));
    assert_true(acc && ws && win && got && gws && want);
    /* windows overlapping each other and the strip's edges (negative and past the end) */
    const int x0[NW] = {-5, 7, 19, 31, 38, 0, 12}, y0[NW] = {0, 0, 4, -3, 10, 8, 15};
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < (size_t)NW * C * S * S; i++)
            win[i] = 100.0f * urand();
        assert_int_equal(mm_mosaic_add(mo, 4, win, x0, y0), MM_OK);
        assert_int_equal(mm_mosaic_add(mo, NW - 4, win + (size_t)4 * C * S * S, x0 + 4, y0 + 4),
                         MM_OK);
        for (int t = 0; t < NW; t++)
            ref_accumulate(acc, ws, C, Wd, Ht, win + (size_t)t * C * S * S, S, x0[t], y0[t], wx);
        /* rows 2..17 normalised, with -7 where no window has weight */
        const int r0 = 2, nr = 16;
        assert_int_equal(mm_mosaic_read(mo, r0, nr, -7.0f, got, gws), MM_OK);
        int empty = 0;
        for (int c = 0; c < C; c++)
            for (int k = 0; k < nr * Wd; k++) {
                const float s = ws[(size_t)r0 * Wd + k];
                want[(size_t)c * nr * Wd + k] =
                    s > 0.0f ? acc[((size_t)c * Ht + r0) * Wd + k] / s : -7.0f;
                empty += s <= 0.0f;
            }
        assert_memory_equal(gws, ws + (size_t)r0 * Wd, (size_t)nr * Wd * sizeof(float));
        assert_memory_equal(got, want, (size_t)C * nr * Wd * sizeof(float));
        assert_true(empty > 0); /* the fill value was exercised */
        /* shift up by 6 rows, as the run does between window rows */
        assert_int_equal(mm_mosaic_shift(mo, 6), MM_OK);
        for (int c = 0; c <= C; c++) {
            float *buf = c < C ? acc + (size_t)c * Wd * Ht : ws;
            memmove(buf, buf + 6 * Wd, (size_t)(Ht - 6) * Wd * sizeof(float));
            memset(buf + (size_t)(Ht - 6) * Wd, 0, (size_t)6 * Wd * sizeof(float));
        }
    }
    /* everything, after the second round's shift */
    assert_int_equal(mm_mosaic_read(mo, 0, Ht, 0.0f, got, gws), MM_OK);
    assert_memory_equal(gws, ws, (size_t)Wd * Ht * sizeof(float));
    /* argument errors */
    const int far[1] = {1000};
    assert_int_equal(mm_mosaic_add(mo, 1, win, far, y0), MM_ERROR_ARGUMENT);
    assert_int_equal(mm_mosaic_read(mo, Ht - 1, 2, 0.0f, got, NULL), MM_ERROR_ARGUMENT);
    assert_int_equal(mm_mosaic_shift(mo, -1), MM_ERROR_ARGUMENT);
    assert_int_equal(mm_mosaic_shift(mo, Ht + 5), MM_OK); /* clears all */
    assert_int_equal(mm_mosaic_read(mo, 0, Ht, 5.0f, got, gws), MM_OK);
    for (int k = 0; k < C * Wd * Ht; k++)
        assert_true(got[k] == 5.0f);
    mm_mosaic_free(mo);
    free(acc), free(ws), free(win), free(got), free(gws), free(want);
    mm_context_free(ctx);
    mm_model_close(m);
}

int main(void) {
    const char *dev = getenv("MM_TEST_DEVICE");
    if (dev && strcmp(dev, "cuda") == 0) {
        device = MM_DEVICE_CUDA;
        device_name = "cuda";
        mm_model *m = open_tiny();
        mm_context_params p;
        mm_context_params_default(&p);
        p.device = MM_DEVICE_CUDA;
        mm_context *ctx = NULL;
        char *err = NULL;
        if (mm_context_create(m, &p, &ctx, &err) != MM_OK) {
            printf("SKIPPED: no CUDA device (%s)\n", err ? err : "?");
            mm_free(err);
            mm_model_close(m);
            return 77; /* ctest: SKIP_RETURN_CODE */
        }
        mm_context_free(ctx);
        mm_model_close(m);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reserve),
        cmocka_unit_test(test_budget_errors),
        cmocka_unit_test(test_auto_batch),
        cmocka_unit_test(test_mosaic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
