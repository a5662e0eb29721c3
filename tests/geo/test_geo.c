/*
 * libmmgeo: the window grid, profiles and modality detection; then whole runs with the test
 * processors (identity and negation) over rasters of every kind the toolchain must keep intact
 * (UTM, geographic, rotated, GCPs only, no CRS; nodata, internal mask; odd and tiny sizes; Byte,
 * UInt16, Float32, complex): the output must have the input's grid and reproduce the expected
 * raster within 1 DN at every pixel. Then extent independence with the model (a -srcwin run is
 * bit-identical to the same region of the full run), interruption and bad input.
 */
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <cpl_conv.h>
#include <cpl_string.h>
#include <ogr_api.h>
#include <ogr_srs_api.h>

#include "mmgeo.h"
#include "mmgeo_settings.h"
#include "rasters.h"

static char g_dir[256];

static const char *tmp_path(const char *name) {
    static char buf[8][512];
    static int k = 0;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

static int count_temporaries(void) {
    DIR *d = opendir(g_dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, ".mmtmp-")) n++;
    if (d) closedir(d);
    return n;
}

/* ---- units ------------------------------------------------------------------------------- */

static void test_grid(void **state) {
    (void)state;
    int o[16];
    assert_int_equal(mmgeo_grid_origins(100, 32, 8, o, 16), 4);
    assert_int_equal(o[0], 0), assert_int_equal(o[1], 24), assert_int_equal(o[2], 48);
    assert_int_equal(o[3], 68); /* aligned to the edge */
    assert_int_equal(mmgeo_grid_origins(32, 32, 8, o, 16), 1);
    assert_int_equal(o[0], 0);
    assert_int_equal(mmgeo_grid_origins(20, 32, 8, o, 16), 1); /* smaller than a window */
    assert_int_equal(o[0], 0);
    assert_int_equal(mmgeo_grid_origins(56, 32, 8, o, 16), 2);
    assert_int_equal(o[1], 24);
    assert_int_equal(mmgeo_grid_origins(64, 32, 0, o, 16), 2);
    assert_int_equal(mmgeo_grid_origins(10, 32, 32, o, 16), 0); /* overlap >= window */
    for (int i = 0; i < 32; i++) {
        float w = mmgeo_blend_weight(i, 32, 8);
        assert_true(w > 0 && w <= 1);
        assert_true(w == mmgeo_blend_weight(31 - i, 32, 8));
        if (i >= 8 && i < 24) assert_true(w == 1.0f);
    }
    assert_true(mmgeo_tile_id(3, 2) == ((uint64_t)2 << 32 | 3));
}

static void test_profiles(void **state) {
    (void)state;
    mmgeo_profile p;
    char err[256], d[128];
    mmgeo_profile_default("sar", GDT_Float32, &p);
    assert_int_equal(p.kind, MMGEO_IO_SAR);
    assert_int_equal(p.sar_input, MMGEO_SAR_INTENSITY);
    assert_true(p.lo == -25 && p.hi == 5);
    mmgeo_profile_default("sar", GDT_CInt16, &p);
    assert_int_equal(p.sar_input, MMGEO_SAR_COMPLEX);
    mmgeo_profile_default("sar", GDT_UInt16, &p);
    assert_int_equal(p.sar_input, MMGEO_SAR_AMPLITUDE);
    assert_true(p.lo == -25 && p.hi == 5); /* calibrated to sigma0 dB (MMGEO_SAR_CAL_A) */
    assert_true(fabs(MMGEO_SAR_CAL_K_DB - 20 * log10(MMGEO_SAR_CAL_A)) < 1e-12);
    mmgeo_profile_default("sar", GDT_CInt16, &p);
    assert_true(p.lo == 15 && p.hi == 55); /* uncalibrated SLC, as before */
    mmgeo_profile_default("rgb", GDT_UInt16, &p);
    assert_int_equal(p.kind, MMGEO_IO_REFLECTANCE);
    assert_true(p.hi == 10000);
    mmgeo_profile_default("rgb", GDT_Byte, &p);
    assert_int_equal(p.kind, MMGEO_IO_BYTE);
    assert_int_equal(mmgeo_profile_out_type(&p, "rgb"), GDT_Byte);
    mmgeo_profile_default("sar", GDT_Unknown, &p);
    assert_int_equal(mmgeo_profile_out_type(&p, "sar"), GDT_Float32);
    assert_true(fabs(mmgeo_profile_output(&p, GDT_Float32, 0.0f) - (-10.0)) < 1e-9);
    assert_true(mmgeo_profile_output(&p, GDT_Byte, 1.0f) == 255);
    assert_true(mmgeo_profile_output(&p, GDT_Byte, -7.0f) == 0);

    assert_int_equal(mmgeo_profile_parse("db:-20:0", &p, err, sizeof err), 0);
    assert_true(p.kind == MMGEO_IO_SAR && p.sar_input == MMGEO_SAR_DB && p.lo == -20 && p.hi == 0);
    mmgeo_profile_describe(&p, d, sizeof d);
    assert_string_equal(d, "db:-20:0");
    assert_int_equal(mmgeo_profile_parse("reflectance", &p, err, sizeof err), 0);
    assert_true(p.kind == MMGEO_IO_REFLECTANCE);
    assert_int_equal(mmgeo_profile_parse("percentile:2:98", &p, err, sizeof err), 0);
    assert_int_not_equal(mmgeo_profile_parse("percentile:2:198", &p, err, sizeof err), 0);
    assert_int_not_equal(mmgeo_profile_parse("db:5:-5", &p, err, sizeof err), 0);
    assert_int_not_equal(mmgeo_profile_parse("fancy", &p, err, sizeof err), 0);
    assert_non_null(strstr(err, "unknown profile"));
    assert_int_not_equal(mmgeo_profile_parse("db:1", &p, err, sizeof err), 0);
}

static void test_sha256(void **state) {
    (void)state;
    uint8_t h[32];
    mmgeo_sha256("abc", 3, h);
    static const uint8_t want[4] = {0xba, 0x78, 0x16, 0xbf};
    assert_memory_equal(h, want, 4);
    mmgeo_sha256("", 0, h);
    assert_int_equal(h[0], 0xe3);
    assert_int_equal(h[31], 0x55);
    const char *msg = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"; /* 2 blocks */
    mmgeo_sha256(msg, strlen(msg), h);
    assert_int_equal(h[0], 0x24), assert_int_equal(h[31], 0xc1);
}

static void test_detect(void **state) {
    (void)state;
    const char *names[] = {"rgb", "sar", "nir", "pan", "osm"};
    assert_int_equal(mmgeo_detect_modality(NULL, "in_sar.tif", names, 5), 1);
    assert_int_equal(mmgeo_detect_modality(NULL, "/data/sar/x/out-RGB.tif", names, 5), 0);
    assert_int_equal(mmgeo_detect_modality(NULL, "scene.tif", names, 5), -1);
    assert_int_equal(mmgeo_detect_modality(NULL, "sar_to_rgb.tif", names, 5), -2);
    assert_int_equal(mmgeo_detect_modality(NULL, "sarcastic.tif", names, 5), -1);
    raster_spec s = {20, 10, 1, GDT_Byte, GEO_UTM, 0, 0, 0, "nir"};
    assert_int_equal(raster_write(tmp_path("scene.tif"), &s), 0);
    GDALDatasetH ds = GDALOpen(tmp_path("scene.tif"), GA_ReadOnly);
    assert_non_null(ds);
    assert_int_equal(mmgeo_detect_modality(ds, "scene_sar.tif", names, 5), 2); /* tag first */
    GDALClose(ds);
}

/* ---- whole runs with the test processors --------------------------------------------------- */

typedef struct {
    const char *what;
    raster_spec in;
    const char *src_mod, *dst_mod;
    int src_c, dst_c;
    int srcwin[4]; /* xsize 0: full */
} run_case;

static double expected(const run_case *rc, int negate, int x, int y, int c, GDALDataType out) {
    double re, im;
    raster_value(&rc->in, x, y, c % rc->src_c, &re, &im);
    if (out == GDT_Float32) { /* SAR dB */
        double db = GDALDataTypeIsComplex(rc->in.type) ? 10 * log10(re * re + im * im)
                                                        : 10 * log10(re);
        const double lo = rc->in.type == GDT_CInt16 ? 15 : -25, hi = lo + 30 + (lo > 0 ? 10 : 0);
        db = db < lo ? lo : db > hi ? hi : db;
        return negate ? lo + hi - db : db;
    }
    double b;
    if (rc->in.type == GDT_Byte) b = re;
    else b = fmin(re, 10000) / 10000 * 255; /* UInt16 reflectance */
    return negate ? 255 - b : b;
}

static void run_one(const run_case *rc, int negate) {
    char name_in[128], name_out[128], err[1024];
    snprintf(name_in, sizeof name_in, "in_%s.tif", rc->what);
    snprintf(name_out, sizeof name_out, "out_%s_%d.tif", rc->what, negate);
    const char *pin = tmp_path(name_in), *pout = tmp_path(name_out);
    assert_int_equal(raster_write(pin, &rc->in), 0);

    mmgeo_job job;
    mmgeo_job_init(&job);
    job.overlap = 8;
    job.batch = 3;
    job.n_sources = 1;
    job.sources[0].path = pin;
    job.sources[0].modality = rc->src_mod;
    mmgeo_profile_default(rc->src_mod, rc->in.type, &job.sources[0].profile);
    job.n_targets = 1;
    job.targets[0].path = pout;
    job.targets[0].modality = rc->dst_mod;
    mmgeo_profile_default(rc->dst_mod, GDT_Unknown, &job.targets[0].profile);
    if (!strcmp(rc->dst_mod, "sar")) { /* the source's dB range */
        job.targets[0].profile.lo = job.sources[0].profile.lo;
        job.targets[0].profile.hi = job.sources[0].profile.hi;
    }
    if (rc->srcwin[2]) job.has_srcwin = 1, memcpy(job.srcwin, rc->srcwin, sizeof job.srcwin);
    char **md = CSLSetNameValue(NULL, "SYNTHETIC", "YES");
    job.metadata = md;
    mmgeo_processor proc = {negate ? mmgeo_process_negate : mmgeo_process_identity, NULL, 32,
                            1, 1, {rc->src_c}, {rc->dst_c}};
    proc.user = &proc;
    int r = mmgeo_run(&job, &proc, err, sizeof err);
    CSLDestroy(md);
    if (r) fail_msg("%s: %s", rc->what, err);
    assert_int_equal(count_temporaries(), 0);

    GDALDatasetH in = GDALOpen(pin, GA_ReadOnly), out = GDALOpen(pout, GA_ReadOnly);
    assert_non_null(in);
    assert_non_null(out);
    const int x0 = rc->srcwin[2] ? rc->srcwin[0] : 0, y0 = rc->srcwin[2] ? rc->srcwin[1] : 0;
    const int W = rc->srcwin[2] ? rc->srcwin[2] : rc->in.width;
    const int H = rc->srcwin[2] ? rc->srcwin[3] : rc->in.height;
    assert_int_equal(GDALGetRasterXSize(out), W);
    assert_int_equal(GDALGetRasterYSize(out), H);
    assert_int_equal(GDALGetRasterCount(out), rc->dst_c);
    assert_string_equal(GDALGetMetadataItem(out, "SYNTHETIC", NULL), "YES");
    assert_string_equal(GDALGetMetadataItem(out, "MM_MODALITY", NULL), rc->dst_mod);

    /* georeferencing */
    double gi[6], go[6];
    const int has_gt = GDALGetGeoTransform(in, gi) == CE_None;
    assert_int_equal(GDALGetGeoTransform(out, go) == CE_None, has_gt);
    if (has_gt) {
        const double want[6] = {gi[0] + x0 * gi[1] + y0 * gi[2], gi[1], gi[2],
                                gi[3] + x0 * gi[4] + y0 * gi[5], gi[4], gi[5]};
        for (int i = 0; i < 6; i++) assert_true(fabs(go[i] - want[i]) <= 1e-9 * fabs(want[i]));
    }
    OGRSpatialReferenceH si = GDALGetSpatialRef(in), so = GDALGetSpatialRef(out);
    assert_int_equal(si != NULL, so != NULL);
    if (si) assert_true(OSRIsSame(si, so));
    assert_int_equal(GDALGetGCPCount(out), GDALGetGCPCount(in));
    if (GDALGetGCPCount(in)) {
        const GDAL_GCP *a = GDALGetGCPs(in), *b = GDALGetGCPs(out);
        for (int i = 0; i < GDALGetGCPCount(in); i++) {
            assert_true(a[i].dfGCPPixel - x0 == b[i].dfGCPPixel);
            assert_true(a[i].dfGCPLine - y0 == b[i].dfGCPLine);
            assert_true(a[i].dfGCPX == b[i].dfGCPX && a[i].dfGCPY == b[i].dfGCPY);
        }
        assert_true(OSRIsSame(GDALGetGCPSpatialRef(in), GDALGetGCPSpatialRef(out)));
    }
    /* nodata or mask */
    int has_nd_in = 0, has_nd_out = 0;
    double nd_in = GDALGetRasterNoDataValue(GDALGetRasterBand(in, 1), &has_nd_in);
    GDALRasterBandH ob = GDALGetRasterBand(out, 1);
    const GDALDataType ot = GDALGetRasterDataType(ob);
    double nd_out = GDALGetRasterNoDataValue(ob, &has_nd_out);
    assert_int_equal(has_nd_out, has_nd_in);
    if (has_nd_in && (ot != GDT_Byte || (nd_in >= 0 && nd_in <= 255))) assert_true(nd_out == nd_in);
    const int holes = rc->in.has_nodata || rc->in.internal_mask;
    if (rc->in.internal_mask) assert_true(GDALGetMaskFlags(ob) == GMF_PER_DATASET);
    else if (!has_nd_in) assert_true(GDALGetMaskFlags(ob) == GMF_ALL_VALID);

    /* pixels */
    double *px = malloc(sizeof(double) * (size_t)W * H);
    unsigned char *mask = malloc((size_t)W * H);
    assert_int_equal(
        GDALRasterIO(GDALGetMaskBand(ob), GF_Read, 0, 0, W, H, mask, W, H, GDT_Byte, 0, 0),
        CE_None);
    const double tol = ot == GDT_Float32 ? 1e-3 : 1.0;
    double worst = 0;
    for (int c = 0; c < rc->dst_c; c++) {
        assert_int_equal(GDALRasterIO(GDALGetRasterBand(out, c + 1), GF_Read, 0, 0, W, H, px, W,
                                      H, GDT_Float64, 0, 0),
                         CE_None);
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                const double v = px[(size_t)y * W + x];
                const int hole = holes && raster_hole(&rc->in, x + x0, y + y0);
                if (hole) {
                    if (has_nd_out) assert_true(v == nd_out);
                    else assert_int_equal(mask[(size_t)y * W + x], 0);
                    continue;
                }
                if (has_nd_out) assert_true(v != nd_out);
                else assert_int_equal(mask[(size_t)y * W + x], 255);
                double e = expected(rc, negate, x + x0, y + y0, c, ot);
                if (has_nd_out && fabs(e - nd_out) < 0.5) e += 1; /* nudged off nodata */
                const double d = fabs(v - e);
                if (d > worst) worst = d;
                if (d > tol)
                    fail_msg("%s (%s): pixel (%d, %d) band %d is %g, expected %g", rc->what,
                             negate ? "negate" : "identity", x, y, c, v, e);
            }
    }
    (void)worst;
    free(px);
    free(mask);
    GDALClose(in);
    GDALClose(out);
    GDALDeleteDataset(GDALGetDriverByName("GTiff"), pout);
}

static void test_runs(void **state) {
    (void)state;
    const run_case cases[] = {
        {"utm_byte_rgb", {100, 70, 3, GDT_Byte, GEO_UTM, 0, 0, 0, NULL}, "rgb", "osm", 3, 3, {0}},
        {"geographic_uint16", {61, 45, 1, GDT_UInt16, GEO_GEOGRAPHIC, 0, 0, 0, NULL}, "nir", "pan", 1, 1, {0}},
        {"rotated_float_sar", {57, 40, 1, GDT_Float32, GEO_ROTATED, 0, 0, 0, NULL}, "sar", "sar", 1, 1, {0}},
        {"gcps_complex", {50, 33, 1, GDT_CFloat32, GEO_GCPS, 0, 0, 0, NULL}, "sar", "sar", 1, 1, {0}},
        {"gcps_cint16_srcwin", {70, 50, 1, GDT_CInt16, GEO_GCPS, 0, 0, 0, NULL}, "sar", "sar", 1, 1, {11, 7, 40, 30}},
        {"nocrs_tiny", {20, 13, 1, GDT_Byte, GEO_NONE, 0, 0, 0, NULL}, "pan", "rgb", 1, 3, {0}},
        {"exact_window", {32, 32, 1, GDT_Byte, GEO_UTM, 0, 0, 0, NULL}, "pan", "nir", 1, 1, {0}},
        {"nodata_byte", {100, 70, 3, GDT_Byte, GEO_UTM, 1, 0, 0, NULL}, "rgb", "osm", 3, 3, {0}},
        {"nodata_float", {45, 37, 1, GDT_Float32, GEO_UTM, 1, -9999, 0, NULL}, "sar", "sar", 1, 1, {0}},
        {"nodata_uint16_srcwin", {100, 70, 1, GDT_UInt16, GEO_UTM, 1, 65535, 0, NULL}, "nir", "pan", 1, 1, {30, 5, 50, 60}},
        {"internal_mask", {100, 70, 3, GDT_Byte, GEO_UTM, 0, 0, 1, NULL}, "rgb", "osm", 3, 3, {0}},
        {"mask_srcwin_edge", {100, 70, 1, GDT_Byte, GEO_UTM, 0, 0, 1, NULL}, "pan", "nir", 1, 1, {99, 69, 1, 1}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        run_one(&cases[i], 0);
        run_one(&cases[i], 1);
    }
}

/* ---- extent independence with the model -------------------------------------------------- */

typedef struct {
    int calls, stop_after;
} prog;
static int CPL_STDCALL count_progress(double f, const char *m, void *arg) {
    (void)f, (void)m;
    prog *p = arg;
    return p->stop_after < 0 || ++p->calls <= p->stop_after;
}

static int model_run(mm_context *ctx, mm_model *model, const char *in, const char *out,
                     const int *srcwin, prog *pg, char *err, size_t errlen) {
    mmgeo_model_processor mp;
    memset(&mp, 0, sizeof mp);
    mm_sample_params_default(model, &mp.params);
    mp.params.steps = 2;
    mp.params.seed = 7;
    mp.ctx = ctx;
    mp.n_sources = mp.n_targets = 1;
    mp.source_mods[0] = mm_model_modality_index(model, "sar");
    mp.target_mods[0] = mm_model_modality_index(model, "rgb");
    mmgeo_processor proc = {mmgeo_process_model, &mp, mm_model_image_size(model), 1, 1, {1}, {3}};
    mmgeo_job job;
    mmgeo_job_init(&job);
    job.overlap = 8;
    job.batch = srcwin ? 2 : 5; /* different batching: tiles are independent of it */
    job.n_sources = job.n_targets = 1;
    job.sources[0].path = in;
    job.sources[0].modality = "sar";
    mmgeo_profile_default("sar", GDT_Float32, &job.sources[0].profile);
    job.targets[0].path = out;
    job.targets[0].modality = "rgb";
    mmgeo_profile_default("rgb", GDT_Unknown, &job.targets[0].profile);
    job.targets[0].profile.out_type = GDT_Float32; /* unrounded: any difference shows */
    if (srcwin) job.has_srcwin = 1, memcpy(job.srcwin, srcwin, sizeof job.srcwin);
    job.progress = count_progress;
    job.progress_arg = pg;
    return mmgeo_run(&job, &proc, err, errlen);
}

static void test_model_extent_independence(void **state) {
    (void)state;
    mm_model *model = NULL;
    char *e = NULL, err[1024];
    assert_int_equal(mm_model_open(MM_GOLDEN_DIR "/tiny_model.safetensors", &model, &e), MM_OK);
    mm_context_params cp;
    mm_context_params_default(&cp);
    cp.n_threads = 1; /* the tiny model gains nothing from more */
    mm_context *ctx = NULL;
    assert_int_equal(mm_context_create(model, &cp, &ctx, &e), MM_OK);
    raster_spec s = {60, 45, 1, GDT_Float32, GEO_UTM, 1, -9999, 0, NULL}; /* 3 x 2 windows */
    char in[512];
    snprintf(in, sizeof in, "%s", tmp_path("ext_sar.tif"));
    assert_int_equal(raster_write(in, &s), 0);
    prog pg = {0, -1};
    if (model_run(ctx, model, in, tmp_path("ext_full_rgb.tif"), NULL, &pg, err, sizeof err))
        fail_msg("%s", err);
    const int wins[2][4] = {{20, 10, 30, 30}, {41, 0, 19, 45}};
    for (int w = 0; w < 2; w++) {
        if (model_run(ctx, model, in, tmp_path("ext_win_rgb.tif"), wins[w], &pg, err, sizeof err))
            fail_msg("%s", err);
        GDALDatasetH a = GDALOpen(tmp_path("ext_full_rgb.tif"), GA_ReadOnly);
        GDALDatasetH b = GDALOpen(tmp_path("ext_win_rgb.tif"), GA_ReadOnly);
        const int W = wins[w][2], H = wins[w][3];
        float *fa = malloc(sizeof(float) * 3 * W * H), *fb = malloc(sizeof(float) * 3 * W * H);
        assert_int_equal(GDALDatasetRasterIO(a, GF_Read, wins[w][0], wins[w][1], W, H, fa, W, H,
                                             GDT_Float32, 3, NULL, 0, 0, 0),
                         CE_None);
        assert_int_equal(GDALDatasetRasterIO(b, GF_Read, 0, 0, W, H, fb, W, H, GDT_Float32, 3,
                                             NULL, 0, 0, 0),
                         CE_None);
        assert_memory_equal(fa, fb, sizeof(float) * 3 * W * H);
        /* and the result is not trivial */
        int varied = 0;
        for (int i = 1; i < 3 * W * H; i++) varied |= fa[i] != fa[0];
        assert_true(varied);
        free(fa);
        free(fb);
        GDALClose(a);
        GDALClose(b);
    }
    /* interrupted by the progress callback: nothing under the output name, no temporaries */
    prog stop = {0, 1}; /* stops after the first batch */
    const char *out = tmp_path("interrupted_rgb.tif");
    assert_int_equal(model_run(ctx, model, in, out, NULL, &stop, err, sizeof err),
                     MMGEO_INTERRUPTED);
    assert_int_not_equal(access(out, F_OK), 0);
    assert_int_equal(count_temporaries(), 0);
    mm_context_free(ctx);
    mm_model_close(model);
}

/* ---- the model's "geo" section ----------------------------------------------------------- */

/* The tiny model's config with `geo` (a JSON object text) added; a random-weight model of it. */
static mm_model *tiny_with_geo(const char *geo) {
    mm_model *base = NULL, *m = NULL;
    char *e = NULL;
    assert_int_equal(mm_model_open(MM_GOLDEN_DIR "/tiny_model.safetensors", &base, &e), MM_OK);
    const char *cj = mm_model_config_json(base);
    const char *close = strrchr(cj, '}');
    assert_non_null(close);
    char *json = malloc(strlen(cj) + strlen(geo) + 16);
    sprintf(json, "%.*s, \"geo\": %s}", (int)(close - cj), cj, geo);
    mm_model_close(base);
    mm_status st = mm_model_create_random(json, 1, &m, &e);
    if (st != MM_OK) fail_msg("%s: %s", json, e ? e : "?");
    free(json);
    return m;
}

static void test_model_geo(void **state) {
    (void)state;
    char err[512];
    mmgeo_model_geo g;
    /* no geo section: nothing stated, the defaults */
    mm_model *plain = NULL;
    char *e = NULL;
    assert_int_equal(mm_model_open(MM_GOLDEN_DIR "/tiny_model.safetensors", &plain, &e), MM_OK);
    assert_int_equal(mmgeo_model_geo_get(plain, &g, err, sizeof err), 0);
    assert_true(g.gsd_lo_m == 0 && g.gsd_hi_m == 0);
    const int sar = mm_model_modality_index(plain, "sar"), rgb = mm_model_modality_index(plain, "rgb");
    assert_true(sar >= 0 && rgb >= 0);
    assert_false(g.has_profile[sar]);
    mmgeo_profile p, d;
    mmgeo_model_geo_source_profile(&g, sar, "sar", GDT_Float32, &p);
    mmgeo_profile_default("sar", GDT_Float32, &d);
    assert_memory_equal(&p, &d, sizeof p);
    mm_model_close(plain);

    mm_model *m = tiny_with_geo("{\"gsd_range_m\": [1.5, 4], \"profiles\": {\"sar\": "
                                "\"intensity:-30:10\", \"rgb\": \"reflectance:0:4000\"}}");
    assert_int_equal(mmgeo_model_geo_get(m, &g, err, sizeof err), 0);
    assert_true(g.gsd_lo_m == 1.5 && g.gsd_hi_m == 4);
    assert_true(g.has_profile[sar] && g.has_profile[rgb]);
    assert_false(g.has_profile[mm_model_modality_index(m, "osm")]);
    /* calibrated SAR intensity: the model's dB range */
    mmgeo_model_geo_source_profile(&g, sar, "sar", GDT_Float32, &p);
    assert_int_equal(p.kind, MMGEO_IO_SAR);
    assert_int_equal(p.sar_input, MMGEO_SAR_INTENSITY);
    assert_true(p.lo == -30 && p.hi == 10);
    /* GRD amplitude (UInt16), calibrated to sigma0 dB: the model's dB window too */
    mmgeo_model_geo_source_profile(&g, sar, "sar", GDT_UInt16, &p);
    assert_true(p.kind == MMGEO_IO_SAR && p.sar_input == MMGEO_SAR_AMPLITUDE);
    assert_true(p.lo == -30 && p.hi == 10);
    /* complex data keep their default (the model's profile is not complex) */
    mmgeo_model_geo_source_profile(&g, sar, "sar", GDT_CInt16, &p);
    mmgeo_profile_default("sar", GDT_CInt16, &d);
    assert_memory_equal(&p, &d, sizeof p);
    /* UInt16 reflectance: the model's scaling; Byte and Float32 RGB: the defaults */
    mmgeo_model_geo_source_profile(&g, rgb, "rgb", GDT_UInt16, &p);
    assert_int_equal(p.kind, MMGEO_IO_REFLECTANCE);
    assert_true(p.lo == 0 && p.hi == 4000);
    mmgeo_model_geo_source_profile(&g, rgb, "rgb", GDT_Byte, &p);
    assert_int_equal(p.kind, MMGEO_IO_BYTE);
    mmgeo_model_geo_source_profile(&g, rgb, "rgb", GDT_Float32, &p);
    assert_true(p.kind == MMGEO_IO_REFLECTANCE && p.hi == 1);
    /* targets: SAR in dB over the model's range; RGB stays Byte */
    mmgeo_model_geo_target_profile(&g, sar, "sar", &p);
    assert_true(p.kind == MMGEO_IO_SAR && p.sar_input == MMGEO_SAR_DB && p.lo == -30 && p.hi == 10);
    mmgeo_model_geo_target_profile(&g, rgb, "rgb", &p);
    assert_int_equal(mmgeo_profile_out_type(&p, "rgb"), GDT_Byte);
    mm_model_close(m);

    /* a profile string libmm accepts (a string) but the profile syntax does not */
    m = tiny_with_geo("{\"profiles\": {\"sar\": \"decibels\"}}");
    assert_int_not_equal(mmgeo_model_geo_get(m, &g, err, sizeof err), 0);
    assert_non_null(strstr(err, "geo.profiles.sar"));
    assert_non_null(strstr(err, "decibels"));
    mm_model_close(m);
}

/* ---- areas of interest --------------------------------------------------------------------- */

/* UTM 32N (the test rasters' CRS) pixel (px, py) of the 10 m grid at (500000, 5000000) as a
 * georeferenced point. */
static void utm_of(double px, double py, double *x, double *y) {
    *x = 500000 + 10 * px, *y = 5000000 - 10 * py;
}

/* A GeoPackage with layer "zone" (a triangle and a square, in EPSG:4326, so the AOI is
 * reprojected) and layer "far" (a square 50 km away); returns the zone in UTM (caller destroys). */
static OGRGeometryH write_aoi(const char *path) {
    OGRSpatialReferenceH utm = OSRNewSpatialReference(NULL), ll = OSRNewSpatialReference(NULL);
    OSRImportFromEPSG(utm, 32632);
    OSRImportFromEPSG(ll, 4326);
    OSRSetAxisMappingStrategy(utm, OAMS_TRADITIONAL_GIS_ORDER);
    OSRSetAxisMappingStrategy(ll, OAMS_TRADITIONAL_GIS_ORDER);
    OGRCoordinateTransformationH ct = OCTNewCoordinateTransformation(utm, ll);
    GDALDatasetH ds = GDALCreate(GDALGetDriverByName("GPKG"), path, 0, 0, 0, GDT_Unknown, NULL);
    assert_non_null(ds);
    static const double shapes[3][5][2] = {
        {{3.3, 2.2}, {70.4, 5.1}, {12.6, 60.3}, {3.3, 2.2}, {3.3, 2.2}},      /* triangle */
        {{90.2, 70.7}, {131.9, 70.7}, {131.9, 101.1}, {90.2, 101.1}, {90.2, 70.7}}, /* square */
        {{5000, 0}, {5010, 0}, {5010, 10}, {5000, 10}, {5000, 0}}};           /* far away */
    OGRGeometryH zone = OGR_G_CreateGeometry(wkbMultiPolygon);
    for (int l = 0; l < 2; l++) {
        OGRLayerH layer = GDALDatasetCreateLayer(ds, l ? "far" : "zone", ll, wkbPolygon, NULL);
        assert_non_null(layer);
        for (int k = l ? 2 : 0; k < (l ? 3 : 2); k++) {
            OGRGeometryH ring = OGR_G_CreateGeometry(wkbLinearRing);
            const int np = k == 0 ? 4 : 5;
            for (int i = 0; i < np; i++) {
                double x, y;
                utm_of(shapes[k][i][0], shapes[k][i][1], &x, &y);
                OGR_G_AddPoint_2D(ring, x, y);
            }
            OGRGeometryH poly = OGR_G_CreateGeometry(wkbPolygon);
            OGR_G_AddGeometryDirectly(poly, ring);
            if (!l) OGR_G_AddGeometry(zone, poly);
            assert_int_equal(OGR_G_Transform(poly, ct), OGRERR_NONE);
            OGRFeatureH f = OGR_F_Create(OGR_L_GetLayerDefn(layer));
            OGR_F_SetGeometryDirectly(f, poly);
            assert_int_equal(OGR_L_CreateFeature(layer, f), OGRERR_NONE);
            OGR_F_Destroy(f);
        }
    }
    GDALClose(ds);
    OCTDestroyCoordinateTransformation(ct);
    OSRDestroySpatialReference(utm);
    OSRDestroySpatialReference(ll);
    return zone;
}

static int aoi_run(const char *in, const char *out, const mmgeo_aoi *aoi, const int *srcwin,
                   mmgeo_run_stats *st, char *err, size_t errlen) {
    mmgeo_job job;
    mmgeo_job_init(&job);
    job.n_sources = job.n_targets = 1;
    job.sources[0].path = in;
    job.sources[0].modality = "sar";
    mmgeo_profile_default("sar", GDT_Float32, &job.sources[0].profile);
    job.targets[0].path = out;
    job.targets[0].modality = "sar";
    mmgeo_profile_default("sar", GDT_Unknown, &job.targets[0].profile);
    job.aoi = aoi;
    job.stats = st;
    if (srcwin) job.has_srcwin = 1, memcpy(job.srcwin, srcwin, sizeof job.srcwin);
    mmgeo_processor proc = {mmgeo_process_identity, NULL, 32, 1, 1, {1}, {1}};
    proc.user = &proc;
    return mmgeo_run(&job, &proc, err, errlen);
}

static float *read_all(const char *path, int W, int H, uint8_t *mask) {
    GDALDatasetH ds = GDALOpen(path, GA_ReadOnly);
    assert_non_null(ds);
    assert_int_equal(GDALGetRasterXSize(ds), W);
    assert_int_equal(GDALGetRasterYSize(ds), H);
    float *v = malloc(sizeof(float) * W * H);
    GDALRasterBandH b = GDALGetRasterBand(ds, 1);
    assert_int_equal(GDALRasterIO(b, GF_Read, 0, 0, W, H, v, W, H, GDT_Float32, 0, 0), CE_None);
    if (mask) {
        assert_true(GDALGetMaskFlags(b) & GMF_PER_DATASET);
        assert_int_equal(GDALRasterIO(GDALGetMaskBand(b), GF_Read, 0, 0, W, H, mask, W, H,
                                      GDT_Byte, 0, 0),
                         CE_None);
    }
    GDALClose(ds);
    return v;
}

/* SAR sources as users hold them: the one option parser, --profile agreement, units from the
 * metadata or detection, the VH band, the calibrated amplitude and zero DN as nodata. */
static void test_sar_units(void **state) {
    (void)state;
    char err[512], from[256];
    mmgeo_sar_options o;
    /* the options themselves: the settings parser (mmgeo_settings.h; test_settings.c) */
    mmgeo_settings st;
    mmgeo_settings_init(&st, 0);
    assert_int_equal(mmgeo_settings_set(&st, "sar-units", "DB"), 0);
    assert_int_equal(st.sar.units, MMGEO_SAR_UNITS_DB);
    assert_int_equal(mmgeo_settings_set(&st, "SAR_UNITS", "amplitude"), 0);
    assert_int_equal(st.sar.units, MMGEO_SAR_UNITS_AMPLITUDE);
    assert_int_equal(mmgeo_settings_set(&st, "--sar-units", "linear"), 0);
    assert_int_equal(st.sar.units, MMGEO_SAR_UNITS_LINEAR);
    assert_int_equal(mmgeo_settings_set(&st, "sar-units", "dbm"), MMGEO_ERROR);
    assert_non_null(strstr(mmgeo_settings_errmsg(&st),
                           "--sar-units / SAR_UNITS takes db, linear or amplitude"));
    assert_int_equal(mmgeo_settings_set(&st, "SAR_BAND", "x"), MMGEO_ERROR);
    assert_non_null(strstr(mmgeo_settings_errmsg(&st), "--sar-band / SAR_BAND must be a decimal"));
    assert_int_equal(mmgeo_settings_set(&st, "SAR_BAND", "2"), 0);
    assert_int_equal(st.sar.band, 2);
    /* --profile sar=KIND: its units, which must agree with --sar-units */
    memset(&o, 0, sizeof o);
    const char *p1[] = {"rgb=byte", "sar=amplitude:-30:0"};
    assert_int_equal(mmgeo_sar_options_profiles(&o, p1, 2, err, sizeof err), 0);
    assert_true(o.profile_given == 1 && o.profile_input == MMGEO_SAR_AMPLITUDE);
    memset(&o, 0, sizeof o);
    o.units = MMGEO_SAR_UNITS_DB;
    assert_int_equal(mmgeo_sar_options_profiles(&o, p1, 2, err, sizeof err), MMGEO_ERROR);
    assert_non_null(strstr(err, "agree"));
    const char *p2[] = {"sar=db"};
    assert_int_equal(mmgeo_sar_options_profiles(&o, p2, 1, err, sizeof err), 0);

    /* a UInt16 GRD scene: DN 0 in a block (no nodata value declared), the rest A (0 dB) and
       A / 10 (-20 dB) */
    const int W = 40, H = 30;
    const char *amp = tmp_path("units_amp.tif");
    GDALDatasetH ds = GDALCreate(GDALGetDriverByName("GTiff"), amp, W, H, 2, GDT_UInt16, NULL);
    assert_non_null(ds);
    uint16_t *dn = malloc(sizeof(uint16_t) * W * H);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            dn[y * W + x] = x < 5 && y < 5 ? 0
                            : x < W / 2    ? (uint16_t)MMGEO_SAR_CAL_A
                                           : (uint16_t)(MMGEO_SAR_CAL_A / 10);
    for (int b = 1; b <= 2; b++) {
        assert_int_equal(GDALRasterIO(GDALGetRasterBand(ds, b), GF_Write, 0, 0, W, H, dn, W, H,
                                      GDT_UInt16, 0, 0),
                         CE_None);
        GDALSetDescription(GDALGetRasterBand(ds, b), b == 2 ? "vh" : "VV");
    }
    GDALClose(ds);
    free(dn);
    mmgeo_source src;
    memset(&src, 0, sizeof src);
    src.path = amp;
    src.modality = "sar";
    memset(&o, 0, sizeof o);
    ds = GDALOpen(amp, GA_ReadOnly);
    assert_int_equal(mmgeo_sar_source(ds, &o, NULL, 1, 1, &src, from, sizeof from, err, sizeof err),
                     0);
    assert_true(src.n_bands == 1 && src.bands[0] == 2); /* VH, whatever the case */
    assert_true(src.profile.kind == MMGEO_IO_SAR && src.profile.sar_input == MMGEO_SAR_AMPLITUDE);
    assert_true(src.profile.lo == -25 && src.profile.hi == 5);
    assert_non_null(strstr(from, "amplitude (detected"));
    /* the units from the band's unit type or a SAR_UNITS item; the option first */
    GDALClose(ds);
    ds = GDALOpen(amp, GA_Update);
    GDALSetRasterUnitType(GDALGetRasterBand(ds, 2), "decibel");
    GDALClose(ds);
    ds = GDALOpen(amp, GA_ReadOnly);
    src.n_bands = 0;
    assert_int_equal(mmgeo_sar_source(ds, &o, NULL, 1, 1, &src, from, sizeof from, err, sizeof err),
                     0);
    assert_int_equal(src.profile.sar_input, MMGEO_SAR_DB);
    assert_non_null(strstr(from, "unit type 'decibel'"));
    o.units = MMGEO_SAR_UNITS_AMPLITUDE;
    src.n_bands = 0;
    assert_int_equal(mmgeo_sar_source(ds, &o, NULL, 1, 1, &src, from, sizeof from, err, sizeof err),
                     0);
    assert_int_equal(src.profile.sar_input, MMGEO_SAR_AMPLITUDE);
    assert_string_equal(from, "amplitude (--sar-units)");
    /* -b and --sar-band together: an error */
    o.band = 1;
    src.n_bands = 1, src.bands[0] = 2;
    assert_int_equal(mmgeo_sar_source(ds, &o, NULL, 1, 1, &src, NULL, 0, err, sizeof err),
                     MMGEO_ERROR);
    assert_non_null(strstr(err, "not both"));
    GDALClose(ds);

    /* identity run with a SAR target over -25..5 dB: A -> 0 dB, A / 10 -> -20 dB, DN 0 -> not
       -inf or the clipped -25 dB but invalid: 0 (no nodata value to write) */
    mmgeo_job job;
    mmgeo_job_init(&job);
    job.n_sources = job.n_targets = 1;
    job.sources[0] = src;
    job.sources[0].n_bands = 1, job.sources[0].bands[0] = 2;
    job.sources[0].profile.sar_input = MMGEO_SAR_AMPLITUDE;
    const char *out = tmp_path("units_out.tif");
    job.targets[0].path = out;
    job.targets[0].modality = "sar";
    mmgeo_profile_default("sar", GDT_Unknown, &job.targets[0].profile);
    mmgeo_processor proc = {mmgeo_process_identity, NULL, 32, 1, 1, {1}, {1}};
    proc.user = &proc;
    assert_int_equal(mmgeo_run(&job, &proc, err, sizeof err), 0);
    float *v = read_all(out, W, H, NULL);
    assert_true(fabs(v[10 * W + 8]) < 1e-4);            /* 0 dB */
    assert_true(fabs(v[10 * W + W - 3] + 20.0) < 1e-4); /* -20 dB */
    assert_true(v[2 * W + 2] == 0);                     /* DN 0: invalid */
    free(v);
    ds = GDALOpen(out, GA_ReadOnly);
    assert_string_equal(GDALGetRasterUnitType(GDALGetRasterBand(ds, 1)), "dB");
    assert_string_equal(GDALGetMetadataItem(ds, "SAR_UNITS", NULL), "db");
    GDALClose(ds);
}

static void test_aoi(void **state) {
    (void)state;
    char err[1024];
    enum { W = 150, H = 110 };
    raster_spec s = {W, H, 1, GDT_Float32, GEO_UTM, 0, 0, 0, NULL}; /* no nodata: a mask */
    char in[512], gpkg[512]; /* tmp_path's buffers are reused */
    snprintf(in, sizeof in, "%s", tmp_path("aoi_sar.tif"));
    snprintf(gpkg, sizeof gpkg, "%s", tmp_path("aoi.gpkg"));
    assert_int_equal(raster_write(in, &s), 0);
    OGRGeometryH zone = write_aoi(gpkg);
    mmgeo_run_stats full_st, st;
    if (aoi_run(in, tmp_path("aoi_full.tif"), NULL, NULL, &full_st, err, sizeof err))
        fail_msg("%s", err);
    mmgeo_aoi *aoi = NULL;
    if (mmgeo_aoi_open_raster(gpkg, NULL, in, NULL, NULL, &aoi, err, sizeof err))
        fail_msg("%s", err);
    if (aoi_run(in, tmp_path("aoi_zone.tif"), aoi, NULL, &st, err, sizeof err))
        fail_msg("%s", err);
    /* windows outside skipped, the others processed: 32-pixel windows, overlap 8 -> 6 x 5 */
    assert_int_equal(full_st.windows, 30);
    assert_int_equal(full_st.processed, 30);
    assert_int_equal(st.windows, 30);
    assert_true(st.skipped_aoi >= 10);
    assert_int_equal(st.processed + st.skipped_aoi + st.skipped_nodata, 30);
    /* inside: the full run's pixels; outside: masked. Reference: OGR's own point-in-polygon on
     * the zone in UTM (pixel centres) */
    uint8_t *mask = malloc(W * H);
    float *full = read_all(tmp_path("aoi_full.tif"), W, H, NULL);
    float *zv = read_all(tmp_path("aoi_zone.tif"), W, H, mask);
    int inside = 0;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            double gx, gy;
            utm_of(x + 0.5, y + 0.5, &gx, &gy);
            OGRGeometryH p = OGR_G_CreateGeometry(wkbPoint);
            OGR_G_AddPoint_2D(p, gx, gy);
            const int in_ref = OGR_G_Intersects(zone, p);
            OGR_G_DestroyGeometry(p);
            const size_t k = (size_t)y * W + x;
            if (in_ref != (mask[k] != 0)) fail_msg("pixel %d,%d: inside %d, mask %d", x, y, in_ref, mask[k]);
            if (in_ref) {
                inside++;
                if (memcmp(&zv[k], &full[k], sizeof(float)))
                    fail_msg("pixel %d,%d: %g, full run %g", x, y, zv[k], full[k]);
            }
        }
    assert_true(inside > 2000 && inside < W * H / 2); /* about 1900 + 1270 pixels */
    /* extent independence with an AOI: a -srcwin run equals the same region */
    const int win[4] = {40, 30, 80, 60};
    if (aoi_run(in, tmp_path("aoi_win.tif"), aoi, win, &st, err, sizeof err)) fail_msg("%s", err);
    uint8_t *wmask = malloc(80 * 60);
    float *wv = read_all(tmp_path("aoi_win.tif"), 80, 60, wmask);
    for (int y = 0; y < 60; y++)
        for (int x = 0; x < 80; x++) {
            const size_t k = (size_t)(y + 30) * W + x + 40, j = (size_t)y * 80 + x;
            assert_int_equal(wmask[j], mask[k]);
            if (mask[k] && memcmp(&wv[j], &zv[k], sizeof(float)))
                fail_msg("-srcwin pixel %d,%d differs", x, y);
        }
    assert_true(mmgeo_aoi_meets(aoi, 0, 0, W, H));
    assert_false(mmgeo_aoi_meets(aoi, 140, 0, 10, 10));
    mmgeo_aoi_close(aoi);
    /* the "far" layer does not meet the raster */
    assert_int_equal(mmgeo_aoi_open_raster(gpkg, "far", in, NULL, NULL, &aoi, err, sizeof err), 0);
    assert_false(mmgeo_aoi_meets(aoi, 0, 0, W, H));
    mmgeo_aoi_close(aoi);
    /* errors: no such layer (the message lists them), no such file, no polygon */
    assert_int_equal(mmgeo_aoi_open_raster(gpkg, "nope", in, NULL, NULL, &aoi, err, sizeof err),
                     MMGEO_ERROR);
    assert_null(aoi);
    assert_non_null(strstr(err, "no layer 'nope'"));
    assert_non_null(strstr(err, "'zone', 'far'"));
    assert_int_equal(mmgeo_aoi_open_raster(tmp_path("missing.gpkg"), NULL, in, NULL, NULL, &aoi,
                                           err, sizeof err),
                     MMGEO_ERROR);
    assert_non_null(strstr(err, "cannot open"));
    FILE *f = fopen(tmp_path("points.geojson"), "w");
    fputs("{\"type\":\"FeatureCollection\",\"features\":[{\"type\":\"Feature\",\"properties\":{},"
          "\"geometry\":{\"type\":\"Point\",\"coordinates\":[9,45]}}]}",
          f);
    fclose(f);
    assert_int_equal(mmgeo_aoi_open_raster(tmp_path("points.geojson"), NULL, in, NULL, NULL, &aoi,
                                           err, sizeof err),
                     MMGEO_ERROR);
    assert_non_null(strstr(err, "no polygon"));
    unlink(tmp_path("points.geojson"));
    OGR_G_DestroyGeometry(zone);
    free(mask), free(full), free(zv), free(wmask), free(wv);
}

/* ---- working resolution (--gsd) ---------------------------------------------------------- */

/* A smooth Float32 raster (reflectance 0.2..0.8, wavelengths 40 and 30 pixels) on a 10 m UTM grid
 * with nodata -1 in a block. */
static void write_smooth(const char *path, int W, int H) {
    GDALDatasetH ds = GDALCreate(GDALGetDriverByName("GTiff"), path, W, H, 1, GDT_Float32, NULL);
    assert_non_null(ds);
    double gt[6] = {500000, 10, 0, 5000000, 0, -10};
    GDALSetGeoTransform(ds, gt);
    OGRSpatialReferenceH srs = OSRNewSpatialReference(NULL);
    OSRImportFromEPSG(srs, 32632);
    GDALSetSpatialRef(ds, srs);
    OSRDestroySpatialReference(srs);
    float *v = malloc(sizeof(float) * W * H);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            v[y * W + x] = (x >= 80 && x < 100 && y >= 10 && y < 30)
                               ? -1.0f
                               : (float)(0.5 + 0.3 * sin(2 * M_PI * (x + 0.5) / 40) *
                                                   cos(2 * M_PI * (y + 0.5) / 30));
    GDALRasterBandH b = GDALGetRasterBand(ds, 1);
    GDALSetRasterNoDataValue(b, -1);
    assert_int_equal(GDALRasterIO(b, GF_Write, 0, 0, W, H, v, W, H, GDT_Float32, 0, 0), CE_None);
    GDALClose(ds);
    free(v);
}

static char g_warned[1024];
static void keep_warning(void *user, const char *msg) {
    (void)user;
    snprintf(g_warned, sizeof g_warned, "%s", msg);
}

static void test_gsd(void **state) {
    (void)state;
    char err[1024], in[512], out[512];
    enum { W = 120, H = 90 };
    snprintf(in, sizeof in, "%s", tmp_path("gsd_in.tif"));
    snprintf(out, sizeof out, "%s", tmp_path("gsd_out.tif"));
    write_smooth(in, W, H);
    double gx, gy;
    assert_int_equal(mmgeo_raster_gsd(in, &gx, &gy, err, sizeof err), 0);
    assert_true(gx == 10 && gy == 10);

    /* identity at a working resolution of 20 m (the input is at 2x it): back within 0.01 */
    mmgeo_job job;
    mmgeo_job_init(&job);
    job.n_sources = job.n_targets = 1;
    job.sources[0].path = in;
    job.sources[0].modality = "nir";
    mmgeo_profile_default("nir", GDT_Float32, &job.sources[0].profile); /* reflectance 0..1 */
    job.targets[0].path = out;
    job.targets[0].modality = "nir";
    job.targets[0].profile = job.sources[0].profile;
    job.targets[0].profile.out_type = GDT_Float32;
    mmgeo_run_stats st;
    job.stats = &st;
    mmgeo_processor proc = {mmgeo_process_identity, NULL, 32, 1, 1, {1}, {1}};
    proc.user = &proc;
    if (mmgeo_run_gsd(&job, &proc, 20, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(count_temporaries(), 0);
    assert_true(st.processed > 0 && st.processed <= 9); /* 60 x 45 working pixels: 3 x 2 */
    GDALDatasetH a = GDALOpen(in, GA_ReadOnly), b = GDALOpen(out, GA_ReadOnly);
    assert_non_null(b);
    assert_int_equal(GDALGetRasterXSize(b), W);
    assert_int_equal(GDALGetRasterYSize(b), H);
    double ga[6], gb[6];
    GDALGetGeoTransform(a, ga), GDALGetGeoTransform(b, gb);
    assert_memory_equal(ga, gb, sizeof ga);
    assert_true(OSRIsSame(GDALGetSpatialRef(a), GDALGetSpatialRef(b)));
    int has = 0;
    assert_true(GDALGetRasterNoDataValue(GDALGetRasterBand(b, 1), &has) == -1 && has);
    assert_non_null(GDALGetMetadataItem(b, "MM_MODALITY", NULL));
    float *va = malloc(sizeof(float) * W * H), *vb = malloc(sizeof(float) * W * H);
    assert_int_equal(
        GDALRasterIO(GDALGetRasterBand(a, 1), GF_Read, 0, 0, W, H, va, W, H, GDT_Float32, 0, 0),
        CE_None);
    assert_int_equal(
        GDALRasterIO(GDALGetRasterBand(b, 1), GF_Read, 0, 0, W, H, vb, W, H, GDT_Float32, 0, 0),
        CE_None);
    double maxe = 0, maxb = 0, sum = 0;
    int n = 0, nodata_kept = 1;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            const int k = y * W + x;
            /* the nodata block stays nodata, away from its border (resampling blurs the edge) */
            if (x >= 82 && x < 98 && y >= 12 && y < 28) nodata_kept &= vb[k] == -1.0f;
            if (x >= 76 && x < 104 && y >= 6 && y < 34) continue;
            if (vb[k] == -1.0f) fail_msg("pixel %d,%d is nodata", x, y);
            const double e = fabs((double)vb[k] - va[k]);
            if (x == 0 || y == 0 || x == W - 1 || y == H - 1) /* half a working pixel */
                maxb = e > maxb ? e : maxb;   /* beyond the last centres: extrapolated */
            else maxe = e > maxe ? e : maxe;
            sum += e, n++;
        }
    print_message("--gsd 20 on a 10 m raster, identity: max |error| %.4f inside, %.4f on the "
                  "border pixels, mean %.5f (%d px)\n",
                  maxe, maxb, sum / n, n);
    /* the tolerance: a 2 x 2 average then bilinear interpolation attenuate a sinusoid of 20
       working pixels by up to about 3% of its amplitude (0.3) */
    assert_true(nodata_kept);
    assert_true(maxe < 0.015);
    assert_true(maxb < 0.03);
    assert_true(sum / n < 0.006);
    GDALClose(a), GDALClose(b);
    /* a source window: the same region of the full --gsd run (to within the float rounding of
       the warper's coordinates, which depend on the working raster's origin) */
    char out2[512];
    snprintf(out2, sizeof out2, "%s", tmp_path("gsd_win.tif"));
    job.targets[0].path = out2;
    job.has_srcwin = 1;
    const int win[4] = {37, 21, 50, 40};
    memcpy(job.srcwin, win, sizeof win);
    if (mmgeo_run_gsd(&job, &proc, 20, err, sizeof err)) fail_msg("%s", err);
    GDALDatasetH c = GDALOpen(out2, GA_ReadOnly);
    assert_non_null(c);
    assert_int_equal(GDALGetRasterXSize(c), win[2]);
    assert_int_equal(GDALGetRasterYSize(c), win[3]);
    float *vc = malloc(sizeof(float) * win[2] * win[3]);
    assert_int_equal(GDALRasterIO(GDALGetRasterBand(c, 1), GF_Read, 0, 0, win[2], win[3], vc,
                                  win[2], win[3], GDT_Float32, 0, 0),
                     CE_None);
    double dmax = 0;
    for (int y = 0; y < win[3]; y++)
        for (int x = 0; x < win[2]; x++) {
            const float p = vc[y * win[2] + x], q = vb[(y + win[1]) * W + x + win[0]];
            assert_true((p == -1.0f) == (q == -1.0f));
            if (fabs((double)p - q) > dmax) dmax = fabs((double)p - q);
        }
    print_message("--gsd with -srcwin: max |difference| from the full run's region %.3g\n", dmax);
    assert_true(dmax <= 1e-5);
    GDALClose(c);
    free(va), free(vb), free(vc);
    job.targets[0].path = out;
    job.has_srcwin = 0;
    assert_int_equal(count_temporaries(), 0);

    /* geographic CRS: metres from the ellipsoid at the scene centre (checked against PROJ: the
       distance in UTM 32N of a pixel step, which is true to within its scale factor, 0.9996 to
       1.0004 here) */
    raster_spec s = {100, 80, 1, GDT_Byte, GEO_GEOGRAPHIC, 0, 0, 0, NULL};
    const char *geo = tmp_path("gsd_geo.tif");
    assert_int_equal(raster_write(geo, &s), 0);
    assert_int_equal(mmgeo_raster_gsd(geo, &gx, &gy, err, sizeof err), 0);
    OGRSpatialReferenceH ll = OSRNewSpatialReference(NULL), utm = OSRNewSpatialReference(NULL);
    OSRImportFromEPSG(ll, 4326), OSRImportFromEPSG(utm, 32632);
    OSRSetAxisMappingStrategy(ll, OAMS_TRADITIONAL_GIS_ORDER);
    OSRSetAxisMappingStrategy(utm, OAMS_TRADITIONAL_GIS_ORDER);
    OGRCoordinateTransformationH ct = OCTNewCoordinateTransformation(ll, utm);
    const double lon = 9.1 + 50 * 0.0001, lat = 45.6 - 40 * 0.0001; /* the centre */
    double px[3] = {lon, lon + 0.0001, lon}, py[3] = {lat, lat, lat - 0.0001};
    assert_true(OCTTransform(ct, 3, px, py, NULL));
    const double rx = hypot(px[1] - px[0], py[1] - py[0]), ry = hypot(px[2] - px[0], py[2] - py[0]);
    print_message("geographic 0.0001 deg at 45.6 N: %.4f x %.4f m (PROJ in UTM: %.4f x %.4f)\n",
                  gx, gy, rx, ry);
    assert_true(fabs(gx / rx - 1) < 1e-3 && fabs(gy / ry - 1) < 1e-3);
    OCTDestroyCoordinateTransformation(ct);
    OSRDestroySpatialReference(ll), OSRDestroySpatialReference(utm);

    /* the warning outside the model's range (its config's geo.gsd_range_m) */
    mmgeo_model_geo g;
    memset(&g, 0, sizeof g);
    g.gsd_lo_m = 1.5, g.gsd_hi_m = 4;
    job.warn = keep_warning;
    g_warned[0] = 0;
    mmgeo_gsd_check(&job, &g, 0); /* 10 m */
    assert_non_null(strstr(g_warned, "outside the model's range"));
    assert_non_null(strstr(g_warned, "--gsd"));
    g_warned[0] = 0;
    mmgeo_gsd_check(&job, &g, 2.5); /* --gsd inside: silent */
    assert_string_equal(g_warned, "");
    mmgeo_gsd_check(&job, &g, 20);
    assert_non_null(strstr(g_warned, "--gsd 20 m is outside"));
    g_warned[0] = 0;
    g.gsd_hi_m = 12; /* 10 m inside */
    mmgeo_gsd_check(&job, &g, 0);
    assert_string_equal(g_warned, "");
    g.gsd_lo_m = g.gsd_hi_m = 0; /* not stated: silent */
    mmgeo_gsd_check(&job, &g, 0);
    assert_string_equal(g_warned, "");
    /* generation: the output grid's GSD (10 m UTM) */
    mmgeo_job gen;
    mmgeo_job_init(&gen);
    gen.grid.width = 50, gen.grid.height = 40, gen.grid.srs = "EPSG:32632";
    const double ggt[6] = {500000, 10, 0, 5000000, 0, -10};
    memcpy(gen.grid.geotransform, ggt, sizeof ggt);
    gen.warn = keep_warning;
    g.gsd_lo_m = 1.5, g.gsd_hi_m = 4;
    mmgeo_gsd_check(&gen, &g, 0);
    assert_non_null(strstr(g_warned, "the output grid, 10 m"));
}

/* ---- generation from nothing on a grid (no source): two modalities jointly ---------------- */

static void test_model_generation(void **state) {
    (void)state;
    mm_model *model = NULL;
    char *e = NULL, err[1024];
    assert_int_equal(mm_model_open(MM_GOLDEN_DIR "/tiny_model.safetensors", &model, &e), MM_OK);
    mm_context_params cp;
    mm_context_params_default(&cp);
    cp.n_threads = 1;
    mm_context *ctx = NULL;
    assert_int_equal(mm_context_create(model, &cp, &ctx, &e), MM_OK);
    mmgeo_model_processor mp;
    memset(&mp, 0, sizeof mp);
    mm_sample_params_default(model, &mp.params);
    mp.params.steps = 1;
    mp.ctx = ctx;
    mp.n_targets = 2;
    mp.target_mods[0] = mm_model_modality_index(model, "rgb");
    mp.target_mods[1] = mm_model_modality_index(model, "sar");
    mmgeo_processor proc = {mmgeo_process_model, &mp, 32, 0, 2, {0}, {3, 1}};
    mmgeo_job job;
    mmgeo_job_init(&job);
    job.n_targets = 2;
    job.grid = (mmgeo_grid){40, 35, {300000, 20, 0, 4000000, 0, -20}, "EPSG:32633"};
    char p0[512], p1[512];
    snprintf(p0, sizeof p0, "%s", tmp_path("gen_rgb.tif"));
    snprintf(p1, sizeof p1, "%s", tmp_path("gen_sar.tif"));
    job.targets[0].path = p0, job.targets[0].modality = "rgb";
    job.targets[1].path = p1, job.targets[1].modality = "sar";
    mmgeo_profile_default("rgb", GDT_Unknown, &job.targets[0].profile);
    mmgeo_profile_default("sar", GDT_Unknown, &job.targets[1].profile);
    if (mmgeo_run(&job, &proc, err, sizeof err)) fail_msg("%s", err);
    const char *paths[2] = {p0, p1};
    for (int i = 0; i < 2; i++) {
        GDALDatasetH ds = GDALOpen(paths[i], GA_ReadOnly);
        assert_non_null(ds);
        assert_int_equal(GDALGetRasterXSize(ds), 40);
        assert_int_equal(GDALGetRasterYSize(ds), 35);
        assert_int_equal(GDALGetRasterCount(ds), i ? 1 : 3);
        double gt[6];
        assert_int_equal(GDALGetGeoTransform(ds, gt), CE_None);
        assert_true(gt[0] == 300000 && gt[1] == 20 && gt[3] == 4000000 && gt[5] == -20);
        OGRSpatialReferenceH srs = GDALGetSpatialRef(ds);
        assert_non_null(srs);
        assert_string_equal(OSRGetAuthorityCode(srs, NULL), "32633");
        GDALClose(ds);
    }
    job.grid.width = 0; /* no grid, no source */
    assert_int_equal(mmgeo_run(&job, &proc, err, sizeof err), MMGEO_ERROR);
    assert_non_null(strstr(err, "needs an output grid"));
    mm_context_free(ctx);
    mm_model_close(model);
}

/* ---- bad input ---------------------------------------------------------------------------- */

static int run_simple(const char *in, const char *out, int src_c, const char *format, char *err,
                      size_t errlen) {
    mmgeo_job job;
    mmgeo_job_init(&job);
    job.n_sources = job.n_targets = 1;
    job.sources[0].path = in;
    job.sources[0].modality = "rgb";
    mmgeo_profile_default("rgb", GDT_Byte, &job.sources[0].profile);
    job.targets[0].path = out;
    job.targets[0].modality = "nir";
    mmgeo_profile_default("nir", GDT_Unknown, &job.targets[0].profile);
    job.format = format;
    mmgeo_processor proc = {mmgeo_process_identity, NULL, 32, 1, 1, {src_c}, {1}};
    proc.user = &proc;
    return mmgeo_run(&job, &proc, err, errlen);
}

static void test_bad_input(void **state) {
    (void)state;
    char err[1024];
    raster_spec s = {40, 30, 1, GDT_Byte, GEO_UTM, 0, 0, 0, NULL};
    const char *in = tmp_path("bad_in.tif"), *out = tmp_path("bad_out.tif");
    assert_int_equal(raster_write(in, &s), 0);
    /* unreadable */
    FILE *f = fopen(tmp_path("garbage.tif"), "w");
    fputs("not a raster", f);
    fclose(f);
    assert_int_equal(run_simple(tmp_path("garbage.tif"), out, 1, NULL, err, sizeof err),
                     MMGEO_ERROR);
    assert_non_null(strstr(err, "cannot open"));
    assert_int_equal(run_simple(tmp_path("missing.tif"), out, 1, NULL, err, sizeof err),
                     MMGEO_ERROR);
    /* wrong band count */
    assert_int_equal(run_simple(in, out, 3, NULL, err, sizeof err), MMGEO_ERROR);
    assert_non_null(strstr(err, "has 1 band but modality 'rgb' needs 3"));
    /* unwritable output */
    assert_int_equal(run_simple(in, "/nonexistent-dir/out.tif", 1, NULL, err, sizeof err),
                     MMGEO_ERROR);
    assert_non_null(strstr(err, "cannot create"));
    assert_int_equal(run_simple(in, out, 1, "NoSuchFormat", err, sizeof err), MMGEO_ERROR);
    assert_non_null(strstr(err, "unknown output format"));
    assert_int_not_equal(access(out, F_OK), 0);
    assert_int_equal(count_temporaries(), 0);
    /* a format GDAL only writes by copy (COG) goes through a stage file */
    assert_int_equal(run_simple(in, tmp_path("cog_nir.tif"), 1, "COG", err, sizeof err), 0);
    GDALDatasetH ds = GDALOpen(tmp_path("cog_nir.tif"), GA_ReadOnly);
    assert_non_null(ds);
    assert_string_equal(GDALGetMetadataItem(ds, "LAYOUT", "IMAGE_STRUCTURE"), "COG");
    GDALClose(ds);
    assert_int_equal(count_temporaries(), 0);
}

int main(int argc, char **argv) {
    GDALAllRegister();
    if (argc > 1) cmocka_set_test_filter(argv[1]); /* e.g. test_runs */
    snprintf(g_dir, sizeof g_dir, "%s/mmgeo-test-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(g_dir)) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grid),
        cmocka_unit_test(test_profiles),
        cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_detect),
        cmocka_unit_test(test_runs),
        cmocka_unit_test(test_model_extent_independence),
        cmocka_unit_test(test_model_generation),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_model_geo),
        cmocka_unit_test(test_aoi),
        cmocka_unit_test(test_gsd),
        cmocka_unit_test(test_sar_units),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    DIR *d = opendir(g_dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.' || strstr(e->d_name, ".mmtmp-")) unlink(tmp_path(e->d_name));
    if (d) closedir(d);
    rmdir(g_dir);
    GDALDestroyDriverManager();
    return rc;
}
