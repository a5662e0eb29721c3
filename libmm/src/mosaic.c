/*
 * The mosaic (mm.h): a strip of blending accumulators in the context's backend memory, filled
 * by the backend's mosaic_accumulate and read through mosaic_normalise (backend.h). Everything
 * it needs is allocated by mm_mosaic_create, except the window staging, which grows to the
 * largest batch added (once).
 */
#include <stdlib.h>
#include <string.h>

#include "context.h"

struct mm_mosaic {
    mm_context *ctx;
    int C, W, H, S;
    float *acc;  /* C x H x W */
    float *wsum; /* H x W */
    float *zero; /* H x W zeros: the source of clears */
    float *out;  /* C x H x W: normalised rows before download */
    float *wrow, *wcol;
    float *win; /* window staging */
    size_t win_cap;
};

#define OPS(m) ((m)->ctx->be->ops)
#define BE(m) ((m)->ctx->be)

static mm_status failed(mm_mosaic *m, const char *what) {
    mm_ctx_backend_failed(m->ctx, what);
    return MM_ERROR_BACKEND;
}

void mm_mosaic_free(mm_mosaic *m) {
    if (!m) return;
    float *bufs[7] = {m->acc, m->wsum, m->zero, m->out, m->wrow, m->wcol, m->win};
    for (int i = 0; i < 7; i++)
        if (bufs[i]) OPS(m)->free(BE(m), bufs[i]);
    free(m);
}

/* clears rows [r0, r0 + n) of the accumulators and weight sums */
static mm_status clear_rows(mm_mosaic *m, int r0, int n) {
    const size_t plane = (size_t)m->W * m->H, len = (size_t)n * m->W, off = (size_t)r0 * m->W;
    for (int c = 0; c < m->C; c++)
        if (OPS(m)->copy(BE(m), m->acc + c * plane + off, m->zero, len)) return failed(m, "clear");
    if (OPS(m)->copy(BE(m), m->wsum + off, m->zero, len)) return failed(m, "clear");
    return MM_OK;
}

mm_status mm_mosaic_create(mm_context *ctx, int channels, int width, int height, int window,
                           const float *wrow, const float *wcol, mm_mosaic **out) {
    if (!ctx || !out) return MM_ERROR_ARGUMENT;
    *out = NULL;
    ctx->errmsg[0] = 0;
    if (channels < 1 || channels > 64 || width < 1 || height < 1 || window < 1 || !wrow || !wcol ||
        (size_t)width * height > ((size_t)1 << 34) / (size_t)(channels + 1)) {
        mm_ctx_seterr(ctx, "mosaic: %d channels, %dx%d strip, window %d or weights missing",
                      channels, width, height, window);
        return MM_ERROR_ARGUMENT;
    }
    if (!ctx->be->ops->mosaic_accumulate || !ctx->be->ops->mosaic_normalise) {
        mm_ctx_seterr(ctx, "the %s backend has no mosaic operations", ctx->be->ops->name);
        return MM_ERROR_UNSUPPORTED;
    }
    mm_mosaic *m = calloc(1, sizeof *m);
    float *zeros = calloc((size_t)width * height, sizeof(float));
    if (!m || !zeros) {
        free(m), free(zeros);
        mm_ctx_seterr(ctx, "out of memory");
        return MM_ERROR_NOMEM;
    }
    m->ctx = ctx, m->C = channels, m->W = width, m->H = height, m->S = window;
    const size_t plane = (size_t)width * height;
    m->acc = OPS(m)->alloc(BE(m), plane * channels);
    m->wsum = OPS(m)->alloc(BE(m), plane);
    m->zero = OPS(m)->alloc(BE(m), plane);
    m->out = OPS(m)->alloc(BE(m), plane * channels);
    m->wrow = OPS(m)->alloc(BE(m), (size_t)window);
    m->wcol = OPS(m)->alloc(BE(m), (size_t)window);
    mm_status st = MM_OK;
    if (!m->acc || !m->wsum || !m->zero || !m->out || !m->wrow || !m->wcol) {
        mm_ctx_seterr(ctx, "mosaic: cannot allocate the %zu MiB strip: %s",
                      (plane * (2 * channels + 2) * sizeof(float)) >> 20, ctx->be->errmsg);
        st = MM_ERROR_NOMEM;
    } else if (OPS(m)->upload(BE(m), m->zero, zeros, plane) ||
               OPS(m)->upload(BE(m), m->wrow, wrow, (size_t)window) ||
               OPS(m)->upload(BE(m), m->wcol, wcol, (size_t)window)) {
        st = failed(m, "mosaic upload");
    } else {
        st = clear_rows(m, 0, height);
    }
    free(zeros);
    if (st != MM_OK) {
        mm_mosaic_free(m);
        return st;
    }
    *out = m;
    return MM_OK;
}

mm_status mm_mosaic_add(mm_mosaic *m, int n, const float *windows, const int *x0, const int *y0) {
    if (!m) return MM_ERROR_ARGUMENT;
    m->ctx->errmsg[0] = 0;
    if (n < 0 || (n && (!windows || !x0 || !y0))) {
        mm_ctx_seterr(m->ctx, "mosaic: %d windows or arrays missing", n);
        return MM_ERROR_ARGUMENT;
    }
    if (!n) return MM_OK;
    for (int i = 0; i < n; i++) /* keeps the index arithmetic of the kernels in range */
        if (x0[i] <= -m->S || x0[i] >= m->W + m->S || y0[i] <= -m->S || y0[i] >= m->H + m->S) {
            mm_ctx_seterr(m->ctx, "mosaic: window %d at (%d, %d) misses the %dx%d strip", i, x0[i],
                          y0[i], m->W, m->H);
            return MM_ERROR_ARGUMENT;
        }
    const size_t len = (size_t)n * m->C * m->S * m->S;
    if (len > m->win_cap) {
        if (m->win) OPS(m)->free(BE(m), m->win);
        m->win_cap = 0;
        if (!(m->win = OPS(m)->alloc(BE(m), len))) {
            mm_ctx_backend_failed(m->ctx, "mosaic window staging");
            return MM_ERROR_NOMEM;
        }
        m->win_cap = len;
    }
    if (OPS(m)->upload(BE(m), m->win, windows, len)) return failed(m, "mosaic upload");
    if (OPS(m)->mosaic_accumulate(BE(m), m->acc, m->wsum, m->C, m->W, m->H, m->win, n, m->S, x0, y0,
                                  m->wrow, m->wcol))
        return failed(m, "mosaic accumulate");
    return MM_OK;
}

mm_status mm_mosaic_read(mm_mosaic *m, int row0, int nrows, float empty, float *out, float *wsum) {
    if (!m) return MM_ERROR_ARGUMENT;
    m->ctx->errmsg[0] = 0;
    if (row0 < 0 || nrows < 0 || row0 > m->H - nrows || !out) {
        mm_ctx_seterr(m->ctx, "mosaic: rows [%d, %d) are not inside the %d-row strip", row0,
                      row0 + nrows, m->H);
        return MM_ERROR_ARGUMENT;
    }
    if (!nrows) return MM_OK;
    const size_t plane = (size_t)m->W * m->H, len = (size_t)nrows * m->W, off = (size_t)row0 * m->W;
    for (int c = 0; c < m->C; c++)
        if (OPS(m)->mosaic_normalise(BE(m), m->out + c * len, m->acc + c * plane + off,
                                     m->wsum + off, 1, (int64_t)len, empty))
            return failed(m, "mosaic normalise");
    if (OPS(m)->download(BE(m), out, m->out, len * m->C) ||
        (wsum && OPS(m)->download(BE(m), wsum, m->wsum + off, len)))
        return failed(m, "mosaic download");
    return MM_OK;
}

mm_status mm_mosaic_shift(mm_mosaic *m, int d) {
    if (!m) return MM_ERROR_ARGUMENT;
    m->ctx->errmsg[0] = 0;
    if (d < 0) {
        mm_ctx_seterr(m->ctx, "mosaic: cannot shift by %d rows", d);
        return MM_ERROR_ARGUMENT;
    }
    if (!d) return MM_OK;
    if (d >= m->H) return clear_rows(m, 0, m->H);
    /* rows [d, H) up to [0, H - d), in blocks of d rows: a block's source and destination never
     * overlap, and each block is read before a later one overwrites it */
    const size_t plane = (size_t)m->W * m->H;
    for (int k = 0; k <= m->C; k++) {
        float *buf = k < m->C ? m->acc + k * plane : m->wsum;
        for (int r = 0; r < m->H - d; r += d) {
            const int rows = m->H - d - r < d ? m->H - d - r : d;
            if (OPS(m)->copy(BE(m), buf + (size_t)r * m->W, buf + (size_t)(r + d) * m->W,
                             (size_t)rows * m->W))
                return failed(m, "mosaic shift");
        }
    }
    return clear_rows(m, m->H - d, d);
}
