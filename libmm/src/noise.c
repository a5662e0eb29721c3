/*
 * Noise addressed by (seed, tile id, purpose, modality, step, element) rather than drawn from a
 * stream: a tile gets the same noise whatever it is batched with, the thread count, the order
 * of processing or the backend. Box-Muller runs in double and rounds once to float, so another
 * backend whose double log/sin/cos are faithfully rounded reproduces the bits.
 */
#include "noise.h"

#include <math.h>

#include "mm.h"

static inline void mulhilo(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo) {
    uint64_t p = (uint64_t)a * b;
    *hi = (uint32_t)(p >> 32);
    *lo = (uint32_t)p;
}

void mm_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3], k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        uint32_t hi0, lo0, hi1, lo1;
        mulhilo(0xD2511F53u, c0, &hi0, &lo0);
        mulhilo(0xCD9E8D57u, c2, &hi1, &lo1);
        uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
        c0 = n0;
        c1 = lo1;
        c2 = n2;
        c3 = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

static void box_muller(uint32_t a, uint32_t b, float *z0, float *z1) {
    const double two32 = 4294967296.0;
    double u1 = ((double)a + 1.0) / two32; /* (0, 1]: log is finite */
    double u2 = (double)b / two32;
    double r = sqrt(-2.0 * log(u1));
    double th = 6.283185307179586476925286766559 * u2;
    *z0 = (float)(r * cos(th));
    *z1 = (float)(r * sin(th));
}

void mm_noise_fill(uint64_t seed, uint64_t tile_id, int purpose, int modality, int step, float *out,
                   size_t n) {
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    const uint32_t stream = ((uint32_t)purpose << 24) | ((uint32_t)(modality & 0xff) << 16) |
                            ((uint32_t)step & 0xffffu);
    for (size_t g = 0; g * 4 < n; g++) {
        const uint32_t ctr[4] = {(uint32_t)g, stream, (uint32_t)tile_id, (uint32_t)(tile_id >> 32)};
        uint32_t w[4];
        float z[4];
        mm_philox4x32_10(ctr, key, w);
        box_muller(w[0], w[1], &z[0], &z[1]);
        box_muller(w[2], w[3], &z[2], &z[3]);
        for (size_t l = 0; l < 4 && g * 4 + l < n; l++)
            out[g * 4 + l] = z[l];
    }
}

void mm_noise(uint64_t seed, uint64_t tile_id, mm_noise_purpose purpose, int modality, int step,
              float *out, size_t n) {
    mm_noise_fill(seed, tile_id, (int)purpose, modality, step, out, n);
}
