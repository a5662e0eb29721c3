/* The per-thread working state, and the forward passes that use it. */
#ifndef MM_CONTEXT_H
#define MM_CONTEXT_H

#include "backend.h"
#include "model.h"

/* Named grow-only workspace buffers in backend memory: sized on the first call, reused by
 * every later call (no allocation inside the sampling loop once warm). */
enum {
    WS_TFEAT,
    WS_COND,
    WS_COND_SILU,
    WS_MODTAB,
    WS_SEQ,
    WS_NORM,
    WS_QKV,
    WS_ATT,
    WS_PROJ,
    WS_FFN,
    WS_PATCH,
    WS_TOK,
    WS_SCENE,
    WS_GEN_X,
    WS_GEN_U,
    WS_GEN_MOD,
    WS_GEN_OUT,
    WS_VAE_A,
    WS_VAE_B,
    WS_VAE_C,
    WS_VAE_D,
    WS_VAE_IN,
    WS_S_SRC,
    WS_S_X,
    WS_S_V,
    WS_S_V2,
    WS_S_X2,
    WS_S_XI,
    WS_S_T,
    WS_S_LAT,
    WS_S_IMG,
    WS_COUNT
};

/* Test hook: called with intermediate activations by name ("scene.x_in", "scene.block0.out",
 * "gen.block0.out"), so parity tests can compare stages the public API does not expose. */
typedef void (*mm_trace_fn)(void *user, const char *name, const float *data, size_t n);

struct mm_context {
    mm_model *model;
    mm_trace_fn trace;
    void *trace_user;
    mm_backend *be;
    char errmsg[1024];
    float *ws[WS_COUNT];
    size_t ws_cap[WS_COUNT];
    unsigned char ws_in_arena[WS_COUNT]; /* the slot is carved from the arena (not freed alone) */
    float *arena;                        /* mm_context_reserve: the working memory, one block */
    size_t arena_bytes;
};

/* Frees the workspace slots and the arena (arena.c). */
void mm_ctx_release_memory(mm_context *ctx);

float *mm_ws(mm_context *ctx, int slot, size_t n_floats);
void mm_ctx_seterr(mm_context *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Copies the backend's message into the context's (after a failed op) and returns non-zero. */
int mm_ctx_backend_failed(mm_context *ctx, const char *what);

/* Internal forward passes; latents and outputs are backend buffers. */
typedef struct {
    int modality;
    const float *latent; /* backend, n_tiles x C x L x L */
    const float *t;      /* host, n_tiles */
} mm_part_dev;

int mm_dit_forward(mm_context *ctx, int n_tiles, int n_parts, const mm_part_dev *parts,
                   int n_targets, const int *target_parts, float *const *v, float *scene_out);
int mm_vae_encode_dev(mm_context *ctx, int modality, int n, const float *img, float *lat);
int mm_vae_decode_dev(mm_context *ctx, int modality, int n, const float *lat, float *img);

#endif
