/* Seamless mode: MultiDiffusion-style latent fusion at every model evaluation (see mmgeo.h). */
#include <cpl_conv.h>
#include <gdal.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct {
    const mmgeo_job *job;
    mmgeo_model_processor *mp;
    int S, L, f, C, Ol, ns, nt;
    size_t lat;             /* C L L */
    int nx, ny, *ox, *oy;   /* pixel origins of the grid */
    int kxa, kxb, kya, kyb; /* processed windows */
    int cx0, cy0, CW, CH;   /* the canvas: latent rectangle (absolute origin, size) */
    float *x[MMGEO_MAX_IO]; /* canvas per target: C x CH x CW */
    float *acc[MMGEO_MAX_IO], *wacc, *wl;
    float *slat;     /* per processed window: ns x lat clean latents, then ns x lat
                        unconditional noise (guided) */
    uint8_t *active; /* per processed window */
    int guided;
    float *win_x, *win_v, *tbuf; /* batch buffers */
    uint64_t *ids;
    int *slot;
    double done, total; /* progress over the model evaluations */
} seam;

#define WIDX(s, kx, ky) (((ky) - (s)->kya) * ((s)->kxb - (s)->kxa + 1) + ((kx) - (s)->kxa))

static double time_at(const mm_sample_params *p, int i) {
    const double tau = 1.0 - (double)i / p->steps, sh = p->time_shift;
    return sh * tau / (1.0 + (sh - 1.0) * tau);
}

/* The global latent noise field of a target over the canvas (C x CH x CW). */
static int global_noise(seam *s, float *dst, int purpose, int modality, int step) {
    const size_t row_n = (size_t)(s->cx0 + s->CW) * s->C;
    float *row = malloc(row_n * sizeof *row);
    if (!row) return 1;
    for (int y = 0; y < s->CH; y++) {
        const uint64_t id = (1ull << 63) | (uint64_t)(uint32_t)(s->cy0 + y);
        mm_noise(s->mp->params.seed, id, (mm_noise_purpose)purpose, modality, step, row, row_n);
        for (int c = 0; c < s->C; c++)
            for (int x = 0; x < s->CW; x++)
                dst[((size_t)c * s->CH + y) * s->CW + x] = row[(size_t)(s->cx0 + x) * s->C + c];
    }
    free(row);
    return 0;
}

/* v (per target, canvas) = the fused guided velocity of the canvas state xs at time t. */
static int fused_velocity(seam *s, float *const *xs, double t, float *const *v, char *err,
                          size_t errlen) {
    const mmgeo_job *job = s->job;
    mmgeo_model_processor *mp = s->mp;
    const int B = job->batch > 0 ? job->batch : 1, L = s->L, C = s->C;
    const size_t area = (size_t)s->CH * s->CW;
    for (int j = 0; j < s->nt; j++)
        memset(s->acc[j], 0, sizeof(float) * C * area);
    memset(s->wacc, 0, sizeof(float) * area);
    for (int ky = s->kya; ky <= s->kyb; ky++)
        for (int kx = s->kxa; kx <= s->kxb;) {
            int n = 0;
            for (; n < B && kx <= s->kxb; kx++)
                if (s->active[WIDX(s, kx, ky)])
                    s->slot[n] = kx, s->ids[n] = mmgeo_tile_id(kx, ky), n++;
            if (!n) continue;
            const int B2 = s->guided ? 2 * n : n;
            /* model inputs: sources (clean at t = 0, then noise at t = 1), targets at t */
            float *src_in = s->win_x, *tgt_in = s->win_x + (size_t)s->ns * B2 * s->lat;
            for (int b = 0; b < n; b++) {
                const float *sl = s->slat + (size_t)WIDX(s, s->slot[b], ky) * 2 * s->ns * s->lat;
                for (int i = 0; i < s->ns; i++) {
                    memcpy(src_in + ((size_t)i * B2 + b) * s->lat, sl + (size_t)i * s->lat,
                           sizeof(float) * s->lat);
                    if (s->guided)
                        memcpy(src_in + ((size_t)i * B2 + n + b) * s->lat,
                               sl + (size_t)(s->ns + i) * s->lat, sizeof(float) * s->lat);
                }
                const int lx = s->ox[s->slot[b]] / s->f - s->cx0, ly = s->oy[ky] / s->f - s->cy0;
                for (int j = 0; j < s->nt; j++) {
                    float *d = tgt_in + ((size_t)j * B2 + b) * s->lat;
                    for (int c = 0; c < C; c++)
                        for (int y = 0; y < L; y++)
                            memcpy(d + ((size_t)c * L + y) * L,
                                   xs[j] + ((size_t)c * s->CH + ly + y) * s->CW + lx,
                                   sizeof(float) * L);
                    if (s->guided)
                        memcpy(tgt_in + ((size_t)j * B2 + n + b) * s->lat, d,
                               sizeof(float) * s->lat);
                }
            }
            float *tsrc = s->tbuf, *ttgt = s->tbuf + B2;
            for (int b = 0; b < B2; b++)
                tsrc[b] = b < n ? 0.0f : 1.0f, ttgt[b] = (float)t;
            mm_partition parts[2 * MMGEO_MAX_IO];
            int tparts[MMGEO_MAX_IO];
            float *vout[MMGEO_MAX_IO];
            for (int i = 0; i < s->ns; i++)
                parts[i] =
                    (mm_partition){mp->source_mods[i], src_in + (size_t)i * B2 * s->lat, tsrc};
            for (int j = 0; j < s->nt; j++) {
                parts[s->ns + j] =
                    (mm_partition){mp->target_mods[j], tgt_in + (size_t)j * B2 * s->lat, ttgt};
                tparts[j] = s->ns + j;
                vout[j] = s->win_v + (size_t)j * B2 * s->lat;
            }
            if (mm_predict(mp->ctx, B2, s->ns + s->nt, parts, s->nt, tparts, vout, NULL) != MM_OK)
                return mmgeo_fail(err, errlen, "%s", mm_context_errmsg(mp->ctx));
            const float w = mp->params.guidance;
            for (int b = 0; b < n; b++) {
                const int lx = s->ox[s->slot[b]] / s->f - s->cx0, ly = s->oy[ky] / s->f - s->cy0;
                for (int y = 0; y < L; y++) {
                    float *wa = s->wacc + (size_t)(ly + y) * s->CW + lx;
                    for (int x = 0; x < L; x++)
                        wa[x] += s->wl[y] * s->wl[x];
                }
                for (int j = 0; j < s->nt; j++) {
                    const float *vc = vout[j] + (size_t)b * s->lat;
                    const float *vu = vout[j] + (size_t)(n + b) * s->lat;
                    for (int c = 0; c < C; c++)
                        for (int y = 0; y < L; y++) {
                            float *a = s->acc[j] + ((size_t)c * s->CH + ly + y) * s->CW + lx;
                            const size_t o = ((size_t)c * L + y) * L;
                            for (int x = 0; x < L; x++) {
                                const float vv =
                                    s->guided ? w * vc[o + x] + (1.0f - w) * vu[o + x] : vc[o + x];
                                a[x] += s->wl[y] * s->wl[x] * vv;
                            }
                        }
                }
            }
            s->done += n;
            if (job->progress && !job->progress(0.9 * s->done / s->total, NULL, job->progress_arg))
                return mmgeo_fail(err, errlen, "interrupted"), MMGEO_INTERRUPTED;
        }
    for (int j = 0; j < s->nt; j++)
        for (int c = 0; c < C; c++)
            for (size_t k = 0; k < area; k++)
                v[j][(size_t)c * area + k] =
                    s->wacc[k] > 0 ? s->acc[j][(size_t)c * area + k] / s->wacc[k] : 0.0f;
    return 0;
}

/* The decode processor of the second phase: the canvas under each window, decoded. */
static int decode_fn(void *user, int n_tiles, const uint64_t *tile_ids, const float *const *sources,
                     float *const *targets, char *err, size_t errlen) {
    (void)sources;
    seam *s = user;
    const int L = s->L;
    for (int j = 0; j < s->nt; j++) {
        for (int b = 0; b < n_tiles; b++) {
            const int kx = (int)(uint32_t)tile_ids[b], ky = (int)(tile_ids[b] >> 32);
            const int lx = s->ox[kx] / s->f - s->cx0, ly = s->oy[ky] / s->f - s->cy0;
            if (kx < s->kxa || kx > s->kxb || ky < s->kya || ky > s->kyb)
                return mmgeo_fail(err, errlen, "internal: window %d,%d outside the canvas", kx, ky);
            for (int c = 0; c < s->C; c++)
                for (int y = 0; y < L; y++)
                    memcpy(s->win_x + (size_t)b * s->lat + ((size_t)c * L + y) * L,
                           s->x[j] + ((size_t)c * s->CH + ly + y) * s->CW + lx, sizeof(float) * L);
        }
        if (mm_vae_decode(s->mp->ctx, s->mp->target_mods[j], n_tiles, s->win_x, targets[j]) !=
            MM_OK)
            return mmgeo_fail(err, errlen, "%s", mm_context_errmsg(s->mp->ctx));
    }
    return 0;
}

int mmgeo_run_seamless(const mmgeo_job *job, mmgeo_model_processor *mp, char *err, size_t errlen) {
    if (!mp || !mp->ctx || !mp->model)
        return mmgeo_fail(err, errlen, "the seamless mode needs the model processor and its model");
    if (mmgeo_check_targets(job, err, errlen) || mmgeo_check_job_creation_options(job, err, errlen))
        return MMGEO_ERROR;
    const mm_model *m = mp->model;
    seam s;
    memset(&s, 0, sizeof s);
    s.job = job, s.mp = mp;
    s.S = mm_model_image_size(m), s.L = mm_model_latent_size(m), s.C = mm_model_latent_channels(m);
    s.ns = job->n_sources, s.nt = job->n_targets;
    if (s.L < 1 || s.S % s.L)
        return mmgeo_fail(err, errlen,
                          "the model's image size %d is not a multiple of its latent "
                          "size %d",
                          s.S, s.L);
    if (s.ns != mp->n_sources || s.nt != mp->n_targets || s.ns < 0 || s.nt < 1 ||
        s.ns > MMGEO_MAX_IO || s.nt > MMGEO_MAX_IO)
        return mmgeo_fail(err, errlen,
                          "the run and the model processor disagree on sources and "
                          "targets");
    s.f = s.S / s.L;
    const int S = s.S, L = s.L, f = s.f;
    int O = job->overlap < 0 ? S / 4 : job->overlap;
    O = O / f * f;
    if (O >= S)
        return mmgeo_fail(err, errlen, "the overlap (%d) must be less than the window (%d)", O, S);
    s.Ol = O / f;
    s.lat = (size_t)s.C * L * L;
    s.guided = s.ns > 0 && mp->params.guidance != 1.0f;
    if (mp->params.joint_guidance)
        return mmgeo_fail(err, errlen, "joint guidance is not available in the seamless mode");
    const int B = job->batch > 0 ? job->batch : 1;
    const mm_sample_params *p = &mp->params;
    if (p->steps < 1) return mmgeo_fail(err, errlen, "steps must be at least 1");

    int rc = MMGEO_ERROR;
    mmgeo_src src[MMGEO_MAX_IO];
    memset(src, 0, sizeof src);
    float *img[MMGEO_MAX_IO] = {0}, *v[MMGEO_MAX_IO] = {0}, *x2[MMGEO_MAX_IO] = {0},
          *v2[MMGEO_MAX_IO] = {0};
    uint8_t *tv = NULL, *mraw = NULL;
    double *raw = NULL;
    void *scaled = NULL;
    int channels[MMGEO_MAX_IO];
    for (int i = 0; i < s.ns; i++) {
        channels[i] = mm_model_modality_channels(m, mp->source_mods[i]);
        if (mmgeo_open_source(&job->sources[i], channels[i], &src[i], err, errlen)) goto out;
    }
    if (s.ns == 0 && (job->grid.width < 1 || job->grid.height < 1)) {
        mmgeo_fail(err, errlen, "a run without sources needs an output grid");
        goto out;
    }
    const int W = s.ns ? GDALGetRasterXSize(src[0].ds) : job->grid.width;
    const int H = s.ns ? GDALGetRasterYSize(src[0].ds) : job->grid.height;
    for (int i = 1; i < s.ns; i++)
        if (GDALGetRasterXSize(src[i].ds) != W || GDALGetRasterYSize(src[i].ds) != H) {
            mmgeo_fail(err, errlen, "the sources must share one grid ('%s' is not %dx%d)",
                       job->sources[i].path, W, H);
            goto out;
        }
    int x0 = 0, y0 = 0, x1 = W, y1 = H;
    if (job->has_srcwin) {
        x0 = job->srcwin[0], y0 = job->srcwin[1], x1 = x0 + job->srcwin[2],
        y1 = y0 + job->srcwin[3];
        if (x0 < 0 || y0 < 0 || x1 <= x0 || y1 <= y0 || x1 > W || y1 > H) {
            mmgeo_fail(err, errlen, "-srcwin %d %d %d %d is not inside the %dx%d raster", x0, y0,
                       x1 - x0, y1 - y0, W, H);
            goto out;
        }
    }
    s.nx = mmgeo_grid_origins_aligned(W, S, O, f, NULL, 0);
    s.ny = mmgeo_grid_origins_aligned(H, S, O, f, NULL, 0);
    s.ox = malloc(sizeof(int) * (size_t)s.nx);
    s.oy = malloc(sizeof(int) * (size_t)s.ny);
    if (!s.ox || !s.oy) goto nomem;
    mmgeo_grid_origins_aligned(W, S, O, f, s.ox, s.nx);
    mmgeo_grid_origins_aligned(H, S, O, f, s.oy, s.ny);
    /* the windows touching the processed extent, plus the margin that makes them exact */
    int kxa = 0, kxb = s.nx - 1, kya = 0, kyb = s.ny - 1;
    while (s.ox[kxa] + S <= x0)
        kxa++;
    while (s.ox[kxb] >= x1)
        kxb--;
    while (s.oy[kya] + S <= y0)
        kya++;
    while (s.oy[kyb] >= y1)
        kyb--;
    const int evals = p->sampler == MM_SAMPLER_HEUN ? 2 * p->steps : p->steps;
    const int d = (L + (L - s.Ol) - 1) / (L - s.Ol); /* windows covering a pixel, per axis */
    const long margin = (long)evals * d + 1;
    s.kxa = kxa - margin < 0 ? 0 : (int)(kxa - margin);
    s.kya = kya - margin < 0 ? 0 : (int)(kya - margin);
    s.kxb = kxb + margin > s.nx - 1 ? s.nx - 1 : (int)(kxb + margin);
    s.kyb = kyb + margin > s.ny - 1 ? s.ny - 1 : (int)(kyb + margin);
    s.cx0 = s.ox[s.kxa] / f, s.cy0 = s.oy[s.kya] / f;
    s.CW = s.ox[s.kxb] / f + L - s.cx0, s.CH = s.oy[s.kyb] / f + L - s.cy0;
    const size_t area = (size_t)s.CW * s.CH, canvas = area * s.C;
    const size_t nwin = (size_t)(s.kxb - s.kxa + 1) * (s.kyb - s.kya + 1);

    for (int j = 0; j < s.nt; j++) {
        s.x[j] = malloc(sizeof(float) * canvas);
        s.acc[j] = malloc(sizeof(float) * canvas);
        v[j] = malloc(sizeof(float) * canvas);
        if (!s.x[j] || !s.acc[j] || !v[j]) goto nomem;
        if (p->sampler == MM_SAMPLER_HEUN) {
            x2[j] = malloc(sizeof(float) * canvas);
            v2[j] = malloc(sizeof(float) * canvas);
            if (!x2[j] || !v2[j]) goto nomem;
        }
    }
    s.wacc = malloc(sizeof(float) * area);
    s.wl = malloc(sizeof(float) * (size_t)L);
    s.active = malloc(nwin);
    s.slat = s.ns ? malloc(sizeof(float) * nwin * 2 * s.ns * s.lat) : NULL;
    s.win_x = malloc(sizeof(float) * (size_t)(s.ns + s.nt) * 2 * B * s.lat);
    s.win_v = malloc(sizeof(float) * (size_t)s.nt * 2 * B * s.lat);
    s.tbuf = malloc(sizeof(float) * 4 * (size_t)B);
    s.ids = malloc(sizeof(uint64_t) * (size_t)B);
    s.slot = malloc(sizeof(int) * (size_t)B);
    tv = malloc((size_t)S * S);
    mraw = malloc((size_t)S * S);
    raw = malloc(sizeof(double) * 2 * (size_t)S * S);
    if (!s.wacc || !s.wl || !s.active || (s.ns && !s.slat) || !s.win_x || !s.win_v || !s.tbuf ||
        !s.ids || !s.slot || !tv || !mraw || !raw)
        goto nomem;
    for (int i = 0; i < s.ns; i++)
        if (!(img[i] = malloc(sizeof(float) * (size_t)B * channels[i] * S * S))) goto nomem;
    for (int i = 0; i < L; i++)
        s.wl[i] = mmgeo_blend_weight(i, L, s.Ol);

    /* the sources: read, skip the windows with no valid pixel, encode */
    memset(s.active, s.ns ? 0 : 1, nwin);
    size_t n_active = s.ns ? 0 : nwin;
    for (int ky = s.kya; ky <= s.kyb && s.ns; ky++)
        for (int kx = s.kxa; kx <= s.kxb;) {
            int n = 0;
            for (; n < B && kx <= s.kxb; kx++) {
                memset(tv, 1, (size_t)S * S);
                for (int i = 0; i < s.ns; i++)
                    if (mmgeo_read_window(&src[i], W, H, S, s.ox[kx], s.oy[ky],
                                          img[i] + (size_t)n * channels[i] * S * S, tv, raw, mraw,
                                          err, errlen))
                        goto out;
                int any = 0;
                for (int py = 0; py < S && s.oy[ky] + py < H; py++)
                    for (int px = 0; px < S && s.ox[kx] + px < W; px++)
                        any |= tv[(size_t)py * S + px];
                if (!any) continue;
                s.active[WIDX(&s, kx, ky)] = 1;
                s.slot[n++] = kx;
            }
            if (!n) continue;
            n_active += (size_t)n;
            for (int i = 0; i < s.ns; i++) {
                if (mm_vae_encode(mp->ctx, mp->source_mods[i], n, img[i], s.win_v) != MM_OK) {
                    mmgeo_fail(err, errlen, "%s", mm_context_errmsg(mp->ctx));
                    goto out;
                }
                for (int b = 0; b < n; b++) {
                    float *sl = s.slat + (size_t)WIDX(&s, s.slot[b], ky) * 2 * s.ns * s.lat;
                    memcpy(sl + (size_t)i * s.lat, s.win_v + (size_t)b * s.lat,
                           sizeof(float) * s.lat);
                    if (s.guided)
                        mm_noise(p->seed, mmgeo_tile_id(s.slot[b], ky), MM_NOISE_UNCOND,
                                 mp->source_mods[i], 0, sl + (size_t)(s.ns + i) * s.lat, s.lat);
                }
            }
            if (job->progress && !job->progress(0, NULL, job->progress_arg)) goto interrupted_m;
        }
    for (int i = 0; i < s.ns; i++) {
        GDALClose(src[i].ds);
        src[i].ds = NULL;
    }

    /* sampling on the canvas */
    s.total = (double)n_active * (p->sampler == MM_SAMPLER_HEUN ? 2 * p->steps - 1 : p->steps);
    if (s.total <= 0) s.total = 1;
    for (int j = 0; j < s.nt; j++)
        if (global_noise(&s, s.x[j], MM_NOISE_INITIAL, mp->target_mods[j], 0)) goto nomem;
    for (int i = 0; i < p->steps; i++) {
        const double t = time_at(p, i), tn = time_at(p, i + 1), dt = t - tn;
        int r = fused_velocity(&s, s.x, t, v, err, errlen);
        if (r == MMGEO_INTERRUPTED) goto interrupted;
        if (r) goto out;
        if (p->sampler == MM_SAMPLER_HEUN && tn > 0.0) {
            for (int j = 0; j < s.nt; j++)
                for (size_t k = 0; k < canvas; k++)
                    x2[j][k] = s.x[j][k] - (float)dt * v[j][k];
            r = fused_velocity(&s, x2, tn, v2, err, errlen);
            if (r == MMGEO_INTERRUPTED) goto interrupted;
            if (r) goto out;
            for (int j = 0; j < s.nt; j++)
                for (size_t k = 0; k < canvas; k++)
                    s.x[j][k] += (float)(-dt / 2) * v[j][k] + (float)(-dt / 2) * v2[j][k];
        } else if (p->sampler == MM_SAMPLER_EULER_MARUYAMA && tn > 0.0) {
            const double eta = p->sde_eta;
            const float a = (float)(-dt * (1.0 + eta * (1.0 - t))), bx = (float)(1.0 - dt * eta);
            const float sn = (float)sqrt(2.0 * eta * t * dt);
            for (int j = 0; j < s.nt; j++) {
                for (size_t k = 0; k < canvas; k++)
                    s.x[j][k] = a * v[j][k] + bx * s.x[j][k];
                if (global_noise(&s, v[j], MM_NOISE_SDE, mp->target_mods[j], i)) goto nomem;
                for (size_t k = 0; k < canvas; k++)
                    s.x[j][k] += sn * v[j][k];
            }
        } else {
            for (int j = 0; j < s.nt; j++)
                for (size_t k = 0; k < canvas; k++)
                    s.x[j][k] += (float)-dt * v[j][k];
        }
    }

    /* decode the windows and blend them, as mmgeo_run does, on the latent-aligned grid */
    mmgeo_job j2 = *job;
    j2.align = f;
    j2.overlap = O;
    j2.out_scale = 1;
    if (job->progress) {
        scaled = GDALCreateScaledProgress(0.9, 1.0, job->progress, job->progress_arg);
        j2.progress = GDALScaledProgress;
        j2.progress_arg = scaled;
    }
    mmgeo_processor proc;
    memset(&proc, 0, sizeof proc);
    proc.fn = decode_fn;
    proc.user = &s;
    proc.window = S;
    proc.n_sources = s.ns;
    proc.n_targets = s.nt;
    for (int i = 0; i < s.ns; i++)
        proc.src_channels[i] = channels[i];
    for (int j = 0; j < s.nt; j++)
        proc.dst_channels[j] = mm_model_modality_channels(m, mp->target_mods[j]);
    rc = mmgeo_run(&j2, &proc, err, errlen);
    goto out;

nomem:
    mmgeo_fail(err, errlen, "out of memory");
    goto out;
interrupted_m:
    mmgeo_fail(err, errlen, "interrupted");
interrupted:
    rc = MMGEO_INTERRUPTED;
out:
    if (scaled) GDALDestroyScaledProgress(scaled);
    for (int i = 0; i < s.ns; i++) {
        if (src[i].ds) GDALClose(src[i].ds);
        free(img[i]);
    }
    for (int j = 0; j < s.nt; j++)
        free(s.x[j]), free(s.acc[j]), free(v[j]), free(x2[j]), free(v2[j]);
    free(s.ox), free(s.oy), free(s.wacc), free(s.wl), free(s.active), free(s.slat);
    free(s.win_x), free(s.win_v), free(s.tbuf), free(s.ids), free(s.slot);
    free(tv), free(mraw), free(raw);
    return rc;
}
