/*
 * Working memory planned up front (docs/cuda.md, "Memory").
 *
 * A sizing pass runs one sampling step of the workload through a "dry" backend: every operation
 * succeeds without computing, alloc() hands out placeholder addresses (never dereferenced: model
 * code does only pointer arithmetic on backend buffers) and records the sizes, and the products,
 * convolutions and attention calls go to the real backend with b->dry set, where a device
 * backend uploads the weights (once, for good), chooses its product plans and records the
 * scratch it would need. Every sampling step has the same shapes, so one step sizes them all.
 * The workspace slots (context.h) and the backend's scratch are then carved from ONE allocation,
 * the arena; a call of that workload allocates nothing afterwards (mm_context_alloc_count).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "context.h"
#include "util.h"

#define ALIGN 256 /* every slot starts 256-byte aligned, as cudaMalloc's blocks do */
static size_t align_up(size_t n) {
    return (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
}

/* ---- the dry backend ------------------------------------------------------------------------ */

typedef struct {
    mm_backend base;
    mm_backend *real;
    uintptr_t next; /* next placeholder address */
} dry_backend;

static dry_backend *dry(mm_backend *b) {
    return (dry_backend *)b;
}

/* forwards a call to the real backend with its dry flag set (device backends size scratch) */
static int dry_forward_fail(mm_backend *b) {
    snprintf(b->errmsg, sizeof b->errmsg, "%s", dry(b)->real->errmsg);
    return 1;
}

static void dry_destroy(mm_backend *b) {
    (void)b;
}

static const float *dry_resident(mm_backend *b, const float *host, size_t n) {
    mm_backend *r = dry(b)->real;
    const float *p = r->ops->resident(r, host, n);
    if (!p) dry_forward_fail(b);
    return p;
}

static float *dry_alloc(mm_backend *b, size_t n) {
    dry_backend *d = dry(b);
    float *p = (float *)d->next;
    d->next += align_up((n ? n : 1) * sizeof(float));
    return p;
}

static void dry_free(mm_backend *b, float *p) {
    (void)b, (void)p;
}

static int dry_xfer(mm_backend *b, float *dst, const float *src, size_t n) {
    (void)b, (void)dst, (void)src, (void)n;
    return 0;
}

static int dry_linear(mm_backend *b, float *y, const float *x, int64_t M, int64_t rpi,
                      const mm_weight *W, mm_activation act) {
    mm_backend *r = dry(b)->real;
    if (!r->ops->scratch_plan) return 0;
    r->dry = 1;
    const int rc = r->ops->linear(r, y, x, M, rpi, W, act);
    r->dry = 0;
    return rc ? dry_forward_fail(b) : 0;
}

static int dry_conv2d(mm_backend *b, float *y, const float *x, int n, int cin, int h, int w,
                      const mm_weight *W, int k, int stride, const int pad[4]) {
    mm_backend *r = dry(b)->real;
    if (!r->ops->scratch_plan) return 0;
    r->dry = 1;
    const int rc = r->ops->conv2d(r, y, x, n, cin, h, w, W, k, stride, pad);
    r->dry = 0;
    return rc ? dry_forward_fail(b) : 0;
}

static int dry_attention(mm_backend *b, float *out, const float *qkv, int n_seq, int S, int nh,
                         int hd) {
    mm_backend *r = dry(b)->real;
    if (!r->ops->scratch_plan) return 0;
    r->dry = 1;
    const int rc = r->ops->attention(r, out, qkv, n_seq, S, nh, hd);
    r->dry = 0;
    return rc ? dry_forward_fail(b) : 0;
}

static int dry_ln_mod(mm_backend *b, float *y, const float *x, int64_t rows, int H, float eps,
                      mm_modulation s, mm_modulation c) {
    (void)b, (void)y, (void)x, (void)rows, (void)H, (void)eps, (void)s, (void)c;
    return 0;
}
static int dry_ln_aff(mm_backend *b, float *y, const float *x, int64_t rows, int H, float eps,
                      const float *w, const float *bias) {
    (void)b, (void)y, (void)x, (void)rows, (void)H, (void)eps, (void)w, (void)bias;
    return 0;
}
static int dry_gated(mm_backend *b, float *x, const float *y, int64_t rows, int H,
                     mm_modulation g) {
    (void)b, (void)x, (void)y, (void)rows, (void)H, (void)g;
    return 0;
}
static int dry_gn(mm_backend *b, float *y, const float *x, int n, int c, int64_t hw, int groups,
                  float eps, const float *gamma, const float *beta, int silu) {
    (void)b, (void)y, (void)x, (void)n, (void)c, (void)hw, (void)groups, (void)eps, (void)gamma,
        (void)beta, (void)silu;
    return 0;
}
static int dry_silu(mm_backend *b, float *y, const float *x, size_t n) {
    (void)b, (void)y, (void)x, (void)n;
    return 0;
}
static int dry_axpby(mm_backend *b, float *y, float a, const float *x, float c, size_t n) {
    (void)b, (void)y, (void)a, (void)x, (void)c, (void)n;
    return 0;
}
static int dry_affine(mm_backend *b, float *y, const float *x, float a, float c, size_t n) {
    (void)b, (void)y, (void)x, (void)a, (void)c, (void)n;
    return 0;
}
static int dry_add_grouped(mm_backend *b, float *x, int64_t rows, int H, mm_modulation v) {
    (void)b, (void)x, (void)rows, (void)H, (void)v;
    return 0;
}
static int dry_add_rows(mm_backend *b, float *x, const float *v, int64_t rows, int64_t period,
                        int H) {
    (void)b, (void)x, (void)v, (void)rows, (void)period, (void)H;
    return 0;
}
static int dry_up(mm_backend *b, float *y, const float *x, int n, int c, int h, int w) {
    (void)b, (void)y, (void)x, (void)n, (void)c, (void)h, (void)w;
    return 0;
}
static int dry_transpose(mm_backend *b, float *y, const float *x, int n, int64_t rows,
                         int64_t cols) {
    (void)b, (void)y, (void)x, (void)n, (void)rows, (void)cols;
    return 0;
}
static int dry_patch(mm_backend *b, float *y, const float *x, int n, int C, int L, int p) {
    (void)b, (void)y, (void)x, (void)n, (void)C, (void)L, (void)p;
    return 0;
}
static int dry_noise(mm_backend *b, float *y, uint64_t seed, uint64_t tile, int purpose, int mod,
                     int step, size_t n) {
    (void)b, (void)y, (void)seed, (void)tile, (void)purpose, (void)mod, (void)step, (void)n;
    return 0;
}
static int dry_adapt(mm_backend *b, float *y, const float *x, int n, int cin, int cout,
                     int64_t hw) {
    (void)b, (void)y, (void)x, (void)n, (void)cin, (void)cout, (void)hw;
    return 0;
}

static const mm_backend_ops dry_ops = {
    .name = "dry run",
    .destroy = dry_destroy,
    .resident = dry_resident,
    .alloc = dry_alloc,
    .free = dry_free,
    .upload = dry_xfer,
    .download = dry_xfer,
    .copy = dry_xfer,
    .linear = dry_linear,
    .conv2d = dry_conv2d,
    .attention = dry_attention,
    .layernorm_modulate = dry_ln_mod,
    .layernorm_affine = dry_ln_aff,
    .gated_add = dry_gated,
    .group_norm = dry_gn,
    .silu = dry_silu,
    .axpby = dry_axpby,
    .affine = dry_affine,
    .add_grouped = dry_add_grouped,
    .add_rows = dry_add_rows,
    .upsample2x = dry_up,
    .transpose = dry_transpose,
    .patchify = dry_patch,
    .unpatchify = dry_patch,
    .noise = dry_noise,
    .channels_adapt = dry_adapt,
};

/* ---- sizing --------------------------------------------------------------------------------- */

static int check_workload(mm_context *ctx, const mm_workload *w) {
    if (!w) {
        mm_ctx_seterr(ctx, "no workload given");
        return 1;
    }
    if (w->n_sources < 0 || w->n_sources > MM_MAX_MODALITIES || w->n_targets < 1 ||
        w->n_targets > MM_MAX_MODALITIES || (w->n_sources && !w->source_mods) || !w->target_mods) {
        mm_ctx_seterr(ctx,
                      "workload: %d sources and %d targets (at least one target, at most "
                      "%d each) or modality arrays missing",
                      w->n_sources, w->n_targets, MM_MAX_MODALITIES);
        return 1;
    }
    return 0;
}

/* One dry sampling step of w at n tiles: the workspace bytes (*ws), each slot's floats (caps,
 * may be NULL) and the backend scratch (*scratch) it needs. The context's buffers are left as
 * they were. */
static mm_status measure(mm_context *ctx, const mm_workload *w, int n, size_t *caps, size_t *ws,
                         size_t *scratch) {
    mm_backend *real = ctx->be;
    float *saved_ws[WS_COUNT];
    size_t saved_cap[WS_COUNT];
    unsigned char saved_in[WS_COUNT];
    memcpy(saved_ws, ctx->ws, sizeof saved_ws);
    memcpy(saved_cap, ctx->ws_cap, sizeof saved_cap);
    memcpy(saved_in, ctx->ws_in_arena, sizeof saved_in);
    memset(ctx->ws, 0, sizeof ctx->ws);
    memset(ctx->ws_cap, 0, sizeof ctx->ws_cap);
    memset(ctx->ws_in_arena, 0, sizeof ctx->ws_in_arena);

    dry_backend d;
    memset(&d, 0, sizeof d);
    d.base.ops = &dry_ops;
    d.base.use_bf16 = real->use_bf16;
    d.base.n_threads = real->n_threads;
    d.real = real;
    d.next = (uintptr_t)1 << 40; /* placeholders: aligned, never dereferenced */

    mm_sample_params p;
    mm_sample_params_default(ctx->model, &p);
    p.steps = 1; /* every step has the same shapes */
    p.guidance = w->guidance;
    p.joint_guidance = w->joint_guidance;
    p.progress = NULL;
    uint64_t *ids = calloc((size_t)(n > 0 ? n : 1), sizeof *ids);
    static const float placeholder = 0.0f; /* host buffers: never read (upload is a no-op) */
    const float *srcs[MM_MAX_MODALITIES];
    float *tgts[MM_MAX_MODALITIES];
    for (int i = 0; i < MM_MAX_MODALITIES; i++)
        srcs[i] = &placeholder, tgts[i] = (float *)&placeholder;
    mm_status st = MM_ERROR_NOMEM;
    if (ids) {
        if (real->ops->scratch_plan) real->ops->scratch_plan(real, 1);
        ctx->be = &d.base;
        st = mm_translate(ctx, &p, n, ids, w->n_sources, w->source_mods, srcs, w->n_targets,
                          w->target_mods, tgts);
        ctx->be = real;
    } else {
        mm_ctx_seterr(ctx, "out of memory");
    }
    free(ids);
    size_t total = 0;
    for (int i = 0; i < WS_COUNT; i++) {
        if (ctx->ws_cap[i]) total += align_up(ctx->ws_cap[i] * sizeof(float));
        if (caps) caps[i] = ctx->ws_cap[i];
    }
    *ws = total;
    *scratch = real->ops->scratch_plan ? real->ops->scratch_plan(real, 0) : 0;
    memcpy(ctx->ws, saved_ws, sizeof saved_ws);
    memcpy(ctx->ws_cap, saved_cap, sizeof saved_cap);
    memcpy(ctx->ws_in_arena, saved_in, sizeof saved_in);
    return st;
}

/* Frees the working memory (workspace slots, arena); the backend's scratch goes back to its own
 * allocations. */
void mm_ctx_release_memory(mm_context *ctx) {
    mm_backend *b = ctx->be;
    for (int i = 0; i < WS_COUNT; i++) {
        if (ctx->ws[i] && !ctx->ws_in_arena[i]) b->ops->free(b, ctx->ws[i]);
        ctx->ws[i] = NULL;
        ctx->ws_cap[i] = 0;
        ctx->ws_in_arena[i] = 0;
    }
    if (ctx->arena) {
        if (b->ops->scratch_adopt) b->ops->scratch_adopt(b, NULL, 0);
        b->ops->free(b, ctx->arena);
        ctx->arena = NULL;
        ctx->arena_bytes = 0;
    }
}

static void mem_free_total(mm_backend *b, size_t *fr, size_t *tot) {
    *fr = *tot = 0;
    if (b->ops->mem_info && b->ops->mem_info(b, fr, tot)) *fr = *tot = 0;
}

mm_status mm_context_plan(mm_context *ctx, const mm_workload *w, mm_memory_plan *out) {
    if (!ctx) return MM_ERROR_ARGUMENT;
    ctx->errmsg[0] = 0;
    if (check_workload(ctx, w)) return MM_ERROR_ARGUMENT;
    size_t ws = 0, sc = 0;
    mm_status st = measure(ctx, w, w->n_tiles, NULL, &ws, &sc);
    if (st != MM_OK) return st;
    if (out) {
        memset(out, 0, sizeof *out);
        out->n_tiles = w->n_tiles;
        out->workspace = ws;
        out->scratch = sc;
        out->total = ws + sc;
        mem_free_total(ctx->be, &out->free_bytes, &out->device_bytes);
        out->arena = ctx->arena_bytes;
    }
    return MM_OK;
}

/* The usable share of free memory: 95 % less a fixed reserve for what the runtime and the
 * libraries allocate themselves (lazily loaded kernels, library handles): 512 MiB on a device,
 * 256 MiB on the host. */
static size_t usable(const mm_backend *b, size_t fr) {
    const size_t keep = (b->ops->host_memory ? 256u : 512u) << 20;
    const size_t u = fr / 20 * 19;
    return u > keep ? u - keep : 0;
}

static mm_status reserve_at(mm_context *ctx, const mm_workload *w, int n, size_t budget,
                            mm_memory_plan *out) {
    mm_backend *b = ctx->be;
    size_t caps[WS_COUNT], ws = 0, sc = 0, fr = 0, tot = 0;
    mm_status st = measure(ctx, w, n, caps, &ws, &sc);
    if (st != MM_OK) return st;
    mm_ctx_release_memory(ctx); /* the old working memory counts as free */
    mem_free_total(b, &fr, &tot);
    if (out) {
        memset(out, 0, sizeof *out);
        out->n_tiles = n;
        out->workspace = ws;
        out->scratch = sc;
        out->total = ws + sc;
        out->free_bytes = fr;
        out->device_bytes = tot;
    }
    const size_t limit = budget ? budget : usable(b, fr);
    if ((budget || b->ops->mem_info) && ws + sc > limit) {
        mm_ctx_seterr(ctx,
                      "not enough memory on the %s backend for %d tile%s: the working memory "
                      "needs %zu MiB (workspace %zu MiB + backend scratch %zu MiB) but %s "
                      "%zu MiB (%zu MiB free of %zu MiB); use a smaller batch",
                      b->ops->name, n, n == 1 ? "" : "s", (ws + sc + (1u << 20) - 1) >> 20,
                      ws >> 20, sc >> 20, budget ? "the budget is" : "the usable share is",
                      limit >> 20, fr >> 20, tot >> 20);
        return MM_ERROR_NOMEM;
    }
    float *arena = b->ops->alloc(b, (ws + sc) / sizeof(float));
    if (!arena) {
        mm_ctx_seterr(ctx,
                      "cannot allocate the %zu MiB of working memory for %d tile%s (%zu MiB "
                      "free of %zu MiB): %s",
                      (ws + sc) >> 20, n, n == 1 ? "" : "s", fr >> 20, tot >> 20, b->errmsg);
        return MM_ERROR_NOMEM;
    }
    size_t off = 0;
    for (int i = 0; i < WS_COUNT; i++) {
        if (!caps[i]) continue;
        ctx->ws[i] = (float *)((char *)arena + off);
        ctx->ws_cap[i] = caps[i];
        ctx->ws_in_arena[i] = 1;
        off += align_up(caps[i] * sizeof(float));
    }
    ctx->arena = arena;
    ctx->arena_bytes = ws + sc;
    if (b->ops->scratch_adopt && sc && b->ops->scratch_adopt(b, (char *)arena + off, sc)) {
        mm_ctx_seterr(ctx, "%s backend: %s", b->ops->name, b->errmsg);
        mm_ctx_release_memory(ctx);
        return MM_ERROR_BACKEND;
    }
    if (out) out->arena = ctx->arena_bytes;
    return MM_OK;
}

mm_status mm_context_reserve(mm_context *ctx, const mm_workload *w, size_t budget,
                             mm_memory_plan *out) {
    if (!ctx) return MM_ERROR_ARGUMENT;
    ctx->errmsg[0] = 0;
    if (check_workload(ctx, w)) return MM_ERROR_ARGUMENT;
    if (w->n_tiles < 1 || w->n_tiles > 4096) {
        mm_ctx_seterr(ctx, "tile count must be in 1..4096, got %d", w->n_tiles);
        return MM_ERROR_ARGUMENT;
    }
    return reserve_at(ctx, w, w->n_tiles, budget, out);
}

mm_status mm_context_reserve_auto(mm_context *ctx, const mm_workload *w, int max_tiles,
                                  size_t budget, mm_memory_plan *out) {
    if (!ctx) return MM_ERROR_ARGUMENT;
    ctx->errmsg[0] = 0;
    if (check_workload(ctx, w)) return MM_ERROR_ARGUMENT;
    if (max_tiles < 1 || max_tiles > 4096) {
        mm_ctx_seterr(ctx, "the largest batch must be in 1..4096, got %d", max_tiles);
        return MM_ERROR_ARGUMENT;
    }
    mm_backend *b = ctx->be;
    size_t ws = 0, sc = 0, fr = 0, tot = 0;
    /* the first pass uploads the weights (device backends), so the free memory read after it
     * is what the working memory can have */
    mm_status st = measure(ctx, w, 1, NULL, &ws, &sc);
    if (st != MM_OK) return st;
    mm_ctx_release_memory(ctx);
    mem_free_total(b, &fr, &tot);
    if (!budget && !b->ops->mem_info) {
        mm_ctx_seterr(ctx,
                      "the %s backend cannot say how much memory is free: give the batch "
                      "or a budget",
                      b->ops->name);
        return MM_ERROR_UNSUPPORTED;
    }
    const size_t limit = budget ? budget : usable(b, fr);
    /* the largest n in [1, max_tiles] whose need fits: need(n) grows with n; bisection */
    int lo = 0, hi = max_tiles;
    while (lo < hi) {
        const int mid = lo + (hi - lo + 1) / 2;
        st = measure(ctx, w, mid, NULL, &ws, &sc);
        if (st != MM_OK) return st;
        if (ws + sc <= limit)
            lo = mid;
        else
            hi = mid - 1;
    }
    /* lo == 0: not even one tile fits; reserve_at reports it with the figures */
    return reserve_at(ctx, w, lo ? lo : 1, budget, out);
}

uint64_t mm_context_alloc_count(const mm_context *ctx) {
    return ctx ? ctx->be->n_allocs : 0;
}
