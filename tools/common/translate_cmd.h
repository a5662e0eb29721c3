/* mm_translate's command, parsed and run in one place, so that mm_batch runs each item of a
 * manifest exactly as mm_translate runs its command line: the same option parser (tool_opts.c and
 * mm_translate's own -s, -t, -ot), the same checks and messages, the same job. */
#ifndef MM_TOOLS_TRANSLATE_CMD_H
#define MM_TOOLS_TRANSLATE_CMD_H
#include <stdio.h>

#include "mmgeo.h"
#include "tool_opts.h"

typedef enum {
    MM_TR_TRANSLATE, /* mm_translate's command line: [SRC] DST */
    MM_TR_BATCH,     /* mm_batch's command line: its defaults, -j N, --report FILE, MANIFEST */
    MM_TR_ITEM       /* one item of a batch: the batch's defaults, the item's options, -- SRC DST */
} mm_tr_mode;

typedef struct {
    mm_tr_mode mode;
    mm_tool_opts opt; /* the options shared with mm_generate and mm_embed */
    const char *target_mod, *processor, *out_type; /* -t, --processor (test hook), -ot */
    const char *src_spec[MMGEO_MAX_IO];            /* -s MODALITY[:FILE] */
    int n_src_spec, window;                        /* --window (test hook) */
    /* MM_TR_BATCH: -j, --report, the manifest; --no-stac (stac 0), --catalog */
    int jobs;
    const char *report, *manifest, *catalog;
    /* a STAC item beside the output (tool_stac.h): --stac of mm_translate; on in a batch unless
     * --no-stac */
    int stac;
    /* MM_TR_ITEM, set by the caller before parsing: the task's modalities (NULL: from the file's
     * metadata or name) and how many arguments after argv[0] are the batch's defaults (-j and
     * --report are accepted there only) */
    const char *task_src, *task_tgt;
    int n_default_args;
    /* resolved: the sources and the output */
    const char *src_path[MMGEO_MAX_IO], *src_mod[MMGEO_MAX_IO];
    char modbuf[MMGEO_MAX_IO][64];
    int n_src;
    const char *dst_path;
} mm_translate_cmd;

/* Sets the defaults (the model from $MM_MODEL, else the default model). */
void mm_translate_cmd_init(mm_translate_cmd *c, const char *tool, mm_tr_mode mode);
/* Parses argv (getopt's state is reset first; argv may be permuted and must outlive c). Returns 0,
 * 1 after --help or --version (printed; exit status 0) or 2 after a message on stderr (a usage
 * error; usage(stderr) is printed too where mm_translate prints it). */
int mm_translate_cmd_parse(mm_translate_cmd *c, int argc, char **argv, void (*usage)(FILE *));
/* Runs the parsed command as mm_translate does; tool: the name in messages (the output's MM_TOOL
 * provenance is always mm_translate's). Returns the exit status (0, 1, or 130 when interrupted). */
int mm_translate_cmd_run(mm_translate_cmd *c, const char *tool);
void mm_translate_cmd_free(mm_translate_cmd *c);

#endif
