/*
 * The CUDA backend (docs/cuda.md): the host side of every operation of backend.h. Matrix
 * products through cuBLASLt, convolutions through cuDNN (or im2col + cuBLASLt), the generic
 * attention path through cuBLAS, everything else as kernels (kernels.cu, attention.cu).
 *
 * All work of a backend instance runs in order on one stream. upload() and download() return
 * when the copy is complete (so host buffers may be reused or read at once); every other
 * operation only enqueues. Errors of asynchronous work surface at the next synchronising call
 * (download, alloc) as that call's error.
 *
 * Determinism contract (backend.h). Element-wise kernels, norms and attention compute each
 * output from its own row, group or sequence only. Matrix products run as one strided-batched
 * cuBLASLt product over the items (batch stride rows_per_item), with an algorithm chosen once
 * from the heuristic for ONE item (batch count 1) and reused for any number of items; split-K
 * and stream-K algorithms, whose partition of the work depends on the whole problem, are
 * excluded (no reduction scheme, no workspace). Convolutions run image by image with an
 * algorithm chosen for one image. So a tile's bits do not depend on what it is batched with.
 */
#include "backend.h"

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#ifdef MM_HAVE_CUDNN
#include <cudnn.h>
#endif
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mm_kernels.h"

/* ---- small containers ----------------------------------------------------------------------- */

/* Host pointer -> device copy (resident arrays, weights). Open addressing, grows at half load. */
typedef struct {
    const void *key;
    int tag;     /* what the copy is: T_RESIDENT, T_W_F32, T_W_BF16 */
    size_t n;    /* elements uploaded */
    void *dev;   /* data */
    float *bias; /* weights: bias (NULL when none) */
} map_entry;

enum { T_RESIDENT = 1, T_W_F32 = 2, T_W_BF16 = 3 };

typedef struct {
    map_entry *e;
    size_t cap, used;
} ptr_map;

typedef struct {
    void *p;
    size_t cap;  /* bytes */
    size_t need; /* the most asked for since scratch_plan(b, 1), rounded up to 256 bytes */
    int own;     /* p is our cudaMalloc (else a slice of the context's arena) */
} dbuf;

/* A cuBLASLt product D[m, n] (column-major) = op(A) op(B), optionally + bias[m], batched. */
typedef struct {
    int64_t m, n, k, lda, ldb, ldd, batch, sa, sb, sd;
    int transa, transb, bf16, tf32, bias;
    int align_a, align_b, align_d;
} lt_key;

typedef struct {
    lt_key key;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t a, b, d;    /* with the batch */
    cublasLtMatrixLayout_t a1, b1, d1; /* one item */
    cublasLtMatmulAlgo_t algo;
    int per_item; /* the algorithm does not take the batched layout: one call per item */
} lt_plan;

#ifdef MM_HAVE_CUDNN
typedef struct {
    int cin, h, w, cout, k, stride, ph, pw, strict;
    int usable, oh, ow;
    cudnnTensorDescriptor_t xd, yd;
    cudnnFilterDescriptor_t fd;
    cudnnConvolutionDescriptor_t cd;
    cudnnConvolutionFwdAlgo_t algo;
    size_t ws;
} conv_plan;
#endif

enum { P_LINEAR, P_CONV, P_ATTN, P_NORM, P_ELTWISE, P_LAYOUT, P_COUNT };
static const char *const prof_names[P_COUNT] = {
    "matrix products (linear)", "convolutions", "attention",
    "layer/group norms",        "element-wise", "layout (patchify, copies)"};

typedef struct {
    mm_backend base;
    int device;
    int tf32;        /* MM_CUDA_TF32=1: fp32 products on TF32 tensor cores */
    int conv_im2col; /* MM_CUDA_CONV=im2col, or no cuDNN */
    int profile;     /* MM_PROFILE=1: per-op-kind time (synchronises around every op) */
    int multi;       /* more than one device: every entry point makes ours current */
    double prof_s[P_COUNT];
    double prof_flop[P_COUNT];
    cudaStream_t stream;
    cublasLtHandle_t lt;
    cublasHandle_t blas;
#ifdef MM_HAVE_CUDNN
    cudnnHandle_t dnn;
    conv_plan *convs;
    int n_convs, cap_convs;
#endif
    pthread_mutex_t lock; /* the caches below */
    ptr_map map;
    lt_plan *plans;
    int n_plans, cap_plans;
    dbuf stage;  /* bf16 copy of a product's activations */
    dbuf pad;    /* explicitly padded convolution input */
    dbuf convws; /* cuDNN workspace */
    dbuf col;    /* im2col block */
    dbuf scores; /* generic attention: scores of one sequence */
} cuda_backend;

static inline cuda_backend *cu(mm_backend *b) {
    return (cuda_backend *)b;
}

/* With several devices, the calling thread's current device may be another one (a context
 * used from a thread other than the one that created it): make ours current. */
static inline void enter(mm_backend *b) {
    if (cu(b)->multi) cudaSetDevice(cu(b)->device);
}

static void cu_seterr(mm_backend *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void cu_seterr(mm_backend *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->errmsg, sizeof b->errmsg, fmt, ap);
    va_end(ap);
}

/* 0 on success; otherwise sets the message and returns 1. */
static int ck(mm_backend *b, cudaError_t e, const char *what) {
    if (e == cudaSuccess) return 0;
    cu_seterr(b, "%s: CUDA error %s: %s", what, cudaGetErrorName(e), cudaGetErrorString(e));
    return 1;
}

static int ck_lt(mm_backend *b, cublasStatus_t s, const char *what) {
    if (s == CUBLAS_STATUS_SUCCESS) return 0;
    cu_seterr(b, "%s: cuBLAS status %d (%s)", what, (int)s, cublasGetStatusString(s));
    return 1;
}

#ifdef MM_HAVE_CUDNN
static int ck_dnn(mm_backend *b, cudnnStatus_t s, const char *what) {
    if (s == CUDNN_STATUS_SUCCESS) return 0;
    cu_seterr(b, "%s: cuDNN status %d (%s)", what, (int)s, cudnnGetErrorString(s));
    return 1;
}
#endif

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

#define PROF_BEGIN(b)                                                                              \
    double prof_t0 = 0.0;                                                                          \
    enter(b);                                                                                      \
    if (cu(b)->profile) {                                                                          \
        cudaStreamSynchronize(cu(b)->stream);                                                      \
        prof_t0 = now_s();                                                                         \
    }
#define PROF_END(b, kind, flop)                                                                    \
    do {                                                                                           \
        if (cu(b)->profile && !(b)->dry) { /* a sizing pass computes nothing */                    \
            cudaStreamSynchronize(cu(b)->stream);                                                  \
            cu(b)->prof_s[kind] += now_s() - prof_t0;                                              \
            cu(b)->prof_flop[kind] += (flop);                                                      \
        }                                                                                          \
    } while (0)

/* Device allocation with a message that says how much memory there is. */
static void *dev_alloc(mm_backend *b, size_t bytes) {
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 4);
    if (e == cudaSuccess) b->n_allocs++;
    if (e != cudaSuccess) {
        cudaGetLastError(); /* not sticky: clear it */
        size_t fr = 0, tot = 0;
        cudaMemGetInfo(&fr, &tot);
        cu_seterr(b,
                  "CUDA out of memory: cannot allocate %zu MB (%zu MB free of %zu MB on the "
                  "device; a smaller batch needs less): %s",
                  bytes >> 20, fr >> 20, tot >> 20, cudaGetErrorString(e));
        return NULL;
    }
    return p;
}

/* Stands for a scratch buffer during a sizing pass (b->dry): 256-byte aligned like the real
 * ones (product plans are keyed by operand alignment), never dereferenced. */
#define DRY_SCRATCH ((void *)(uintptr_t)((uintptr_t)1 << 41))

/* Grow-only scratch: reallocated only when a larger size is asked for (warm-up), or carved
 * from the context's arena (scratch_adopt) with the size a sizing pass measured. */
static void *scratch(mm_backend *b, dbuf *s, size_t bytes) {
    const size_t need = (bytes + 255) & ~(size_t)255;
    if (need > s->need) s->need = need;
    if (bytes <= s->cap && s->p) return s->p;
    if (b->dry) return DRY_SCRATCH;
    if (s->p && s->own) cudaFree(s->p); /* synchronises: earlier work using it has finished */
    if (s->p && !s->own) cudaStreamSynchronize(cu(b)->stream); /* the arena slice stays */
    s->p = NULL;
    s->cap = 0;
    /* 1/8 headroom so that slowly growing requests do not reallocate every time */
    const size_t want = bytes + bytes / 8;
    s->p = dev_alloc(b, want);
    if (s->p) s->cap = want, s->own = 1;
    return s->p;
}

/* ---- host pointer -> device copy map ------------------------------------------------------- */

static size_t map_slot(const ptr_map *m, const void *key, int tag) {
    uint64_t h =
        (uint64_t)(uintptr_t)key * 0x9E3779B97F4A7C15ull ^ (uint64_t)tag * 0xBF58476D1CE4E5B9ull;
    return (size_t)(h >> 17) & (m->cap - 1);
}

static map_entry *map_find(ptr_map *m, const void *key, int tag) {
    if (!m->cap) return NULL;
    for (size_t i = map_slot(m, key, tag);; i = (i + 1) & (m->cap - 1)) {
        map_entry *e = &m->e[i];
        if (!e->key) return NULL;
        if (e->key == key && e->tag == tag) return e;
    }
}

/* Returns the (new or existing) entry for key; NULL when out of host memory. */
static map_entry *map_put(ptr_map *m, const void *key, int tag) {
    if ((m->used + 1) * 2 > m->cap) {
        const size_t nc = m->cap ? m->cap * 2 : 256;
        map_entry *ne = calloc(nc, sizeof *ne);
        if (!ne) return NULL;
        ptr_map nm = {ne, nc, 0};
        for (size_t i = 0; i < m->cap; i++)
            if (m->e[i].key) {
                size_t j = map_slot(&nm, m->e[i].key, m->e[i].tag);
                while (nm.e[j].key)
                    j = (j + 1) & (nc - 1);
                nm.e[j] = m->e[i];
                nm.used++;
            }
        free(m->e);
        *m = nm;
    }
    size_t i = map_slot(m, key, tag);
    while (m->e[i].key && !(m->e[i].key == key && m->e[i].tag == tag))
        i = (i + 1) & (m->cap - 1);
    if (!m->e[i].key) {
        m->e[i] = (map_entry){key, tag, 0, NULL, NULL};
        m->used++;
    }
    return &m->e[i];
}

static int upload_sync(cuda_backend *cb, void *dst, const void *src, size_t bytes,
                       const char *what) {
    if (!bytes) return 0;
    if (ck(&cb->base, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, cb->stream), what))
        return 1;
    return ck(&cb->base, cudaStreamSynchronize(cb->stream), what);
}

static const float *cu_resident(mm_backend *b, const float *host, size_t n) {
    cuda_backend *cb = cu(b);
    if (!host) {
        cu_seterr(b, "resident: NULL host array");
        return NULL;
    }
    enter(b);
    pthread_mutex_lock(&cb->lock);
    map_entry *e = map_find(&cb->map, host, T_RESIDENT);
    if (e && e->n >= n) {
        const float *d = e->dev;
        pthread_mutex_unlock(&cb->lock);
        return d;
    }
    float *d = dev_alloc(b, n * sizeof(float));
    if (d && upload_sync(cb, d, host, n * sizeof(float), "resident upload")) {
        cudaFree(d);
        d = NULL;
    }
    if (d) {
        if (!(e = map_put(&cb->map, host, T_RESIDENT))) {
            cudaFree(d);
            d = NULL;
            cu_seterr(b, "resident: out of host memory");
        } else {
            if (e->dev) cudaFree(e->dev); /* a longer view of the same array replaces it */
            e->dev = d;
            e->n = n;
        }
    }
    pthread_mutex_unlock(&cb->lock);
    return d;
}

/* The device copy of a weight (bf16 or fp32 values, fp32 bias), uploaded on first use. */
static map_entry *weight_get(cuda_backend *cb, const mm_weight *W, int bf16) {
    mm_backend *b = &cb->base;
    const void *key = W->f32 ? (const void *)W->f32 : (const void *)W->bf16;
    const int tag = bf16 ? T_W_BF16 : T_W_F32;
    if (!key || (bf16 && !W->bf16) || (!bf16 && !W->f32)) {
        cu_seterr(b, "weight %lldx%lld has no %s values", (long long)W->rows, (long long)W->cols,
                  bf16 ? "bf16" : "fp32");
        return NULL;
    }
    pthread_mutex_lock(&cb->lock);
    const size_t n = (size_t)(W->rows * W->cols), esz = bf16 ? 2 : 4;
    map_entry *e = map_find(&cb->map, key, tag);
    if (e) {
        pthread_mutex_unlock(&cb->lock);
        if (e->n != n || !e->bias != !W->bias) { /* two weights on one array: a caller bug */
            cu_seterr(b,
                      "weight %lldx%lld: another weight with the same values array was "
                      "uploaded with another shape or bias",
                      (long long)W->rows, (long long)W->cols);
            return NULL;
        }
        return e;
    }
    void *d = dev_alloc(b, n * esz);
    float *bias = NULL;
    int bad = !d;
    if (!bad)
        bad = upload_sync(cb, d, bf16 ? (const void *)W->bf16 : (const void *)W->f32, n * esz,
                          "weight upload");
    if (!bad && W->bias) {
        bias = dev_alloc(b, (size_t)W->rows * sizeof(float));
        bad =
            !bias || upload_sync(cb, bias, W->bias, (size_t)W->rows * sizeof(float), "bias upload");
    }
    if (!bad && !(e = map_put(&cb->map, key, tag))) {
        cu_seterr(b, "weights: out of host memory");
        bad = 1;
    }
    if (bad) {
        if (d) cudaFree(d);
        if (bias) cudaFree(bias);
        pthread_mutex_unlock(&cb->lock);
        return NULL;
    }
    e->dev = d;
    e->bias = bias;
    e->n = n;
    pthread_mutex_unlock(&cb->lock);
    return e;
}

/* ---- cuBLASLt products --------------------------------------------------------------------- */

/* Alignment (bytes, at most 16) that a pointer and its batch stride keep. */
static int align_of(const void *p, int64_t stride_bytes) {
    const uintptr_t v = (uintptr_t)p | (uintptr_t)stride_bytes;
    int a = 16;
    while (a > 1 && (v & (uintptr_t)(a - 1)))
        a >>= 1;
    return a;
}

static void plan_destroy(lt_plan *p) {
    if (p->desc) cublasLtMatmulDescDestroy(p->desc);
    cublasLtMatrixLayout_t *ls[6] = {&p->a, &p->b, &p->d, &p->a1, &p->b1, &p->d1};
    for (int i = 0; i < 6; i++)
        if (*ls[i]) cublasLtMatrixLayoutDestroy(*ls[i]);
}

static cublasStatus_t make_layout(cublasLtMatrixLayout_t *l, cudaDataType_t t, int64_t rows,
                                  int64_t cols, int64_t ld, int64_t batch, int64_t stride) {
    cublasStatus_t s = cublasLtMatrixLayoutCreate(l, t, (uint64_t)rows, (uint64_t)cols, ld);
    if (s != CUBLAS_STATUS_SUCCESS || batch == 1) return s;
    const int32_t bc = (int32_t)batch;
    s = cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &bc, sizeof bc);
    if (s == CUBLAS_STATUS_SUCCESS)
        s = cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                             &stride, sizeof stride);
    return s;
}

/* The best algorithm for one item of the plan's product (batch-1 layouts), with no workspace;
 * no_reduction: only algorithms without a split-K reduction. */
static cublasStatus_t heuristic(cuda_backend *cb, lt_plan *p, const lt_key *key, int no_reduction,
                                cublasLtMatmulHeuristicResult_t *res, int *found) {
    cublasLtMatmulPreference_t pref = NULL;
    cublasStatus_t s = cublasLtMatmulPreferenceCreate(&pref);
    const uint64_t ws = 0;
    const uint32_t red = CUBLASLT_REDUCTION_SCHEME_NONE;
    const uint32_t al[3] = {(uint32_t)key->align_a, (uint32_t)key->align_b, (uint32_t)key->align_d};
    if (!s)
        s = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                 &ws, sizeof ws);
    if (!s && no_reduction)
        s = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK,
                                                 &red, sizeof red);
    if (!s)
        s = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                                                 &al[0], sizeof al[0]);
    if (!s)
        s = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                                                 &al[1], sizeof al[1]);
    if (!s)
        s = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                                                 &al[2], sizeof al[2]);
    if (!s)
        s = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
                                                 &al[2], sizeof al[2]);
    *found = 0;
    if (!s)
        s = cublasLtMatmulAlgoGetHeuristic(cb->lt, p->desc, p->a1, p->b1, p->d1, p->d1, pref, 1,
                                           res, found);
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    return s;
}

/* Finds or builds the plan of a product shape (under cb->lock). */
static lt_plan *plan_get(cuda_backend *cb, const lt_key *key) {
    mm_backend *b = &cb->base;
    pthread_mutex_lock(&cb->lock);
    for (int i = 0; i < cb->n_plans; i++)
        if (!memcmp(&cb->plans[i].key, key, sizeof *key)) {
            lt_plan *p = &cb->plans[i];
            pthread_mutex_unlock(&cb->lock);
            return p;
        }
    if (cb->n_plans == cb->cap_plans) {
        const int nc = cb->cap_plans ? 2 * cb->cap_plans : 64;
        lt_plan *np = realloc(cb->plans, (size_t)nc * sizeof *np);
        if (!np) {
            pthread_mutex_unlock(&cb->lock);
            cu_seterr(b, "matrix product: out of host memory");
            return NULL;
        }
        cb->plans = np;
        cb->cap_plans = nc;
    }
    lt_plan p;
    memset(&p, 0, sizeof p);
    p.key = *key;
    const cudaDataType_t ab = key->bf16 ? CUDA_R_16BF : CUDA_R_32F;
    const cublasComputeType_t ct = key->tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    const cublasOperation_t ta = key->transa ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t tb = key->transb ? CUBLAS_OP_T : CUBLAS_OP_N;
    const int64_t ar = key->transa ? key->k : key->m, ac = key->transa ? key->m : key->k;
    const int64_t br = key->transb ? key->n : key->k, bc = key->transb ? key->k : key->n;
    cublasStatus_t s = cublasLtMatmulDescCreate(&p.desc, ct, CUDA_R_32F);
    if (!s) s = cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta);
    if (!s) s = cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb);
    if (!s && key->bias) {
        const cublasLtEpilogue_t ep = CUBLASLT_EPILOGUE_BIAS;
        const cudaDataType_t bt = CUDA_R_32F;
        s = cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep, sizeof ep);
        if (!s)
            s = cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt,
                                               sizeof bt);
    }
    if (!s) s = make_layout(&p.a1, ab, ar, ac, key->lda, 1, 0);
    if (!s) s = make_layout(&p.b1, ab, br, bc, key->ldb, 1, 0);
    if (!s) s = make_layout(&p.d1, CUDA_R_32F, key->m, key->n, key->ldd, 1, 0);
    if (!s) s = make_layout(&p.a, ab, ar, ac, key->lda, key->batch, key->sa);
    if (!s) s = make_layout(&p.b, ab, br, bc, key->ldb, key->batch, key->sb);
    if (!s) s = make_layout(&p.d, CUDA_R_32F, key->m, key->n, key->ldd, key->batch, key->sd);
    int found = 0;
    cublasLtMatmulHeuristicResult_t res;
    memset(&res, 0, sizeof res);
    /* the heuristic for ONE item, so that the choice cannot depend on the batch; no workspace
     * and no reduction scheme: excludes split-K and stream-K algorithms. If nothing qualifies,
     * once more without the reduction filter, then split-K is forced off below. */
    for (int attempt = 0; attempt < 2 && !s && found < 1; attempt++) {
        s = heuristic(cb, &p, key, attempt == 0, &res, &found);
        if (s == CUBLAS_STATUS_NOT_SUPPORTED && attempt == 0) s = CUBLAS_STATUS_SUCCESS, found = 0;
    }
    if (!s && found >= 1 && res.state == CUBLAS_STATUS_SUCCESS) {
        uint32_t splitk = 1;
        size_t got = 0;
        if (cublasLtMatmulAlgoConfigGetAttribute(&res.algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM,
                                                 &splitk, sizeof splitk,
                                                 &got) == CUBLAS_STATUS_SUCCESS &&
            splitk > 1) {
            const uint32_t one = 1, none = CUBLASLT_REDUCTION_SCHEME_NONE;
            cublasLtMatmulHeuristicResult_t chk;
            s = cublasLtMatmulAlgoConfigSetAttribute(&res.algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM,
                                                     &one, sizeof one);
            if (!s)
                s = cublasLtMatmulAlgoConfigSetAttribute(
                    &res.algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &none, sizeof none);
            if (!s)
                s = cublasLtMatmulAlgoCheck(cb->lt, p.desc, p.a1, p.b1, p.d1, p.d1, &res.algo,
                                            &chk);
            if (!s && chk.workspaceSize > 0) s = CUBLAS_STATUS_NOT_SUPPORTED;
        }
    }
    if (!s && (found < 1 || res.state != CUBLAS_STATUS_SUCCESS)) s = CUBLAS_STATUS_NOT_SUPPORTED;
    if (s) {
        pthread_mutex_unlock(&cb->lock);
        cu_seterr(b,
                  "cuBLASLt has no algorithm for a %s product %lldx%lldx%lld (batch %lld): "
                  "status %d (%s)",
                  key->bf16   ? "bf16"
                  : key->tf32 ? "tf32"
                              : "fp32",
                  (long long)key->m, (long long)key->k, (long long)key->n, (long long)key->batch,
                  (int)s, cublasGetStatusString(s));
        plan_destroy(&p);
        return NULL;
    }
    p.algo = res.algo;
    if (key->batch > 1) {
        cublasLtMatmulHeuristicResult_t chk;
        memset(&chk, 0, sizeof chk);
        p.per_item = cublasLtMatmulAlgoCheck(cb->lt, p.desc, p.a, p.b, p.d, p.d, &p.algo, &chk) !=
                         CUBLAS_STATUS_SUCCESS ||
                     chk.workspaceSize > 0;
    }
    cb->plans[cb->n_plans++] = p;
    lt_plan *out = &cb->plans[cb->n_plans - 1];
    pthread_mutex_unlock(&cb->lock);
    return out;
}

/* D = op(A) op(B) (+ bias), per the plan. */
static int lt_run(cuda_backend *cb, lt_plan *p, const void *A, const void *B, float *D,
                  const float *bias) {
    mm_backend *b = &cb->base;
    const float one = 1.0f, zero = 0.0f;
    if (p->key.bias && ck_lt(b,
                             cublasLtMatmulDescSetAttribute(
                                 p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias),
                             "matrix product bias"))
        return 1;
    if (!p->per_item)
        return ck_lt(b,
                     cublasLtMatmul(cb->lt, p->desc, &one, A, p->a, B, p->b, &zero, D, p->d, D,
                                    p->d, &p->algo, NULL, 0, cb->stream),
                     "cublasLtMatmul");
    const size_t esz = p->key.bf16 ? 2 : 4;
    for (int64_t i = 0; i < p->key.batch; i++)
        if (ck_lt(b,
                  cublasLtMatmul(cb->lt, p->desc, &one, (const char *)A + i * p->key.sa * esz,
                                 p->a1, (const char *)B + i * p->key.sb * esz, p->b1, &zero,
                                 D + i * p->key.sd, p->d1, D + i * p->key.sd, p->d1, &p->algo, NULL,
                                 0, cb->stream),
                  "cublasLtMatmul"))
            return 1;
    return 0;
}

static int cu_linear_impl(mm_backend *b, float *y, const float *x, int64_t M, int64_t rows_per_item,
                          const mm_weight *W, mm_activation act) {
    cuda_backend *cb = cu(b);
    const int64_t K = W->cols, N = W->rows;
    if (rows_per_item <= 0 || M % rows_per_item) {
        cu_seterr(b, "linear: %lld rows are not a whole number of %lld-row items", (long long)M,
                  (long long)rows_per_item);
        return 1;
    }
    if (M == 0 || N == 0) return 0;
    const int bf = b->use_bf16 && W->bf16;
    map_entry *we = weight_get(cb, W, bf);
    if (!we) return 1;
    const void *xb = x;
    if (bf) {
        uint16_t *st = scratch(b, &cb->stage, (size_t)(M * K) * 2);
        if (!st || (!b->dry &&
                    ck(b, mmk_to_bf16(st, x, (size_t)(M * K), cb->stream), "linear: bf16 staging")))
            return 1;
        xb = st;
    }
    /* y^T [N, M] (column-major) = W [N, K] . x^T, item i: columns i*rpi.. */
    const size_t esz = bf ? 2 : 4;
    lt_key key;
    memset(&key, 0, sizeof key);
    key.m = N;
    key.n = rows_per_item;
    key.k = K;
    key.transa = 1;
    key.lda = K;
    key.ldb = K;
    key.ldd = N;
    key.batch = M / rows_per_item;
    key.sa = 0;
    key.sb = rows_per_item * K;
    key.sd = rows_per_item * N;
    key.bf16 = bf;
    key.tf32 = !bf && cb->tf32;
    key.bias = W->bias != NULL;
    key.align_a = align_of(we->dev, K * (int64_t)esz);
    key.align_b = align_of(xb, key.sb * (int64_t)esz);
    key.align_d = align_of(y, key.sd * 4);
    lt_plan *p = plan_get(cb, &key);
    if (!p) return 1;
    if (b->dry) return 0; /* sizing pass: weights and plan ready, nothing computed */
    if (lt_run(cb, p, we->dev, xb, y, we->bias)) return 1;
    if (act != MM_ACT_NONE &&
        ck(b, mmk_bias_act(y, M, N, NULL, (int)act, cb->stream), "linear: activation"))
        return 1;
    return 0;
}

/* ---- convolution ----------------------------------------------------------------------------- */

/* im2col blocks of output pixels (at most 2^24 elements each) and one product per block:
 * D [pixels, cout] (column-major, ld = pixels of the image) = col [pixels, cin*k*k] . W^T. */
static int conv_im2col(cuda_backend *cb, float *y, const float *x, int n, int cin, int h, int w,
                       const mm_weight *W, const float *wdev, int k, int stride, const int pad[4],
                       int oh, int ow) {
    mm_backend *b = &cb->base;
    const int64_t P = (int64_t)oh * ow, Kc = (int64_t)cin * k * k, cout = W->rows;
    int64_t pbm = P;
    if (Kc * P > ((int64_t)1 << 24)) {
        pbm = ((int64_t)1 << 24) / Kc;
        pbm = pbm >= 256 ? pbm / 256 * 256 : (pbm < 1 ? 1 : pbm);
    }
    float *col = scratch(b, &cb->col, (size_t)(Kc * pbm) * sizeof(float));
    if (!col) return 1;
    if (b->dry) return 0;
    for (int img = 0; img < n; img++) {
        const float *xi = x + (int64_t)img * cin * h * w;
        for (int64_t p0 = 0; p0 < P; p0 += pbm) {
            const int64_t pb = P - p0 < pbm ? P - p0 : pbm;
            if (ck(b, mmk_im2col(col, xi, cin, h, w, k, stride, pad, ow, p0, pb, cb->stream),
                   "im2col"))
                return 1;
            float *yo = y + (int64_t)img * cout * P + p0;
            lt_key key;
            memset(&key, 0, sizeof key);
            key.m = pb;
            key.n = cout;
            key.k = Kc;
            key.lda = pb;
            key.ldb = Kc;
            key.ldd = P;
            key.batch = 1;
            key.tf32 = b->use_bf16 || cb->tf32;
            key.align_a = align_of(col, 0);
            key.align_b = align_of(wdev, Kc * 4);
            key.align_d = align_of(yo, P * 4);
            lt_plan *pl = plan_get(cb, &key);
            if (!pl || lt_run(cb, pl, col, wdev, yo, NULL)) return 1;
        }
    }
    return 0;
}

#ifdef MM_HAVE_CUDNN
/* The plan of one convolution shape for ONE image (symmetric padding ph, pw). NULL on error;
 * usable == 0 when cuDNN offers no deterministic algorithm of the wanted precision. */
static conv_plan *conv_plan_get(cuda_backend *cb, int cin, int h, int w, int cout, int k,
                                int stride, int ph, int pw) {
    mm_backend *b = &cb->base;
    const int strict = !b->use_bf16 && !cb->tf32; /* fp32: no TF32 tensor cores */
    pthread_mutex_lock(&cb->lock);
    for (int i = 0; i < cb->n_convs; i++) {
        conv_plan *c = &cb->convs[i];
        if (c->cin == cin && c->h == h && c->w == w && c->cout == cout && c->k == k &&
            c->stride == stride && c->ph == ph && c->pw == pw && c->strict == strict) {
            pthread_mutex_unlock(&cb->lock);
            return c;
        }
    }
    if (cb->n_convs == cb->cap_convs) {
        const int nc = cb->cap_convs ? 2 * cb->cap_convs : 32;
        conv_plan *np = realloc(cb->convs, (size_t)nc * sizeof *np);
        if (!np) {
            pthread_mutex_unlock(&cb->lock);
            cu_seterr(b, "convolution: out of host memory");
            return NULL;
        }
        cb->convs = np;
        cb->cap_convs = nc;
    }
    conv_plan c;
    memset(&c, 0, sizeof c);
    c.cin = cin, c.h = h, c.w = w, c.cout = cout, c.k = k, c.stride = stride, c.ph = ph, c.pw = pw;
    c.strict = strict;
    int n1, c1;
    cudnnStatus_t s = cudnnCreateTensorDescriptor(&c.xd);
    if (!s) s = cudnnCreateTensorDescriptor(&c.yd);
    if (!s) s = cudnnCreateFilterDescriptor(&c.fd);
    if (!s) s = cudnnCreateConvolutionDescriptor(&c.cd);
    if (!s) s = cudnnSetTensor4dDescriptor(c.xd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, cin, h, w);
    if (!s)
        s = cudnnSetFilter4dDescriptor(c.fd, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, cout, cin, k, k);
    if (!s)
        s = cudnnSetConvolution2dDescriptor(c.cd, ph, pw, stride, stride, 1, 1,
                                            CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT);
    if (!s) s = cudnnSetConvolutionMathType(c.cd, strict ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH);
    if (!s) s = cudnnGetConvolution2dForwardOutputDim(c.cd, c.xd, c.fd, &n1, &c1, &c.oh, &c.ow);
    if (!s)
        s = cudnnSetTensor4dDescriptor(c.yd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, cout, c.oh,
                                       c.ow);
    cudnnConvolutionFwdAlgoPerf_t perf[16];
    int got = 0;
    if (!s)
        s = cudnnGetConvolutionForwardAlgorithm_v7(cb->dnn, c.xd, c.fd, c.cd, c.yd, 16, &got, perf);
    if (s) {
        pthread_mutex_unlock(&cb->lock);
        ck_dnn(b, s, "cuDNN convolution setup");
        if (c.xd) cudnnDestroyTensorDescriptor(c.xd);
        if (c.yd) cudnnDestroyTensorDescriptor(c.yd);
        if (c.fd) cudnnDestroyFilterDescriptor(c.fd);
        if (c.cd) cudnnDestroyConvolutionDescriptor(c.cd);
        return NULL;
    }
    for (int i = 0; i < got && !c.usable; i++) {
        if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].determinism != CUDNN_DETERMINISTIC ||
            perf[i].memory > ((size_t)1 << 30))
            continue;
        if (strict && perf[i].mathType != CUDNN_FMA_MATH) continue;
        if (cudnnSetConvolutionMathType(c.cd, perf[i].mathType) != CUDNN_STATUS_SUCCESS) continue;
        c.algo = perf[i].algo;
        c.ws = perf[i].memory;
        c.usable = 1;
    }
    cb->convs[cb->n_convs++] = c;
    conv_plan *out = &cb->convs[cb->n_convs - 1];
    pthread_mutex_unlock(&cb->lock);
    return out;
}

/* 0 done, 1 error, 2 no suitable cuDNN algorithm (the caller falls back to im2col). */
static int conv_cudnn(cuda_backend *cb, float *y, const float *x, int n, int cin, int h, int w,
                      const mm_weight *W, const float *wdev, int k, int stride, const int pad[4],
                      int oh, int ow) {
    mm_backend *b = &cb->base;
    const int sym = pad[0] == pad[2] && pad[1] == pad[3];
    const int hp = sym ? h : h + pad[0] + pad[2], wp = sym ? w : w + pad[1] + pad[3];
    conv_plan *c = conv_plan_get(cb, (int)cin, hp, wp, (int)W->rows, k, stride, sym ? pad[0] : 0,
                                 sym ? pad[1] : 0);
    if (!c) return 1;
    if (!c->usable) return 2;
    if (c->oh != oh || c->ow != ow) {
        cu_seterr(b, "conv2d: cuDNN output %dx%d, expected %dx%d", c->oh, c->ow, oh, ow);
        return 1;
    }
    float *padded = NULL;
    if (!sym && !(padded = scratch(b, &cb->pad, (size_t)cin * hp * wp * sizeof(float)))) return 1;
    void *ws = NULL;
    if (c->ws && !(ws = scratch(b, &cb->convws, c->ws))) return 1;
    if (b->dry) return 0;
    const float one = 1.0f, zero = 0.0f;
    const int64_t P = (int64_t)oh * ow;
    for (int img = 0; img < n; img++) { /* image by image: an image's bits never depend on n */
        const float *xi = x + (int64_t)img * cin * h * w;
        if (!sym) {
            if (ck(b, mmk_pad2d(padded, xi, cin, h, w, pad, cb->stream), "conv2d: padding"))
                return 1;
            xi = padded;
        }
        if (ck_dnn(b,
                   cudnnConvolutionForward(cb->dnn, &one, c->xd, xi, c->fd, wdev, c->cd, c->algo,
                                           ws, c->ws, &zero, c->yd, y + (int64_t)img * W->rows * P),
                   "cudnnConvolutionForward"))
            return 1;
    }
    return 0;
}
#endif

static int cu_conv2d_impl(mm_backend *b, float *y, const float *x, int n, int cin, int h, int w,
                          const mm_weight *W, int k, int stride, const int pad[4]) {
    cuda_backend *cb = cu(b);
    const int oh = (h + pad[0] + pad[2] - k) / stride + 1;
    const int ow = (w + pad[1] + pad[3] - k) / stride + 1;
    const int64_t Kc = (int64_t)cin * k * k;
    if (W->cols != Kc) {
        cu_seterr(b, "conv2d: weight has %lld inputs, expected %lld", (long long)W->cols,
                  (long long)Kc);
        return 1;
    }
    if (n <= 0 || oh <= 0 || ow <= 0) return 0;
    map_entry *we = weight_get(cb, W, 0);
    if (!we) return 1;
    int rc = 2;
#ifdef MM_HAVE_CUDNN
    if (!cb->conv_im2col)
        rc = conv_cudnn(cb, y, x, n, cin, h, w, W, we->dev, k, stride, pad, oh, ow);
#endif
    if (rc == 2) rc = conv_im2col(cb, y, x, n, cin, h, w, W, we->dev, k, stride, pad, oh, ow);
    if (rc) return 1;
    if (b->dry) return 0;
    if (W->bias && ck(b, mmk_channel_bias(y, n, W->rows, (int64_t)oh * ow, we->bias, cb->stream),
                      "conv2d: bias"))
        return 1;
    return 0;
}

/* ---- attention ------------------------------------------------------------------------------ */

/* Any head dimension: per sequence, scores of all heads by one strided-batched product, a
 * softmax kernel, then P.V into the output columns. Per-sequence calls of a fixed shape: a
 * sequence's bits do not depend on n_seq. */
static int attention_generic(cuda_backend *cb, float *out, const float *qkv, int n_seq, int S,
                             int nh, int hd) {
    mm_backend *b = &cb->base;
    const int64_t H = (int64_t)nh * hd, ld = 3 * H;
    float *sc = scratch(b, &cb->scores, (size_t)nh * S * S * sizeof(float));
    if (!sc) return 1;
    if (b->dry) return 0;
    const cublasComputeType_t ct =
        (b->use_bf16 || cb->tf32) ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    const float one = 1.0f, zero = 0.0f;
    for (int s = 0; s < n_seq; s++) {
        const float *q = qkv + (int64_t)s * S * ld, *kk = q + H, *v = q + 2 * H;
        if (ck_lt(b,
                  cublasGemmStridedBatchedEx(cb->blas, CUBLAS_OP_T, CUBLAS_OP_N, S, S, hd, &one, kk,
                                             CUDA_R_32F, (int)ld, hd, q, CUDA_R_32F, (int)ld, hd,
                                             &zero, sc, CUDA_R_32F, S, (int64_t)S * S, nh, ct,
                                             CUBLAS_GEMM_DEFAULT),
                  "attention scores") ||
            ck(b, mmk_softmax_rows(sc, (int64_t)nh * S, S, 1.0f / sqrtf((float)hd), cb->stream),
               "attention softmax") ||
            ck_lt(b,
                  cublasGemmStridedBatchedEx(cb->blas, CUBLAS_OP_N, CUBLAS_OP_N, hd, S, S, &one, v,
                                             CUDA_R_32F, (int)ld, hd, sc, CUDA_R_32F, S,
                                             (int64_t)S * S, &zero, out + (int64_t)s * S * H,
                                             CUDA_R_32F, (int)H, hd, nh, ct, CUBLAS_GEMM_DEFAULT),
                  "attention values"))
            return 1;
    }
    return 0;
}

static int cu_attention_impl(mm_backend *b, float *out, const float *qkv, int n_seq, int S, int nh,
                             int hd) {
    cuda_backend *cb = cu(b);
    if (b->dry) /* sizing pass: the fused kernel needs no scratch, the generic path does */
        return mmk_attention_flash_supports(n_seq, nh, hd)
                   ? 0
                   : attention_generic(cb, out, qkv, n_seq, S, nh, hd);
    cudaError_t e = mmk_attention_flash(out, qkv, n_seq, S, nh, hd, b->use_bf16, cb->stream);
    if (e == cudaErrorNotSupported) return attention_generic(cb, out, qkv, n_seq, S, nh, hd);
    return ck(b, e, "attention");
}

/* ---- memory --------------------------------------------------------------------------------- */

static float *cu_alloc(mm_backend *b, size_t n) {
    enter(b);
    return dev_alloc(b, n * sizeof(float));
}

static void cu_free(mm_backend *b, float *p) {
    enter(b);
    if (p) cudaFree(p);
}

static int cu_upload(mm_backend *b, float *dst, const float *src, size_t n) {
    enter(b);
    return upload_sync(cu(b), dst, src, n * sizeof(float), "upload");
}

static int cu_download(mm_backend *b, float *dst, const float *src, size_t n) {
    cuda_backend *cb = cu(b);
    enter(b);
    if (!n) return 0;
    if (ck(b, cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToHost, cb->stream),
           "download"))
        return 1;
    return ck(b, cudaStreamSynchronize(cb->stream), "download (or an earlier operation)");
}

static int cu_copy_impl(mm_backend *b, float *dst, const float *src, size_t n) {
    cuda_backend *cb = cu(b);
    if (!n || dst == src) return 0;
    return ck(b, cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice, cb->stream),
              "copy");
}

/* ---- the remaining operations: kernels ----------------------------------------------------- */

#define ST (cu(b)->stream)

static int cu_channels_adapt(mm_backend *b, float *y, const float *x, int n, int cin, int cout,
                             int64_t hw) {
    if (!(cin == cout || cin == 1 || cout == 1)) {
        cu_seterr(b, "cannot adapt %d channels to %d", cin, cout);
        return 1;
    }
    enter(b);
    return ck(b, mmk_channels_adapt(y, x, n, cin, cout, hw, ST), "channels_adapt");
}

static int cu_noise(mm_backend *b, float *y, uint64_t seed, uint64_t tile_id, int purpose,
                    int modality, int step, size_t n) {
    enter(b);
    return ck(b, mmk_noise(y, seed, tile_id, purpose, modality, step, n, ST), "noise");
}

static int cu_affine(mm_backend *b, float *y, const float *x, float a, float c, size_t n) {
    PROF_BEGIN(b);
    int rc = ck(b, mmk_affine(y, x, a, c, n, ST), "affine");
    PROF_END(b, P_ELTWISE, 0);
    return rc;
}

static int cu_add_grouped(mm_backend *b, float *x, int64_t rows, int H, mm_modulation v) {
    PROF_BEGIN(b);
    int rc = ck(b, mmk_add_grouped(x, rows, H, v, ST), "add_grouped");
    PROF_END(b, P_ELTWISE, 0);
    return rc;
}

static int cu_add_rows(mm_backend *b, float *x, const float *v, int64_t rows, int64_t period,
                       int H) {
    PROF_BEGIN(b);
    int rc = ck(b, mmk_add_rows(x, v, rows, period, H, ST), "add_rows");
    PROF_END(b, P_ELTWISE, 0);
    return rc;
}

static int cu_upsample2x(mm_backend *b, float *y, const float *x, int n, int c, int h, int w) {
    PROF_BEGIN(b);
    int rc = ck(b, mmk_upsample2x(y, x, n, c, h, w, ST), "upsample2x");
    PROF_END(b, P_LAYOUT, 0);
    return rc;
}

static int cu_transpose(mm_backend *b, float *y, const float *x, int n, int64_t rows,
                        int64_t cols) {
    PROF_BEGIN(b);
    int rc = ck(b, mmk_transpose(y, x, n, rows, cols, ST), "transpose");
    PROF_END(b, P_LAYOUT, 0);
    return rc;
}

static int cu_linear(mm_backend *b, float *y, const float *x, int64_t M, int64_t rows_per_item,
                     const mm_weight *W, mm_activation act) {
    PROF_BEGIN(b);
    int rc = cu_linear_impl(b, y, x, M, rows_per_item, W, act);
    PROF_END(b, P_LINEAR, (double)2 * M * W->rows * W->cols);
    return rc;
}

static int cu_conv2d(mm_backend *b, float *y, const float *x, int n, int cin, int h, int w,
                     const mm_weight *W, int k, int stride, const int pad[4]) {
    PROF_BEGIN(b);
    int rc = cu_conv2d_impl(b, y, x, n, cin, h, w, W, k, stride, pad);
    PROF_END(b, P_CONV, 0);
    return rc;
}

static int cu_attention(mm_backend *b, float *out, const float *qkv, int n_seq, int S, int nh,
                        int hd) {
    PROF_BEGIN(b);
    int rc = cu_attention_impl(b, out, qkv, n_seq, S, nh, hd);
    PROF_END(b, P_ATTN, (double)4 * n_seq * S * S * nh * hd);
    return rc;
}

static int cu_layernorm_modulate(mm_backend *b, float *y, const float *x, int64_t rows, int H,
                                 float eps, mm_modulation shift, mm_modulation scale) {
    PROF_BEGIN(b);
    int rc =
        ck(b, mmk_layernorm_modulate(y, x, rows, H, eps, shift, scale, ST), "layernorm_modulate");
    PROF_END(b, P_NORM, 0);
    return rc;
}

static int cu_layernorm_affine(mm_backend *b, float *y, const float *x, int64_t rows, int H,
                               float eps, const float *w, const float *bias) {
    PROF_BEGIN(b);
    int rc = ck(b, mmk_layernorm_affine(y, x, rows, H, eps, w, bias, ST), "layernorm_affine");
    PROF_END(b, P_NORM, 0);
    return rc;
}

static int cu_group_norm(mm_backend *b, float *y, const float *x, int n, int c, int64_t hw,
                         int groups, float eps, const float *gamma, const float *beta, int silu) {
    if (groups <= 0 || c % groups) {
        cu_seterr(b, "group_norm: %d channels are not a whole number of %d groups", c, groups);
        return 1;
    }
    PROF_BEGIN(b);
    int rc =
        ck(b, mmk_group_norm(y, x, n, c, hw, groups, eps, gamma, beta, silu, ST), "group_norm");
    PROF_END(b, P_NORM, 0);
    return rc;
}

static int cu_gated_add(mm_backend *b, float *x, const float *y, int64_t rows, int H,
                        mm_modulation gate) {
    PROF_BEGIN(b);
    int rc = ck(b, mmk_gated_add(x, y, rows, H, gate, ST), "gated_add");
    PROF_END(b, P_ELTWISE, 0);
    return rc;
}

static int cu_silu(mm_backend *b, float *y, const float *x, size_t n) {
    PROF_BEGIN(b);
    int rc = ck(b, mmk_silu(y, x, n, ST), "silu");
    PROF_END(b, P_ELTWISE, 0);
    return rc;
}

static int cu_axpby(mm_backend *b, float *y, float a, const float *x, float c, size_t n) {
    PROF_BEGIN(b);
    int rc = ck(b, mmk_axpby(y, a, x, c, n, ST), "axpby");
    PROF_END(b, P_ELTWISE, 0);
    return rc;
}

static int cu_patchify(mm_backend *b, float *y, const float *x, int n, int C, int L, int p) {
    PROF_BEGIN(b);
    int rc = ck(b, mmk_patchify(y, x, n, C, L, p, ST), "patchify");
    PROF_END(b, P_LAYOUT, 0);
    return rc;
}

static int cu_unpatchify(mm_backend *b, float *y, const float *x, int n, int C, int L, int p) {
    PROF_BEGIN(b);
    int rc = ck(b, mmk_unpatchify(y, x, n, C, L, p, ST), "unpatchify");
    PROF_END(b, P_LAYOUT, 0);
    return rc;
}

static int cu_copy(mm_backend *b, float *dst, const float *src, size_t n) {
    PROF_BEGIN(b);
    int rc = cu_copy_impl(b, dst, src, n);
    PROF_END(b, P_LAYOUT, 0);
    return rc;
}

/* ---- memory planning (mm_context_reserve) and the mosaic ---------------------------------- */

static size_t cu_scratch_plan(mm_backend *b, int begin) {
    cuda_backend *cb = cu(b);
    dbuf *bufs[5] = {&cb->stage, &cb->pad, &cb->convws, &cb->col, &cb->scores};
    size_t total = 0;
    for (int i = 0; i < 5; i++) {
        if (begin) bufs[i]->need = 0;
        total += bufs[i]->need;
    }
    return total;
}

static int cu_scratch_adopt(mm_backend *b, void *mem, size_t bytes) {
    cuda_backend *cb = cu(b);
    enter(b);
    /* work still queued may use the buffers being replaced */
    if (ck(b, cudaStreamSynchronize(cb->stream), "scratch: synchronise")) return 1;
    dbuf *bufs[5] = {&cb->stage, &cb->pad, &cb->convws, &cb->col, &cb->scores};
    size_t off = 0;
    for (int i = 0; i < 5; i++) {
        if (bufs[i]->p && bufs[i]->own) cudaFree(bufs[i]->p);
        bufs[i]->p = NULL, bufs[i]->cap = 0, bufs[i]->own = 0;
        if (!mem || !bufs[i]->need) continue;
        if (off + bufs[i]->need > bytes) {
            cu_seterr(b, "scratch: %zu bytes given, more needed", bytes);
            return 1;
        }
        bufs[i]->p = (char *)mem + off;
        bufs[i]->cap = bufs[i]->need;
        off += bufs[i]->need;
    }
    return 0;
}

static int cu_mem_info(mm_backend *b, size_t *free_bytes, size_t *total_bytes) {
    enter(b);
    return ck(b, cudaMemGetInfo(free_bytes, total_bytes), "cudaMemGetInfo");
}

static int cu_mosaic_accumulate(mm_backend *b, float *acc, float *wsum, int C, int width,
                                int height, const float *tiles, int n, int S, const int *x0,
                                const int *y0, const float *wrow, const float *wcol) {
    enter(b);
    const size_t plane = (size_t)S * S;
    for (int t = 0; t < n; t++) /* one launch per window, in order, on the one stream */
        if (ck(b,
               mmk_mosaic_accumulate(acc, wsum, C, width, height, tiles + (size_t)t * C * plane, S,
                                     x0[t], y0[t], wrow, wcol, ST),
               "mosaic_accumulate"))
            return 1;
    return 0;
}

static int cu_mosaic_normalise(mm_backend *b, float *out, const float *acc, const float *wsum,
                               int C, int64_t npix, float empty) {
    enter(b);
    return ck(b, mmk_mosaic_normalise(out, acc, wsum, C, npix, empty, ST), "mosaic_normalise");
}

/* ---- lifetime -------------------------------------------------------------------------------- */

static void cu_destroy(mm_backend *b) {
    if (!b) return;
    cuda_backend *cb = cu(b);
    cudaSetDevice(cb->device);
    if (cb->stream) cudaStreamSynchronize(cb->stream);
    if (cb->profile) {
        double total = 0;
        for (int k = 0; k < P_COUNT; k++)
            total += cb->prof_s[k];
        fprintf(stderr, "libmm profile (cuda backend, device %d, %s):\n", cb->device,
                b->use_bf16 ? "bf16"
                : cb->tf32  ? "fp32/tf32"
                            : "fp32");
        for (int k = 0; k < P_COUNT; k++) {
            fprintf(stderr, "  %-28s %9.3f s  %5.1f%%", prof_names[k], cb->prof_s[k],
                    total > 0 ? 100 * cb->prof_s[k] / total : 0);
            if (cb->prof_flop[k] > 0 && cb->prof_s[k] > 0)
                fprintf(stderr, "  %9.1f GFLOP/s", cb->prof_flop[k] / cb->prof_s[k] / 1e9);
            fputc('\n', stderr);
        }
    }
    for (size_t i = 0; i < cb->map.cap; i++)
        if (cb->map.e[i].key) {
            if (cb->map.e[i].dev) cudaFree(cb->map.e[i].dev);
            if (cb->map.e[i].bias) cudaFree(cb->map.e[i].bias);
        }
    free(cb->map.e);
    for (int i = 0; i < cb->n_plans; i++)
        plan_destroy(&cb->plans[i]);
    free(cb->plans);
#ifdef MM_HAVE_CUDNN
    for (int i = 0; i < cb->n_convs; i++) {
        conv_plan *c = &cb->convs[i];
        cudnnDestroyTensorDescriptor(c->xd);
        cudnnDestroyTensorDescriptor(c->yd);
        cudnnDestroyFilterDescriptor(c->fd);
        cudnnDestroyConvolutionDescriptor(c->cd);
    }
    free(cb->convs);
    if (cb->dnn) cudnnDestroy(cb->dnn);
#endif
    dbuf *bufs[5] = {&cb->stage, &cb->pad, &cb->convws, &cb->col, &cb->scores};
    for (int i = 0; i < 5; i++)
        if (bufs[i]->p && bufs[i]->own) cudaFree(bufs[i]->p);
    if (cb->blas) cublasDestroy(cb->blas);
    if (cb->lt) cublasLtDestroy(cb->lt);
    if (cb->stream) cudaStreamDestroy(cb->stream);
    cudaGetLastError();
    pthread_mutex_destroy(&cb->lock);
    free(cb);
}

static const mm_backend_ops cuda_ops = {
    .name = "cuda",
    .host_memory = 0,
    .destroy = cu_destroy,
    .resident = cu_resident,
    .alloc = cu_alloc,
    .free = cu_free,
    .upload = cu_upload,
    .download = cu_download,
    .copy = cu_copy,
    .linear = cu_linear,
    .conv2d = cu_conv2d,
    .attention = cu_attention,
    .layernorm_modulate = cu_layernorm_modulate,
    .layernorm_affine = cu_layernorm_affine,
    .gated_add = cu_gated_add,
    .group_norm = cu_group_norm,
    .silu = cu_silu,
    .axpby = cu_axpby,
    .affine = cu_affine,
    .add_grouped = cu_add_grouped,
    .add_rows = cu_add_rows,
    .upsample2x = cu_upsample2x,
    .transpose = cu_transpose,
    .patchify = cu_patchify,
    .unpatchify = cu_unpatchify,
    .noise = cu_noise,
    .channels_adapt = cu_channels_adapt,
    .mosaic_accumulate = cu_mosaic_accumulate,
    .mosaic_normalise = cu_mosaic_normalise,
    .scratch_plan = cu_scratch_plan,
    .scratch_adopt = cu_scratch_adopt,
    .mem_info = cu_mem_info,
};

static int env_flag(const char *name) {
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

mm_backend *mm_backend_cuda_create(int device, int want_bf16, char *err, size_t errlen) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count <= 0) {
        if (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver)
            snprintf(err, errlen,
                     "no usable CUDA device: no GPU, no NVIDIA driver, or a driver "
                     "older than this CUDA runtime (%s: %s)",
                     cudaGetErrorName(e), cudaGetErrorString(e));
        else if (e != cudaSuccess)
            snprintf(err, errlen, "no usable CUDA device (%s: %s)", cudaGetErrorName(e),
                     cudaGetErrorString(e));
        else
            snprintf(err, errlen, "no CUDA device (the driver reports none)");
        cudaGetLastError();
        return NULL;
    }
    if (device < 0 || device >= count) {
        snprintf(err, errlen, "CUDA device %d does not exist (%d device%s)", device, count,
                 count == 1 ? "" : "s");
        return NULL;
    }
    struct cudaDeviceProp prop;
    if ((e = cudaSetDevice(device)) != cudaSuccess ||
        (e = cudaGetDeviceProperties(&prop, device)) != cudaSuccess) {
        snprintf(err, errlen, "CUDA device %d: %s", device, cudaGetErrorString(e));
        cudaGetLastError();
        return NULL;
    }
    cuda_backend *cb = calloc(1, sizeof *cb);
    if (!cb) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&cb->lock, NULL);
    cb->base.ops = &cuda_ops;
    cb->base.n_threads = 1;
    cb->base.use_bf16 = want_bf16 && prop.major >= 8; /* bf16 tensor cores: Ampere and later */
    cb->device = device;
    cb->multi = count > 1;
    cb->tf32 = env_flag("MM_CUDA_TF32");
    cb->profile = env_flag("MM_PROFILE");
    const char *conv = getenv("MM_CUDA_CONV");
#ifdef MM_HAVE_CUDNN
    cb->conv_im2col = conv && !strcmp(conv, "im2col");
#else
    (void)conv;
    cb->conv_im2col = 1;
#endif
    const char *what = "stream";
    cublasStatus_t bs = CUBLAS_STATUS_SUCCESS;
    int bad = (e = cudaStreamCreateWithFlags(&cb->stream, cudaStreamNonBlocking)) != cudaSuccess;
    if (!bad) {
        what = "kernel probe"; /* no code for this architecture in the build? */
        e = mmk_probe(cb->stream);
        if (e == cudaSuccess) e = cudaStreamSynchronize(cb->stream);
        bad = e != cudaSuccess;
    }
    if (!bad && (bs = cublasLtCreate(&cb->lt)) != CUBLAS_STATUS_SUCCESS) what = "cuBLASLt", bad = 2;
    if (!bad && (bs = cublasCreate(&cb->blas)) != CUBLAS_STATUS_SUCCESS) what = "cuBLAS", bad = 2;
    if (!bad && ((bs = cublasSetStream(cb->blas, cb->stream)) != CUBLAS_STATUS_SUCCESS ||
                 (bs = cublasSetMathMode(cb->blas, CUBLAS_DEFAULT_MATH)) != CUBLAS_STATUS_SUCCESS))
        what = "cuBLAS setup", bad = 2;
#ifdef MM_HAVE_CUDNN
    cudnnStatus_t ds = CUDNN_STATUS_SUCCESS;
    if (!bad && ((ds = cudnnCreate(&cb->dnn)) != CUDNN_STATUS_SUCCESS ||
                 (ds = cudnnSetStream(cb->dnn, cb->stream)) != CUDNN_STATUS_SUCCESS)) {
        snprintf(err, errlen, "CUDA device %d (%s): cuDNN: %s", device, prop.name,
                 cudnnGetErrorString(ds));
        cu_destroy(&cb->base);
        return NULL;
    }
#endif
    if (bad) {
        if (bad == 2)
            snprintf(err, errlen, "CUDA device %d (%s): %s: %s", device, prop.name, what,
                     cublasGetStatusString(bs));
        else if (e == cudaErrorNoKernelImageForDevice || e == cudaErrorUnsupportedPtxVersion)
            snprintf(err, errlen,
                     "CUDA device %d (%s, compute capability %d.%d): this build has "
                     "no kernels for it (rebuild with -DCMAKE_CUDA_ARCHITECTURES=%d%d): %s",
                     device, prop.name, prop.major, prop.minor, prop.major, prop.minor,
                     cudaGetErrorString(e));
        else
            snprintf(err, errlen, "CUDA device %d (%s): %s: %s", device, prop.name, what,
                     cudaGetErrorString(e));
        cudaGetLastError();
        cu_destroy(&cb->base);
        return NULL;
    }
    return &cb->base;
}
