/* Shared command-line helpers of the tools (option parsing itself is getopt_long). */
#ifndef MM_TOOLS_ARGS_H
#define MM_TOOLS_ARGS_H
#include <stdint.h>
#include <stdio.h>

#include "mm.h"

/* The options every tool answers as GDAL's utilities answer theirs, before its own parsing:
 * --version (a line "<tool> <version> (libmm <version>[, <lib> <lib_version>])"), --help (usage(stdout))
 * and --help-general (the options common to all the tools), the first of them among the
 * arguments before "--", each printed to stdout. Returns 1 when one was given (the tool exits
 * with status 0), else 0. lib, lib_version: a library named in the version line as well
 * ("GDAL", GDALVersionInfo("RELEASE_NAME") in the tools that link GDAL), or NULL. */
int mm_args_general(const char *tool, int argc, char **argv, void (*usage)(FILE *),
                    const char *lib, const char *lib_version);
/* The text of --help-general, for the tools' usage. */
void mm_args_help_general(FILE *f);

/* The default model: models/default.safetensors as installed, <bindir>/MM_REL_DATADIR/
 * default.safetensors from the running executable (/proc/self/exe), so that an installed prefix
 * can be moved; else, when that file is not there (a tool run from the build tree), the source
 * tree's models/default.safetensors (MM_SOURCE_DATADIR). $MM_MODEL is the caller's to consult
 * first. The string is static. */
const char *mm_tool_default_model(void);
/* A data file installed beside the default model (share/metaearth-mm/NAME), found as
 * mm_tool_default_model finds it; the source tree's copy is source_rel under the source tree. */
const char *mm_tool_data_file(const char *name, const char *source_rel, char *buf, size_t len);
/* tool_opts.c's default for --model */
#define MM_DEFAULT_MODEL mm_tool_default_model()

/* Strict number parsing: the whole string must be a number within [lo, hi]; otherwise prints
 * "<tool>: <what> must be ..." to stderr and returns non-zero. */
int mm_arg_int(const char *tool, const char *what, const char *s, long lo, long hi, int *out);
int mm_arg_u64(const char *tool, const char *what, const char *s, uint64_t *out);
int mm_arg_float(const char *tool, const char *what, const char *s, double lo, double hi,
                 float *out);
/* Any finite number. */
int mm_arg_double(const char *tool, const char *what, const char *s, double *out);
/* The four values of -srcwin XOFF YOFF XSIZE YSIZE / -projwin ULX ULY LRX LRY: first is the
 * option's argument, the other three are taken from argv[*next..] (advancing *next). */
int mm_arg_srcwin(const char *tool, const char *first, int argc, char **argv, int *next,
                  int out[4]);
int mm_arg_projwin(const char *tool, const char *first, int argc, char **argv, int *next,
                   double out[4]);
/* "cpu" / "cuda" (also from MM_DEVICE when s is NULL). */
int mm_arg_device(const char *tool, const char *s, mm_device *out);
/* "bf16" / "fp32". */
int mm_arg_precision(const char *tool, const char *s, mm_precision *out);
/* Opens a model or prints the library's message and returns NULL. */
mm_model *mm_tool_open_model(const char *tool, const char *path);
/* A context for model with cp, or prints the library's message and returns NULL. */
mm_context *mm_tool_create_context(const char *tool, mm_model *model, const mm_context_params *cp);
double mm_now_seconds(void);
#endif
