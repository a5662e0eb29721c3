/* Shorthands of the forward passes (dit.c, vae.c, sample.c), which all run on a context: its
 * backend's op table, the backend handle, and an op call that turns a backend failure into the
 * context's error (the op's text as the message's origin) and returns it. */
#ifndef MM_FORWARD_OPS_H
#define MM_FORWARD_OPS_H

#include "context.h"

#define OPS (ctx->be->ops)
#define BE (ctx->be)
#define TRY(call)                                                                                  \
    do {                                                                                           \
        if (call) return mm_ctx_backend_failed(ctx, #call);                                        \
    } while (0)

#endif
