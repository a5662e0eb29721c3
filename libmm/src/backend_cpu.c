/*
 * The CPU backend: matrix products through oneDNN, everything else as OpenMP loops.
 *
 * Determinism. oneDNN's multi-threaded matmul may split the reduction dimension between threads,
 * so a row's result can change with the thread count, and its kernel choice can change with the
 * problem size. A single-threaded oneDNN matmul, measured on this project's shapes, gives every
 * output element the same bits whatever M and N blocking are used around it. So every matrix
 * product here is cut into blocks of at most MM_ROW_BLOCK rows (and, when rows are few, of
 * columns), and each block runs as one single-threaded oneDNN primitive inside our own OpenMP
 * loop (oneDNN runs sequentially when called inside a parallel region, so its threads and ours
 * never compete). A row's bits then depend neither on the thread count nor on how many tiles
 * were batched with it. tests/test_determinism.c checks it.
 *
 * Each thread has its own scratch (bf16 staging, im2col, attention scores, oneDNN scratchpad):
 * oneDNN's own scratchpad is shared library-wide in Debian's build, so we pass ours
 * ("user" scratchpad mode).
 */
#include "backend.h"

#include <dnnl.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "noise.h"

#define MM_ROW_BLOCK 256
#define MM_MAX_PRIMS 256
#define MM_MAX_THREADS 256

typedef struct {
    /* key */
    int64_t M, K, N;
    int64_t lda, ldb, ldc;
    int a_trans, b_trans; /* b_trans: B given as [N, K] rows (weights layout) */
    int bf16, act, bias;
    /* value */
    dnnl_primitive_t prim;
    size_t scratch_bytes;
} prim_entry;

typedef struct {
    void *buf;
    size_t cap;
} scratch;

/* MM_PROFILE=1 in the environment: time per operation, printed to stderr when the backend is
 * destroyed (the "where the time goes" table of docs/performance.md). */
enum { P_LINEAR, P_CONV, P_ATTN, P_NORM, P_ELTWISE, P_LAYOUT, P_COUNT };
static const char *const prof_names[P_COUNT] = {
    "matrix products (linear)", "convolutions", "attention",
    "layer/group norms",        "element-wise", "layout (patchify, copies)"};

typedef struct {
    mm_backend base;
    int profile;
    double prof_s[P_COUNT];
    double prof_flop[P_COUNT];
    dnnl_engine_t engine;
    dnnl_stream_t streams[MM_MAX_THREADS];
    prim_entry prims[MM_MAX_PRIMS];
    int n_prims;
    omp_lock_t prim_lock;
    scratch a_stage[MM_MAX_THREADS]; /* bf16 copy of A rows / im2col */
    scratch work[MM_MAX_THREADS];    /* attention scores */
    scratch pad[MM_MAX_THREADS];     /* oneDNN scratchpad */
    scratch bstage;                  /* bf16 copy of a whole operand (attention qkv) */
} cpu_backend;

void mm_backend_seterr(mm_backend *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->errmsg, sizeof b->errmsg, fmt, ap);
    va_end(ap);
}

/* Branch-free so that conversion loops vectorise. */
static inline uint16_t bf16_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    const uint32_t nan = (u & 0x7fffffffu) > 0x7f800000u;
    const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16; /* nearest even */
    const uint32_t quiet = (u >> 16) | 0x40u;
    return (uint16_t)(nan ? quiet : rounded);
}

uint16_t mm_f32_to_bf16(float f) {
    return bf16_bits(f);
}

static void convert_span(uint16_t *dst, const float *src, int64_t n);

/* Rows of a matrix to bf16, in parallel. */
static void rows_to_bf16(int n_threads, uint16_t *dst, const float *src, int64_t n) {
#pragma omp parallel for num_threads(n_threads) schedule(static)
    for (int64_t blk = 0; blk < (n + 4095) / 4096; blk++) {
        const int64_t end = (blk + 1) * 4096 < n ? (blk + 1) * 4096 : n;
        convert_span(dst + blk * 4096, src + blk * 4096, end - blk * 4096);
    }
}

/* The hot element-wise loops are compiled for AVX-512, AVX2 and the baseline, chosen at load
 * time (target_clones). */
__attribute__((target_clones("avx512f", "avx2", "default"))) static float
softmax_row(float *row, int S, float scale, void *out, int bf);

/* exp for the softmax: Cody-Waite range reduction and a degree-6 polynomial, written so the
 * compiler vectorises it (libm's expf is a scalar call). Relative error below 2e-7 on the
 * softmax's range (x <= 0); the parity tests bound its effect. */
static inline float fast_exp(float x) {
    x = x < -87.0f ? -87.0f : x;
    /* round to nearest by adding 1.5 * 2^23: no libm call, vectorises with plain SSE2 */
    const float kf = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - kf * 0.693359375f;
    r = r + kf * 2.12194440e-4f;
    float p = 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const int32_t k = (int32_t)kf;
    uint32_t bits = (uint32_t)(k + 127) << 23;
    float scale;
    memcpy(&scale, &bits, 4);
    return p * scale;
}

static inline float bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float mm_bf16_to_f32(uint16_t h) {
    return bf16_to_f32(h);
}

static void *scratch_get(scratch *s, size_t bytes) {
    if (bytes <= s->cap) return s->buf;
    free(s->buf);
    s->cap = 0;
    /* 64-byte aligned: AMX/AVX-512 kernels and oneDNN prefer it */
    s->buf = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (s->buf) s->cap = bytes;
    return s->buf;
}

static inline cpu_backend *cpu(mm_backend *b) {
    return (cpu_backend *)b;
}

#define PROF_BEGIN(b) const double prof_t0 = cpu(b)->profile ? omp_get_wtime() : 0.0
#define PROF_END(b, kind, flop)                                                                    \
    do {                                                                                           \
        if (cpu(b)->profile) {                                                                     \
            cpu(b)->prof_s[kind] += omp_get_wtime() - prof_t0;                                     \
            cpu(b)->prof_flop[kind] += (flop);                                                     \
        }                                                                                          \
    } while (0)

/* ---- oneDNN matmul blocks ------------------------------------------------------------------ */

static int make_desc(dnnl_memory_desc_t *md, int64_t r, int64_t c, int64_t ld, int trans,
                     dnnl_data_type_t dt) {
    dnnl_dims_t dims = {r, c};
    dnnl_dims_t strides;
    if (trans) {
        strides[0] = 1;
        strides[1] = ld;
    } else {
        strides[0] = ld;
        strides[1] = 1;
    }
    return dnnl_memory_desc_init_by_strides(md, 2, dims, dt, strides) != dnnl_success;
}

/* Finds or creates the primitive C[M,N] = act(A[M,K] B[K,N] + bias). A is [M,K] with leading
 * dimension lda (a_trans: stored [K,M]); B is [K,N] (b_trans: stored as [N,K] rows, the weight
 * layout). */
static prim_entry *get_prim(cpu_backend *cb, int64_t M, int64_t K, int64_t N, int64_t lda,
                            int a_trans, int64_t ldb, int b_trans, int64_t ldc, int bf16, int act,
                            int bias) {
    prim_entry *hit = NULL;
    omp_set_lock(&cb->prim_lock);
    for (int i = 0; i < cb->n_prims; i++) {
        prim_entry *e = &cb->prims[i];
        if (e->M == M && e->K == K && e->N == N && e->lda == lda && e->ldb == ldb &&
            e->ldc == ldc && e->a_trans == a_trans && e->b_trans == b_trans && e->bf16 == bf16 &&
            e->act == act && e->bias == bias) {
            hit = e;
            break;
        }
    }
    if (hit || cb->n_prims >= MM_MAX_PRIMS) {
        if (!hit) { /* evict everything: shapes churned (e.g. many image sizes) */
            for (int i = 0; i < cb->n_prims; i++)
                dnnl_primitive_destroy(cb->prims[i].prim);
            cb->n_prims = 0;
        } else {
            omp_unset_lock(&cb->prim_lock);
            return hit;
        }
    }
    dnnl_data_type_t dt = bf16 ? dnnl_bf16 : dnnl_f32;
    dnnl_memory_desc_t ad, bd, cd, biasd;
    int bad = make_desc(&ad, M, K, lda, a_trans, dt) | make_desc(&bd, K, N, ldb, b_trans, dt) |
              make_desc(&cd, M, N, ldc, 0, dnnl_f32);
    if (bias) {
        dnnl_dims_t bdims = {1, N};
        bad |= dnnl_memory_desc_init_by_tag(&biasd, 2, bdims, dnnl_f32, dnnl_ab) != dnnl_success;
    }
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_matmul_desc_t mdesc;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    size_t scratch_bytes = 0;
    if (!bad) bad |= dnnl_primitive_attr_create(&attr) != dnnl_success;
    if (!bad) bad |= dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (!bad && act != MM_ACT_NONE) {
        bad |= dnnl_post_ops_create(&po) != dnnl_success;
        if (!bad)
            bad |= dnnl_post_ops_append_eltwise(po, 1.0f,
                                                act == MM_ACT_GELU_TANH ? dnnl_eltwise_gelu_tanh
                                                                        : dnnl_eltwise_swish,
                                                1.0f, 0.0f) != dnnl_success;
        if (!bad) bad |= dnnl_primitive_attr_set_post_ops(attr, po) != dnnl_success;
    }
    if (!bad) bad |= dnnl_matmul_desc_init(&mdesc, &ad, &bd, bias ? &biasd : NULL, &cd);
    if (!bad) bad |= dnnl_primitive_desc_create(&pd, &mdesc, attr, cb->engine, NULL);
    if (!bad) bad |= dnnl_primitive_create(&prim, pd);
    if (!bad) {
        const dnnl_memory_desc_t *sd =
            dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
        scratch_bytes = sd ? dnnl_memory_desc_get_size(sd) : 0;
    }
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (bad) {
        omp_unset_lock(&cb->prim_lock);
        mm_backend_seterr(&cb->base, "oneDNN could not create a %s matmul %lldx%lldx%lld",
                          bf16 ? "bf16" : "fp32", (long long)M, (long long)K, (long long)N);
        return NULL;
    }
    prim_entry *e = &cb->prims[cb->n_prims++];
    *e = (prim_entry){M,       K,    N,   lda,  ldb,  ldc,          a_trans,
                      b_trans, bf16, act, bias, prim, scratch_bytes};
    omp_unset_lock(&cb->prim_lock);
    return e;
}

/* Runs one primitive on this thread's stream with this thread's scratchpad. */
static int run_prim(cpu_backend *cb, prim_entry *e, const void *a, const void *b, void *c,
                    const float *bias) {
    int tid = omp_get_thread_num();
    dnnl_data_type_t dt = e->bf16 ? dnnl_bf16 : dnnl_f32;
    dnnl_memory_desc_t ad, bd, cd, biasd, sd;
    make_desc(&ad, e->M, e->K, e->lda, e->a_trans, dt);
    make_desc(&bd, e->K, e->N, e->ldb, e->b_trans, dt);
    make_desc(&cd, e->M, e->N, e->ldc, 0, dnnl_f32);
    dnnl_memory_t am = NULL, bm = NULL, cm = NULL, biasm = NULL, sm = NULL;
    dnnl_exec_arg_t args[5];
    int nargs = 0, bad = 0;
    bad |= dnnl_memory_create(&am, &ad, cb->engine, (void *)a) != dnnl_success;
    bad |= dnnl_memory_create(&bm, &bd, cb->engine, (void *)b) != dnnl_success;
    bad |= dnnl_memory_create(&cm, &cd, cb->engine, c) != dnnl_success;
    args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SRC, am};
    args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, bm};
    args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_DST, cm};
    if (e->bias) {
        dnnl_dims_t bdims = {1, e->N};
        dnnl_memory_desc_init_by_tag(&biasd, 2, bdims, dnnl_f32, dnnl_ab);
        bad |= dnnl_memory_create(&biasm, &biasd, cb->engine, (void *)bias) != dnnl_success;
        args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, biasm};
    }
    if (e->scratch_bytes) {
        void *p = scratch_get(&cb->pad[tid], e->scratch_bytes);
        dnnl_dims_t sdims = {(dnnl_dim_t)e->scratch_bytes};
        dnnl_memory_desc_init_by_tag(&sd, 1, sdims, dnnl_u8, dnnl_a);
        bad |= !p || dnnl_memory_create(&sm, &sd, cb->engine, p) != dnnl_success;
        args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, sm};
    }
    if (!bad) bad |= dnnl_primitive_execute(e->prim, cb->streams[tid], nargs, args) != dnnl_success;
    if (am) dnnl_memory_destroy(am);
    if (bm) dnnl_memory_destroy(bm);
    if (cm) dnnl_memory_destroy(cm);
    if (biasm) dnnl_memory_destroy(biasm);
    if (sm) dnnl_memory_destroy(sm);
    return bad;
}

/* Column blocks depend on N alone, row blocks on the item size alone: every block of a tile has
 * the same shape whatever the batch, so oneDNN picks the same kernel for it. */
static int64_t col_block(int64_t N) {
    if (N <= 768) return N;
    const int64_t blocks = (N + 511) / 512; /* even blocks of at most 512, multiples of 64 */
    return ((N + blocks - 1) / blocks + 63) / 64 * 64;
}
static int64_t row_block(int64_t rows_per_item) {
    const int64_t chunks = (rows_per_item + MM_ROW_BLOCK - 1) / MM_ROW_BLOCK;
    return (rows_per_item + chunks - 1) / chunks;
}

static int cpu_linear_impl(mm_backend *b, float *y, const float *x, int64_t M,
                           int64_t rows_per_item, const mm_weight *W, mm_activation act) {
    cpu_backend *cb = cpu(b);
    const int64_t K = W->cols, N = W->rows;
    if (rows_per_item <= 0 || M % rows_per_item) {
        mm_backend_seterr(b, "linear: %lld rows are not a whole number of %lld-row items",
                          (long long)M, (long long)rows_per_item);
        return 1;
    }
    const int bf = b->use_bf16 && W->bf16;
    const int64_t rb = row_block(rows_per_item);
    const int64_t chunks = (rows_per_item + rb - 1) / rb;
    const int64_t nb = col_block(N), nblocks = (N + nb - 1) / nb;
    const int64_t mblocks = (M / rows_per_item) * chunks;
    const uint16_t *xb = NULL;
    if (bf) { /* once for all column blocks */
        uint16_t *st = scratch_get(&cb->bstage, (size_t)(M * K) * 2);
        if (!st) {
            mm_backend_seterr(b, "linear: out of memory");
            return 1;
        }
        rows_to_bf16(b->n_threads, st, x, M * K);
        xb = st;
    }
    int failed = 0;
#pragma omp parallel for num_threads(b->n_threads) schedule(dynamic) reduction(| : failed)
    for (int64_t item = 0; item < mblocks * nblocks; item++) {
        omp_set_num_threads(1); /* oneDNN inside: sequential even when this team has 1 thread */
        const int64_t mbi = item / nblocks, it = mbi / chunks, ch = mbi % chunks;
        const int64_t m0 = it * rows_per_item + ch * rb, n0 = (item % nblocks) * nb;
        const int64_t mb = rows_per_item - ch * rb < rb ? rows_per_item - ch * rb : rb;
        const int64_t nn = N - n0 < nb ? N - n0 : nb;
        const void *a = bf ? (const void *)(xb + m0 * K) : (const void *)(x + m0 * K);
        /* a strided destination makes oneDNN leave its AMX kernels for a generic one (2-3x
         * slower, measured): column blocks are computed into a contiguous buffer, then copied */
        const int staged = nn != N;
        float *dst = y + m0 * N + n0;
        if (staged &&
            !(dst = scratch_get(&cb->work[omp_get_thread_num()], (size_t)(mb * nn) * 4))) {
            failed |= 1;
            continue;
        }
        prim_entry *e = get_prim(cb, mb, K, nn, K, 0, K, 1, nn, bf, act, W->bias != NULL);
        if (!e) {
            failed |= 1;
            continue;
        }
        const void *wb = bf ? (const void *)(W->bf16 + n0 * K) : (const void *)(W->f32 + n0 * K);
        failed |= run_prim(cb, e, a, wb, dst, W->bias ? W->bias + n0 : NULL);
        if (staged)
            for (int64_t r = 0; r < mb; r++)
                memcpy(y + (m0 + r) * N + n0, dst + r * nn, (size_t)nn * sizeof(float));
    }
    if (failed && !b->errmsg[0])
        mm_backend_seterr(b, "matrix product %lldx%lldx%lld failed", (long long)M, (long long)K,
                          (long long)N);
    return failed;
}

/* ---- convolution: im2col blocks of output pixels, each a single-threaded product -------- */

static int cpu_conv2d_impl(mm_backend *b, float *y, const float *x, int n, int cin, int h, int w,
                           const mm_weight *W, int k, int stride, const int pad[4]) {
    cpu_backend *cb = cpu(b);
    const int oh = (h + pad[0] + pad[2] - k) / stride + 1;
    const int ow = (w + pad[1] + pad[3] - k) / stride + 1;
    const int64_t P = (int64_t)oh * ow, Kc = (int64_t)cin * k * k, cout = W->rows;
    if (W->cols != Kc) {
        mm_backend_seterr(b, "conv2d: weight has %lld inputs, expected %lld", (long long)W->cols,
                          (long long)Kc);
        return 1;
    }
    const int bf = b->use_bf16 && W->bf16;
    const int direct = (k == 1 && stride == 1 && !pad[0] && !pad[1] && !pad[2] && !pad[3]);
    const int64_t pblocks = (P + MM_ROW_BLOCK - 1) / MM_ROW_BLOCK;
    int failed = 0;
#pragma omp parallel for num_threads(b->n_threads) schedule(dynamic) reduction(| : failed)
    for (int64_t item = 0; item < (int64_t)n * pblocks; item++) {
        omp_set_num_threads(1);
        const int img = (int)(item / pblocks);
        const int64_t p0 = (item % pblocks) * MM_ROW_BLOCK;
        const int64_t pb = P - p0 < MM_ROW_BLOCK ? P - p0 : MM_ROW_BLOCK;
        const float *xi = x + (int64_t)img * cin * h * w;
        /* B operand: columns of the unfolded input, [Kc, pb] */
        const void *bop;
        int64_t ldb;
        if (direct && !bf) {
            bop = xi + p0;
            ldb = P;
        } else {
            size_t esz = bf ? 2 : 4;
            void *col = scratch_get(&cb->a_stage[omp_get_thread_num()], (size_t)(Kc * pb) * esz);
            if (!col) {
                failed |= 1;
                continue;
            }
            for (int64_t r = 0; r < Kc; r++) {
                const int ci = (int)(r / (k * k)), ky = (int)(r / k % k), kx = (int)(r % k);
                for (int64_t q = 0; q < pb; q++) {
                    const int64_t p = p0 + q;
                    const int iy = (int)(p / ow) * stride - pad[0] + ky;
                    const int ix = (int)(p % ow) * stride - pad[1] + kx;
                    float v = (iy >= 0 && iy < h && ix >= 0 && ix < w)
                                  ? xi[((int64_t)ci * h + iy) * w + ix]
                                  : 0.0f;
                    if (bf)
                        ((uint16_t *)col)[r * pb + q] = bf16_bits(v);
                    else
                        ((float *)col)[r * pb + q] = v;
                }
            }
            bop = col;
            ldb = pb;
        }
        float *tmp = scratch_get(&cb->work[omp_get_thread_num()], (size_t)(cout * pb) * 4);
        prim_entry *e = get_prim(cb, cout, Kc, pb, Kc, 0, ldb, 0, pb, bf, MM_ACT_NONE, 0);
        if (!e || !tmp) {
            failed |= 1;
            continue;
        }
        failed |=
            run_prim(cb, e, bf ? (const void *)W->bf16 : (const void *)W->f32, bop, tmp, NULL);
        float *yo = y + (int64_t)img * cout * P + p0; /* contiguous product, strided copy */
        for (int64_t o = 0; o < cout; o++) {
            const float bias = W->bias ? W->bias[o] : 0.0f;
            for (int64_t q = 0; q < pb; q++)
                yo[o * P + q] = tmp[o * pb + q] + bias;
        }
    }
    if (failed && !b->errmsg[0]) mm_backend_seterr(b, "convolution failed");
    return failed;
}

/* Reductions use 16 partial lanes combined in a fixed order: the compiler can vectorise them,
 * and the result is the same whatever vector width the CPU has. */
#define LANES 16

/* exp(scale * (row - max)) of one row of scores, written unnormalised to out (bf16 or fp32):
 * returns the row's sum, by which the attention output row is divided afterwards (cheaper than
 * normalising S x S probabilities). `row` is overwritten. */
__attribute__((target_clones("avx512f", "avx2", "default"))) static float
softmax_row(float *row, int S, float scale, void *out, int bf) {
    float lane[LANES];
    for (int l = 0; l < LANES; l++)
        lane[l] = -INFINITY;
    int j = 0;
    for (; j + LANES <= S; j += LANES)
        for (int l = 0; l < LANES; l++)
            lane[l] = row[j + l] > lane[l] ? row[j + l] : lane[l];
    float mx = -INFINITY;
    for (int l = 0; l < LANES; l++)
        mx = lane[l] > mx ? lane[l] : mx;
    for (; j < S; j++)
        mx = row[j] > mx ? row[j] : mx;
    const float off = mx * scale;
    for (int l = 0; l < LANES; l++)
        lane[l] = 0.0f;
    for (j = 0; j + LANES <= S; j += LANES)
        for (int l = 0; l < LANES; l++) {
            const float e = fast_exp(row[j + l] * scale - off);
            row[j + l] = e;
            lane[l] += e;
        }
    float sum = 0.0f;
    for (; j < S; j++) {
        row[j] = fast_exp(row[j] * scale - off);
        sum += row[j];
    }
    for (int l = 0; l < LANES; l++)
        sum += lane[l];
    if (bf) {
        uint16_t *pr = out;
        for (j = 0; j < S; j++)
            pr[j] = bf16_bits(row[j]);
    } else {
        memcpy(out, row, (size_t)S * sizeof(float));
    }
    return sum;
}

__attribute__((target_clones("avx512f", "avx2", "default"))) static void
convert_span(uint16_t *dst, const float *src, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        dst[i] = bf16_bits(src[i]);
}

/* ---- attention: per (sequence, head), scores and values as single-threaded products ----- */

static int cpu_attention_impl(mm_backend *b, float *out, const float *qkv, int n_seq, int S, int nh,
                              int hd) {
    cpu_backend *cb = cpu(b);
    const int64_t H = (int64_t)nh * hd, ld = 3 * H, blk = (int64_t)S * hd;
    const int bf = b->use_bf16;
    const size_t esz = bf ? 2 : 4;
    /* q, k and v of every head made contiguous ([seq][head][q|k|v][S][hd]): strided operands
     * make oneDNN fall back from its AMX kernels to a generic one (3x slower, measured) */
    char *stage = scratch_get(&cb->bstage, (size_t)n_seq * S * ld * esz);
    if (!stage) {
        mm_backend_seterr(b, "attention: out of memory");
        return 1;
    }
#pragma omp parallel for num_threads(b->n_threads) schedule(static)
    for (int64_t row = 0; row < (int64_t)n_seq * S; row++) {
        const int64_t sq = row / S, t = row % S;
        for (int64_t j = 0; j < 3; j++)
            for (int64_t h = 0; h < nh; h++) {
                const float *src = qkv + row * ld + j * H + h * hd;
                const int64_t dst = (((sq * nh + h) * 3 + j) * S + t) * hd;
                if (bf)
                    convert_span((uint16_t *)stage + dst, src, hd);
                else
                    memcpy((float *)stage + dst, src, (size_t)hd * sizeof(float));
            }
    }
    const float scale = 1.0f / sqrtf((float)hd);
    int failed = 0;
#pragma omp parallel for num_threads(b->n_threads) schedule(dynamic) reduction(| : failed)
    for (int64_t item = 0; item < (int64_t)n_seq * nh; item++) {
        omp_set_num_threads(1);
        const int64_t sq = item / nh, hh = item % nh;
        const char *base = stage + item * 3 * blk * esz;
        const void *q = base, *kk = base + blk * esz, *v = base + 2 * blk * esz;
        const int tid = omp_get_thread_num();
        /* scores (fp32), probabilities (operand type), head output (fp32) */
        float *sc = scratch_get(&cb->work[tid],
                                (size_t)S * S * (4 + esz) + (size_t)blk * 4 + (size_t)S * 4);
        if (!sc) {
            failed |= 1;
            continue;
        }
        void *pm = sc + (int64_t)S * S;
        float *o = (float *)((char *)pm + (size_t)S * S * esz);
        prim_entry *e1 = get_prim(cb, S, hd, S, hd, 0, hd, 1, S, bf, MM_ACT_NONE, 0);
        if (!e1 || run_prim(cb, e1, q, kk, sc, NULL)) {
            failed |= 1;
            continue;
        }
        float *inv = o + blk;
        for (int i = 0; i < S; i++)
            inv[i] = 1.0f / softmax_row(sc + (int64_t)i * S, S, scale,
                                        bf ? (void *)((uint16_t *)pm + (int64_t)i * S)
                                           : (void *)((float *)pm + (int64_t)i * S),
                                        bf);
        prim_entry *e2 = get_prim(cb, S, S, hd, S, 0, hd, 0, hd, bf, MM_ACT_NONE, 0);
        if (!e2 || run_prim(cb, e2, pm, v, o, NULL)) {
            failed |= 1;
            continue;
        }
        for (int t = 0; t < S; t++) {
            float *dst = out + (sq * S + t) * H + hh * hd;
            const float *src = o + (int64_t)t * hd;
            for (int d = 0; d < hd; d++)
                dst[d] = src[d] * inv[t];
        }
    }
    if (failed && !b->errmsg[0]) mm_backend_seterr(b, "attention failed");
    return failed;
}

/* ---- normalisation and element-wise --------------------------------------------------------- */

/* Mean and 1/std of a row, two passes over lanes (see LANES). */
__attribute__((target_clones("avx512f", "avx2", "default"))) static void
row_stats(const float *x, int H, float eps, float *mean, float *rstd) {
    float lane[LANES] = {0};
    int i = 0;
    for (; i + LANES <= H; i += LANES)
        for (int l = 0; l < LANES; l++)
            lane[l] += x[i + l];
    double s = 0.0;
    for (; i < H; i++)
        s += x[i];
    for (int l = 0; l < LANES; l++)
        s += lane[l];
    const float m = (float)(s / H);
    for (int l = 0; l < LANES; l++)
        lane[l] = 0.0f;
    for (i = 0; i + LANES <= H; i += LANES)
        for (int l = 0; l < LANES; l++)
            lane[l] += (x[i + l] - m) * (x[i + l] - m);
    double ss = 0.0;
    for (; i < H; i++)
        ss += (double)(x[i] - m) * (x[i] - m);
    for (int l = 0; l < LANES; l++)
        ss += lane[l];
    *mean = m;
    *rstd = (float)(1.0 / sqrt(ss / H + eps));
}

static int cpu_layernorm_modulate_impl(mm_backend *b, float *y, const float *x, int64_t rows, int H,
                                       float eps, mm_modulation shift, mm_modulation scale) {
#pragma omp parallel for num_threads(b->n_threads) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        float mean, rstd;
        const float *xr = x + r * H;
        row_stats(xr, H, eps, &mean, &rstd);
        const float *sh = shift.table + (r / shift.rows_per_group) * shift.stride;
        const float *sc = scale.table + (r / scale.rows_per_group) * scale.stride;
        float *yr = y + r * H;
        for (int i = 0; i < H; i++)
            yr[i] = (xr[i] - mean) * rstd * (1.0f + sc[i]) + sh[i];
    }
    return 0;
}

static int cpu_layernorm_affine_impl(mm_backend *b, float *y, const float *x, int64_t rows, int H,
                                     float eps, const float *w, const float *bias) {
#pragma omp parallel for num_threads(b->n_threads) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        float mean, rstd;
        const float *xr = x + r * H;
        row_stats(xr, H, eps, &mean, &rstd);
        float *yr = y + r * H;
        for (int i = 0; i < H; i++)
            yr[i] = (xr[i] - mean) * rstd * w[i] + bias[i];
    }
    return 0;
}

static int cpu_gated_add_impl(mm_backend *b, float *x, const float *y, int64_t rows, int H,
                              mm_modulation gate) {
#pragma omp parallel for num_threads(b->n_threads) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *g = gate.table + (r / gate.rows_per_group) * gate.stride;
        for (int i = 0; i < H; i++)
            x[r * H + i] += g[i] * y[r * H + i];
    }
    return 0;
}

static int cpu_group_norm_impl(mm_backend *b, float *y, const float *x, int n, int c, int64_t hw,
                               int groups, float eps, const float *gamma, const float *beta,
                               int silu) {
    const int cpg = c / groups;
#pragma omp parallel for num_threads(b->n_threads) schedule(static)
    for (int64_t item = 0; item < (int64_t)n * groups; item++) {
        const int64_t img = item / groups, g = item % groups;
        const float *xs = x + (img * c + g * cpg) * hw;
        const int64_t cnt = (int64_t)cpg * hw;
        double s = 0.0, ss = 0.0;
        for (int64_t i = 0; i < cnt; i++)
            s += xs[i];
        const double m = s / (double)cnt;
        for (int64_t i = 0; i < cnt; i++)
            ss += (xs[i] - m) * (xs[i] - m);
        const float mean = (float)m, rstd = (float)(1.0 / sqrt(ss / (double)cnt + eps));
        for (int ch = 0; ch < cpg; ch++) {
            const int cc = (int)g * cpg + ch;
            const float *xc = xs + (int64_t)ch * hw;
            float *yc = y + (img * c + cc) * hw;
            for (int64_t i = 0; i < hw; i++) {
                float v = (xc[i] - mean) * rstd * gamma[cc] + beta[cc];
                yc[i] = silu ? v / (1.0f + expf(-v)) : v;
            }
        }
    }
    return 0;
}

static int cpu_silu_impl(mm_backend *b, float *y, const float *x, size_t n) {
#pragma omp parallel for num_threads(b->n_threads) schedule(static)
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] / (1.0f + expf(-x[i]));
    return 0;
}

static int cpu_axpby_impl(mm_backend *b, float *y, float a, const float *x, float c, size_t n) {
#pragma omp parallel for num_threads(b->n_threads) schedule(static)
    for (size_t i = 0; i < n; i++)
        y[i] = a * x[i] + c * y[i];
    return 0;
}

static int cpu_affine(mm_backend *b, float *y, const float *x, float a, float c, size_t n) {
#pragma omp parallel for num_threads(b->n_threads) schedule(static)
    for (size_t i = 0; i < n; i++)
        y[i] = a * x[i] + c;
    return 0;
}

static int cpu_add_grouped(mm_backend *b, float *x, int64_t rows, int H, mm_modulation v) {
#pragma omp parallel for num_threads(b->n_threads) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *vr = v.table + (r / v.rows_per_group) * v.stride;
        for (int i = 0; i < H; i++)
            x[r * H + i] += vr[i];
    }
    return 0;
}

static const float *cpu_resident(mm_backend *b, const float *host, size_t n) {
    (void)b;
    (void)n;
    return host;
}

static int cpu_add_rows(mm_backend *b, float *x, const float *v, int64_t rows, int64_t period,
                        int H) {
#pragma omp parallel for num_threads(b->n_threads) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *vr = v + (r % period) * H;
        for (int i = 0; i < H; i++)
            x[r * H + i] += vr[i];
    }
    return 0;
}

static int cpu_upsample2x(mm_backend *b, float *y, const float *x, int n, int c, int h, int w) {
#pragma omp parallel for num_threads(b->n_threads) schedule(static)
    for (int64_t plane = 0; plane < (int64_t)n * c; plane++) {
        const float *xp = x + plane * h * w;
        float *yp = y + plane * 4 * h * w;
        for (int i = 0; i < 2 * h; i++)
            for (int j = 0; j < 2 * w; j++)
                yp[(int64_t)i * 2 * w + j] = xp[(i / 2) * w + j / 2];
    }
    return 0;
}

static int cpu_transpose(mm_backend *b, float *y, const float *x, int n, int64_t rows,
                         int64_t cols) {
#pragma omp parallel for num_threads(b->n_threads) schedule(static)
    for (int64_t item = 0; item < (int64_t)n * rows; item++) {
        const int64_t m = item / rows, r = item % rows;
        for (int64_t c = 0; c < cols; c++)
            y[m * rows * cols + c * rows + r] = x[m * rows * cols + r * cols + c];
    }
    return 0;
}

static int cpu_patchify_impl(mm_backend *b, float *y, const float *x, int n, int C, int L, int p) {
    const int T = L / p;
    const int64_t D = (int64_t)C * p * p;
#pragma omp parallel for num_threads(b->n_threads) schedule(static)
    for (int64_t tok = 0; tok < (int64_t)n * T * T; tok++) {
        const int64_t img = tok / (T * T), tr = tok % (T * T) / T, tc = tok % T;
        float *yt = y + tok * D;
        for (int c = 0; c < C; c++)
            for (int i = 0; i < p; i++)
                for (int j = 0; j < p; j++)
                    yt[(c * p + i) * p + j] = x[((img * C + c) * L + tr * p + i) * L + tc * p + j];
    }
    return 0;
}

static int cpu_unpatchify_impl(mm_backend *b, float *y, const float *x, int n, int C, int L,
                               int p) {
    const int T = L / p;
    const int64_t D = (int64_t)C * p * p;
#pragma omp parallel for num_threads(b->n_threads) schedule(static)
    for (int64_t tok = 0; tok < (int64_t)n * T * T; tok++) {
        const int64_t img = tok / (T * T), tr = tok % (T * T) / T, tc = tok % T;
        const float *xt = x + tok * D;
        for (int i = 0; i < p; i++)
            for (int j = 0; j < p; j++)
                for (int c = 0; c < C; c++)
                    y[((img * C + c) * L + tr * p + i) * L + tc * p + j] = xt[(i * p + j) * C + c];
    }
    return 0;
}

static int cpu_noise(mm_backend *b, float *y, uint64_t seed, uint64_t tile_id, int purpose,
                     int modality, int step, size_t n) {
    (void)b;
    mm_noise_fill(seed, tile_id, purpose, modality, step, y, n);
    return 0;
}

static int cpu_channels_adapt(mm_backend *b, float *y, const float *x, int n, int cin, int cout,
                              int64_t hw) {
    if (!(cin == cout || cin == 1 || cout == 1)) {
        mm_backend_seterr(b, "cannot adapt %d channels to %d", cin, cout);
        return 1;
    }
#pragma omp parallel for num_threads(b->n_threads) schedule(static)
    for (int64_t img = 0; img < n; img++) {
        const float *xi = x + img * cin * hw;
        float *yi = y + img * cout * hw;
        if (cin == cout)
            memcpy(yi, xi, (size_t)(cin * hw) * sizeof(float));
        else if (cin == 1)
            for (int c = 0; c < cout; c++)
                memcpy(yi + c * hw, xi, (size_t)hw * sizeof(float));
        else
            for (int64_t i = 0; i < hw; i++) {
                float s = 0.0f;
                for (int c = 0; c < cin; c++)
                    s += xi[c * hw + i];
                yi[i] = s / (float)cin;
            }
    }
    return 0;
}

/* ---- memory ----------------------------------------------------------------------------- */

static float *cpu_alloc(mm_backend *b, size_t n) {
    float *p = aligned_alloc(64, ((n ? n : 1) * sizeof(float) + 63) & ~(size_t)63);
    if (!p)
        mm_backend_seterr(b, "out of memory allocating %zu floats", n);
    else
        b->n_allocs++;
    return p;
}

/* Host memory: what the kernel reports as available (MemAvailable), else free pages. */
static int cpu_mem_info(mm_backend *b, size_t *free_bytes, size_t *total_bytes) {
    const long page = sysconf(_SC_PAGESIZE), total = sysconf(_SC_PHYS_PAGES);
    long avail = sysconf(_SC_AVPHYS_PAGES);
    FILE *f = fopen("/proc/meminfo", "r");
    if (f) {
        char line[256];
        unsigned long long kb;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
                avail = (long)(kb * 1024ull / (unsigned long long)page);
                break;
            }
        fclose(f);
    }
    if (page <= 0 || total <= 0 || avail < 0) {
        mm_backend_seterr(b, "cannot read the amount of free memory");
        return 1;
    }
    *free_bytes = (size_t)avail * (size_t)page;
    *total_bytes = (size_t)total * (size_t)page;
    return 0;
}

/* ---- mosaic (backend.h: the expression order is part of the contract) ---------------------- */

static int cpu_mosaic_accumulate(mm_backend *b, float *acc, float *wsum, int C, int width,
                                 int height, const float *tiles, int n, int S, const int *x0,
                                 const int *y0, const float *wrow, const float *wcol) {
    (void)b;
    const size_t plane = (size_t)S * S, strip = (size_t)width * height;
    for (int t = 0; t < n; t++) { /* tiles in order: overlapping tiles add in that order */
        const int pa = x0[t] < 0 ? -x0[t] : 0, pb = width - x0[t] < S ? width - x0[t] : S;
        const int ra = y0[t] < 0 ? -y0[t] : 0, rb = height - y0[t] < S ? height - y0[t] : S;
        for (int py = ra; py < rb; py++) {
            const size_t row = (size_t)(y0[t] + py) * width + x0[t];
            const float wy = wrow[py];
            for (int px = pa; px < pb; px++) {
                const float w = wy * wcol[px];
                wsum[row + px] += w;
            }
            for (int c = 0; c < C; c++) {
                const float *v = tiles + ((size_t)t * C + c) * plane + (size_t)py * S;
                float *a = acc + (size_t)c * strip + row;
                for (int px = pa; px < pb; px++) {
                    const float w = wy * wcol[px];
                    const float wv = w * v[px];
                    a[px] += wv;
                }
            }
        }
    }
    return 0;
}

static int cpu_mosaic_normalise(mm_backend *b, float *out, const float *acc, const float *wsum,
                                int C, int64_t npix, float empty) {
    (void)b;
    for (int c = 0; c < C; c++)
        for (int64_t k = 0; k < npix; k++)
            out[c * npix + k] = wsum[k] > 0.0f ? acc[c * npix + k] / wsum[k] : empty;
    return 0;
}
static void cpu_free(mm_backend *b, float *p) {
    (void)b;
    free(p);
}
static int cpu_copy_impl(mm_backend *b, float *dst, const float *src, size_t n) {
    (void)b;
    if (n) memmove(dst, src, n * sizeof(float));
    return 0;
}

static int cpu_linear(mm_backend *b, float *y, const float *x, int64_t M, int64_t rows_per_item,
                      const mm_weight *W, mm_activation act) {
    PROF_BEGIN(b);
    int rc = cpu_linear_impl(b, y, x, M, rows_per_item, W, act);
    PROF_END(b, P_LINEAR, (double)2 * M * W->rows * W->cols);
    return rc;
}

static int cpu_conv2d(mm_backend *b, float *y, const float *x, int n, int cin, int h, int w,
                      const mm_weight *W, int k, int stride, const int pad[4]) {
    PROF_BEGIN(b);
    int rc = cpu_conv2d_impl(b, y, x, n, cin, h, w, W, k, stride, pad);
    PROF_END(b, P_CONV, 0);
    return rc;
}

static int cpu_attention(mm_backend *b, float *out, const float *qkv, int n_seq, int S, int nh,
                         int hd) {
    PROF_BEGIN(b);
    int rc = cpu_attention_impl(b, out, qkv, n_seq, S, nh, hd);
    PROF_END(b, P_ATTN, (double)4 * n_seq * S * S * nh * hd);
    return rc;
}

static int cpu_layernorm_modulate(mm_backend *b, float *y, const float *x, int64_t rows, int H,
                                  float eps, mm_modulation shift, mm_modulation scale) {
    PROF_BEGIN(b);
    int rc = cpu_layernorm_modulate_impl(b, y, x, rows, H, eps, shift, scale);
    PROF_END(b, P_NORM, 0);
    return rc;
}

static int cpu_layernorm_affine(mm_backend *b, float *y, const float *x, int64_t rows, int H,
                                float eps, const float *w, const float *bias) {
    PROF_BEGIN(b);
    int rc = cpu_layernorm_affine_impl(b, y, x, rows, H, eps, w, bias);
    PROF_END(b, P_NORM, 0);
    return rc;
}

static int cpu_group_norm(mm_backend *b, float *y, const float *x, int n, int c, int64_t hw,
                          int groups, float eps, const float *gamma, const float *beta, int silu) {
    PROF_BEGIN(b);
    int rc = cpu_group_norm_impl(b, y, x, n, c, hw, groups, eps, gamma, beta, silu);
    PROF_END(b, P_NORM, 0);
    return rc;
}

static int cpu_gated_add(mm_backend *b, float *x, const float *y, int64_t rows, int H,
                         mm_modulation gate) {
    PROF_BEGIN(b);
    int rc = cpu_gated_add_impl(b, x, y, rows, H, gate);
    PROF_END(b, P_ELTWISE, 0);
    return rc;
}

static int cpu_silu(mm_backend *b, float *y, const float *x, size_t n) {
    PROF_BEGIN(b);
    int rc = cpu_silu_impl(b, y, x, n);
    PROF_END(b, P_ELTWISE, 0);
    return rc;
}

static int cpu_axpby(mm_backend *b, float *y, float a, const float *x, float c, size_t n) {
    PROF_BEGIN(b);
    int rc = cpu_axpby_impl(b, y, a, x, c, n);
    PROF_END(b, P_ELTWISE, 0);
    return rc;
}

static int cpu_patchify(mm_backend *b, float *y, const float *x, int n, int C, int L, int p) {
    PROF_BEGIN(b);
    int rc = cpu_patchify_impl(b, y, x, n, C, L, p);
    PROF_END(b, P_LAYOUT, 0);
    return rc;
}

static int cpu_unpatchify(mm_backend *b, float *y, const float *x, int n, int C, int L, int p) {
    PROF_BEGIN(b);
    int rc = cpu_unpatchify_impl(b, y, x, n, C, L, p);
    PROF_END(b, P_LAYOUT, 0);
    return rc;
}

static int cpu_copy(mm_backend *b, float *dst, const float *src, size_t n) {
    PROF_BEGIN(b);
    int rc = cpu_copy_impl(b, dst, src, n);
    PROF_END(b, P_LAYOUT, 0);
    return rc;
}

static void cpu_destroy(mm_backend *b) {
    if (!b) return;
    cpu_backend *cb = cpu(b);
    if (cb->profile) {
        double total = 0;
        for (int k = 0; k < P_COUNT; k++)
            total += cb->prof_s[k];
        fprintf(stderr, "libmm profile (cpu backend, %d threads, %s):\n", b->n_threads,
                b->use_bf16 ? "bf16" : "fp32");
        for (int k = 0; k < P_COUNT; k++) {
            fprintf(stderr, "  %-28s %9.3f s  %5.1f%%", prof_names[k], cb->prof_s[k],
                    total > 0 ? 100 * cb->prof_s[k] / total : 0);
            if (cb->prof_flop[k] > 0 && cb->prof_s[k] > 0)
                fprintf(stderr, "  %7.1f GFLOP/s", cb->prof_flop[k] / cb->prof_s[k] / 1e9);
            fputc('\n', stderr);
        }
    }
    for (int i = 0; i < cb->n_prims; i++)
        dnnl_primitive_destroy(cb->prims[i].prim);
    for (int i = 0; i < MM_MAX_THREADS; i++) {
        if (cb->streams[i]) dnnl_stream_destroy(cb->streams[i]);
        free(cb->a_stage[i].buf);
        free(cb->work[i].buf);
        free(cb->pad[i].buf);
    }
    free(cb->bstage.buf);
    if (cb->engine) dnnl_engine_destroy(cb->engine);
    omp_destroy_lock(&cb->prim_lock);
    free(cb);
}

static const mm_backend_ops cpu_ops = {
    .name = "cpu",
    .host_memory = 1,
    .destroy = cpu_destroy,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_copy,
    .download = cpu_copy,
    .copy = cpu_copy,
    .linear = cpu_linear,
    .conv2d = cpu_conv2d,
    .attention = cpu_attention,
    .layernorm_modulate = cpu_layernorm_modulate,
    .layernorm_affine = cpu_layernorm_affine,
    .gated_add = cpu_gated_add,
    .group_norm = cpu_group_norm,
    .silu = cpu_silu,
    .axpby = cpu_axpby,
    .affine = cpu_affine,
    .add_grouped = cpu_add_grouped,
    .resident = cpu_resident,
    .add_rows = cpu_add_rows,
    .upsample2x = cpu_upsample2x,
    .transpose = cpu_transpose,
    .patchify = cpu_patchify,
    .unpatchify = cpu_unpatchify,
    .noise = cpu_noise,
    .channels_adapt = cpu_channels_adapt,
    .mosaic_accumulate = cpu_mosaic_accumulate,
    .mosaic_normalise = cpu_mosaic_normalise,
    .mem_info = cpu_mem_info,
};

/* bf16 products need AVX512-BF16 or AMX to be worth it; elsewhere oneDNN would emulate them. */
static int cpu_has_bf16(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") || __builtin_cpu_supports("amx-bf16");
#else
    return 0;
#endif
}

mm_backend *mm_backend_cpu_create(int n_threads, int want_bf16, char *err, size_t errlen) {
    cpu_backend *cb = calloc(1, sizeof *cb);
    if (!cb) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    omp_init_lock(&cb->prim_lock);
    cb->base.ops = &cpu_ops;
    int maxt = omp_get_num_procs();
    if (n_threads <= 0) n_threads = maxt;
    if (n_threads > MM_MAX_THREADS) n_threads = MM_MAX_THREADS;
    cb->base.n_threads = n_threads;
    cb->base.use_bf16 = want_bf16 && cpu_has_bf16();
    const char *prof = getenv("MM_PROFILE");
    cb->profile = prof && *prof && strcmp(prof, "0") != 0;
    if (dnnl_engine_create(&cb->engine, dnnl_cpu, 0) != dnnl_success) {
        snprintf(err, errlen, "oneDNN: cannot create the CPU engine");
        cpu_destroy(&cb->base);
        return NULL;
    }
    for (int i = 0; i < n_threads; i++) {
        if (dnnl_stream_create(&cb->streams[i], cb->engine, dnnl_stream_default_flags) !=
            dnnl_success) {
            snprintf(err, errlen, "oneDNN: cannot create a stream");
            cpu_destroy(&cb->base);
            return NULL;
        }
    }
    return &cb->base;
}
