/* libFuzzer harness for the safetensors reader (libmm/src/safetensors.c).
 *
 *   clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
 *         -Ilibmm/src libmm/src/safetensors.c tests/fuzz/fuzz_safetensors.c -lcjson \
 *         -o fuzz_safetensors
 *   ./fuzz_safetensors -dict=tests/fuzz/safetensors.dict tests/fuzz/corpus
 *
 * Without libFuzzer (any compiler), -DMM_ST_FUZZ_MAIN builds a driver that runs the files named
 * on the command line through the same checks (for replaying crashes or the corpus). CMake builds
 * both (tests/fuzz/CMakeLists.txt; the libFuzzer target with clang or -DMM_FUZZ=ON): README.md. */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"

#define CHECK(c)                                                                                  \
    do {                                                                                          \
        if (!(c)) {                                                                               \
            fprintf(stderr, "check failed: %s (line %d)\n", #c, __LINE__);                       \
            abort();                                                                              \
        }                                                                                         \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mm_st_file *f = NULL;
    char err[512];
    memset(err, 'X', sizeof err);
    if (mm_st_open_memory(size ? data : NULL, size, &f, err, sizeof err) != 0) {
        CHECK(f == NULL);
        CHECK(memchr(err, 0, sizeof err) != NULL);
        CHECK(strncmp(err, "<memory>: ", 10) == 0 && strlen(err) > 12);
        return 0;
    }
    CHECK(f != NULL);
    uint64_t n = 0;
    for (int k = 7; k >= 0; k--)
        n = (n << 8) | data[k];
    const uint8_t *pos = data + 8 + n;
    size_t cnt = mm_st_count(f);
    for (size_t i = 0; i < cnt; i++) {
        const mm_st_tensor *t = mm_st_get(f, i);
        CHECK(t && t->name && t->name[0] && strlen(t->name) <= MM_ST_MAX_NAME);
        CHECK(t->ndim >= 0 && t->ndim <= MM_ST_MAX_DIMS);
        CHECK(mm_st_dtype_size(t->dtype) != 0);
        uint64_t numel = 1;
        for (int d = 0; d < t->ndim; d++) {
            CHECK(t->shape[d] >= 0);
            CHECK(!__builtin_mul_overflow(numel, (uint64_t)t->shape[d], &numel));
        }
        CHECK(t->numel >= 0 && (uint64_t)t->numel == numel);
        CHECK(t->nbytes == (size_t)t->numel * mm_st_dtype_size(t->dtype));
        CHECK((const uint8_t *)t->data == pos);
        pos += t->nbytes;
        CHECK(mm_st_find(f, t->name) == t);
        if (t->numel > 0) {
            float *tmp = malloc((size_t)t->numel * sizeof *tmp);
            CHECK(tmp != NULL);
            mm_st_to_f32(t, tmp);
            free(tmp);
        }
    }
    CHECK(pos == data + size);
    CHECK(mm_st_get(f, cnt) == NULL);
    (void)mm_st_metadata(f, "config");
    mm_st_close(f);
    return 0;
}

#ifdef MM_ST_FUZZ_MAIN
int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        FILE *fp = fopen(argv[i], "rb");
        if (!fp) {
            perror(argv[i]);
            return 1;
        }
        size_t cap = 1 << 16, len = 0;
        uint8_t *buf = malloc(cap);
        size_t r;
        while (buf && (r = fread(buf + len, 1, cap - len, fp)) > 0) {
            len += r;
            if (len == cap) {
                uint8_t *nb = realloc(buf, cap *= 2);
                if (!nb)
                    free(buf);
                buf = nb;
            }
        }
        fclose(fp);
        if (!buf)
            return 1;
        uint8_t *exact = malloc(len ? len : 1); /* exact size: overreads are caught */
        if (!exact)
            return 1;
        memcpy(exact, buf, len);
        free(buf);
        LLVMFuzzerTestOneInput(exact, len);
        free(exact);
    }
    printf("%d input(s) ok\n", argc - 1);
    return 0;
}
#endif
