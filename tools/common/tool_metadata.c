#define _GNU_SOURCE /* realpath */
/* The tools' provenance items (tool_metadata.h). */
#include "tool_metadata.h"

#include <cpl_conv.h>
#include <cpl_string.h>
#include <stdio.h>
#include <stdlib.h>

char **mm_tool_md_sources(char **md, const mmgeo_job *job) {
    char *v = CPLStrdup("");
    for (int i = 0; i < job->n_sources; i++) {
        const char *path = job->sources[i].path;
        char *abs = realpath(path, NULL);
        char *w = CPLStrdup(
            CPLSPrintf("%s%s%s:%s", v, i ? ";" : "", job->sources[i].modality, abs ? abs : path));
        free(abs);
        CPLFree(v);
        v = w;
    }
    md = CSLSetNameValue(md, "MM_SOURCE", v);
    CPLFree(v);
    return md;
}

char **mm_tool_md_tiling(char **md, const mm_sample_params *p, const char *processor,
                         const mm_model *model, int window, int overlap, int seamless) {
    char buf[64];
    if (p) {
        snprintf(buf, sizeof buf, "%llu", (unsigned long long)p->seed);
        md = CSLSetNameValue(md, "MM_SEED", buf);
        snprintf(buf, sizeof buf, "%d", p->steps);
        md = CSLSetNameValue(md, "MM_STEPS", buf);
        snprintf(buf, sizeof buf, "%g", (double)p->guidance);
        md = CSLSetNameValue(md, "MM_GUIDANCE", buf);
        md = CSLSetNameValue(md, "MM_SAMPLER", mm_sampler_name(p->sampler));
    } else {
        md = CSLSetNameValue(md, "MM_PROCESSOR", processor);
    }
    snprintf(buf, sizeof buf, "%d", window);
    md = CSLSetNameValue(md, "MM_WINDOW", buf);
    int ov = overlap >= 0 ? overlap : window / 4;
    if (seamless) {
        const int f = window / mm_model_latent_size(model);
        ov = ov / f * f;
    }
    snprintf(buf, sizeof buf, "%d", ov);
    md = CSLSetNameValue(md, "MM_OVERLAP", buf);
    return CSLSetNameValue(md, "MM_TILING", seamless ? "seamless" : "blend");
}
