/* The C engine's side of the converter round trips (tests/convert/roundtrip.py): runs a converted
 * model in fp32 on the inputs the PyTorch side wrote and writes what it computed as raw
 * little-endian float32 files, for the Python side to compare.
 *
 * Usage: convert_run MODEL IN.safetensors OUTDIR SRC TGT SAMPLER STEPS GUIDANCE SEED
 *   IN holds img.src [B, c, S, S] (modality SRC), z.src, z.tgt [B, C, L, L] and t.tgt [B].
 *   Writes OUTDIR/enc.f32 (VAE encode of img.src), dec.f32 (VAE decode of z.tgt as TGT),
 *   v.f32 and scene.f32 (one evaluation: z.src at t 0, z.tgt at t.tgt, velocity of TGT, scene
 *   tokens of both) and translate.f32 (SRC -> TGT image, tiles 7, 11, ... = 7 + 4b). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mm.h"
#include "safetensors.h"

static float *get(mm_st_file *f, const char *name, int64_t *numel) {
    const mm_st_tensor *t = mm_st_find(f, name);
    if (!t) {
        fprintf(stderr, "convert_run: no tensor '%s' in the input\n", name);
        return NULL;
    }
    float *d = malloc((size_t)t->numel * sizeof(float));
    if (d) mm_st_to_f32(t, d);
    *numel = t->numel;
    return d;
}

static int put(const char *dir, const char *name, const float *x, size_t n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.f32", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(x, sizeof(float), n, f) != n) {
        fprintf(stderr, "convert_run: cannot write %s\n", path);
        if (f) fclose(f);
        return 1;
    }
    return fclose(f) != 0;
}

int main(int argc, char **argv) {
    if (argc != 10) {
        fprintf(stderr, "usage: convert_run MODEL IN.safetensors OUTDIR SRC TGT SAMPLER STEPS "
                        "GUIDANCE SEED\n");
        return 2;
    }
    mm_model *m;
    char *err = NULL;
    if (mm_model_open(argv[1], &m, &err) != MM_OK) {
        fprintf(stderr, "convert_run: %s\n", err);
        mm_free(err);
        return 1;
    }
    mm_context_params cp;
    mm_context_params_default(&cp);
    cp.precision = MM_PRECISION_FP32;
    cp.n_threads = 1;
    mm_context *ctx;
    if (mm_context_create(m, &cp, &ctx, &err) != MM_OK) {
        fprintf(stderr, "convert_run: %s\n", err);
        return 1;
    }
    mm_st_file *in;
    char e2[512];
    if (mm_st_open(argv[2], &in, e2, sizeof e2)) {
        fprintf(stderr, "convert_run: %s\n", e2);
        return 1;
    }
    const char *dir = argv[3];
    const int src = mm_model_modality_index(m, argv[4]), tgt = mm_model_modality_index(m, argv[5]);
    const int sampler = mm_sampler_from_name(argv[6]);
    if (src < 0 || tgt < 0 || sampler < 0) {
        fprintf(stderr, "convert_run: unknown modality or sampler\n");
        return 2;
    }
    int64_t n_img, n_zs, n_zt, n_t;
    float *img = get(in, "img.src", &n_img), *zs = get(in, "z.src", &n_zs);
    float *zt = get(in, "z.tgt", &n_zt), *tt = get(in, "t.tgt", &n_t);
    if (!img || !zs || !zt || !tt) return 1;
    const int B = (int)n_t, S = mm_model_image_size(m);
    const size_t lat = (size_t)n_zt / (size_t)B, H = (size_t)mm_model_hidden_size(m);
    const size_t N = (size_t)mm_model_tokens_per_side(m) * mm_model_tokens_per_side(m);
    const size_t tgt_img = (size_t)mm_model_modality_channels(m, tgt) * S * S;
    float *enc = malloc(lat * B * sizeof(float)), *dec = malloc(tgt_img * B * sizeof(float));
    float *v = malloc(lat * B * sizeof(float)), *scene = malloc(2 * N * H * B * sizeof(float));
    float *out = malloc(tgt_img * B * sizeof(float)), *zeros = calloc((size_t)B, sizeof(float));
    uint64_t *tiles = malloc((size_t)B * sizeof *tiles);
    if (!enc || !dec || !v || !scene || !out || !zeros || !tiles) return 1;
    for (int b = 0; b < B; b++) tiles[b] = 7 + 4 * (uint64_t)b;
    int rc = 0;
    if (mm_vae_encode(ctx, src, B, img, enc) || mm_vae_decode(ctx, tgt, B, zt, dec)) rc = 1;
    const mm_partition parts[2] = {{src, zs, zeros}, {tgt, zt, tt}};
    const int target = 1;
    if (!rc && mm_predict(ctx, B, 2, parts, 1, &target, &v, scene)) rc = 1;
    mm_sample_params sp;
    mm_sample_params_default(m, &sp);
    sp.sampler = (mm_sampler)sampler;
    sp.steps = atoi(argv[7]);
    sp.guidance = (float)atof(argv[8]);
    sp.seed = strtoull(argv[9], NULL, 10);
    const float *srcs[1] = {img};
    float *tgts[1] = {out};
    if (!rc && mm_translate(ctx, &sp, B, tiles, 1, &src, srcs, 1, &tgt, tgts)) rc = 1;
    if (rc) fprintf(stderr, "convert_run: %s\n", mm_context_errmsg(ctx));
    if (!rc)
        rc = put(dir, "enc", enc, lat * B) || put(dir, "dec", dec, tgt_img * B) ||
             put(dir, "v", v, lat * B) || put(dir, "scene", scene, 2 * N * H * B) ||
             put(dir, "translate", out, tgt_img * B);
    free(img), free(zs), free(zt), free(tt), free(enc), free(dec), free(v), free(scene);
    free(out), free(zeros), free(tiles);
    mm_st_close(in);
    mm_context_free(ctx);
    mm_model_close(m);
    return rc;
}
