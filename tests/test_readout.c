/*
 * The zero-shot scene readout (mm_embed_readout, paper V-C, Eq. 22) and guidance in joint
 * generation (mm_sample_params.joint_guidance) against the PyTorch reference, fp32: golden
 * tensors in tests/golden/tiny_readout.safetensors (tools/reference/make_golden_readout.py),
 * stored as strided subsets (element 0, k, 2k, ... of the flattened result, k = metadata
 * "stride.NAME"). Relative error = max |c - ref| / max |ref| over the stored elements.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mm.h"
#include "safetensors.h"
#include "test_parity.h"

static const double TOL_FP32 = 1e-4;

static mm_model *model;
static mm_context *ctx;
/* MM_TEST_DEVICE=cuda: the same checks on the CUDA backend (fp32, TF32 off) */
static int on_cuda;
static mm_st_file *golden, *readout;
static int rgb, sar, nir, T, H, S;
static const uint64_t tiles[2] = {7, 11};
static const uint64_t SEED = 1234;

static size_t stride_of(const char *name) {
    char key[128];
    snprintf(key, sizeof key, "stride.%s", name);
    const char *v = mm_st_metadata(readout, key);
    if (!v) fail_msg("metadata '%s' missing", key);
    return (size_t)strtoul(v, NULL, 10);
}

static double rel_err_strided(const float *got, size_t n, const float *want, size_t nw,
                              size_t stride) {
    double md = 0, mr = 0;
    assert_int_equal((n + stride - 1) / stride, nw);
    for (size_t i = 0; i < nw; i++) {
        const double g = got[i * stride];
        if (!isfinite(g)) return INFINITY;
        const double d = fabs(g - want[i]);
        md = d > md ? d : md;
        mr = fabs(want[i]) > mr ? fabs(want[i]) : mr;
    }
    return mr > 0 ? md / mr : md;
}

/* got: the C engine's full result (n floats); the golden NAME its strided subset */
static void check(const char *name, const float *got, size_t n) {
    size_t nw;
    float *want = mm_test_tensor(readout, name, &nw);
    const double e = rel_err_strided(got, n, want, nw, stride_of(name));
    printf("  %-28s rel. error %.3e (tolerance %.0e, %zu of %zu values)\n", name, e, TOL_FP32, nw,
           n);
    free(want);
    assert_true(e <= TOL_FP32);
}

static int setup(void **state) {
    (void)state;
    char err[512], *msg = NULL;
    if (mm_model_open(MM_GOLDEN_DIR "/tiny_model.safetensors", &model, &msg) != MM_OK)
        fail_msg("model: %s", msg);
    mm_context_params p;
    mm_context_params_default(&p);
    p.precision = MM_PRECISION_FP32;
    p.n_threads = 2;
    if (on_cuda) p.device = MM_DEVICE_CUDA;
    if (mm_context_create(model, &p, &ctx, &msg) != MM_OK) fail_msg("context: %s", msg);
    if (mm_st_open(MM_GOLDEN_DIR "/tiny_golden.safetensors", &golden, err, sizeof err))
        fail_msg("golden: %s", err);
    if (mm_st_open(MM_GOLDEN_DIR "/tiny_readout.safetensors", &readout, err, sizeof err))
        fail_msg("readout golden: %s", err);
    rgb = mm_model_modality_index(model, "rgb");
    sar = mm_model_modality_index(model, "sar");
    nir = mm_model_modality_index(model, "nir");
    T = mm_model_tokens_per_side(model);
    H = mm_model_hidden_size(model);
    S = mm_model_image_size(model);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    mm_st_close(readout);
    mm_st_close(golden);
    mm_context_free(ctx);
    mm_model_close(model);
    return 0;
}

static void readout_case(const char *name, int n_src, const int *mods, const float *const *srcs,
                         int branch, float t, float *out) {
    mm_readout_params rp;
    mm_readout_params_default(&rp);
    rp.modality = branch;
    rp.source_t = t;
    rp.seed = SEED;
    const mm_status st = mm_embed_readout(ctx, &rp, 2, tiles, n_src, mods, srcs, out);
    if (st != MM_OK) fail_msg("mm_embed_readout: %s", mm_context_errmsg(ctx));
    check(name, out, (size_t)2 * T * T * H);
}

static void test_readout(void **state) {
    (void)state;
    const size_t n = (size_t)2 * T * T * H;
    float *in_sar = mm_test_tensor(golden, "in.sar", NULL),
          *in_rgb = mm_test_tensor(golden, "in.rgb", NULL);
    float *out = malloc(n * sizeof(float)), *emb = malloc(n * sizeof(float));
    float *one = malloc(n / 2 * sizeof(float));
    const float *s1[1] = {in_sar}, *s2[2] = {in_rgb, in_sar};
    const int m1[1] = {sar}, m2[2] = {rgb, sar};
    readout_case("readout.rgbsar2nir", 2, m2, s2, nir, 0.0f, out);
    readout_case("readout.sar2rgb.t0.25", 1, m1, s1, rgb, 0.25f, out);
    readout_case("readout.sar2rgb", 1, m1, s1, rgb, 0.0f, out);
    /* not the source's own tokens (mm_embed, the default of mm_embed(1)) */
    float *eo[1] = {emb};
    assert_int_equal(mm_embed(ctx, 2, 1, m1, s1, eo), MM_OK);
    double diff = 0;
    for (size_t i = 0; i < n; i++)
        diff = fmax(diff, fabs((double)out[i] - emb[i]));
    printf("  readout vs the source's own tokens: max |d| %.3g\n", diff);
    assert_true(diff > 1e-2);
    /* a tile's readout depends on its tile id, not on the batch: tile 11 alone */
    mm_readout_params rp;
    mm_readout_params_default(&rp);
    rp.modality = rgb;
    rp.seed = SEED;
    const float *s11[1] = {in_sar + (size_t)S * S};
    assert_int_equal(mm_embed_readout(ctx, &rp, 1, tiles + 1, 1, m1, s11, one), MM_OK);
    assert_memory_equal(one, out + n / 2, n / 2 * sizeof(float));
    /* another seed: another noise in the readout branch, other tokens */
    rp.seed = SEED + 1;
    assert_int_equal(mm_embed_readout(ctx, &rp, 1, tiles + 1, 1, m1, s11, one), MM_OK);
    assert_true(memcmp(one, out + n / 2, n / 2 * sizeof(float)) != 0);
    free(in_sar), free(in_rgb), free(out), free(emb), free(one);
}

static void expect_refused(mm_status st, const char *needle) {
    assert_int_equal(st, MM_ERROR_ARGUMENT);
    const char *msg = mm_context_errmsg(ctx);
    printf("  refused: %s\n", msg);
    assert_non_null(strstr(msg, needle));
}

static void test_readout_errors(void **state) {
    (void)state;
    float *in_sar = mm_test_tensor(golden, "in.sar", NULL);
    float *out = malloc((size_t)2 * T * T * H * sizeof(float));
    const float *s1[1] = {in_sar};
    const int m1[1] = {sar};
    mm_readout_params rp;
    mm_readout_params_default(&rp);
    assert_int_equal(rp.modality, -1);
    assert_true(rp.source_t == 0.0f);
    expect_refused(mm_embed_readout(ctx, &rp, 2, tiles, 1, m1, s1, out), "out of range");
    rp.modality = sar;
    expect_refused(mm_embed_readout(ctx, &rp, 2, tiles, 1, m1, s1, out), "also a source");
    rp.modality = rgb;
    rp.source_t = 1.0f;
    expect_refused(mm_embed_readout(ctx, &rp, 2, tiles, 1, m1, s1, out), "[0, 1)");
    rp.source_t = NAN;
    expect_refused(mm_embed_readout(ctx, &rp, 2, tiles, 1, m1, s1, out), "[0, 1)");
    rp.source_t = 0.0f;
    expect_refused(mm_embed_readout(ctx, NULL, 2, tiles, 1, m1, s1, out), "parameters");
    expect_refused(mm_embed_readout(ctx, &rp, 2, NULL, 1, m1, s1, out), "tile ids");
    expect_refused(mm_embed_readout(ctx, &rp, 2, tiles, 0, m1, s1, out), "at least one source");
    free(in_sar), free(out);
}

static void generate(int nt, const int *mods, float guidance, int joint, float **outs) {
    mm_sample_params sp;
    mm_sample_params_default(model, &sp);
    sp.sampler = MM_SAMPLER_EULER_MARUYAMA;
    sp.steps = 4;
    sp.guidance = guidance;
    sp.seed = SEED;
    sp.joint_guidance = joint;
    if (mm_generate(ctx, &sp, 2, tiles, nt, mods, outs) != MM_OK)
        fail_msg("mm_generate: %s", mm_context_errmsg(ctx));
}

static void test_joint_guidance(void **state) {
    (void)state;
    const size_t nr = (size_t)2 * 3 * S * S, n1 = (size_t)2 * S * S;
    const int mods[3] = {rgb, sar, nir};
    const size_t sizes[3] = {nr, n1, n1};
    float *base[3], *g1[3], *g[3];
    for (int j = 0; j < 3; j++) {
        base[j] = malloc(sizes[j] * sizeof(float));
        g1[j] = malloc(sizes[j] * sizeof(float));
        g[j] = malloc(sizes[j] * sizeof(float));
    }
    /* today's joint generation (guidance recorded, no effect) ... */
    generate(2, mods, 1.5f, 0, base);
    /* ... is joint guidance at scale 1, bit for bit */
    generate(2, mods, 1.0f, 1, g1);
    for (int j = 0; j < 2; j++)
        assert_memory_equal(base[j], g1[j], sizes[j] * sizeof(float));
    /* scale 1.5: differs, and matches the reference */
    generate(2, mods, 1.5f, 1, g);
    double diff = 0;
    for (size_t i = 0; i < nr; i++)
        diff = fmax(diff, fabs((double)g[0][i] - base[0][i]));
    printf("  joint guidance 1.5 vs none: max |d| %.3g\n", diff);
    assert_true(diff > 1e-3);
    check("joint.guided.rgb.image", g[0], nr);
    check("joint.guided.sar.image", g[1], n1);
    /* three modalities: each target's unconditional branch drops the two others */
    generate(3, mods, 1.5f, 1, g);
    check("joint.guided3.rgb.image", g[0], nr);
    check("joint.guided3.sar.image", g[1], n1);
    check("joint.guided3.nir.image", g[2], n1);
    /* one target: nothing to drop, the flag has no effect */
    generate(1, mods + 1, 1.5f, 0, base);
    generate(1, mods + 1, 1.5f, 1, g);
    assert_memory_equal(base[0], g[0], n1 * sizeof(float));
    /* with sources it is refused (translation guidance drops the sources) */
    mm_sample_params sp;
    mm_sample_params_default(model, &sp);
    sp.steps = 1;
    sp.joint_guidance = 1;
    float *in_sar = mm_test_tensor(golden, "in.sar", NULL);
    const float *srcs[1] = {in_sar};
    expect_refused(mm_translate(ctx, &sp, 2, tiles, 1, &sar, srcs, 1, &rgb, g),
                   "joint guidance applies to generation without sources");
    free(in_sar);
    for (int j = 0; j < 3; j++)
        free(base[j]), free(g1[j]), free(g[j]);
}

/* The planned working memory covers a joint-guided call: after mm_context_reserve, the call
 * allocates nothing. */
static void test_joint_guidance_plan(void **state) {
    (void)state;
    const int mods[2] = {rgb, sar};
    mm_workload w = {2, 0, NULL, 2, mods, 1.5f, 1};
    mm_memory_plan plan, plain;
    assert_int_equal(mm_context_plan(ctx, &w, &plan), MM_OK);
    w.joint_guidance = 0;
    assert_int_equal(mm_context_plan(ctx, &w, &plain), MM_OK);
    printf("  workspace: joint guided %zu bytes, unguided %zu bytes\n", plan.workspace,
           plain.workspace);
    assert_true(plan.workspace > plain.workspace);
    w.joint_guidance = 1;
    assert_int_equal(mm_context_reserve(ctx, &w, 0, &plan), MM_OK);
    const uint64_t before = mm_context_alloc_count(ctx);
    float *outs[2];
    outs[0] = malloc((size_t)2 * 3 * S * S * sizeof(float));
    outs[1] = malloc((size_t)2 * S * S * sizeof(float));
    generate(2, mods, 1.5f, 1, outs);
    assert_int_equal(mm_context_alloc_count(ctx), before);
    free(outs[0]), free(outs[1]);
}

int main(void) {
    const int rc = mm_test_pick_device("readout and joint guidance parity", &on_cuda);
    if (rc) return rc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readout),
        cmocka_unit_test(test_readout_errors),
        cmocka_unit_test(test_joint_guidance),
        cmocka_unit_test(test_joint_guidance_plan),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
