/* The command-line options mm_translate, mm_generate and mm_embed share (GDAL style), parsed in
 * one place: --help, --version, -q, -of, -co, --config KEY VALUE, --model, --device, --threads,
 * --precision, --overlap, --batch, --profile, --aoi, --aoi-layer, --nonfinite, --max-pixels,
 * --force; for the tools that sample
 * --steps, --guidance, --seed, --sampler; for the tools that read a source raster -srcwin,
 * -projwin, -b, --sar-units and --sar-band; for the tools that can fuse windows in latent space
 * --seamless and --gsd. Each tool lists MM_TOOL_OPTIONS (and the groups it takes) in its
 * getopt_long table, puts 'q' (and 'b:' with MM_TOOL_SOURCE_OPTIONS) among its short options and
 * reads its options with mm_tool_getopt, which handles the common ones itself: one meaning and one
 * message per option whatever the tool. */
#ifndef MM_TOOLS_TOOL_OPTS_H
#define MM_TOOLS_TOOL_OPTS_H
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>

#include "mmgeo.h"
#include "mmgeo_settings.h"
#include "tool_profiles.h"

enum {
    MM_OPT_HELP = 0x1000,
    MM_OPT_VERSION,
    MM_OPT_OF,
    MM_OPT_CO,
    MM_OPT_CONFIG,
    MM_OPT_MODEL,
    MM_OPT_DEVICE,
    MM_OPT_THREADS,
    MM_OPT_PRECISION,
    MM_OPT_OVERLAP,
    MM_OPT_BATCH,
    MM_OPT_STEPS,
    MM_OPT_GUIDANCE,
    MM_OPT_SEED,
    MM_OPT_SAMPLER,
    MM_OPT_PROFILE,
    MM_OPT_AOI,
    MM_OPT_AOI_LAYER,
    MM_OPT_SRCWIN,
    MM_OPT_PROJWIN,
    MM_OPT_SEAMLESS,
    MM_OPT_GSD,
    MM_OPT_SAR_UNITS,
    MM_OPT_SAR_BAND,
    MM_OPT_NONFINITE,
    MM_OPT_MAX_PIXELS,
    MM_OPT_FORCE,
    MM_OPT_SAMPLES,
    MM_OPT_SPREAD
};

#define MM_TOOL_OPTIONS                                                                            \
    {"help", no_argument, 0, MM_OPT_HELP}, {"version", no_argument, 0, MM_OPT_VERSION},            \
        {"of", required_argument, 0, MM_OPT_OF}, {"co", required_argument, 0, MM_OPT_CO},          \
        {"config", required_argument, 0, MM_OPT_CONFIG},                                           \
        {"model", required_argument, 0, MM_OPT_MODEL},                                             \
        {"device", required_argument, 0, MM_OPT_DEVICE},                                           \
        {"threads", required_argument, 0, MM_OPT_THREADS},                                         \
        {"precision", required_argument, 0, MM_OPT_PRECISION},                                     \
        {"overlap", required_argument, 0, MM_OPT_OVERLAP},                                         \
        {"batch", required_argument, 0, MM_OPT_BATCH},                                             \
        {"profile", required_argument, 0, MM_OPT_PROFILE},                                         \
        {"aoi", required_argument, 0, MM_OPT_AOI},                                                 \
        {"aoi-layer", required_argument, 0, MM_OPT_AOI_LAYER},                                     \
        {"nonfinite", required_argument, 0, MM_OPT_NONFINITE},                                     \
        {"max-pixels", required_argument, 0, MM_OPT_MAX_PIXELS}, {                                 \
        "force", no_argument, 0, MM_OPT_FORCE                                                      \
    }
#define MM_TOOL_SAMPLING_OPTIONS                                                                   \
    {"steps", required_argument, 0, MM_OPT_STEPS},                                                 \
        {"guidance", required_argument, 0, MM_OPT_GUIDANCE},                                       \
        {"seed", required_argument, 0, MM_OPT_SEED}, {                                             \
        "sampler", required_argument, 0, MM_OPT_SAMPLER                                            \
    }
/* -srcwin, -projwin, --sar-units and --sar-band; -b is the short option 'b:' */
#define MM_TOOL_SOURCE_OPTIONS                                                                     \
    {"srcwin", required_argument, 0, MM_OPT_SRCWIN},                                               \
        {"projwin", required_argument, 0, MM_OPT_PROJWIN},                                         \
        {"sar-units", required_argument, 0, MM_OPT_SAR_UNITS}, {                                   \
        "sar-band", required_argument, 0, MM_OPT_SAR_BAND                                          \
    }
#define MM_TOOL_TILING_OPTIONS                                                                     \
    {"seamless", no_argument, 0, MM_OPT_SEAMLESS}, {                                               \
        "gsd", required_argument, 0, MM_OPT_GSD                                                    \
    }

/* --samples K and --spread band|sidecar (mm_translate, mm_batch): K samples, their mean and
 * spread (mmgeo_samples_option) */
#define MM_TOOL_SAMPLES_OPTIONS                                                                    \
    {"samples", required_argument, 0, MM_OPT_SAMPLES}, {                                           \
        "spread", required_argument, 0, MM_OPT_SPREAD                                              \
    }

typedef struct {
    const char *tool;
    /* the settings shared with the GDAL driver, read by libmmgeo's one parser (mmgeo_settings.h):
       --model, --device, --precision, --threads, --overlap, --batch, --steps, --guidance,
       --seed, --sampler, --profile, -b, --sar-units, --sar-band, --nonfinite, --samples,
       --spread, and mm_translate's -ot, --processor, --window */
    mmgeo_settings set;
    /* copied from set when the options end (the tools and mm_batch read these; mm_batch shares
       the threads among its items, the model processor sets an automatic batch) */
    int quiet;
    const char *format, *model_path, *device, *precision, *sampler; /* NULL: not given */
    char **co;                                                      /* -co, a GDAL list */
    int threads, overlap, batch, steps; /* threads 0, overlap -1, steps -1: not given */
    float guidance;                     /* < 0: not given */
    uint64_t seed;
    int seed_set;
    mm_tool_profiles profiles;           /* --profile */
    const char *aoi, *aoi_layer;         /* --aoi, --aoi-layer; NULL: not given */
    int bands[MMGEO_MAX_BANDS], n_bands; /* -b */
    int srcwin[4], has_srcwin;           /* -srcwin */
    double projwin[4];                   /* -projwin */
    int has_projwin, seamless;           /* -projwin given, --seamless */
    double gsd;                          /* --gsd, metres; 0: not given */
    mmgeo_sar_options sar;               /* --sar-units, --sar-band */
    mmgeo_nonfinite nonfinite;           /* --nonfinite error|nodata */
    double max_pixels;                   /* --max-pixels; 0: MMGEO_DEFAULT_MAX_PIXELS */
    int force;                           /* --force: past the size guard */
    mmgeo_samples_options samples;       /* --samples, --spread */
    int stop;                            /* --help or --version: exit with status 0 */
} mm_tool_opts;

/* Defaults: the model from MM_MODEL, else MM_DEFAULT_MODEL; batch batch_default; --batch from
 * batch_min. */
void mm_tool_opts_init(mm_tool_opts *o, const char *tool, int batch_min, int batch_default);
/* getopt_long_only over the tool's options that handles the common ones itself: the code of the
 * next option the tool handles, or -1 when there is none left: the options ended (then the checks
 * between common options have run: -srcwin or -projwin, --aoi-layer needs --aoi, the settings'
 * own (mmgeo_settings_finish: MM_DEVICE, MM_MODEL), and the fields are copied from set), *bad is set
 * (a message was printed; the tool exits with status 2), or o->stop is set (--help printed
 * usage(stdout), or --version; the tool exits with status 0). The tool sets *bad for a bad value
 * of its own options. */
int mm_tool_getopt(mm_tool_opts *o, int argc, char **argv, const char *shortopts,
                   const struct option *longopts, void (*usage)(FILE *), int *bad);
void mm_tool_opts_free(mm_tool_opts *o);
/* A context for model on the --device, --threads and --precision of o. Returns 0, or -1 after a
 * message on stderr. */
int mm_tool_context(const mm_tool_opts *o, mm_model *model, mm_context **ctx);
/* The model's default sampling parameters with the --steps, --guidance, --seed and --sampler of
 * o; sampling stops on Ctrl-C (tool_run.h). Returns 0, or -1 after a message on stderr. */
int mm_tool_sample_params(const mm_tool_opts *o, const mm_model *model, mm_sample_params *p);
/* job's source window: the -srcwin of o, or its -projwin in the pixels of the raster at path
 * (job->has_srcwin stays 0 without either). Returns 0, or -1 after a message on stderr. */
int mm_tool_srcwin(const mm_tool_opts *o, const char *path, mmgeo_job *job);

#endif
