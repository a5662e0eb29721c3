/*
 * Tasks and samplers (docs/architecture.md section 5): translate, joint generation, scene
 * embedding, and the latent-level entry points, with argument checking for all of them.
 *
 * With guidance, the conditional and unconditional branches run as one forward over 2B tiles
 * (tiles B..2B-1 see their sources replaced by noise at t = 1): larger matrix products are
 * faster, and the backend's determinism contract makes a tile's rows independent of the batch.
 * Joint guidance (no sources, nt >= 2 targets) runs 1 + nt copies: copy 0 the joint step, copy
 * 1 + j target j with every other target replaced by its noise at t = 1.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "forward_ops.h"

static const char *const sampler_names[] = {"euler", "heun", "euler_maruyama"};

const char *mm_sampler_name(mm_sampler s) {
    return (s >= 0 && s <= MM_SAMPLER_EULER_MARUYAMA) ? sampler_names[s] : "unknown";
}

int mm_sampler_from_name(const char *name) {
    for (int i = 0; name && i < 3; i++)
        if (strcmp(name, sampler_names[i]) == 0) return i;
    return -1;
}

void mm_sample_params_default(const mm_model *model, mm_sample_params *p) {
    memset(p, 0, sizeof *p);
    p->sampler = (mm_sampler)model->cfg.sampling.sampler;
    p->steps = model->cfg.sampling.steps;
    p->guidance = model->cfg.sampling.guidance;
    p->sde_eta = model->cfg.sampling.sde_eta;
    p->time_shift = model->cfg.sampling.time_shift;
    p->seed = 0;
}

/* ---- argument checks ------------------------------------------------------------------------ */

static int check_ctx(mm_context *ctx) {
    return ctx != NULL;
}

static int check_modalities(mm_context *ctx, int n, const int *mods, const void *const *bufs,
                            const char *what, unsigned *seen) {
    const int M = ctx->model->cfg.n_modalities;
    if (n < 0 || (n > 0 && (!mods || !bufs))) {
        mm_ctx_seterr(ctx, "%s: count %d or arrays missing", what, n);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        if (mods[i] < 0 || mods[i] >= M) {
            mm_ctx_seterr(ctx, "%s %d: modality index %d out of range (the model has %d)", what, i,
                          mods[i], M);
            return 1;
        }
        if (*seen & (1u << mods[i])) {
            mm_ctx_seterr(ctx, "modality '%s' given more than once",
                          ctx->model->cfg.modalities[mods[i]]);
            return 1;
        }
        *seen |= 1u << mods[i];
        if (!bufs[i]) {
            mm_ctx_seterr(ctx, "%s %d ('%s'): buffer is NULL", what, i,
                          ctx->model->cfg.modalities[mods[i]]);
            return 1;
        }
    }
    return 0;
}

static int check_params(mm_context *ctx, const mm_sample_params *p) {
    if (!p) {
        mm_ctx_seterr(ctx, "no sampling parameters given");
        return 1;
    }
    if (p->sampler < MM_SAMPLER_EULER || p->sampler > MM_SAMPLER_EULER_MARUYAMA) {
        mm_ctx_seterr(ctx, "unknown sampler %d", (int)p->sampler);
        return 1;
    }
    if (p->steps < 1 || p->steps > 65535) {
        mm_ctx_seterr(ctx, "steps must be in 1..65535, got %d", p->steps);
        return 1;
    }
    if (!isfinite(p->guidance) || p->guidance < 0.0f || p->guidance > 100.0f) {
        mm_ctx_seterr(ctx, "guidance must be in [0, 100], got %g", (double)p->guidance);
        return 1;
    }
    if (!isfinite(p->sde_eta) || p->sde_eta < 0.0f || p->sde_eta > 100.0f) {
        mm_ctx_seterr(ctx, "sde_eta must be in [0, 100], got %g", (double)p->sde_eta);
        return 1;
    }
    if (!isfinite(p->time_shift) || p->time_shift <= 0.0f || p->time_shift > 1000.0f) {
        mm_ctx_seterr(ctx, "time_shift must be in (0, 1000], got %g", (double)p->time_shift);
        return 1;
    }
    return 0;
}

static int check_tiles(mm_context *ctx, int n_tiles) {
    if (n_tiles < 1 || n_tiles > 4096) {
        mm_ctx_seterr(ctx, "tile count must be in 1..4096, got %d", n_tiles);
        return 1;
    }
    return 0;
}

/* ---- sampling ------------------------------------------------------------------------------- */

typedef struct {
    mm_context *ctx;
    const mm_sample_params *p;
    int B, ns, nt, guided;
    const int *src_mods, *tgt_mods;
    const uint64_t *tile_ids;
    size_t lat;    /* floats per tile latent */
    float *src;    /* ns x (2B) latents: clean, then unconditional noise; joint guidance:
                      nt x B unconditional noise of the targets */
    float *xin;    /* nt x (K B) model inputs */
    float *t_host; /* (ns + nt) x (K B) times */
    int joint;     /* joint guidance: K = 1 + nt copies of the batch */
} sampler_state;

/* Copies of the batch in one model evaluation: 2 with guidance, 1 + nt with joint guidance. */
static int copies(const sampler_state *s) {
    return s->guided ? 2 : s->joint ? 1 + s->nt : 1;
}

/* t_i of the grid (docs/architecture.md section 5). With sampling.final_step_size d > 0 (SiT's
 * last_step_size) the first n - 1 steps cover [1, d] evenly and the last one goes d -> 0. */
static double time_at(const sampler_state *st, int i) {
    const mm_sample_params *p = st->p;
    const double d = st->ctx->model->cfg.sampling.final_step_size, s = p->time_shift;
    double tau;
    if (i >= p->steps)
        tau = 0.0;
    else if (d > 0.0)
        tau = p->steps > 1 ? 1.0 - (double)i * (1.0 - d) / (p->steps - 1) : 1.0;
    else
        tau = 1.0 - (double)i / p->steps;
    return s * tau / (1.0 + (s - 1.0) * tau);
}

/* v (nt x B) = guided velocity at state x (nt x B) and time t. */
static int velocity(sampler_state *s, const float *x, double t, float *v) {
    mm_context *ctx = s->ctx;
    const int K = copies(s), B2 = K * s->B, np = s->ns + s->nt;
    mm_part_dev parts[2 * MM_MAX_MODALITIES];
    int targets[MM_MAX_MODALITIES];
    float *vout[MM_MAX_MODALITIES];
    float *vbuf = mm_ws(ctx, WS_S_V2, (size_t)s->nt * B2 * s->lat);
    if (!vbuf) return 1;
    for (int i = 0; i < s->ns; i++) {
        float *th = s->t_host + (size_t)i * B2;
        for (int b = 0; b < B2; b++)
            th[b] = b < s->B ? 0.0f : 1.0f;
        parts[i] = (mm_part_dev){s->src_mods[i], s->src + (size_t)i * B2 * s->lat, th};
    }
    for (int j = 0; j < s->nt; j++) {
        float *th = s->t_host + (size_t)(s->ns + j) * B2;
        for (int b = 0; b < B2; b++)
            th[b] = (float)t;
        float *xi = s->xin + (size_t)j * B2 * s->lat;
        const float *xj = x + (size_t)j * s->B * s->lat;
        if (OPS->copy(BE, xi, xj, s->B * s->lat) ||
            (s->guided && OPS->copy(BE, xi + s->B * s->lat, xj, s->B * s->lat)))
            return mm_ctx_backend_failed(ctx, "copy");
        for (int k = 1; s->joint && k < K; k++) { /* copy k: target k - 1 alone */
            const float *in = k - 1 == j ? xj : s->src + (size_t)j * s->B * s->lat;
            if (OPS->copy(BE, xi + (size_t)k * s->B * s->lat, in, s->B * s->lat))
                return mm_ctx_backend_failed(ctx, "copy");
            if (k - 1 != j)
                for (int b = 0; b < s->B; b++)
                    th[(size_t)k * s->B + b] = 1.0f;
        }
        parts[s->ns + j] = (mm_part_dev){s->tgt_mods[j], xi, th};
        targets[j] = s->ns + j;
        vout[j] = vbuf + (size_t)j * B2 * s->lat;
    }
    if (mm_dit_forward(ctx, B2, np, parts, s->nt, targets, vout, NULL)) return 1;
    const float w = s->p->guidance;
    for (int j = 0; j < s->nt; j++) {
        float *vc = vout[j], *dst = v + (size_t)j * s->B * s->lat;
        const size_t n = s->B * s->lat;
        if (s->guided && OPS->axpby(BE, vc, 1.0f - w, vc + n, w, n))
            return mm_ctx_backend_failed(ctx, "guidance");
        if (s->joint && OPS->axpby(BE, vc, 1.0f - w, vc + (size_t)(1 + j) * n, w, n))
            return mm_ctx_backend_failed(ctx, "joint guidance");
        if (OPS->copy(BE, dst, vc, n)) return mm_ctx_backend_failed(ctx, "copy");
    }
    return 0;
}

static int fill_noise(sampler_state *s, float *dst, int purpose, int modality, int step) {
    mm_context *ctx = s->ctx;
    for (int b = 0; b < s->B; b++)
        if (OPS->noise(BE, dst + (size_t)b * s->lat, s->p->seed, s->tile_ids[b], purpose, modality,
                       step, s->lat))
            return mm_ctx_backend_failed(ctx, "noise");
    return 0;
}

/* Runs the sampler from noise; x (nt x B latents) holds the result. */
static int run_sampler(sampler_state *s, float *x) {
    mm_context *ctx = s->ctx;
    const mm_sample_params *p = s->p;
    const size_t n = (size_t)s->nt * s->B * s->lat;
    float *v = mm_ws(ctx, WS_S_V, n), *x2 = mm_ws(ctx, WS_S_X2, n), *xi = mm_ws(ctx, WS_S_XI, n);
    if (!v || !x2 || !xi) return 1;
    for (int j = 0; j < s->nt; j++)
        if (fill_noise(s, x + (size_t)j * s->B * s->lat, MM_NOISE_INITIAL, s->tgt_mods[j], 0))
            return 1;
    const int final_mean = ctx->model->cfg.sampling.final_mean;
    for (int i = 0; i < p->steps; i++) {
        const double t = time_at(s, i), tn = time_at(s, i + 1), dt = t - tn;
        if (velocity(s, x, t, v)) return 1;
        if (p->sampler == MM_SAMPLER_HEUN && tn > 0.0) {
            if (OPS->copy(BE, x2, x, n) || OPS->axpby(BE, x2, (float)-dt, v, 1.0f, n))
                return mm_ctx_backend_failed(ctx, "heun");
            if (velocity(s, x2, tn, xi)) return 1;
            if (OPS->axpby(BE, x, (float)(-dt / 2), v, 1.0f, n) ||
                OPS->axpby(BE, x, (float)(-dt / 2), xi, 1.0f, n))
                return mm_ctx_backend_failed(ctx, "heun");
        } else if (p->sampler == MM_SAMPLER_EULER_MARUYAMA && (tn > 0.0 || final_mean)) {
            /* x - dt (v + eta eps_hat), eps_hat = x + (1 - t) v, plus sqrt(2 eta t dt) xi; the
             * last step of sampling.final_step "mean" is this step's mean (SiT's "Mean") */
            const double eta = p->sde_eta;
            if (OPS->axpby(BE, x, (float)(-dt * (1.0 + eta * (1.0 - t))), v,
                           (float)(1.0 - dt * eta), n))
                return mm_ctx_backend_failed(ctx, "sde step");
            for (int j = 0; tn > 0.0 && j < s->nt; j++)
                if (fill_noise(s, xi + (size_t)j * s->B * s->lat, MM_NOISE_SDE, s->tgt_mods[j], i))
                    return 1;
            if (tn > 0.0 && OPS->axpby(BE, x, (float)sqrt(2.0 * eta * t * dt), xi, 1.0f, n))
                return mm_ctx_backend_failed(ctx, "sde noise");
        } else {
            if (OPS->axpby(BE, x, (float)-dt, v, 1.0f, n))
                return mm_ctx_backend_failed(ctx, "euler");
        }
        if (p->progress && p->progress(p->progress_user, i + 1, p->steps)) {
            mm_ctx_seterr(ctx, "interrupted at step %d of %d", i + 1, p->steps);
            return 2;
        }
    }
    return 0;
}

static size_t image_floats(const mm_model *m, int mod) {
    return (size_t)m->cfg.modality_channels[mod] * m->cfg.image_size * m->cfg.image_size;
}

/* The largest image of any modality (floats per tile). */
static size_t max_image_floats(const mm_model *m) {
    size_t max_img = 0;
    for (int i = 0; i < m->cfg.n_modalities; i++)
        if (image_floats(m, i) > max_img) max_img = image_floats(m, i);
    return max_img;
}

mm_status mm_translate(mm_context *ctx, const mm_sample_params *params, int n_tiles,
                       const uint64_t *tile_ids, int n_sources, const int *source_mods,
                       const float *const *sources, int n_targets, const int *target_mods,
                       float *const *targets) {
    if (!check_ctx(ctx)) return MM_ERROR_ARGUMENT;
    ctx->errmsg[0] = 0;
    ctx->be->errmsg[0] = 0;
    unsigned seen = 0;
    if (check_params(ctx, params) || check_tiles(ctx, n_tiles) ||
        check_modalities(ctx, n_sources, source_mods, (const void *const *)sources, "source",
                         &seen) ||
        check_modalities(ctx, n_targets, target_mods, (const void *const *)targets, "target",
                         &seen))
        return MM_ERROR_ARGUMENT;
    if (n_targets < 1) {
        mm_ctx_seterr(ctx, "nothing to generate: no target modality");
        return MM_ERROR_ARGUMENT;
    }
    if (!tile_ids) {
        mm_ctx_seterr(ctx, "tile_ids is NULL");
        return MM_ERROR_ARGUMENT;
    }
    const mm_model *m = ctx->model;
    if (params->joint_guidance && n_sources > 0) {
        mm_ctx_seterr(ctx,
                      "joint guidance applies to generation without sources (%d given); "
                      "translation guidance drops the sources",
                      n_sources);
        return MM_ERROR_ARGUMENT;
    }
    sampler_state s = {ctx,         params,   n_tiles, n_sources, n_targets, 0,    source_mods,
                       target_mods, tile_ids, 0,       NULL,      NULL,      NULL, 0};
    s.guided = n_sources > 0 && params->guidance != 1.0f;
    s.joint =
        n_sources == 0 && params->joint_guidance && n_targets >= 2 && params->guidance != 1.0f;
    s.lat = (size_t)m->cfg.vae.latent_channels * m->cfg.latent_size * m->cfg.latent_size;
    const int B2 = copies(&s) * n_tiles;
    s.src = mm_ws(ctx, WS_S_SRC,
                  s.joint ? (size_t)n_targets * n_tiles * s.lat
                          : (size_t)(n_sources ? n_sources : 1) * B2 * s.lat);
    s.xin = mm_ws(ctx, WS_S_LAT, (size_t)n_targets * B2 * s.lat);
    float *x = mm_ws(ctx, WS_S_X, (size_t)n_targets * n_tiles * s.lat);
    float *img = mm_ws(ctx, WS_S_IMG, max_image_floats(m) * n_tiles);
    s.t_host = malloc(sizeof(float) * (size_t)(n_sources + n_targets) * B2);
    mm_status st = MM_ERROR_BACKEND;
    if (!s.src || !s.xin || !x || !img || !s.t_host) {
        if (!ctx->errmsg[0]) mm_ctx_seterr(ctx, "out of memory");
        st = MM_ERROR_NOMEM;
        goto done;
    }
    for (int i = 0; i < n_sources; i++) {
        float *dst = s.src + (size_t)i * B2 * s.lat;
        if (OPS->upload(BE, img, sources[i], image_floats(m, source_mods[i]) * n_tiles)) {
            mm_ctx_backend_failed(ctx, "upload");
            goto done;
        }
        if (mm_vae_encode_dev(ctx, source_mods[i], n_tiles, img, dst)) goto done;
        if (s.guided &&
            fill_noise(&s, dst + (size_t)n_tiles * s.lat, MM_NOISE_UNCOND, source_mods[i], 0))
            goto done;
    }
    for (int j = 0; s.joint && j < n_targets; j++)
        if (fill_noise(&s, s.src + (size_t)j * n_tiles * s.lat, MM_NOISE_UNCOND, target_mods[j], 0))
            goto done;
    int rc = run_sampler(&s, x);
    if (rc) {
        st = rc == 2 ? MM_ERROR_INTERRUPTED : MM_ERROR_BACKEND;
        goto done;
    }
    for (int j = 0; j < n_targets; j++) {
        if (mm_vae_decode_dev(ctx, target_mods[j], n_tiles, x + (size_t)j * n_tiles * s.lat, img))
            goto done;
        if (OPS->download(BE, targets[j], img, image_floats(m, target_mods[j]) * n_tiles)) {
            mm_ctx_backend_failed(ctx, "download");
            goto done;
        }
    }
    st = MM_OK;
done:
    free(s.t_host);
    return st;
}

mm_status mm_generate(mm_context *ctx, const mm_sample_params *params, int n_tiles,
                      const uint64_t *tile_ids, int n_targets, const int *target_mods,
                      float *const *targets) {
    return mm_translate(ctx, params, n_tiles, tile_ids, 0, NULL, NULL, n_targets, target_mods,
                        targets);
}

/* ---- scene embedding and latent-level access ------------------------------------------------ */

/* The parts of one scene sequence: the sources (host images), read at time source_t (0: clean;
 * t > 0: (1 - t) z + t eps with eps the MM_NOISE_INITIAL noise of the source's modality), then,
 * when noise_branch >= 0, the branch of that modality as pure noise (MM_NOISE_UNCOND, step 0) at
 * t = 1. seed and tile_ids address the noise (only read when there is noise). */
typedef struct {
    int n_sources;
    const int *source_mods;
    const float *const *sources;
    float source_t;
    int noise_branch;
    uint64_t seed;
    const uint64_t *tile_ids;
} scene_parts;

/* The scene tokens of these parts (arguments checked by the caller): each source uploaded and
 * VAE-encoded (and noised), one forward of the scene module. *scene: the tokens in backend
 * memory, n_tiles x parts x NH (tile b, part i at (b * parts + i) * NH), valid until the next
 * call on ctx. Used by mm_embed (clean sources, no branch) and mm_embed_readout. */
static mm_status scene_tokens(mm_context *ctx, int n_tiles, const scene_parts *sp, float **scene) {
    const mm_model *m = ctx->model;
    const int ns = sp->n_sources, np = ns + (sp->noise_branch >= 0);
    const float ts = sp->source_t;
    const size_t lat = (size_t)m->cfg.vae.latent_channels * m->cfg.latent_size * m->cfg.latent_size;
    const size_t NH = (size_t)m->cfg.n_tokens * m->cfg.dit.hidden_size;
    float *lats = mm_ws(ctx, WS_S_SRC, (size_t)np * n_tiles * lat);
    float *img = mm_ws(ctx, WS_S_IMG, max_image_floats(m) * n_tiles);
    float *eps = ts > 0.0f ? mm_ws(ctx, WS_S_XI, (size_t)n_tiles * lat) : NULL;
    float *out = mm_ws(ctx, WS_S_X, (size_t)np * n_tiles * NH);
    float *times = malloc(sizeof(float) * 2 * (size_t)n_tiles); /* sources, then the branch */
    mm_part_dev parts[MM_MAX_MODALITIES];
    mm_status st = MM_ERROR_BACKEND;
    if (!lats || !img || !out || !times || (ts > 0.0f && !eps)) {
        st = MM_ERROR_NOMEM;
        if (!ctx->errmsg[0]) mm_ctx_seterr(ctx, "out of memory");
        goto done;
    }
    for (int b = 0; b < n_tiles; b++)
        times[b] = ts, times[n_tiles + b] = 1.0f;
    for (int i = 0; i < np; i++) {
        float *dst = lats + (size_t)i * n_tiles * lat;
        const int mod = i < ns ? sp->source_mods[i] : sp->noise_branch;
        if (i < ns) {
            if (OPS->upload(BE, img, sp->sources[i], image_floats(m, mod) * n_tiles)) {
                mm_ctx_backend_failed(ctx, "upload");
                goto done;
            }
            if (mm_vae_encode_dev(ctx, mod, n_tiles, img, dst)) goto done;
        }
        /* the noise branch's noise, or the noise of a source read at source_t > 0 */
        float *nz = i < ns ? eps : dst;
        for (int b = 0; nz && b < n_tiles; b++)
            if (OPS->noise(BE, nz + (size_t)b * lat, sp->seed, sp->tile_ids[b],
                           i < ns ? MM_NOISE_INITIAL : MM_NOISE_UNCOND, mod, 0, lat)) {
                mm_ctx_backend_failed(ctx, "noise");
                goto done;
            }
        if (i < ns && eps && /* (1 - t) z + t eps */
            OPS->axpby(BE, dst, ts, eps, 1.0f - ts, (size_t)n_tiles * lat)) {
            mm_ctx_backend_failed(ctx, "noising");
            goto done;
        }
        parts[i] = (mm_part_dev){mod, dst, i < ns ? times : times + n_tiles};
    }
    if (mm_dit_forward(ctx, n_tiles, np, parts, 0, NULL, NULL, out)) goto done;
    *scene = out;
    st = MM_OK;
done:
    free(times);
    return st;
}

mm_status mm_embed(mm_context *ctx, int n_tiles, int n_sources, const int *source_mods,
                   const float *const *sources, float *const *out) {
    if (!check_ctx(ctx)) return MM_ERROR_ARGUMENT;
    ctx->errmsg[0] = 0;
    ctx->be->errmsg[0] = 0;
    unsigned seen = 0;
    if (check_tiles(ctx, n_tiles) ||
        check_modalities(ctx, n_sources, source_mods, (const void *const *)sources, "source",
                         &seen))
        return MM_ERROR_ARGUMENT;
    if (n_sources < 1 || !out) {
        mm_ctx_seterr(ctx, "embedding needs at least one source and an output");
        return MM_ERROR_ARGUMENT;
    }
    for (int i = 0; i < n_sources; i++)
        if (!out[i]) {
            mm_ctx_seterr(ctx, "output %d is NULL", i);
            return MM_ERROR_ARGUMENT;
        }
    const size_t NH = (size_t)ctx->model->cfg.n_tokens * ctx->model->cfg.dit.hidden_size;
    const scene_parts sp = {n_sources, source_mods, sources, 0.0f, -1, 0, NULL};
    float *scene = NULL;
    const mm_status st = scene_tokens(ctx, n_tiles, &sp, &scene);
    if (st != MM_OK) return st;
    for (int b = 0; b < n_tiles; b++)
        for (int i = 0; i < n_sources; i++)
            if (OPS->download(BE, out[i] + (size_t)b * NH, scene + ((size_t)b * n_sources + i) * NH,
                              NH)) {
                mm_ctx_backend_failed(ctx, "download");
                return MM_ERROR_BACKEND;
            }
    return MM_OK;
}

void mm_readout_params_default(mm_readout_params *p) {
    if (!p) return;
    memset(p, 0, sizeof *p);
    p->modality = -1;
}

/* Eq. 22 of the paper: the sources (clean, or at source_t) and the readout branch as pure noise
 * at t = 1 in one scene sequence; the readout branch's tokens out. */
mm_status mm_embed_readout(mm_context *ctx, const mm_readout_params *params, int n_tiles,
                           const uint64_t *tile_ids, int n_sources, const int *source_mods,
                           const float *const *sources, float *out) {
    if (!check_ctx(ctx)) return MM_ERROR_ARGUMENT;
    ctx->errmsg[0] = 0;
    ctx->be->errmsg[0] = 0;
    unsigned seen = 0;
    if (check_tiles(ctx, n_tiles) ||
        check_modalities(ctx, n_sources, source_mods, (const void *const *)sources, "source",
                         &seen))
        return MM_ERROR_ARGUMENT;
    const mm_model *m = ctx->model;
    if (!params || !tile_ids || !out || n_sources < 1) {
        mm_ctx_seterr(ctx, "readout needs parameters, tile ids, an output and at least one source");
        return MM_ERROR_ARGUMENT;
    }
    const int rm = params->modality;
    if (rm < 0 || rm >= m->cfg.n_modalities) {
        mm_ctx_seterr(ctx, "readout modality index %d out of range (the model has %d)", rm,
                      m->cfg.n_modalities);
        return MM_ERROR_ARGUMENT;
    }
    if (seen & (1u << rm)) {
        mm_ctx_seterr(ctx,
                      "readout modality '%s' is also a source: the readout is the branch of a "
                      "modality that was not observed",
                      m->cfg.modalities[rm]);
        return MM_ERROR_ARGUMENT;
    }
    const float ts = params->source_t;
    if (!(ts >= 0.0f && ts < 1.0f)) {
        mm_ctx_seterr(ctx, "readout source time must be in [0, 1), got %g", (double)ts);
        return MM_ERROR_ARGUMENT;
    }
    const int np = n_sources + 1;
    const size_t NH = (size_t)m->cfg.n_tokens * m->cfg.dit.hidden_size;
    const scene_parts sp = {n_sources, source_mods, sources, ts, rm, params->seed, tile_ids};
    float *scene = NULL;
    const mm_status st = scene_tokens(ctx, n_tiles, &sp, &scene);
    if (st != MM_OK) return st;
    for (int b = 0; b < n_tiles; b++)
        if (OPS->download(BE, out + (size_t)b * NH, scene + ((size_t)b * np + n_sources) * NH,
                          NH)) {
            mm_ctx_backend_failed(ctx, "download");
            return MM_ERROR_BACKEND;
        }
    return MM_OK;
}

static mm_status vae_call(mm_context *ctx, int modality, int n_tiles, const float *in, float *out,
                          int encode) {
    if (!check_ctx(ctx)) return MM_ERROR_ARGUMENT;
    ctx->errmsg[0] = 0;
    if (check_tiles(ctx, n_tiles)) return MM_ERROR_ARGUMENT;
    const mm_model *m = ctx->model;
    if (modality < 0 || modality >= m->cfg.n_modalities || !in || !out) {
        mm_ctx_seterr(ctx, "invalid modality %d or NULL buffer", modality);
        return MM_ERROR_ARGUMENT;
    }
    const size_t lat = (size_t)m->cfg.vae.latent_channels * m->cfg.latent_size * m->cfg.latent_size;
    const size_t im = image_floats(m, modality);
    float *dl = mm_ws(ctx, WS_S_LAT, lat * n_tiles), *di = mm_ws(ctx, WS_S_IMG, im * n_tiles);
    if (!dl || !di) return MM_ERROR_NOMEM;
    if (encode) {
        if (OPS->upload(BE, di, in, im * n_tiles) ||
            mm_vae_encode_dev(ctx, modality, n_tiles, di, dl) ||
            OPS->download(BE, out, dl, lat * n_tiles))
            return MM_ERROR_BACKEND;
    } else {
        if (OPS->upload(BE, dl, in, lat * n_tiles) ||
            mm_vae_decode_dev(ctx, modality, n_tiles, dl, di) ||
            OPS->download(BE, out, di, im * n_tiles))
            return MM_ERROR_BACKEND;
    }
    return MM_OK;
}

mm_status mm_vae_encode(mm_context *ctx, int modality, int n_tiles, const float *images,
                        float *latents) {
    return vae_call(ctx, modality, n_tiles, images, latents, 1);
}

mm_status mm_vae_decode(mm_context *ctx, int modality, int n_tiles, const float *latents,
                        float *images) {
    return vae_call(ctx, modality, n_tiles, latents, images, 0);
}

/* Latent-level single evaluation: a backend with host memory (the CPU backend) reads the host
 * arrays directly; a device backend stages the latents in (upload) and the velocities and scene
 * tokens out (download). */
mm_status mm_predict(mm_context *ctx, int n_tiles, int n_parts, const mm_partition *parts,
                     int n_targets, const int *target_parts, float *const *v, float *scene_out) {
    if (!check_ctx(ctx)) return MM_ERROR_ARGUMENT;
    ctx->errmsg[0] = 0;
    if (check_tiles(ctx, n_tiles)) return MM_ERROR_ARGUMENT;
    if (n_parts < 1 || n_parts > ctx->model->cfg.n_modalities || !parts || n_targets < 0 ||
        n_targets > n_parts || (n_targets && (!target_parts || !v))) {
        mm_ctx_seterr(ctx, "invalid partitions or targets (%d parts, %d targets)", n_parts,
                      n_targets);
        return MM_ERROR_ARGUMENT;
    }
    const int host = ctx->be->ops->host_memory;
    mm_part_dev pd[MM_MAX_MODALITIES];
    unsigned seen = 0;
    for (int i = 0; i < n_parts; i++) {
        const int mod = parts[i].modality;
        if (mod < 0 || mod >= ctx->model->cfg.n_modalities || (seen & (1u << mod)) ||
            !parts[i].latent || !parts[i].t) {
            mm_ctx_seterr(ctx, "partition %d: invalid or repeated modality, or NULL buffer", i);
            return MM_ERROR_ARGUMENT;
        }
        seen |= 1u << mod;
        for (int b = 0; b < n_tiles; b++)
            if (!(parts[i].t[b] >= 0.0f && parts[i].t[b] <= 1.0f)) {
                mm_ctx_seterr(ctx, "partition %d tile %d: time %g outside [0, 1]", i, b,
                              (double)parts[i].t[b]);
                return MM_ERROR_ARGUMENT;
            }
        pd[i] = (mm_part_dev){mod, parts[i].latent, parts[i].t};
    }
    for (int j = 0; j < n_targets; j++)
        if (target_parts[j] < 0 || target_parts[j] >= n_parts || !v[j]) {
            mm_ctx_seterr(ctx, "target %d: partition index %d invalid or output NULL", j,
                          target_parts[j]);
            return MM_ERROR_ARGUMENT;
        }
    if (host) {
        if (mm_dit_forward(ctx, n_tiles, n_parts, pd, n_targets, target_parts, v, scene_out))
            return MM_ERROR_BACKEND;
        return MM_OK;
    }
    /* device backend: latents in, velocities and scene tokens out */
    const mm_config *c = &ctx->model->cfg;
    const size_t lat = (size_t)c->vae.latent_channels * c->latent_size * c->latent_size * n_tiles;
    const size_t scene_n = (size_t)n_tiles * n_parts * c->n_tokens * c->dit.hidden_size;
    float *lat_dev = mm_ws(ctx, WS_S_SRC, lat * n_parts);
    float *v_dev = mm_ws(ctx, WS_S_V, lat * (n_targets ? n_targets : 1));
    float *scene_dev = scene_out ? mm_ws(ctx, WS_S_X, scene_n) : NULL;
    if (!lat_dev || !v_dev || (scene_out && !scene_dev)) return MM_ERROR_NOMEM;
    float *vd[MM_MAX_MODALITIES];
    for (int i = 0; i < n_parts; i++) {
        if (OPS->upload(BE, lat_dev + i * lat, parts[i].latent, lat)) {
            mm_ctx_backend_failed(ctx, "upload");
            return MM_ERROR_BACKEND;
        }
        pd[i].latent = lat_dev + i * lat;
    }
    for (int j = 0; j < n_targets; j++)
        vd[j] = v_dev + j * lat;
    if (mm_dit_forward(ctx, n_tiles, n_parts, pd, n_targets, target_parts, vd, scene_dev))
        return MM_ERROR_BACKEND;
    for (int j = 0; j < n_targets; j++)
        if (OPS->download(BE, v[j], vd[j], lat)) {
            mm_ctx_backend_failed(ctx, "download");
            return MM_ERROR_BACKEND;
        }
    if (scene_out && OPS->download(BE, scene_out, scene_dev, scene_n)) {
        mm_ctx_backend_failed(ctx, "download");
        return MM_ERROR_BACKEND;
    }
    float sync; /* nothing was read back: wait for the work (and its errors) all the same */
    if (!n_targets && !scene_out && OPS->download(BE, &sync, lat_dev, 1)) {
        mm_ctx_backend_failed(ctx, "synchronise");
        return MM_ERROR_BACKEND;
    }
    return MM_OK;
}
