#include "part_file.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>

/* The temporary name beside path; 0 when it does not fit. */
static int part_name(const char *path, char *tmp, size_t n) {
    const int len = snprintf(tmp, n, "%s.part", path);
    return len > 0 && (size_t)len < n;
}

FILE *mm_part_open(const char *path, const char *mode) {
    char tmp[4200];
    if (!part_name(path, tmp, sizeof tmp)) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    return fopen(tmp, mode);
}

int mm_part_commit(FILE *f, const char *path) {
    char tmp[4200];
    part_name(path, tmp, sizeof tmp); /* fitted when mm_part_open made f */
    /* ferror first: fclose can succeed after an earlier fprintf failed (disk full) */
    int bad = ferror(f) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        remove(tmp);
        return 1;
    }
    return 0;
}

int mm_part_write_text(const char *path, const char *text) {
    if (!text) {
        errno = ENOMEM;
        return 1;
    }
    FILE *f = mm_part_open(path, "w");
    if (!f) return 1;
    fputs(text, f);
    fputc('\n', f);
    return mm_part_commit(f, path);
}

int mm_part_write_json(const char *path, const cJSON *j) {
    char *text = cJSON_Print(j);
    const int rc = mm_part_write_text(path, text);
    const int e = errno;
    cJSON_free(text);
    errno = e;
    return rc;
}
