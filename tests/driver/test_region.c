/*
 * The region renderer (libmmgeo/src/region.c) against mmgeo_run: rectangles of every shape and
 * position, rendered in any order and from several threads, equal the same pixels of mmgeo_run's
 * output bit for bit (a processor whose values depend on the tile id, so the blending of
 * different windows is exercised; Float32 and Byte targets; a nodata hole and an internal mask);
 * the cache counters (memory hits on a second render, SQLite hits from a new region, nothing
 * computed); bad rectangles and jobs. Runs under the sanitizers (no GDAL programs involved).
 */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <cpl_conv.h>

#include "mmgeo.h"
#include "rasters.h"

static char g_dir[256];

static const char *tmp_path(const char *name) {
    static char buf[8][512];
    static int k = 0;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

/* A test processor whose output depends on the window: target channel c = a function of the
 * source value, the channel and the tile id. */
static int process_tiled(void *user, int n_tiles, const uint64_t *tile_ids,
                         const float *const *sources, float *const *targets, char *err,
                         size_t errlen) {
    (void)err, (void)errlen;
    const mmgeo_processor *p = user;
    const size_t plane = (size_t)p->window * p->window;
    for (int t = 0; t < n_tiles; t++) {
        const float k = (float)(tile_ids[t] % 7 + (tile_ids[t] >> 32) % 5);
        for (int c = 0; c < p->dst_channels[0]; c++) {
            const float *s = sources[0] + (size_t)t * p->src_channels[0] * plane;
            float *d = targets[0] + ((size_t)t * p->dst_channels[0] + c) * plane;
            for (size_t i = 0; i < plane; i++)
                d[i] = 0.6f * s[i] + 0.05f * k - 0.1f * (float)c + 0.013f * (float)(i % 17);
        }
    }
    return 0;
}

typedef struct {
    const char *name, *dst_mod;
    int dst_c;
    raster_spec in;
} rcase;

static mmgeo_processor g_proc;
static mmgeo_job g_job;

static void setup_job(const rcase *rc, const char *src, const char *out) {
    mmgeo_job_init(&g_job);
    g_job.n_sources = 1;
    g_job.sources[0].path = src;
    g_job.sources[0].modality = "sar";
    mmgeo_profile_default("sar", rc->in.type, &g_job.sources[0].profile);
    g_job.n_targets = 1;
    g_job.targets[0].path = out;
    g_job.targets[0].modality = rc->dst_mod;
    mmgeo_profile_default(rc->dst_mod, GDT_Unknown, &g_job.targets[0].profile);
    g_job.batch = 3;
    mmgeo_processor p = {process_tiled, NULL, 32, 1, 1, {1}, {rc->dst_c}};
    g_proc = p;
    g_proc.user = &g_proc;
}

/* the reference: mmgeo_run's output, as doubles (bands x H x W) */
static double *g_ref;
static int g_W, g_H, g_C;
static GDALDataType g_type;
static uint8_t *g_mask; /* mmgeo_run's mask, when it wrote one */

static int same_as_ref(const double *out, int x, int y, int w, int h) {
    for (int c = 0; c < g_C; c++)
        for (int r = 0; r < h; r++)
            for (int q = 0; q < w; q++) {
                double v = out[((size_t)c * h + r) * w + q];
                if (g_type == GDT_Float32) v = (float)v; /* what the file stores */
                const double e = g_ref[((size_t)c * g_H + y + r) * g_W + x + q];
                if (memcmp(&v, &e, sizeof v) != 0) {
                    print_message("band %d pixel (%d, %d): %.9g, mmgeo_run %.9g\n", c + 1, x + q,
                                  y + r, v, e);
                    return 0;
                }
            }
    return 1;
}

static int render_check(mmgeo_region *r, int x, int y, int w, int h) {
    double *out = malloc(sizeof(double) * (size_t)g_C * w * h);
    char err[512];
    uint8_t *mask = malloc((size_t)w * h);
    int ok = out && mask && mmgeo_region_render(r, x, y, w, h, out, mask, err, sizeof err) == 0;
    if (!ok) print_message("render %d %d %d %d: %s\n", x, y, w, h, out ? err : "no memory");
    ok = ok && same_as_ref(out, x, y, w, h);
    if (ok && g_mask) /* the mask mmgeo_run wrote */
        for (int rr = 0; rr < h && ok; rr++)
            for (int q = 0; q < w && ok; q++)
                if (mask[(size_t)rr * w + q] != g_mask[(size_t)(y + rr) * g_W + x + q]) {
                    print_message("mask at (%d, %d): %d, mmgeo_run %d\n", x + q, y + rr,
                                  mask[(size_t)rr * w + q], g_mask[(size_t)(y + rr) * g_W + x + q]);
                    ok = 0;
                }
    free(out), free(mask);
    return ok;
}

typedef struct {
    mmgeo_region *r;
    unsigned seed;
    int ok;
} thread_arg;

static void *thread_main(void *p) {
    thread_arg *a = p;
    a->ok = 1;
    for (int i = 0; i < 12 && a->ok; i++) {
        const int w = 1 + (int)(rand_r(&a->seed) % (unsigned)g_W);
        const int h = 1 + (int)(rand_r(&a->seed) % 70u);
        const int y0 = (int)(rand_r(&a->seed) % (unsigned)(g_H - h + 1));
        const int x0 = (int)(rand_r(&a->seed) % (unsigned)(g_W - w + 1));
        a->ok = render_check(a->r, x0, y0, w, h);
    }
    return NULL;
}

static void run_case(const rcase *rc) {
    char src[600], out[600], cache[600];
    snprintf(src, sizeof src, "%s", tmp_path("src.tif"));
    snprintf(out, sizeof out, "%s", tmp_path("out.tif"));
    snprintf(cache, sizeof cache, "%s/%s.sqlite", g_dir, rc->name);
    assert_int_equal(raster_write(src, &rc->in), 0);
    setup_job(rc, src, out);
    char err[1024];
    if (mmgeo_run(&g_job, &g_proc, err, sizeof err)) fail_msg("%s: mmgeo_run: %s", rc->name, err);
    GDALDatasetH ds = GDALOpen(out, GA_ReadOnly);
    assert_non_null(ds);
    g_W = GDALGetRasterXSize(ds), g_H = GDALGetRasterYSize(ds), g_C = GDALGetRasterCount(ds);
    g_type = GDALGetRasterDataType(GDALGetRasterBand(ds, 1));
    g_ref = malloc(sizeof(double) * (size_t)g_C * g_W * g_H);
    assert_non_null(g_ref);
    assert_int_equal(GDALDatasetRasterIO(ds, GF_Read, 0, 0, g_W, g_H, g_ref, g_W, g_H, GDT_Float64,
                                         g_C, NULL, 0, 0, 0),
                     CE_None);
    g_mask = NULL;
    GDALRasterBandH b1 = GDALGetRasterBand(ds, 1);
    if (GDALGetMaskFlags(b1) == GMF_PER_DATASET) {
        g_mask = malloc((size_t)g_W * g_H);
        assert_non_null(g_mask);
        assert_int_equal(GDALRasterIO(GDALGetMaskBand(b1), GF_Read, 0, 0, g_W, g_H, g_mask, g_W,
                                      g_H, GDT_Byte, 0, 0),
                         CE_None);
    }
    GDALClose(ds);

    mmgeo_region_options o;
    mmgeo_region_options_init(&o);
    o.cache_path = cache;
    o.key = "test processor";
    mmgeo_region *r = NULL;
    if (mmgeo_region_open(&g_job, &g_proc, &o, &r, err, sizeof err))
        fail_msg("%s: mmgeo_region_open: %s", rc->name, err);
    mmgeo_region_info_t info;
    mmgeo_region_info(r, &info);
    assert_int_equal(info.width, g_W);
    assert_int_equal(info.height, g_H);
    assert_int_equal(info.bands, g_C);
    assert_int_equal(info.type, g_type);
    assert_int_equal(info.overlap, 8);
    assert_int_equal(info.has_mask, g_mask != NULL);
    assert_int_equal(info.has_mask, rc->in.internal_mask && !rc->in.has_nodata);

    /* rectangles: odd ones first (the order must not matter), then the whole raster */
    const int rects[][4] = {{37, 29, 1, 1},  {g_W - 1, g_H - 1, 1, 1}, {5, 7, 40, 30},
                            {23, 0, 3, 80},  {0, 55, g_W, 17},         {100, 21, 77, 66},
                            {0, 0, g_W, g_H}};
    for (size_t i = 0; i < sizeof rects / sizeof rects[0]; i++)
        if (!render_check(r, rects[i][0], rects[i][1], rects[i][2], rects[i][3]))
            fail_msg("%s: rectangle %d %d %d %d differs", rc->name, rects[i][0], rects[i][1],
                     rects[i][2], rects[i][3]);
    const int nx = mmgeo_grid_origins(g_W, 32, 8, NULL, 0),
              ny = mmgeo_grid_origins(g_H, 32, 8, NULL, 0);
    mmgeo_region_stats st;
    mmgeo_region_stats_get(r, &st);
    print_message("%s: %lld renders, %lld computed, %lld skipped, %lld memory hits\n", rc->name,
                  st.renders, st.computed, st.skipped, st.mem_hits);
    assert_int_equal(st.computed + st.skipped, nx * ny); /* each window once */
    assert_true(st.mem_hits > 0);
    assert_int_equal(st.disk_hits, 0);
    assert_int_equal(st.disk_errors, 0);

    /* four threads on the same region */
    pthread_t th[4];
    thread_arg ta[4];
    for (int i = 0; i < 4; i++) {
        ta[i].r = r, ta[i].seed = 17u + (unsigned)i;
        assert_int_equal(pthread_create(&th[i], NULL, thread_main, &ta[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        if (!ta[i].ok) fail_msg("%s: thread %d got other pixels", rc->name, i);
    }
    /* bad rectangles */
    double one[16];
    assert_int_equal(mmgeo_region_render(r, -1, 0, 1, 1, one, NULL, err, sizeof err), MMGEO_ERROR);
    assert_non_null(strstr(err, "not inside"));
    assert_int_equal(mmgeo_region_render(r, g_W, 0, 1, 1, one, NULL, err, sizeof err), MMGEO_ERROR);
    assert_int_equal(mmgeo_region_render(r, 0, 0, 0, 1, one, NULL, err, sizeof err), MMGEO_ERROR);
    mmgeo_region_close(r);

    /* a new region on the same SQLite file: every window from it */
    assert_int_equal(mmgeo_region_open(&g_job, &g_proc, &o, &r, err, sizeof err), 0);
    assert_true(render_check(r, 0, 0, g_W, g_H));
    mmgeo_region_stats_get(r, &st);
    assert_int_equal(st.computed, 0);
    assert_int_equal(st.disk_hits + st.skipped, nx * ny);
    mmgeo_region_close(r);
    /* without any cache: the same pixels */
    o.cache_path = NULL;
    o.cache_mb = 0;
    assert_int_equal(mmgeo_region_open(&g_job, &g_proc, &o, &r, err, sizeof err), 0);
    assert_true(render_check(r, 3, 4, g_W - 3, g_H - 4));
    mmgeo_region_close(r);
    free(g_ref), free(g_mask);
    g_ref = NULL, g_mask = NULL;
}

static void test_region_float(void **state) {
    (void)state;
    rcase rc = {"float", "sar", 1, {203, 151, 1, GDT_Float32, GEO_UTM, 1, -9999, 0, NULL}};
    run_case(&rc);
}

static void test_region_byte_mask(void **state) {
    (void)state;
    rcase rc = {"byte_mask", "rgb", 3, {190, 97, 1, GDT_Float32, GEO_UTM, 0, 0, 1, NULL}};
    run_case(&rc);
}

static void test_region_bad_job(void **state) {
    (void)state;
    rcase rc = {"bad", "rgb", 3, {40, 40, 1, GDT_Float32, GEO_UTM, 0, 0, 0, NULL}};
    const char *src = tmp_path("bad_src.tif");
    assert_int_equal(raster_write(src, &rc.in), 0);
    setup_job(&rc, src, tmp_path("bad_out.tif"));
    char err[512];
    mmgeo_region *r = NULL;
    g_job.has_srcwin = 1;
    assert_int_equal(mmgeo_region_open(&g_job, &g_proc, NULL, &r, err, sizeof err), MMGEO_ERROR);
    assert_null(r);
    g_job.has_srcwin = 0;
    g_job.sources[0].path = tmp_path("none.tif");
    assert_int_equal(mmgeo_region_open(&g_job, &g_proc, NULL, &r, err, sizeof err), MMGEO_ERROR);
    assert_non_null(strstr(err, "none.tif"));
    g_job.sources[0].path = src;
    g_job.overlap = 32;
    assert_int_equal(mmgeo_region_open(&g_job, &g_proc, NULL, &r, err, sizeof err), MMGEO_ERROR);
    assert_non_null(strstr(err, "overlap"));
    mmgeo_region_options o;
    mmgeo_region_options_init(&o);
    o.cache_path = tmp_path("no/such/dir/c.sqlite");
    g_job.overlap = -1;
    assert_int_equal(mmgeo_region_open(&g_job, &g_proc, &o, &r, err, sizeof err), MMGEO_ERROR);
    assert_non_null(strstr(err, "cannot open the cache"));
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "%s/mm_region_test.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(g_dir)) return 1;
    GDALAllRegister();
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_region_float),
                                       cmocka_unit_test(test_region_byte_mask),
                                       cmocka_unit_test(test_region_bad_job)};
    const int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    GDALDestroyDriverManager();
    return rc;
}
