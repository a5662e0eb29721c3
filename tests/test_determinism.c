/*
 * A tile's result must not depend on what it is batched with, on the batch order, or on the
 * thread count: bit-identical outputs, in bf16 and in fp32 (backend.h's determinism contract).
 * Runs on the bundled tiny model and on a wider random-weights config whose matrix products
 * cross the backend's 256-row block boundary.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mm.h"

static const char *WIDE_CONFIG =
    "{\"format\":\"metaearth-mm\",\"format_version\":1,\"name\":\"wide-test\",\"image_size\":64,"
    "\"modalities\":[\"rgb\",\"sar\",\"nir\"],\"modality_channels\":[3,1,1],"
    "\"vae\":{\"in_channels\":3,\"out_channels\":3,\"latent_channels\":4,"
    "\"block_out_channels\":[32,64],\"layers_per_block\":1,\"norm_num_groups\":8,"
    "\"scaling_factor\":0.5,\"shift_factor\":0.1},"
    "\"dit\":{\"hidden_size\":192,\"num_heads\":3,\"mlp_ratio\":4,\"patch_size\":2,"
    "\"scene_depth\":2,\"gen_depth\":1,\"freq_dim\":64,\"ffn_branches\":3},"
    "\"sampling\":{\"sampler\":\"euler_maruyama\",\"steps\":2,\"guidance\":1.5}}";

static mm_model *load(int wide) {
    mm_model *m = NULL;
    char *err = NULL;
    mm_status st = wide ? mm_model_create_random(WIDE_CONFIG, 7, &m, &err)
                        : mm_model_open(MM_GOLDEN_DIR "/tiny_model.safetensors", &m, &err);
    if (st != MM_OK) fail_msg("model: %s", err);
    return m;
}

static mm_context *context(mm_model *m, int threads, mm_precision prec) {
    mm_context_params p;
    mm_context_params_default(&p);
    p.n_threads = threads;
    p.precision = prec;
    mm_context *ctx = NULL;
    char *err = NULL;
    if (mm_context_create(m, &p, &ctx, &err) != MM_OK) fail_msg("context: %s", err);
    return ctx;
}

/* Translates n tiles (ids given; tile id k's source is a pattern of k) sar -> rgb. */
static float *run(mm_context *ctx, mm_model *m, int n, const uint64_t *ids) {
    const int S = mm_model_image_size(m);
    const int sar = mm_model_modality_index(m, "sar"), rgb = mm_model_modality_index(m, "rgb");
    float *src = malloc(sizeof(float) * (size_t)n * S * S);
    float *dst = malloc(sizeof(float) * (size_t)n * 3 * S * S);
    assert_non_null(src);
    assert_non_null(dst);
    for (int b = 0; b < n; b++)
        for (int i = 0; i < S * S; i++)
            src[(size_t)b * S * S + i] = (float)((i * 7 + (int)ids[b] * 13) % 17) / 8.5f - 1.0f;
    mm_sample_params sp;
    mm_sample_params_default(m, &sp);
    sp.steps = 2;
    sp.seed = 99;
    const float *srcs[1] = {src};
    float *dsts[1] = {dst};
    if (mm_translate(ctx, &sp, n, ids, 1, &sar, srcs, 1, &rgb, dsts) != MM_OK)
        fail_msg("translate: %s", mm_context_errmsg(ctx));
    free(src);
    return dst;
}

static void check_model(int wide, mm_precision prec) {
    mm_model *m = load(wide);
    const int S = mm_model_image_size(m);
    const size_t per = (size_t)3 * S * S * sizeof(float);
    mm_context *c1 = context(m, 1, prec), *c2 = context(m, 2, prec);
    const uint64_t one[1] = {5}, four[4] = {3, 5, 8, 9}, rev[4] = {9, 8, 5, 3};
    float *a = run(c2, m, 1, one);
    float *b = run(c2, m, 4, four);
    float *r = run(c2, m, 4, rev);
    float *t1 = run(c1, m, 4, four);
    const char *what = prec == MM_PRECISION_BF16 ? "bf16" : "fp32";
    printf("  %s model, %s (engine uses %s)\n", wide ? "wide" : "tiny", what,
           mm_context_precision(c2) == MM_PRECISION_BF16 ? "bf16" : "fp32");
    assert_memory_equal(a, b + 3 * S * S, per);   /* batch 1 vs batch 4, tile 5 at index 1 */
    for (int i = 0; i < 4; i++)                     /* reversed order */
        assert_memory_equal(b + (size_t)i * 3 * S * S, r + (size_t)(3 - i) * 3 * S * S, per);
    assert_memory_equal(b, t1, 4 * per);            /* 1 thread vs 2 threads */
    /* different tiles must differ (the test would pass trivially on a constant output) */
    assert_memory_not_equal(b, b + 3 * S * S, per);
    free(a), free(b), free(r), free(t1);
    mm_context_free(c1);
    mm_context_free(c2);
    mm_model_close(m);
}

static void test_tiny_bf16(void **s) { (void)s; check_model(0, MM_PRECISION_BF16); }
static void test_tiny_fp32(void **s) { (void)s; check_model(0, MM_PRECISION_FP32); }
static void test_wide_bf16(void **s) { (void)s; check_model(1, MM_PRECISION_BF16); }
static void test_wide_fp32(void **s) { (void)s; check_model(1, MM_PRECISION_FP32); }

/* bf16 products stay close to the fp32 reference path (a sanity bound, not a parity test). */
static void test_bf16_close_to_fp32(void **s) {
    (void)s;
    mm_model *m = load(0);
    mm_context *cb = context(m, 2, MM_PRECISION_BF16), *cf = context(m, 2, MM_PRECISION_FP32);
    const uint64_t ids[2] = {1, 2};
    float *x = run(cb, m, 2, ids), *y = run(cf, m, 2, ids);
    const int S = mm_model_image_size(m);
    double md = 0, mr = 0;
    for (size_t i = 0; i < (size_t)2 * 3 * S * S; i++) {
        double d = x[i] - (double)y[i];
        md = d < 0 ? (-d > md ? -d : md) : (d > md ? d : md);
        mr = (y[i] < 0 ? -y[i] : y[i]) > mr ? (y[i] < 0 ? -y[i] : y[i]) : mr;
    }
    printf("  bf16 vs fp32 translation: max rel. difference %.3e (bound 5e-2)\n", md / mr);
    assert_true(md / mr < 5e-2);
    free(x), free(y);
    mm_context_free(cb);
    mm_context_free(cf);
    mm_model_close(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny_bf16), cmocka_unit_test(test_tiny_fp32),
        cmocka_unit_test(test_wide_bf16), cmocka_unit_test(test_wide_fp32),
        cmocka_unit_test(test_bf16_close_to_fp32),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
