#include "tool_profiles.h"

#include "mmgeo_settings.h"

#include <gdal.h>
#include <stdio.h>
#include <string.h>

int mm_tool_profile_add(const char *tool, mm_tool_profiles *p, const char *arg) {
    if (p->n == MM_TOOL_MAX_PROFILES || !strchr(arg, '=')) {
        fprintf(stderr, "%s: --profile takes MODALITY=SPEC (at most %d)\n", tool,
                MM_TOOL_MAX_PROFILES);
        return 1;
    }
    p->spec[p->n++] = arg;
    return 0;
}

int mm_tool_profiles_apply(const char *tool, const mm_tool_profiles *p, const char *out_type,
                           mmgeo_job *job) {
    char err[512];
    for (int k = 0; k < p->n; k++) {
        const char *eq = strchr(p->spec[k], '=');
        char mod[64];
        snprintf(mod, sizeof mod, "%.*s", (int)(eq - p->spec[k]), p->spec[k]);
        mmgeo_profile *ps[2 * MMGEO_MAX_IO];
        int np = 0;
        for (int i = 0; i < job->n_sources; i++)
            if (!strcmp(job->sources[i].modality, mod)) ps[np++] = &job->sources[i].profile;
        for (int i = 0; i < job->n_targets; i++)
            if (!strcmp(job->targets[i].modality, mod)) ps[np++] = &job->targets[i].profile;
        if (!np) {
            fprintf(stderr, "%s: --profile %s: no source or target is '%s'\n", tool, p->spec[k],
                    mod);
            return -1;
        }
        for (int i = 0; i < np; i++)
            if (mmgeo_profile_parse(eq + 1, ps[i], err, sizeof err)) {
                fprintf(stderr, "%s: --profile %s: %s\n", tool, p->spec[k], err);
                return -1;
            }
    }
    if (out_type) { /* the settings' rule for -ot (mmgeo_settings.h) */
        mmgeo_settings s;
        mmgeo_settings_init(&s, 0);
        if (mmgeo_settings_set(&s, "ot", out_type)) {
            fprintf(stderr, "%s: %s\n", tool, mmgeo_settings_errmsg(&s));
            return -1;
        }
        job->targets[0].profile.out_type = s.out_type;
    }
    return 0;
}
