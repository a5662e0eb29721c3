/* The model's side of the georeferenced tools' jobs (tool_model.h). */
#include "tool_model.h"

#include <stdio.h>
#include <string.h>

#include "args.h"
#include "tool_run.h"

int mm_tool_model_open(const char *tool, const char *path, mm_tool_model *m) {
    memset(m, 0, sizeof *m);
    m->model = mm_tool_open_model(tool, path);
    if (!m->model) return -1;
    char err[2048];
    if (mmgeo_model_geo_get(m->model, &m->geo, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", tool, err);
        return -1;
    }
    m->n_names = mmgeo_model_modality_names(m->model, m->names, 32, m->have, sizeof m->have);
    return 0;
}

int mm_tool_modality(const char *tool, const mm_tool_model *m, const char *name) {
    const int i = mm_model_modality_index(m->model, name);
    if (i < 0)
        fprintf(stderr, "%s: the model '%s' has no modality '%s' (it has %s)\n", tool,
                mm_model_name(m->model), name, m->have);
    return i;
}

int mm_tool_model_source(const mm_tool_opts *o, const mm_tool_model *m, const char *path,
                         const char *mod, const char *how, mmgeo_source *s) {
    GDALDatasetH ds = mm_tool_open_raster(o->tool, path);
    if (!ds) return -1;
    int i;
    if (mod)
        i = mm_tool_modality(o->tool, m, mod);
    else {
        i = mmgeo_detect_modality(ds, path, m->names, m->n_names);
        if (i < 0)
            fprintf(stderr,
                    "%s: cannot tell the modality of '%s'%s: name it with %s, tag the file with "
                    "MM_MODALITY, or put one of %s in its file name\n",
                    o->tool, path, i == -2 ? " (its name has several)" : "", how, m->have);
    }
    if (i < 0) {
        GDALClose(ds);
        return -1;
    }
    s->path = path;
    s->modality = m->names[i];
    s->n_bands = o->n_bands;
    memcpy(s->bands, o->bands, sizeof o->bands);
    if (!strcmp(m->names[i], "sar")) {
        /* the SAR band, the units (--sar-units or --profile sar=..., the file's metadata,
           detection) and the model's dB window */
        mmgeo_sar_options sar = o->sar;
        char err[2048], from[256];
        if (mmgeo_sar_options_profiles(&sar, o->profiles.spec, o->profiles.n, err, sizeof err) ||
            mmgeo_sar_source(ds, &sar, &m->geo, i, mm_model_modality_channels(m->model, i), s, from,
                             sizeof from, err, sizeof err)) {
            fprintf(stderr, "%s: %s\n", o->tool, err);
            GDALClose(ds);
            return -1;
        }
        GDALClose(ds);
        return i;
    }
    const int b1 = o->n_bands ? o->bands[0] : 1;
    const GDALDataType dt =
        b1 <= GDALGetRasterCount(ds) ? GDALGetRasterDataType(GDALGetRasterBand(ds, b1)) : GDT_Byte;
    GDALClose(ds);
    mmgeo_model_geo_source_profile(&m->geo, i, m->names[i], dt, &s->profile);
    return i;
}

int mm_tool_model_processor(mm_tool_opts *o, mm_model *model, int n_sources, int n_targets,
                            mm_context **ctx, mmgeo_model_processor *mp, mmgeo_processor *proc) {
    if (mm_tool_context(o, model, ctx)) return -1;
    if (mm_tool_sample_params(o, model, &mp->params)) return -1;
    mp->ctx = *ctx;
    mp->model = model;
    mp->n_sources = n_sources;
    mp->n_targets = n_targets;
    proc->n_sources = n_sources;
    proc->n_targets = n_targets;
    proc->window = mm_model_image_size(model);
    proc->fn = mmgeo_process_model;
    proc->user = mp;
    const int auto_batch = o->batch == 0;
    char info[512], err[2048];
    if (mmgeo_model_reserve(mp, &o->batch, 64, info, sizeof info, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", o->tool, err);
        return -1;
    }
    if (auto_batch && !o->quiet) fprintf(stderr, "%s: %s\n", o->tool, info);
    return 0;
}
