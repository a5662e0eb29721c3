/*
 * The diffusion transformer: scene inference module and modality-aware routed generator
 * (docs/architecture.md sections 2-4), written once against the backend interface.
 *
 * Layout: the scene sequence is [tiles, parts * N, H] (a tile's partitions are contiguous, in
 * the caller's order), so row r belongs to modulation group r / N = tile * parts + part, which
 * is also the row of the per-(tile, part) condition table.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "forward_ops.h"

static const float LN_EPS = 1e-6f;

/* One DiT block over rows = n_seq * S, with modulation table `mod` ([groups, K H], row r uses
 * group r / rows_per_group) and FFN weights fc1/fc2. x is updated in place. */
static int block_forward(mm_context *ctx, const mm_block_w *w, float *x, int n_seq, int S,
                         const float *cond_silu, int64_t n_groups, int64_t rows_per_group,
                         const mm_weight *fc1, const mm_weight *fc2) {
    const mm_config *c = &ctx->model->cfg;
    const int H = c->dit.hidden_size, F = c->dit.mlp_hidden;
    const int64_t rows = (int64_t)n_seq * S;
    const int K = c->dit.adaln_chunks; /* 6, or 4 without gates (config.c allows no other) */
    float *mod = mm_ws(ctx, WS_MODTAB, (size_t)n_groups * K * H);
    float *h = mm_ws(ctx, WS_NORM, (size_t)rows * H);
    float *qkv = mm_ws(ctx, WS_QKV, (size_t)rows * 3 * H);
    float *att = mm_ws(ctx, WS_ATT, (size_t)rows * H);
    float *y = mm_ws(ctx, WS_PROJ, (size_t)rows * H);
    float *f = mm_ws(ctx, WS_FFN, (size_t)rows * F);
    if (!mod || !h || !qkv || !att || !y || !f) return 1;
    TRY(OPS->linear(BE, mod, cond_silu, n_groups, n_groups / n_seq, &w->ada, MM_ACT_NONE));
    /* chunk k of the modulation table, in the order shift, scale[, gate] of attention, then
     * of the FFN; without gates (K = 4) the residual branches are added as they are */
    mm_modulation m[6];
    for (int k = 0; k < K; k++)
        m[k] = (mm_modulation){mod + (int64_t)k * H, K * H, rows_per_group};
    const int per = K / 2; /* chunks per sub-block */
    TRY(OPS->layernorm_modulate(BE, h, x, rows, H, LN_EPS, m[0], m[1]));
    TRY(OPS->linear(BE, qkv, h, rows, S, &w->qkv, MM_ACT_NONE));
    TRY(OPS->attention(BE, att, qkv, n_seq, S, c->dit.num_heads, H / c->dit.num_heads));
    TRY(OPS->linear(BE, y, att, rows, S, &w->proj, MM_ACT_NONE));
    if (K == 6)
        TRY(OPS->gated_add(BE, x, y, rows, H, m[2]));
    else
        TRY(OPS->axpby(BE, x, 1.0f, y, 1.0f, (size_t)(rows * H)));
    TRY(OPS->layernorm_modulate(BE, h, x, rows, H, LN_EPS, m[per], m[per + 1]));
    TRY(OPS->linear(BE, f, h, rows, S, fc1, MM_ACT_GELU_TANH));
    TRY(OPS->linear(BE, y, f, rows, S, fc2, MM_ACT_NONE));
    if (K == 6)
        TRY(OPS->gated_add(BE, x, y, rows, H, m[5]));
    else
        TRY(OPS->axpby(BE, x, 1.0f, y, 1.0f, (size_t)(rows * H)));
    return 0;
}

/* Tokens of one latent: PatchEmbed(z) + pos + e_m, into tok [n*N, H]. */
static int embed_tokens(mm_context *ctx, float *tok, const float *latent, int n,
                        const mm_weight *embed, int modality) {
    const mm_config *c = &ctx->model->cfg;
    const int H = c->dit.hidden_size, N = c->n_tokens, p = c->dit.patch_size;
    const int C = c->vae.latent_channels;
    float *patch = mm_ws(ctx, WS_PATCH, (size_t)n * N * C * p * p);
    const float *pos = OPS->resident(BE, ctx->model->pos_embed, (size_t)N * H);
    const float *em = OPS->resident(BE, ctx->model->dit.modality_embed + (int64_t)modality * H, H);
    if (!patch || !pos || !em) return mm_ctx_backend_failed(ctx, "embedding buffers");
    TRY(OPS->patchify(BE, patch, latent, n, C, c->latent_size, p));
    TRY(OPS->linear(BE, tok, patch, (int64_t)n * N, N, embed, MM_ACT_NONE));
    TRY(OPS->add_rows(BE, tok, pos, (int64_t)n * N, N, H));
    TRY(OPS->add_rows(BE, tok, em, (int64_t)n * N, 1, H));
    return 0;
}

/* Condition table c[(tile, part)] = e_t(t) + e_m (e_t alone with dit.condition "scene+time"),
 * and SiLU of it. The engine's t (0 = data) becomes the network's time here, once: 1 - t for a
 * model trained with t = 1 at the data (dit.time_direction), times dit.timestep_scale. */
static int conditions(mm_context *ctx, int n_tiles, int n_parts, const mm_part_dev *parts,
                      float **cond_out, float **cond_silu_out) {
    const mm_model *m = ctx->model;
    const int H = m->cfg.dit.hidden_size, fd = m->cfg.dit.freq_dim, half = fd / 2;
    const int64_t G = (int64_t)n_tiles * n_parts;
    float *feat_h = malloc((size_t)G * fd * sizeof(float));
    float *em_h = malloc((size_t)G * H * sizeof(float));
    float *feat = mm_ws(ctx, WS_TFEAT, (size_t)G * (fd + 2 * H));
    float *cond = mm_ws(ctx, WS_COND, (size_t)G * H);
    float *cs = mm_ws(ctx, WS_COND_SILU, (size_t)G * H);
    int rc = 1;
    if (!feat_h || !em_h || !feat || !cond || !cs) {
        if (!ctx->errmsg[0]) mm_ctx_seterr(ctx, "out of memory");
        goto done;
    }
    for (int b = 0; b < n_tiles; b++)
        for (int p = 0; p < n_parts; p++) {
            const int64_t g = (int64_t)b * n_parts + p;
            const double tn =
                m->cfg.dit.time_data_at_1 ? 1.0 - (double)parts[p].t[b] : (double)parts[p].t[b];
            const double t = m->cfg.dit.timestep_scale * tn;
            for (int i = 0; i < half; i++) {
                const double f = exp(-log(10000.0) * i / half);
                feat_h[g * fd + i] = (float)cos(t * f);
                feat_h[g * fd + half + i] = (float)sin(t * f);
            }
            memcpy(em_h + g * H, m->dit.modality_embed + (int64_t)parts[p].modality * H,
                   (size_t)H * sizeof(float));
        }
    float *hid = feat + G * fd, *em = hid + G * H;
    if (OPS->upload(BE, feat, feat_h, (size_t)(G * fd)) ||
        OPS->upload(BE, em, em_h, (size_t)(G * H)) ||
        OPS->linear(BE, hid, feat, G, n_parts, &m->dit.t_mlp0, MM_ACT_SILU) ||
        OPS->linear(BE, cond, hid, G, n_parts, &m->dit.t_mlp2, MM_ACT_NONE) ||
        (m->cfg.dit.cond_modality && OPS->axpby(BE, cond, 1.0f, em, 1.0f, (size_t)(G * H))) ||
        OPS->silu(BE, cs, cond, (size_t)(G * H))) {
        mm_ctx_backend_failed(ctx, "condition embedding");
        goto done;
    }
    *cond_out = cond;
    *cond_silu_out = cs;
    rc = 0;
done:
    free(feat_h);
    free(em_h);
    return rc;
}

static int generator(mm_context *ctx, int n_tiles, int n_parts, const mm_part_dev *part,
                     int part_index, const float *scene, const float *cond, float *v) {
    const mm_model *m = ctx->model;
    const mm_config *c = &m->cfg;
    const int H = c->dit.hidden_size, N = c->n_tokens, p = c->dit.patch_size;
    const int C = c->vae.latent_channels, mod = part->modality;
    const int64_t rows = (int64_t)n_tiles * N;
    float *x = mm_ws(ctx, WS_GEN_X, (size_t)rows * H);
    float *u = mm_ws(ctx, WS_GEN_U, (size_t)rows * H);
    float *gm = mm_ws(ctx, WS_GEN_MOD, (size_t)rows * 2 * H);
    float *out = mm_ws(ctx, WS_GEN_OUT, (size_t)rows * p * p * C);
    if (!x || !u || !gm || !out) return 1;
    if (embed_tokens(ctx, x, part->latent, n_tiles, &m->dit.gen_embed[mod], mod)) return 1;
    /* token-wise condition u_k = S_m[k] + c_m(t), then SiLU */
    for (int b = 0; b < n_tiles; b++)
        TRY(OPS->copy(BE, u + (int64_t)b * N * H,
                      scene + ((int64_t)b * n_parts + part_index) * N * H, (size_t)N * H));
    TRY(OPS->add_grouped(BE, u, rows, H,
                         (mm_modulation){cond + (int64_t)part_index * H, (int64_t)n_parts * H, N}));
    TRY(OPS->silu(BE, u, u, (size_t)(rows * H)));
    const int branch = c->dit.routing[mod];
    for (int j = 0; j < c->dit.gen_depth; j++) {
        const mm_block_w *w = &m->dit.gen[j];
        if (block_forward(ctx, w, x, n_tiles, N, u, rows, 1, &w->fc1[branch], &w->fc2[branch]))
            return 1;
        if (ctx->trace && j == 0)
            ctx->trace(ctx->trace_user, "gen.block0.out", x, (size_t)(rows * H));
    }
    float *h = mm_ws(ctx, WS_NORM, (size_t)rows * H);
    if (!h) return 1;
    TRY(OPS->linear(BE, gm, u, rows, N, &m->dit.final_ada, MM_ACT_NONE));
    TRY(OPS->layernorm_modulate(BE, h, x, rows, H, LN_EPS, (mm_modulation){gm, 2 * H, 1},
                                (mm_modulation){gm + H, 2 * H, 1}));
    TRY(OPS->linear(BE, out, h, rows, N, &m->dit.final_linear, MM_ACT_NONE));
    TRY(OPS->unpatchify(BE, v, out, n_tiles, C, c->latent_size, p));
    /* t = 1 at the data: the network's velocity is data - noise, the engine's noise - data */
    if (c->dit.time_data_at_1)
        TRY(OPS->affine(BE, v, v, -1.0f, 0.0f,
                        (size_t)n_tiles * C * c->latent_size * c->latent_size));
    return 0;
}

int mm_dit_forward(mm_context *ctx, int n_tiles, int n_parts, const mm_part_dev *parts,
                   int n_targets, const int *target_parts, float *const *v, float *scene_out) {
    const mm_model *m = ctx->model;
    const mm_config *c = &m->cfg;
    const int H = c->dit.hidden_size, N = c->n_tokens;
    const int S = n_parts * N;
    const int64_t rows = (int64_t)n_tiles * S;
    float *cond, *cond_silu;
    if (conditions(ctx, n_tiles, n_parts, parts, &cond, &cond_silu)) return 1;
    float *x = mm_ws(ctx, WS_SEQ, (size_t)rows * H);
    float *tok = mm_ws(ctx, WS_TOK, (size_t)n_tiles * N * H);
    float *scene = scene_out ? scene_out : mm_ws(ctx, WS_SCENE, (size_t)rows * H);
    if (!x || !tok || !scene) return 1;
    for (int p = 0; p < n_parts; p++) {
        const int mod = parts[p].modality;
        if (embed_tokens(ctx, tok, parts[p].latent, n_tiles, &m->dit.scene_embed[mod], mod))
            return 1;
        for (int b = 0; b < n_tiles; b++)
            TRY(OPS->copy(BE, x + ((int64_t)b * S + (int64_t)p * N) * H, tok + (int64_t)b * N * H,
                          (size_t)N * H));
    }
    if (ctx->trace) ctx->trace(ctx->trace_user, "scene.x_in", x, (size_t)(rows * H));
    for (int i = 0; i < c->dit.scene_depth; i++) {
        const mm_block_w *w = &m->dit.scene[i];
        if (block_forward(ctx, w, x, n_tiles, S, cond_silu, (int64_t)n_tiles * n_parts, N,
                          &w->fc1[0], &w->fc2[0]))
            return 1;
        if (ctx->trace && i == 0)
            ctx->trace(ctx->trace_user, "scene.block0.out", x, (size_t)(rows * H));
    }
    if (c->dit.scene_norm_out) {
        const float *nw = OPS->resident(BE, m->dit.scene_norm_out.weight, H);
        const float *nb = OPS->resident(BE, m->dit.scene_norm_out.bias, H);
        if (!nw || !nb) return mm_ctx_backend_failed(ctx, "scene norm");
        TRY(OPS->layernorm_affine(BE, scene, x, rows, H, LN_EPS, nw, nb));
    } else {
        TRY(OPS->copy(BE, scene, x, (size_t)(rows * H))); /* S = x: no final norm */
    }
    for (int j = 0; j < n_targets; j++) {
        const int tp = target_parts[j];
        if (generator(ctx, n_tiles, n_parts, &parts[tp], tp, scene, cond, v[j])) return 1;
    }
    return 0;
}
