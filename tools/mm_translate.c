/*
 * mm_translate: translate georeferenced rasters of some modalities into another modality with a
 * MetaEarth-MM model, over the whole scene: the scene is cut into the model's windows on a grid
 * anchored to the raster, each window translated, and the results blended back onto the input's
 * grid (size, geotransform or GCPs, CRS, nodata). See man/mm_translate.1 and docs/tools.md.
 */
#define _GNU_SOURCE
#include <cpl_conv.h>
#include <cpl_string.h>
#include <gdal.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "tool_metadata.h"
#include "tool_model.h"
#include "tool_opts.h"
#include "tool_profiles.h"
#include "tool_run.h"
#include "mm.h"
#include "mmgeo.h"

#define TOOL_NAME "mm_translate"
static const char *TOOL = TOOL_NAME;

static void usage(FILE *f) {
    fprintf(
        f,
        "Usage: mm_translate [--help] [--help-general] [--version] [-q]\n"
        "         [-of FORMAT] [-co NAME=VALUE]...\n"
        "         [--config KEY VALUE]... [--model FILE] [--device cpu|cuda] [--threads N]\n"
        "         [--precision bf16|fp32] [--steps N] [--guidance G] [--seed N]\n"
        "         [--sampler euler|heun|euler_maruyama] [--overlap PX] [--batch N] [--seamless]\n"
        "         [-s MODALITY | -s MODALITY:FILE]... [-t MODALITY] [-b BAND]...\n"
        "         [-srcwin XOFF YOFF XSIZE YSIZE | -projwin ULX ULY LRX LRY] [-ot TYPE]\n"
        "         [--profile MODALITY=SPEC]... [--aoi FILE [--aoi-layer NAME]] [--gsd M]\n"
        "         [--nonfinite error|nodata] [--max-pixels N] [--force]\n"
        "         [--sar-units db|linear|amplitude] [--sar-band N] [SRC] DST\n"
        "Translates SRC (or the -s MODALITY:FILE sources) into DST in the target modality.\n"
        "Modalities come from -s/-t, else the MM_MODALITY metadata item, else a modality word\n"
        "in the file name (in_sar.tif, out_rgb.tif). SAR units come from --sar-units, else\n"
        "the band's unit type or SAR_UNITS item, else detection (integer: amplitude; float:\n"
        "linear, refused when it looks like dB); a multi-band SAR source uses its VH band.\n"
        "See mm_translate(1).\n"
        "The model: --model, else $MM_MODEL, else the default model (%s).\n",
        mm_tool_default_model());
}

int main(int argc, char **argv) {
    if (mm_args_general(TOOL, argc, argv, usage, "GDAL", GDALVersionInfo("RELEASE_NAME")))
        return 0;
    mm_tool_opts opt; /* the options shared with mm_generate and mm_embed */
    mm_tool_opts_init(&opt, TOOL, 0, 4);
    const char *target_mod = NULL, *processor = "model", *out_type = NULL;
    const char *src_spec[MMGEO_MAX_IO];
    int n_src_spec = 0, window = 0;
    mmgeo_job job;
    mmgeo_job_init(&job);
    mmgeo_aoi *aoi = NULL;
    mmgeo_run_stats stats;

    enum { O_OT = 256, O_PROCESSOR, O_WINDOW };
    static const struct option opts[] = {
        MM_TOOL_OPTIONS,
        MM_TOOL_SAMPLING_OPTIONS,
        MM_TOOL_SOURCE_OPTIONS,
        MM_TOOL_TILING_OPTIONS,
        {"ot", required_argument, 0, O_OT},
        {"processor", required_argument, 0, O_PROCESSOR}, /* test hook */
        {"window", required_argument, 0, O_WINDOW},       /* test hook */
        {0, 0, 0, 0}};
    int o, bad = 0;
    while ((o = mm_tool_getopt(&opt, argc, argv, "qs:t:b:", opts, usage, &bad)) != -1) {
        switch (o) {
        case O_OT: out_type = optarg; break;
        case O_PROCESSOR: processor = optarg; break;
        case O_WINDOW: bad = mm_arg_int(TOOL, "--window", optarg, 1, 8192, &window); break;
        case 's':
            if (n_src_spec == MMGEO_MAX_IO) {
                fprintf(stderr, "%s: at most %d sources\n", TOOL, MMGEO_MAX_IO);
                bad = 1;
            } else
                src_spec[n_src_spec++] = optarg;
            break;
        case 't': target_mod = optarg; break;
        default: bad = 1; break;
        }
    }
    if (bad || opt.stop) {
        mm_tool_opts_free(&opt);
        return bad ? 2 : 0;
    }
    const int seamless = opt.seamless;

    /* positional arguments: [SRC] DST; sources given as -s MODALITY:FILE need no SRC */
    const char *src_path[MMGEO_MAX_IO] = {0}, *src_mod[MMGEO_MAX_IO] = {0};
    char modbuf[MMGEO_MAX_IO][64];
    int n_src = 0, positional_used = 0;
    for (int i = 0; i < n_src_spec; i++) {
        const char *c = strchr(src_spec[i], ':');
        size_t k = c ? (size_t)(c - src_spec[i]) : 0;
        int word = c && k > 0 && k < sizeof modbuf[0] &&
                   strspn(src_spec[i], "abcdefghijklmnopqrstuvwxyz0123456789_") == k;
        if (word) {
            memcpy(modbuf[i], src_spec[i], k);
            modbuf[i][k] = 0;
            src_mod[n_src] = modbuf[i];
            src_path[n_src++] = c + 1;
        } else {
            src_mod[n_src] = src_spec[i];
            src_path[n_src++] = NULL; /* the positional SRC */
        }
    }
    const int npos = argc - optind;
    int need_pos_src = n_src == 0;
    for (int i = 0; i < n_src; i++)
        need_pos_src |= src_path[i] == NULL;
    if (npos != (need_pos_src ? 2 : 1)) {
        fprintf(stderr, "%s: expected %s, got %d file name%s\n", TOOL,
                need_pos_src ? "SRC and DST" : "DST (the sources are given as -s MODALITY:FILE)",
                npos, npos == 1 ? "" : "s");
        usage(stderr);
        mm_tool_opts_free(&opt);
        return 2;
    }
    const char *dst_path = argv[argc - 1];
    if (need_pos_src) {
        const char *pos = argv[optind];
        int k = -1;
        for (int i = 0; i < n_src; i++)
            if (!src_path[i]) {
                if (k >= 0) {
                    fprintf(stderr,
                            "%s: several -s MODALITY without a file; give the sources "
                            "as -s MODALITY:FILE\n",
                            TOOL);
                    mm_tool_opts_free(&opt);
                    return 2;
                }
                k = i;
            }
        if (k < 0) src_mod[k = n_src++] = NULL;
        src_path[k] = pos;
        positional_used = 1;
    }
    (void)positional_used;
    if (opt.n_bands && n_src > 1) {
        fprintf(stderr, "%s: -b selects bands of a single source\n", TOOL);
        mm_tool_opts_free(&opt);
        return 2;
    }

    /* Ctrl-C (or SIGTERM) from here on stops the run at the next window or sampling step */
    mm_tool_catch_interrupts();

    GDALAllRegister();
    int rc = 1;
    mm_tool_model tm = {0}; /* the model, its geo settings and modality names */
    mm_context *ctx = NULL;
    char **md = NULL;

    if (mm_tool_model_open(TOOL, opt.model_path, &tm)) goto done;
    mm_model *model = tm.model;
    const char **names = tm.names;

    /* resolve the modalities */
    mmgeo_model_processor mp;
    memset(&mp, 0, sizeof mp);
    mmgeo_processor proc;
    memset(&proc, 0, sizeof proc);
    job.n_sources = n_src;
    for (int i = 0; i < n_src; i++) {
        const int m = mm_tool_model_source(&opt, &tm, src_path[i], src_mod[i],
                                           "-s MODALITY (or -s MODALITY:FILE)", &job.sources[i]);
        if (m < 0) goto done;
        mp.source_mods[i] = m;
        proc.src_channels[i] = mm_model_modality_channels(model, m);
        for (int k = 0; k < i; k++)
            if (mp.source_mods[k] == m) {
                fprintf(stderr, "%s: two sources are '%s'\n", TOOL, names[m]);
                goto done;
            }
    }
    int t;
    if (target_mod) {
        if ((t = mm_tool_modality(TOOL, &tm, target_mod)) < 0) goto done;
    } else {
        t = mmgeo_detect_modality(NULL, dst_path, names, tm.n_names);
        if (t < 0) {
            fprintf(stderr,
                    "%s: cannot tell the target modality of '%s'%s: name it with -t MODALITY, or "
                    "put one of %s in the output file name\n",
                    TOOL, dst_path, t == -2 ? " (its name has several)" : "", tm.have);
            goto done;
        }
    }
    for (int i = 0; i < n_src; i++)
        if (mp.source_mods[i] == t) {
            fprintf(stderr,
                    "%s: the source '%s' is already '%s', the target modality; name "
                    "another with -t\n",
                    TOOL, src_path[i], names[t]);
            goto done;
        }
    job.n_targets = 1;
    job.targets[0].path = dst_path;
    job.targets[0].modality = names[t];
    mmgeo_model_geo_target_profile(&tm.geo, t, names[t], &job.targets[0].profile);
    mp.target_mods[0] = t;
    proc.dst_channels[0] = mm_model_modality_channels(model, t);

    /* profile overrides and output type */
    if (mm_tool_profiles_apply(TOOL, &opt.profiles, out_type, &job)) goto done;

    /* -srcwin, or -projwin: the source window of the first source's raster */
    if (mm_tool_srcwin(&opt, src_path[0], &job)) goto done;

    /* the processor */
    proc.n_sources = n_src;
    proc.n_targets = 1;
    proc.window = mm_model_image_size(model);
    if (!strcmp(processor, "model")) {
        if (window) {
            fprintf(stderr, "%s: --window is a test hook for the test processors\n", TOOL);
            goto done;
        }
        if (mm_tool_model_processor(&opt, model, n_src, 1, &ctx, &mp, &proc)) goto done;
    } else if (seamless) {
        fprintf(stderr, "%s: --seamless runs the model (not a test processor)\n", TOOL);
        goto done;
    } else if (!strcmp(processor, "identity") || !strcmp(processor, "negate")) {
        proc.fn = processor[0] == 'i' ? mmgeo_process_identity : mmgeo_process_negate;
        proc.user = &proc;
        if (window) proc.window = window;
    } else {
        fprintf(stderr, "%s: unknown --processor '%s' (model; test hooks: identity, negate)\n",
                TOOL, processor);
        goto done;
    }

    /* provenance */
    char err[2048];
    if (mmgeo_model_provenance(&md, TOOL_NAME, opt.model_path, model, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", TOOL, err);
        goto done;
    }
    md = CSLSetNameValue(md, "SYNTHETIC", "YES");
    md = mm_tool_md_sources(md, &job);
    md = mm_tool_md_tiling(md, proc.fn == mmgeo_process_model ? &mp.params : NULL, processor, model,
                           proc.window, opt.overlap, seamless);

    job.overlap = opt.overlap;
    job.batch = opt.batch;
    mm_tool_job_output(&job, TOOL, opt.format, opt.co, md, &opt.quiet, &stats);
    mm_tool_job_guards(&opt, &job, &mp); /* --nonfinite, --max-pixels, --force */
    /* --aoi, --gsd, --seamless or the blended tiling */
    rc = mm_tool_run_job(&opt, &job, &tm.geo, &mp, &proc, &md, &aoi, dst_path);
done:
    mmgeo_aoi_close(aoi);
    CSLDestroy(md);
    mm_tool_opts_free(&opt);
    mm_context_free(ctx);
    mm_model_close(tm.model);
    GDALDestroyDriverManager();
    return rc;
}
