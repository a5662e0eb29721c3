/* A virtual dataset: mm_translate's setup (model, modalities, profiles, processor, provenance)
 * for SOURCES -> TARGET, as region renderers at full resolution and at the overview levels the
 * model's GSD range allows. The GDAL driver (gdal_driver/) is a thin layer over this. */
#define _GNU_SOURCE
#include <cpl_conv.h>
#include <cpl_string.h>
#include <math.h>
#include <ogr_srs_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "mmgeo_settings.h"

#define MAX_LEVELS 16

struct mmgeo_virtual {
    mm_model *model;
    mm_context *ctx;
    mmgeo_model_processor mp;
    mmgeo_processor proc;
    mmgeo_job job;
    char paths[MMGEO_MAX_IO][4096];
    char target[64];
    char *key;
    char **md;
    GDALDatasetH ds0;
    int n_levels;
    mmgeo_region *levels[MAX_LEVELS];
    mmgeo_model_geo geo; /* the model's GSD range and I/O profiles */
    char note[1024];
    char **warnings;
    mmgeo_nonfinite nonfinite; /* the regions' (NONFINITE) */
    mmgeo_sampler sampler;     /* SAMPLES=K: the processor sampled K times (samples.c) */
    mmgeo_processor sproc;
    mmgeo_processor *run_proc; /* the regions' processor: proc, or sproc */
};

static void collect_warning(void *user, const char *msg) {
    mmgeo_virtual *v = user;
    v->warnings = CSLAddString(v->warnings, msg);
}
char **mmgeo_virtual_warnings(const mmgeo_virtual *v) {
    return v->warnings;
}

void mmgeo_virtual_params_init(mmgeo_virtual_params *p) {
    memset(p, 0, sizeof *p);
}

void mmgeo_virtual_close(mmgeo_virtual *v) {
    if (!v) return;
    for (int l = v->n_levels - 1; l >= 0; l--)
        mmgeo_region_close(v->levels[l]);
    if (v->ds0) GDALClose(v->ds0);
    mmgeo_sampler_free(&v->sampler);
    mm_context_free(v->ctx);
    mm_model_close(v->model);
    CSLDestroy(v->md);
    CSLDestroy(v->warnings);
    free(v->key);
    free(v);
}

int mmgeo_virtual_levels(const mmgeo_virtual *v) {
    return v->n_levels;
}
mmgeo_region *mmgeo_virtual_region(mmgeo_virtual *v, int level) {
    return level >= 0 && level < v->n_levels ? v->levels[level] : NULL;
}
GDALDatasetH mmgeo_virtual_source(const mmgeo_virtual *v) {
    return v->ds0;
}
char **mmgeo_virtual_metadata(const mmgeo_virtual *v) {
    return v->md;
}
const char *mmgeo_virtual_overview_note(const mmgeo_virtual *v) {
    return v->note;
}

/* The ground sample distance of a raster in metres (the larger of the two pixel sides), or 0
 * when it has no usable geotransform. Geographic CRSs: degrees at the raster's centre latitude
 * (111 320 m a degree of latitude, times cos(latitude) for longitude). */
static double raster_gsd_m(GDALDatasetH ds) {
    double gt[6];
    if (GDALGetGeoTransform(ds, gt) != CE_None || gt[2] != 0 || gt[4] != 0) return 0;
    OGRSpatialReferenceH srs = GDALGetSpatialRef(ds);
    if (!srs) return 0;
    double dx = fabs(gt[1]), dy = fabs(gt[5]);
    if (OSRIsProjected(srs)) {
        const double u = OSRGetLinearUnits(srs, NULL);
        dx *= u, dy *= u;
    } else if (OSRIsGeographic(srs)) {
        const double lat = gt[3] + gt[5] * GDALGetRasterYSize(ds) / 2.0;
        dy *= 111320.0;
        dx *= 111320.0 * cos(lat * M_PI / 180.0);
    } else {
        return 0;
    }
    return dx > dy ? dx : dy;
}

/* Overview levels 2, 4, 8 ...: each a region on the sources averaged f x f, offered while its
 * GSD (the source's times f) is within the model's range; levels finer than the range are left
 * out, and the list ends at the first level beyond it or after the first level that fits in one
 * window. No stated range: no overviews. */
static void add_overviews(mmgeo_virtual *v) {
    const double lo = v->geo.gsd_lo_m, hi = v->geo.gsd_hi_m;
    if (!(hi > 0)) {
        snprintf(v->note, sizeof v->note, "no overviews: the model states no GSD range");
        return;
    }
    const double gsd = raster_gsd_m(v->ds0);
    if (gsd <= 0) {
        snprintf(v->note, sizeof v->note,
                 "no overviews: the source has no ground sample distance in metres (no "
                 "north-up geotransform or no CRS)");
        return;
    }
    mmgeo_region_info_t info;
    mmgeo_region_info(v->levels[0], &info);
    int pw = info.width, ph = info.height;
    for (int f = 2; v->n_levels < MAX_LEVELS; f *= 2) {
        if (pw <= info.window && ph <= info.window) break;
        const double g = gsd * f;
        if (g > hi) {
            snprintf(v->note, sizeof v->note,
                     "overviews end at factor %d: %g m is beyond the model's GSD range %g-%g m", f,
                     g, lo, hi);
            break;
        }
        pw = (info.width + f - 1) / f, ph = (info.height + f - 1) / f;
        if (g < lo) continue;
        mmgeo_region_options ro;
        mmgeo_region_options_init(&ro);
        ro.key = v->key;
        ro.nonfinite = v->nonfinite;
        ro.reduce = f;
        ro.share = v->levels[0];
        char err[512];
        if (mmgeo_region_open(&v->job, v->run_proc, &ro, &v->levels[v->n_levels], err,
                              sizeof err)) {
            snprintf(v->note, sizeof v->note, "overviews end at factor %d: %s", f, err);
            break;
        }
        v->n_levels++;
    }
}

int mmgeo_virtual_open(const mmgeo_virtual_params *p, mmgeo_virtual **out, char *err,
                       size_t errlen) {
    *out = NULL;
    const mmgeo_settings *set = p->settings;
    if (!set) return mmgeo_fail(err, errlen, "no settings");
    if (!p->target || !*p->target) return mmgeo_fail(err, errlen, "no target modality");
    if (p->n_sources < 1 || p->n_sources > MMGEO_MAX_IO)
        return mmgeo_fail(err, errlen, "from 1 to %d sources, not %d", MMGEO_MAX_IO, p->n_sources);
    if (set->n_bands && p->n_sources > 1)
        return mmgeo_fail(err, errlen, "bands are selected for a single source");
    mmgeo_virtual *v = calloc(1, sizeof *v);
    if (!v) return mmgeo_fail(err, errlen, "out of memory");
    v->nonfinite = set->nonfinite;
    const char *model_path = set->model_path ? set->model_path : p->default_model;
    if (!model_path) {
        mmgeo_virtual_close(v);
        return mmgeo_fail(err, errlen, "no model (MODEL option or MM_MODEL)");
    }
    char *e = NULL;
    if (mm_model_open(model_path, &v->model, &e) != MM_OK) {
        mmgeo_fail(err, errlen, "%s", e ? e : "cannot open the model");
        mm_free(e);
        mmgeo_virtual_close(v);
        return MMGEO_ERROR;
    }
    mm_model *model = v->model;
    if (mmgeo_model_geo_get(model, &v->geo, err, errlen)) goto fail;
    const char *names[32];
    char have[512];
    const int nm = mmgeo_model_modality_names(model, names, 32, have, sizeof have);
    mmgeo_job *job = &v->job;
    mmgeo_job_init(job);
    mmgeo_processor *proc = &v->proc;
    mmgeo_model_processor *mp = &v->mp;
    const int ns = p->n_sources;
    job->n_sources = ns;
    /* the SAR units a PROFILE=sar=... implies, against SAR_UNITS */
    mmgeo_sar_options sar = set->sar;
    sar.open_options = 1;
    if (mmgeo_sar_options_profiles(&sar, set->profiles, set->n_profiles, err, errlen)) goto fail;
    for (int i = 0; i < ns; i++) {
        if (!p->source_paths[i] || !*p->source_paths[i] ||
            strlen(p->source_paths[i]) >= sizeof v->paths[i]) {
            mmgeo_fail(err, errlen, "source %d: %s", i + 1,
                       p->source_paths[i] && *p->source_paths[i] ? "path too long" : "no path");
            goto fail;
        }
        snprintf(v->paths[i], sizeof v->paths[i], "%s", p->source_paths[i]);
        CPLErrorReset();
        CPLPushErrorHandler(CPLQuietErrorHandler);
        GDALDatasetH ds =
            GDALOpenEx(v->paths[i], GDAL_OF_RASTER | GDAL_OF_READONLY, NULL, NULL, NULL);
        CPLPopErrorHandler();
        VSIStatBufL st;
        if (!ds) {
            mmgeo_fail(err, errlen, "cannot open the source '%s' as a raster: %s", v->paths[i],
                       *CPLGetLastErrorMsg()             ? CPLGetLastErrorMsg()
                       : VSIStatL(v->paths[i], &st) != 0 ? "no such file"
                                                         : "not a raster GDAL reads");
            goto fail;
        }
        int m;
        if (p->source_mods[i] && *p->source_mods[i]) {
            m = mm_model_modality_index(model, p->source_mods[i]);
            if (m < 0) {
                mmgeo_fail(err, errlen, "the model '%s' has no modality '%s' (it has %s)",
                           mm_model_name(model), p->source_mods[i], have);
                GDALClose(ds);
                goto fail;
            }
        } else {
            m = mmgeo_detect_modality(ds, v->paths[i], names, nm);
            if (m < 0) {
                mmgeo_fail(err, errlen,
                           "cannot tell the modality of '%s'%s: name it (SOURCE_MODALITY), tag "
                           "the file with MM_MODALITY, or put one of %s in its file name",
                           v->paths[i], m == -2 ? " (its name has several)" : "", have);
                GDALClose(ds);
                goto fail;
            }
        }
        mmgeo_source *s = &job->sources[i];
        s->path = v->paths[i];
        s->modality = names[m];
        s->n_bands = set->n_bands;
        memcpy(s->bands, set->bands, sizeof s->bands);
        if (!strcmp(names[m], "sar")) { /* the SAR band, units and the model's dB window */
            if (mmgeo_sar_source(ds, &sar, &v->geo, m, mm_model_modality_channels(model, m), s,
                                 NULL, 0, err, errlen)) {
                GDALClose(ds);
                goto fail;
            }
        } else {
            const int b1 = set->n_bands ? set->bands[0] : 1;
            const GDALDataType dt = b1 >= 1 && b1 <= GDALGetRasterCount(ds)
                                        ? GDALGetRasterDataType(GDALGetRasterBand(ds, b1))
                                        : GDT_Byte;
            mmgeo_model_geo_source_profile(&v->geo, m, names[m], dt, &s->profile);
        }
        if (i == 0)
            v->ds0 = ds;
        else
            GDALClose(ds);
        mp->source_mods[i] = m;
        proc->src_channels[i] = mm_model_modality_channels(model, m);
        for (int k = 0; k < i; k++)
            if (mp->source_mods[k] == m) {
                mmgeo_fail(err, errlen, "two sources are '%s'", names[m]);
                goto fail;
            }
    }
    const int tm = mm_model_modality_index(model, p->target);
    if (tm < 0) {
        mmgeo_fail(err, errlen, "the model '%s' has no modality '%s' (it has %s)",
                   mm_model_name(model), p->target, have);
        goto fail;
    }
    for (int i = 0; i < ns; i++)
        if (mp->source_mods[i] == tm) {
            mmgeo_fail(err, errlen, "the source '%s' is already '%s', the target modality",
                       v->paths[i], names[tm]);
            goto fail;
        }
    snprintf(v->target, sizeof v->target, "%s", names[tm]);
    job->n_targets = 1;
    job->targets[0].path = "";
    job->targets[0].modality = names[tm];
    mmgeo_model_geo_target_profile(&v->geo, tm, names[tm], &job->targets[0].profile);
    /* profile overrides and the output type, as mm_translate --profile and -ot */
    for (int k = 0; k < set->n_profiles; k++) {
        const char *spec = set->profiles[k],
                   *eq = strchr(spec, '='); /* MODALITY=SPEC (settings.c) */
        const size_t ml = (size_t)(eq - spec);
        int used = 0;
        for (int i = 0; i <= ns; i++) {
            mmgeo_profile *pr = i < ns ? &job->sources[i].profile : &job->targets[0].profile;
            const char *mod = i < ns ? job->sources[i].modality : names[tm];
            if (strlen(mod) != ml || strncmp(mod, spec, ml)) continue;
            char e2[512];
            if (mmgeo_profile_parse(eq + 1, pr, e2, sizeof e2)) {
                mmgeo_fail(err, errlen, "profile %s: %s", spec, e2);
                goto fail;
            }
            used = 1;
        }
        if (!used) {
            mmgeo_fail(err, errlen, "profile %s: no source or target is '%.*s'", spec, (int)ml,
                       spec);
            goto fail;
        }
    }
    if (set->out_type != GDT_Unknown) job->targets[0].profile.out_type = set->out_type;
    mp->target_mods[0] = tm;
    proc->dst_channels[0] = mm_model_modality_channels(model, tm);
    proc->n_sources = ns;
    proc->n_targets = 1;
    proc->window = mm_model_image_size(model);

    /* the processor */
    const char *processor = set->processor;
    char buf[4096];
    if (!strcmp(processor, "model")) {
        mm_context_params cp;
        mmgeo_settings_context_params(set, &cp);
        mmgeo_settings_sample_params(set, model, &mp->params);
        if (set->window) {
            mmgeo_fail(err, errlen, "the window is a test hook of the test processors");
            goto fail;
        }
        e = NULL;
        if (mm_context_create(model, &cp, &v->ctx, &e) != MM_OK) {
            mmgeo_fail(err, errlen, "%s", e ? e : "cannot create a context");
            mm_free(e);
            goto fail;
        }
        mp->ctx = v->ctx;
        mp->model = model;
        mp->n_sources = ns;
        mp->n_targets = 1;
        proc->fn = mmgeo_process_model;
        proc->user = mp;
    } else if (!strcmp(processor, "identity") || !strcmp(processor, "negate")) {
        proc->fn = processor[0] == 'i' ? mmgeo_process_identity : mmgeo_process_negate;
        proc->user = proc;
        if (set->window) proc->window = set->window;
    } else {
        mmgeo_fail(err, errlen, "unknown processor '%s' (model; test hooks: identity, negate)",
                   processor);
        goto fail;
    }
    if (set->overlap >= proc->window) {
        mmgeo_fail(err, errlen, "the overlap (%d) must be less than the window (%d)", set->overlap,
                   proc->window);
        goto fail;
    }
    job->overlap = set->overlap;
    job->batch = set->batch > 0 ? set->batch : 4;
    /* SAMPLES=K: as mm_translate --samples K --spread band (a dataset has no sidecar) */
    v->run_proc = proc;
    if (set->samples.samples > 1) {
        mmgeo_samples_options so = set->samples;
        if (so.spread_set && so.spread != MMGEO_SPREAD_BAND) {
            mmgeo_fail(err, errlen,
                       "SPREAD=SIDECAR: a dataset has no sidecar; its spread is one "
                       "more band (SPREAD=BAND)");
            goto fail;
        }
        so.spread = MMGEO_SPREAD_BAND;
        if (mmgeo_sampler_init(&v->sampler, proc, proc->fn == mmgeo_process_model ? mp : NULL, &so,
                               &v->sproc, err, errlen))
            goto fail;
        job->targets[0].spread_channels = 1;
        v->run_proc = &v->sproc;
    }
    /* mm_translate's warnings (source GSD outside the model's range, nodata not representable,
       no CRS), kept for the caller */
    job->warn = collect_warning;
    job->warn_user = v;
    mmgeo_gsd_check(job, &v->geo, 0);
    if (!GDALGetSpatialRef(v->ds0) && !GDALGetGCPSpatialRef(v->ds0))
        collect_warning(v, "the source has no coordinate reference system; the dataset has none");

    /* provenance: the items mm_translate writes */
    if (mmgeo_model_provenance(&v->md, p->tool ? p->tool : "gdal_MM", model_path, model, err,
                               errlen))
        goto fail;
    v->md = CSLSetNameValue(v->md, "SYNTHETIC", "YES");
    buf[0] = 0;
    for (int i = 0; i < ns; i++) {
        char *abs = realpath(v->paths[i], NULL);
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s:%s", i ? ";" : "",
                 job->sources[i].modality, abs ? abs : v->paths[i]);
        free(abs);
    }
    v->md = CSLSetNameValue(v->md, "MM_SOURCE", buf);
    const int ov = set->overlap >= 0 ? set->overlap : proc->window / 4;
    if (proc->fn == mmgeo_process_model) {
        snprintf(buf, sizeof buf, "%llu", (unsigned long long)mp->params.seed);
        v->md = CSLSetNameValue(v->md, "MM_SEED", buf);
        snprintf(buf, sizeof buf, "%d", mp->params.steps);
        v->md = CSLSetNameValue(v->md, "MM_STEPS", buf);
        snprintf(buf, sizeof buf, "%g", (double)mp->params.guidance);
        v->md = CSLSetNameValue(v->md, "MM_GUIDANCE", buf);
        v->md = CSLSetNameValue(v->md, "MM_SAMPLER", mm_sampler_name(mp->params.sampler));
    } else {
        v->md = CSLSetNameValue(v->md, "MM_PROCESSOR", processor);
    }
    snprintf(buf, sizeof buf, "%d", proc->window);
    v->md = CSLSetNameValue(v->md, "MM_WINDOW", buf);
    snprintf(buf, sizeof buf, "%d", ov);
    v->md = CSLSetNameValue(v->md, "MM_OVERLAP", buf);
    v->md = CSLSetNameValue(v->md, "MM_TILING", "blend");
    v->md = CSLSetNameValue(v->md, "MM_MODALITY", names[tm]);
    char desc[128];
    mmgeo_profile_describe(&job->targets[0].profile, desc, sizeof desc);
    v->md = CSLSetNameValue(v->md, "MM_IO_PROFILE", desc);
    if (job->targets[0].profile.kind == MMGEO_IO_SAR &&
        GDALDataTypeIsFloating(
            mmgeo_profile_out_type(&job->targets[0].profile, job->targets[0].modality)))
        v->md = CSLSetNameValue(v->md, "SAR_UNITS", "db"); /* as mm_translate writes */

    /* the cache key of the processor's settings */
    if (proc->fn == mmgeo_process_model) {
        const char *sha = CSLFetchNameValue(v->md, "MM_MODEL_SHA256");
        if (asprintf(&v->key,
                     "model %s\nsampler %s steps %d guidance %.9g eta %.9g shift %.9g seed %llu\n"
                     "device %d precision %d\n",
                     sha ? sha : "", mm_sampler_name(mp->params.sampler), mp->params.steps,
                     (double)mp->params.guidance, (double)mp->params.sde_eta,
                     (double)mp->params.time_shift, (unsigned long long)mp->params.seed,
                     (int)(set->device == MM_DEVICE_CUDA), (int)mm_context_precision(v->ctx)) < 0)
            v->key = NULL;
    } else if (asprintf(&v->key, "processor %s\n", processor) < 0) {
        v->key = NULL;
    }
    if (v->key &&
        set->samples.samples > 1) { /* the window results are the samples' mean and spread */
        char *k2 = NULL;
        if (asprintf(&k2, "%ssamples %d spread band\n", v->key, set->samples.samples) < 0)
            k2 = NULL;
        free(v->key);
        v->key = k2;
    }
    if (!v->key) {
        mmgeo_fail(err, errlen, "out of memory");
        goto fail;
    }
    if (set->samples.samples > 1) {
        mmgeo_samples_options so = set->samples;
        so.spread = MMGEO_SPREAD_BAND;
        v->md = mmgeo_samples_metadata(v->md, &so,
                                       proc->fn == mmgeo_process_model ? &mp->params.seed : NULL,
                                       proc->dst_channels[0] + 1, NULL);
    }

    /* full resolution */
    mmgeo_region_options ro;
    mmgeo_region_options_init(&ro);
    ro.key = v->key;
    ro.nonfinite = v->nonfinite;
    ro.cache_path = p->cache_path;
    if (set->cache_mb >= 0) ro.cache_mb = set->cache_mb;
    if (mmgeo_region_open(job, v->run_proc, &ro, &v->levels[0], err, errlen)) goto fail;
    v->n_levels = 1;
    add_overviews(v);
    *out = v;
    return 0;
fail:
    mmgeo_virtual_close(v);
    return MMGEO_ERROR;
}
