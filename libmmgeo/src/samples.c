/* K samples of every window with distinct seeds, their mean and spread (mmgeo.h, "samples and
 * their spread"). A processor over another, so every run that takes a processor (mmgeo_run,
 * --gsd, --aoi, the region renderer of the GDAL driver) samples with the same window loop. */
#include <cpl_conv.h>
#include <cpl_string.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

uint64_t mmgeo_sample_seed(uint64_t base, int k) {
    if (k == 0) return base;
    uint64_t z = base + (uint64_t)k * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

int mmgeo_spread_path(const char *dst, char *out, size_t len) {
    const char *slash = strrchr(dst, '/');
    const char *base = slash ? slash + 1 : dst;
    const char *dot = strrchr(base, '.');
    if (!dot || dot == base) dot = base + strlen(base);
    const int n = snprintf(out, len, "%.*s.spread%s", (int)(dot - dst), dst, dot);
    return n < 0 || (size_t)n >= len ? MMGEO_ERROR : 0;
}

int mmgeo_sampler_init(mmgeo_sampler *s, const mmgeo_processor *inner, mmgeo_model_processor *model,
                       const mmgeo_samples_options *o, mmgeo_processor *out, char *err,
                       size_t errlen) {
    memset(s, 0, sizeof *s);
    if (o->samples < 2 || o->samples > MMGEO_MAX_SAMPLES)
        return mmgeo_fail(err, errlen, "a sampler needs from 2 to %d samples, not %d",
                          MMGEO_MAX_SAMPLES, o->samples);
    const int nt = inner->n_targets;
    if (nt < 1 || (o->spread == MMGEO_SPREAD_SIDECAR && 2 * nt > MMGEO_MAX_IO))
        return mmgeo_fail(err, errlen, "the spread of %d targets does not fit (at most %d)", nt,
                          MMGEO_MAX_IO);
    s->inner = *inner;
    s->model = model;
    s->samples = o->samples;
    s->spread = o->spread;
    *out = *inner;
    out->fn = mmgeo_process_samples;
    out->user = s;
    if (o->spread == MMGEO_SPREAD_BAND) {
        for (int j = 0; j < nt; j++)
            out->dst_channels[j] = inner->dst_channels[j] + 1;
    } else {
        out->n_targets = 2 * nt;
        for (int j = 0; j < nt; j++)
            out->dst_channels[nt + j] = inner->dst_channels[j];
    }
    return 0;
}

void mmgeo_sampler_free(mmgeo_sampler *s) {
    if (!s) return;
    free(s->buf);
    s->buf = NULL, s->buf_n = 0;
}

static inline float clip1(float v) {
    return v < -1.0f ? -1.0f : v > 1.0f ? 1.0f : v;
} /* NaN stays */

int mmgeo_process_samples(void *user, int n_tiles, const uint64_t *tile_ids,
                          const float *const *sources, float *const *targets, char *err,
                          size_t errlen) {
    mmgeo_sampler *s = user;
    const mmgeo_processor *in = &s->inner;
    const int nt = in->n_targets, K = s->samples;
    const size_t plane = (size_t)in->window * in->window;
    /* one sample's results and the M2 accumulators, per target: n_tiles x C x plane each */
    size_t per[MMGEO_MAX_IO], need = 0;
    for (int j = 0; j < nt; j++) {
        per[j] = (size_t)n_tiles * in->dst_channels[j] * plane;
        need += 2 * per[j];
    }
    if (s->buf_n < need) {
        float *b = realloc(s->buf, need * sizeof(float));
        if (!b) return mmgeo_fail(err, errlen, "out of memory");
        s->buf = b, s->buf_n = need;
    }
    float *sample[MMGEO_MAX_IO], *m2[MMGEO_MAX_IO];
    {
        float *p = s->buf;
        for (int j = 0; j < nt; j++)
            sample[j] = p, m2[j] = p + per[j], p += 2 * per[j];
    }
    for (int j = 0; j < nt; j++)
        memset(m2[j], 0, per[j] * sizeof(float));
    for (int k = 0; k < K; k++) {
        int rc;
        if (s->model) { /* sample k: the model with seed k (a copy of its parameters) */
            mmgeo_model_processor m = *s->model;
            m.params.seed = mmgeo_sample_seed(s->model->params.seed, k);
            rc = in->fn(&m, n_tiles, tile_ids, sources, sample, err, errlen);
        } else {
            rc = in->fn(in->user, n_tiles, tile_ids, sources, sample, err, errlen);
        }
        if (rc) return rc;
        /* Welford: mean_k = mean_{k-1} + (x - mean_{k-1}) / k, M2 += (x - mean_{k-1})(x - mean_k);
           the means live in the target buffers (the first C planes of each tile's results) */
        const float inv = 1.0f / (float)(k + 1);
        for (int j = 0; j < nt; j++) {
            const int C = in->dst_channels[j];
            const int Cout = s->spread == MMGEO_SPREAD_BAND ? C + 1 : C;
            for (int t = 0; t < n_tiles; t++) {
                float *mean = targets[j] + (size_t)t * Cout * plane;
                const float *x = sample[j] + (size_t)t * C * plane;
                float *q = m2[j] + (size_t)t * C * plane;
                const size_t n = (size_t)C * plane;
                if (k == 0) {
                    for (size_t i = 0; i < n; i++)
                        mean[i] = clip1(x[i]);
                    continue;
                }
                for (size_t i = 0; i < n; i++) {
                    const float v = clip1(x[i]), d = v - mean[i];
                    mean[i] += d * inv;
                    q[i] += d * (v - mean[i]);
                }
            }
        }
    }
    /* the spreads: sample standard deviations */
    const float norm = 1.0f / (float)(K - 1);
    for (int j = 0; j < nt; j++) {
        const int C = in->dst_channels[j];
        for (int t = 0; t < n_tiles; t++) {
            const float *q = m2[j] + (size_t)t * C * plane;
            if (s->spread == MMGEO_SPREAD_BAND) {
                float *sd = targets[j] + ((size_t)t * (C + 1) + C) * plane;
                for (size_t i = 0; i < plane; i++) {
                    float v = 0;
                    for (int c = 0; c < C; c++)
                        v += q[(size_t)c * plane + i];
                    sd[i] = sqrtf(fmaxf(v, 0.0f) * norm / (float)C);
                }
            } else {
                float *sd = targets[nt + j] + (size_t)t * C * plane;
                for (size_t i = 0; i < (size_t)C * plane; i++)
                    sd[i] = sqrtf(fmaxf(q[i], 0.0f) * norm);
            }
        }
    }
    return 0;
}

char **mmgeo_samples_metadata(char **md, const mmgeo_samples_options *o, const uint64_t *seed,
                              int spread_band, const char *sidecar) {
    if (o->samples < 2) return md;
    md = CSLSetNameValue(md, "MM_SAMPLES", CPLSPrintf("%d", o->samples));
    if (seed) { /* the seeds of the samples: each is the MM_SEED of a run that gives it */
        char *list = CPLStrdup("");
        for (int k = 0; k < o->samples; k++) {
            char *l = CPLStrdup(CPLSPrintf("%s%s%llu", list, k ? "," : "",
                                           (unsigned long long)mmgeo_sample_seed(*seed, k)));
            CPLFree(list);
            list = l;
        }
        md = CSLSetNameValue(md, "MM_SAMPLE_SEEDS", list);
        CPLFree(list);
    }
    md = CSLSetNameValue(md, "MM_SAMPLE_STAT",
                         "mean of the samples (each clipped to the output range); spread: sample "
                         "standard deviation, in the output's units");
    if (o->spread == MMGEO_SPREAD_BAND)
        md = CSLSetNameValue(md, "MM_SPREAD", CPLSPrintf("band %d", spread_band));
    else
        md = CSLSetNameValue(md, "MM_SPREAD", CPLSPrintf("sidecar %s", sidecar ? sidecar : ""));
    return md;
}
