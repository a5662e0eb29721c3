/* The command-line options mm_translate, mm_generate and mm_embed share (GDAL style), parsed in
 * one place: --help, --version, -q, -of, -co, --config KEY VALUE, --model, --device, --threads,
 * --precision, --overlap, --batch, and for the tools that sample --steps, --guidance, --seed,
 * --sampler. Each tool lists MM_TOOL_OPTIONS (and MM_TOOL_SAMPLING_OPTIONS) in its getopt_long
 * table, puts 'q' among its short options and passes every option code to mm_tool_opt first. */
#ifndef MM_TOOLS_TOOL_OPTS_H
#define MM_TOOLS_TOOL_OPTS_H
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>

#include "mmgeo.h"

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
    MM_OPT_SAMPLER
};

#define MM_TOOL_OPTIONS                                                                            \
    {"help", no_argument, 0, MM_OPT_HELP}, {"version", no_argument, 0, MM_OPT_VERSION},            \
        {"of", required_argument, 0, MM_OPT_OF}, {"co", required_argument, 0, MM_OPT_CO},          \
        {"config", required_argument, 0, MM_OPT_CONFIG},                                           \
        {"model", required_argument, 0, MM_OPT_MODEL},                                             \
        {"device", required_argument, 0, MM_OPT_DEVICE},                                           \
        {"threads", required_argument, 0, MM_OPT_THREADS},                                         \
        {"precision", required_argument, 0, MM_OPT_PRECISION},                                     \
        {"overlap", required_argument, 0, MM_OPT_OVERLAP}, {                                       \
        "batch", required_argument, 0, MM_OPT_BATCH                                                \
    }
#define MM_TOOL_SAMPLING_OPTIONS                                                                   \
    {"steps", required_argument, 0, MM_OPT_STEPS},                                                 \
        {"guidance", required_argument, 0, MM_OPT_GUIDANCE},                                       \
        {"seed", required_argument, 0, MM_OPT_SEED}, {                                             \
        "sampler", required_argument, 0, MM_OPT_SAMPLER                                            \
    }

typedef struct {
    const char *tool;
    int batch_min; /* the smallest --batch accepted (0: "from the free memory") */
    /* the values: defaults from mm_tool_opts_init, then the command line */
    int quiet;
    const char *format, *model_path, *device, *precision, *sampler; /* NULL: not given */
    char **co;                                                      /* -co, a GDAL list */
    int threads, overlap, batch, steps; /* threads 0, overlap -1, steps -1: not given */
    float guidance;                     /* < 0: not given */
    uint64_t seed;
    int seed_set;
} mm_tool_opts;

/* Defaults: the model from $MM_MODEL, else MM_DEFAULT_MODEL; batch batch_default. */
void mm_tool_opts_init(mm_tool_opts *o, const char *tool, int batch_min, int batch_default);
/* Handles option code c of getopt_long_only (optarg, optind as it left them; --config takes
 * the value that follows): 0 when it was a common option, 1 when its value is bad (a message is
 * printed), 2 when the tool should exit with status 0 (--help: usage(stdout); --version), -1 when
 * it is not a common option. */
int mm_tool_opt(mm_tool_opts *o, int c, int argc, char **argv, void (*usage)(FILE *));
void mm_tool_opts_free(mm_tool_opts *o);
/* A context for model on the --device, --threads and --precision of o. Returns 0, or -1 after a
 * message on stderr. */
int mm_tool_context(const mm_tool_opts *o, mm_model *model, mm_context **ctx);
/* The model's default sampling parameters with the --steps, --guidance, --seed and --sampler of
 * o; sampling stops on Ctrl-C (tool_run.h). Returns 0, or -1 after a message on stderr. */
int mm_tool_sample_params(const mm_tool_opts *o, const mm_model *model, mm_sample_params *p);
/* --aoi: opens the area of interest for job (mmgeo_aoi_open_job), sets job->aoi and records it in
 * the output metadata *md (MM_AOI = absolute path[:layer]; job->metadata follows *md). Returns 0,
 * or -1 after a message on stderr. */
int mm_tool_open_aoi(const char *tool, const char *path, const char *layer, mmgeo_job *job,
                     mmgeo_aoi **aoi, char ***md);

#endif
