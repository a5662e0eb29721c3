/* Shared command-line helpers of the tools (option parsing itself is getopt_long). */
#ifndef MM_TOOLS_ARGS_H
#define MM_TOOLS_ARGS_H
#include <stdint.h>

#include "mm.h"

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
