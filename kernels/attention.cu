/*
 * Fused multi-head self-attention (no mask) in one pass over the keys with an online softmax
 * (FlashAttention): scores never leave the chip. Layout as backend.h: qkv [n_seq*S, 3H] with
 * [q | k | v] and head h at columns h*hd; out [n_seq*S, H].
 *
 * Two kernels, both one thread block per (query tile, head, sequence), keys in tiles in order:
 *  - fp32: 4 threads per query row (a quad), each holding hd/4 of q and of the accumulator
 *    (dimensions d with d % 4 = its lane in the quad); the
 *    scores of a 32-key tile are quad-reduced dot products, then one rescale per tile.
 *  - bf16 (tensor cores, WMMA 16x16x16, fp32 accumulation): 4 warps, 16 query rows each;
 *    Q, K, V rounded to bf16 on load (round to nearest even, as the CPU backend), scores fp32,
 *    probabilities exp(s - running max) rounded to bf16 for the P.V product (as the CPU
 *    backend), the running sum and the accumulator fp32, one division per row at the end.
 * A row's result depends only on its own sequence and head: nothing is shared across blocks,
 * so the determinism contract holds whatever n_seq is.
 */
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <mma.h>
#include <stdint.h>

#include "mm_kernels.h"

namespace {

__device__ __forceinline__ __nv_bfloat16 to_bf16(float f) {
    /* bit-exact with the CPU backend's conversion (NaN kept quiet) */
    uint32_t u = __float_as_uint(f);
    uint16_t h = ((u & 0x7fffffffu) > 0x7f800000u)
                     ? (uint16_t)((u >> 16) | 0x40u)
                     : (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    __nv_bfloat16_raw raw;
    raw.x = h;
    return __nv_bfloat16(raw);
}

/* ---- fp32 ------------------------------------------------------------------------------------ */

constexpr int F_ROWS = 32; /* query rows per block (128 threads) */
constexpr int F_KEYS = 32; /* keys per tile */

template <int D>
__global__ void __launch_bounds__(128)
    k_flash_f32(float *out, const float *qkv, int S, int nh, float scale) {
    constexpr int DQ = D / 4;
    __shared__ float Ks[F_KEYS][D + 1];
    __shared__ float Vs[F_KEYS][D + 1];
    const int H = nh * D, ld = 3 * H;
    const int seq = blockIdx.y / nh, h = blockIdx.y % nh;
    const int row = blockIdx.x * F_ROWS + threadIdx.x / 4, part = threadIdx.x % 4;
    const float *base = qkv + (int64_t)seq * S * ld;
    const bool valid = row < S;
    float q[DQ], o[DQ];
#pragma unroll
    for (int k = 0; k < DQ; k++) {
        q[k] = valid ? base[(int64_t)row * ld + h * D + k * 4 + part] : 0.0f;
        o[k] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    for (int j0 = 0; j0 < S; j0 += F_KEYS) {
        const int nk = S - j0 < F_KEYS ? S - j0 : F_KEYS;
        __syncthreads();
        for (int e = threadIdx.x; e < F_KEYS * D; e += blockDim.x) {
            const int j = e / D, d = e % D;
            const bool in = j < nk;
            const float *kr = base + (int64_t)(j0 + j) * ld + h * D + d;
            Ks[j][d] = in ? kr[H] : 0.0f;
            Vs[j][d] = in ? kr[2 * H] : 0.0f;
        }
        __syncthreads();
        float s[F_KEYS];
        float tmax = -INFINITY;
#pragma unroll
        for (int j = 0; j < F_KEYS; j++) {
            float acc = 0.0f;
#pragma unroll
            for (int k = 0; k < DQ; k++)
                acc += q[k] * Ks[j][k * 4 + part];
            acc += __shfl_xor_sync(0xffffffffu, acc, 1);
            acc += __shfl_xor_sync(0xffffffffu, acc, 2);
            s[j] = j < nk ? acc * scale : -INFINITY;
            tmax = fmaxf(tmax, s[j]);
        }
        const float mn = fmaxf(m, tmax);
        const float corr = expf(m - mn); /* 0 on the first tile (m = -inf) */
        l *= corr;
#pragma unroll
        for (int k = 0; k < DQ; k++)
            o[k] *= corr;
#pragma unroll
        for (int j = 0; j < F_KEYS; j++) {
            const float p = expf(s[j] - mn); /* 0 for keys past the end */
            l += p;
#pragma unroll
            for (int k = 0; k < DQ; k++)
                o[k] += p * Vs[j][k * 4 + part];
        }
        m = mn;
    }
    if (valid) {
        float *dst = out + ((int64_t)seq * S + row) * H + h * D + part;
        const float inv = 1.0f / l;
#pragma unroll
        for (int k = 0; k < DQ; k++)
            dst[k * 4] = o[k] * inv;
    }
}

/* ---- bf16 on tensor cores ------------------------------------------------------------------- */

constexpr int B_ROWS = 64; /* query rows per block: 4 warps x 16 */
constexpr int B_KEYS = 64; /* keys per tile */

template <int D> struct wmma_smem {
    static constexpr int LQ = D + 8;      /* bf16 row stride of Q, K, V tiles */
    static constexpr int LS = B_KEYS + 4; /* fp32 scores */
    static constexpr int LP = B_KEYS + 8; /* bf16 probabilities */
    static constexpr int LO = D + 4;      /* fp32 accumulator */
    static constexpr size_t q = (size_t)B_ROWS * LQ * 2, kv = (size_t)B_KEYS * LQ * 2;
    static constexpr size_t s = (size_t)B_ROWS * LS * 4, p = (size_t)B_ROWS * LP * 2;
    static constexpr size_t o = (size_t)B_ROWS * LO * 4;
    static constexpr size_t bytes = q + 2 * kv + s + p + o;
};

template <int D>
__global__ void __launch_bounds__(128)
    k_flash_wmma(float *out, const float *qkv, int S, int nh, float scale) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    using namespace nvcuda;
    using L = wmma_smem<D>;
    extern __shared__ __align__(128) unsigned char smem[];
    __nv_bfloat16 *Qs = (__nv_bfloat16 *)smem;
    __nv_bfloat16 *Ks = (__nv_bfloat16 *)(smem + L::q);
    __nv_bfloat16 *Vs = (__nv_bfloat16 *)(smem + L::q + L::kv);
    float *Ss = (float *)(smem + L::q + 2 * L::kv);
    __nv_bfloat16 *Ps = (__nv_bfloat16 *)(smem + L::q + 2 * L::kv + L::s);
    float *Os = (float *)(smem + L::q + 2 * L::kv + L::s + L::p);

    const int H = nh * D, ld = 3 * H;
    const int seq = blockIdx.y / nh, h = blockIdx.y % nh;
    const int q0 = blockIdx.x * B_ROWS;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const float *base = qkv + (int64_t)seq * S * ld + h * D;

    for (int e = threadIdx.x; e < B_ROWS * D; e += blockDim.x) {
        const int r = e / D, d = e % D;
        Qs[r * L::LQ + d] = to_bf16(q0 + r < S ? base[(int64_t)(q0 + r) * ld + d] : 0.0f);
    }
    for (int e = threadIdx.x; e < B_ROWS * L::LO; e += blockDim.x)
        Os[e] = 0.0f;

    /* softmax state: lane handles row (lane >> 1) of its warp's 16, half (lane & 1) of the keys
     * and of the accumulator columns */
    const int sr = lane >> 1, half = lane & 1;
    float *Sw = Ss + warp * 16 * L::LS;
    __nv_bfloat16 *Pw = Ps + warp * 16 * L::LP;
    float *Ow = Os + warp * 16 * L::LO;
    const __nv_bfloat16 *Qw = Qs + warp * 16 * L::LQ;
    float m = -INFINITY, l = 0.0f;

    for (int j0 = 0; j0 < S; j0 += B_KEYS) {
        __syncthreads(); /* previous tile's K, V no longer read */
        for (int e = threadIdx.x; e < B_KEYS * D; e += blockDim.x) {
            const int j = e / D, d = e % D;
            const bool in = j0 + j < S;
            const float *kr = base + (int64_t)(j0 + j) * ld + d;
            Ks[j * L::LQ + d] = to_bf16(in ? kr[H] : 0.0f);
            Vs[j * L::LQ + d] = to_bf16(in ? kr[2 * H] : 0.0f);
        }
        __syncthreads();
        /* scores: 16 x 64 per warp */
#pragma unroll
        for (int n = 0; n < B_KEYS / 16; n++) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
            wmma::fill_fragment(acc, 0.0f);
#pragma unroll
            for (int kk = 0; kk < D / 16; kk++) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> a;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> b;
                wmma::load_matrix_sync(a, Qw + kk * 16, L::LQ);
                wmma::load_matrix_sync(b, Ks + n * 16 * L::LQ + kk * 16, L::LQ);
                wmma::mma_sync(acc, a, b, acc);
            }
            wmma::store_matrix_sync(Sw + n * 16, acc, L::LS, wmma::mem_row_major);
        }
        __syncwarp();
        /* online softmax of the warp's 16 rows */
        const float *srow = Sw + sr * L::LS + half * 32;
        float tmax = -INFINITY;
        for (int c = 0; c < 32; c++) {
            const int j = j0 + half * 32 + c;
            if (j < S) tmax = fmaxf(tmax, srow[c] * scale);
        }
        tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 1));
        const float mn = fmaxf(m, tmax);
        const float corr = expf(m - mn);
        float psum = 0.0f;
        __nv_bfloat16 *prow = Pw + sr * L::LP + half * 32;
        for (int c = 0; c < 32; c++) {
            const int j = j0 + half * 32 + c;
            const float p = j < S ? expf(srow[c] * scale - mn) : 0.0f;
            psum += p;
            prow[c] = to_bf16(p);
        }
        psum += __shfl_xor_sync(0xffffffffu, psum, 1);
        l = l * corr + psum;
        m = mn;
        float *orow = Ow + sr * L::LO + half * (D / 2);
        for (int c = 0; c < D / 2; c++)
            orow[c] *= corr;
        __syncwarp();
        /* O += P V: 16 x D per warp */
#pragma unroll
        for (int n = 0; n < D / 16; n++) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
            wmma::load_matrix_sync(acc, Ow + n * 16, L::LO, wmma::mem_row_major);
#pragma unroll
            for (int kk = 0; kk < B_KEYS / 16; kk++) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> a;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> b;
                wmma::load_matrix_sync(a, Pw + kk * 16, L::LP);
                wmma::load_matrix_sync(b, Vs + kk * 16 * L::LQ + n * 16, L::LQ);
                wmma::mma_sync(acc, a, b, acc);
            }
            wmma::store_matrix_sync(Ow + n * 16, acc, L::LO, wmma::mem_row_major);
        }
        __syncwarp();
    }
    const int row = q0 + warp * 16 + sr;
    if (row < S) {
        const float inv = 1.0f / l;
        const float *orow = Ow + sr * L::LO + half * (D / 2);
        float *dst = out + ((int64_t)seq * S + row) * H + h * D + half * (D / 2);
        for (int c = 0; c < D / 2; c++)
            dst[c] = orow[c] * inv;
    }
#else
    (void)out, (void)qkv, (void)S, (void)nh, (void)scale;
#endif
}

template <int D>
cudaError_t launch_f32(float *out, const float *qkv, int n_seq, int S, int nh, cudaStream_t st) {
    dim3 grid((unsigned)((S + F_ROWS - 1) / F_ROWS), (unsigned)(n_seq * nh));
    k_flash_f32<D><<<grid, 128, 0, st>>>(out, qkv, S, nh, 1.0f / sqrtf((float)D));
    return cudaGetLastError();
}

template <int D>
cudaError_t launch_wmma(float *out, const float *qkv, int n_seq, int S, int nh, cudaStream_t st) {
    const size_t bytes = wmma_smem<D>::bytes;
    /* per device and thread, cheap: done on every launch rather than cached in a static */
    cudaError_t e = cudaFuncSetAttribute(k_flash_wmma<D>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes);
    if (e != cudaSuccess) return e;
    dim3 grid((unsigned)((S + B_ROWS - 1) / B_ROWS), (unsigned)(n_seq * nh));
    k_flash_wmma<D><<<grid, 128, bytes, st>>>(out, qkv, S, nh, 1.0f / sqrtf((float)D));
    return cudaGetLastError();
}

} // namespace

extern "C" cudaError_t mmk_attention_flash(float *out, const float *qkv, int n_seq, int S, int nh,
                                           int hd, int bf16, cudaStream_t st) {
    if (n_seq <= 0 || S <= 0 || nh <= 0) return cudaSuccess;
    if ((int64_t)n_seq * nh > 65535) return cudaErrorNotSupported;
    if (bf16) {
        switch (hd) {
        case 16: return launch_wmma<16>(out, qkv, n_seq, S, nh, st);
        case 32: return launch_wmma<32>(out, qkv, n_seq, S, nh, st);
        case 64: return launch_wmma<64>(out, qkv, n_seq, S, nh, st);
        case 128: return launch_wmma<128>(out, qkv, n_seq, S, nh, st);
        default: return cudaErrorNotSupported;
        }
    }
    switch (hd) {
    case 16: return launch_f32<16>(out, qkv, n_seq, S, nh, st);
    case 32: return launch_f32<32>(out, qkv, n_seq, S, nh, st);
    case 64: return launch_f32<64>(out, qkv, n_seq, S, nh, st);
    case 128: return launch_f32<128>(out, qkv, n_seq, S, nh, st);
    default: return cudaErrorNotSupported;
    }
}

extern "C" int mmk_attention_flash_supports(int n_seq, int nh, int hd) {
    return (int64_t)n_seq * nh <= 65535 && (hd == 16 || hd == 32 || hd == 64 || hd == 128);
}
