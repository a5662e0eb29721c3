/* The loaded model: config plus weights bound into the structures the forward passes use. */
#ifndef MM_MODEL_H
#define MM_MODEL_H

#include "backend.h"
#include "config.h"
#include "mm.h"
#include "safetensors.h"

typedef struct {
    const float *weight, *bias;
} mm_norm_w;

typedef struct {
    mm_norm_w norm1, norm2;
    mm_weight conv1, conv2, shortcut; /* shortcut.rows == 0 when absent */
} mm_resnet_w;

typedef struct {
    mm_norm_w norm;
    mm_weight q; /* to_q, to_k, to_v concatenated: [3C, C], owned by the model */
    mm_weight out;
} mm_vae_attn_w;

typedef struct {
    mm_resnet_w res[2];
    int has_attn;
    mm_vae_attn_w attn;
} mm_vae_mid_w;

typedef struct {
    int n_res;
    mm_resnet_w *res; /* n_res */
    int has_sampler;
    mm_weight sampler; /* down- or up-sampling 3x3 conv */
} mm_vae_block_w;

typedef struct {
    mm_weight enc_conv_in, enc_conv_out, quant, post_quant, dec_conv_in, dec_conv_out;
    mm_vae_block_w *down, *up; /* n_blocks each */
    mm_vae_mid_w enc_mid, dec_mid;
    mm_norm_w enc_norm_out, dec_norm_out;
    int has_quant, has_post_quant;
} mm_vae_w;

typedef struct {
    mm_weight ada, qkv, proj;
    mm_weight *fc1, *fc2; /* one per FFN branch (1 in the scene module) */
} mm_block_w;

typedef struct {
    mm_weight t_mlp0, t_mlp2;
    const float *modality_embed;        /* [M, H] */
    mm_weight *scene_embed, *gen_embed; /* per modality, as [H, C*p*p] products */
    mm_block_w *scene, *gen;
    mm_norm_w scene_norm_out;
    mm_weight final_ada, final_linear;
} mm_dit_w;

struct mm_model {
    mm_config cfg;
    char *config_json;
    char *path;
    mm_st_file *file;
    float *f32;     /* every tensor converted to fp32, in visit order */
    uint16_t *bf16; /* bf16 copies of the matrix-product weights */
    mm_vae_w vae;
    mm_dit_w dit;
    mm_param_count params;
    mm_dtype_count dtypes;
    float *pos_embed;  /* [n_tokens, H], fixed */
    float *vae_qkv[2]; /* concatenated mid-block attention weights (encoder, decoder) */
    uint16_t *vae_qkv_bf16[2];
};

#endif
