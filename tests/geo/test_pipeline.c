/*
 * The I/O pipeline of a run (libmmgeo/src/pipeline.c): windows read ahead by the reader thread
 * are bit for bit what a direct read gives, also when the run skips windows of the sequence or
 * asks for one outside it; a failed write queued for the writer thread is reported (with GDAL's
 * message) by the next write or the flush; and a whole run writes the same bytes with the
 * pipeline as without it (MMGEO_PIPELINE=0), masks and nodata included.
 */
#include <gdal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "internal.h"
#include "pipeline.h"
#include "rasters.h"

static char dir[256];

static const char *path_in(const char *name) {
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static const raster_spec spec = {150, 117, 3, GDT_UInt16, GEO_UTM, 0, 0, 1, "rgb"};

static void open_src(const char *p, mmgeo_source *s, mmgeo_src *src) {
    memset(s, 0, sizeof *s);
    s->path = p;
    s->modality = "rgb";
    mmgeo_profile_default("rgb", GDT_UInt16, &s->profile);
    memset(src, 0, sizeof *src);
    char err[512];
    if (mmgeo_open_source(s, 3, src, err, sizeof err)) fail_msg("open: %s", err);
}

static void test_reader(void **state) {
    (void)state;
    const char *p = path_in("pipe_in.tif");
    assert_int_equal(raster_write(p, &spec), 0);
    mmgeo_source s;
    mmgeo_src src, direct;
    open_src(p, &s, &src);
    open_src(p, &s, &direct); /* its own handle: the reader owns src's */
    enum { S = 32, NX = 6, NY = 5 };
    const int ox[NX] = {0, 24, 48, 72, 96, 120}, oy[NY] = {0, 24, 48, 72, 96};
    const int ch[1] = {3};
    /* batch 1: a ring smaller than a strip row plus the batch would need a wider raster; the
     * row of 6 windows still fills it, so the reader waits for the caller too */
    mmgeo_pipe *pipe =
        mmgeo_pipe_start(&src, 1, ch, spec.width, spec.height, S, ox, 0, NX - 1, oy, 0, NY - 1, 1);
    assert_non_null(pipe);
    const size_t plane = (size_t)S * S;
    float *a = malloc(3 * plane * sizeof(float)), *b = malloc(3 * plane * sizeof(float));
    uint8_t *va = malloc(plane), *vb = malloc(plane), *mraw = malloc(plane);
    double *raw = malloc(2 * plane * sizeof(double));
    char err[512];
    int got = 0;
    for (int ky = 0; ky < NY; ky++)
        for (int kx = 0; kx < NX; kx++) {
            if ((kx + 2 * ky) % 3 == 1) continue; /* skipped by the "run" */
            /* a validity that is already partly 0 (as an AOI makes it) */
            for (size_t k = 0; k < plane; k++)
                va[k] = vb[k] = (k % 7) != 0;
            assert_int_equal(mmgeo_pipe_read_window(pipe, 0, &src, spec.width, spec.height, S,
                                                    ox[kx], oy[ky], a, va, raw, mraw, err,
                                                    sizeof err),
                             0);
            assert_int_equal(mmgeo_read_window(&direct, spec.width, spec.height, S, ox[kx], oy[ky],
                                               b, vb, raw, mraw, err, sizeof err),
                             0);
            assert_memory_equal(a, b, 3 * plane * sizeof(float));
            assert_memory_equal(va, vb, plane);
            got++;
        }
    assert_true(got > 15);
    mmgeo_pipe_free(pipe);
    /* a window outside the sequence, after the reader has finished: read directly */
    pipe = mmgeo_pipe_start(&src, 1, ch, spec.width, spec.height, S, ox, 0, 0, oy, 0, 0, 1);
    assert_non_null(pipe);
    memset(va, 1, plane), memset(vb, 1, plane);
    assert_int_equal(mmgeo_pipe_read_window(pipe, 0, &src, spec.width, spec.height, S, 50, 60, a,
                                            va, raw, mraw, err, sizeof err),
                     0);
    assert_int_equal(mmgeo_read_window(&direct, spec.width, spec.height, S, 50, 60, b, vb, raw,
                                       mraw, err, sizeof err),
                     0);
    assert_memory_equal(a, b, 3 * plane * sizeof(float));
    assert_memory_equal(va, vb, plane);
    mmgeo_pipe_free(pipe);
    GDALClose(src.ds), GDALClose(direct.ds);
    free(a), free(b), free(va), free(vb), free(mraw), free(raw);
}

static void test_writer_error(void **state) {
    (void)state;
    const char *p = path_in("pipe_ro.tif");
    assert_int_equal(raster_write(p, &spec), 0);
    GDALDatasetH ro = GDALOpen(p, GA_ReadOnly);
    assert_non_null(ro);
    setenv("MMGEO_PIPELINE", "1", 1);
    mmgeo_pipe *pipe = mmgeo_pipe_start(NULL, 0, NULL, 0, 0, 1, NULL, 0, -1, NULL, 0, -1, 1);
    assert_non_null(pipe);
    double line[3 * 10];
    memset(line, 0, sizeof line);
    /* the writer thread reports through the global handler (handler stacks are per thread) */
    CPLErrorHandler old = CPLSetErrorHandler(CPLQuietErrorHandler);
    /* queued: the failure shows at the latest when the queue is flushed */
    CPLErr e = mmgeo_pipe_write(pipe, ro, NULL, 0, 0, 10, 1, line, GDT_Float64, 3);
    if (e == CE_None) e = mmgeo_pipe_flush(pipe);
    CPLSetErrorHandler(old);
    assert_int_equal(e, CE_Failure);
    printf("a failed queued write reports: %s\n", CPLGetLastErrorMsg());
    assert_true(strlen(CPLGetLastErrorMsg()) > 0);
    /* and every later write too */
    CPLErrorReset();
    assert_int_equal(mmgeo_pipe_write(pipe, ro, NULL, 0, 1, 10, 1, line, GDT_Float64, 3),
                     CE_Failure);
    assert_true(strlen(CPLGetLastErrorMsg()) > 0);
    mmgeo_pipe_free(pipe);
    GDALClose(ro);
}

/* every band's values and the mask, as bytes */
static void *slurp(const char *p, size_t *n) {
    GDALDatasetH d = GDALOpen(p, GA_ReadOnly);
    assert_non_null(d);
    const int W = GDALGetRasterXSize(d), H = GDALGetRasterYSize(d), B = GDALGetRasterCount(d);
    *n = (size_t)W * H * (B * sizeof(double) + 1);
    uint8_t *buf = malloc(*n);
    assert_non_null(buf);
    assert_int_equal(
        GDALDatasetRasterIO(d, GF_Read, 0, 0, W, H, buf, W, H, GDT_Float64, B, NULL, 0, 0, 0),
        CE_None);
    GDALRasterBandH m = GDALGetMaskBand(GDALGetRasterBand(d, 1));
    assert_int_equal(GDALRasterIO(m, GF_Read, 0, 0, W, H, buf + (size_t)W * H * B * sizeof(double),
                                  W, H, GDT_Byte, 0, 0),
                     CE_None);
    GDALClose(d);
    return buf;
}

static void run_once(const char *in, const char *out, const char *pipeline, int batch) {
    setenv("MMGEO_PIPELINE", pipeline, 1);
    mmgeo_job job;
    mmgeo_job_init(&job);
    job.overlap = 8;
    job.batch = batch;
    job.n_sources = 1;
    job.sources[0].path = in;
    job.sources[0].modality = "rgb";
    mmgeo_profile_default("rgb", GDT_UInt16, &job.sources[0].profile);
    job.n_targets = 2;
    job.targets[0].path = out;
    job.targets[0].modality = "rgb";
    mmgeo_profile_default("rgb", GDT_Unknown, &job.targets[0].profile);
    char out2[600];
    snprintf(out2, sizeof out2, "%s.second.tif", out);
    job.targets[1].path = out2;
    job.targets[1].modality = "sar";
    mmgeo_profile_default("sar", GDT_Unknown, &job.targets[1].profile);
    mmgeo_processor proc = {mmgeo_process_negate, NULL, 32, 1, 2, {3}, {3, 1}};
    proc.user = &proc;
    char err[1024];
    if (mmgeo_run(&job, &proc, err, sizeof err)) fail_msg("run (pipeline %s): %s", pipeline, err);
}

static void test_run_identical(void **state) {
    (void)state;
    char in[512];
    snprintf(in, sizeof in, "%s", path_in("pipe_run_in.tif"));
    assert_int_equal(raster_write(in, &spec), 0);
    const int batches[2] = {1, 4};
    for (int k = 0; k < 2; k++) {
        const char *a = path_in("pipe_off.tif"), *b = path_in("pipe_on.tif");
        run_once(in, a, "0", batches[k]);
        run_once(in, b, "1", batches[k]);
        for (int t = 0; t < 2; t++) {
            char pa[600], pb[600];
            snprintf(pa, sizeof pa, t ? "%s.second.tif" : "%s", a);
            snprintf(pb, sizeof pb, t ? "%s.second.tif" : "%s", b);
            size_t na, nb;
            void *da = slurp(pa, &na), *db = slurp(pb, &nb);
            assert_int_equal(na, nb);
            assert_memory_equal(da, db, na);
            free(da), free(db);
        }
    }
    unsetenv("MMGEO_PIPELINE");
}

int main(void) {
    GDALAllRegister();
    snprintf(dir, sizeof dir, "/tmp/mm_test_pipeline_%ld", (long)getpid());
    if (mkdir(dir, 0700)) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reader),
        cmocka_unit_test(test_writer_error),
        cmocka_unit_test(test_run_identical),
    };
    const int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
    return rc;
}
