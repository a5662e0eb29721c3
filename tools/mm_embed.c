/*
 * mm_embed: the scene tokens of a georeferenced raster (libmm's mm_embed, paper section V-C) as a
 * Float32 raster at token resolution: hidden_size bands, one cell per scene token, the
 * geotransform scaled by image_size / tokens_per_side. The raster is cut into the model's windows
 * on the anchored grid (aligned to token cells) and the tokens of overlapping windows are
 * averaged with the raised-cosine weights. See man/mm_embed.1 and docs/tools.md.
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
#include "tool_opts.h"
#include "tool_profiles.h"
#include "tool_run.h"
#include "mm.h"
#include "mmgeo.h"

#define TOOL_NAME "mm_embed"
static const char *TOOL = TOOL_NAME;

static void usage(FILE *f) {
    fprintf(f,
            "Usage: mm_embed [--help] [--version] [-q] [-of FORMAT] [-co NAME=VALUE]...\n"
            "         [--config KEY VALUE]... [--model FILE] [--device cpu|cuda] [--threads N]\n"
            "         [--precision bf16|fp32] [--overlap PX] [--batch N] [-s MODALITY]\n"
            "         [-b BAND]... [--profile MODALITY=SPEC]\n"
            "         [-srcwin XOFF YOFF XSIZE YSIZE | -projwin ULX ULY LRX LRY]\n"
            "         [--aoi FILE [--aoi-layer NAME]] SRC DST\n"
            "Writes the scene tokens of SRC as a Float32 raster at token resolution (one band per\n"
            "hidden feature, one cell per token). The modality comes from -s, else the\n"
            "MM_MODALITY metadata item, else a modality word in the file name. See mm_embed(1).\n");
}

int main(int argc, char **argv) {
    mm_tool_opts opt; /* the options shared with mm_translate and mm_generate */
    mm_tool_opts_init(&opt, TOOL, 1, 4);
    const char *src_mod = NULL;
    mm_tool_profiles profiles = {0};
    mmgeo_job job;
    mmgeo_job_init(&job);
    int bands[MMGEO_MAX_BANDS], n_bands = 0;
    double projwin[4];
    int has_projwin = 0;
    const char *aoi_path = NULL, *aoi_layer = NULL;
    mmgeo_aoi *aoi = NULL;
    mmgeo_run_stats stats;
    enum { O_PROFILE = 256, O_SRCWIN, O_PROJWIN, O_AOI, O_AOI_LAYER };
    static const struct option opts[] = {MM_TOOL_OPTIONS,
                                         {"profile", required_argument, 0, O_PROFILE},
                                         {"srcwin", required_argument, 0, O_SRCWIN},
                                         {"projwin", required_argument, 0, O_PROJWIN},
                                         {"aoi", required_argument, 0, O_AOI},
                                         {"aoi-layer", required_argument, 0, O_AOI_LAYER},
                                         {0, 0, 0, 0}};
    int o, bad = 0;
    while (!bad && (o = getopt_long_only(argc, argv, "qs:b:", opts, NULL)) != -1) {
        const int common = mm_tool_opt(&opt, o, argc, argv, usage); /* tool_opts.c */
        if (common == 2) {
            mm_tool_opts_free(&opt);
            return 0;
        }
        if (common >= 0) {
            bad = common;
            continue;
        }
        switch (o) {
        case O_PROFILE: bad = mm_tool_profile_add(TOOL, &profiles, optarg); break;
        case O_SRCWIN:
            bad = mm_arg_srcwin(TOOL, optarg, argc, argv, &optind, job.srcwin);
            job.has_srcwin = 1;
            break;
        case O_PROJWIN:
            bad = mm_arg_projwin(TOOL, optarg, argc, argv, &optind, projwin);
            has_projwin = 1;
            break;
        case O_AOI: aoi_path = optarg; break;
        case O_AOI_LAYER: aoi_layer = optarg; break;
        case 's': src_mod = optarg; break;
        case 'b':
            if (n_bands == MMGEO_MAX_BANDS) {
                fprintf(stderr, "%s: at most %d bands\n", TOOL, MMGEO_MAX_BANDS);
                bad = 1;
            } else
                bad = mm_arg_int(TOOL, "-b", optarg, 1, 1 << 20, &bands[n_bands++]);
            break;
        default: bad = 1; break;
        }
    }
    int quiet = opt.quiet;
    const char *model_path = opt.model_path, *format = opt.format;
    const int overlap = opt.overlap, batch = opt.batch;
    char **co = opt.co; /* owned from here on */
    if (!bad && has_projwin && job.has_srcwin) {
        fprintf(stderr, "%s: give -srcwin or -projwin, not both\n", TOOL);
        bad = 1;
    }
    if (!bad && aoi_layer && !aoi_path) {
        fprintf(stderr, "%s: --aoi-layer needs --aoi\n", TOOL);
        bad = 1;
    }
    if (!bad && argc - optind != 2) {
        fprintf(stderr, "%s: expected SRC and DST, got %d file name%s\n", TOOL, argc - optind,
                argc - optind == 1 ? "" : "s");
        usage(stderr);
        bad = 1;
    }
    if (bad) {
        CSLDestroy(co);
        return 2;
    }
    const char *src_path = argv[optind], *dst_path = argv[optind + 1];

    mm_tool_catch_interrupts();

    GDALAllRegister();
    int rc = 1;
    mm_model *model = NULL;
    mm_context *ctx = NULL;
    char **md = NULL;
    char err[2048], buf[4096];
    mmgeo_embed_processor ep;
    memset(&ep, 0, sizeof ep);

    model = mm_tool_open_model(TOOL, model_path);
    if (!model) goto done;
    mmgeo_model_geo geo; /* the model's GSD range and I/O profiles (its config's "geo") */
    if (mmgeo_model_geo_get(model, &geo, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", TOOL, err);
        goto done;
    }
    const char *names[32];
    char have[512];
    const int nm = mmgeo_model_modality_names(model, names, 32, have, sizeof have);
    CPLPushErrorHandler(CPLQuietErrorHandler);
    GDALDatasetH ds = GDALOpenEx(src_path, GDAL_OF_RASTER | GDAL_OF_READONLY, NULL, NULL, NULL);
    CPLPopErrorHandler();
    if (!ds) {
        fprintf(stderr, "%s: cannot open '%s' as a raster: %s\n", TOOL, src_path,
                *CPLGetLastErrorMsg() ? CPLGetLastErrorMsg() : "unknown error");
        goto done;
    }
    int m;
    if (src_mod) {
        m = mm_model_modality_index(model, src_mod);
        if (m < 0) {
            fprintf(stderr, "%s: the model '%s' has no modality '%s' (it has %s)\n", TOOL,
                    mm_model_name(model), src_mod, have);
            GDALClose(ds);
            goto done;
        }
    } else {
        m = mmgeo_detect_modality(ds, src_path, names, nm);
        if (m < 0) {
            fprintf(stderr,
                    "%s: cannot tell the modality of '%s'%s: name it with -s MODALITY, tag the "
                    "file with MM_MODALITY, or put one of %s in its file name\n",
                    TOOL, src_path, m == -2 ? " (its name has several)" : "", have);
            GDALClose(ds);
            goto done;
        }
    }
    const int b1 = n_bands ? bands[0] : 1;
    GDALDataType dt =
        b1 <= GDALGetRasterCount(ds) ? GDALGetRasterDataType(GDALGetRasterBand(ds, b1)) : GDT_Byte;
    GDALClose(ds);
    mmgeo_source *s = &job.sources[0];
    s->path = src_path;
    s->modality = names[m];
    s->n_bands = n_bands;
    memcpy(s->bands, bands, sizeof bands);
    mmgeo_model_geo_source_profile(&geo, m, names[m], dt, &s->profile);
    job.n_sources = 1;
    /* before the target is added: a profile names the source (the embedding's output is raw) */
    if (mm_tool_profiles_apply(TOOL, &profiles, NULL, &job)) goto done;
    if (has_projwin) {
        if (mmgeo_projwin_srcwin(src_path, projwin, job.srcwin, err, sizeof err)) {
            fprintf(stderr, "%s: %s\n", TOOL, err);
            goto done;
        }
        job.has_srcwin = 1;
    }
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
    mmgeo_processor proc;
    memset(&proc, 0, sizeof proc);
    proc.fn = mmgeo_process_embed;
    proc.user = &ep;
    proc.window = S;
    proc.n_sources = 1;
    proc.n_targets = 1;
    proc.src_channels[0] = mm_model_modality_channels(model, m);
    proc.dst_channels[0] = Hd;

    if (mmgeo_model_provenance(&md, TOOL_NAME, model_path, model, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", TOOL, err);
        goto done;
    }
    char *abs = realpath(src_path, NULL);
    snprintf(buf, sizeof buf, "%s:%s", names[m], abs ? abs : src_path);
    free(abs);
    md = CSLSetNameValue(md, "MM_SOURCE", buf);
    md = CSLSetNameValue(md, "MM_EMBEDDING", "scene tokens");
    snprintf(buf, sizeof buf, "%d", r);
    md = CSLSetNameValue(md, "MM_TOKEN_CELL", buf);
    snprintf(buf, sizeof buf, "%d", S);
    md = CSLSetNameValue(md, "MM_WINDOW", buf);
    snprintf(buf, sizeof buf, "%d", overlap >= 0 ? overlap : S / 4 / r * r);
    md = CSLSetNameValue(md, "MM_OVERLAP", buf);

    job.align = r;
    job.out_scale = r;
    job.overlap = overlap;
    job.batch = batch;
    mm_tool_job_output(&job, TOOL, format, co, md, &quiet, &stats);
    if (!quiet) mmgeo_gsd_check(&job, &geo, 0); /* a warning outside the model's GSD range */
    if (aoi_path) {                             /* windows outside skipped, cells outside nodata */
        if (mm_tool_open_aoi(TOOL, aoi_path, aoi_layer, &job, &aoi, &md)) goto done;
    }
    int res = mmgeo_run(&job, &proc, err, sizeof err);
    rc = mm_tool_run_status(TOOL, res, err, dst_path, quiet, aoi ? &stats : NULL);
done:
    mmgeo_aoi_close(aoi);
    free(ep.scratch);
    CSLDestroy(md);
    CSLDestroy(co);
    mm_context_free(ctx);
    mm_model_close(model);
    GDALDestroyDriverManager();
    return rc;
}
