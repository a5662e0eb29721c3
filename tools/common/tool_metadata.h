/* The provenance items the tools add to their outputs' metadata beyond the model's
 * (mmgeo_model_provenance), written in one place so that mm_translate, mm_generate, mm_embed and
 * mm_baseline record them alike. */
#ifndef MM_TOOLS_TOOL_METADATA_H
#define MM_TOOLS_TOOL_METADATA_H
#include "mm.h"
#include "mmgeo.h"

/* MM_SOURCE: the job's sources as MODALITY:ABSOLUTE_PATH, separated by ';'. Returns md. */
char **mm_tool_md_sources(char **md, const mmgeo_job *job);
/* How the windows were made and tiled: MM_SEED, MM_STEPS, MM_GUIDANCE and MM_SAMPLER of p (NULL:
 * a test processor, recorded as MM_PROCESSOR processor instead), MM_WINDOW window, MM_OVERLAP
 * (overlap, or < 0 the default quarter window; with seamless rounded down to whole latent cells
 * of model as mmgeo_run_seamless does) and MM_TILING. Returns md. */
char **mm_tool_md_tiling(char **md, const mm_sample_params *p, const char *processor,
                         const mm_model *model, int window, int overlap, int seamless);

#endif
