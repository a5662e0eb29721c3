/*
 * The public API on bad input: every failure is a status plus a message that names the problem,
 * never a crash. Also: the RNG's known answers, model files in every dtype, models whose
 * tensors disagree with their config, interruption, and contexts used from several threads.
 */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "mm.h"
#include "safetensors.h"

#define TINY MM_GOLDEN_DIR "/tiny_model.safetensors"

static mm_model *open_ok(const char *path) {
    mm_model *m = NULL;
    char *err = NULL;
    if (mm_model_open(path, &m, &err) != MM_OK) fail_msg("%s: %s", path, err);
    return m;
}

static mm_context *ctx_ok(mm_model *m, int threads) {
    mm_context_params p;
    mm_context_params_default(&p);
    p.n_threads = threads;
    mm_context *c = NULL;
    char *err = NULL;
    if (mm_context_create(m, &p, &c, &err) != MM_OK) fail_msg("context: %s", err);
    return c;
}

/* Expects mm_model_open to fail with `status` and a message containing `word`. */
static void open_fails(const char *path, mm_status status, const char *word) {
    mm_model *m = (mm_model *)0x1;
    char *err = NULL;
    mm_status st = mm_model_open(path, &m, &err);
    printf("  %-28s -> %s\n", word, err ? err : "(no message)");
    assert_int_equal(st, status);
    assert_null(m);
    assert_non_null(err);
    if (!strstr(err, word)) fail_msg("message '%s' lacks '%s'", err, word);
    mm_free(err);
}

/* ---- RNG --------------------------------------------------------------------------------- */

static void test_philox_known_answers(void **s) {
    (void)s;
    /* Random123's published known-answer vectors for Philox-4x32-10 */
    const struct { uint32_t ctr[4], key[2], out[4]; } kat[] = {
        {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
        {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff},
         {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
        {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0},
         {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}}};
    for (int i = 0; i < 3; i++) {
        uint32_t out[4];
        mm_philox4x32_10(kat[i].ctr, kat[i].key, out);
        assert_memory_equal(out, kat[i].out, sizeof out);
    }
}

static void test_noise_addressing(void **s) {
    (void)s;
    enum { N = 1 << 16 };
    float *a = malloc(N * sizeof(float)), *b = malloc(N * sizeof(float));
    mm_noise(42, 3, MM_NOISE_INITIAL, 0, 0, a, N);
    mm_noise(42, 3, MM_NOISE_INITIAL, 0, 0, b, 37); /* a prefix is the same numbers */
    assert_memory_equal(a, b, 37 * sizeof(float));
    double sum = 0, sq = 0;
    for (int i = 0; i < N; i++) {
        sum += a[i];
        sq += (double)a[i] * a[i];
    }
    const double mean = sum / N, var = sq / N - mean * mean;
    printf("  noise: mean %.4f, variance %.4f over %d samples\n", mean, var, N);
    assert_true(fabs(mean) < 0.02 && fabs(var - 1.0) < 0.03);
    /* every address component changes the numbers */
    mm_noise(42, 4, MM_NOISE_INITIAL, 0, 0, b, 64);
    assert_memory_not_equal(a, b, 64 * sizeof(float));
    mm_noise(43, 3, MM_NOISE_INITIAL, 0, 0, b, 64);
    assert_memory_not_equal(a, b, 64 * sizeof(float));
    mm_noise(42, 3, MM_NOISE_SDE, 0, 0, b, 64);
    assert_memory_not_equal(a, b, 64 * sizeof(float));
    mm_noise(42, 3, MM_NOISE_INITIAL, 1, 0, b, 64);
    assert_memory_not_equal(a, b, 64 * sizeof(float));
    mm_noise(42, 3, MM_NOISE_INITIAL, 0, 1, b, 64);
    assert_memory_not_equal(a, b, 64 * sizeof(float));
    mm_noise(42, 3ull << 32, MM_NOISE_INITIAL, 0, 0, b, 64); /* high bits of the tile id count */
    mm_noise(42, 0, MM_NOISE_INITIAL, 0, 0, a, 64);
    assert_memory_not_equal(a, b, 64 * sizeof(float));
    free(a);
    free(b);
}

/* ---- model files ------------------------------------------------------------------------- */

static void test_open_errors(void **s) {
    (void)s;
    mm_model *m = NULL;
    assert_int_equal(mm_model_open(NULL, &m, NULL), MM_ERROR_ARGUMENT);
    open_fails("/nonexistent/model.safetensors", MM_ERROR_FORMAT, "No such file");
    open_fails("/", MM_ERROR_FORMAT, "/");
    open_fails(MM_GOLDEN_DIR "/tiny_config.json", MM_ERROR_FORMAT, "tiny_config.json");
    /* a valid safetensors file that is not a model: no config in its metadata */
    char path[] = "/tmp/mm_test_noconfig_XXXXXX", err[256];
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    static const float one[1] = {1};
    static const int64_t shape[1] = {1};
    const mm_st_write_tensor t = {"x", 1, shape, one};
    assert_int_equal(mm_st_write_f32(path, &t, 1, NULL, NULL, 0, err, sizeof err), 0);
    open_fails(path, MM_ERROR_CONFIG, "no model config");
    unlink(path);
}

/* Rewrites the tiny model with one change, then checks the loader's verdict. */
typedef enum { DROP_TENSOR, EXTRA_TENSOR, WRONG_SHAPE, NAN_VALUE, BAD_CONFIG } mutation;

static void mutated(mutation what, const char *path) {
    char err[512];
    mm_st_file *f;
    if (mm_st_open(TINY, &f, err, sizeof err)) fail_msg("%s", err);
    const size_t n = mm_st_count(f);
    mm_st_write_tensor *ts = calloc(n + 1, sizeof *ts);
    float **bufs = calloc(n + 1, sizeof *bufs);
    int64_t (*shapes)[MM_ST_MAX_DIMS] = calloc(n + 1, sizeof *shapes);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const mm_st_tensor *t = mm_st_get(f, i);
        if (what == DROP_TENSOR && !strcmp(t->name, "scene.blocks.1.attn.proj.bias")) continue;
        bufs[k] = malloc((size_t)(t->numel ? t->numel : 1) * sizeof(float));
        mm_st_to_f32(t, bufs[k]);
        memcpy(shapes[k], t->shape, sizeof shapes[k]);
        ts[k] = (mm_st_write_tensor){t->name, t->ndim, shapes[k], bufs[k]};
        if (what == WRONG_SHAPE && !strcmp(t->name, "modality_embed")) {
            shapes[k][0] = 4; /* [5, H] -> [4, H]: fewer floats, still self-consistent */
        }
        if (what == NAN_VALUE && !strcmp(t->name, "gen.final_layer.linear.weight")) bufs[k][3] = NAN;
        k++;
    }
    static float extra[4] = {1, 2, 3, 4};
    static const int64_t extra_shape[1] = {4};
    if (what == EXTRA_TENSOR) ts[k++] = (mm_st_write_tensor){"scene.blocks.9.typo", 1, extra_shape, extra};
    const char *key = "config";
    char *cfg = strdup(mm_st_metadata(f, "config"));
    if (what == BAD_CONFIG) {
        char *p = strstr(cfg, "\"num_heads\":4");
        assert_non_null(p);
        p[12] = '3'; /* 64 is not divisible by 3 */
    }
    const char *val = cfg;
    if (mm_st_write_f32(path, ts, k, &key, &val, 1, err, sizeof err)) fail_msg("%s", err);
    for (size_t i = 0; i < n + 1; i++) free(bufs[i]);
    free(bufs);
    free(ts);
    free(shapes);
    free(cfg);
    mm_st_close(f);
}

static void test_model_mismatch(void **s) {
    (void)s;
    char path[] = "/tmp/mm_test_model_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    mutated(DROP_TENSOR, path);
    open_fails(path, MM_ERROR_CONFIG, "scene.blocks.1.attn.proj.bias' required by the config is missing");
    mutated(EXTRA_TENSOR, path);
    open_fails(path, MM_ERROR_CONFIG, "scene.blocks.9.typo' is not part of the model");
    mutated(WRONG_SHAPE, path);
    open_fails(path, MM_ERROR_CONFIG, "has shape [4, 64], the config implies [5, 64]");
    mutated(NAN_VALUE, path);
    open_fails(path, MM_ERROR_FORMAT, "non-finite");
    mutated(BAD_CONFIG, path);
    open_fails(path, MM_ERROR_CONFIG, "num_heads");
    unlink(path);
}

/* The same weights stored as F16 and BF16 load, and translate close to the F32 file. */
static void test_dtypes(void **s) {
    (void)s;
    const char *files[3] = {TINY, MM_GOLDEN_DIR "/tiny_model_f16.safetensors",
                            MM_GOLDEN_DIR "/tiny_model_bf16.safetensors"};
    float *out[3];
    for (int i = 0; i < 3; i++) {
        mm_model *m = open_ok(files[i]);
        mm_dtype_count dc;
        mm_model_dtype_count(m, &dc);
        mm_param_count pc;
        mm_model_param_count(m, &pc);
        assert_int_equal((i == 0 ? dc.f32 : i == 1 ? dc.f16 : dc.bf16), pc.total);
        mm_context *c = ctx_ok(m, 2);
        const int S = mm_model_image_size(m), rgb = mm_model_modality_index(m, "rgb");
        out[i] = malloc(sizeof(float) * 3 * S * S);
        mm_sample_params sp;
        mm_sample_params_default(m, &sp);
        sp.steps = 2;
        const uint64_t id = 1;
        float *dst[1] = {out[i]};
        assert_int_equal(mm_generate(c, &sp, 1, &id, 1, &rgb, dst), MM_OK);
        mm_context_free(c);
        mm_model_close(m);
    }
    for (int i = 1; i < 3; i++) {
        double md = 0;
        for (int k = 0; k < 3 * 32 * 32; k++) md = fmax(md, fabs(out[i][k] - out[0][k]));
        printf("  %s weights: max abs. difference to F32 %.3e\n", i == 1 ? "F16" : "BF16", md);
        assert_true(md < 0.1);
    }
    for (int i = 0; i < 3; i++) free(out[i]);
}

/* ---- calls with bad arguments ------------------------------------------------------------ */

static void expect(mm_context *c, mm_status got, mm_status want, const char *word) {
    printf("  %-24s -> %s\n", word, mm_context_errmsg(c));
    assert_int_equal(got, want);
    if (!strstr(mm_context_errmsg(c), word))
        fail_msg("message '%s' lacks '%s'", mm_context_errmsg(c), word);
}

static void test_bad_arguments(void **s) {
    (void)s;
    mm_model *m = open_ok(TINY);
    mm_context *c = ctx_ok(m, 1);
    mm_context *bad = NULL;
    char *err = NULL;
    mm_context_params p;
    mm_context_params_default(&p);
    p.n_threads = -2;
    assert_int_equal(mm_context_create(m, &p, &bad, &err), MM_ERROR_ARGUMENT);
    assert_null(bad);
    mm_free(err);
    err = NULL;
    p.n_threads = 1;
    p.device = MM_DEVICE_CUDA;
    mm_status cst = mm_context_create(m, &p, &bad, &err);
    if (cst != MM_OK) { /* no CUDA in this build or no GPU: a clear refusal */
        assert_int_equal(cst, MM_ERROR_UNSUPPORTED);
        assert_non_null(err);
        printf("  cuda context -> %s\n", err);
    }
    mm_context_free(bad);
    mm_free(err);

    const int S = mm_model_image_size(m), rgb = 0, sar = 1;
    float *img = calloc((size_t)3 * S * S, sizeof(float)), *out = calloc((size_t)3 * S * S, sizeof(float));
    const float *srcs[1] = {img};
    float *dsts[1] = {out};
    const uint64_t id = 0;
    mm_sample_params sp;
    mm_sample_params_default(m, &sp);
    sp.steps = 1;
    assert_int_equal(mm_translate(NULL, &sp, 1, &id, 1, &sar, srcs, 1, &rgb, dsts), MM_ERROR_ARGUMENT);
    expect(c, mm_translate(c, NULL, 1, &id, 1, &sar, srcs, 1, &rgb, dsts), MM_ERROR_ARGUMENT, "no sampling parameters");
    expect(c, mm_translate(c, &sp, 0, &id, 1, &sar, srcs, 1, &rgb, dsts), MM_ERROR_ARGUMENT, "tile count");
    expect(c, mm_translate(c, &sp, 1, NULL, 1, &sar, srcs, 1, &rgb, dsts), MM_ERROR_ARGUMENT, "tile_ids");
    const int seven = 7, minus = -1;
    expect(c, mm_translate(c, &sp, 1, &id, 1, &seven, srcs, 1, &rgb, dsts), MM_ERROR_ARGUMENT, "out of range");
    expect(c, mm_translate(c, &sp, 1, &id, 1, &sar, srcs, 1, &minus, dsts), MM_ERROR_ARGUMENT, "out of range");
    expect(c, mm_translate(c, &sp, 1, &id, 1, &rgb, srcs, 1, &rgb, dsts), MM_ERROR_ARGUMENT, "more than once");
    expect(c, mm_translate(c, &sp, 1, &id, 1, &sar, srcs, 0, &rgb, dsts), MM_ERROR_ARGUMENT, "no target");
    float *nulls[1] = {NULL};
    expect(c, mm_translate(c, &sp, 1, &id, 1, &sar, srcs, 1, &rgb, nulls), MM_ERROR_ARGUMENT, "NULL");
    mm_sample_params b = sp;
    b.steps = 0;
    expect(c, mm_translate(c, &b, 1, &id, 1, &sar, srcs, 1, &rgb, dsts), MM_ERROR_ARGUMENT, "steps");
    b = sp;
    b.guidance = NAN;
    expect(c, mm_translate(c, &b, 1, &id, 1, &sar, srcs, 1, &rgb, dsts), MM_ERROR_ARGUMENT, "guidance");
    b = sp;
    b.sampler = (mm_sampler)9;
    expect(c, mm_translate(c, &b, 1, &id, 1, &sar, srcs, 1, &rgb, dsts), MM_ERROR_ARGUMENT, "sampler");
    b = sp;
    b.time_shift = 0;
    expect(c, mm_translate(c, &b, 1, &id, 1, &sar, srcs, 1, &rgb, dsts), MM_ERROR_ARGUMENT, "time_shift");
    expect(c, mm_embed(c, 1, 0, &sar, srcs, dsts), MM_ERROR_ARGUMENT, "at least one source");
    expect(c, mm_vae_encode(c, 9, 1, img, out), MM_ERROR_ARGUMENT, "invalid modality");
    const float t_bad = 1.5f;
    const mm_partition part = {rgb, img, &t_bad};
    const int tp = 0;
    expect(c, mm_predict(c, 1, 1, &part, 1, &tp, dsts, NULL), MM_ERROR_ARGUMENT, "outside [0, 1]");
    /* after errors the context still works */
    assert_int_equal(mm_translate(c, &sp, 1, &id, 1, &sar, srcs, 1, &rgb, dsts), MM_OK);
    assert_string_equal(mm_context_errmsg(c), "");
    assert_int_equal(mm_sampler_from_name("heun"), MM_SAMPLER_HEUN);
    assert_int_equal(mm_sampler_from_name("nope"), -1);
    assert_int_equal(mm_model_modality_index(m, "nir"), 2);
    assert_int_equal(mm_model_modality_index(m, "lidar"), -1);
    free(img);
    free(out);
    mm_context_free(c);
    mm_model_close(m);
}

static int stop_after_two(void *user, int step, int n) {
    (void)n;
    *(int *)user = step;
    return step >= 2;
}

static void test_interrupt(void **s) {
    (void)s;
    mm_model *m = open_ok(TINY);
    mm_context *c = ctx_ok(m, 1);
    const int rgb = 0, S = mm_model_image_size(m);
    float *out = calloc((size_t)3 * S * S, sizeof(float));
    float *dsts[1] = {out};
    const uint64_t id = 0;
    int last = 0;
    mm_sample_params sp;
    mm_sample_params_default(m, &sp);
    sp.steps = 5;
    sp.progress = stop_after_two;
    sp.progress_user = &last;
    expect(c, mm_generate(c, &sp, 1, &id, 1, &rgb, dsts), MM_ERROR_INTERRUPTED, "interrupted");
    assert_int_equal(last, 2);
    free(out);
    mm_context_free(c);
    mm_model_close(m);
}

/* ---- threads ------------------------------------------------------------------------------ */

typedef struct {
    mm_model *m;
    uint64_t id;
    float *out;
    mm_status st;
} job;

static void *worker(void *arg) {
    job *j = arg;
    mm_context_params p;
    mm_context_params_default(&p);
    p.n_threads = 1;
    mm_context *c = NULL;
    if ((j->st = mm_context_create(j->m, &p, &c, NULL)) != MM_OK) return NULL;
    mm_sample_params sp;
    mm_sample_params_default(j->m, &sp);
    sp.steps = 3;
    const int rgb = 0, sar = 1;
    float *dsts[2] = {j->out, j->out + 3 * 32 * 32};
    const int mods[2] = {rgb, sar};
    j->st = mm_generate(c, &sp, 1, &j->id, 2, mods, dsts);
    mm_context_free(c);
    return NULL;
}

static void test_threads(void **s) {
    (void)s;
    mm_model *m = open_ok(TINY);
    enum { T = 4 };
    job jobs[T], seq[T];
    pthread_t th[T];
    for (int i = 0; i < T; i++) {
        jobs[i] = (job){m, (uint64_t)i, malloc(sizeof(float) * 4 * 32 * 32), MM_OK};
        seq[i] = (job){m, (uint64_t)i, malloc(sizeof(float) * 4 * 32 * 32), MM_OK};
        worker(&seq[i]);
    }
    for (int i = 0; i < T; i++) assert_int_equal(pthread_create(&th[i], NULL, worker, &jobs[i]), 0);
    for (int i = 0; i < T; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < T; i++) {
        assert_int_equal(jobs[i].st, MM_OK);
        assert_memory_equal(jobs[i].out, seq[i].out, sizeof(float) * 4 * 32 * 32);
        free(jobs[i].out);
        free(seq[i].out);
    }
    mm_model_close(m);
}

static void test_param_count_of_paper_config(void **s) {
    (void)s;
    FILE *f = fopen(MM_SOURCE_DIR "/models/metaearth-mm-600m.json", "rb");
    assert_non_null(f);
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    mm_param_count pc;
    char *err = NULL;
    assert_int_equal(mm_config_param_count(buf, &pc, &err), MM_OK);
    printf("  paper config: %.1fM total, %.1fM without the VAE\n", pc.total / 1e6,
           (pc.total - pc.vae) / 1e6);
    assert_true(pc.total - pc.vae > 550000000 && pc.total - pc.vae < 650000000);
    assert_int_equal(pc.vae, 83653863);
    assert_int_equal(mm_config_param_count("{", &pc, &err), MM_ERROR_CONFIG);
    assert_non_null(err);
    mm_free(err);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_philox_known_answers),
        cmocka_unit_test(test_noise_addressing),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_model_mismatch),
        cmocka_unit_test(test_dtypes),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_interrupt),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_param_count_of_paper_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
