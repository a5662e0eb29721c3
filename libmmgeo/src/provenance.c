/* The provenance every tool writes about the model it ran (docs/tools.md, "Output"). */
#define _POSIX_C_SOURCE 200809L
#include <cpl_string.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

int mmgeo_model_provenance(char ***md, const char *tool, const char *model_path,
                           const mm_model *model, char *err, size_t errlen) {
    char hex[65], version[128];
    if (mmgeo_sha256_file(model_path, hex, err, errlen)) return MMGEO_ERROR;
    const char *base = strrchr(model_path, '/');
    snprintf(version, sizeof version, "%s %s", tool, MM_VERSION_STRING);
    *md = CSLSetNameValue(*md, "MM_TOOL", version);
    *md = CSLSetNameValue(*md, "MM_MODEL", base ? base + 1 : model_path);
    *md = CSLSetNameValue(*md, "MM_MODEL_NAME", mm_model_name(model));
    *md = CSLSetNameValue(*md, "MM_MODEL_SHA256", hex);
    return 0;
}
