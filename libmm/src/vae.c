/*
 * The VAE (diffusers AutoencoderKL semantics, docs/architecture.md section 1), written against
 * the backend interface. Activations ping-pong between four workspace buffers sized for the
 * largest feature map; a resnet needs its input kept for the shortcut, so it uses three.
 */
#include <string.h>

#include "forward_ops.h"

static const float GN_EPS = 1e-6f;

typedef struct {
    float *buf[4];
    int n, c, h, w; /* shape of the current activation */
    int cur;        /* index of the buffer holding it */
} act;

static int other(const act *a, int not1, int not2) {
    for (int i = 0; i < 4; i++)
        if (i != a->cur && i != not1 && i != not2) return i;
    return -1;
}

static int gn(mm_context *ctx, float *y, const float *x, const act *a, mm_norm_w nw, int silu) {
    const float *g = OPS->resident(BE, nw.weight, a->c), *b = OPS->resident(BE, nw.bias, a->c);
    if (!g || !b) return mm_ctx_backend_failed(ctx, "group norm weights");
    TRY(OPS->group_norm(BE, y, x, a->n, a->c, (int64_t)a->h * a->w,
                        ctx->model->cfg.vae.norm_num_groups, GN_EPS, g, b, silu));
    return 0;
}

/* 3x3 same-size convolution (or 1x1) from buffer src to dst; updates channels. */
static int conv(mm_context *ctx, float *dst, const float *src, act *a, const mm_weight *w, int k) {
    const int p = k / 2, pad[4] = {p, p, p, p};
    TRY(OPS->conv2d(BE, dst, src, a->n, a->c, a->h, a->w, w, k, 1, pad));
    a->c = (int)w->rows;
    return 0;
}

static int resnet(mm_context *ctx, act *a, const mm_resnet_w *r) {
    const int in = a->cur, t1 = other(a, -1, -1), t2 = other(a, t1, -1);
    act s = *a;
    if (gn(ctx, a->buf[t1], a->buf[in], a, r->norm1, 1)) return 1;
    if (conv(ctx, a->buf[t2], a->buf[t1], &s, &r->conv1, 3)) return 1;
    act s2 = s;
    if (gn(ctx, a->buf[t1], a->buf[t2], &s2, r->norm2, 1)) return 1;
    if (conv(ctx, a->buf[t2], a->buf[t1], &s2, &r->conv2, 3)) return 1;
    const size_t n = (size_t)s2.n * s2.c * s2.h * s2.w;
    if (r->shortcut.rows) {
        act s3 = *a;
        if (conv(ctx, a->buf[t1], a->buf[in], &s3, &r->shortcut, 1)) return 1;
        TRY(OPS->axpby(BE, a->buf[t2], 1.0f, a->buf[t1], 1.0f, n));
    } else {
        TRY(OPS->axpby(BE, a->buf[t2], 1.0f, a->buf[in], 1.0f, n));
    }
    a->c = s2.c;
    a->cur = t2;
    return 0;
}

/* Single-head self-attention over the h*w positions, with residual. */
static int attention(mm_context *ctx, act *a, const mm_vae_attn_w *w) {
    const int in = a->cur, t1 = other(a, -1, -1), t2 = other(a, t1, -1), t3 = other(a, t1, t2);
    const int C = a->c;
    const int64_t hw = (int64_t)a->h * a->w, rows = (int64_t)a->n * hw;
    float *qkv = mm_ws(ctx, WS_QKV, (size_t)rows * 3 * C);
    if (!qkv) return 1;
    if (gn(ctx, a->buf[t1], a->buf[in], a, w->norm, 0)) return 1;
    TRY(OPS->transpose(BE, a->buf[t2], a->buf[t1], a->n, C, hw)); /* [n, hw, C] */
    TRY(OPS->linear(BE, qkv, a->buf[t2], rows, hw, &w->q, MM_ACT_NONE));
    TRY(OPS->attention(BE, a->buf[t1], qkv, a->n, (int)hw, 1, C));
    TRY(OPS->linear(BE, a->buf[t2], a->buf[t1], rows, hw, &w->out, MM_ACT_NONE));
    TRY(OPS->transpose(BE, a->buf[t3], a->buf[t2], a->n, hw, C)); /* back to [n, C, hw] */
    TRY(OPS->axpby(BE, a->buf[t3], 1.0f, a->buf[in], 1.0f, (size_t)(rows * C)));
    a->cur = t3;
    return 0;
}

static int mid(mm_context *ctx, act *a, const mm_vae_mid_w *m) {
    if (resnet(ctx, a, &m->res[0])) return 1;
    if (m->has_attn && attention(ctx, a, &m->attn)) return 1;
    return resnet(ctx, a, &m->res[1]);
}

/* Buffers large enough for every activation: the widest map is at full resolution with
 * block_out_channels[0] channels, or 2x that resolution's neighbour in channel count. */
static int buffers(mm_context *ctx, act *a, int n) {
    const mm_config *c = &ctx->model->cfg;
    size_t maxf = 0;
    for (int i = 0; i < c->vae.n_blocks; i++) {
        const size_t side = (size_t)c->image_size >> i;
        const size_t f = side * side * (size_t)c->vae.block_out_channels[i];
        /* decoder up block i works at the resolution before upsampling with the previous
         * (larger) channel count too */
        const size_t prev = i ? (size_t)c->vae.block_out_channels[i - 1] : 0;
        if (f > maxf) maxf = f;
        if (side * side * prev > maxf) maxf = side * side * prev;
        const size_t up = i + 1 < c->vae.n_blocks ? (size_t)c->vae.block_out_channels[i + 1] : 0;
        if (side * side * up > maxf) maxf = side * side * up;
    }
    const size_t img = (size_t)c->image_size * c->image_size * c->vae.in_channels;
    if (img > maxf) maxf = img;
    for (int i = 0; i < 4; i++) {
        a->buf[i] = mm_ws(ctx, WS_VAE_A + i, maxf * (size_t)n);
        if (!a->buf[i]) return 1;
    }
    return 0;
}

int mm_vae_encode_dev(mm_context *ctx, int modality, int n, const float *img, float *lat) {
    const mm_config *c = &ctx->model->cfg;
    const mm_vae_w *v = &ctx->model->vae;
    act a;
    if (buffers(ctx, &a, n)) return 1;
    const int S = c->image_size, L = c->vae.latent_channels;
    a.n = n;
    a.c = c->vae.in_channels;
    a.h = a.w = S;
    a.cur = 0;
    TRY(OPS->channels_adapt(BE, a.buf[1], img, n, c->modality_channels[modality], a.c,
                            (int64_t)S * S));
    if (conv(ctx, a.buf[0], a.buf[1], &a, &v->enc_conv_in, 3)) return 1;
    for (int i = 0; i < c->vae.n_blocks; i++) {
        for (int j = 0; j < v->down[i].n_res; j++)
            if (resnet(ctx, &a, &v->down[i].res[j])) return 1;
        if (v->down[i].has_sampler) { /* diffusers pads (0, 1, 0, 1), then stride 2 */
            const int pad[4] = {0, 0, 1, 1}, dst = other(&a, -1, -1);
            TRY(OPS->conv2d(BE, a.buf[dst], a.buf[a.cur], a.n, a.c, a.h, a.w, &v->down[i].sampler,
                            3, 2, pad));
            a.h = (a.h + 1 - 3) / 2 + 1;
            a.w = (a.w + 1 - 3) / 2 + 1;
            a.cur = dst;
        }
    }
    if (mid(ctx, &a, &v->enc_mid)) return 1;
    int t = other(&a, -1, -1);
    if (gn(ctx, a.buf[t], a.buf[a.cur], &a, v->enc_norm_out, 1)) return 1;
    a.cur = t;
    t = other(&a, -1, -1);
    if (conv(ctx, a.buf[t], a.buf[a.cur], &a, &v->enc_conv_out, 3)) return 1;
    a.cur = t;
    if (v->has_quant) {
        t = other(&a, -1, -1);
        if (conv(ctx, a.buf[t], a.buf[a.cur], &a, &v->quant, 1)) return 1;
        a.cur = t;
    }
    /* mean = first L of the 2L channels, per image; then (mean - shift) * scale, or with
     * diffusers' per-channel statistics (mean - shift - latents_mean[c]) * scale / latents_std[c]
     */
    const size_t plane = (size_t)a.h * a.w;
    const mm_vae_config *vc = &c->vae;
    for (int b = 0; b < n; b++) {
        if (!vc->has_latents_stats) {
            TRY(OPS->affine(BE, lat + (size_t)b * L * plane,
                            a.buf[a.cur] + (size_t)b * 2 * L * plane, vc->scaling_factor,
                            -vc->shift_factor * vc->scaling_factor, (size_t)L * plane));
            continue;
        }
        for (int ch = 0; ch < L; ch++) {
            const double g = (double)vc->scaling_factor / vc->latents_std[ch];
            const double o = -((double)vc->shift_factor + vc->latents_mean[ch]) * g;
            TRY(OPS->affine(BE, lat + ((size_t)b * L + ch) * plane,
                            a.buf[a.cur] + ((size_t)b * 2 * L + ch) * plane, (float)g, (float)o,
                            plane));
        }
    }
    return 0;
}

int mm_vae_decode_dev(mm_context *ctx, int modality, int n, const float *lat, float *img) {
    const mm_config *c = &ctx->model->cfg;
    const mm_vae_w *v = &ctx->model->vae;
    act a;
    if (buffers(ctx, &a, n)) return 1;
    const int L = c->vae.latent_channels, LS = c->latent_size;
    a.n = n;
    a.c = L;
    a.h = a.w = LS;
    a.cur = 0;
    if (!c->vae.has_latents_stats) {
        TRY(OPS->affine(BE, a.buf[0], lat, 1.0f / c->vae.scaling_factor, c->vae.shift_factor,
                        (size_t)n * L * LS * LS));
    } else { /* the inverse of the encoder's per-channel map */
        const size_t plane = (size_t)LS * LS;
        for (int b = 0; b < n; b++)
            for (int ch = 0; ch < L; ch++) {
                const size_t off = ((size_t)b * L + ch) * plane;
                const double g = (double)c->vae.latents_std[ch] / c->vae.scaling_factor;
                const double o = (double)c->vae.shift_factor + c->vae.latents_mean[ch];
                TRY(OPS->affine(BE, a.buf[0] + off, lat + off, (float)g, (float)o, plane));
            }
    }
    int t;
    if (v->has_post_quant) {
        t = other(&a, -1, -1);
        if (conv(ctx, a.buf[t], a.buf[a.cur], &a, &v->post_quant, 1)) return 1;
        a.cur = t;
    }
    t = other(&a, -1, -1);
    if (conv(ctx, a.buf[t], a.buf[a.cur], &a, &v->dec_conv_in, 3)) return 1;
    a.cur = t;
    if (mid(ctx, &a, &v->dec_mid)) return 1;
    for (int i = 0; i < c->vae.n_blocks; i++) {
        for (int j = 0; j < v->up[i].n_res; j++)
            if (resnet(ctx, &a, &v->up[i].res[j])) return 1;
        if (v->up[i].has_sampler) {
            t = other(&a, -1, -1);
            TRY(OPS->upsample2x(BE, a.buf[t], a.buf[a.cur], a.n, a.c, a.h, a.w));
            a.h *= 2;
            a.w *= 2;
            a.cur = t;
            t = other(&a, -1, -1);
            if (conv(ctx, a.buf[t], a.buf[a.cur], &a, &v->up[i].sampler, 3)) return 1;
            a.cur = t;
        }
    }
    t = other(&a, -1, -1);
    if (gn(ctx, a.buf[t], a.buf[a.cur], &a, v->dec_norm_out, 1)) return 1;
    a.cur = t;
    t = other(&a, -1, -1);
    if (conv(ctx, a.buf[t], a.buf[a.cur], &a, &v->dec_conv_out, 3)) return 1;
    a.cur = t;
    TRY(OPS->channels_adapt(BE, img, a.buf[a.cur], n, a.c, c->modality_channels[modality],
                            (int64_t)a.h * a.w));
    return 0;
}
