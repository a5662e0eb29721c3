/*
 * Launchers of the CUDA backend's kernels (kernels.cu, attention.cu), callable from C
 * (backend_cuda.c). Every launcher enqueues on `st` and returns the launch status
 * (cudaGetLastError); pointers are device memory. Index conventions are those of the CPU
 * backend (libmm/src/backend_cpu.c), op by op.
 */
#ifndef MM_KERNELS_H
#define MM_KERNELS_H

#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A tiny kernel: fails with cudaErrorNoKernelImageForDevice when the build has no code for
 * the device's architecture. */
cudaError_t mmk_probe(cudaStream_t st);

/* fp32 -> bf16 bits, round to nearest even (NaN kept quiet), as the CPU backend does. */
cudaError_t mmk_to_bf16(uint16_t *dst, const float *src, size_t n, cudaStream_t st);
/* y[r, j] = act(y[r, j] + bias[j]) for rows of width N (bias may be NULL). */
cudaError_t mmk_bias_act(float *y, int64_t rows, int64_t N, const float *bias, int act,
                         cudaStream_t st);
/* y[img, c, p] += bias[c] for n images of C channels of P pixels. */
cudaError_t mmk_channel_bias(float *y, int n, int64_t C, int64_t P, const float *bias,
                             cudaStream_t st);

cudaError_t mmk_layernorm_modulate(float *y, const float *x, int64_t rows, int H, float eps,
                                   mm_modulation shift, mm_modulation scale, cudaStream_t st);
cudaError_t mmk_layernorm_affine(float *y, const float *x, int64_t rows, int H, float eps,
                                 const float *w, const float *bias, cudaStream_t st);
cudaError_t mmk_gated_add(float *x, const float *y, int64_t rows, int H, mm_modulation gate,
                          cudaStream_t st);
cudaError_t mmk_group_norm(float *y, const float *x, int n, int c, int64_t hw, int groups,
                           float eps, const float *gamma, const float *beta, int silu,
                           cudaStream_t st);
cudaError_t mmk_silu(float *y, const float *x, size_t n, cudaStream_t st);
cudaError_t mmk_axpby(float *y, float a, const float *x, float c, size_t n, cudaStream_t st);
cudaError_t mmk_affine(float *y, const float *x, float a, float c, size_t n, cudaStream_t st);
cudaError_t mmk_add_grouped(float *x, int64_t rows, int H, mm_modulation v, cudaStream_t st);
cudaError_t mmk_add_rows(float *x, const float *v, int64_t rows, int64_t period, int H,
                         cudaStream_t st);
cudaError_t mmk_upsample2x(float *y, const float *x, int n, int c, int h, int w, cudaStream_t st);
cudaError_t mmk_transpose(float *y, const float *x, int n, int64_t rows, int64_t cols,
                          cudaStream_t st);
cudaError_t mmk_patchify(float *y, const float *x, int n, int C, int L, int p, cudaStream_t st);
cudaError_t mmk_unpatchify(float *y, const float *x, int n, int C, int L, int p, cudaStream_t st);
/* The project's noise (libmm/src/noise.c), bit for bit: Philox-4x32-10 in 32-bit integer
 * arithmetic, Box-Muller in double, one rounding to float. */
cudaError_t mmk_noise(float *y, uint64_t seed, uint64_t tile_id, int purpose, int modality,
                      int step, size_t n, cudaStream_t st);
/* cin == cout (copy), cin == 1 (repeat) or cout == 1 (average); checked by the caller. */
cudaError_t mmk_channels_adapt(float *y, const float *x, int n, int cin, int cout, int64_t hw,
                               cudaStream_t st);

/* Convolution helpers (one image): zero padding to [c, h+pt+pb, w+pl+pr]; im2col of output
 * pixels [p0, p0+pb) into col[cin*k*k][pb] (row r = (ci, ky, kx), the weight layout). */
cudaError_t mmk_pad2d(float *y, const float *x, int c, int h, int w, const int pad[4],
                      cudaStream_t st);
cudaError_t mmk_im2col(float *col, const float *x, int cin, int h, int w, int k, int stride,
                       const int pad[4], int ow, int64_t p0, int64_t pb, cudaStream_t st);

/* Generic attention path: rows of S scores -> softmax(scale * row) in place (fp32). */
cudaError_t mmk_softmax_rows(float *s, int64_t rows, int S, float scale, cudaStream_t st);

/* Fused attention over qkv [n_seq*S, 3*nh*hd] -> out [n_seq*S, nh*hd] (backend.h layout).
 * bf16 != 0: Q, K, V and the probabilities rounded to bf16, products on tensor cores with fp32
 * accumulation; otherwise fp32 throughout. Returns cudaErrorNotSupported (nothing launched)
 * for head dimensions it has no kernel for (16, 32, 64, 128 are supported). */
cudaError_t mmk_attention_flash(float *out, const float *qkv, int n_seq, int S, int nh, int hd,
                                int bf16, cudaStream_t st);

/* 1 when mmk_attention_flash has a kernel for this call (else it returns cudaErrorNotSupported). */
int mmk_attention_flash_supports(int n_seq, int nh, int hd);

/* Mosaic (backend.h, mosaic_accumulate) of ONE window (C x S x S) at strip column x0, row y0:
 * w = wrow[py] * wcol[px]; wsum += w; acc[c] += w * v, every operation rounded on its own (no
 * fused multiply-add), as the CPU backend computes it. */
cudaError_t mmk_mosaic_accumulate(float *acc, float *wsum, int C, int width, int height,
                                  const float *tile, int S, int x0, int y0, const float *wrow,
                                  const float *wcol, cudaStream_t st);
/* out[c, k] = wsum[k] > 0 ? acc[c, k] / wsum[k] (IEEE division) : empty. */
cudaError_t mmk_mosaic_normalise(float *out, const float *acc, const float *wsum, int C,
                                 int64_t npix, float empty, cudaStream_t st);

#ifdef __cplusplus
}
#endif
#endif
