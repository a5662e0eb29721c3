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

/* libmm's mosaic (mm_mosaic_*, the device's accumulate/normalise kernels) against the blending
 * the geospatial layer does on the host (blend.c), bit for bit: the interface a run can move
 * its blending onto the device with. The context's device: MM_TEST_DEVICE (cpu by default). */
static void test_mosaic_matches_blend(void **state) {
    (void)state;
    mm_model *m = NULL;
    char *e = NULL;
    if (mm_model_open(MM_GOLDEN_DIR "/tiny_model.safetensors", &m, &e) != MM_OK)
        fail_msg("model: %s", e);
    mm_context_params cp;
    mm_context_params_default(&cp);
    const char *dev = getenv("MM_TEST_DEVICE");
    if (dev && !strcmp(dev, "cuda")) cp.device = MM_DEVICE_CUDA;
    mm_context *ctx = NULL;
    if (mm_context_create(m, &cp, &ctx, &e) != MM_OK) {
        printf("mosaic on %s not checked: %s\n", dev ? dev : "cpu", e);
        mm_free(e);
        mm_model_close(m);
        skip();
    }
    enum { So = 24, O = 6, Wd = 70, Ht = So, C = 2, NW = 4 };
    float w1[So];
    for (int i = 0; i < So; i++)
        w1[i] = mmgeo_blend_weight(i, So, O);
    const int wx0[NW] = {0, 18, 36, 54}; /* the grid of a row: the last runs past the strip */
    const size_t plane = (size_t)Wd * Ht, oplane = (size_t)So * So;
    float *res = malloc(sizeof(float) * NW * C * oplane), *wsum = calloc(plane, sizeof(float));
    float *acc = calloc(C * plane, sizeof(float)), *got = malloc(sizeof(float) * C * plane);
    float *gws = malloc(sizeof(float) * plane);
    assert_true(res && wsum && acc && got && gws);
    uint64_t r = 12345;
    for (size_t i = 0; i < (size_t)NW * C * oplane; i++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        res[i] = (float)((double)(r >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    }
    const int ch[1] = {C};
    for (int t = 0; t < NW; t++) {
        const float *rp[1] = {res + (size_t)t * C * oplane};
        float *ap[1] = {acc};
        mmgeo_blend_add(w1, So, wx0[t], 0, Wd, Ht, 0, 0, Wd, Ht, plane, 1, ch, rp, wsum, ap);
    }
    mm_mosaic *mo = NULL;
    assert_int_equal(mm_mosaic_create(ctx, C, Wd, Ht, So, w1, w1, &mo), MM_OK);
    const int y0[NW] = {0, 0, 0, 0};
    assert_int_equal(mm_mosaic_add(mo, NW, res, wx0, y0), MM_OK);
    assert_int_equal(mm_mosaic_read(mo, 0, Ht, 0.0f, got, gws), MM_OK);
    assert_memory_equal(gws, wsum, plane * sizeof(float));
    for (int c = 0; c < C; c++)
        for (size_t k = 0; k < plane; k++) {
            const float want = acc[c * plane + k] / wsum[k]; /* as mmgeo_blend_pixel divides */
            assert_memory_equal(&got[c * plane + k], &want, sizeof(float));
        }
    mm_mosaic_free(mo);
    free(res), free(wsum), free(acc), free(got), free(gws);
    mm_context_free(ctx);
    mm_model_close(m);
}

int main(void) {
    GDALAllRegister();
    snprintf(dir, sizeof dir, "/tmp/mm_test_pipeline_%ld", (long)getpid());
    if (mkdir(dir, 0700)) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reader),
        cmocka_unit_test(test_writer_error),
        cmocka_unit_test(test_run_identical),
        cmocka_unit_test(test_mosaic_matches_blend),
    };
    const int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
    return rc;
}
