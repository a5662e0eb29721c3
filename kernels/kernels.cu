/*
 * The CUDA backend's kernels other than attention: norms, element-wise operations, layouts,
 * noise, bf16 conversion and the convolution helpers. Index conventions follow
 * libmm/src/backend_cpu.c op by op, so the CPU code is the specification of each kernel.
 *
 * Reductions (LayerNorm, GroupNorm, softmax) are per block in a fixed tree order: results do
 * not depend on the grid, on the other rows, or on timing.
 */
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include "mm_kernels.h"

namespace {

constexpr int kThreads = 256;

inline unsigned grid_for(size_t n, int threads = kThreads) {
    size_t b = (n + threads - 1) / threads;
    if (b < 1) b = 1;
    if (b > (1u << 20)) b = 1u << 20; /* grid-stride loops cover the rest */
    return (unsigned)b;
}

__device__ __forceinline__ uint16_t bf16_bits(float f) {
    const uint32_t u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* Sum over the block (blockDim.x a multiple of 32, at most 1024) in a fixed order; the result
 * is returned to every thread. `sh` holds 32 doubles. */
__device__ double block_sum(double v, double *sh) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_down_sync(0xffffffffu, v, o);
    __syncthreads(); /* sh may still be read from a previous call */
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < nw ? sh[lane] : 0.0;
        for (int o = 16; o > 0; o >>= 1)
            v += __shfl_down_sync(0xffffffffu, v, o);
        if (lane == 0) sh[0] = v;
    }
    __syncthreads();
    return sh[0];
}

__device__ float block_max(float v, float *sh) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_down_sync(0xffffffffu, v, o));
    __syncthreads();
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < nw ? sh[lane] : -INFINITY;
        for (int o = 16; o > 0; o >>= 1)
            v = fmaxf(v, __shfl_down_sync(0xffffffffu, v, o));
        if (lane == 0) sh[0] = v;
    }
    __syncthreads();
    return sh[0];
}

__device__ __forceinline__ float silu_f(float v) {
    return v / (1.0f + expf(-v));
}
__device__ __forceinline__ float gelu_tanh_f(float v) {
    return 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
}

/* ---- conversion, bias, activation ------------------------------------------------------- */

__global__ void k_probe(int *p) {
    if (p) *p = 1;
}

__global__ void k_to_bf16(uint16_t *dst, const float *src, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        dst[i] = bf16_bits(src[i]);
}

__global__ void k_bias_act(float *y, size_t total, int64_t N, const float *bias, int act) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total;
         i += (size_t)gridDim.x * blockDim.x) {
        float v = y[i];
        if (bias) v += bias[i % (size_t)N];
        if (act == MM_ACT_GELU_TANH)
            v = gelu_tanh_f(v);
        else if (act == MM_ACT_SILU)
            v = silu_f(v);
        y[i] = v;
    }
}

__global__ void k_channel_bias(float *y, size_t total, int64_t C, int64_t P, const float *bias) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total;
         i += (size_t)gridDim.x * blockDim.x)
        y[i] += bias[(i / (size_t)P) % (size_t)C];
}

/* ---- LayerNorm ----------------------------------------------------------------------------- */

/* Mean and 1/std of one row (as the CPU's row_stats: float mean, double variance sum). */
__device__ void row_stats(const float *x, int H, float eps, float *mean, float *rstd, double *sh) {
    float s = 0.0f;
    for (int i = threadIdx.x; i < H; i += blockDim.x)
        s += x[i];
    const double S = block_sum((double)s, sh);
    const float m = (float)(S / H);
    float ss = 0.0f;
    for (int i = threadIdx.x; i < H; i += blockDim.x) {
        const float d = x[i] - m;
        ss += d * d;
    }
    const double SS = block_sum((double)ss, sh);
    *mean = m;
    *rstd = (float)(1.0 / sqrt(SS / H + eps));
}

__global__ void k_layernorm_modulate(float *y, const float *x, int H, float eps,
                                     mm_modulation shift, mm_modulation scale) {
    __shared__ double sh[32];
    const int64_t r = blockIdx.x;
    const float *xr = x + r * H;
    float mean, rstd;
    row_stats(xr, H, eps, &mean, &rstd, sh);
    const float *shv = shift.table + (r / shift.rows_per_group) * shift.stride;
    const float *scv = scale.table + (r / scale.rows_per_group) * scale.stride;
    float *yr = y + r * H;
    for (int i = threadIdx.x; i < H; i += blockDim.x)
        yr[i] = (xr[i] - mean) * rstd * (1.0f + scv[i]) + shv[i];
}

__global__ void k_layernorm_affine(float *y, const float *x, int H, float eps, const float *w,
                                   const float *bias) {
    __shared__ double sh[32];
    const int64_t r = blockIdx.x;
    const float *xr = x + r * H;
    float mean, rstd;
    row_stats(xr, H, eps, &mean, &rstd, sh);
    float *yr = y + r * H;
    for (int i = threadIdx.x; i < H; i += blockDim.x)
        yr[i] = (xr[i] - mean) * rstd * w[i] + bias[i];
}

/* ---- GroupNorm: one block per (image, group); statistics in double as on the CPU ---------- */

__global__ void k_group_norm(float *y, const float *x, int c, int64_t hw, int groups, float eps,
                             const float *gamma, const float *beta, int silu) {
    __shared__ double sh[32];
    const int64_t item = blockIdx.x, img = item / groups, g = item % groups;
    const int cpg = c / groups;
    const float *xs = x + (img * c + g * cpg) * hw;
    float *ys = y + (img * c + g * cpg) * hw;
    const int64_t cnt = (int64_t)cpg * hw;
    double s = 0.0;
    for (int64_t i = threadIdx.x; i < cnt; i += blockDim.x)
        s += xs[i];
    const double m = block_sum(s, sh) / (double)cnt;
    double ss = 0.0;
    for (int64_t i = threadIdx.x; i < cnt; i += blockDim.x) {
        const double d = xs[i] - m;
        ss += d * d;
    }
    const double SS = block_sum(ss, sh);
    const float mean = (float)m, rstd = (float)(1.0 / sqrt(SS / (double)cnt + eps));
    for (int64_t i = threadIdx.x; i < cnt; i += blockDim.x) {
        const int cc = (int)g * cpg + (int)(i / hw);
        const float v = (xs[i] - mean) * rstd * gamma[cc] + beta[cc];
        ys[i] = silu ? silu_f(v) : v;
    }
}

/* ---- element-wise ---------------------------------------------------------------------------- */

#define GRID_LOOP(i, n)                                                                            \
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n);                        \
         i += (size_t)gridDim.x * blockDim.x)

__global__ void k_gated_add(float *x, const float *y, size_t total, int H, mm_modulation gate) {
    GRID_LOOP(i, total) {
        const int64_t r = (int64_t)(i / (size_t)H), col = (int64_t)(i % (size_t)H);
        x[i] += gate.table[(r / gate.rows_per_group) * gate.stride + col] * y[i];
    }
}

__global__ void k_silu(float *y, const float *x, size_t n) {
    GRID_LOOP(i, n) y[i] = silu_f(x[i]);
}

__global__ void k_axpby(float *y, float a, const float *x, float c, size_t n) {
    GRID_LOOP(i, n) y[i] = a * x[i] + c * y[i];
}

__global__ void k_affine(float *y, const float *x, float a, float c, size_t n) {
    GRID_LOOP(i, n) y[i] = a * x[i] + c;
}

__global__ void k_add_grouped(float *x, size_t total, int H, mm_modulation v) {
    GRID_LOOP(i, total) {
        const int64_t r = (int64_t)(i / (size_t)H), col = (int64_t)(i % (size_t)H);
        x[i] += v.table[(r / v.rows_per_group) * v.stride + col];
    }
}

__global__ void k_add_rows(float *x, const float *v, size_t total, int64_t period, int H) {
    GRID_LOOP(i, total) {
        const int64_t r = (int64_t)(i / (size_t)H), col = (int64_t)(i % (size_t)H);
        x[i] += v[(r % period) * H + col];
    }
}

/* ---- layouts --------------------------------------------------------------------------------- */

__global__ void k_upsample2x(float *y, const float *x, size_t total, int h, int w) {
    GRID_LOOP(i, total) {
        const int64_t ow = 2 * (int64_t)w, oh = 2 * (int64_t)h;
        const int64_t j = (int64_t)(i % (size_t)ow), r = (int64_t)((i / (size_t)ow) % (size_t)oh);
        const int64_t plane = (int64_t)(i / (size_t)(ow * oh));
        y[i] = x[plane * h * w + (r / 2) * w + j / 2];
    }
}

/* n matrices [rows, cols] -> [cols, rows], 32 x 32 tiles through shared memory. */
__global__ void k_transpose(float *y, const float *x, int64_t rows, int64_t cols) {
    __shared__ float tile[32][33];
    const int64_t m = blockIdx.z;
    const float *xm = x + m * rows * cols;
    float *ym = y + m * rows * cols;
    const int64_t c0 = (int64_t)blockIdx.x * 32, r0 = (int64_t)blockIdx.y * 32;
    for (int k = threadIdx.y; k < 32; k += blockDim.y) {
        const int64_t r = r0 + k, c = c0 + threadIdx.x;
        if (r < rows && c < cols) tile[k][threadIdx.x] = xm[r * cols + c];
    }
    __syncthreads();
    for (int k = threadIdx.y; k < 32; k += blockDim.y) {
        const int64_t c = c0 + k, r = r0 + threadIdx.x;
        if (r < rows && c < cols) ym[c * rows + r] = tile[threadIdx.x][k];
    }
}

/* y[tok, (c, i, j)] = x[img, c, tr*p + i, tc*p + j] */
__global__ void k_patchify(float *y, const float *x, size_t total, int C, int L, int p) {
    GRID_LOOP(e, total) {
        const int T = L / p;
        const int64_t D = (int64_t)C * p * p;
        const int64_t tok = (int64_t)(e / (size_t)D), d = (int64_t)(e % (size_t)D);
        const int64_t img = tok / ((int64_t)T * T), tr = tok % ((int64_t)T * T) / T, tc = tok % T;
        const int64_t c = d / (p * p), i = d / p % p, j = d % p;
        y[e] = x[((img * C + c) * L + tr * p + i) * L + tc * p + j];
    }
}

/* y[img, c, tr*p + i, tc*p + j] = x[tok, (i, j, c)] */
__global__ void k_unpatchify(float *y, const float *x, size_t total, int C, int L, int p) {
    GRID_LOOP(e, total) {
        const int T = L / p;
        const int64_t D = (int64_t)C * p * p;
        const int64_t xx = (int64_t)(e % (size_t)L), yy = (int64_t)(e / (size_t)L % (size_t)L);
        const int64_t c = (int64_t)(e / ((size_t)L * L) % (size_t)C);
        const int64_t img = (int64_t)(e / ((size_t)L * L * C));
        const int64_t tr = yy / p, i = yy % p, tc = xx / p, j = xx % p;
        const int64_t tok = img * T * T + tr * T + tc;
        y[e] = x[tok * D + (i * p + j) * C + c];
    }
}

__global__ void k_channels_adapt(float *y, const float *x, size_t total, int cin, int cout,
                                 int64_t hw) {
    GRID_LOOP(e, total) { /* e over the output [n, cout, hw] */
        const int64_t i = (int64_t)(e % (size_t)hw);
        const int64_t c = (int64_t)(e / (size_t)hw % (size_t)cout);
        const int64_t img = (int64_t)(e / ((size_t)hw * cout));
        const float *xi = x + img * cin * hw;
        if (cin == cout)
            y[e] = xi[c * hw + i];
        else if (cin == 1)
            y[e] = xi[i];
        else {
            float s = 0.0f;
            for (int k = 0; k < cin; k++)
                s += xi[k * hw + i];
            y[e] = s / (float)cin;
        }
    }
}

/* ---- noise: Philox-4x32-10 + Box-Muller, as libmm/src/noise.c ------------------------------ */

__device__ __forceinline__ void box_muller(uint32_t a, uint32_t b, float *z0, float *z1) {
    const double two32 = 4294967296.0;
    const double u1 = ((double)a + 1.0) / two32;
    const double u2 = (double)b / two32;
    const double r = sqrt(-2.0 * log(u1));
    const double th = 6.283185307179586476925286766559 * u2;
    *z0 = (float)(r * cos(th));
    *z1 = (float)(r * sin(th));
}

__global__ void k_noise(float *y, uint32_t k0, uint32_t k1, uint32_t stream, uint32_t t0,
                        uint32_t t1, size_t n) {
    const size_t groups = (n + 3) / 4;
    for (size_t g = blockIdx.x * (size_t)blockDim.x + threadIdx.x; g < groups;
         g += (size_t)gridDim.x * blockDim.x) {
        uint32_t c0 = (uint32_t)g, c1 = stream, c2 = t0, c3 = t1, a = k0, b = k1;
#pragma unroll
        for (int round = 0; round < 10; round++) {
            const uint32_t hi0 = __umulhi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
            const uint32_t hi1 = __umulhi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
            const uint32_t n0 = hi1 ^ c1 ^ a, n2 = hi0 ^ c3 ^ b;
            c0 = n0;
            c1 = lo1;
            c2 = n2;
            c3 = lo0;
            a += 0x9E3779B9u;
            b += 0xBB67AE85u;
        }
        float z[4];
        box_muller(c0, c1, &z[0], &z[1]);
        box_muller(c2, c3, &z[2], &z[3]);
        for (size_t l = 0; l < 4 && g * 4 + l < n; l++)
            y[g * 4 + l] = z[l];
    }
}

/* ---- convolution helpers ----------------------------------------------------------------- */

__global__ void k_pad2d(float *y, const float *x, size_t total, int h, int w, int pt, int pl,
                        int ph, int pw) {
    GRID_LOOP(e, total) {
        const int64_t j = (int64_t)(e % (size_t)pw), i = (int64_t)(e / (size_t)pw % (size_t)ph);
        const int64_t c = (int64_t)(e / ((size_t)pw * ph));
        const int64_t iy = i - pt, ix = j - pl;
        y[e] = (iy >= 0 && iy < h && ix >= 0 && ix < w) ? x[(c * h + iy) * w + ix] : 0.0f;
    }
}

__global__ void k_im2col(float *col, const float *x, size_t total, int h, int w, int k, int stride,
                         int pt, int pl, int ow, int64_t p0, int64_t pb) {
    GRID_LOOP(e, total) { /* e over col [cin*k*k][pb] */
        const int64_t q = (int64_t)(e % (size_t)pb), r = (int64_t)(e / (size_t)pb);
        const int64_t ci = r / (k * k), ky = r / k % k, kx = r % k;
        const int64_t p = p0 + q;
        const int64_t iy = (p / ow) * stride - pt + ky, ix = (p % ow) * stride - pl + kx;
        col[e] = (iy >= 0 && iy < h && ix >= 0 && ix < w) ? x[(ci * h + iy) * w + ix] : 0.0f;
    }
}

/* ---- softmax of score rows (generic attention path) ----------------------------------------- */

__global__ void k_softmax_rows(float *s, int S, float scale) {
    __shared__ float shf[32];
    __shared__ double shd[32];
    float *row = s + (int64_t)blockIdx.x * S;
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < S; j += blockDim.x)
        mx = fmaxf(mx, row[j]);
    mx = block_max(mx, shf);
    const float off = mx * scale;
    float sum = 0.0f;
    for (int j = threadIdx.x; j < S; j += blockDim.x) {
        const float e = expf(row[j] * scale - off);
        row[j] = e;
        sum += e;
    }
    const float inv = (float)(1.0 / block_sum((double)sum, shd));
    for (int j = threadIdx.x; j < S; j += blockDim.x)
        row[j] *= inv;
}

} // namespace

/* ---- launchers ----------------------------------------------------------------------------- */

extern "C" {

cudaError_t mmk_probe(cudaStream_t st) {
    k_probe<<<1, 32, 0, st>>>(nullptr);
    return cudaGetLastError();
}

cudaError_t mmk_to_bf16(uint16_t *dst, const float *src, size_t n, cudaStream_t st) {
    if (!n) return cudaSuccess;
    k_to_bf16<<<grid_for(n), kThreads, 0, st>>>(dst, src, n);
    return cudaGetLastError();
}

cudaError_t mmk_bias_act(float *y, int64_t rows, int64_t N, const float *bias, int act,
                         cudaStream_t st) {
    const size_t total = (size_t)rows * (size_t)N;
    if (!total || (!bias && act == MM_ACT_NONE)) return cudaSuccess;
    k_bias_act<<<grid_for(total), kThreads, 0, st>>>(y, total, N, bias, act);
    return cudaGetLastError();
}

cudaError_t mmk_channel_bias(float *y, int n, int64_t C, int64_t P, const float *bias,
                             cudaStream_t st) {
    const size_t total = (size_t)n * (size_t)C * (size_t)P;
    if (!total || !bias) return cudaSuccess;
    k_channel_bias<<<grid_for(total), kThreads, 0, st>>>(y, total, C, P, bias);
    return cudaGetLastError();
}

static int norm_threads(int64_t H) {
    return H >= 1024 ? 512 : H >= 256 ? 256 : 128;
}

cudaError_t mmk_layernorm_modulate(float *y, const float *x, int64_t rows, int H, float eps,
                                   mm_modulation shift, mm_modulation scale, cudaStream_t st) {
    if (rows <= 0) return cudaSuccess;
    if (rows > 0x7fffffff) return cudaErrorInvalidValue;
    k_layernorm_modulate<<<(unsigned)rows, norm_threads(H), 0, st>>>(y, x, H, eps, shift, scale);
    return cudaGetLastError();
}

cudaError_t mmk_layernorm_affine(float *y, const float *x, int64_t rows, int H, float eps,
                                 const float *w, const float *bias, cudaStream_t st) {
    if (rows <= 0) return cudaSuccess;
    if (rows > 0x7fffffff) return cudaErrorInvalidValue;
    k_layernorm_affine<<<(unsigned)rows, norm_threads(H), 0, st>>>(y, x, H, eps, w, bias);
    return cudaGetLastError();
}

cudaError_t mmk_gated_add(float *x, const float *y, int64_t rows, int H, mm_modulation gate,
                          cudaStream_t st) {
    const size_t total = (size_t)rows * (size_t)H;
    if (!total) return cudaSuccess;
    k_gated_add<<<grid_for(total), kThreads, 0, st>>>(x, y, total, H, gate);
    return cudaGetLastError();
}

cudaError_t mmk_group_norm(float *y, const float *x, int n, int c, int64_t hw, int groups,
                           float eps, const float *gamma, const float *beta, int silu,
                           cudaStream_t st) {
    if (n <= 0 || groups <= 0) return cudaSuccess;
    k_group_norm<<<(unsigned)((int64_t)n * groups), 512, 0, st>>>(y, x, c, hw, groups, eps, gamma,
                                                                  beta, silu);
    return cudaGetLastError();
}

cudaError_t mmk_silu(float *y, const float *x, size_t n, cudaStream_t st) {
    if (!n) return cudaSuccess;
    k_silu<<<grid_for(n), kThreads, 0, st>>>(y, x, n);
    return cudaGetLastError();
}

cudaError_t mmk_axpby(float *y, float a, const float *x, float c, size_t n, cudaStream_t st) {
    if (!n) return cudaSuccess;
    k_axpby<<<grid_for(n), kThreads, 0, st>>>(y, a, x, c, n);
    return cudaGetLastError();
}

cudaError_t mmk_affine(float *y, const float *x, float a, float c, size_t n, cudaStream_t st) {
    if (!n) return cudaSuccess;
    k_affine<<<grid_for(n), kThreads, 0, st>>>(y, x, a, c, n);
    return cudaGetLastError();
}

cudaError_t mmk_add_grouped(float *x, int64_t rows, int H, mm_modulation v, cudaStream_t st) {
    const size_t total = (size_t)rows * (size_t)H;
    if (!total) return cudaSuccess;
    k_add_grouped<<<grid_for(total), kThreads, 0, st>>>(x, total, H, v);
    return cudaGetLastError();
}

cudaError_t mmk_add_rows(float *x, const float *v, int64_t rows, int64_t period, int H,
                         cudaStream_t st) {
    const size_t total = (size_t)rows * (size_t)H;
    if (!total) return cudaSuccess;
    k_add_rows<<<grid_for(total), kThreads, 0, st>>>(x, v, total, period, H);
    return cudaGetLastError();
}

cudaError_t mmk_upsample2x(float *y, const float *x, int n, int c, int h, int w, cudaStream_t st) {
    const size_t total = (size_t)n * c * 4 * (size_t)h * w;
    if (!total) return cudaSuccess;
    k_upsample2x<<<grid_for(total), kThreads, 0, st>>>(y, x, total, h, w);
    return cudaGetLastError();
}

cudaError_t mmk_transpose(float *y, const float *x, int n, int64_t rows, int64_t cols,
                          cudaStream_t st) {
    if (n <= 0 || rows <= 0 || cols <= 0) return cudaSuccess;
    const int64_t gy = (rows + 31) / 32;
    if (gy > 65535 || n > 65535) return cudaErrorInvalidValue;
    dim3 grid((unsigned)((cols + 31) / 32), (unsigned)gy, (unsigned)n), block(32, 8);
    k_transpose<<<grid, block, 0, st>>>(y, x, rows, cols);
    return cudaGetLastError();
}

cudaError_t mmk_patchify(float *y, const float *x, int n, int C, int L, int p, cudaStream_t st) {
    const size_t total = (size_t)n * C * (size_t)L * L;
    if (!total) return cudaSuccess;
    k_patchify<<<grid_for(total), kThreads, 0, st>>>(y, x, total, C, L, p);
    return cudaGetLastError();
}

cudaError_t mmk_unpatchify(float *y, const float *x, int n, int C, int L, int p, cudaStream_t st) {
    const size_t total = (size_t)n * C * (size_t)L * L;
    if (!total) return cudaSuccess;
    k_unpatchify<<<grid_for(total), kThreads, 0, st>>>(y, x, total, C, L, p);
    return cudaGetLastError();
}

cudaError_t mmk_noise(float *y, uint64_t seed, uint64_t tile_id, int purpose, int modality,
                      int step, size_t n, cudaStream_t st) {
    if (!n) return cudaSuccess;
    const uint32_t stream = ((uint32_t)purpose << 24) | ((uint32_t)(modality & 0xff) << 16) |
                            ((uint32_t)step & 0xffffu);
    k_noise<<<grid_for((n + 3) / 4), kThreads, 0, st>>>(y, (uint32_t)seed, (uint32_t)(seed >> 32),
                                                        stream, (uint32_t)tile_id,
                                                        (uint32_t)(tile_id >> 32), n);
    return cudaGetLastError();
}

cudaError_t mmk_channels_adapt(float *y, const float *x, int n, int cin, int cout, int64_t hw,
                               cudaStream_t st) {
    const size_t total = (size_t)n * cout * (size_t)hw;
    if (!total) return cudaSuccess;
    k_channels_adapt<<<grid_for(total), kThreads, 0, st>>>(y, x, total, cin, cout, hw);
    return cudaGetLastError();
}

cudaError_t mmk_pad2d(float *y, const float *x, int c, int h, int w, const int pad[4],
                      cudaStream_t st) {
    const int ph = h + pad[0] + pad[2], pw = w + pad[1] + pad[3];
    const size_t total = (size_t)c * ph * pw;
    if (!total) return cudaSuccess;
    k_pad2d<<<grid_for(total), kThreads, 0, st>>>(y, x, total, h, w, pad[0], pad[1], ph, pw);
    return cudaGetLastError();
}

cudaError_t mmk_im2col(float *col, const float *x, int cin, int h, int w, int k, int stride,
                       const int pad[4], int ow, int64_t p0, int64_t pb, cudaStream_t st) {
    const size_t total = (size_t)cin * k * k * (size_t)pb;
    if (!total) return cudaSuccess;
    k_im2col<<<grid_for(total), kThreads, 0, st>>>(col, x, total, h, w, k, stride, pad[0], pad[1],
                                                   ow, p0, pb);
    return cudaGetLastError();
}

cudaError_t mmk_softmax_rows(float *s, int64_t rows, int S, float scale, cudaStream_t st) {
    if (rows <= 0) return cudaSuccess;
    if (rows > 0x7fffffff) return cudaErrorInvalidValue;
    k_softmax_rows<<<(unsigned)rows, S >= 1024 ? 512 : 256, 0, st>>>(s, S, scale);
    return cudaGetLastError();
}

} // extern "C"

/* ---- mosaic -----------------------------------------------------------------------------------
 */

namespace {

/* one thread per pixel of the window's part inside the strip: each strip pixel is touched by
 * one thread of a launch, and launches (windows) run in order on the stream, so the additions
 * happen in the CPU's order. __fmul_rn / __fadd_rn forbid the fused multiply-add the compiler
 * would otherwise form, which would change the bits. */
__global__ void k_mosaic_acc(float *acc, float *wsum, int C, int width, size_t plane,
                             const float *tile, int S, int x0, int y0, int pa, int ra, int cols,
                             int rows, const float *wrow, const float *wcol) {
    const size_t n = (size_t)cols * rows;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        const int py = ra + (int)(i / cols), px = pa + (int)(i % cols);
        const size_t o = (size_t)(y0 + py) * width + (x0 + px);
        const float w = __fmul_rn(wrow[py], wcol[px]);
        wsum[o] = __fadd_rn(wsum[o], w);
        const size_t tp = (size_t)S * S, k = (size_t)py * S + px;
        for (int c = 0; c < C; c++)
            acc[c * plane + o] = __fadd_rn(acc[c * plane + o], __fmul_rn(w, tile[c * tp + k]));
    }
}

__global__ void k_mosaic_norm(float *out, const float *acc, const float *wsum, int C, size_t npix,
                              float empty) {
    const size_t n = (size_t)C * npix;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        const float ws = wsum[i % npix];
        out[i] = ws > 0.0f ? __fdiv_rn(acc[i], ws) : empty;
    }
}

} // namespace

extern "C" cudaError_t mmk_mosaic_accumulate(float *acc, float *wsum, int C, int width, int height,
                                             const float *tile, int S, int x0, int y0,
                                             const float *wrow, const float *wcol,
                                             cudaStream_t st) {
    const int pa = x0 < 0 ? -x0 : 0, pb = width - x0 < S ? width - x0 : S;
    const int ra = y0 < 0 ? -y0 : 0, rb = height - y0 < S ? height - y0 : S;
    if (pb <= pa || rb <= ra) return cudaSuccess;
    const size_t n = (size_t)(pb - pa) * (rb - ra);
    k_mosaic_acc<<<grid_for(n), kThreads, 0, st>>>(acc, wsum, C, width, (size_t)width * height,
                                                   tile, S, x0, y0, pa, ra, pb - pa, rb - ra, wrow,
                                                   wcol);
    return cudaGetLastError();
}

extern "C" cudaError_t mmk_mosaic_normalise(float *out, const float *acc, const float *wsum, int C,
                                            int64_t npix, float empty, cudaStream_t st) {
    if (C <= 0 || npix <= 0) return cudaSuccess;
    const size_t n = (size_t)C * (size_t)npix;
    k_mosaic_norm<<<grid_for(n), kThreads, 0, st>>>(out, acc, wsum, C, (size_t)npix, empty);
    return cudaGetLastError();
}
