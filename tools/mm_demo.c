/*
 * mm_demo: the engine end to end on one tile. Makes a synthetic SAR-like tile (a river, fields
 * and a bright block of buildings), translates it to RGB with a model (default: $MM_MODEL, else
 * the installed default model, models/default.safetensors), and writes both as netpbm images.
 * The georeferenced tools (mm_translate) are their own issue.
 */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "part_file.h"
#include "mm.h"

static const char *TOOL = "mm_demo";

static int write_pnm(const char *path, const float *img, int channels, int S) {
    FILE *f = mm_part_open(path, "wb");
    if (!f) return 1;
    fprintf(f, "P%d\n%d %d\n255\n", channels == 3 ? 6 : 5, S, S);
    for (int i = 0; i < S * S; i++)
        for (int c = 0; c < channels; c++) {
            float v = (img[(size_t)c * S * S + i] + 1.0f) * 127.5f;
            unsigned char b = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : lrintf(v));
            fputc(b, f);
        }
    return mm_part_commit(f, path);
}

static int progress(void *user, int step, int n) {
    (void)user;
    fprintf(stderr, "\r%s: step %d/%d", TOOL, step, n);
    if (step == n) fputc('\n', stderr);
    return 0;
}

static void usage(FILE *f) {
    fprintf(f, "Usage: mm_demo [--help] [--help-general] [--version] [--model FILE] [--out DIR]\n"
               "               [--steps N] [--seed N] [--threads N] [-q]\n"
               "Translates a synthetic SAR tile to RGB and writes demo_sar.pgm, demo_rgb.ppm.\n"
               "The model: --model, else $MM_MODEL, else the default model (%s).\n"
               "-h, --help, --help-general, --version: this usage, the options common to all the\n"
               "tools, the version.\n",
            mm_tool_default_model());
}

int main(int argc, char **argv) {
    if (mm_args_general(TOOL, argc, argv, usage, NULL, NULL)) return 0;
    const char *model_path = getenv("MM_MODEL") ? getenv("MM_MODEL") : mm_tool_default_model();
    const char *out_dir = ".";
    int steps = -1, threads = 0, quiet = 0;
    uint64_t seed = 1;
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},   {"out", required_argument, 0, 'o'},
        {"steps", required_argument, 0, 's'},   {"seed", required_argument, 0, 'S'},
        {"threads", required_argument, 0, 't'}, {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
        int bad = 0;
        switch (o) {
        case 'm': model_path = optarg; break;
        case 'o': out_dir = optarg; break;
        case 's': bad = mm_arg_int(TOOL, "--steps", optarg, 1, 65535, &steps); break;
        case 'S': bad = mm_arg_u64(TOOL, "--seed", optarg, &seed); break;
        case 't': bad = mm_arg_int(TOOL, "--threads", optarg, 0, 256, &threads); break;
        case 'q': quiet = 1; break;
        case 'h': usage(stdout); return 0;
        default: return 2;
        }
        if (bad) return 2;
    }
    mm_model *m = mm_tool_open_model(TOOL, model_path);
    if (!m) return 1;
    const int sar = mm_model_modality_index(m, "sar"), rgb = mm_model_modality_index(m, "rgb");
    if (sar < 0 || rgb < 0) {
        fprintf(stderr, "%s: the model has no 'sar' or no 'rgb' modality\n", TOOL);
        mm_model_close(m);
        return 1;
    }
    mm_context_params cp;
    mm_context_params_default(&cp);
    cp.n_threads = threads;
    mm_context *ctx = mm_tool_create_context(TOOL, m, &cp);
    if (!ctx) {
        mm_model_close(m);
        return 1;
    }
    const int S = mm_model_image_size(m);
    float *src = malloc(sizeof(float) * S * S * mm_model_modality_channels(m, sar));
    float *dst = malloc(sizeof(float) * S * S * mm_model_modality_channels(m, rgb));
    int rc = 1;
    if (!src || !dst) goto out;
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            const float u = (float)x / S, v = (float)y / S;
            float val = 0.1f * sinf(40 * u) * sinf(37 * v);                     /* field texture */
            if (fabsf(v - 0.5f - 0.15f * sinf(6.28f * u)) < 0.06f) val = -0.9f; /* river: dark */
            if (u > 0.65f && u < 0.9f && v > 0.1f && v < 0.35f) val = 0.8f;     /* buildings */
            src[(size_t)y * S + x] = val;
        }
    mm_sample_params sp;
    mm_sample_params_default(m, &sp);
    if (steps > 0) sp.steps = steps;
    sp.seed = seed;
    if (!quiet) sp.progress = progress;
    const uint64_t tile = 0;
    const float *srcs[1] = {src};
    float *dsts[1] = {dst};
    double t0 = mm_now_seconds();
    if (mm_translate(ctx, &sp, 1, &tile, 1, &sar, srcs, 1, &rgb, dsts) != MM_OK) {
        fprintf(stderr, "%s: %s\n", TOOL, mm_context_errmsg(ctx));
        goto out;
    }
    double dt = mm_now_seconds() - t0;
    char p1[4096], p2[4096];
    snprintf(p1, sizeof p1, "%s/demo_sar.pgm", out_dir);
    snprintf(p2, sizeof p2, "%s/demo_rgb.ppm", out_dir);
    if (write_pnm(p1, src, 1, S) || write_pnm(p2, dst, mm_model_modality_channels(m, rgb), S)) {
        fprintf(stderr, "%s: cannot write into '%s'\n", TOOL, out_dir);
        goto out;
    }
    printf(
        "%s: translated a %dx%d SAR tile to RGB with '%s' (%s, %d steps, guidance %g) in %.2f s\n"
        "  input:  %s\n  output: %s\n",
        TOOL, S, S, mm_model_name(m), mm_sampler_name(sp.sampler), sp.steps, (double)sp.guidance,
        dt, p1, p2);
    rc = 0;
out:
    free(src);
    free(dst);
    mm_context_free(ctx);
    mm_model_close(m);
    return rc;
}
