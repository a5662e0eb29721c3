/* The model config (docs/model-format.md), parsed and validated. Pure data, no weights. */
#ifndef MM_CONFIG_H
#define MM_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define MM_MAX_MODALITIES 16
#define MM_MAX_VAE_BLOCKS 8
#define MM_MODALITY_NAME_MAX 32
#define MM_MAX_LATENT_STATS 256 /* channels for which vae.latents_mean/std can be given */

typedef struct {
    int in_channels, out_channels, latent_channels;
    int n_blocks;
    int block_out_channels[MM_MAX_VAE_BLOCKS];
    int layers_per_block;
    int norm_num_groups;
    int mid_block_add_attention;
    int use_quant_conv, use_post_quant_conv;
    float scaling_factor, shift_factor;
    /* diffusers' per-channel latents_mean / latents_std (has_latents_stats: both given):
     * z_c = (mean_c - shift - latents_mean[c]) * scaling / latents_std[c] */
    int has_latents_stats;
    float latents_mean[MM_MAX_LATENT_STATS], latents_std[MM_MAX_LATENT_STATS];
} mm_vae_config;

typedef struct {
    int hidden_size, num_heads, mlp_hidden, patch_size;
    int scene_depth, gen_depth, freq_dim;
    int ffn_branches;
    int routing[MM_MAX_MODALITIES];
    /* conventions (docs/model-format.md "Conventions"); the defaults are the project's own */
    double timestep_scale; /* features of timestep_scale * t_net (1000) */
    int time_data_at_1;    /* 0: the network sees t (0 = data); 1: 1 - t and returns -v (SiT) */
    int pos_column_first;  /* 0: pos = [sincos(row), sincos(col)]; 1: [col, row] (DiT/MAE) */
    int scene_norm_out;    /* 1: S = affine LN(x) (scene.norm_out); 0: S = x */
    int adaln_chunks;      /* 6: shift, scale, gate x2 (adaLN-Zero); 4: no gates (adaLN) */
    int cond_modality;     /* 1: condition e_t + e_m (and S in the generator); 0: e_t only */
} mm_dit_config;

typedef struct {
    int sampler; /* mm_sampler */
    int steps;
    float guidance, sde_eta, time_shift;
    int final_mean;        /* 1: the last step is the SDE step's mean (SiT's "Mean") */
    float final_step_size; /* > 0: the grid ends at t = this, then one step to 0 (SiT 0.04) */
} mm_sampling_config;

typedef struct {
    char name[128];
    int image_size;
    int n_modalities;
    char modalities[MM_MAX_MODALITIES][MM_MODALITY_NAME_MAX];
    int modality_channels[MM_MAX_MODALITIES];
    mm_vae_config vae;
    mm_dit_config dit;
    mm_sampling_config sampling;
    /* derived */
    int vae_factor;      /* 2^(n_blocks-1) */
    int latent_size;     /* image_size / vae_factor */
    int tokens_per_side; /* latent_size / patch_size */
    int n_tokens;        /* tokens_per_side^2 */
} mm_config;

/* Parses and validates config JSON text. Returns 0, or non-zero with a message in err naming the
 * key and the rule it breaks. */
int mm_config_parse(const char *json, mm_config *cfg, char *err, size_t errlen);

/* Every tensor the config implies, in a fixed order: calls fn(name, ndim, shape, user) for
 * each; stops and returns fn's non-zero result. The one source of truth for names and shapes,
 * used by the loader, the parameter counter and the tests. */
typedef int (*mm_tensor_visitor)(const char *name, int ndim, const int64_t *shape, void *user);
int mm_config_visit_tensors(const mm_config *cfg, mm_tensor_visitor fn, void *user);

/* Module of a tensor name, for parameter counts: 0 VAE, 1 scene, 2 generator, 3 embeddings. */
int mm_config_tensor_module(const char *name);

#endif
