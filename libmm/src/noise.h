/* Counter-based noise: Philox-4x32-10 + Box-Muller (docs/architecture.md section 6). */
#ifndef MM_NOISE_H
#define MM_NOISE_H
#include <stddef.h>
#include <stdint.h>

void mm_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);
/* n standard normal floats for (seed, tile, purpose, modality, step), elements 0..n-1. */
void mm_noise_fill(uint64_t seed, uint64_t tile_id, int purpose, int modality, int step, float *out,
                   size_t n);
#endif
