/*
 * The compute backend interface. Model code (dit.c, vae.c, sampler.c) is written once against
 * these operations; each backend (backend_cpu.c; the CUDA backend in kernels/) implements them.
 *
 * Buffers are float arrays in the backend's memory (host memory for the CPU backend, device
 * memory for CUDA). Model code may do pointer arithmetic on them but never dereferences them;
 * data crosses with upload()/download(). Every operation returns 0 or non-zero after setting the
 * backend's error message (mm_backend_errmsg).
 *
 * Determinism contract: every operation gives a tile bit-identical results whatever else is in
 * the call (other tiles, their number and order) and whatever the number of threads. The CPU
 * backend gets this by cutting every matrix product into blocks whose shapes depend only on the
 * tile's own shape and running each block single-threaded (see backend_cpu.c); backends must
 * keep it, since the tools rely on a tile's result not depending on what it was batched with.
 */
#ifndef MM_BACKEND_H
#define MM_BACKEND_H

#include <stddef.h>
#include <stdint.h>

/* A matrix-product weight: out = in x W^T, W is [rows = out features, cols = in features]
 * (for a convolution: [cout, cin*kh*kw], the PyTorch layout flattened). Owned by the model;
 * backends keep their own copies in their private slot. */
typedef struct mm_weight {
    int64_t rows, cols;
    const float *f32;     /* rows x cols, host */
    const uint16_t *bf16; /* same, bf16 (round to nearest even), host; NULL if not made */
    const float *bias;    /* rows, host; NULL = no bias */
} mm_weight;

typedef enum { MM_ACT_NONE = 0, MM_ACT_GELU_TANH = 1, MM_ACT_SILU = 2 } mm_activation;

/* Selects, for row r of an activation, which row of a per-group modulation table applies:
 * group = r / rows_per_group. Modulation tables are [groups, stride] with the chunk used at
 * column offset `offset`. */
typedef struct {
    const float *table;
    int64_t stride;
    int64_t rows_per_group;
} mm_modulation;

typedef struct mm_backend mm_backend;

typedef struct {
    const char *name; /* for messages and reports only: model code never compares it */
    /* Capabilities, declared by the backend; model code asks these, never the name.
     * host_memory: 1 when the backend's buffers are host memory (the CPU backend's), so that
     * model code may hand host arrays to the forward passes without upload()/download() and
     * plans its working memory with the host's reserve; 0 for device memory (CUDA). */
    int host_memory;
    void (*destroy)(mm_backend *b);

    /* Read-only model data (norm weights, embeddings) as the backend reads it: the CPU backend
     * returns the pointer itself, a device backend a mirror uploaded once. NULL on failure. */
    const float *(*resident)(mm_backend *b, const float *host, size_t n);

    /* memory */
    float *(*alloc)(mm_backend *b, size_t n_floats);
    void (*free)(mm_backend *b, float *p);
    int (*upload)(mm_backend *b, float *dst, const float *src, size_t n);
    int (*download)(mm_backend *b, float *dst, const float *src, size_t n);
    int (*copy)(mm_backend *b, float *dst, const float *src, size_t n);

    /* y[M, W.rows] = act(x[M, W.cols] W^T + bias). The rows form M / rows_per_item items (a
     * tile's rows); a row's result may depend on its position within its item but never on the
     * other items, their number, or the thread count. */
    int (*linear)(mm_backend *b, float *y, const float *x, int64_t M, int64_t rows_per_item,
                  const mm_weight *W, mm_activation act);

    /* 2-D convolution, NCHW, weight W [cout, cin*k*k], square kernel k, stride s, padding
     * (top, left, bottom, right); output size from the usual formula. */
    int (*conv2d)(mm_backend *b, float *y, const float *x, int n, int cin, int h, int w,
                  const mm_weight *W, int k, int stride, const int pad[4]);

    /* Multi-head self-attention without mask over n_seq sequences of S tokens.
     * qkv: [n_seq*S, 3*nh*hd] laid out [q | k | v], head h at columns h*hd.
     * out: [n_seq*S, nh*hd]. Softmax in fp32, scale 1/sqrt(hd). */
    int (*attention)(mm_backend *b, float *out, const float *qkv, int n_seq, int S, int nh, int hd);

    /* y = LN(x) * (1 + scale) + shift per row, LN without affine (eps), scale/shift from the
     * modulation tables at their groups. */
    int (*layernorm_modulate)(mm_backend *b, float *y, const float *x, int64_t rows, int H,
                              float eps, mm_modulation shift, mm_modulation scale);
    /* y = LN(x) * w + bias per row (affine LayerNorm). */
    int (*layernorm_affine)(mm_backend *b, float *y, const float *x, int64_t rows, int H, float eps,
                            const float *w, const float *bias);
    /* x += gate ⊙ y per row (gate from its modulation table). */
    int (*gated_add)(mm_backend *b, float *x, const float *y, int64_t rows, int H,
                     mm_modulation gate);

    /* GroupNorm over NCHW (per sample and group, over channels-in-group x HW), affine, then
     * SiLU if silu != 0. */
    int (*group_norm)(mm_backend *b, float *y, const float *x, int n, int c, int64_t hw, int groups,
                      float eps, const float *gamma, const float *beta, int silu);

    /* element-wise */
    int (*silu)(mm_backend *b, float *y, const float *x, size_t n);
    /* y = a*x + c*y. */
    int (*axpby)(mm_backend *b, float *y, float a, const float *x, float c, size_t n);
    /* y = a*x + c (y may be x). */
    int (*affine)(mm_backend *b, float *y, const float *x, float a, float c, size_t n);
    /* x[r, :] += v at r's group, for rows of width H. */
    int (*add_grouped)(mm_backend *b, float *x, int64_t rows, int H, mm_modulation v);
    /* x[r, :] += v[r % period, :] for rows of width H. */
    int (*add_rows)(mm_backend *b, float *x, const float *v, int64_t rows, int64_t period, int H);
    /* y[n, c, 2h, 2w] = x[n, c, h, w] nearest. */
    int (*upsample2x)(mm_backend *b, float *y, const float *x, int n, int c, int h, int w);
    /* y[n, j, i] = x[n, i, j] for n matrices of rows x cols. */
    int (*transpose)(mm_backend *b, float *y, const float *x, int n, int64_t rows, int64_t cols);

    /* Latent [n, C, L, L] -> patches [n*(L/p)^2, C*p*p] ordered (c, i, j), tokens row-major. */
    int (*patchify)(mm_backend *b, float *y, const float *x, int n, int C, int L, int p);
    /* Tokens [n*(L/p)^2, p*p*C] ordered (i, j, c) -> latent [n, C, L, L]. */
    int (*unpatchify)(mm_backend *b, float *y, const float *x, int n, int C, int L, int p);

    /* The project's noise (docs/architecture.md section 6) for one tile: n elements. */
    int (*noise)(mm_backend *b, float *y, uint64_t seed, uint64_t tile_id, int purpose,
                 int modality, int step, size_t n);

    /* Channel reductions for the VAE's modality channels: y[n, cout, hw] from x[n, cin, hw]:
     * repeat (cin == 1 < cout, or copy when cin == cout) or average (cout == 1 < cin). */
    int (*channels_adapt)(mm_backend *b, float *y, const float *x, int n, int cin, int cout,
                          int64_t hw);

    /* Mosaic of a strip (the geospatial layer's window blending, libmm/src/mosaic.c):
     * for each tile t in order, for its pixels (py, px) inside the strip (the tile's pixel
     * (py, px) lands at strip column x0[t] + px, row y0[t] + py; columns outside [0, width)
     * and rows outside [0, height) are dropped), with w = wrow[py] * wcol[px]:
     *   wsum[row, col] += w;   acc[c, row, col] += w * tiles[t, c, py, px]
     * in this expression order and fp32 with no contraction (a w*v product rounded, then the
     * sum), so every backend gives the same bits. tiles: n x C x S x S, wrow/wcol: S values
     * (backend buffers); x0, y0: host arrays of n. */
    int (*mosaic_accumulate)(mm_backend *b, float *acc, float *wsum, int C, int width, int height,
                             const float *tiles, int n, int S, const int *x0, const int *y0,
                             const float *wrow, const float *wcol);
    /* out[c, k] = acc[c, k] / wsum[k] where wsum[k] > 0, else `empty`, for npix pixels. */
    int (*mosaic_normalise)(mm_backend *b, float *out, const float *acc, const float *wsum, int C,
                            int64_t npix, float empty);

    /* Memory planning (mm_context_reserve); all three optional (NULL).
     * scratch_plan(b, 1) forgets the backend scratch measured so far; then, while b->dry is set,
     * linear/conv2d/attention record the scratch they would need, prepare what is not working
     * memory (weights uploaded, product plans chosen) and compute nothing; scratch_plan(b, 0)
     * returns the bytes measured (each buffer rounded up to 256 bytes). */
    size_t (*scratch_plan)(mm_backend *b, int begin);
    /* From now on the backend's scratch lives in mem (bytes >= scratch_plan(b, 0), 256-byte
     * aligned, owned by the caller); its own scratch allocations are freed. mem == NULL: the
     * backend goes back to allocating its own (the caller is about to free mem). */
    int (*scratch_adopt)(mm_backend *b, void *mem, size_t bytes);
    /* Free and total memory of the device (bytes). */
    int (*mem_info)(mm_backend *b, size_t *free_bytes, size_t *total_bytes);
} mm_backend_ops;

struct mm_backend {
    const mm_backend_ops *ops;
    int use_bf16; /* matrix products in bf16 with fp32 accumulation */
    int n_threads;
    int dry; /* sizing pass (see scratch_plan) */
    /* Allocations of backend memory made so far (alloc() and the backend's own scratch and
     * weight copies): tests check that it does not move while a reserved context samples. */
    uint64_t n_allocs;
    char errmsg[512];
};

/* CPU backend; n_threads <= 0 means all cores. want_bf16 falls back to fp32 where the CPU has
 * no bf16 support. Returns NULL with err set on failure. */
mm_backend *mm_backend_cpu_create(int n_threads, int want_bf16, char *err, size_t errlen);
/* CUDA backend (kernels/); returns NULL with a message when not built or no device. */
mm_backend *mm_backend_cuda_create(int device, int want_bf16, char *err, size_t errlen);

void mm_backend_seterr(mm_backend *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

uint16_t mm_f32_to_bf16(float f);
float mm_bf16_to_f32(uint16_t h);

#endif
