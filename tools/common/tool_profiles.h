/* The --profile MODALITY=SPEC and -ot options of the tools that read or write rasters through
 * modality I/O profiles (mm_translate, mm_generate, mm_baseline), in one place. */
#ifndef MM_TOOLS_TOOL_PROFILES_H
#define MM_TOOLS_TOOL_PROFILES_H
#include "mmgeo.h"

/* --profile MODALITY=SPEC overrides, kept as given until the job's sources and targets (and so
 * their modalities) are known. */
#define MM_TOOL_MAX_PROFILES 16
typedef struct {
    const char *spec[MM_TOOL_MAX_PROFILES];
    int n;
} mm_tool_profiles;
/* Records one --profile value: 0, or 1 after a message when it is malformed or one too many. */
int mm_tool_profile_add(const char *tool, mm_tool_profiles *p, const char *arg);
/* Parses each override into the profile of every source and target of job whose modality it
 * names (an override that names none is an error), then -ot out_type (NULL: none) into the first
 * target's. Returns 0, or -1 after a message on stderr. */
int mm_tool_profiles_apply(const char *tool, const mm_tool_profiles *p, const char *out_type,
                           mmgeo_job *job);

#endif
