/* Small helpers shared by the library's files. */
#ifndef MM_UTIL_H
#define MM_UTIL_H
#include <stddef.h>
#include <stdint.h>

/* *out = malloc'd formatted message (when out is not NULL and *out is NULL). */
void mm_set_errmsg(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "[2, 3, 4]" */
void mm_format_shape(char *buf, size_t len, int ndim, const int64_t *shape);
#endif
