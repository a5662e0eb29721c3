/* The model's geospatial facts from its config's "geo" section (docs/model-format.md): the ground
 * sample distance range it was trained on and its modality I/O profiles. */
#include <cjson/cJSON.h>
#include <string.h>

#include "internal.h"

int mmgeo_model_geo_get(const mm_model *model, mmgeo_model_geo *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (!model) return mmgeo_fail(err, errlen, "mmgeo_model_geo_get: no model");
    const int nm = mm_model_num_modalities(model);
    out->n_modalities = nm < MMGEO_MAX_MODALITIES ? nm : MMGEO_MAX_MODALITIES;
    const char *json = mm_model_config_json(model);
    if (!json) return 0;
    cJSON *root = cJSON_Parse(json);
    if (!root) return mmgeo_fail(err, errlen, "the model's config is not JSON");
    int rc = 0;
    const cJSON *geo = cJSON_GetObjectItemCaseSensitive(root, "geo");
    const cJSON *r = geo ? cJSON_GetObjectItemCaseSensitive(geo, "gsd_range_m") : NULL;
    if (r) { /* libmm's config parser has checked the shape: two positive numbers, lo < hi */
        if (cJSON_GetArraySize(r) != 2 || !cJSON_IsNumber(r->child) ||
            !cJSON_IsNumber(r->child->next)) {
            rc = mmgeo_fail(err, errlen, "the model's geo.gsd_range_m is not [lo, hi]");
            goto done;
        }
        out->gsd_lo_m = r->child->valuedouble;
        out->gsd_hi_m = r->child->next->valuedouble;
    }
    const cJSON *p = geo ? cJSON_GetObjectItemCaseSensitive(geo, "profiles") : NULL;
    for (const cJSON *c = p ? p->child : NULL; c; c = c->next) {
        const int m = c->string ? mm_model_modality_index(model, c->string) : -1;
        if (m < 0 || m >= out->n_modalities || !cJSON_IsString(c)) {
            rc = mmgeo_fail(err, errlen,
                            "the model's geo.profiles.%s is not a profile of one of "
                            "its modalities",
                            c->string ? c->string : "?");
            goto done;
        }
        mmgeo_profile_default(c->string, GDT_Unknown, &out->profiles[m]);
        char e2[256];
        if (mmgeo_profile_parse(c->valuestring, &out->profiles[m], e2, sizeof e2)) {
            rc = mmgeo_fail(err, errlen, "the model's geo.profiles.%s: %s", c->string, e2);
            goto done;
        }
        out->has_profile[m] = 1;
    }
done:
    cJSON_Delete(root);
    if (rc) memset(out, 0, sizeof *out);
    return rc;
}

void mmgeo_model_geo_source_profile(const mmgeo_model_geo *g, int m, const char *modality,
                                    GDALDataType dt, mmgeo_profile *p) {
    mmgeo_profile_default(modality, dt, p);
    if (!g || m < 0 || m >= g->n_modalities || !g->has_profile[m]) return;
    const mmgeo_profile *c = &g->profiles[m];
    int use;
    if (c->kind == MMGEO_IO_PERCENTILE)
        use = 1; /* reads any data */
    else if (c->kind != p->kind)
        use = 0;
    else if (c->kind == MMGEO_IO_SAR) {
        /* real data of any units are converted to sigma0 dB: the model's dB window; complex
           data take the model's profile only when it is complex too */
        const int cx = p->sar_input == MMGEO_SAR_COMPLEX, ccx = c->sar_input == MMGEO_SAR_COMPLEX;
        if (!cx && !ccx) {
            p->lo = c->lo, p->hi = c->hi;
            return;
        }
        use = cx && ccx;
    } else if (c->kind == MMGEO_IO_REFLECTANCE)
        use = !GDALDataTypeIsFloating(dt);
    else
        use = 1;
    if (use) {
        *p = *c;
        p->out_type = GDT_Unknown;
    }
}

void mmgeo_model_geo_target_profile(const mmgeo_model_geo *g, int m, const char *modality,
                                    mmgeo_profile *p) {
    mmgeo_profile_default(modality, GDT_Unknown, p);
    if (!g || m < 0 || m >= g->n_modalities || !g->has_profile[m]) return;
    const mmgeo_profile *c = &g->profiles[m];
    if (p->kind == MMGEO_IO_SAR && c->kind == MMGEO_IO_SAR) p->lo = c->lo, p->hi = c->hi;
}

int mmgeo_model_modality_names(const mm_model *model, const char **names, int max, char *have,
                               size_t havelen) {
    const int n = mm_model_num_modalities(model);
    size_t used = 0;
    if (havelen) have[0] = '\0';
    for (int m = 0; m < n && m < max; m++) {
        names[m] = mm_model_modality_name(model, m);
        if (used < havelen)
            used += (size_t)snprintf(have + used, havelen - used, "%s%s", m ? ", " : "", names[m]);
    }
    return n;
}
