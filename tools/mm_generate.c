/*
 * mm_generate: joint generation of aligned modalities from nothing with a MetaEarth-MM model, over
 * a georeferenced grid given as gdalwarp takes it (-te, -tr or -ts, -t_srs) or copied from a
 * raster (-like), one output file per modality. The grid is cut into the model's windows on the
 * same anchored grid as mm_translate, every window generated jointly in all the modalities, and
 * the windows blended (or, with --seamless, fused in latent space at every sampling step). See
 * man/mm_generate.1 and docs/tools.md.
 */
#define _GNU_SOURCE
#include <cpl_conv.h>
#include <cpl_string.h>
#include <gdal.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <ogr_srs_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "tool_opts.h"
#include "tool_run.h"
#include "tool_profiles.h"
#include "mm.h"
#include "mmgeo.h"

#define TOOL_NAME "mm_generate"
static const char *TOOL = TOOL_NAME;

static void usage(FILE *f) {
    fprintf(
        f, "Usage: mm_generate [--help] [--version] [-q] [-of FORMAT] [-co NAME=VALUE]...\n"
           "         [--config KEY VALUE]... [--model FILE] [--device cpu|cuda] [--threads N]\n"
           "         [--precision bf16|fp32] [--steps N] [--guidance G] [--seed N]\n"
           "         [--sampler euler|heun|euler_maruyama] [--overlap PX] [--batch N]\n"
           "         [--seamless] [--profile MODALITY=SPEC]... [--aoi FILE [--aoi-layer NAME]]\n"
           "         [--gsd M]\n"
           "         (-te XMIN YMIN XMAX YMAX (-tr XRES YRES | -ts WIDTH HEIGHT) [-t_srs SRS]\n"
           "          | -like FILE)\n"
           "         (-t MODALITY:FILE)... [FILE]...\n"
           "Generates aligned rasters of several modalities jointly, from nothing, on the grid\n"
           "given by -te/-tr/-ts/-t_srs (as gdalwarp) or copied from FILE (-like): one output per\n"
           "modality, named by -t MODALITY:FILE or by a modality word in the file name\n"
           "(out_rgb.tif out_sar.tif). The outputs are synthetic (SYNTHETIC=YES). See\n"
           "mm_generate(1).\n");
}

static int parse_doubles(const char *what, int n, const char *first, char **argv, int argc,
                         double *out) {
    for (int i = 0; i < n; i++) {
        const char *s = i == 0 ? first : optind < argc ? argv[optind++] : NULL;
        char *end;
        double v = s ? strtod(s, &end) : 0;
        if (!s || !*s || *end || !isfinite(v)) {
            fprintf(stderr, "%s: %s takes %d numbers, got '%s'\n", TOOL, what, n, s ? s : "");
            return 1;
        }
        out[i] = v;
    }
    return 0;
}

int main(int argc, char **argv) {
    mm_tool_opts opt; /* the options shared with mm_translate and mm_embed */
    mm_tool_opts_init(&opt, TOOL, 0, 4);
    const char *like = NULL, *t_srs = NULL;
    const char *tspec[MMGEO_MAX_IO];
    int n_tspec = 0, seamless = 0;
    const char *aoi_path = NULL, *aoi_layer = NULL;
    mmgeo_aoi *aoi = NULL;
    mmgeo_run_stats stats;
    double gsd = 0; /* --gsd: the working resolution, metres */
    int has_te = 0, has_tr = 0, has_ts = 0;
    double te[4] = {0}, tr[2] = {0}, ts[2] = {0};
    mm_tool_profiles profiles = {0};
    mmgeo_job job;
    mmgeo_job_init(&job);

    enum {
        O_PROFILE = 256,
        O_TE,
        O_TR,
        O_TS,
        O_TSRS,
        O_LIKE,
        O_SEAMLESS,
        O_AOI,
        O_AOI_LAYER,
        O_GSD
    };
    static const struct option opts[] = {MM_TOOL_OPTIONS,
                                         MM_TOOL_SAMPLING_OPTIONS,
                                         {"profile", required_argument, 0, O_PROFILE},
                                         {"te", required_argument, 0, O_TE},
                                         {"tr", required_argument, 0, O_TR},
                                         {"ts", required_argument, 0, O_TS},
                                         {"t_srs", required_argument, 0, O_TSRS},
                                         {"like", required_argument, 0, O_LIKE},
                                         {"seamless", no_argument, 0, O_SEAMLESS},
                                         {"aoi", required_argument, 0, O_AOI},
                                         {"aoi-layer", required_argument, 0, O_AOI_LAYER},
                                         {"gsd", required_argument, 0, O_GSD},
                                         {0, 0, 0, 0}};
    int o, bad = 0;
    opterr = 1;
    while (!bad && (o = getopt_long_only(argc, argv, "qt:", opts, NULL)) != -1) {
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
        case O_SEAMLESS: seamless = 1; break;
        case O_AOI: aoi_path = optarg; break;
        case O_AOI_LAYER: aoi_layer = optarg; break;
        case O_GSD:
            bad = mm_arg_double(TOOL, "--gsd", optarg, &gsd);
            if (!bad && !(gsd > 0)) {
                fprintf(stderr, "%s: --gsd must be a positive number of metres\n", TOOL);
                bad = 1;
            }
            break;
        case O_PROFILE: bad = mm_tool_profile_add(TOOL, &profiles, optarg); break;
        case O_TE: bad = parse_doubles("-te", 4, optarg, argv, argc, te), has_te = 1; break;
        case O_TR: bad = parse_doubles("-tr", 2, optarg, argv, argc, tr), has_tr = 1; break;
        case O_TS: bad = parse_doubles("-ts", 2, optarg, argv, argc, ts), has_ts = 1; break;
        case O_TSRS: t_srs = optarg; break;
        case O_LIKE: like = optarg; break;
        case 't':
            if (n_tspec == MMGEO_MAX_IO) {
                fprintf(stderr, "%s: at most %d outputs\n", TOOL, MMGEO_MAX_IO);
                bad = 1;
            } else
                tspec[n_tspec++] = optarg;
            break;
        default: bad = 1; break;
        }
    }
    int quiet = opt.quiet;
    const char *model_path = opt.model_path, *format = opt.format;
    int overlap = opt.overlap, batch = opt.batch;
    char **co = opt.co; /* owned from here on */
    if (!bad && aoi_layer && !aoi_path) {
        fprintf(stderr, "%s: --aoi-layer needs --aoi\n", TOOL);
        bad = 1;
    }
    if (bad) {
        CSLDestroy(co);
        return 2;
    }
    /* the grid options */
    const char *gerr = NULL;
    if (like && (has_te || has_tr || has_ts || t_srs))
        gerr = "-like takes the whole grid from its file: no -te, -tr, -ts or -t_srs with it";
    else if (!like && !has_te)
        gerr = "no output grid: give -te XMIN YMIN XMAX YMAX with -tr XRES YRES or -ts WIDTH "
               "HEIGHT (and -t_srs SRS), or -like FILE";
    else if (!like && has_tr == has_ts)
        gerr = "-te needs exactly one of -tr XRES YRES and -ts WIDTH HEIGHT";
    else if (has_te && !(te[2] > te[0] && te[3] > te[1]))
        gerr = "-te XMIN YMIN XMAX YMAX needs XMAX > XMIN and YMAX > YMIN";
    else if (has_tr && !(tr[0] > 0 && tr[1] > 0))
        gerr = "-tr XRES YRES must be positive";
    else if (has_ts && !(ts[0] >= 1 && ts[1] >= 1 && ts[0] == floor(ts[0]) &&
                         ts[1] == floor(ts[1]) && ts[0] <= INT_MAX && ts[1] <= INT_MAX))
        gerr = "-ts WIDTH HEIGHT must be positive integers";
    if (gerr) {
        fprintf(stderr, "%s: %s\n", TOOL, gerr);
        usage(stderr);
        CSLDestroy(co);
        return 2;
    }
    /* outputs: -t MODALITY:FILE, and positional FILEs (modality from the file name) */
    const char *out_path[MMGEO_MAX_IO] = {0}, *out_mod[MMGEO_MAX_IO] = {0};
    char modbuf[MMGEO_MAX_IO][64];
    int n_out = 0;
    for (int i = 0; i < n_tspec; i++) {
        const char *c = strchr(tspec[i], ':');
        size_t k = c ? (size_t)(c - tspec[i]) : 0;
        if (!c || k == 0 || k >= sizeof modbuf[0] || !c[1]) {
            fprintf(stderr, "%s: -t takes MODALITY:FILE, got '%s'\n", TOOL, tspec[i]);
            CSLDestroy(co);
            return 2;
        }
        memcpy(modbuf[i], tspec[i], k);
        modbuf[i][k] = 0;
        out_mod[n_out] = modbuf[i];
        out_path[n_out++] = c + 1;
    }
    for (int i = optind; i < argc; i++) {
        if (n_out == MMGEO_MAX_IO) {
            fprintf(stderr, "%s: at most %d outputs\n", TOOL, MMGEO_MAX_IO);
            CSLDestroy(co);
            return 2;
        }
        out_path[n_out++] = argv[i];
    }
    if (n_out == 0) {
        fprintf(stderr,
                "%s: no output: give -t MODALITY:FILE (one per modality) or FILEs named "
                "after their modality\n",
                TOOL);
        usage(stderr);
        CSLDestroy(co);
        return 2;
    }

    mm_tool_catch_interrupts();

    GDALAllRegister();
    int rc = 1;
    mm_model *model = NULL;
    mm_context *ctx = NULL;
    char **md = NULL;
    char *wkt = NULL;
    char err[2048];

    /* the grid */
    mmgeo_grid *g = &job.grid;
    if (like) {
        CPLPushErrorHandler(CPLQuietErrorHandler);
        GDALDatasetH ds = GDALOpenEx(like, GDAL_OF_RASTER | GDAL_OF_READONLY, NULL, NULL, NULL);
        CPLPopErrorHandler();
        if (!ds) {
            fprintf(stderr, "%s: cannot open '%s' as a raster: %s\n", TOOL, like,
                    *CPLGetLastErrorMsg() ? CPLGetLastErrorMsg() : "unknown error");
            goto done;
        }
        g->width = GDALGetRasterXSize(ds);
        g->height = GDALGetRasterYSize(ds);
        if (GDALGetGeoTransform(ds, g->geotransform) != CE_None) {
            fprintf(stderr,
                    "%s: '%s' has no geotransform (-like copies size, geotransform and "
                    "CRS)\n",
                    TOOL, like);
            GDALClose(ds);
            goto done;
        }
        OGRSpatialReferenceH srs = GDALGetSpatialRef(ds);
        if (srs) OSRExportToWkt(srs, &wkt);
        GDALClose(ds);
        g->srs = wkt;
    } else {
        double w = has_tr ? (te[2] - te[0]) / tr[0] : ts[0];
        double h = has_tr ? (te[3] - te[1]) / tr[1] : ts[1];
        w = floor(w + 0.5), h = floor(h + 0.5); /* as gdalwarp rounds */
        if (w < 1 || h < 1 || w > INT_MAX || h > INT_MAX) {
            fprintf(stderr, "%s: -te and -tr give a grid of %.0f x %.0f pixels\n", TOOL, w, h);
            goto done;
        }
        g->width = (int)w, g->height = (int)h;
        const double xr = has_tr ? tr[0] : (te[2] - te[0]) / w;
        const double yr = has_tr ? tr[1] : (te[3] - te[1]) / h;
        const double gt[6] = {te[0], xr, 0, te[3], 0, -yr};
        memcpy(g->geotransform, gt, sizeof gt);
        if (t_srs) {
            OGRSpatialReferenceH srs = OSRNewSpatialReference(NULL);
            CPLPushErrorHandler(CPLQuietErrorHandler);
            const int ok = OSRSetFromUserInput(srs, t_srs) == OGRERR_NONE;
            CPLPopErrorHandler();
            if (ok) OSRExportToWkt(srs, &wkt);
            OSRDestroySpatialReference(srs);
            if (!ok) {
                fprintf(stderr,
                        "%s: -t_srs '%s' is not a coordinate reference system GDAL "
                        "reads\n",
                        TOOL, t_srs);
                goto done;
            }
            g->srs = wkt;
        }
    }

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

    mmgeo_model_processor mp;
    memset(&mp, 0, sizeof mp);
    mmgeo_processor proc;
    memset(&proc, 0, sizeof proc);
    job.n_sources = 0;
    job.n_targets = n_out;
    char joint[512] = "";
    for (int j = 0; j < n_out; j++) {
        int m;
        if (out_mod[j]) {
            m = mm_model_modality_index(model, out_mod[j]);
            if (m < 0) {
                fprintf(stderr, "%s: the model '%s' has no modality '%s' (it has %s)\n", TOOL,
                        mm_model_name(model), out_mod[j], have);
                goto done;
            }
        } else {
            m = mmgeo_detect_modality(NULL, out_path[j], names, nm);
            if (m < 0) {
                fprintf(stderr,
                        "%s: cannot tell the modality of the output '%s'%s: give it as -t "
                        "MODALITY:FILE, or put one of %s in its file name\n",
                        TOOL, out_path[j], m == -2 ? " (its name has several)" : "", have);
                goto done;
            }
        }
        for (int k = 0; k < j; k++)
            if (mp.target_mods[k] == m) {
                fprintf(stderr, "%s: two outputs are '%s'\n", TOOL, names[m]);
                goto done;
            }
        job.targets[j].path = out_path[j];
        job.targets[j].modality = names[m];
        mmgeo_model_geo_target_profile(&geo, m, names[m], &job.targets[j].profile);
        mp.target_mods[j] = m;
        proc.dst_channels[j] = mm_model_modality_channels(model, m);
        snprintf(joint + strlen(joint), sizeof joint - strlen(joint), "%s%s", j ? "," : "",
                 names[m]);
    }
    if (mm_tool_profiles_apply(TOOL, &profiles, NULL, &job)) goto done;

    /* the model */
    if (mm_tool_context(&opt, model, &ctx)) goto done;
    if (mm_tool_sample_params(&opt, model, &mp.params)) goto done;
    mp.ctx = ctx;
    mp.model = model;
    mp.n_sources = 0;
    mp.n_targets = n_out;
    proc.n_sources = 0;
    proc.n_targets = n_out;
    proc.window = mm_model_image_size(model);
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

    /* provenance */
    char buf[256];
    if (mmgeo_model_provenance(&md, TOOL_NAME, model_path, model, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", TOOL, err);
        goto done;
    }
    md = CSLSetNameValue(md, "SYNTHETIC", "YES");
    md = CSLSetNameValue(md, "MM_SOURCE", "none (joint generation)");
    md = CSLSetNameValue(md, "MM_JOINT", joint);
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)mp.params.seed);
    md = CSLSetNameValue(md, "MM_SEED", buf);
    snprintf(buf, sizeof buf, "%d", mp.params.steps);
    md = CSLSetNameValue(md, "MM_STEPS", buf);
    snprintf(buf, sizeof buf, "%g", (double)mp.params.guidance);
    md = CSLSetNameValue(md, "MM_GUIDANCE", buf);
    md = CSLSetNameValue(md, "MM_SAMPLER", mm_sampler_name(mp.params.sampler));
    snprintf(buf, sizeof buf, "%d", proc.window);
    md = CSLSetNameValue(md, "MM_WINDOW", buf);
    {
        const int S = proc.window, f = S / mm_model_latent_size(model);
        int ov = overlap >= 0 ? overlap : S / 4;
        if (seamless) ov = ov / f * f;
        snprintf(buf, sizeof buf, "%d", ov);
    }
    md = CSLSetNameValue(md, "MM_OVERLAP", buf);
    md = CSLSetNameValue(md, "MM_TILING", seamless ? "seamless" : "blend");

    job.overlap = overlap;
    job.batch = batch;
    mm_tool_job_output(&job, TOOL, format, co, md, &quiet, &stats);
    if (aoi_path) { /* windows outside skipped, pixels outside masked */
        if (seamless) {
            fprintf(stderr, "%s: --aoi works with the blended tiling, not --seamless\n", TOOL);
            goto done;
        }
        if (mm_tool_open_aoi(TOOL, aoi_path, aoi_layer, &job, &aoi, &md)) goto done;
    }

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
    rc = mm_tool_run_status(TOOL, r, err, NULL, quiet, aoi ? &stats : NULL);
done:
    mmgeo_aoi_close(aoi);
    CSLDestroy(md);
    CSLDestroy(co);
    CPLFree(wkt);
    mm_context_free(ctx);
    mm_model_close(model);
    GDALDestroyDriverManager();
    return rc;
}
