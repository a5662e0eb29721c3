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
/* The same for a command with several sources (-s MODALITY:FILE ...): every source's SHA-256 is
 * part of the key (input_sha256 the first's, sources_sha256 all of them when there are several),
 * so a change to any source invalidates the stamp. NULL when a source or the model cannot be
 * read. */
char *mm_batch_stamp_key_sources(const mm_translate_cmd *c, cJSON **fields);
char *mm_batch_stamp_key_hexes(const mm_translate_cmd *c, const char *const *in_hex, int n,
                               const char *model_hex, cJSON **fields);
/* 1 when the stamp at sp has key and the output it describes is there unchanged. */
int mm_batch_stamp_matches(const char *sp, const char *key, const char *output);
/* Writes the stamp sp of output (made from input by task); 0, or -1 after a message. */
int mm_batch_write_stamp(const char *sp, const char *key, cJSON *fields, const char *input,
                         const char *task, const char *output);

/* A STAC manifest (batch_stac.c): one entry per STAC Item. */
typedef struct {
    char *id;     /* the Item's id (or, when it could not be read, its file name) */
    char *input;  /* the chosen asset's href, resolved (NULL with error) */
    char *asset;  /* the chosen asset's key */
    char *href;   /* the source Item: its file (absolute), its self link, or the ItemCollection */
    char *where;  /* for messages: the Item's file, or "feature N" of an ItemCollection */
    char *error;  /* why the Item cannot be run (its file unreadable, no or an ambiguous asset) */
    cJSON *item;  /* the Item (NULL when it could not be read) */
} mm_batch_stac_entry;
/* 1 when root is a STAC ItemCollection (a FeatureCollection), 2 a Catalog or Collection, else 0. */
int mm_batch_stac_kind(const cJSON *root);
/* The entries of the STAC manifest at path, parsed as root: an ItemCollection's features, or a
 * Catalog's items (links rel item) and those of its children (rel child, recursively; relative
 * hrefs against the file that holds them; a child linking back to a catalog above it is an error).
 * The input is the asset asset_key, else the one with role data, else the only GeoTIFF; an Item
 * without one (or with several) gets an error and the rest go on. Returns 0, or -1 after msg (a
 * bad catalog: nothing is run). */
int mm_batch_read_stac(const char *path, cJSON *root, const char *asset_key,
                       mm_batch_stac_entry **out, int *n, char *msg, size_t len);
void mm_batch_stac_free(mm_batch_stac_entry *v, int n);

/* mm_batch plan | chunk | stitch ARGS: argv[0] is the subcommand. Returns the exit status. */
int mm_batch_plan_main(int argc, char **argv);
/* The subcommands' lines of mm_batch's --help. */
void mm_batch_plan_usage(FILE *f);

#endif
