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
    mmgeo_settings_init(&o->set, batch_min);
    o->set.batch = batch_default;
    o->model_path = getenv("MM_MODEL") ? getenv("MM_MODEL") : MM_DEFAULT_MODEL;
    o->overlap = -1;
    o->batch = batch_default;
    o->steps = -1;
    o->guidance = -1;
}

/* The settings' name of a common option that is one (mmgeo_settings.h), else NULL. */
static const char *setting_name(int c) {
    switch (c) {
    case MM_OPT_MODEL: return "model";
    case MM_OPT_DEVICE: return "device";
    case MM_OPT_THREADS: return "threads";
    case MM_OPT_PRECISION: return "precision";
    case MM_OPT_OVERLAP: return "overlap";
    case MM_OPT_BATCH: return "batch";
    case MM_OPT_PROFILE: return "profile";
    case MM_OPT_STEPS: return "steps";
    case MM_OPT_GUIDANCE: return "guidance";
    case MM_OPT_SEED: return "seed";
    case MM_OPT_SAMPLER: return "sampler";
    case 'b': return "bands";
    case MM_OPT_SAMPLES: return "samples";
    case MM_OPT_SPREAD: return "spread";
    case MM_OPT_SAR_UNITS: return "sar-units";
    case MM_OPT_SAR_BAND: return "sar-band";
    case MM_OPT_NONFINITE: return "nonfinite";
    default: return NULL;
    }
}

/* The fields the tools read, from the settings (once the options are read). */
static void take_settings(mm_tool_opts *o) {
    const mmgeo_settings *s = &o->set;
    if (s->model_path) o->model_path = s->model_path;
    if (s->device_set) o->device = mmgeo_settings_device_name(s->device);
    if (s->precision_set) o->precision = mmgeo_settings_precision_name(s->precision);
    if (s->sampler >= 0) o->sampler = mm_sampler_name((mm_sampler)s->sampler);
    o->threads = s->threads;
    o->overlap = s->overlap;
    o->batch = s->batch;
    o->steps = s->steps > 0 ? s->steps : -1;
    o->guidance = s->guidance >= 0 ? (float)s->guidance : -1;
    o->seed = s->seed;
    o->seed_set = s->seed_set;
    o->profiles.n = s->n_profiles;
    memcpy(o->profiles.spec, s->profiles, sizeof(const char *) * (size_t)s->n_profiles);
    o->n_bands = s->n_bands;
    memcpy(o->bands, s->bands, sizeof o->bands);
    o->sar = s->sar;
    o->nonfinite = s->nonfinite;
    o->samples = s->samples;
}

/* One common option (code c, optarg and optind as getopt_long_only left them; --config takes the
 * value that follows): 0 when it was handled, 1 when its value is bad (a message is printed), 2
 * when the tool should exit with status 0, -1 when it is not a common option. */
static int common_opt(mm_tool_opts *o, int c, int argc, char **argv, void (*usage)(FILE *)) {
    const char *T = o->tool;
    const char *name = setting_name(c);
    if (name) {
        if (mmgeo_settings_set(&o->set, name, optarg)) {
            fprintf(stderr, "%s: %s\n", T, mmgeo_settings_errmsg(&o->set));
            return 1;
        }
        return 0;
    }
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
    case MM_OPT_AOI: o->aoi = optarg; return 0;
    case MM_OPT_AOI_LAYER: o->aoi_layer = optarg; return 0;
    case MM_OPT_SRCWIN:
        o->has_srcwin = 1;
        return mm_arg_srcwin(T, optarg, argc, argv, &optind, o->srcwin);
    case MM_OPT_PROJWIN:
        o->has_projwin = 1;
        return mm_arg_projwin(T, optarg, argc, argv, &optind, o->projwin);
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
            if (mmgeo_settings_finish(&o->set)) {
                fprintf(stderr, "%s: %s\n", o->tool, mmgeo_settings_errmsg(&o->set));
                *bad = 1;
                return -1;
            }
            take_settings(o);
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
    mmgeo_settings_context_params(&o->set, &cp);
    cp.n_threads = o->threads; /* mm_batch shares the cores among its items */
    *ctx = mm_tool_create_context(o->tool, model, &cp);
    return *ctx ? 0 : -1;
}

int mm_tool_sample_params(const mm_tool_opts *o, const mm_model *model, mm_sample_params *p) {
    mmgeo_settings_sample_params(&o->set, model, p);
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
