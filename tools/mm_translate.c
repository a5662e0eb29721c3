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
#include "tool_opts.h"
#include "tool_run.h"
#include "tool_profiles.h"
#include "mm.h"
#include "mmgeo.h"

#define TOOL_NAME "mm_translate"
static const char *TOOL = TOOL_NAME;

static void usage(FILE *f) {
    fprintf(
        f,
        "Usage: mm_translate [--help] [--version] [-q] [-of FORMAT] [-co NAME=VALUE]...\n"
        "         [--config KEY VALUE]... [--model FILE] [--device cpu|cuda] [--threads N]\n"
        "         [--precision bf16|fp32] [--steps N] [--guidance G] [--seed N]\n"
        "         [--sampler euler|heun|euler_maruyama] [--overlap PX] [--batch N] [--seamless]\n"
        "         [-s MODALITY | -s MODALITY:FILE]... [-t MODALITY] [-b BAND]...\n"
        "         [-srcwin XOFF YOFF XSIZE YSIZE | -projwin ULX ULY LRX LRY] [-ot TYPE]\n"
        "         [--profile MODALITY=SPEC]... [--aoi FILE [--aoi-layer NAME]] [--gsd M]\n"
        "         [SRC] DST\n"
        "Translates SRC (or the -s MODALITY:FILE sources) into DST in the target modality.\n"
        "Modalities come from -s/-t, else the MM_MODALITY metadata item, else a modality word\n"
        "in the file name (in_sar.tif, out_rgb.tif). See mm_translate(1).\n");
}

int main(int argc, char **argv) {
    mm_tool_opts opt; /* the options shared with mm_generate and mm_embed */
    mm_tool_opts_init(&opt, TOOL, 0, 4);
    const char *target_mod = NULL, *processor = "model", *out_type = NULL;
    const char *src_spec[MMGEO_MAX_IO];
    int n_src_spec = 0, window = 0;
    int seamless = 0;
    mm_tool_profiles profiles = {0};
    mmgeo_job job;
    mmgeo_job_init(&job);
    int bands[MMGEO_MAX_BANDS], n_bands = 0;
    double projwin[4];
    int has_projwin = 0;
    const char *aoi_path = NULL, *aoi_layer = NULL;
    mmgeo_aoi *aoi = NULL;
    mmgeo_run_stats stats;
    double gsd = 0; /* --gsd: the working resolution, metres */

    enum {
        O_SRCWIN = 256,
        O_OT,
        O_PROFILE,
        O_PROCESSOR,
        O_WINDOW,
        O_SEAMLESS,
        O_PROJWIN,
        O_AOI,
        O_AOI_LAYER,
        O_GSD
    };
    static const struct option opts[] = {
        MM_TOOL_OPTIONS,
        MM_TOOL_SAMPLING_OPTIONS,
        {"srcwin", required_argument, 0, O_SRCWIN},
        {"ot", required_argument, 0, O_OT},
        {"projwin", required_argument, 0, O_PROJWIN},
        {"aoi", required_argument, 0, O_AOI},
        {"aoi-layer", required_argument, 0, O_AOI_LAYER},
        {"gsd", required_argument, 0, O_GSD},
        {"profile", required_argument, 0, O_PROFILE},
        {"seamless", no_argument, 0, O_SEAMLESS},
        {"processor", required_argument, 0, O_PROCESSOR}, /* test hook */
        {"window", required_argument, 0, O_WINDOW},       /* test hook */
        {0, 0, 0, 0}};
    int o, bad = 0;
    opterr = 1;
    while (!bad && (o = getopt_long_only(argc, argv, "qs:t:b:", opts, NULL)) != -1) {
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
        case O_SRCWIN:
            bad = mm_arg_srcwin(TOOL, optarg, argc, argv, &optind, job.srcwin);
            job.has_srcwin = 1;
            break;
        case O_PROJWIN:
            bad = mm_arg_projwin(TOOL, optarg, argc, argv, &optind, projwin);
            has_projwin = 1;
            break;
        case O_OT: out_type = optarg; break;
        case O_AOI: aoi_path = optarg; break;
        case O_GSD:
            bad = mm_arg_double(TOOL, "--gsd", optarg, &gsd);
            if (!bad && !(gsd > 0)) {
                fprintf(stderr, "%s: --gsd must be a positive number of metres\n", TOOL);
                bad = 1;
            }
            break;
        case O_AOI_LAYER: aoi_layer = optarg; break;
        case O_SEAMLESS: seamless = 1; break;
        case O_PROFILE: bad = mm_tool_profile_add(TOOL, &profiles, optarg); break;
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
    int overlap = opt.overlap, batch = opt.batch;
    char **co = opt.co; /* owned from here on */
    if (!bad && has_projwin && job.has_srcwin) {
        fprintf(stderr, "%s: give -srcwin or -projwin, not both\n", TOOL);
        bad = 1;
    }
    if (!bad && aoi_layer && !aoi_path) {
        fprintf(stderr, "%s: --aoi-layer needs --aoi\n", TOOL);
        bad = 1;
    }
    if (bad) {
        CSLDestroy(co);
        return 2;
    }

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
        CSLDestroy(co);
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
                    CSLDestroy(co);
                    return 2;
                }
                k = i;
            }
        if (k < 0) src_mod[k = n_src++] = NULL;
        src_path[k] = pos;
        positional_used = 1;
    }
    (void)positional_used;
    if (n_bands && n_src > 1) {
        fprintf(stderr, "%s: -b selects bands of a single source\n", TOOL);
        CSLDestroy(co);
        return 2;
    }

    /* Ctrl-C (or SIGTERM) from here on stops the run at the next window or sampling step */
    mm_tool_catch_interrupts();

    GDALAllRegister();
    int rc = 1;
    mm_model *model = NULL;
    mm_context *ctx = NULL;
    char **md = NULL;
    char err[2048];

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

    /* resolve the modalities */
    mmgeo_model_processor mp;
    memset(&mp, 0, sizeof mp);
    mmgeo_processor proc;
    memset(&proc, 0, sizeof proc);
    job.n_sources = n_src;
    for (int i = 0; i < n_src; i++) {
        CPLPushErrorHandler(CPLQuietErrorHandler);
        GDALDatasetH ds =
            GDALOpenEx(src_path[i], GDAL_OF_RASTER | GDAL_OF_READONLY, NULL, NULL, NULL);
        CPLPopErrorHandler();
        if (!ds) {
            fprintf(stderr, "%s: cannot open '%s' as a raster: %s\n", TOOL, src_path[i],
                    *CPLGetLastErrorMsg() ? CPLGetLastErrorMsg() : "unknown error");
            goto done;
        }
        int m;
        if (src_mod[i]) {
            m = mm_model_modality_index(model, src_mod[i]);
            if (m < 0) {
                fprintf(stderr, "%s: the model '%s' has no modality '%s' (it has %s)\n", TOOL,
                        mm_model_name(model), src_mod[i], have);
                GDALClose(ds);
                goto done;
            }
        } else {
            m = mmgeo_detect_modality(ds, src_path[i], names, nm);
            if (m < 0) {
                fprintf(stderr,
                        "%s: cannot tell the modality of '%s'%s: name it with -s MODALITY "
                        "(or -s MODALITY:FILE), tag the file with MM_MODALITY, or put one of %s "
                        "in its file name\n",
                        TOOL, src_path[i], m == -2 ? " (its name has several)" : "", have);
                GDALClose(ds);
                goto done;
            }
        }
        mmgeo_source *s = &job.sources[i];
        s->path = src_path[i];
        s->modality = names[m];
        s->n_bands = n_bands;
        memcpy(s->bands, bands, sizeof bands);
        const int b1 = n_bands ? bands[0] : 1;
        GDALDataType dt = b1 <= GDALGetRasterCount(ds)
                              ? GDALGetRasterDataType(GDALGetRasterBand(ds, b1))
                              : GDT_Byte;
        GDALClose(ds);
        mmgeo_model_geo_source_profile(&geo, m, names[m], dt, &s->profile);
        mp.source_mods[i] = m;
        proc.src_channels[i] = mm_model_modality_channels(model, m);
        for (int k = 0; k < i; k++)
            if (mp.source_mods[k] == m) {
                fprintf(stderr, "%s: two sources are '%s'\n", TOOL, names[m]);
                goto done;
            }
    }
    int tm;
    if (target_mod) {
        tm = mm_model_modality_index(model, target_mod);
        if (tm < 0) {
            fprintf(stderr, "%s: the model '%s' has no modality '%s' (it has %s)\n", TOOL,
                    mm_model_name(model), target_mod, have);
            goto done;
        }
    } else {
        tm = mmgeo_detect_modality(NULL, dst_path, names, nm);
        if (tm < 0) {
            fprintf(stderr,
                    "%s: cannot tell the target modality of '%s'%s: name it with -t MODALITY, or "
                    "put one of %s in the output file name\n",
                    TOOL, dst_path, tm == -2 ? " (its name has several)" : "", have);
            goto done;
        }
    }
    for (int i = 0; i < n_src; i++)
        if (mp.source_mods[i] == tm) {
            fprintf(stderr,
                    "%s: the source '%s' is already '%s', the target modality; name "
                    "another with -t\n",
                    TOOL, src_path[i], names[tm]);
            goto done;
        }
    job.n_targets = 1;
    job.targets[0].path = dst_path;
    job.targets[0].modality = names[tm];
    mmgeo_model_geo_target_profile(&geo, tm, names[tm], &job.targets[0].profile);
    mp.target_mods[0] = tm;
    proc.dst_channels[0] = mm_model_modality_channels(model, tm);

    /* profile overrides and output type */
    if (mm_tool_profiles_apply(TOOL, &profiles, out_type, &job)) goto done;

    /* -projwin: the source window of the first source's raster */
    if (has_projwin) {
        if (mmgeo_projwin_srcwin(src_path[0], projwin, job.srcwin, err, sizeof err)) {
            fprintf(stderr, "%s: %s\n", TOOL, err);
            goto done;
        }
        job.has_srcwin = 1;
    }

    /* the processor */
    proc.n_sources = n_src;
    proc.n_targets = 1;
    proc.window = mm_model_image_size(model);
    if (!strcmp(processor, "model")) {
        if (window) {
            fprintf(stderr, "%s: --window is a test hook for the test processors\n", TOOL);
            goto done;
        }
        if (mm_tool_context(&opt, model, &ctx)) goto done;
        if (mm_tool_sample_params(&opt, model, &mp.params)) goto done;
        mp.ctx = ctx;
        mp.model = model;
        mp.n_sources = n_src;
        mp.n_targets = 1;
        proc.fn = mmgeo_process_model;
        proc.user = &mp;
        /* the working memory in one block now; --batch 0: the batch from the free memory */
        const int auto_batch = batch == 0;
        char info[512];
        if (mmgeo_model_reserve(&mp, &batch, 64, info, sizeof info, err, sizeof err)) {
            fprintf(stderr, "%s: %s\n", TOOL, err);
            goto done;
        }
        if (auto_batch && !quiet) fprintf(stderr, "%s: %s\n", TOOL, info);
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
    char buf[4096];
    if (mmgeo_model_provenance(&md, TOOL_NAME, model_path, model, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", TOOL, err);
        goto done;
    }
    md = CSLSetNameValue(md, "SYNTHETIC", "YES");
    buf[0] = 0;
    for (int i = 0; i < n_src; i++) {
        char *abs = realpath(src_path[i], NULL);
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s:%s", i ? ";" : "",
                 job.sources[i].modality, abs ? abs : src_path[i]);
        free(abs);
    }
    md = CSLSetNameValue(md, "MM_SOURCE", buf);
    if (proc.fn == mmgeo_process_model) {
        snprintf(buf, sizeof buf, "%llu", (unsigned long long)mp.params.seed);
        md = CSLSetNameValue(md, "MM_SEED", buf);
        snprintf(buf, sizeof buf, "%d", mp.params.steps);
        md = CSLSetNameValue(md, "MM_STEPS", buf);
        snprintf(buf, sizeof buf, "%g", (double)mp.params.guidance);
        md = CSLSetNameValue(md, "MM_GUIDANCE", buf);
        md = CSLSetNameValue(md, "MM_SAMPLER", mm_sampler_name(mp.params.sampler));
    } else {
        md = CSLSetNameValue(md, "MM_PROCESSOR", processor);
    }
    snprintf(buf, sizeof buf, "%d", proc.window);
    md = CSLSetNameValue(md, "MM_WINDOW", buf);
    {
        int ov = overlap >= 0 ? overlap : proc.window / 4;
        if (seamless) {
            const int f = proc.window / mm_model_latent_size(model);
            ov = ov / f * f;
        }
        snprintf(buf, sizeof buf, "%d", ov);
    }
    md = CSLSetNameValue(md, "MM_OVERLAP", buf);
    md = CSLSetNameValue(md, "MM_TILING", seamless ? "seamless" : "blend");

    /* --aoi: windows outside skipped, pixels outside nodata */
    if (aoi_path) {
        if (seamless) {
            fprintf(stderr, "%s: --aoi works with the blended tiling, not --seamless\n", TOOL);
            goto done;
        }
        job.warn = mm_tool_warn;
        job.warn_user = (void *)TOOL;
        if (mm_tool_open_aoi(TOOL, aoi_path, aoi_layer, &job, &aoi, &md)) goto done;
    }

    job.overlap = overlap;
    job.batch = batch;
    mm_tool_job_output(&job, TOOL, format, co, md, &quiet, &stats);
    if (gsd > 0) {
        if (seamless) {
            fprintf(stderr, "%s: --gsd works with the blended tiling, not --seamless\n", TOOL);
            goto done;
        }
        snprintf(buf, sizeof buf, "%g", gsd);
        job.metadata = md = CSLSetNameValue(md, "MM_GSD", buf);
    }
    if (!quiet) mmgeo_gsd_check(&job, &geo, gsd); /* a warning outside the model's GSD range */

    int r = seamless  ? mmgeo_run_seamless(&job, &mp, err, sizeof err)
            : gsd > 0 ? mmgeo_run_gsd(&job, &proc, gsd, err, sizeof err)
                      : mmgeo_run(&job, &proc, err, sizeof err);
    rc = mm_tool_run_status(TOOL, r, err, dst_path, quiet, aoi ? &stats : NULL);
done:
    mmgeo_aoi_close(aoi);
    CSLDestroy(md);
    CSLDestroy(co);
    mm_context_free(ctx);
    mm_model_close(model);
    GDALDestroyDriverManager();
    return rc;
}
