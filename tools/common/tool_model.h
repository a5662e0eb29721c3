/* The model's side of the jobs of mm_translate, mm_generate and mm_embed, in one place: the model
 * opened with its geo settings and modality names, modalities named on the command line, source
 * rasters read in a modality, and the model as a job's processor. The messages are the same
 * whichever tool prints them. */
#ifndef MM_TOOLS_TOOL_MODEL_H
#define MM_TOOLS_TOOL_MODEL_H
#include "mm.h"
#include "mmgeo.h"
#include "tool_opts.h"

typedef struct {
    mm_model *model;
    mmgeo_model_geo geo;   /* the model's GSD range and I/O profiles (its config's "geo") */
    const char *names[32]; /* its modality names (mmgeo_model_modality_names) */
    int n_names;           /* how many it has */
    char have[512];        /* "rgb, sar, ...", for messages */
} mm_tool_model;

/* Opens the model at path with its geo settings and modality names. Returns 0, or -1 after a
 * message on stderr. m->model (NULL when it did not open) is the caller's to close. */
int mm_tool_model_open(const char *tool, const char *path, mm_tool_model *m);
/* The index of the modality name in the model, or -1 after "the model 'M' has no modality ...
 * (it has ...)". */
int mm_tool_modality(const char *tool, const mm_tool_model *m, const char *name);
/* Source s of a job: the raster at path with the -b bands of o, in the modality mod (NULL: from
 * the raster's MM_MODALITY item or its file name; how says in the message how the user names it
 * instead, e.g. "-s MODALITY"), read with the model's profile for that modality and the data type
 * of the raster's first selected band. Returns the modality's index, or -1 after a message. */
int mm_tool_model_source(const mm_tool_opts *o, const mm_tool_model *m, const char *path,
                         const char *mod, const char *how, mmgeo_source *s);
/* The model as proc (mmgeo_process_model over mp) for n_sources sources and n_targets targets
 * (their modalities already in mp), proc's window the model's: a context (*ctx, the caller's to
 * free) and sampling parameters from o, the working memory reserved in one block now. --batch 0
 * takes the batch from the free memory (written back into o->batch) and says so unless -q.
 * Returns 0, or -1 after a message on stderr. */
int mm_tool_model_processor(mm_tool_opts *o, mm_model *model, int n_sources, int n_targets,
                            mm_context **ctx, mmgeo_model_processor *mp, mmgeo_processor *proc);

#endif
