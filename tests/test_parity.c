/* See test_parity.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend.h"
#include "test_parity.h"

int mm_test_pick_device(const char *what, int *on_cuda) {
    const char *dev = getenv("MM_TEST_DEVICE");
    *on_cuda = 0;
    if (dev && !strcmp(dev, "cuda")) {
        char err[512] = "";
        mm_backend *be = mm_backend_cuda_create(0, 0, err, sizeof err);
        if (!be) {
            printf("SKIPPED: no CUDA device (%s)\n", err);
            return 77; /* ctest: SKIP_RETURN_CODE */
        }
        be->ops->destroy(be);
        *on_cuda = 1;
        printf("%s on the CUDA backend (fp32)\n", what);
    } else if (dev && *dev && strcmp(dev, "cpu")) {
        printf("MM_TEST_DEVICE must be cpu or cuda, got '%s'\n", dev);
        return 2;
    }
    return 0;
}

float *mm_test_tensor(mm_st_file *f, const char *name, size_t *n) {
    const mm_st_tensor *t = mm_st_find(f, name);
    if (!t) fail_msg("golden tensor '%s' missing", name);
    float *buf = malloc((size_t)t->numel * sizeof(float));
    assert_non_null(buf);
    mm_st_to_f32(t, buf);
    if (n) *n = (size_t)t->numel;
    return buf;
}
