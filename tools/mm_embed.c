/*
 * mm_embed: the scene tokens of a georeferenced raster (libmm's mm_embed, paper section V-C) as a
 * Float32 raster at token resolution: hidden_size bands, one cell per scene token, the
 * geotransform scaled by image_size / tokens_per_side. The raster is cut into the model's windows
 * on the anchored grid (aligned to token cells) and the tokens of overlapping windows are
 * averaged with the raised-cosine weights. --readout scene writes instead the zero-shot readout
 * of Eq. 22 (libmm's mm_embed_readout): the tokens of the branch of a modality that was not
 * observed, inferred from the source. See man/mm_embed.1 and docs/tools.md.
 */
#define _GNU_SOURCE
#include <cpl_conv.h>
#include <cpl_string.h>
#include <gdal.h>
#include <getopt.h>
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

#define TOOL_NAME "mm_embed"
static const char *TOOL = TOOL_NAME;

static void usage(FILE *f) {
    fprintf(f,
            "Usage: mm_embed [--help] [--help-general] [--version] [-q]\n"
            "         [-of FORMAT] [-co NAME=VALUE]...\n"
            "         [--config KEY VALUE]... [--model FILE] [--device cpu|cuda] [--threads N]\n"
            "         [--precision bf16|fp32] [--overlap PX] [--batch N] [-s MODALITY]\n"
            "         [-b BAND]... [--profile MODALITY=SPEC]\n"
            "         [-srcwin XOFF YOFF XSIZE YSIZE | -projwin ULX ULY LRX LRY]\n"
            "         [--aoi FILE [--aoi-layer NAME]] [--sar-units db|linear|amplitude]\n"
            "         [--sar-band N] [--nonfinite error|nodata] [--max-pixels N] [--force]\n"
            "         [--readout source|scene] [--readout-modality MODALITY] [--readout-t T]\n"
            "         [--seed N]\n"
            "         SRC DST\n"
            "Writes the scene tokens of SRC as a Float32 raster at token resolution (one band per\n"
            "hidden feature, one cell per token). The modality comes from -s, else the\n"
            "MM_MODALITY metadata item, else a modality word in the file name. SAR units and\n"
            "band as mm_translate (--sar-units, --sar-band). --readout scene writes instead the\n"
            "zero-shot readout (paper V-C, Eq. 22): the tokens of the --readout-modality branch,\n"
            "given as pure noise at t = 1, inferred from SRC (clean, or at --readout-t).\n"
            "See mm_embed(1).\n"
            "The model: --model, else $MM_MODEL, else the default model (%s).\n",
        mm_tool_default_model());
}

int main(int argc, char **argv) {
    if (mm_args_general(TOOL, argc, argv, usage, "GDAL", GDALVersionInfo("RELEASE_NAME")))
        return 0;
    mm_tool_opts opt; /* the options shared with mm_translate and mm_generate */
    mm_tool_opts_init(&opt, TOOL, 1, 4);
    const char *src_mod = NULL;
    mmgeo_job job;
    mmgeo_job_init(&job);
    mmgeo_aoi *aoi = NULL;
    mmgeo_run_stats stats;
    enum { O_READOUT = 256, O_READOUT_MOD, O_READOUT_T };
    static const struct option opts[] = {MM_TOOL_OPTIONS,
                                         MM_TOOL_SOURCE_OPTIONS,
                                         {"readout", required_argument, 0, O_READOUT},
                                         {"readout-modality", required_argument, 0, O_READOUT_MOD},
                                         {"readout-t", required_argument, 0, O_READOUT_T},
                                         {"seed", required_argument, 0, MM_OPT_SEED},
                                         {0, 0, 0, 0}};
    int o, bad = 0, readout = 0, readout_t_set = 0;
    const char *readout_mod = NULL;
    float readout_t = 0.0f;
    while ((o = mm_tool_getopt(&opt, argc, argv, "qs:b:", opts, usage, &bad)) != -1) {
        switch (o) {
        case 's': src_mod = optarg; break;
        case O_READOUT:
            if (strcmp(optarg, "scene") == 0)
                readout = 1;
            else if (strcmp(optarg, "source") == 0)
                readout = 0;
            else {
                fprintf(stderr, "%s: --readout takes source or scene, got '%s'\n", TOOL, optarg);
                bad = 1;
            }
            break;
        case O_READOUT_MOD: readout_mod = optarg; break;
        case O_READOUT_T:
            bad = mm_arg_float(TOOL, "--readout-t", optarg, 0, 1, &readout_t);
            if (!bad && readout_t >= 1.0f) {
                fprintf(stderr,
                        "%s: --readout-t must be below 1 (at t = 1 the source is pure "
                        "noise)\n",
                        TOOL);
                bad = 1;
            }
            readout_t_set = 1;
            break;
        default: bad = 1; break;
        }
    }
    if (!bad && !opt.stop && !readout && (readout_mod || readout_t_set || opt.seed_set)) {
        fprintf(stderr, "%s: --readout-modality, --readout-t and --seed go with --readout scene\n",
                TOOL);
        bad = 1;
    }
    if (!bad && !opt.stop && readout && !readout_mod) {
        fprintf(stderr,
                "%s: --readout scene needs --readout-modality MODALITY: the modality whose "
                "branch is read out (one the source is not)\n",
                TOOL);
        bad = 1;
    }
    if (!bad && !opt.stop && argc - optind != 2) {
        fprintf(stderr, "%s: expected SRC and DST, got %d file name%s\n", TOOL, argc - optind,
                argc - optind == 1 ? "" : "s");
        usage(stderr);
        bad = 1;
    }
    if (bad || opt.stop) {
        mm_tool_opts_free(&opt);
        return bad ? 2 : 0;
    }
    const char *src_path = argv[optind], *dst_path = argv[optind + 1];
    const int overlap = opt.overlap;

    mm_tool_catch_interrupts();

    GDALAllRegister();
    int rc = 1;
    mm_tool_model tm = {0}; /* the model, its geo settings and modality names */
    mm_context *ctx = NULL;
    char **md = NULL;
    char err[2048], buf[64];
    mmgeo_embed_processor ep;
    memset(&ep, 0, sizeof ep);

    if (mm_tool_model_open(TOOL, opt.model_path, &tm)) goto done;
    mm_model *model = tm.model;
    const int m =
        mm_tool_model_source(&opt, &tm, src_path, src_mod, "-s MODALITY", &job.sources[0]);
    if (m < 0) goto done;
    job.n_sources = 1;
    /* before the target is added: a profile names the source (the embedding's output is raw) */
    if (mm_tool_profiles_apply(TOOL, &opt.profiles, NULL, &job)) goto done;
    if (mm_tool_srcwin(&opt, src_path, &job)) goto done;
    job.n_targets = 1;
    job.targets[0].path = dst_path;
    job.targets[0].modality = "embedding";
    mmgeo_profile_default(NULL, GDT_Unknown, &job.targets[0].profile);
    job.targets[0].profile.kind = MMGEO_IO_RAW;

    if (mm_tool_context(&opt, model, &ctx)) goto done;
    const int S = mm_model_image_size(model), T = mm_model_tokens_per_side(model);
    const int Hd = mm_model_hidden_size(model);
    if (T < 1 || S % T) {
        fprintf(stderr,
                "%s: the model's image size %d is not a multiple of its %d tokens per "
                "side\n",
                TOOL, S, T);
        goto done;
    }
    const int r = S / T;
    if (overlap >= 0 && overlap % r) {
        fprintf(stderr, "%s: --overlap must be a multiple of the token cell, %d pixels\n", TOOL, r);
        goto done;
    }
    ep.ctx = ctx;
    ep.n_sources = 1;
    ep.source_mods[0] = m;
    ep.tokens = T;
    ep.hidden = Hd;
    if (readout) {
        mm_readout_params_default(&ep.readout_params);
        if ((ep.readout_params.modality = mm_tool_modality(TOOL, &tm, readout_mod)) < 0) goto done;
        if (ep.readout_params.modality == m) {
            fprintf(stderr,
                    "%s: --readout-modality %s is the source's modality: the readout is the "
                    "branch of a modality that was not observed\n",
                    TOOL, readout_mod);
            goto done;
        }
        ep.readout = 1;
        ep.readout_params.source_t = readout_t;
        ep.readout_params.seed = opt.seed;
    }
    mmgeo_processor proc;
    memset(&proc, 0, sizeof proc);
    proc.fn = mmgeo_process_embed;
    proc.user = &ep;
    proc.window = S;
    proc.n_sources = 1;
    proc.n_targets = 1;
    proc.src_channels[0] = mm_model_modality_channels(model, m);
    proc.dst_channels[0] = Hd;

    if (mmgeo_model_provenance(&md, TOOL_NAME, opt.model_path, model, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", TOOL, err);
        goto done;
    }
    md = mm_tool_md_sources(md, &job);
    if (readout) {
        md = CSLSetNameValue(md, "MM_EMBEDDING", "scene readout");
        md = CSLSetNameValue(md, "MM_READOUT_MODALITY", readout_mod);
        snprintf(buf, sizeof buf, "%.9g", (double)ep.readout_params.source_t);
        md = CSLSetNameValue(md, "MM_READOUT_T", buf);
        snprintf(buf, sizeof buf, "%llu", (unsigned long long)opt.seed);
        md = CSLSetNameValue(md, "MM_SEED", buf);
    } else {
        md = CSLSetNameValue(md, "MM_EMBEDDING", "scene tokens");
    }
    snprintf(buf, sizeof buf, "%d", r);
    md = CSLSetNameValue(md, "MM_TOKEN_CELL", buf);
    snprintf(buf, sizeof buf, "%d", S);
    md = CSLSetNameValue(md, "MM_WINDOW", buf);
    snprintf(buf, sizeof buf, "%d", overlap >= 0 ? overlap : S / 4 / r * r);
    md = CSLSetNameValue(md, "MM_OVERLAP", buf);

    job.align = r;
    job.out_scale = r;
    job.overlap = overlap;
    job.batch = opt.batch;
    mm_tool_job_output(&job, TOOL, opt.format, opt.co, md, &opt.quiet, &stats);
    mm_tool_job_guards(&opt, &job, NULL);              /* --nonfinite, --max-pixels, --force */
    if (!opt.quiet) mmgeo_gsd_check(&job, &tm.geo, 0); /* a warning outside the model's range */
    if (opt.aoi) { /* windows outside skipped, cells outside nodata */
        if (mm_tool_open_aoi(TOOL, opt.aoi, opt.aoi_layer, &job, &aoi, &md)) goto done;
    }
    int res = mmgeo_run(&job, &proc, err, sizeof err);
    rc = mm_tool_run_status(TOOL, res, err, dst_path, opt.quiet, aoi ? &stats : NULL);
done:
    mmgeo_aoi_close(aoi);
    free(ep.scratch);
    CSLDestroy(md);
    mm_tool_opts_free(&opt);
    mm_context_free(ctx);
    mm_model_close(tm.model);
    GDALDestroyDriverManager();
    return rc;
}
