/* mm_batch's parts shared between its files: the stamps of its outputs (mm_batch.c) and one scene
 * split into chunks for a Slurm job array (batch_plan.c: mm_batch plan, chunk, stitch). */
#ifndef MM_TOOLS_BATCH_H
#define MM_TOOLS_BATCH_H
#include <cjson/cJSON.h>
#include <stdio.h>

#include "translate_cmd.h"

/* OUTPUT.mmstamp.json */
char *mm_batch_stamp_path(const char *output);
/* The stamp's key of the parsed command c for the input at path (its SHA-256 and the model's
 * computed here; NULL when either cannot be read), or with the two SHA-256 given (a stitch checks
 * many chunks of one input); *fields receives the key's parts (cJSON_Delete). */
char *mm_batch_stamp_key(const mm_translate_cmd *c, const char *input, cJSON **fields);
char *mm_batch_stamp_key_hex(const mm_translate_cmd *c, const char *in_hex, const char *model_hex,
                             cJSON **fields);
/* 1 when the stamp at sp has key and the output it describes is there unchanged. */
int mm_batch_stamp_matches(const char *sp, const char *key, const char *output);
/* Writes the stamp sp of output (made from input by task); 0, or -1 after a message. */
int mm_batch_write_stamp(const char *sp, const char *key, cJSON *fields, const char *input,
                         const char *task, const char *output);

/* mm_batch plan | chunk | stitch ARGS: argv[0] is the subcommand. Returns the exit status. */
int mm_batch_plan_main(int argc, char **argv);
/* The subcommands' lines of mm_batch's --help. */
void mm_batch_plan_usage(FILE *f);

#endif
