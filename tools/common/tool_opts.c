#define _GNU_SOURCE /* realpath */
/* The options the georeferenced tools share (tool_opts.h). */
#include "tool_opts.h"

#include <cpl_conv.h>
#include <cpl_string.h>
#include <gdal.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "mm.h"
#include "tool_run.h"

void mm_tool_opts_init(mm_tool_opts *o, const char *tool, int batch_min, int batch_default) {
    memset(o, 0, sizeof *o);
    o->tool = tool;
    o->batch_min = batch_min;
    o->model_path = getenv("MM_MODEL") ? getenv("MM_MODEL") : MM_DEFAULT_MODEL;
    o->overlap = -1;
    o->batch = batch_default;
    o->steps = -1;
    o->guidance = -1;
}

int mm_tool_opt(mm_tool_opts *o, int c, int argc, char **argv, void (*usage)(FILE *)) {
    const char *T = o->tool;
    switch (c) {
    case MM_OPT_HELP: usage(stdout); return 2;
    case MM_OPT_VERSION:
        printf("%s %s (libmm %s, GDAL %s)\n", T, MM_VERSION_STRING, mm_version(),
               GDALVersionInfo("RELEASE_NAME"));
        return 2;
    case 'q': o->quiet = 1; return 0;
    case MM_OPT_OF: o->format = optarg; return 0;
    case MM_OPT_CO: o->co = CSLAddString(o->co, optarg); return 0;
    case MM_OPT_CONFIG:
        if (optind >= argc) {
            fprintf(stderr, "%s: --config needs KEY VALUE\n", T);
            return 1;
        }
        CPLSetConfigOption(optarg, argv[optind++]);
        return 0;
    case MM_OPT_MODEL: o->model_path = optarg; return 0;
    case MM_OPT_DEVICE: o->device = optarg; return 0;
    case MM_OPT_THREADS: return mm_arg_int(T, "--threads", optarg, 0, 4096, &o->threads);
    case MM_OPT_PRECISION: o->precision = optarg; return 0;
    case MM_OPT_OVERLAP: return mm_arg_int(T, "--overlap", optarg, 0, 1 << 20, &o->overlap);
    case MM_OPT_BATCH: return mm_arg_int(T, "--batch", optarg, o->batch_min, 4096, &o->batch);
    case MM_OPT_STEPS: return mm_arg_int(T, "--steps", optarg, 1, 65535, &o->steps);
    case MM_OPT_GUIDANCE: return mm_arg_float(T, "--guidance", optarg, 0, 100, &o->guidance);
    case MM_OPT_SEED: o->seed_set = 1; return mm_arg_u64(T, "--seed", optarg, &o->seed);
    case MM_OPT_SAMPLER: o->sampler = optarg; return 0;
    default: return -1;
    }
}

void mm_tool_opts_free(mm_tool_opts *o) {
    CSLDestroy(o->co);
    o->co = NULL;
}

int mm_tool_open_aoi(const char *tool, const char *path, const char *layer, mmgeo_job *job,
                     mmgeo_aoi **aoi, char ***md) {
    char err[1024];
    if (mmgeo_aoi_open_job(path, layer, job, aoi, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", tool, err);
        return -1;
    }
    job->aoi = *aoi;
    char *abs = realpath(path, NULL);
    char *v =
        CPLStrdup(CPLSPrintf("%s%s%s", abs ? abs : path, layer ? ":" : "", layer ? layer : ""));
    free(abs);
    job->metadata = *md = CSLSetNameValue(*md, "MM_AOI", v);
    CPLFree(v);
    return 0;
}

int mm_tool_context(const mm_tool_opts *o, mm_model *model, mm_context **ctx) {
    mm_context_params cp;
    mm_context_params_default(&cp);
    cp.n_threads = o->threads;
    if (mm_arg_device(o->tool, o->device, &cp.device)) return -1;
    if (o->precision && mm_arg_precision(o->tool, o->precision, &cp.precision)) return -1;
    char *e = NULL;
    if (mm_context_create(model, &cp, ctx, &e) != MM_OK) {
        fprintf(stderr, "%s: %s\n", o->tool, e ? e : "cannot create a context");
        mm_free(e);
        return -1;
    }
    return 0;
}

int mm_tool_sample_params(const mm_tool_opts *o, const mm_model *model, mm_sample_params *p) {
    mm_sample_params_default(model, p);
    if (o->steps > 0) p->steps = o->steps;
    if (o->guidance >= 0) p->guidance = o->guidance;
    if (o->seed_set) p->seed = o->seed;
    if (o->sampler) {
        const int s = mm_sampler_from_name(o->sampler);
        if (s < 0) {
            fprintf(stderr, "%s: unknown sampler '%s' (euler, heun, euler_maruyama)\n", o->tool,
                    o->sampler);
            return -1;
        }
        p->sampler = (mm_sampler)s;
    }
    p->progress = mm_tool_sampling_progress;
    return 0;
}
