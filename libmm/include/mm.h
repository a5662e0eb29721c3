/*
 * libmm: the MetaEarth-MM inference engine.
 *
 * Two handles:
 *   mm_model   - a loaded model file (weights converted once, read-only afterwards). One model can
 *                be shared by any number of contexts, in any number of threads.
 *   mm_context - the working state of one thread: scratch memory, cached kernels, thread count,
 *                the last error message. A context is used by one thread at a time.
 *
 * Every function that can fail returns an mm_status; the message that explains it is read with
 * mm_context_errmsg() (or, for mm_model_open, returned through *errmsg). The library never calls
 * exit() or abort() on bad input.
 *
 * Images are float32, planar (C x S x S per tile, S = image_size), values in [-1, 1], tiles
 * contiguous. Buffers passed in are borrowed for the duration of the call; buffers written are
 * owned by the caller. Nothing returned needs to be freed except what says so.
 */
#ifndef MM_H
#define MM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MM_VERSION_STRING "0.1.0"

typedef enum {
    MM_OK = 0,
    MM_ERROR_IO,          /* file cannot be opened / read / mapped */
    MM_ERROR_FORMAT,      /* model file is malformed */
    MM_ERROR_CONFIG,      /* config is invalid or does not match the weights */
    MM_ERROR_ARGUMENT,    /* a caller argument is invalid */
    MM_ERROR_NOMEM,       /* out of memory */
    MM_ERROR_BACKEND,     /* the compute backend failed */
    MM_ERROR_UNSUPPORTED, /* valid request the build cannot serve (e.g. no CUDA) */
    MM_ERROR_INTERRUPTED  /* the progress callback asked to stop */
} mm_status;

const char *mm_status_string(mm_status s);
const char *mm_version(void);

typedef struct mm_model mm_model;
typedef struct mm_context mm_context;

/* ---- model ------------------------------------------------------------------------------ */

/* Opens and validates a model file (safetensors with the config in __metadata__.config).
 * On success *out is a new model (free with mm_model_close). On failure *out is NULL and, when
 * errmsg is not NULL, *errmsg is a malloc'd message the caller frees with mm_free(). */
mm_status mm_model_open(const char *path, mm_model **out, char **errmsg);
void mm_model_close(mm_model *model); /* NULL is fine */

/* A model with deterministic random weights for a config (JSON text): for benchmarks of
 * configurations that have no trained weights (the paper's). Errors as for mm_model_open. */
mm_status mm_model_create_random(const char *config_json, uint64_t seed, mm_model **out,
                                 char **errmsg);
void mm_free(void *p);

int mm_model_num_modalities(const mm_model *model);
const char *mm_model_modality_name(const mm_model *model, int m);     /* owned by the model */
int mm_model_modality_index(const mm_model *model, const char *name); /* -1 if unknown */
int mm_model_modality_channels(const mm_model *model, int m);
int mm_model_image_size(const mm_model *model);
int mm_model_hidden_size(const mm_model *model);
int mm_model_tokens_per_side(const mm_model *model);     /* scene tokens per side of a tile */
const char *mm_model_config_json(const mm_model *model); /* owned by the model */
const char *mm_model_name(const mm_model *model);

/* Parameter counts, by module. */
typedef struct {
    int64_t vae, scene, generator, embeddings, total;
} mm_param_count;
void mm_model_param_count(const mm_model *model, mm_param_count *out);

/* Parameters as stored in the file, by dtype (the engine converts them at load). */
typedef struct {
    int64_t f32, f16, bf16;
} mm_dtype_count;
void mm_model_dtype_count(const mm_model *model, mm_dtype_count *out);

/* Counts the parameters a config implies, without weights. On failure *errmsg as above. */
mm_status mm_config_param_count(const char *config_json, mm_param_count *out, char **errmsg);

/* ---- context ---------------------------------------------------------------------------- */

typedef enum { MM_DEVICE_CPU = 0, MM_DEVICE_CUDA = 1 } mm_device;
typedef enum { MM_PRECISION_BF16 = 0, MM_PRECISION_FP32 = 1 } mm_precision;

typedef struct {
    mm_device device;
    mm_precision precision; /* BF16 falls back to FP32 where the CPU lacks bf16 support */
    int n_threads;          /* 0 = all cores */
} mm_context_params;

void mm_context_params_default(mm_context_params *p);

/* Creates a context on a model. The model must outlive the context. On failure *out is NULL
 * and *errmsg (if not NULL) is set as for mm_model_open. */
mm_status mm_context_create(mm_model *model, const mm_context_params *params, mm_context **out,
                            char **errmsg);
void mm_context_free(mm_context *ctx);
/* The message of the last failure on this context ("" if none). Owned by the context, valid
 * until the next call on it. */
const char *mm_context_errmsg(const mm_context *ctx);
/* The precision actually in use (BF16 may have fallen back to FP32). */
mm_precision mm_context_precision(const mm_context *ctx);

/* ---- working memory (docs/cuda.md, "Memory") ---------------------------------------------- */

/* The shape of the mm_translate / mm_generate calls a context is going to make. */
typedef struct {
    int n_tiles; /* per call (mm_context_reserve_auto chooses it) */
    int n_sources;
    const int *source_mods;
    int n_targets;
    const int *target_mods;
    float guidance;     /* with sources, != 1 doubles the batch of the model (guided sampling) */
    int joint_guidance; /* as mm_sample_params.joint_guidance: without sources, with n_targets
                           >= 2 and guidance != 1, the batch of the model is 1 + n_targets times */
} mm_workload;

typedef struct {
    int n_tiles;         /* the batch planned for */
    size_t workspace;    /* bytes: the model code's activations */
    size_t scratch;      /* bytes: the backend's own scratch (bf16 staging, cuDNN workspace ...) */
    size_t total;        /* workspace + scratch: the arena */
    size_t free_bytes;   /* device (CPU: host) memory free when measured (after the weights) */
    size_t device_bytes; /* the device's (host's) memory in all; 0 when unknown */
    size_t arena;        /* the arena the context holds now (0: none) */
} mm_memory_plan;

/* Measures the working memory one call of w needs, by a dry run of one sampling step that
 * computes nothing (a device backend uploads the weights during it, once for the context). */
mm_status mm_context_plan(mm_context *ctx, const mm_workload *w, mm_memory_plan *out);
/* Frees the context's working memory and allocates what w needs as ONE block (the arena):
 * afterwards calls of that workload with at most w->n_tiles tiles allocate nothing
 * (mm_context_alloc_count does not move); a larger call allocates what it lacks as before.
 * Fails with MM_ERROR_NOMEM and a message naming the bytes needed and free when the arena does
 * not fit into budget bytes (0: the usable share of the free memory, see docs/cuda.md). */
mm_status mm_context_reserve(mm_context *ctx, const mm_workload *w, size_t budget,
                             mm_memory_plan *out);
/* As mm_context_reserve with the largest batch in 1..max_tiles that fits (w->n_tiles is
 * ignored; the batch chosen is out->n_tiles). MM_ERROR_NOMEM when not even one tile fits. */
mm_status mm_context_reserve_auto(mm_context *ctx, const mm_workload *w, int max_tiles,
                                  size_t budget, mm_memory_plan *out);
/* Allocations of backend memory this context has made so far (working memory, weight copies,
 * backend scratch): for tests and diagnostics. */
uint64_t mm_context_alloc_count(const mm_context *ctx);

/* ---- sampling --------------------------------------------------------------------------- */

typedef enum {
    MM_SAMPLER_EULER = 0,
    MM_SAMPLER_HEUN = 1,
    MM_SAMPLER_EULER_MARUYAMA = 2
} mm_sampler;

/* Called after every sampling step (and may be NULL). Return non-zero to stop: the call then
 * returns MM_ERROR_INTERRUPTED and the outputs are unspecified. */
typedef int (*mm_progress_fn)(void *user, int step, int n_steps);

typedef struct {
    mm_sampler sampler;
    int steps;        /* >= 1 */
    float guidance;   /* classifier-free guidance scale; 1 = none */
    float sde_eta;    /* Euler-Maruyama noise scale (0 = ODE) */
    float time_shift; /* 1 = uniform time grid */
    uint64_t seed;
    mm_progress_fn progress;
    void *progress_user;
    /* Guidance between jointly generated modalities (calls without sources only; 0 = off, the
     * default: then guidance has no effect without sources). With n_targets >= 2 and guidance
     * w != 1, target j's velocity is v_u + w (v_c - v_u): v_c from the joint step, v_u from the
     * same step with every other target dropped to pure noise at t = 1 (the modality drop of
     * translation guidance; noise purpose MM_NOISE_UNCOND, drawn once per tile). With one
     * target there is nothing to drop and the flag has no effect. docs/architecture.md 5. */
    int joint_guidance;
} mm_sample_params;

/* Fills the model's defaults (config "sampling"). */
void mm_sample_params_default(const mm_model *model, mm_sample_params *p);
const char *mm_sampler_name(mm_sampler s);
int mm_sampler_from_name(const char *name); /* -1 if unknown */

/* Translate: n_tiles tiles, each with n_sources source images (modality source_mods[i], image
 * sources[i] = n_tiles x C_i x S x S) generate n_targets target images (targets[j] is written:
 * n_tiles x C_j x S x S). n_sources may be 0 (joint generation). tile_ids address the noise:
 * a tile's result depends on (seed, tile id, inputs), not on batch composition.
 * Modalities must be distinct across sources and targets. */
mm_status mm_translate(mm_context *ctx, const mm_sample_params *params, int n_tiles,
                       const uint64_t *tile_ids, int n_sources, const int *source_mods,
                       const float *const *sources, int n_targets, const int *target_mods,
                       float *const *targets);

/* Joint generation from nothing: mm_translate with no sources. */
mm_status mm_generate(mm_context *ctx, const mm_sample_params *params, int n_tiles,
                      const uint64_t *tile_ids, int n_targets, const int *target_mods,
                      float *const *targets);

/* Scene embedding (paper V-C): the scene tokens of the given clean observations.
 * out[i] (for source i) receives n_tiles x T x T x hidden floats, T = tokens per side. */
mm_status mm_embed(mm_context *ctx, int n_tiles, int n_sources, const int *source_mods,
                   const float *const *sources, float *const *out);

/* Zero-shot scene readout (paper section V-C, Eq. 22): the scene tokens of the branch of a
 * modality that was not observed, inferred from the observed sources. The scene sequence is the
 * sources at time source_t (0: clean, the paper's; t > 0: (1 - t) z + t eps with eps the
 * MM_NOISE_INITIAL noise of the source's modality) followed by the readout branch: pure noise
 * (MM_NOISE_UNCOND of the readout modality, step 0) at t = 1, as a dropped modality in training
 * and in guidance. The output is that branch's partition of S. docs/architecture.md 5. */
typedef struct {
    int modality;   /* the branch read out: a modality that is not among the sources */
    float source_t; /* time of the sources, in [0, 1); 0 = clean (the paper's) */
    uint64_t seed;  /* with the tile ids, addresses the noise */
} mm_readout_params;

/* modality -1 (must be set), source_t 0, seed 0. */
void mm_readout_params_default(mm_readout_params *p);

/* out receives n_tiles x T x T x hidden floats (T = tokens per side): the readout branch's
 * scene tokens. A tile's result depends on (seed, tile id, sources), not on the batch. */
mm_status mm_embed_readout(mm_context *ctx, const mm_readout_params *params, int n_tiles,
                           const uint64_t *tile_ids, int n_sources, const int *source_mods,
                           const float *const *sources, float *out);

/* ---- latent-level access (tiling with latent fusion, tests) -------------------------------- */

int mm_model_latent_channels(const mm_model *model);
int mm_model_latent_size(const mm_model *model);

/* VAE encode (images -> scaled latents) and decode, for one modality. */
mm_status mm_vae_encode(mm_context *ctx, int modality, int n_tiles, const float *images,
                        float *latents);
mm_status mm_vae_decode(mm_context *ctx, int modality, int n_tiles, const float *latents,
                        float *images);

/* One model evaluation. parts: the scene sequence's partitions (latent, time per tile).
 * For each j < n_targets, velocity of partition target_parts[j] is written to v[j]
 * (n_tiles x C x L x L). scene_out, if not NULL, receives the scene tokens of every partition
 * (n_tiles x n_parts x N x hidden: a tile's partitions are contiguous). */
typedef struct {
    int modality;
    const float *latent; /* n_tiles x C x L x L */
    const float *t;      /* n_tiles times in [0, 1] */
} mm_partition;

mm_status mm_predict(mm_context *ctx, int n_tiles, int n_parts, const mm_partition *parts,
                     int n_targets, const int *target_parts, float *const *v, float *scene_out);

/* ---- mosaic: blending windows into a strip on the context's device ----------------------- */

/* A strip of `height` rows and `width` columns of C-channel accumulators (and their weight
 * sums) in the context's backend memory: the GDAL layer's window blending (libmmgeo) done where
 * the windows were computed. Windows are S x S with the separable weight wrow[py] * wcol[px];
 * the arithmetic is fixed (backend.h, mosaic_accumulate), so every backend gives the same bits
 * as the host loop it replaces. One mosaic per context at a time; not thread-safe. */
typedef struct mm_mosaic mm_mosaic;
mm_status mm_mosaic_create(mm_context *ctx, int channels, int width, int height, int window,
                           const float *wrow, const float *wcol, mm_mosaic **out);
/* Adds n windows (host, n x C x S x S) whose pixel (0, 0) lands at strip column x0[i], row
 * y0[i] (either may be negative or run past the strip: those pixels are dropped), in order. */
mm_status mm_mosaic_add(mm_mosaic *m, int n, const float *windows, const int *x0, const int *y0);
/* Rows [row0, row0 + nrows) normalised into out (host, C x nrows x width): acc / wsum, or
 * `empty` where no window has weight; wsum (host, nrows x width) may be NULL. */
mm_status mm_mosaic_read(mm_mosaic *m, int row0, int nrows, float empty, float *out, float *wsum);
/* Moves the strip up by d rows (row d becomes row 0) and clears the rows that come free. */
mm_status mm_mosaic_shift(mm_mosaic *m, int d);
void mm_mosaic_free(mm_mosaic *m); /* NULL is fine */

/* The project's counter-based noise (Philox-4x32-10), see docs/architecture.md section 6. */
typedef enum { MM_NOISE_INITIAL = 0, MM_NOISE_SDE = 1, MM_NOISE_UNCOND = 2 } mm_noise_purpose;
void mm_noise(uint64_t seed, uint64_t tile_id, mm_noise_purpose purpose, int modality, int step,
              float *out, size_t n);
void mm_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

#ifdef __cplusplus
}
#endif
#endif
