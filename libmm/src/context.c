/* Context lifetime, workspace and error messages. */
#include "context.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void mm_context_params_default(mm_context_params *p) {
    p->device = MM_DEVICE_CPU;
    p->precision = MM_PRECISION_BF16;
    p->n_threads = 0;
}

mm_status mm_context_create(mm_model *model, const mm_context_params *params, mm_context **out,
                            char **errmsg) {
    char err[512] = "";
    if (errmsg) *errmsg = NULL;
    if (!out) return MM_ERROR_ARGUMENT;
    *out = NULL;
    if (!model) {
        mm_set_errmsg(errmsg, "no model given");
        return MM_ERROR_ARGUMENT;
    }
    mm_context_params def;
    if (!params) {
        mm_context_params_default(&def);
        params = &def;
    }
    if (params->n_threads < 0) {
        mm_set_errmsg(errmsg, "thread count must be >= 0 (0 = all cores), got %d",
                      params->n_threads);
        return MM_ERROR_ARGUMENT;
    }
    mm_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        mm_set_errmsg(errmsg, "out of memory");
        return MM_ERROR_NOMEM;
    }
    ctx->model = model;
    const int bf16 = params->precision == MM_PRECISION_BF16;
    switch (params->device) {
    case MM_DEVICE_CPU:
        ctx->be = mm_backend_cpu_create(params->n_threads, bf16, err, sizeof err);
        break;
    case MM_DEVICE_CUDA: {
        /* which GPU: MM_CUDA_DEVICE (an index, default 0) */
        const char *dev = getenv("MM_CUDA_DEVICE");
        char *end = NULL;
        const long idx = dev && *dev ? strtol(dev, &end, 10) : 0;
        if (dev && *dev && (*end || idx < 0 || idx > 255)) {
            snprintf(err, sizeof err, "MM_CUDA_DEVICE must be a device index, got '%s'", dev);
            break;
        }
        ctx->be = mm_backend_cuda_create((int)idx, bf16, err, sizeof err);
        break;
    }
    default: snprintf(err, sizeof err, "unknown device %d", (int)params->device);
    }
    if (!ctx->be) {
        mm_set_errmsg(errmsg, "cannot create the %s backend: %s",
                      params->device == MM_DEVICE_CUDA ? "CUDA" : "CPU", err);
        free(ctx);
        return params->device == MM_DEVICE_CUDA ? MM_ERROR_UNSUPPORTED : MM_ERROR_BACKEND;
    }
    *out = ctx;
    return MM_OK;
}

void mm_context_free(mm_context *ctx) {
    if (!ctx) return;
    mm_ctx_release_memory(ctx);
    ctx->be->ops->destroy(ctx->be);
    free(ctx);
}

const char *mm_context_errmsg(const mm_context *ctx) {
    return ctx ? ctx->errmsg : "no context";
}

mm_precision mm_context_precision(const mm_context *ctx) {
    return ctx->be->use_bf16 ? MM_PRECISION_BF16 : MM_PRECISION_FP32;
}

void mm_ctx_seterr(mm_context *ctx, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->errmsg, sizeof ctx->errmsg, fmt, ap);
    va_end(ap);
}

int mm_ctx_backend_failed(mm_context *ctx, const char *what) {
    if (!ctx->errmsg[0])
        mm_ctx_seterr(ctx, "%s backend: %s (%s)", ctx->be->ops->name,
                      ctx->be->errmsg[0] ? ctx->be->errmsg : "operation failed", what);
    return 1;
}

float *mm_ws(mm_context *ctx, int slot, size_t n) {
    if (n <= ctx->ws_cap[slot]) return ctx->ws[slot];
    /* more than was reserved (or nothing reserved): a slot of its own; an arena slot is not
     * freed alone (mm_context_alloc_count shows the allocation) */
    if (ctx->ws[slot] && !ctx->ws_in_arena[slot]) ctx->be->ops->free(ctx->be, ctx->ws[slot]);
    ctx->ws_in_arena[slot] = 0;
    ctx->ws_cap[slot] = 0;
    ctx->ws[slot] = ctx->be->ops->alloc(ctx->be, n);
    if (!ctx->ws[slot]) {
        mm_ctx_seterr(ctx, "out of memory: %zu MB of working memory", n * sizeof(float) >> 20);
        return NULL;
    }
    ctx->ws_cap[slot] = n;
    return ctx->ws[slot];
}

#ifndef MM_HAVE_CUDA
/* Built without the CUDA backend (no toolkit, or -DMM_CUDA=OFF): kernels/ is not linked. */
mm_backend *mm_backend_cuda_create(int device, int want_bf16, char *err, size_t errlen) {
    (void)device;
    (void)want_bf16;
    snprintf(err, errlen,
             "this build of libmm has no CUDA backend (built with -DMM_CUDA=OFF or "
             "without a CUDA toolkit; see docs/cuda.md)");
    return NULL;
}
#endif
