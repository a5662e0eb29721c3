/*
 * Backend parity: every operation of backend.h on the CUDA backend against the CPU backend (the
 * reference), on random inputs; the noise bit for bit; the determinism contract on the device
 * (a tile's bits do not depend on what it is batched with); and one full sampling step through
 * the public API on the tiny model. Without a CUDA device it prints "SKIPPED: ..." and exits 77,
 * which ctest reports as skipped (SKIP_RETURN_CODE).
 *
 * Error measure: relative error = max |cuda - cpu| / max |cpu| over the output. Tolerances:
 *   fp32 operations (CUDA with TF32 off, the default)          1e-5
 *   bf16 mode: matrix products, attention, convolutions        1e-2  (bf16 operands, fp32
 *       accumulation in different orders; CUDA convolutions use TF32 there; the CPU side is
 *       bf16 where the CPU has it, fp32 otherwise)
 *   pure rearrangements (copies, layouts, upsampling)           0     (bit-identical)
 *   channel average                                             1e-6
 *   noise                                                       0 mismatching elements
 *   one sampling step on the tiny model (decoded image)        fp32 1e-4, bf16 5e-2
 *   determinism on the device (item alone vs in a batch)       0     (bit-identical)
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

#include "backend.h"
#include "mm.h"
#include "noise.h"

static const double TOL_FP32 = 1e-5;
static const double TOL_BF16 = 1e-2;
static const double TOL_AVG = 1e-6;
static const double TOL_STEP_FP32 = 1e-4;
static const double TOL_STEP_BF16 = 5e-2;

typedef struct {
    const char *name;
    mm_backend *cpu, *gpu;
    double tol; /* for products / attention / convolutions */
} mode;

static mode modes[2]; /* fp32, bf16 */

/* ---- helpers ------------------------------------------------------------------------------- */

/* host allocations that must outlive the backends (their device copies are keyed by address) */
static void *keep[4096];
static int n_keep;

static void *kept(void *p) {
    assert_non_null(p);
    assert_true(n_keep < (int)(sizeof keep / sizeof keep[0]));
    keep[n_keep++] = p;
    return p;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static float urand(void) { /* uniform [-1, 1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static float *rnd(size_t n, float scale) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = scale * urand();
    return p;
}

static void ok(mm_backend *b, int rc, const char *what) {
    if (rc) fail_msg("%s on %s: %s", what, b->ops->name, b->errmsg);
}

static float *up(mm_backend *b, const float *h, size_t n) {
    float *d = b->ops->alloc(b, n ? n : 1);
    if (!d) fail_msg("alloc on %s: %s", b->ops->name, b->errmsg);
    ok(b, b->ops->upload(b, d, h, n), "upload");
    return d;
}

static float *dalloc(mm_backend *b, size_t n) {
    float *d = b->ops->alloc(b, n ? n : 1);
    if (!d) fail_msg("alloc on %s: %s", b->ops->name, b->errmsg);
    return d;
}

static float *down(mm_backend *b, const float *d, size_t n) {
    float *h = malloc((n ? n : 1) * sizeof(float));
    assert_non_null(h);
    ok(b, b->ops->download(b, h, d, n), "download");
    return h;
}

static double rel_err(const float *got, const float *want, size_t n) {
    double md = 0, mr = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(got[i]) || !isfinite(want[i])) return INFINITY;
        const double d = fabs((double)got[i] - want[i]);
        md = d > md ? d : md;
        mr = fabs(want[i]) > mr ? fabs(want[i]) : mr;
    }
    return mr > 0 ? md / mr : md;
}

static void compare(const char *what, const char *m, const float *gpu, const float *cpu, size_t n,
                    double tol) {
    const double e = rel_err(gpu, cpu, n);
    printf("  %-52s %-4s rel. error %.3e (tolerance %.0e)\n", what, m, e, tol);
    if (!(e <= tol)) fail_msg("%s (%s): relative error %.3e above %.0e", what, m, e, tol);
}

static void same_bits(const char *what, const float *a, const float *b, size_t n) {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += memcmp(&a[i], &b[i], sizeof(float)) != 0;
    printf("  %-52s      %zu of %zu elements differ (allowed 0)\n", what, bad, n);
    if (bad) fail_msg("%s: %zu elements differ", what, bad);
}

static mm_weight *weight(int64_t rows, int64_t cols, int bias) {
    mm_weight *w = kept(calloc(1, sizeof *w));
    float *f = kept(rnd((size_t)(rows * cols), 1.0f / sqrtf((float)cols)));
    uint16_t *h = kept(malloc((size_t)(rows * cols) * sizeof(uint16_t)));
    for (int64_t i = 0; i < rows * cols; i++)
        h[i] = mm_f32_to_bf16(f[i]);
    w->rows = rows;
    w->cols = cols;
    w->f32 = f;
    w->bf16 = h;
    w->bias = bias ? kept(rnd((size_t)rows, 0.1f)) : NULL;
    return w;
}

/* ---- memory ------------------------------------------------------------------------------- */

static void test_memory(void **state) {
    (void)state;
    const size_t n = 100003;
    float *h = rnd(n, 3.0f);
    for (int mi = 0; mi < 2; mi++) {
        mm_backend *g = modes[mi].gpu;
        float *d = up(g, h, n), *d2 = dalloc(g, n);
        ok(g, g->ops->copy(g, d2, d, n), "copy");
        ok(g, g->ops->copy(g, d2 + 1, d, 1000), "copy (offset)");
        float *back = down(g, d2, n), *want = malloc(n * sizeof(float));
        memcpy(want, h, n * sizeof(float));
        memcpy(want + 1, h, 1000 * sizeof(float));
        same_bits("upload / copy / download", back, want, n);
        const float *r1 = g->ops->resident(g, kept(rnd(777, 1.0f)), 777);
        assert_non_null(r1);
        const float *src = keep[n_keep - 1];
        assert_ptr_equal(g->ops->resident(g, src, 777), r1); /* uploaded once */
        float *rb = down(g, r1, 777);
        same_bits("resident", rb, src, 777);
        g->ops->free(g, d);
        g->ops->free(g, d2);
        free(back), free(want), free(rb);
    }
    free(h);
}

/* ---- linear --------------------------------------------------------------------------------- */

static float *run_linear(mm_backend *b, const float *x, int64_t M, int64_t rpi, const mm_weight *W,
                         mm_activation act) {
    float *dx = up(b, x, (size_t)(M * W->cols)), *dy = dalloc(b, (size_t)(M * W->rows));
    ok(b, b->ops->linear(b, dy, dx, M, rpi, W, act), "linear");
    float *y = down(b, dy, (size_t)(M * W->rows));
    b->ops->free(b, dx);
    b->ops->free(b, dy);
    return y;
}

static void test_linear(void **state) {
    (void)state;
    const struct {
        int64_t items, rpi, K, N;
        int bias;
        mm_activation act;
    } cases[] = {
        {3, 40, 96, 200, 1, MM_ACT_NONE},   {2, 64, 64, 384, 1, MM_ACT_GELU_TANH},
        {2, 64, 128, 64, 0, MM_ACT_SILU},   {5, 7, 33, 17, 1, MM_ACT_NONE},
        {1, 300, 256, 768, 1, MM_ACT_NONE}, {4, 2, 64, 384, 1, MM_ACT_NONE} /* modulation */};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const int64_t M = cases[c].items * cases[c].rpi, K = cases[c].K, N = cases[c].N;
        mm_weight *W = weight(N, K, cases[c].bias);
        float *x = rnd((size_t)(M * K), 1.0f);
        char what[128];
        snprintf(what, sizeof what, "linear %lldx%lld -> %lld (%lld items, act %d)", (long long)M,
                 (long long)K, (long long)N, (long long)cases[c].items, (int)cases[c].act);
        for (int mi = 0; mi < 2; mi++) {
            float *yc = run_linear(modes[mi].cpu, x, M, cases[c].rpi, W, cases[c].act);
            float *yg = run_linear(modes[mi].gpu, x, M, cases[c].rpi, W, cases[c].act);
            compare(what, modes[mi].name, yg, yc, (size_t)(M * N), modes[mi].tol);
            /* determinism: every item alone gives the bits it has in the batch */
            for (int64_t it = 0; it < cases[c].items; it++) {
                float *y1 = run_linear(modes[mi].gpu, x + it * cases[c].rpi * K, cases[c].rpi,
                                       cases[c].rpi, W, cases[c].act);
                if (memcmp(y1, yg + it * cases[c].rpi * N, (size_t)(cases[c].rpi * N) * 4))
                    fail_msg("%s (%s): item %lld alone differs from the batch", what,
                             modes[mi].name, (long long)it);
                free(y1);
            }
            free(yc), free(yg);
        }
        printf("  %-52s      every item alone == in the batch, bit for bit\n", what);
        free(x);
    }
}

/* ---- conv2d --------------------------------------------------------------------------------- */

static float *run_conv(mm_backend *b, const float *x, int n, int cin, int h, int w,
                       const mm_weight *W, int k, int s, const int pad[4], size_t *ny) {
    const int oh = (h + pad[0] + pad[2] - k) / s + 1, ow = (w + pad[1] + pad[3] - k) / s + 1;
    *ny = (size_t)n * W->rows * oh * ow;
    float *dx = up(b, x, (size_t)n * cin * h * w), *dy = dalloc(b, *ny);
    ok(b, b->ops->conv2d(b, dy, dx, n, cin, h, w, W, k, s, pad), "conv2d");
    float *y = down(b, dy, *ny);
    b->ops->free(b, dx);
    b->ops->free(b, dy);
    return y;
}

static void test_conv2d(void **state) {
    (void)state;
    const struct {
        int n, cin, h, w, cout, k, s, pad[4];
    } cases[] = {{2, 8, 12, 12, 16, 3, 1, {1, 1, 1, 1}},  {2, 8, 12, 12, 8, 3, 2, {0, 0, 1, 1}},
                 {2, 16, 9, 9, 4, 1, 1, {0, 0, 0, 0}},    {1, 3, 7, 5, 5, 3, 1, {1, 1, 1, 1}},
                 {2, 32, 16, 16, 32, 3, 1, {1, 1, 1, 1}}, {2, 4, 8, 8, 64, 2, 2, {0, 0, 0, 0}}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const int n = cases[c].n, cin = cases[c].cin, h = cases[c].h, w = cases[c].w;
        const int k = cases[c].k;
        mm_weight *W = weight(cases[c].cout, (int64_t)cin * k * k, 1);
        float *x = rnd((size_t)n * cin * h * w, 1.0f);
        char what[128];
        snprintf(what, sizeof what, "conv2d %dx%dx%dx%d k%d s%d pad %d,%d,%d,%d -> %d", n, cin, h,
                 w, k, cases[c].s, cases[c].pad[0], cases[c].pad[1], cases[c].pad[2],
                 cases[c].pad[3], cases[c].cout);
        for (int mi = 0; mi < 2; mi++) {
            size_t ny;
            float *yc =
                run_conv(modes[mi].cpu, x, n, cin, h, w, W, k, cases[c].s, cases[c].pad, &ny);
            float *yg =
                run_conv(modes[mi].gpu, x, n, cin, h, w, W, k, cases[c].s, cases[c].pad, &ny);
            compare(what, modes[mi].name, yg, yc, ny, modes[mi].tol);
            if (n > 1) { /* the last image alone */
                size_t n1;
                float *y1 = run_conv(modes[mi].gpu, x + (size_t)(n - 1) * cin * h * w, 1, cin, h, w,
                                     W, k, cases[c].s, cases[c].pad, &n1);
                if (memcmp(y1, yg + (size_t)(n - 1) * n1, n1 * 4))
                    fail_msg("%s (%s): an image alone differs from the batch", what,
                             modes[mi].name);
                free(y1);
            }
            free(yc), free(yg);
        }
        free(x);
    }
}

/* ---- attention ------------------------------------------------------------------------------ */

static float *run_attention(mm_backend *b, const float *qkv, int n_seq, int S, int nh, int hd) {
    const size_t nin = (size_t)n_seq * S * 3 * nh * hd, nout = (size_t)n_seq * S * nh * hd;
    float *dq = up(b, qkv, nin), *dout = dalloc(b, nout);
    ok(b, b->ops->attention(b, dout, dq, n_seq, S, nh, hd), "attention");
    float *o = down(b, dout, nout);
    b->ops->free(b, dq);
    b->ops->free(b, dout);
    return o;
}

static void test_attention(void **state) {
    (void)state;
    /* 16..128: the fused kernels; 96 and 512: the generic path (512: the VAE's mid-block) */
    const struct {
        int n_seq, S, nh, hd;
    } cases[] = {{2, 100, 2, 64}, {1, 64, 1, 128}, {2, 70, 4, 16},  {1, 37, 2, 32},
                 {3, 128, 2, 64}, {1, 50, 1, 96},  {2, 40, 1, 512}, {1, 300, 2, 128}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const int n_seq = cases[c].n_seq, S = cases[c].S, nh = cases[c].nh, hd = cases[c].hd;
        const size_t per = (size_t)S * 3 * nh * hd, outper = (size_t)S * nh * hd;
        float *qkv = rnd(per * n_seq, 1.5f);
        char what[128];
        snprintf(what, sizeof what, "attention %d seq x %d tokens, %d heads of %d", n_seq, S, nh,
                 hd);
        for (int mi = 0; mi < 2; mi++) {
            float *oc = run_attention(modes[mi].cpu, qkv, n_seq, S, nh, hd);
            float *og = run_attention(modes[mi].gpu, qkv, n_seq, S, nh, hd);
            compare(what, modes[mi].name, og, oc, outper * n_seq, mi ? modes[mi].tol : TOL_FP32);
            if (n_seq > 1) {
                float *o1 = run_attention(modes[mi].gpu, qkv + per * (n_seq - 1), 1, S, nh, hd);
                if (memcmp(o1, og + outper * (n_seq - 1), outper * 4))
                    fail_msg("%s (%s): a sequence alone differs from the batch", what,
                             modes[mi].name);
                free(o1);
            }
            free(oc), free(og);
        }
        free(qkv);
    }
}

/* ---- norms ------------------------------------------------------------------------------------
 */

static void test_norms(void **state) {
    (void)state;
    const int64_t rows = 60;
    const int H = 96;
    float *x = rnd((size_t)(rows * H), 2.0f), *tab = rnd((size_t)6 * 6 * H, 0.5f);
    float *w = rnd(H, 1.0f), *bias = rnd(H, 0.3f), *y0 = rnd((size_t)(rows * H), 1.0f);
    for (int mi = 0; mi < 2; mi++) {
        float *res[2][4];
        mm_backend *bs[2] = {modes[mi].cpu, modes[mi].gpu};
        for (int s = 0; s < 2; s++) {
            mm_backend *b = bs[s];
            float *dx = up(b, x, (size_t)(rows * H)), *dt = up(b, tab, (size_t)36 * H);
            float *dw = up(b, w, H), *db = up(b, bias, H), *dy = dalloc(b, (size_t)(rows * H));
            const mm_modulation sh = {dt + 2 * H, 6 * H, 10}, sc = {dt + 5 * H, 6 * H, 20};
            ok(b, b->ops->layernorm_modulate(b, dy, dx, rows, H, 1e-6f, sh, sc),
               "layernorm_modulate");
            res[s][0] = down(b, dy, (size_t)(rows * H));
            ok(b, b->ops->layernorm_affine(b, dy, dx, rows, H, 1e-6f, dw, db), "layernorm_affine");
            res[s][1] = down(b, dy, (size_t)(rows * H));
            ok(b, b->ops->upload(b, dy, y0, (size_t)(rows * H)), "upload");
            ok(b, b->ops->gated_add(b, dy, dx, rows, H, (mm_modulation){dt + H, 6 * H, 12}),
               "gated_add");
            res[s][2] = down(b, dy, (size_t)(rows * H));
            /* group norm over [n=2, c=16, hw=45] in 4 groups, with and without SiLU */
            float *dg = dalloc(b, 2 * 16 * 45);
            ok(b, b->ops->group_norm(b, dg, dx, 2, 16, 45, 4, 1e-6f, dw, db, 0), "group_norm");
            float *g0 = down(b, dg, 2 * 16 * 45);
            ok(b, b->ops->group_norm(b, dg, dx, 2, 16, 45, 4, 1e-6f, dw, db, 1), "group_norm silu");
            float *g1 = down(b, dg, 2 * 16 * 45);
            res[s][3] = malloc(2 * 2 * 16 * 45 * sizeof(float));
            memcpy(res[s][3], g0, 2 * 16 * 45 * sizeof(float));
            memcpy(res[s][3] + 2 * 16 * 45, g1, 2 * 16 * 45 * sizeof(float));
            free(g0), free(g1);
            b->ops->free(b, dx), b->ops->free(b, dt), b->ops->free(b, dw), b->ops->free(b, db);
            b->ops->free(b, dy), b->ops->free(b, dg);
        }
        const char *names[4] = {"layernorm_modulate (grouped shift/scale)", "layernorm_affine",
                                "gated_add", "group_norm (plain and + SiLU)"};
        const size_t ns[4] = {(size_t)(rows * H), (size_t)(rows * H), (size_t)(rows * H),
                              2 * 2 * 16 * 45};
        for (int k = 0; k < 4; k++) {
            compare(names[k], modes[mi].name, res[1][k], res[0][k], ns[k], TOL_FP32);
            free(res[0][k]), free(res[1][k]);
        }
    }
    free(x), free(tab), free(w), free(bias), free(y0);
}

/* ---- element-wise --------------------------------------------------------------------------- */

static void test_elementwise(void **state) {
    (void)state;
    const int64_t rows = 48;
    const int H = 80;
    const size_t n = (size_t)(rows * H);
    float *x = rnd(n, 6.0f), *y0 = rnd(n, 1.0f), *tab = rnd((size_t)4 * 3 * H, 1.0f);
    float *v = rnd((size_t)16 * H, 1.0f);
    mm_backend *bs[2] = {modes[0].cpu, modes[0].gpu};
    float *res[2][6];
    for (int s = 0; s < 2; s++) {
        mm_backend *b = bs[s];
        float *dx = up(b, x, n), *dy = dalloc(b, n), *dt = up(b, tab, (size_t)12 * H);
        float *dv = up(b, v, (size_t)16 * H);
        ok(b, b->ops->silu(b, dy, dx, n), "silu");
        res[s][0] = down(b, dy, n);
        ok(b, b->ops->upload(b, dy, y0, n), "upload");
        ok(b, b->ops->axpby(b, dy, 0.75f, dx, -1.25f, n), "axpby");
        res[s][1] = down(b, dy, n);
        ok(b, b->ops->affine(b, dy, dx, 0.3f, -0.7f, n), "affine");
        ok(b, b->ops->affine(b, dy, dy, 2.0f, 0.5f, n), "affine in place");
        res[s][2] = down(b, dy, n);
        ok(b, b->ops->upload(b, dy, y0, n), "upload");
        ok(b, b->ops->add_grouped(b, dy, rows, H, (mm_modulation){dt + H, 3 * H, 12}),
           "add_grouped");
        res[s][3] = down(b, dy, n);
        ok(b, b->ops->upload(b, dy, y0, n), "upload");
        ok(b, b->ops->add_rows(b, dy, dv, rows, 16, H), "add_rows");
        ok(b, b->ops->add_rows(b, dy, dv + 3 * H, rows, 1, H), "add_rows (period 1)");
        res[s][4] = down(b, dy, n);
        ok(b, b->ops->copy(b, dy, dx, n), "copy");
        ok(b, b->ops->silu(b, dy, dy, n), "silu in place");
        res[s][5] = down(b, dy, n);
        b->ops->free(b, dx), b->ops->free(b, dy), b->ops->free(b, dt), b->ops->free(b, dv);
    }
    const char *names[6] = {"silu",        "axpby",    "affine (and in place)",
                            "add_grouped", "add_rows", "silu in place"};
    for (int k = 0; k < 6; k++) {
        compare(names[k], "", res[1][k], res[0][k], n, TOL_FP32);
        free(res[0][k]), free(res[1][k]);
    }
    free(x), free(y0), free(tab), free(v);
}

/* ---- layouts ----------------------------------------------------------------------------------
 */

static void test_layouts(void **state) {
    (void)state;
    mm_backend *bs[2] = {modes[0].cpu, modes[0].gpu};
    /* upsample [2, 3, 5, 7] ; transpose 3 x [37, 45] ; patchify / unpatchify [2, 4, 16, 16] p 2 ;
     * channels_adapt [2, c, 100] 1 -> 3, 3 -> 3, 3 -> 1 */
    const size_t nu = 2 * 3 * 5 * 7, nt = 3 * 37 * 45, np = 2 * 4 * 16 * 16, nc = 2 * 3 * 100;
    float *xu = rnd(nu, 1.0f), *xt = rnd(nt, 1.0f), *xp = rnd(np, 1.0f), *xc = rnd(nc, 1.0f);
    float *res[2][7];
    for (int s = 0; s < 2; s++) {
        mm_backend *b = bs[s];
        float *du = up(b, xu, nu), *dt = up(b, xt, nt), *dp = up(b, xp, np), *dc = up(b, xc, nc);
        float *y = dalloc(b, 4 * nu + nt + 2 * np + 3 * nc);
        ok(b, b->ops->upsample2x(b, y, du, 2, 3, 5, 7), "upsample2x");
        res[s][0] = down(b, y, 4 * nu);
        ok(b, b->ops->transpose(b, y, dt, 3, 37, 45), "transpose");
        res[s][1] = down(b, y, nt);
        ok(b, b->ops->patchify(b, y, dp, 2, 4, 16, 2), "patchify");
        res[s][2] = down(b, y, np);
        ok(b, b->ops->unpatchify(b, y, dp, 2, 4, 16, 2), "unpatchify");
        res[s][3] = down(b, y, np);
        ok(b, b->ops->channels_adapt(b, y, dc, 2, 1, 3, 100), "channels_adapt 1->3");
        res[s][4] = down(b, y, nc);
        ok(b, b->ops->channels_adapt(b, y, dc, 2, 3, 3, 100), "channels_adapt 3->3");
        res[s][5] = down(b, y, nc);
        ok(b, b->ops->channels_adapt(b, y, dc, 2, 3, 1, 100), "channels_adapt 3->1");
        res[s][6] = down(b, y, 200);
        assert_int_not_equal(b->ops->channels_adapt(b, y, dc, 2, 3, 2, 100), 0); /* refused */
        b->ops->free(b, du), b->ops->free(b, dt), b->ops->free(b, dp), b->ops->free(b, dc);
        b->ops->free(b, y);
    }
    const char *names[7] = {"upsample2x",
                            "transpose",
                            "patchify",
                            "unpatchify",
                            "channels_adapt 1 -> 3",
                            "channels_adapt 3 -> 3",
                            "channels_adapt 3 -> 1"};
    const size_t ns[7] = {4 * nu, nt, np, np, nc, nc, 200};
    for (int k = 0; k < 7; k++) {
        if (k == 6)
            compare(names[k], "", res[1][k], res[0][k], ns[k], TOL_AVG);
        else
            same_bits(names[k], res[1][k], res[0][k], ns[k]);
        free(res[0][k]), free(res[1][k]);
    }
    free(xu), free(xt), free(xp), free(xc);
}

/* ---- noise: bit-identical to libmm/src/noise.c -------------------------------------------------
 */

static void test_noise(void **state) {
    (void)state;
    mm_backend *g = modes[0].gpu;
    const struct {
        uint64_t seed, tile;
        int purpose, mod, step;
        size_t n;
    } cases[] = {{1234, 7, 0, 0, 0, 4096 * 4 + 3},
                 {0, 0, 1, 3, 65535, 1},
                 {0xFFFFFFFFFFFFFFFFull, 1ull << 40, 2, 4, 17, 1000001},
                 {42, 123456789, 1, 1, 249, (size_t)1 << 22},
                 {7, 11, 0, 2, 0, 4 * 32 * 32}};
    size_t total = 0, bad = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const size_t n = cases[c].n;
        float *want = malloc(n * sizeof(float)), *d = dalloc(g, n);
        mm_noise_fill(cases[c].seed, cases[c].tile, cases[c].purpose, cases[c].mod, cases[c].step,
                      want, n);
        ok(g,
           g->ops->noise(g, d, cases[c].seed, cases[c].tile, cases[c].purpose, cases[c].mod,
                         cases[c].step, n),
           "noise");
        float *got = down(g, d, n);
        size_t nb = 0;
        for (size_t i = 0; i < n; i++)
            nb += memcmp(&got[i], &want[i], sizeof(float)) != 0;
        printf("  noise seed %llu tile %llu purpose %d modality %d step %d: %zu of %zu differ\n",
               (unsigned long long)cases[c].seed, (unsigned long long)cases[c].tile,
               cases[c].purpose, cases[c].mod, cases[c].step, nb, n);
        total += n;
        bad += nb;
        g->ops->free(g, d);
        free(want), free(got);
    }
    printf("  %-52s      %zu of %zu elements differ (allowed 0)\n", "noise, all cases", bad, total);
    assert_int_equal(bad, 0);
}

/* ---- one sampling step through the public API -------------------------------------------------
 */

static float *translate_once(mm_model *m, mm_device dev, mm_precision prec, const float *src,
                             int n_tiles) {
    mm_context_params p;
    mm_context_params_default(&p);
    p.device = dev;
    p.precision = prec;
    mm_context *ctx = NULL;
    char *err = NULL;
    if (mm_context_create(m, &p, &ctx, &err) != MM_OK) fail_msg("context: %s", err);
    const int S = mm_model_image_size(m), sar = mm_model_modality_index(m, "sar");
    const int rgb = mm_model_modality_index(m, "rgb");
    float *out = malloc((size_t)n_tiles * 3 * S * S * sizeof(float));
    uint64_t ids[4] = {7, 11, 3, 5};
    mm_sample_params sp;
    mm_sample_params_default(m, &sp);
    sp.steps = 1;
    sp.guidance = 1.5f;
    sp.seed = 1234;
    const float *srcs[1] = {src};
    float *dsts[1] = {out};
    if (mm_translate(ctx, &sp, n_tiles, ids, 1, &sar, srcs, 1, &rgb, dsts) != MM_OK)
        fail_msg("translate: %s", mm_context_errmsg(ctx));
    mm_context_free(ctx);
    return out;
}

static void test_sampling_step(void **state) {
    (void)state;
    mm_model *m = NULL;
    char *err = NULL;
    if (mm_model_open(MM_GOLDEN_DIR "/tiny_model.safetensors", &m, &err) != MM_OK)
        fail_msg("model: %s", err);
    const int S = mm_model_image_size(m), n = 2;
    const size_t nout = (size_t)n * 3 * S * S;
    float *src = rnd((size_t)n * S * S, 1.0f);
    const mm_precision precs[2] = {MM_PRECISION_FP32, MM_PRECISION_BF16};
    const double tols[2] = {TOL_STEP_FP32, TOL_STEP_BF16};
    for (int k = 0; k < 2; k++) {
        float *c = translate_once(m, MM_DEVICE_CPU, precs[k], src, n);
        float *g = translate_once(m, MM_DEVICE_CUDA, precs[k], src, n);
        compare("one guided translation step (tiny model, sar -> rgb)", modes[k].name, g, c, nout,
                tols[k]);
        free(c), free(g);
    }
    /* latent level (mm_predict stages through upload / download on the device) */
    const int C = mm_model_latent_channels(m), L = mm_model_latent_size(m);
    const int H = mm_model_hidden_size(m), T = mm_model_tokens_per_side(m);
    const size_t lat = (size_t)n * C * L * L, sn = (size_t)n * 2 * T * T * H;
    float *z0 = rnd(lat, 1.0f), *z1 = rnd(lat, 1.0f), t0[2] = {0.0f, 1.0f}, t1[2] = {0.3f, 0.8f};
    const mm_partition parts[2] = {{1, z0, t0}, {0, z1, t1}};
    const int target = 1;
    float *v[2], *scene[2];
    for (int d = 0; d < 2; d++) {
        mm_context_params p;
        mm_context_params_default(&p);
        p.device = d ? MM_DEVICE_CUDA : MM_DEVICE_CPU;
        p.precision = MM_PRECISION_FP32;
        mm_context *ctx = NULL;
        if (mm_context_create(m, &p, &ctx, &err) != MM_OK) fail_msg("context: %s", err);
        v[d] = malloc(lat * sizeof(float));
        scene[d] = malloc(sn * sizeof(float));
        if (mm_predict(ctx, n, 2, parts, 1, &target, &v[d], scene[d]) != MM_OK)
            fail_msg("predict: %s", mm_context_errmsg(ctx));
        mm_context_free(ctx);
    }
    compare("mm_predict velocity (tiny model)", "fp32", v[1], v[0], lat, TOL_STEP_FP32);
    compare("mm_predict scene tokens (tiny model)", "fp32", scene[1], scene[0], sn, TOL_STEP_FP32);
    for (int d = 0; d < 2; d++)
        free(v[d]), free(scene[d]);
    free(z0), free(z1), free(src);
    mm_model_close(m);
}

int main(void) {
    char err[512] = "";
    mm_backend *g32 = mm_backend_cuda_create(0, 0, err, sizeof err);
    if (!g32) {
        printf("SKIPPED: no CUDA device (%s)\n", err);
        return 77; /* ctest: SKIP_RETURN_CODE */
    }
    mm_backend *g16 = mm_backend_cuda_create(0, 1, err, sizeof err);
    mm_backend *c32 = mm_backend_cpu_create(0, 0, err, sizeof err);
    mm_backend *c16 = c32 ? mm_backend_cpu_create(0, 1, err, sizeof err) : NULL;
    if (!g16 || !c32 || !c16) {
        printf("cannot create the backends: %s\n", err);
        return 1;
    }
    printf("backends: cpu fp32, cpu %s, cuda fp32%s, cuda %s\n",
           c16->use_bf16 ? "bf16" : "fp32 (no bf16 on this CPU)",
           getenv("MM_CUDA_TF32") && strcmp(getenv("MM_CUDA_TF32"), "0")
               ? " (TF32 on: MM_CUDA_TF32)"
               : "",
           g16->use_bf16 ? "bf16" : "fp32 (no bf16 on this GPU)");
    modes[0] = (mode){"fp32", c32, g32, TOL_FP32};
    modes[1] = (mode){"bf16", c16, g16, TOL_BF16};
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory),        cmocka_unit_test(test_linear),
        cmocka_unit_test(test_conv2d),        cmocka_unit_test(test_attention),
        cmocka_unit_test(test_norms),         cmocka_unit_test(test_elementwise),
        cmocka_unit_test(test_layouts),       cmocka_unit_test(test_noise),
        cmocka_unit_test(test_sampling_step),
    };
    const int failed = cmocka_run_group_tests(tests, NULL, NULL);
    for (int i = 0; i < 2; i++) {
        modes[i].gpu->ops->destroy(modes[i].gpu);
        modes[i].cpu->ops->destroy(modes[i].cpu);
    }
    for (int i = 0; i < n_keep; i++)
        free(keep[i]);
    return failed;
}
