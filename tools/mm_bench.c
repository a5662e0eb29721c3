/*
 * mm_bench: times one sampling step (a guided translation step: scene module over source and
 * target, generator for the target, conditional and unconditional branches) and one full
 * translation of a tile, for a model or a bare config with random weights, a batch size and a
 * thread count. Also measures oneDNN's own multi-threaded matmul rate at the model's shapes, the
 * ceiling the engine is compared with. A benchmark, not a test: it asserts nothing.
 */
#define _POSIX_C_SOURCE 200809L
#include <dnnl.h>
#include <getopt.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "mm.h"

static const char *TOOL = "mm_bench";

static void usage(FILE *f) {
    fprintf(f,
            "Usage: mm_bench (--model FILE | --config FILE.json) [options]\n"
            "  --batch N        tiles per forward (default 1); 0: the largest that fits into the\n"
            "                   free device memory (up to 256)\n"
            "  --memory-budget M  working memory allowed, MiB (default: the usable share of the\n"
            "                   free memory)\n"
            "  --threads N      threads (default: all cores)\n"
            "  --precision P    bf16 (default) or fp32\n"
            "  --device D       cpu (default) or cuda; default from MM_DEVICE\n"
            "  --reps N         timed repetitions of one step (default 3)\n"
            "  --steps N        steps of the full translation (default 4; 0 skips it)\n"
            "  --guidance G     guidance scale (default 1.2)\n"
            "  --no-matmul      skip the oneDNN matmul reference (always skipped on cuda)\n"
            "  --scene          also time the scene module alone\n"
            "Prints one JSON object.\n"
            "-h, --help, --help-general, --version: this usage, the options common to all the\n"
            "tools, the version.\n");
}

/* FLOPs of one guided step for one tile: scene module over sources+target, generator for the
 * target, both branches (matrix products and attention only). */
static double step_flops(const mm_model *m, int n_parts, int guided, int scene_only) {
    const double H = mm_model_hidden_size(m), T = mm_model_tokens_per_side(m), N = T * T;
    const char *cj = mm_model_config_json(m);
    double F = 4 * H, scene_depth = 20, gen_depth = 4;
    const char *k;
    if ((k = strstr(cj, "\"mlp_ratio\""))) F = H * atof(strchr(k, ':') + 1);
    if ((k = strstr(cj, "\"scene_depth\""))) scene_depth = atof(strchr(k, ':') + 1);
    if ((k = strstr(cj, "\"gen_depth\""))) gen_depth = atof(strchr(k, ':') + 1);
    const double S = n_parts * N;
    const double block = 2 * S * H * 3 * H + 2 * 2 * S * S * H + 2 * S * H * H + 2 * 2 * S * H * F;
    const double scene = scene_depth * (block + 2 * n_parts * H * 6 * H);
    const double gblock = 2 * N * H * 3 * H + 2 * 2 * N * N * H + 2 * N * H * H +
                          2 * 2 * N * H * F + 2 * N * H * 6 * H;
    const double gen = gen_depth * gblock + 2 * N * H * 2 * H;
    return (scene + (scene_only ? 0 : gen)) * (guided ? 2 : 1);
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = (n >= 0 && n < (16 << 20)) ? malloc((size_t)n + 1) : NULL;
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    if (b) b[n] = 0;
    fclose(f);
    return b;
}

/* oneDNN's own (multi-threaded) bf16 or fp32 matmul rate for C[M,N] = A[M,K] B[K,N]. */
static double dnnl_rate(int64_t M, int64_t K, int64_t N, int bf16, int threads) {
    dnnl_engine_t eng;
    dnnl_stream_t st;
    if (dnnl_engine_create(&eng, dnnl_cpu, 0) ||
        dnnl_stream_create(&st, eng, dnnl_stream_default_flags))
        return 0;
    dnnl_data_type_t dt = bf16 ? dnnl_bf16 : dnnl_f32;
    dnnl_memory_desc_t ad, bd, cd;
    dnnl_dims_t as = {M, K}, bs = {K, N}, cs = {M, N};
    dnnl_memory_desc_init_by_tag(&ad, 2, as, dt, dnnl_ab);
    dnnl_memory_desc_init_by_tag(&bd, 2, bs, dt, dnnl_ba);
    dnnl_memory_desc_init_by_tag(&cd, 2, cs, dnnl_f32, dnnl_ab);
    dnnl_matmul_desc_t md;
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t p;
    double rate = 0;
    if (dnnl_matmul_desc_init(&md, &ad, &bd, NULL, &cd) ||
        dnnl_primitive_desc_create(&pd, &md, NULL, eng, NULL) || dnnl_primitive_create(&p, pd)) {
        dnnl_stream_destroy(st);
        dnnl_engine_destroy(eng);
        return 0;
    }
    const size_t es = bf16 ? 2 : 4;
    void *a = calloc((size_t)(M * K), es), *b = calloc((size_t)(K * N), es),
         *c = calloc((size_t)(M * N), 4);
    dnnl_memory_t am, bm, cm;
    dnnl_memory_create(&am, &ad, eng, a);
    dnnl_memory_create(&bm, &bd, eng, b);
    dnnl_memory_create(&cm, &cd, eng, c);
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}};
    omp_set_num_threads(threads);
    dnnl_primitive_execute(p, st, 3, args);
    dnnl_stream_wait(st);
    int reps = 0;
    double t0 = mm_now_seconds(), t;
    do {
        dnnl_primitive_execute(p, st, 3, args);
        dnnl_stream_wait(st);
        reps++;
    } while ((t = mm_now_seconds() - t0) < 0.3);
    rate = 2.0 * M * K * N * reps / t / 1e9;
    dnnl_memory_destroy(am);
    dnnl_memory_destroy(bm);
    dnnl_memory_destroy(cm);
    free(a);
    free(b);
    free(c);
    dnnl_primitive_destroy(p);
    dnnl_primitive_desc_destroy(pd);
    dnnl_stream_destroy(st);
    dnnl_engine_destroy(eng);
    return rate;
}

int main(int argc, char **argv) {
    if (mm_args_general(TOOL, argc, argv, usage, NULL, NULL)) return 0;
    const char *model_path = NULL, *config_path = NULL;
    int batch = 1, threads = 0, reps = 3, steps = 4, do_matmul = 1, do_scene = 0, budget_mib = 0;
    float guidance = 1.2f;
    mm_precision prec = MM_PRECISION_BF16;
    mm_device dev = MM_DEVICE_CPU;
    if (mm_arg_device(TOOL, NULL, &dev)) return 2; /* MM_DEVICE, overridden by --device */
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                         {"config", required_argument, 0, 'c'},
                                         {"batch", required_argument, 0, 'b'},
                                         {"threads", required_argument, 0, 't'},
                                         {"precision", required_argument, 0, 'p'},
                                         {"reps", required_argument, 0, 'r'},
                                         {"steps", required_argument, 0, 's'},
                                         {"guidance", required_argument, 0, 'g'},
                                         {"no-matmul", no_argument, 0, 'n'},
                                         {"scene", no_argument, 0, 'x'},
                                         {"device", required_argument, 0, 'd'},
                                         {"memory-budget", required_argument, 0, 'M'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int bad = 0;
        switch (o) {
        case 'm': model_path = optarg; break;
        case 'c': config_path = optarg; break;
        case 'b': bad = mm_arg_int(TOOL, "--batch", optarg, 0, 256, &batch); break;
        case 't': bad = mm_arg_int(TOOL, "--threads", optarg, 0, 256, &threads); break;
        case 'p': bad = mm_arg_precision(TOOL, optarg, &prec); break;
        case 'd': bad = mm_arg_device(TOOL, optarg, &dev); break;
        case 'r': bad = mm_arg_int(TOOL, "--reps", optarg, 1, 1000, &reps); break;
        case 's': bad = mm_arg_int(TOOL, "--steps", optarg, 0, 65535, &steps); break;
        case 'g': bad = mm_arg_float(TOOL, "--guidance", optarg, 0, 100, &guidance); break;
        case 'n': do_matmul = 0; break;
        case 'x': do_scene = 1; break;
        case 'M': bad = mm_arg_int(TOOL, "--memory-budget", optarg, 1, 1 << 30, &budget_mib); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        if (bad) return 2;
    }
    if (!!model_path == !!config_path || optind != argc) {
        usage(stderr);
        return 2;
    }
    mm_model *m = NULL;
    if (model_path) {
        if (!(m = mm_tool_open_model(TOOL, model_path))) return 1;
    } else {
        char *cfg = slurp(config_path), *err = NULL;
        if (!cfg) {
            fprintf(stderr, "%s: cannot read '%s'\n", TOOL, config_path);
            return 1;
        }
        if (mm_model_create_random(cfg, 42, &m, &err) != MM_OK) {
            fprintf(stderr, "%s: %s: %s\n", TOOL, config_path,
                    err ? err : "cannot build the model");
            mm_free(err);
            free(cfg);
            return 1;
        }
        free(cfg);
    }
    mm_context_params cp;
    mm_context_params_default(&cp);
    cp.n_threads = threads;
    cp.precision = prec;
    cp.device = dev;
    if (dev == MM_DEVICE_CUDA) do_matmul = 0; /* oneDNN's rate is a CPU ceiling */
    mm_context *ctx = mm_tool_create_context(TOOL, m, &cp);
    if (!ctx) {
        mm_model_close(m);
        return 1;
    }
    if (threads == 0) threads = omp_get_num_procs();
    /* the working memory of the translation, in one block, before anything runs: the batch
     * from the free memory when asked (--batch 0); too large a batch stops here with the
     * figures (docs/cuda.md, "Memory") */
    const int src_mod = 1 % mm_model_num_modalities(m), tgt_mod = 0;
    const int auto_batch = batch == 0;
    mm_workload wl = {batch, 1, &src_mod, 1, &tgt_mod, guidance, 0};
    mm_memory_plan plan;
    const size_t budget = (size_t)budget_mib << 20;
    if ((auto_batch ? mm_context_reserve_auto(ctx, &wl, 256, budget, &plan)
                    : mm_context_reserve(ctx, &wl, budget, &plan)) != MM_OK) {
        fprintf(stderr, "%s: %s\n", TOOL, mm_context_errmsg(ctx));
        mm_context_free(ctx);
        mm_model_close(m);
        return 1;
    }
    batch = plan.n_tiles;
    const int C = mm_model_latent_channels(m), L = mm_model_latent_size(m);
    const int S = mm_model_image_size(m), H = mm_model_hidden_size(m);
    const size_t lat = (size_t)C * L * L;
    const int gb = guidance != 1.0f ? 2 * batch : batch; /* both branches in one forward */
    float *zs = calloc(lat * gb, sizeof(float)), *zt = calloc(lat * gb, sizeof(float));
    float *v = calloc(lat * gb, sizeof(float)), *ts = calloc((size_t)gb, sizeof(float));
    float *tt = calloc((size_t)gb, sizeof(float));
    for (size_t i = 0; i < lat * gb; i++) {
        zs[i] = sinf((float)i * 0.37f);
        zt[i] = cosf((float)i * 0.11f);
    }
    for (int b = 0; b < gb; b++) {
        ts[b] = b < batch ? 0.0f : 1.0f;
        tt[b] = 0.5f;
    }
    mm_partition parts[2] = {{src_mod, zs, ts}, {tgt_mod, zt, tt}};
    const int target = 1;
    int rc = 0;
    /* warm-up: primitive creation and workspace allocation happen here */
    if (mm_predict(ctx, gb, 2, parts, 1, &target, &v, NULL) != MM_OK) {
        fprintf(stderr, "%s: %s\n", TOOL, mm_context_errmsg(ctx));
        rc = 1;
        goto out;
    }
    double t0 = mm_now_seconds();
    for (int r = 0; r < reps; r++)
        mm_predict(ctx, gb, 2, parts, 1, &target, &v, NULL);
    const double step_s = (mm_now_seconds() - t0) / reps;
    const double flops = step_flops(m, 2, guidance != 1.0f, 0) * batch;
    double scene_s = 0;
    if (do_scene) { /* the scene module alone: no target partitions to generate */
        mm_predict(ctx, gb, 2, parts, 0, NULL, NULL, NULL);
        t0 = mm_now_seconds();
        for (int r = 0; r < reps; r++)
            mm_predict(ctx, gb, 2, parts, 0, NULL, NULL, NULL);
        scene_s = (mm_now_seconds() - t0) / reps;
    }
    const double scene_flops = step_flops(m, 2, guidance != 1.0f, 1) * batch;
    double translate_s = 0;
    long long translate_allocs = -1;
    if (steps > 0) {
        mm_sample_params sp;
        mm_sample_params_default(m, &sp);
        sp.steps = steps;
        sp.guidance = guidance;
        const size_t si = (size_t)mm_model_modality_channels(m, src_mod) * S * S * batch;
        const size_t ti = (size_t)mm_model_modality_channels(m, tgt_mod) * S * S * batch;
        float *src = calloc(si, sizeof(float)), *dst = calloc(ti, sizeof(float));
        uint64_t *ids = calloc((size_t)batch, sizeof(uint64_t));
        for (size_t i = 0; i < si; i++)
            src[i] = 0.5f * sinf((float)i * 0.01f);
        for (int b = 0; b < batch; b++)
            ids[b] = (uint64_t)b;
        const float *srcs[1] = {src};
        float *dsts[1] = {dst};
        const uint64_t a0 = mm_context_alloc_count(ctx);
        t0 = mm_now_seconds();
        if (mm_translate(ctx, &sp, batch, ids, 1, &src_mod, srcs, 1, &tgt_mod, dsts) != MM_OK) {
            fprintf(stderr, "%s: %s\n", TOOL, mm_context_errmsg(ctx));
            rc = 1;
        }
        translate_s = mm_now_seconds() - t0;
        translate_allocs = (long long)(mm_context_alloc_count(ctx) - a0);
        free(src);
        free(dst);
        free(ids);
    }
    const int rows = 2 * mm_model_tokens_per_side(m) * mm_model_tokens_per_side(m) * gb;
    double mm_qkv = 0, mm_fc1 = 0, mm_fc2 = 0;
    if (do_matmul) {
        const int bf = mm_context_precision(ctx) == MM_PRECISION_BF16;
        mm_qkv = dnnl_rate(rows, H, 3 * H, bf, threads);
        mm_fc1 = dnnl_rate(rows, H, 4 * H, bf, threads);
        mm_fc2 = dnnl_rate(rows, 4 * H, H, bf, threads);
    }
    printf("{\"model\": \"%s\", \"device\": \"%s\", \"batch\": %d, \"threads\": %d, "
           "\"precision\": \"%s\", \"guidance\": %g, \"step_seconds\": %.6f, "
           "\"step_seconds_per_tile\": %.6f, "
           "\"step_gflop\": %.3f, \"step_gflops\": %.1f, \"translate_steps\": %d, "
           "\"translate_seconds\": %.4f, \"onednn_matmul_gflops\": {\"qkv\": %.1f, \"fc1\": %.1f, "
           "\"fc2\": %.1f}, \"scene_rows\": %d, \"scene_seconds\": %.6f, \"scene_gflops\": %.1f, "
           "\"batch_auto\": %s, \"memory\": {\"arena_bytes\": %zu, \"workspace_bytes\": %zu, "
           "\"scratch_bytes\": %zu, \"free_bytes\": %zu, \"device_bytes\": %zu, "
           "\"translate_allocations\": %lld}}\n",
           model_path ? model_path : config_path, dev == MM_DEVICE_CUDA ? "cuda" : "cpu", batch,
           threads, mm_context_precision(ctx) == MM_PRECISION_BF16 ? "bf16" : "fp32",
           (double)guidance, step_s, step_s / batch, flops / 1e9, flops / step_s / 1e9, steps,
           translate_s, mm_qkv, mm_fc1, mm_fc2, rows, scene_s,
           scene_s > 0 ? scene_flops / scene_s / 1e9 : 0.0, auto_batch ? "true" : "false",
           plan.arena, plan.workspace, plan.scratch, plan.free_bytes, plan.device_bytes,
           translate_allocs);
out:
    free(zs);
    free(zt);
    free(v);
    free(ts);
    free(tt);
    mm_context_free(ctx);
    mm_model_close(m);
    return rc;
}
