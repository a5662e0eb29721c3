/* Output files written under a temporary name and renamed onto the final one only when complete,
 * so that a failed or interrupted write never leaves a half-written file under the name a script
 * or pipeline will read next. */
#ifndef MM_TOOLS_PART_FILE_H
#define MM_TOOLS_PART_FILE_H
#include <stdio.h>

/* Opens "<path>.part" with fopen's mode; NULL (errno set) when it cannot. */
FILE *mm_part_open(const char *path, const char *mode);
/* Closes f (from mm_part_open(path, ...)) and renames it onto path. Returns 0 on success; on any
 * write, close or rename error removes the temporary file and returns non-zero. */
int mm_part_commit(FILE *f, const char *path);
/* Writes text and a newline into path the same way (mm_part_open, then mm_part_commit): a JSON
 * document from cJSON_Print, a small text file. Returns 0 on success; non-zero with errno set
 * (ENOMEM when text is NULL, as after a failed cJSON_Print) when nothing was written. */
int mm_part_write_text(const char *path, const char *text);
/* The same for the JSON document j, as cJSON_Print formats it (ENOMEM when it cannot). */
struct cJSON;
int mm_part_write_json(const char *path, const struct cJSON *j);

#endif
