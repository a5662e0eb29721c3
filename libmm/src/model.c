/*
 * Model loading: the config (from the file's metadata) says which tensors must exist and with
 * which shapes (config.c's visitor is the single list); the file must hold exactly those.
 * Every tensor is converted to fp32 once, and matrix-product weights also to bf16, so the
 * forward passes never look at the file's dtypes.
 */
#include "model.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

typedef struct {
    char name[160];
    int64_t offset; /* in floats, into model->f32 */
    int ndim;
    int64_t shape[MM_ST_MAX_DIMS];
} slot;

typedef struct {
    slot *slots;
    size_t n, cap;
    int64_t total;
    mm_param_count *count;
} slot_list;

static int collect(const char *name, int ndim, const int64_t *shape, void *user) {
    slot_list *l = user;
    if (l->n == l->cap) {
        size_t nc = l->cap ? 2 * l->cap : 256;
        slot *ns = realloc(l->slots, nc * sizeof *ns);
        if (!ns) return 1;
        l->slots = ns;
        l->cap = nc;
    }
    slot *s = &l->slots[l->n++];
    snprintf(s->name, sizeof s->name, "%s", name);
    s->ndim = ndim;
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        s->shape[i] = shape[i];
        numel *= shape[i];
    }
    s->offset = l->total;
    l->total += numel;
    if (l->count) {
        switch (mm_config_tensor_module(name)) {
        case 0: l->count->vae += numel; break;
        case 1: l->count->scene += numel; break;
        case 2: l->count->generator += numel; break;
        default: l->count->embeddings += numel; break;
        }
        l->count->total += numel;
    }
    return 0;
}

static const slot *find_slot(const slot_list *l, const char *name) {
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->slots[i].name, name) == 0) return &l->slots[i];
    return NULL;
}

typedef struct {
    mm_model *m;
    const slot_list *l;
    int missing;
    char missing_name[160];
} binder;

static const float *vec(binder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const float *vec(binder *b, const char *fmt, ...) {
    char name[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    const slot *s = find_slot(b->l, name);
    if (!s) {
        if (!b->missing) snprintf(b->missing_name, sizeof b->missing_name, "%s", name);
        b->missing = 1;
        return NULL;
    }
    return b->m->f32 + s->offset;
}

/* "<prefix>.weight" (+ ".bias") as a matrix-product weight [shape0, prod(rest)]. */
static mm_weight lin(binder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static mm_weight lin(binder *b, const char *fmt, ...) {
    char prefix[140], name[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    mm_weight w = {0};
    snprintf(name, sizeof name, "%s.weight", prefix);
    const slot *s = find_slot(b->l, name);
    if (!s) {
        if (!b->missing) snprintf(b->missing_name, sizeof b->missing_name, "%s", name);
        b->missing = 1;
        return w;
    }
    w.rows = s->shape[0];
    w.cols = 1;
    for (int i = 1; i < s->ndim; i++)
        w.cols *= s->shape[i];
    w.f32 = b->m->f32 + s->offset;
    w.bf16 = b->m->bf16 + s->offset;
    snprintf(name, sizeof name, "%s.bias", prefix);
    const slot *sb = find_slot(b->l, name);
    w.bias = sb ? b->m->f32 + sb->offset : NULL;
    return w;
}

static mm_norm_w norm(binder *b, const char *prefix) {
    /* prefixes are at most 140 bytes; names at most 160 */
    mm_norm_w n;
    n.weight = vec(b, "%s.weight", prefix);
    n.bias = vec(b, "%s.bias", prefix);
    return n;
}

static mm_resnet_w resnet(binder *b, const char *prefix) {
    char p[160];
    mm_resnet_w r;
    memset(&r, 0, sizeof r);
    snprintf(p, sizeof p, "%s.norm1", prefix);
    r.norm1 = norm(b, p);
    snprintf(p, sizeof p, "%s.norm2", prefix);
    r.norm2 = norm(b, p);
    r.conv1 = lin(b, "%s.conv1", prefix);
    r.conv2 = lin(b, "%s.conv2", prefix);
    snprintf(p, sizeof p, "%s.conv_shortcut.weight", prefix);
    if (find_slot(b->l, p)) r.shortcut = lin(b, "%s.conv_shortcut", prefix);
    return r;
}

/* q, k and v are concatenated into one [3C, C] product so the attention kernel sees the
 * [q | k | v] layout the transformer blocks use. */
static int vae_attn(binder *b, const char *prefix, mm_vae_attn_w *a, float **qkv_store,
                    uint16_t **qkv_bf16) {
    char p[160];
    snprintf(p, sizeof p, "%s.group_norm", prefix);
    a->norm = norm(b, p);
    mm_weight q = lin(b, "%s.to_q", prefix), k = lin(b, "%s.to_k", prefix),
              v = lin(b, "%s.to_v", prefix);
    a->out = lin(b, "%s.to_out.0", prefix);
    if (b->missing) return 0;
    const int64_t C = q.rows, n = C * C;
    float *w = malloc((size_t)(3 * n + 3 * C) * sizeof(float));
    uint16_t *wb = malloc((size_t)(3 * n) * sizeof(uint16_t));
    if (!w || !wb) {
        free(w);
        free(wb);
        return 1;
    }
    const mm_weight *parts[3] = {&q, &k, &v};
    for (int i = 0; i < 3; i++) {
        memcpy(w + i * n, parts[i]->f32, (size_t)n * sizeof(float));
        memcpy(wb + i * n, parts[i]->bf16, (size_t)n * sizeof(uint16_t));
        memcpy(w + 3 * n + i * C, parts[i]->bias, (size_t)C * sizeof(float));
    }
    a->q = (mm_weight){3 * C, C, w, wb, w + 3 * n};
    *qkv_store = w;
    *qkv_bf16 = wb;
    return 0;
}

static int bind_vae(mm_model *m, binder *b) {
    const mm_vae_config *vc = &m->cfg.vae;
    mm_vae_w *v = &m->vae;
    char p[140];
    v->down = calloc((size_t)vc->n_blocks, sizeof *v->down);
    v->up = calloc((size_t)vc->n_blocks, sizeof *v->up);
    if (!v->down || !v->up) return 1;
    v->enc_conv_in = lin(b, "encoder.conv_in");
    for (int i = 0; i < vc->n_blocks; i++) {
        mm_vae_block_w *blk = &v->down[i];
        blk->n_res = vc->layers_per_block;
        blk->res = calloc((size_t)blk->n_res, sizeof *blk->res);
        if (!blk->res) return 1;
        for (int j = 0; j < blk->n_res; j++) {
            snprintf(p, sizeof p, "encoder.down_blocks.%d.resnets.%d", i, j);
            blk->res[j] = resnet(b, p);
        }
        blk->has_sampler = i < vc->n_blocks - 1;
        if (blk->has_sampler)
            blk->sampler = lin(b, "encoder.down_blocks.%d.downsamplers.0.conv", i);
    }
    for (int e = 0; e < 2; e++) {
        const char *side = e ? "decoder" : "encoder";
        mm_vae_mid_w *mid = e ? &v->dec_mid : &v->enc_mid;
        for (int j = 0; j < 2; j++) {
            snprintf(p, sizeof p, "%s.mid_block.resnets.%d", side, j);
            mid->res[j] = resnet(b, p);
        }
        mid->has_attn = vc->mid_block_add_attention;
        if (mid->has_attn) {
            snprintf(p, sizeof p, "%s.mid_block.attentions.0", side);
            float **store = e ? &m->vae_qkv[1] : &m->vae_qkv[0];
            uint16_t **sb = e ? &m->vae_qkv_bf16[1] : &m->vae_qkv_bf16[0];
            if (vae_attn(b, p, &mid->attn, store, sb)) return 1;
        }
    }
    v->enc_norm_out = norm(b, "encoder.conv_norm_out");
    v->enc_conv_out = lin(b, "encoder.conv_out");
    v->has_quant = vc->use_quant_conv;
    if (v->has_quant) v->quant = lin(b, "quant_conv");
    v->has_post_quant = vc->use_post_quant_conv;
    if (v->has_post_quant) v->post_quant = lin(b, "post_quant_conv");
    v->dec_conv_in = lin(b, "decoder.conv_in");
    for (int i = 0; i < vc->n_blocks; i++) {
        mm_vae_block_w *blk = &v->up[i];
        blk->n_res = vc->layers_per_block + 1;
        blk->res = calloc((size_t)blk->n_res, sizeof *blk->res);
        if (!blk->res) return 1;
        for (int j = 0; j < blk->n_res; j++) {
            snprintf(p, sizeof p, "decoder.up_blocks.%d.resnets.%d", i, j);
            blk->res[j] = resnet(b, p);
        }
        blk->has_sampler = i < vc->n_blocks - 1;
        if (blk->has_sampler) blk->sampler = lin(b, "decoder.up_blocks.%d.upsamplers.0.conv", i);
    }
    v->dec_norm_out = norm(b, "decoder.conv_norm_out");
    v->dec_conv_out = lin(b, "decoder.conv_out");
    return 0;
}

static int bind_dit(mm_model *m, binder *b) {
    const mm_config *c = &m->cfg;
    mm_dit_w *d = &m->dit;
    const int M = c->n_modalities;
    d->t_mlp0 = lin(b, "t_embedder.mlp.0");
    d->t_mlp2 = lin(b, "t_embedder.mlp.2");
    d->modality_embed = vec(b, "modality_embed");
    d->scene_embed = calloc((size_t)M, sizeof *d->scene_embed);
    d->gen_embed = calloc((size_t)M, sizeof *d->gen_embed);
    d->scene = calloc((size_t)c->dit.scene_depth, sizeof *d->scene);
    d->gen = calloc((size_t)c->dit.gen_depth, sizeof *d->gen);
    if (!d->scene_embed || !d->gen_embed || !d->scene || !d->gen) return 1;
    for (int i = 0; i < M; i++) {
        d->scene_embed[i] = lin(b, "scene.x_embedder.%d", i);
        d->gen_embed[i] = lin(b, "gen.x_embedder.%d", i);
    }
    for (int s = 0; s < 2; s++) {
        const int depth = s ? c->dit.gen_depth : c->dit.scene_depth;
        const int branches = s ? c->dit.ffn_branches : 1;
        const char *mod = s ? "gen" : "scene";
        for (int i = 0; i < depth; i++) {
            mm_block_w *blk = s ? &d->gen[i] : &d->scene[i];
            blk->ada = lin(b, "%s.blocks.%d.adaLN_modulation.1", mod, i);
            blk->qkv = lin(b, "%s.blocks.%d.attn.qkv", mod, i);
            blk->proj = lin(b, "%s.blocks.%d.attn.proj", mod, i);
            blk->fc1 = calloc((size_t)branches, sizeof *blk->fc1);
            blk->fc2 = calloc((size_t)branches, sizeof *blk->fc2);
            if (!blk->fc1 || !blk->fc2) return 1;
            for (int r = 0; r < branches; r++) {
                if (s) {
                    blk->fc1[r] = lin(b, "gen.blocks.%d.mlp.%d.fc1", i, r);
                    blk->fc2[r] = lin(b, "gen.blocks.%d.mlp.%d.fc2", i, r);
                } else {
                    blk->fc1[r] = lin(b, "scene.blocks.%d.mlp.fc1", i);
                    blk->fc2[r] = lin(b, "scene.blocks.%d.mlp.fc2", i);
                }
            }
        }
    }
    if (c->dit.scene_norm_out) d->scene_norm_out = norm(b, "scene.norm_out");
    d->final_ada = lin(b, "gen.final_layer.adaLN_modulation.1");
    d->final_linear = lin(b, "gen.final_layer.linear");
    return 0;
}

/* The fixed 2-D sin-cos position embedding (docs/architecture.md section 2): the first half
 * encodes the row, or the column for models trained with DiT/MAE's table (column_first). */
static void pos_embed(float *pe, int T, int H, int column_first) {
    const int q = H / 4;
    for (int r = 0; r < T; r++)
        for (int c = 0; c < T; c++) {
            float *row = pe + ((int64_t)r * T + c) * H;
            const int a = column_first ? c : r, b = column_first ? r : c;
            for (int i = 0; i < q; i++) {
                const double w = pow(10000.0, -(double)i / q);
                row[i] = (float)sin(a * w);
                row[q + i] = (float)cos(a * w);
                row[2 * q + i] = (float)sin(b * w);
                row[3 * q + i] = (float)cos(b * w);
            }
        }
}

static void free_blocks(mm_block_w *blocks, int n) {
    if (!blocks) return;
    for (int i = 0; i < n; i++) {
        free(blocks[i].fc1);
        free(blocks[i].fc2);
    }
    free(blocks);
}

void mm_model_close(mm_model *m) {
    if (!m) return;
    if (m->vae.down)
        for (int i = 0; i < m->cfg.vae.n_blocks; i++)
            free(m->vae.down[i].res);
    if (m->vae.up)
        for (int i = 0; i < m->cfg.vae.n_blocks; i++)
            free(m->vae.up[i].res);
    free(m->vae.down);
    free(m->vae.up);
    for (int i = 0; i < 2; i++) {
        free(m->vae_qkv[i]);
        free(m->vae_qkv_bf16[i]);
    }
    free(m->dit.scene_embed);
    free(m->dit.gen_embed);
    free_blocks(m->dit.scene, m->cfg.dit.scene_depth);
    free_blocks(m->dit.gen, m->cfg.dit.gen_depth);
    free(m->f32);
    free(m->bf16);
    free(m->pos_embed);
    free(m->config_json);
    free(m->path);
    mm_st_close(m->file);
    free(m);
}

mm_status mm_config_param_count(const char *config_json, mm_param_count *out, char **errmsg) {
    mm_config cfg;
    char err[512];
    if (errmsg) *errmsg = NULL;
    memset(out, 0, sizeof *out);
    if (!config_json) {
        mm_set_errmsg(errmsg, "no config given");
        return MM_ERROR_ARGUMENT;
    }
    if (mm_config_parse(config_json, &cfg, err, sizeof err)) {
        mm_set_errmsg(errmsg, "invalid config: %s", err);
        return MM_ERROR_CONFIG;
    }
    slot_list l = {0};
    l.count = out;
    int rc = mm_config_visit_tensors(&cfg, collect, &l);
    free(l.slots);
    if (rc) {
        mm_set_errmsg(errmsg, "out of memory");
        return MM_ERROR_NOMEM;
    }
    return MM_OK;
}

/* The weight stores (fp32 and its bf16 copy) and the positional embedding of a model whose
 * config is parsed; freed by mm_model_close whether or not this succeeds. */
static mm_status alloc_weights(mm_model *m, int64_t total, char **errmsg) {
    m->f32 = malloc((size_t)total * sizeof(float));
    m->bf16 = malloc((size_t)total * sizeof(uint16_t));
    m->pos_embed = malloc((size_t)m->cfg.n_tokens * m->cfg.dit.hidden_size * sizeof(float));
    if (!m->f32 || !m->bf16 || !m->pos_embed) {
        mm_set_errmsg(errmsg, "out of memory for %lld parameters", (long long)total);
        return MM_ERROR_NOMEM;
    }
    return MM_OK;
}

/* Position table and weight binding, once every tensor is in m->f32 / m->bf16. */
static mm_status finish(mm_model *m, const slot_list *l, char **errmsg) {
    pos_embed(m->pos_embed, m->cfg.tokens_per_side, m->cfg.dit.hidden_size,
              m->cfg.dit.pos_column_first);
    binder b = {m, l, 0, ""};
    if (bind_vae(m, &b) || bind_dit(m, &b)) {
        mm_set_errmsg(errmsg, "out of memory");
        return MM_ERROR_NOMEM;
    }
    if (b.missing) { /* the visitor and the binder disagree: a bug, not bad input */
        mm_set_errmsg(errmsg, "internal error: tensor '%s' not bound", b.missing_name);
        return MM_ERROR_CONFIG;
    }
    return MM_OK;
}

mm_status mm_model_create_random(const char *config_json, uint64_t seed, mm_model **out,
                                 char **errmsg) {
    char err[512];
    slot_list l = {0};
    mm_status st = MM_OK;
    if (errmsg) *errmsg = NULL;
    if (!out) return MM_ERROR_ARGUMENT;
    *out = NULL;
    mm_model *m = calloc(1, sizeof *m);
    if (!m || !config_json || !(m->path = strdup("(random weights)")) ||
        !(m->config_json = strdup(config_json))) {
        mm_model_close(m);
        mm_set_errmsg(errmsg, config_json ? "out of memory" : "no config given");
        return config_json ? MM_ERROR_NOMEM : MM_ERROR_ARGUMENT;
    }
    if (mm_config_parse(config_json, &m->cfg, err, sizeof err)) {
        mm_set_errmsg(errmsg, "invalid config: %s", err);
        st = MM_ERROR_CONFIG;
        goto fail;
    }
    l.count = &m->params;
    if (mm_config_visit_tensors(&m->cfg, collect, &l)) {
        st = MM_ERROR_NOMEM;
        goto fail;
    }
    if ((st = alloc_weights(m, l.total, errmsg)) != MM_OK) goto fail;
    /* uniform in +-1/sqrt(fan_in) for matrices (PyTorch's default scale), 1 +- 0.1 for norm
     * weights, +-0.02 for vectors: activations stay in a realistic range for benchmarks */
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    for (size_t i = 0; i < l.n; i++) {
        const slot *s = &l.slots[i];
        int64_t n = 1, fan_in = 1;
        for (int d = 0; d < s->ndim; d++)
            n *= s->shape[d];
        for (int d = 1; d < s->ndim; d++)
            fan_in *= s->shape[d];
        const int is_norm = strstr(s->name, "norm") && strstr(s->name, ".weight");
        const float scale = s->ndim >= 2 ? 1.0f / sqrtf((float)fan_in) : 0.02f;
        float *dst = m->f32 + s->offset;
        for (int64_t k = 0; k < n; k += 4) {
            const uint32_t ctr[4] = {(uint32_t)k, (uint32_t)i, 0x5eed, 0};
            uint32_t w[4];
            mm_philox4x32_10(ctr, key, w);
            for (int q = 0; q < 4 && k + q < n; q++) {
                const float u = (float)(w[q] * (1.0 / 4294967296.0)) * 2.0f - 1.0f;
                dst[k + q] = is_norm ? 1.0f + 0.1f * u : scale * u;
                m->bf16[s->offset + k + q] = mm_f32_to_bf16(dst[k + q]);
            }
        }
        m->dtypes.f32 += n;
    }
    if ((st = finish(m, &l, errmsg)) != MM_OK) goto fail;
    free(l.slots);
    *out = m;
    return MM_OK;
fail:
    if (errmsg && !*errmsg) mm_set_errmsg(errmsg, "%s", mm_status_string(st));
    free(l.slots);
    mm_model_close(m);
    return st;
}

mm_status mm_model_open(const char *path, mm_model **out, char **errmsg) {
    char err[1024];
    mm_status st = MM_OK;
    slot_list l = {0};
    if (errmsg) *errmsg = NULL;
    if (!out) return MM_ERROR_ARGUMENT;
    *out = NULL;
    if (!path) {
        mm_set_errmsg(errmsg, "no model path given");
        return MM_ERROR_ARGUMENT;
    }
    mm_model *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(path))) {
        free(m);
        mm_set_errmsg(errmsg, "out of memory");
        return MM_ERROR_NOMEM;
    }
    if (mm_st_open(path, &m->file, err, sizeof err)) {
        mm_set_errmsg(errmsg, "%s", err);
        st = MM_ERROR_FORMAT;
        goto fail;
    }
    const char *cj = mm_st_metadata(m->file, "config");
    if (!cj) {
        mm_set_errmsg(errmsg, "%s: no model config (__metadata__.config) in the file", path);
        st = MM_ERROR_CONFIG;
        goto fail;
    }
    if (mm_config_parse(cj, &m->cfg, err, sizeof err)) {
        mm_set_errmsg(errmsg, "%s: invalid config: %s", path, err);
        st = MM_ERROR_CONFIG;
        goto fail;
    }
    if (!(m->config_json = strdup(cj))) {
        st = MM_ERROR_NOMEM;
        goto fail;
    }
    l.count = &m->params;
    if (mm_config_visit_tensors(&m->cfg, collect, &l)) {
        st = MM_ERROR_NOMEM;
        goto fail;
    }
    /* shapes and presence first, so a wrong file fails before any large allocation */
    for (size_t i = 0; i < l.n; i++) {
        const slot *s = &l.slots[i];
        const mm_st_tensor *t = mm_st_find(m->file, s->name);
        if (!t) {
            mm_set_errmsg(errmsg, "%s: tensor '%s' required by the config is missing", path,
                          s->name);
            st = MM_ERROR_CONFIG;
            goto fail;
        }
        int same = t->ndim == s->ndim;
        for (int d = 0; same && d < s->ndim; d++)
            same = t->shape[d] == s->shape[d];
        if (!same) {
            char want[128], got[128];
            mm_format_shape(want, sizeof want, s->ndim, s->shape);
            mm_format_shape(got, sizeof got, t->ndim, t->shape);
            mm_set_errmsg(errmsg, "%s: tensor '%s' has shape %s, the config implies %s", path,
                          s->name, got, want);
            st = MM_ERROR_CONFIG;
            goto fail;
        }
    }
    if (mm_st_count(m->file) != l.n) {
        for (size_t i = 0; i < mm_st_count(m->file); i++) {
            const mm_st_tensor *t = mm_st_get(m->file, i);
            if (!find_slot(&l, t->name)) {
                mm_set_errmsg(errmsg,
                              "%s: tensor '%s' is not part of the model the config describes", path,
                              t->name);
                break;
            }
        }
        st = MM_ERROR_CONFIG;
        goto fail;
    }
    if ((st = alloc_weights(m, l.total, errmsg)) != MM_OK) goto fail;
    for (size_t i = 0; i < l.n; i++) {
        const mm_st_tensor *t = mm_st_find(m->file, l.slots[i].name);
        float *dst = m->f32 + l.slots[i].offset;
        mm_st_to_f32(t, dst);
        if (t->dtype == MM_ST_F16)
            m->dtypes.f16 += t->numel;
        else if (t->dtype == MM_ST_BF16)
            m->dtypes.bf16 += t->numel;
        else
            m->dtypes.f32 += t->numel;
        for (int64_t k = 0; k < t->numel; k++) {
            if (!isfinite(dst[k])) {
                mm_set_errmsg(errmsg, "%s: tensor '%s' holds a non-finite value at %lld", path,
                              t->name, (long long)k);
                st = MM_ERROR_FORMAT;
                goto fail;
            }
            m->bf16[l.slots[i].offset + k] = mm_f32_to_bf16(dst[k]);
        }
    }
    /* the mapping is no longer needed: everything lives in f32/bf16 now */
    mm_st_close(m->file);
    m->file = NULL;
    if ((st = finish(m, &l, errmsg)) != MM_OK) goto fail;
    free(l.slots);
    *out = m;
    return MM_OK;
fail:
    if (errmsg && !*errmsg) mm_set_errmsg(errmsg, "%s: %s", path, mm_status_string(st));
    free(l.slots);
    mm_model_close(m);
    return st;
}

void mm_model_param_count(const mm_model *m, mm_param_count *out) {
    *out = m->params;
}
void mm_model_dtype_count(const mm_model *m, mm_dtype_count *out) {
    *out = m->dtypes;
}
int mm_model_num_modalities(const mm_model *m) {
    return m->cfg.n_modalities;
}
const char *mm_model_modality_name(const mm_model *m, int i) {
    return (i >= 0 && i < m->cfg.n_modalities) ? m->cfg.modalities[i] : NULL;
}
int mm_model_modality_index(const mm_model *m, const char *name) {
    for (int i = 0; name && i < m->cfg.n_modalities; i++)
        if (strcmp(m->cfg.modalities[i], name) == 0) return i;
    return -1;
}
int mm_model_modality_channels(const mm_model *m, int i) {
    return (i >= 0 && i < m->cfg.n_modalities) ? m->cfg.modality_channels[i] : 0;
}
int mm_model_image_size(const mm_model *m) {
    return m->cfg.image_size;
}
int mm_model_hidden_size(const mm_model *m) {
    return m->cfg.dit.hidden_size;
}
int mm_model_tokens_per_side(const mm_model *m) {
    return m->cfg.tokens_per_side;
}
int mm_model_latent_channels(const mm_model *m) {
    return m->cfg.vae.latent_channels;
}
int mm_model_latent_size(const mm_model *m) {
    return m->cfg.latent_size;
}
const char *mm_model_config_json(const mm_model *m) {
    return m->config_json;
}
const char *mm_model_name(const mm_model *m) {
    return m->cfg.name;
}
