/*
 * mm_generate: joint generation of aligned modalities from nothing with a MetaEarth-MM model, over
 * a georeferenced grid given as gdalwarp takes it (-te, -tr or -ts, -t_srs) or copied from a
 * raster (-like), one output file per modality. The grid is cut into the model's windows on the
 * same anchored grid as mm_translate, every window generated jointly in all the modalities, and
 * the windows blended (or, with --seamless, fused in latent space at every sampling step).
 * --joint-guidance applies the guidance scale between the jointly generated modalities (libmm's
 * mm_sample_params.joint_guidance; off by default, as today). See man/mm_generate.1 and
 * docs/tools.md.
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
#include "tool_metadata.h"
#include "tool_model.h"
#include "tool_opts.h"
#include "tool_profiles.h"
#include "tool_run.h"
#include "mm.h"
#include "mmgeo.h"

#define TOOL_NAME "mm_generate"
static const char *TOOL = TOOL_NAME;

static void usage(FILE *f) {
    fprintf(
        f, "Usage: mm_generate [--help] [--help-general] [--version] [-q]\n"
           "         [-of FORMAT] [-co NAME=VALUE]...\n"
           "         [--config KEY VALUE]... [--model FILE] [--device cpu|cuda] [--threads N]\n"
           "         [--precision bf16|fp32] [--steps N] [--guidance G] [--seed N]\n"
           "         [--sampler euler|heun|euler_maruyama] [--overlap PX] [--batch N]\n"
           "         [--seamless] [--joint-guidance] [--profile MODALITY=SPEC]...\n"
           "         [--aoi FILE [--aoi-layer NAME]]\n"
           "         [--gsd M] [--nonfinite error|nodata] [--max-pixels N] [--force]\n"
           "         (-te XMIN YMIN XMAX YMAX (-tr XRES YRES | -ts WIDTH HEIGHT) [-t_srs SRS]\n"
           "          | -like FILE)\n"
           "         (-t MODALITY:FILE)... [FILE]...\n"
           "Generates aligned rasters of several modalities jointly, from nothing, on the grid\n"
           "given by -te/-tr/-ts/-t_srs (as gdalwarp) or copied from FILE (-like): one output per\n"
           "modality, named by -t MODALITY:FILE or by a modality word in the file name\n"
           "(out_rgb.tif out_sar.tif). The outputs are synthetic (SYNTHETIC=YES).\n"
           "--joint-guidance applies --guidance between the modalities generated together (each\n"
           "one's unconditional step drops the others to noise); without it guidance has no\n"
           "effect here. See mm_generate(1).\n"
           "The model: --model, else $MM_MODEL, else the default model (%s).\n",
        mm_tool_default_model());
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
    if (mm_args_general(TOOL, argc, argv, usage, "GDAL", GDALVersionInfo("RELEASE_NAME")))
        return 0;
    mm_tool_opts opt; /* the options shared with mm_translate and mm_embed */
    mm_tool_opts_init(&opt, TOOL, 0, 4);
    const char *like = NULL, *t_srs = NULL;
    const char *tspec[MMGEO_MAX_IO];
    int n_tspec = 0;
    mmgeo_aoi *aoi = NULL;
    mmgeo_run_stats stats;
    int has_te = 0, has_tr = 0, has_ts = 0;
    double te[4] = {0}, tr[2] = {0}, ts[2] = {0};
    mmgeo_job job;
    mmgeo_job_init(&job);

    enum { O_TE = 256, O_TR, O_TS, O_TSRS, O_LIKE, O_JOINT_GUIDANCE };
    int joint_guidance = 0;
    static const struct option opts[] = {MM_TOOL_OPTIONS,
                                         MM_TOOL_SAMPLING_OPTIONS,
                                         MM_TOOL_TILING_OPTIONS,
                                         {"te", required_argument, 0, O_TE},
                                         {"tr", required_argument, 0, O_TR},
                                         {"ts", required_argument, 0, O_TS},
                                         {"t_srs", required_argument, 0, O_TSRS},
                                         {"like", required_argument, 0, O_LIKE},
                                         {"joint-guidance", no_argument, 0, O_JOINT_GUIDANCE},
                                         {0, 0, 0, 0}};
    int o, bad = 0;
    while ((o = mm_tool_getopt(&opt, argc, argv, "qt:", opts, usage, &bad)) != -1) {
        switch (o) {
        case O_TE: bad = parse_doubles("-te", 4, optarg, argv, argc, te), has_te = 1; break;
        case O_TR: bad = parse_doubles("-tr", 2, optarg, argv, argc, tr), has_tr = 1; break;
        case O_TS: bad = parse_doubles("-ts", 2, optarg, argv, argc, ts), has_ts = 1; break;
        case O_TSRS: t_srs = optarg; break;
        case O_LIKE: like = optarg; break;
        case O_JOINT_GUIDANCE: joint_guidance = 1; break;
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
    if (bad || opt.stop) {
        mm_tool_opts_free(&opt);
        return bad ? 2 : 0;
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
    else if (joint_guidance && opt.seamless)
        gerr = "--joint-guidance is not available with --seamless (the latent fusion has no "
               "joint-guided branch yet): use the blended tiling";
    if (gerr) {
        fprintf(stderr, "%s: %s\n", TOOL, gerr);
        usage(stderr);
        mm_tool_opts_free(&opt);
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
            mm_tool_opts_free(&opt);
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
            mm_tool_opts_free(&opt);
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
        mm_tool_opts_free(&opt);
        return 2;
    }

    mm_tool_catch_interrupts();

    GDALAllRegister();
    int rc = 1;
    mm_tool_model tm = {0}; /* the model, its geo settings and modality names */
    mm_context *ctx = NULL;
    char **md = NULL;
    char *wkt = NULL;

    /* the grid */
    mmgeo_grid *g = &job.grid;
    if (like) {
        GDALDatasetH ds = mm_tool_open_raster(TOOL, like);
        if (!ds) goto done;
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

    if (mm_tool_model_open(TOOL, opt.model_path, &tm)) goto done;
    mm_model *model = tm.model;
    const char **names = tm.names;

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
            if ((m = mm_tool_modality(TOOL, &tm, out_mod[j])) < 0) goto done;
        } else {
            m = mmgeo_detect_modality(NULL, out_path[j], names, tm.n_names);
            if (m < 0) {
                fprintf(stderr,
                        "%s: cannot tell the modality of the output '%s'%s: give it as -t "
                        "MODALITY:FILE, or put one of %s in its file name\n",
                        TOOL, out_path[j], m == -2 ? " (its name has several)" : "", tm.have);
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
        mmgeo_model_geo_target_profile(&tm.geo, m, names[m], &job.targets[j].profile);
        mp.target_mods[j] = m;
        proc.dst_channels[j] = mm_model_modality_channels(model, m);
        snprintf(joint + strlen(joint), sizeof joint - strlen(joint), "%s%s", j ? "," : "",
                 names[m]);
    }
    if (mm_tool_profiles_apply(TOOL, &opt.profiles, NULL, &job)) goto done;

    /* the model */
    const int batch0 = opt.batch;
    if (mm_tool_model_processor(&opt, model, 0, n_out, &ctx, &mp, &proc)) goto done;
    if (joint_guidance) { /* the working memory planned again, for the 1 + n_out copies */
        char info[512], rerr[2048];
        mp.params.joint_guidance = 1;
        opt.batch = batch0;
        if (mmgeo_model_reserve(&mp, &opt.batch, 64, info, sizeof info, rerr, sizeof rerr)) {
            fprintf(stderr, "%s: %s\n", TOOL, rerr);
            goto done;
        }
        if (batch0 == 0 && !opt.quiet) fprintf(stderr, "%s: with joint guidance, %s\n", TOOL, info);
        if (n_out < 2 && !opt.quiet)
            fprintf(stderr,
                    "%s: warning: --joint-guidance with one modality has no effect (there is no "
                    "other modality to drop)\n",
                    TOOL);
    }

    /* provenance */
    char err[2048];
    if (mmgeo_model_provenance(&md, TOOL_NAME, opt.model_path, model, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", TOOL, err);
        goto done;
    }
    md = CSLSetNameValue(md, "SYNTHETIC", "YES");
    md = CSLSetNameValue(md, "MM_SOURCE", "none (joint generation)");
    md = CSLSetNameValue(md, "MM_JOINT", joint);
    md = mm_tool_md_tiling(md, &mp.params, NULL, model, proc.window, opt.overlap, opt.seamless);
    if (joint_guidance) md = CSLSetNameValue(md, "MM_JOINT_GUIDANCE", "YES");

    job.overlap = opt.overlap;
    job.batch = opt.batch;
    mm_tool_job_output(&job, TOOL, opt.format, opt.co, md, &opt.quiet, &stats);
    mm_tool_job_guards(&opt, &job, &mp); /* --nonfinite, --max-pixels, --force */
    /* --aoi, --gsd, --seamless or the blended tiling */
    rc = mm_tool_run_job(&opt, &job, &tm.geo, &mp, &proc, &md, &aoi, NULL);
done:
    mmgeo_aoi_close(aoi);
    CSLDestroy(md);
    mm_tool_opts_free(&opt);
    CPLFree(wkt);
    mm_context_free(ctx);
    mm_model_close(tm.model);
    GDALDestroyDriverManager();
    return rc;
}
