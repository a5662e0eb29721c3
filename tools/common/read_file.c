#include "read_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *mm_read_text_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0, n;
    char chunk[65536];
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            char *nb = cap > (64u << 20) ? NULL : realloc(buf, cap);
            if (!nb) {
                if (cap > (64u << 20)) errno = EFBIG;
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        memcpy(buf + len, chunk, n);
        len += n;
    }
    const int bad = ferror(f);
    fclose(f);
    if (bad) { /* errno from fread */
        free(buf);
        return NULL;
    }
    if (!buf)
        buf = calloc(1, 1);
    else
        buf[len] = 0;
    return buf;
}
