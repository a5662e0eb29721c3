#define _XOPEN_SOURCE 700 /* POSIX 2008 with realpath */
#include "args.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef MM_REL_DATADIR /* from bindir to the installed data (CMakeLists.txt) */
#define MM_REL_DATADIR "../share/metaearth-mm"
#endif
#ifndef MM_SOURCE_DIR
#define MM_SOURCE_DIR "."
#endif

void mm_args_help_general(FILE *f) {
    fputs("Options common to all MetaEarth-MM tools:\n"
          "  --version        print the tool's version (and libmm's) and exit\n"
          "  --help           print the tool's usage and exit\n"
          "  --help-general   print these common options and exit\n",
          f);
}

int mm_args_general(const char *tool, int argc, char **argv, void (*usage)(FILE *),
                    const char *lib, const char *lib_version) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) break;
        if (!strcmp(a, "--version")) {
            printf("%s %s (libmm %s%s%s%s%s)\n", tool, MM_VERSION_STRING, mm_version(),
                   lib ? ", " : "", lib ? lib : "", lib ? " " : "",
                   lib && lib_version ? lib_version : "");
            return 1;
        }
        if (!strcmp(a, "--help")) {
            usage(stdout);
            return 1;
        }
        if (!strcmp(a, "--help-general")) {
            mm_args_help_general(stdout);
            return 1;
        }
    }
    return 0;
}

const char *mm_tool_data_file(const char *name, const char *source_rel, char *buf, size_t len) {
    char exe[4096];
    const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    int have_exe = 0;
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            have_exe = 1;
            snprintf(buf, len, "%s/%s/%s", exe, MM_REL_DATADIR, name);
            if (access(buf, F_OK) == 0) { /* an installed prefix, wherever it is now */
                char *real = realpath(buf, NULL);
                if (real && strlen(real) < len) strcpy(buf, real);
                free(real);
                return buf;
            }
        }
    }
    char src[4096];
    snprintf(src, sizeof src, "%s/%s", MM_SOURCE_DIR, source_rel);
    if (access(src, F_OK) == 0 || !have_exe) /* the build tree's fallback */
        snprintf(buf, len, "%s", src);
    return buf; /* neither: the installed path, so that the message names where it belongs */
}

const char *mm_tool_default_model(void) {
    static char path[8192];
    return mm_tool_data_file("default.safetensors", "models/default.safetensors", path,
                             sizeof path);
}

int mm_arg_int(const char *tool, const char *what, const char *s, long lo, long hi, int *out) {
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || !*s || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "%s: %s must be an integer in %ld..%ld, got '%s'\n", tool, what, lo, hi,
                s ? s : "");
        return 1;
    }
    *out = (int)v;
    return 0;
}

int mm_arg_u64(const char *tool, const char *what, const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = s ? strtoull(s, &end, 0) : 0;
    if (!s || !*s || *end || errno || s[0] == '-') {
        fprintf(stderr, "%s: %s must be a non-negative integer, got '%s'\n", tool, what,
                s ? s : "");
        return 1;
    }
    *out = (uint64_t)v;
    return 0;
}

int mm_arg_float(const char *tool, const char *what, const char *s, double lo, double hi,
                 float *out) {
    char *end;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    if (!s || !*s || *end || errno || !isfinite(v) || v < lo || v > hi) {
        fprintf(stderr, "%s: %s must be a number in [%g, %g], got '%s'\n", tool, what, lo, hi,
                s ? s : "");
        return 1;
    }
    *out = (float)v;
    return 0;
}

int mm_arg_double(const char *tool, const char *what, const char *s, double *out) {
    char *end;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    if (!s || !*s || *end || errno || !isfinite(v)) {
        fprintf(stderr, "%s: %s must be a number, got '%s'\n", tool, what, s ? s : "");
        return 1;
    }
    *out = v;
    return 0;
}

int mm_arg_srcwin(const char *tool, const char *first, int argc, char **argv, int *next,
                  int out[4]) {
    static const char *what[4] = {"-srcwin XOFF", "-srcwin YOFF", "-srcwin XSIZE", "-srcwin YSIZE"};
    const char *v[4] = {first, NULL, NULL, NULL};
    for (int i = 1; i < 4; i++)
        v[i] = *next < argc ? argv[(*next)++] : NULL;
    for (int i = 0; i < 4; i++)
        if (mm_arg_int(tool, what[i], v[i], i < 2 ? 0 : 1, INT_MAX, &out[i])) return 1;
    return 0;
}

int mm_arg_projwin(const char *tool, const char *first, int argc, char **argv, int *next,
                   double out[4]) {
    static const char *what[4] = {"-projwin ULX", "-projwin ULY", "-projwin LRX", "-projwin LRY"};
    const char *v[4] = {first, NULL, NULL, NULL};
    for (int i = 1; i < 4; i++)
        v[i] = *next < argc ? argv[(*next)++] : NULL;
    for (int i = 0; i < 4; i++)
        if (mm_arg_double(tool, what[i], v[i], &out[i])) return 1;
    return 0;
}

int mm_arg_device(const char *tool, const char *s, mm_device *out) {
    if (!s) s = getenv("MM_DEVICE");
    if (!s || !strcmp(s, "cpu"))
        *out = MM_DEVICE_CPU;
    else if (!strcmp(s, "cuda"))
        *out = MM_DEVICE_CUDA;
    else {
        fprintf(stderr, "%s: unknown device '%s' (cpu or cuda)\n", tool, s);
        return 1;
    }
    return 0;
}

int mm_arg_precision(const char *tool, const char *s, mm_precision *out) {
    if (!strcmp(s, "bf16"))
        *out = MM_PRECISION_BF16;
    else if (!strcmp(s, "fp32"))
        *out = MM_PRECISION_FP32;
    else {
        fprintf(stderr, "%s: unknown precision '%s' (bf16 or fp32)\n", tool, s);
        return 1;
    }
    return 0;
}

mm_model *mm_tool_open_model(const char *tool, const char *path) {
    mm_model *m = NULL;
    char *err = NULL;
    if (mm_model_open(path, &m, &err) != MM_OK) {
        fprintf(stderr, "%s: %s\n", tool, err ? err : "cannot open the model");
        mm_free(err);
        return NULL;
    }
    return m;
}

mm_context *mm_tool_create_context(const char *tool, mm_model *model, const mm_context_params *cp) {
    mm_context *ctx = NULL;
    char *err = NULL;
    if (mm_context_create(model, cp, &ctx, &err) != MM_OK) {
        fprintf(stderr, "%s: %s\n", tool, err ? err : "cannot create a context");
        mm_free(err);
        return NULL;
    }
    return ctx;
}

double mm_now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}
