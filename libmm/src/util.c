#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "mm.h"

void mm_set_errmsg(char **out, const char *fmt, ...) {
    if (!out || *out) return;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(out, fmt, ap) < 0) *out = NULL;
    va_end(ap);
}

void mm_format_shape(char *buf, size_t len, int ndim, const int64_t *shape) {
    size_t pos = 0;
    pos += (size_t)snprintf(buf + pos, len - pos, "[");
    for (int i = 0; i < ndim && pos < len; i++)
        pos += (size_t)snprintf(buf + pos, len - pos, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (pos < len) snprintf(buf + pos, len - pos, "]");
}

void mm_free(void *p) {
    free(p);
}

const char *mm_version(void) {
    return MM_VERSION_STRING;
}

const char *mm_status_string(mm_status s) {
    switch (s) {
    case MM_OK: return "ok";
    case MM_ERROR_IO: return "I/O error";
    case MM_ERROR_FORMAT: return "malformed model file";
    case MM_ERROR_CONFIG: return "invalid model config";
    case MM_ERROR_ARGUMENT: return "invalid argument";
    case MM_ERROR_NOMEM: return "out of memory";
    case MM_ERROR_BACKEND: return "compute backend failure";
    case MM_ERROR_UNSUPPORTED: return "not supported by this build";
    case MM_ERROR_INTERRUPTED: return "interrupted";
    }
    return "unknown status";
}
