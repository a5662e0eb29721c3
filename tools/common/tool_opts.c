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

/* One common option (code c, optarg and optind as getopt_long_only left them; --config takes the
 * value that follows): 0 when it was handled, 1 when its value is bad (a message is printed), 2
 * when the tool should exit with status 0, -1 when it is not a common option. */
static int common_opt(mm_tool_opts *o, int c, int argc, char **argv, void (*usage)(FILE *)) {
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
    case MM_OPT_PROFILE: return mm_tool_profile_add(T, &o->profiles, optarg);
    case MM_OPT_AOI: o->aoi = optarg; return 0;
    case MM_OPT_AOI_LAYER: o->aoi_layer = optarg; return 0;
    case MM_OPT_STEPS: return mm_arg_int(T, "--steps", optarg, 1, 65535, &o->steps);
    case MM_OPT_GUIDANCE: return mm_arg_float(T, "--guidance", optarg, 0, 100, &o->guidance);
    case MM_OPT_SEED: o->seed_set = 1; return mm_arg_u64(T, "--seed", optarg, &o->seed);
    case MM_OPT_SAMPLER: o->sampler = optarg; return 0;
    case MM_OPT_SRCWIN:
        o->has_srcwin = 1;
        return mm_arg_srcwin(T, optarg, argc, argv, &optind, o->srcwin);
    case MM_OPT_PROJWIN:
        o->has_projwin = 1;
        return mm_arg_projwin(T, optarg, argc, argv, &optind, o->projwin);
    case 'b':
        if (o->n_bands == MMGEO_MAX_BANDS) {
            fprintf(stderr, "%s: at most %d bands\n", T, MMGEO_MAX_BANDS);
            return 1;
        }
        return mm_arg_int(T, "-b", optarg, 1, 1 << 20, &o->bands[o->n_bands++]);
    case MM_OPT_SAMPLES:
    case MM_OPT_SPREAD: {
        char err[512];
        if (mmgeo_samples_option(&o->samples, c == MM_OPT_SAMPLES ? "samples" : "spread", optarg,
                                 err, sizeof err)) {
            fprintf(stderr, "%s: %s\n", T, err);
            return 1;
        }
        return 0;
    }
    case MM_OPT_SAR_UNITS:
    case MM_OPT_SAR_BAND: {
        char err[512];
        if (mmgeo_sar_option(&o->sar, c == MM_OPT_SAR_UNITS ? "units" : "band", optarg, err,
                             sizeof err)) {
            fprintf(stderr, "%s: %s\n", T, err);
            return 1;
        }
        return 0;
    }
    case MM_OPT_NONFINITE:
        if (!strcmp(optarg, "error") || !strcmp(optarg, "nodata")) {
            o->nonfinite = optarg[0] == 'e' ? MMGEO_NONFINITE_ERROR : MMGEO_NONFINITE_NODATA;
            return 0;
        }
        fprintf(stderr, "%s: --nonfinite takes error or nodata, got '%s'\n", T, optarg);
        return 1;
    case MM_OPT_MAX_PIXELS:
        if (mm_arg_double(T, "--max-pixels", optarg, &o->max_pixels)) return 1;
        if (!(o->max_pixels >= 1)) {
            fprintf(stderr, "%s: --max-pixels must be at least 1\n", T);
            return 1;
        }
        return 0;
    case MM_OPT_FORCE: o->force = 1; return 0;
    case MM_OPT_SEAMLESS: o->seamless = 1; return 0;
    case MM_OPT_GSD:
        if (mm_arg_double(T, "--gsd", optarg, &o->gsd)) return 1;
        if (!(o->gsd > 0)) {
            fprintf(stderr, "%s: --gsd must be a positive number of metres\n", T);
            return 1;
        }
        return 0;
    default: return -1;
    }
}

/* The checks between common options, once they are all read: 0, or 1 after a message. */
static int check_opts(const mm_tool_opts *o) {
    if (o->has_projwin && o->has_srcwin) {
        fprintf(stderr, "%s: give -srcwin or -projwin, not both\n", o->tool);
        return 1;
    }
    if (o->aoi_layer && !o->aoi) {
        fprintf(stderr, "%s: --aoi-layer needs --aoi\n", o->tool);
        return 1;
    }
    if (o->samples.spread_set && o->samples.samples < 2) {
        fprintf(stderr, "%s: --spread needs --samples K with K of 2 or more\n", o->tool);
        return 1;
    }
    if (o->samples.samples > 1 && o->seamless) {
        fprintf(stderr, "%s: --samples works with the blended tiling, not --seamless\n", o->tool);
        return 1;
    }
    return 0;
}

int mm_tool_getopt(mm_tool_opts *o, int argc, char **argv, const char *shortopts,
                   const struct option *longopts, void (*usage)(FILE *), int *bad) {
    opterr = 1;
    while (!*bad && !o->stop) {
        const int c = getopt_long_only(argc, argv, shortopts, longopts, NULL);
        if (c == -1) {
            *bad = check_opts(o);
            return -1;
        }
        const int common = common_opt(o, c, argc, argv, usage);
        if (common < 0) return c;
        if (common == 2)
            o->stop = 1;
        else
            *bad = common;
    }
    return -1;
}

void mm_tool_opts_free(mm_tool_opts *o) {
    CSLDestroy(o->co);
    o->co = NULL;
}

int mm_tool_context(const mm_tool_opts *o, mm_model *model, mm_context **ctx) {
    mm_context_params cp;
    mm_context_params_default(&cp);
    cp.n_threads = o->threads;
    if (mm_arg_device(o->tool, o->device, &cp.device)) return -1;
    if (o->precision && mm_arg_precision(o->tool, o->precision, &cp.precision)) return -1;
    *ctx = mm_tool_create_context(o->tool, model, &cp);
    return *ctx ? 0 : -1;
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

int mm_tool_srcwin(const mm_tool_opts *o, const char *path, mmgeo_job *job) {
    if (o->has_srcwin) {
        memcpy(job->srcwin, o->srcwin, sizeof o->srcwin);
        job->has_srcwin = 1;
    } else if (o->has_projwin) {
        char err[2048];
        if (mmgeo_projwin_srcwin(path, o->projwin, job->srcwin, err, sizeof err)) {
            fprintf(stderr, "%s: %s\n", o->tool, err);
            return -1;
        }
        job->has_srcwin = 1;
    }
    return 0;
}
