/* mm_translate's command, parsed and run (translate_cmd.h); moved here from mm_translate.c so that
 * mm_batch shares it. */
#define _GNU_SOURCE
#include "translate_cmd.h"

#include <cpl_conv.h>
#include <cpl_string.h>
#include <gdal.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "mm.h"
#include "tool_metadata.h"
#include "tool_model.h"
#include "tool_profiles.h"
#include "tool_run.h"
#include "tool_stac.h"

void mm_translate_cmd_init(mm_translate_cmd *c, const char *tool, mm_tr_mode mode) {
    memset(c, 0, sizeof *c);
    c->mode = mode;
    mm_tool_opts_init(&c->opt, tool, 0, 4);
    c->processor = "model";
    c->jobs = 1;
    c->stac = mode != MM_TR_TRANSLATE; /* a batch writes STAC items unless --no-stac */
}

void mm_translate_cmd_free(mm_translate_cmd *c) { mm_tool_opts_free(&c->opt); }

int mm_translate_cmd_parse(mm_translate_cmd *c, int argc, char **argv, void (*usage)(FILE *)) {
    const char *TOOL = c->opt.tool;
    enum { O_OT = 256, O_PROCESSOR, O_WINDOW, O_REPORT, O_STAC, O_NO_STAC, O_CATALOG };
    static const struct option opts[] = {
        MM_TOOL_OPTIONS,
        MM_TOOL_SAMPLING_OPTIONS,
        MM_TOOL_SOURCE_OPTIONS,
        MM_TOOL_TILING_OPTIONS,
        MM_TOOL_SAMPLES_OPTIONS,
        {"stac", no_argument, 0, O_STAC},
        {"ot", required_argument, 0, O_OT},
        {"processor", required_argument, 0, O_PROCESSOR}, /* test hook */
        {"window", required_argument, 0, O_WINDOW},       /* test hook */
        {0, 0, 0, 0}};
    static const struct option batch_opts[] = {
        MM_TOOL_OPTIONS,
        MM_TOOL_SAMPLING_OPTIONS,
        MM_TOOL_SOURCE_OPTIONS,
        MM_TOOL_TILING_OPTIONS,
        MM_TOOL_SAMPLES_OPTIONS,
        {"ot", required_argument, 0, O_OT},
        {"processor", required_argument, 0, O_PROCESSOR},
        {"window", required_argument, 0, O_WINDOW},
        {"report", required_argument, 0, O_REPORT},
        {"no-stac", no_argument, 0, O_NO_STAC},
        {"catalog", required_argument, 0, O_CATALOG},
        {0, 0, 0, 0}};
    const int batch = c->mode != MM_TR_TRANSLATE;
    int o, bad = 0;
    optind = 0; /* getopt starts afresh (GNU) */
    while ((o = mm_tool_getopt(&c->opt, argc, argv, batch ? "qs:t:b:j:" : "qs:t:b:",
                               batch ? batch_opts : opts, usage, &bad)) != -1) {
        /* an item's -j or --report: only among the batch's own arguments */
        if (c->mode == MM_TR_ITEM &&
            (o == 'j' || o == O_REPORT || o == O_NO_STAC || o == O_CATALOG) &&
            optind - 1 > c->n_default_args) {
            fprintf(stderr, "%s: %s is an option of mm_batch's command line, not of an item\n",
                    TOOL,
                    o == 'j'          ? "-j"
                    : o == O_REPORT   ? "--report"
                    : o == O_NO_STAC  ? "--no-stac"
                                      : "--catalog");
            bad = 1;
            break;
        }
        switch (o) {
        case O_OT:
        case O_PROCESSOR:
        case O_WINDOW: /* settings shared with the driver (mmgeo_settings.h) */
            if (mmgeo_settings_set(&c->opt.set, o == O_OT ? "ot" : o == O_WINDOW ? "window" : "processor",
                                   optarg)) {
                fprintf(stderr, "%s: %s\n", TOOL, mmgeo_settings_errmsg(&c->opt.set));
                bad = 1;
            } else if (o == O_OT)
                c->out_type = optarg;
            break;
        case O_REPORT: c->report = optarg; break;
        case O_STAC: c->stac = 1; break;
        case O_NO_STAC: c->stac = 0; break;
        case O_CATALOG: c->catalog = optarg; break;
        case 'j': bad = mm_arg_int(TOOL, "-j", optarg, 1, 1024, &c->jobs); break;
        case 's':
            if (c->n_src_spec == MMGEO_MAX_IO) {
                fprintf(stderr, "%s: at most %d sources\n", TOOL, MMGEO_MAX_IO);
                bad = 1;
            } else
                c->src_spec[c->n_src_spec++] = optarg;
            break;
        case 't': c->target_mod = optarg; break;
        default: bad = 1; break;
        }
    }
    if (bad) return 2;
    if (c->opt.stop) return 1;
    c->processor = c->opt.set.processor;
    c->window = c->opt.set.window;
    if (batch && (c->n_src_spec || c->target_mod)) {
        fprintf(stderr, "%s: -s and -t come from the task of each item (SOURCE:TARGET)\n", TOOL);
        return 2;
    }
    if (c->mode == MM_TR_BATCH) {
        if (argc - optind != 1) {
            fprintf(stderr, "%s: expected one MANIFEST, got %d file names\n", TOOL, argc - optind);
            if (usage) usage(stderr);
            return 2;
        }
        c->manifest = argv[optind];
        return 0;
    }
    if (c->mode == MM_TR_ITEM) {
        if (c->task_src) c->src_spec[c->n_src_spec++] = c->task_src;
        c->target_mod = c->task_tgt;
    }

    /* positional arguments: [SRC] DST; sources given as -s MODALITY:FILE need no SRC */
    for (int i = 0; i < c->n_src_spec; i++) {
        const char *spec = c->src_spec[i], *colon = strchr(spec, ':');
        size_t k = colon ? (size_t)(colon - spec) : 0;
        int word = colon && k > 0 && k < sizeof c->modbuf[0] &&
                   strspn(spec, "abcdefghijklmnopqrstuvwxyz0123456789_") == k;
        if (word) {
            memcpy(c->modbuf[i], spec, k);
            c->modbuf[i][k] = 0;
            c->src_mod[c->n_src] = c->modbuf[i];
            c->src_path[c->n_src++] = colon + 1;
        } else {
            c->src_mod[c->n_src] = spec;
            c->src_path[c->n_src++] = NULL; /* the positional SRC */
        }
    }
    const int npos = argc - optind;
    int need_pos_src = c->n_src == 0;
    for (int i = 0; i < c->n_src; i++)
        need_pos_src |= c->src_path[i] == NULL;
    if (npos != (need_pos_src ? 2 : 1)) {
        if (c->mode == MM_TR_ITEM)
            fprintf(stderr, "%s: unexpected argument '%s' among the options\n", TOOL,
                    argv[optind]);
        else {
            fprintf(stderr, "%s: expected %s, got %d file name%s\n", TOOL,
                    need_pos_src ? "SRC and DST"
                                 : "DST (the sources are given as -s MODALITY:FILE)",
                    npos, npos == 1 ? "" : "s");
            if (usage) usage(stderr);
        }
        return 2;
    }
    c->dst_path = argv[argc - 1];
    if (need_pos_src) {
        int k = -1;
        for (int i = 0; i < c->n_src; i++)
            if (!c->src_path[i]) {
                if (k >= 0) {
                    fprintf(stderr,
                            "%s: several -s MODALITY without a file; give the sources "
                            "as -s MODALITY:FILE\n",
                            TOOL);
                    return 2;
                }
                k = i;
            }
        if (k < 0) c->src_mod[k = c->n_src++] = NULL;
        c->src_path[k] = argv[optind];
    }
    if (c->opt.n_bands && c->n_src > 1) {
        fprintf(stderr, "%s: -b selects bands of a single source\n", TOOL);
        return 2;
    }
    return 0;
}

int mm_translate_cmd_run(mm_translate_cmd *c, const char *tool) {
    const char *TOOL = tool;
    mm_tool_opts *opt = &c->opt;
    const int n_src = c->n_src, seamless = opt->seamless, window = c->window;
    const char *processor = c->processor, *dst_path = c->dst_path;
    const char **src_path = c->src_path, **src_mod = c->src_mod;
    mmgeo_job job;
    mmgeo_job_init(&job);
    mmgeo_aoi *aoi = NULL;
    mmgeo_run_stats stats;

    /* Ctrl-C (or SIGTERM) from here on stops the run at the next window or sampling step */
    mm_tool_catch_interrupts();

    GDALAllRegister();
    int rc = 1;
    mm_tool_model tm = {0}; /* the model, its geo settings and modality names */
    mm_context *ctx = NULL;
    char **md = NULL;
    mmgeo_sampler sampler; /* --samples */
    memset(&sampler, 0, sizeof sampler);
    mmgeo_processor sproc;
    char spread_path[4096] = ""; /* --spread sidecar */

    if (mm_tool_model_open(TOOL, opt->model_path, &tm)) goto done;
    mm_model *model = tm.model;
    const char **names = tm.names;

    /* resolve the modalities */
    mmgeo_model_processor mp;
    memset(&mp, 0, sizeof mp);
    mmgeo_processor proc;
    memset(&proc, 0, sizeof proc);
    job.n_sources = n_src;
    for (int i = 0; i < n_src; i++) {
        const int m = mm_tool_model_source(opt, &tm, src_path[i], src_mod[i],
                                           c->mode == MM_TR_ITEM
                                               ? "the task (SOURCE:TARGET)"
                                               : "-s MODALITY (or -s MODALITY:FILE)",
                                           &job.sources[i]);
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
    if (c->target_mod) {
        if ((t = mm_tool_modality(TOOL, &tm, c->target_mod)) < 0) goto done;
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
    if (mm_tool_profiles_apply(TOOL, &opt->profiles, NULL, &job)) goto done;
    if (opt->set.out_type != GDT_Unknown) job.targets[0].profile.out_type = opt->set.out_type;

    /* -srcwin, or -projwin: the source window of the first source's raster */
    if (mm_tool_srcwin(opt, src_path[0], &job)) goto done;

    /* the processor */
    proc.n_sources = n_src;
    proc.n_targets = 1;
    proc.window = mm_model_image_size(model);
    if (!strcmp(processor, "model")) {
        if (window) {
            fprintf(stderr, "%s: --window is a test hook for the test processors\n", TOOL);
            goto done;
        }
        if (mm_tool_model_processor(opt, model, n_src, 1, &ctx, &mp, &proc)) goto done;
    } else if (seamless) {
        fprintf(stderr, "%s: --seamless runs the model (not a test processor)\n", TOOL);
        goto done;
    } else if (!strcmp(processor, "identity") || !strcmp(processor, "negate")) {
        proc.fn = processor[0] == 'i' ? mmgeo_process_identity : mmgeo_process_negate;
        proc.user = &proc;
        if (window) proc.window = window;
    } else {
        /* not reached from the command line: the settings parser (mmgeo_settings_set) refuses
         * any other --processor, so this is a processor added there and not here, a bug */
        fprintf(stderr, "%s: internal error: the settings admit --processor '%s', which this "
                        "tool does not run\n",
                TOOL, processor);
        goto done;
    }

    /* provenance: mm_translate's, whichever tool runs it (mm_batch's outputs are the same files) */
    char err[2048];
    if (mmgeo_model_provenance(&md, "mm_translate", opt->model_path, model, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", TOOL, err);
        goto done;
    }
    md = CSLSetNameValue(md, "SYNTHETIC", "YES");
    md = mm_tool_md_sources(md, &job);
    md = mm_tool_md_tiling(md, proc.fn == mmgeo_process_model ? &mp.params : NULL, processor, model,
                           proc.window, opt->overlap, seamless);

    /* --samples K: the processor sampled K times per window (samples.c), the spread as one more
       band or a sidecar target, renamed into place with the output */
    mmgeo_processor *run_proc = &proc;
    if (opt->samples.samples > 1) {
        if (mmgeo_sampler_init(&sampler, &proc, proc.fn == mmgeo_process_model ? &mp : NULL,
                               &opt->samples, &sproc, err, sizeof err)) {
            fprintf(stderr, "%s: %s\n", TOOL, err);
            goto done;
        }
        const int C = proc.dst_channels[0];
        if (opt->samples.spread == MMGEO_SPREAD_SIDECAR) {
            if (mmgeo_spread_path(dst_path, spread_path, sizeof spread_path)) {
                fprintf(stderr, "%s: the output name '%s' is too long\n", TOOL, dst_path);
                goto done;
            }
            job.n_targets = 2;
            job.targets[1] = job.targets[0];
            job.targets[1].path = spread_path;
            job.targets[1].profile.out_type = GDT_Float32; /* standard deviations, unrounded */
            job.targets[1].spread_channels = C;
        } else {
            job.targets[0].spread_channels = 1;
        }
        const char *slash = strrchr(spread_path, '/');
        md = mmgeo_samples_metadata(md, &opt->samples,
                                    proc.fn == mmgeo_process_model ? &mp.params.seed : NULL,
                                    C + 1, slash ? slash + 1 : spread_path);
        run_proc = &sproc;
    }

    job.overlap = opt->overlap;
    job.batch = opt->batch;
    mm_tool_job_output(&job, TOOL, opt->format, opt->co, md, &opt->quiet, &stats);
    mm_tool_job_guards(opt, &job, &mp); /* --nonfinite, --max-pixels, --force */
    /* --aoi, --gsd, --seamless or the blended tiling */
    rc = mm_tool_run_job(opt, &job, &tm.geo, &mp, run_proc, &md, &aoi, dst_path);
    /* --stac (on in a batch): the output's STAC item, from the written file */
    if (rc == 0 && c->stac &&
        mm_tool_stac_item(TOOL, dst_path))
        rc = 1;
done:
    mmgeo_sampler_free(&sampler);
    mmgeo_aoi_close(aoi);
    CSLDestroy(md);
    mm_context_free(ctx);
    mm_model_close(tm.model);
    return rc;
}
