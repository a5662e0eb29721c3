/* Working resolution (--gsd): the sources warped to a grid of the requested ground sample
 * distance over the same extent (GDAL's warper, through warped VRTs), the processor run there,
 * and its results warped back onto the input grid; and the ground sample distance of a raster. */
#define _GNU_SOURCE /* realpath */
#include <cpl_conv.h>
#include <cpl_string.h>
#include <cpl_vsi.h>
#include <gdal_alg.h>
#include <gdalwarper.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static const char *gdal_msg(void) {
    const char *m = CPLGetLastErrorMsg();
    return m && *m ? m : "GDAL gave no reason";
}

/* Metres per pixel along the two axes of a W x H grid of geotransform gt in srs (name: for
 * messages). */
static int gsd_of_grid(const double gt[6], OGRSpatialReferenceH srs, int W, int H, const char *name,
                       double *gx, double *gy, char *err, size_t errlen) {
    double sx = hypot(gt[1], gt[4]), sy = hypot(gt[2], gt[5]); /* CRS units per pixel */
    if (!srs)
        return mmgeo_fail(err, errlen,
                          "'%s' has no coordinate reference system, so no ground "
                          "sample distance",
                          name);
    if (OSRIsGeographic(srs)) {
        /* degrees -> metres on the ellipsoid at the scene centre: the meridional radius of
           curvature M for latitude, the prime vertical N cos(lat) for longitude */
        const double cx = W / 2.0, cy = H / 2.0;
        const double lat = (gt[3] + cx * gt[4] + cy * gt[5]) * M_PI / 180.0;
        OGRErr e1 = OGRERR_NONE, e2 = OGRERR_NONE;
        const double a = OSRGetSemiMajor(srs, &e1), invf = OSRGetInvFlattening(srs, &e2);
        if (e1 != OGRERR_NONE || !(a > 0))
            return mmgeo_fail(err, errlen, "the ellipsoid of '%s' is unknown", name);
        const double f = invf > 0 ? 1.0 / invf : 0.0, e2s = f * (2 - f);
        const double w = sqrt(1 - e2s * sin(lat) * sin(lat));
        const double M = a * (1 - e2s) / (w * w * w), N = a / w;
        const double unit = OSRGetAngularUnits(srs, NULL); /* radians per CRS unit */
        const double mx = N * cos(lat) * unit, my = M * unit;
        /* each pixel axis in metres (x: longitude, y: latitude in GDAL's GIS order) */
        *gx = hypot(gt[1] * mx, gt[4] * my), *gy = hypot(gt[2] * mx, gt[5] * my);
    } else {
        const double unit = OSRGetLinearUnits(srs, NULL); /* metres per CRS unit */
        *gx = sx * unit, *gy = sy * unit;
    }
    if (!(*gx > 0) || !(*gy > 0) || !isfinite(*gx) || !isfinite(*gy))
        return mmgeo_fail(err, errlen, "'%s' has a degenerate geotransform", name);
    return 0;
}

/* The same for a raster. */
static int gsd_of(GDALDatasetH ds, double *gx, double *gy, char *err, size_t errlen) {
    double gt[6];
    if (GDALGetGeoTransform(ds, gt) != CE_None)
        return mmgeo_fail(err, errlen, "'%s' has no geotransform, so no ground sample distance",
                          GDALGetDescription(ds));
    return gsd_of_grid(gt, GDALGetSpatialRef(ds), GDALGetRasterXSize(ds), GDALGetRasterYSize(ds),
                       GDALGetDescription(ds), gx, gy, err, errlen);
}

/* The same for a job's grid (generation). */
static int gsd_of_job_grid(const mmgeo_grid *g, double *gx, double *gy, char *err, size_t errlen) {
    OGRSpatialReferenceH srs = NULL;
    if (g->srs) {
        srs = OSRNewSpatialReference(NULL);
        if (OSRSetFromUserInput(srs, g->srs) != OGRERR_NONE) {
            OSRDestroySpatialReference(srs);
            return mmgeo_fail(err, errlen, "cannot read the CRS '%s'", g->srs);
        }
    }
    int rc = gsd_of_grid(g->geotransform, srs, g->width, g->height, "the output grid", gx, gy, err,
                         errlen);
    if (srs) OSRDestroySpatialReference(srs);
    return rc;
}

int mmgeo_raster_gsd(const char *path, double *gsd_x, double *gsd_y, char *err, size_t errlen) {
    GDALDatasetH ds = mmgeo_open_raster(path, err, errlen);
    if (!ds) return MMGEO_ERROR;
    int rc = gsd_of(ds, gsd_x, gsd_y, err, errlen);
    GDALClose(ds);
    return rc;
}

void mmgeo_gsd_check(const mmgeo_job *job, const mmgeo_model_geo *geo, double working_gsd) {
    if (!job->warn || !geo || !(geo->gsd_hi_m > 0)) return;
    char msg[1024];
    if (working_gsd > 0) {
        if (working_gsd < geo->gsd_lo_m || working_gsd > geo->gsd_hi_m) {
            snprintf(msg, sizeof msg, "--gsd %g m is outside the model's range, %g to %g m",
                     working_gsd, geo->gsd_lo_m, geo->gsd_hi_m);
            job->warn(job->warn_user, msg);
        }
        return;
    }
    double gx, gy;
    if (job->n_sources < 1 ? gsd_of_job_grid(&job->grid, &gx, &gy, NULL, 0)
                           : mmgeo_raster_gsd(job->sources[0].path, &gx, &gy, NULL, 0))
        return; /* nothing to say */
    const double g = sqrt(gx * gy);
    if (g < geo->gsd_lo_m * 0.999 || g > geo->gsd_hi_m * 1.001) {
        char name[512];
        if (job->n_sources < 1)
            snprintf(name, sizeof name, "the output grid");
        else
            snprintf(name, sizeof name, "'%s'", job->sources[0].path);
        snprintf(msg, sizeof msg,
                 "the ground sample distance of %s, %.3g m, is outside the model's range, %g "
                 "to %g m; run the model at a working resolution with --gsd (e.g. --gsd %g)",
                 name, g, geo->gsd_lo_m, geo->gsd_hi_m,
                 g < geo->gsd_lo_m ? geo->gsd_lo_m : geo->gsd_hi_m);
        job->warn(job->warn_user, msg);
    }
}

/* A warped VRT of src onto (W, H, gt) in src's CRS, written to vrt_path. */
static int warp_vrt(GDALDatasetH src, int W, int H, const double gt[6], GDALResampleAlg alg,
                    const char *vrt_path, char *err, size_t errlen) {
    double sgt[6];
    GDALGetGeoTransform(src, sgt);
    const int n = GDALGetRasterCount(src);
    GDALRasterBandH b1 = GDALGetRasterBand(src, 1);
    int has_nd = 0;
    const double nd = GDALGetRasterNoDataValue(b1, &has_nd);
    const int flags = GDALGetMaskFlags(b1);
    int nb = n;
    /* an alpha band travels as the warped dataset's own alpha */
    if (n > 1 && GDALGetRasterColorInterpretation(GDALGetRasterBand(src, n)) == GCI_AlphaBand) nb--;
    GDALWarpOptions *wo = GDALCreateWarpOptions();
    wo->hSrcDS = src;
    wo->nBandCount = nb;
    wo->panSrcBands = CPLMalloc(sizeof(int) * (size_t)nb);
    wo->panDstBands = CPLMalloc(sizeof(int) * (size_t)nb);
    for (int i = 0; i < nb; i++)
        wo->panSrcBands[i] = wo->panDstBands[i] = i + 1;
    wo->eResampleAlg = alg;
    if (has_nd) {
        wo->padfSrcNoDataReal = CPLMalloc(sizeof(double) * (size_t)nb);
        wo->padfDstNoDataReal = CPLMalloc(sizeof(double) * (size_t)nb);
        for (int i = 0; i < nb; i++)
            wo->padfSrcNoDataReal[i] = wo->padfDstNoDataReal[i] = nd;
        wo->papszWarpOptions = CSLSetNameValue(wo->papszWarpOptions, "INIT_DEST", "NO_DATA");
    } else if (!(flags & GMF_ALL_VALID)) {
        if (nb < n) wo->nSrcAlphaBand = n;
        wo->nDstAlphaBand = nb + 1;
        wo->papszWarpOptions = CSLSetNameValue(wo->papszWarpOptions, "INIT_DEST", "0");
    }
    const char *wkt = GDALGetProjectionRef(src);
    wo->pTransformerArg = GDALCreateGenImgProjTransformer3(wkt, sgt, wkt, gt);
    wo->pfnTransformer = GDALGenImgProjTransform;
    if (!wo->pTransformerArg) {
        GDALDestroyWarpOptions(wo);
        return mmgeo_fail(err, errlen, "--gsd: cannot set up the warp: %s", gdal_msg());
    }
    double g[6];
    memcpy(g, gt, sizeof g);
    GDALDatasetH vrt = GDALCreateWarpedVRT(src, W, H, g, wo);
    if (!vrt) {
        GDALDestroyTransformer(wo->pTransformerArg);
        GDALDestroyWarpOptions(wo);
        return mmgeo_fail(err, errlen, "--gsd: cannot create the warped raster: %s", gdal_msg());
    }
    GDALDestroyWarpOptions(wo); /* the VRT holds a copy and owns the transformer */
    GDALSetProjection(vrt, wkt);
    if (has_nd)
        for (int i = 0; i < nb; i++)
            GDALSetRasterNoDataValue(GDALGetRasterBand(vrt, i + 1), nd);
    for (int i = 0; i < nb; i++)
        GDALSetRasterColorInterpretation(
            GDALGetRasterBand(vrt, i + 1),
            GDALGetRasterColorInterpretation(GDALGetRasterBand(src, i + 1)));
    const char *mod = GDALGetMetadataItem(src, "MM_MODALITY", NULL);
    if (mod) GDALSetMetadataItem(vrt, "MM_MODALITY", mod, NULL);
    GDALSetDescription(vrt, vrt_path);
    GDALClose(vrt); /* writes the VRT */
    VSIStatBufL st;
    if (VSIStatL(vrt_path, &st) != 0)
        return mmgeo_fail(err, errlen, "--gsd: cannot write the warped raster: %s", gdal_msg());
    return 0;
}

static GDALDatasetH open_abs(const char *path, char *abs, size_t n) {
    char *r = realpath(path, NULL);
    snprintf(abs, n, "%s", r ? r : path);
    free(r);
    CPLPushErrorHandler(CPLQuietErrorHandler);
    GDALDatasetH ds = GDALOpenEx(abs, GDAL_OF_RASTER | GDAL_OF_READONLY, NULL, NULL, NULL);
    CPLPopErrorHandler();
    return ds;
}

/* The message of a failed open (mmgeo_open_raster's); MMGEO_ERROR. */
static int open_failed(const char *path, char *err, size_t errlen) {
    GDALDatasetH d = mmgeo_open_raster(path, err, errlen);
    if (d) { /* readable after all (a race): still a failure here */
        GDALClose(d);
        return mmgeo_fail(err, errlen, "cannot open '%s' as a raster", path);
    }
    return MMGEO_ERROR;
}

typedef struct {
    GDALProgressFunc fn;
    void *arg;
    double a, b;
} span;
static int CPL_STDCALL scaled(double f, const char *msg, void *arg) {
    const span *s = arg;
    return s->fn(s->a + f * (s->b - s->a), msg, s->arg);
}

/* Warnings of the inner runs name the user's files, not the warped VRTs and working files. */
typedef struct {
    mmgeo_warn_fn fn;
    void *user;
    int n;
    const char *from[3 * MMGEO_MAX_IO], *to[3 * MMGEO_MAX_IO];
} renamer;
static void renamed(void *user, const char *msg) {
    const renamer *r = user;
    char out[2048];
    size_t o = 0;
    while (*msg && o + 1 < sizeof out) {
        int hit = -1;
        for (int i = 0; i < r->n && hit < 0; i++)
            if (r->from[i][0] && strncmp(msg, r->from[i], strlen(r->from[i])) == 0) hit = i;
        if (hit >= 0) {
            o += (size_t)snprintf(out + o, sizeof out - o, "%s", r->to[hit]);
            if (o >= sizeof out) o = sizeof out - 1;
            msg += strlen(r->from[hit]);
        } else {
            out[o++] = *msg++;
        }
    }
    out[o] = 0;
    r->fn(r->user, out);
}

int mmgeo_run_gsd(const mmgeo_job *job, const mmgeo_processor *proc, double gsd, char *err,
                  size_t errlen) {
    if (job->out_scale > 1)
        return mmgeo_fail(err, errlen, "--gsd does not write scaled outputs (token grids)");
    if (!(gsd > 0) || !isfinite(gsd))
        return mmgeo_fail(err, errlen, "--gsd must be a positive number of metres");
    if (mmgeo_check_targets(job, err, errlen) || mmgeo_check_job_creation_options(job, err, errlen))
        return MMGEO_ERROR;
    const int ns = job->n_sources, nt = job->n_targets;
    int rc = MMGEO_ERROR;
    char abs[4096], fwd[MMGEO_MAX_IO][128], back[MMGEO_MAX_IO][128];
    char work[MMGEO_MAX_IO][4096], staged[MMGEO_MAX_IO][4096];
    memset(fwd, 0, sizeof fwd), memset(back, 0, sizeof back), memset(work, 0, sizeof work);
    memset(staged, 0, sizeof staged);
    mmgeo_aoi *aoi = NULL;
    static int seq = 0;
    const int id = ++seq;

    double gx, gy, gt[6];
    int W, H;
    if (ns == 0) { /* generation: the job's grid */
        if (gsd_of_job_grid(&job->grid, &gx, &gy, err, errlen)) return MMGEO_ERROR;
        memcpy(gt, job->grid.geotransform, sizeof gt);
        W = job->grid.width, H = job->grid.height;
    } else {
        GDALDatasetH s0 = open_abs(job->sources[0].path, abs, sizeof abs);
        if (!s0) return open_failed(job->sources[0].path, err, errlen);
        if (gsd_of(s0, &gx, &gy, err, errlen)) {
            GDALClose(s0);
            return mmgeo_fail(err, errlen, "--gsd: '%s' needs a geotransform and a CRS",
                              job->sources[0].path);
        }
        GDALGetGeoTransform(s0, gt);
        W = GDALGetRasterXSize(s0), H = GDALGetRasterYSize(s0);
        GDALClose(s0);
    }
    const double fx = gx / gsd, fy = gy / gsd; /* working pixels per input pixel */
    const double w2 = floor(W * fx + 0.5), h2 = floor(H * fy + 0.5);
    if (mmgeo_size_guard(job, "working grid of --gsd", w2, h2, 0, err, errlen)) return MMGEO_ERROR;
    if (w2 < 1 || h2 < 1 || w2 > INT_MAX / 4 || h2 > INT_MAX / 4)
        return mmgeo_fail(err, errlen, "--gsd %g m gives a %.0f x %.0f working grid", gsd, w2, h2);
    const int Wk = (int)w2, Hk = (int)h2;
    const double kx = (double)W / Wk, ky = (double)H / Hk;
    const double gtk[6] = {gt[0], gt[1] * kx, gt[2] * ky, gt[3], gt[4] * kx, gt[5] * ky};
    /* 1. the sources on the working grid (and the AOI) */
    mmgeo_job j1 = *job;
    renamer rn = {job->warn, job->warn_user, 0, {0}, {0}};
    for (int i = 0; i < ns; i++)
        rn.from[rn.n] = fwd[i], rn.to[rn.n++] = job->sources[i].path;
    for (int j = 0; j < nt; j++) {
        rn.from[rn.n] = back[j], rn.to[rn.n++] = ns ? job->sources[0].path : job->targets[j].path;
        rn.from[rn.n] = work[j], rn.to[rn.n++] = job->targets[j].path;
    }
    if (job->warn) j1.warn = renamed, j1.warn_user = &rn;
    if (job->aoi && !(aoi = mmgeo_aoi_regrid(job->aoi, gtk))) {
        mmgeo_fail(err, errlen, "out of memory");
        goto out;
    }
    j1.aoi = aoi;
    if (ns == 0) {
        j1.grid.width = Wk, j1.grid.height = Hk;
        memcpy(j1.grid.geotransform, gtk, sizeof gtk);
    }
    if (job->has_srcwin) { /* the working pixels under it, with a margin for the kernels */
        const int *w = job->srcwin;
        const int m = 2 + (int)ceil(1.0 / (kx < ky ? kx : ky));
        int a0 = (int)floor(w[0] / kx) - m, b0 = (int)floor(w[1] / ky) - m;
        int a1 = (int)ceil((w[0] + w[2]) / kx) + m, b1 = (int)ceil((w[1] + w[3]) / ky) + m;
        a0 = a0 < 0 ? 0 : a0, b0 = b0 < 0 ? 0 : b0;
        a1 = a1 > Wk ? Wk : a1, b1 = b1 > Hk ? Hk : b1;
        j1.srcwin[0] = a0, j1.srcwin[1] = b0, j1.srcwin[2] = a1 - a0, j1.srcwin[3] = b1 - b0;
    }
    for (int i = 0; i < ns; i++) {
        GDALDatasetH s = open_abs(job->sources[i].path, abs, sizeof abs);
        if (!s) {
            open_failed(job->sources[i].path, err, errlen);
            goto out;
        }
        snprintf(fwd[i], sizeof fwd[i], "/vsimem/mmgeo-gsd-%ld-%d-src%d.vrt", (long)getpid(), id,
                 i);
        double sg[6];
        const int same = GDALGetRasterXSize(s) == W && GDALGetRasterYSize(s) == H &&
                         GDALGetGeoTransform(s, sg) == CE_None;
        const GDALResampleAlg alg = kx >= 1 || ky >= 1 ? GRA_Average : GRA_Bilinear;
        int e = same ? warp_vrt(s, Wk, Hk, gtk, alg, fwd[i], err, errlen)
                     : mmgeo_fail(err, errlen, "'%s' and '%s' must share one grid",
                                  job->sources[i].path, job->sources[0].path);
        GDALClose(s);
        if (e) goto out;
        j1.sources[i].path = fwd[i];
    }
    /* 2. the run on the working grid, into temporary Float32 rasters of the raw results */
    for (int j = 0; j < nt; j++) {
        const char *t = job->targets[j].path, *slash = strrchr(t, '/');
        snprintf(work[j], sizeof work[j], "%.*s.%s.mmgsd-%ld-%d-%d.tif",
                 slash ? (int)(slash - t + 1) : 0, t, slash ? slash + 1 : t, (long)getpid(), id, j);
        j1.targets[j].path = work[j];
        mmgeo_profile_default(NULL, GDT_Unknown, &j1.targets[j].profile);
        j1.targets[j].profile.kind = MMGEO_IO_RAW;
    }
    j1.format = "GTiff";
    j1.create_options = NULL;
    span sp1 = {job->progress, job->progress_arg, 0.0, 0.9};
    if (job->progress) j1.progress = scaled, j1.progress_arg = &sp1;
    int r = mmgeo_run(&j1, proc, err, errlen);
    if (r) {
        rc = r;
        goto out;
    }
    /* 3. each result warped back onto the input grid and written as the target */
    for (int j = 0; j < nt; j++) {
        GDALDatasetH w = open_abs(work[j], abs, sizeof abs);
        if (!w) {
            mmgeo_fail(err, errlen, "cannot read the working result '%s'", work[j]);
            goto out;
        }
        snprintf(back[j], sizeof back[j], "/vsimem/mmgeo-gsd-%ld-%d-back%d.vrt", (long)getpid(), id,
                 j);
        const GDALResampleAlg alg = kx <= 1 || ky <= 1 ? GRA_Average : GRA_Bilinear;
        int e = warp_vrt(w, W, H, gt, alg, back[j], err, errlen);
        const int C = proc->dst_channels[j];
        GDALClose(w);
        if (e) goto out;
        mmgeo_job j2 = *job;
        if (job->warn) j2.warn = renamed, j2.warn_user = &rn;
        j2.n_sources = 1;
        j2.sources[0].path = back[j];
        j2.sources[0].modality = job->targets[j].modality;
        j2.sources[0].n_bands = 0;
        mmgeo_profile_default(NULL, GDT_Float32, &j2.sources[0].profile);
        j2.sources[0].profile.kind = MMGEO_IO_RAW;
        j2.n_targets = 1;
        j2.targets[0] = job->targets[j];
        if (nt > 1) { /* written under a staged name; all renamed once all are written */
            const char *t = job->targets[j].path, *slash = strrchr(t, '/');
            const char *base = slash ? slash + 1 : t, *dot = strrchr(base, '.');
            snprintf(staged[j], sizeof staged[j], "%.*s.%.*s.mmgsd-%ld-%d-out%d%s", (int)(base - t),
                     t, (int)(dot && dot != base ? dot - base : (long)strlen(base)), base,
                     (long)getpid(), id, j, dot && dot != base ? dot : "");
            j2.targets[0].path = staged[j];
        }
        j2.aoi = job->aoi; /* its exact outline on the input grid */
        j2.stats = NULL;
        j2.overlap = 0;
        j2.batch = 1;
        span sp2 = {job->progress, job->progress_arg, 0.9 + 0.1 * j / nt, 0.9 + 0.1 * (j + 1) / nt};
        if (job->progress) j2.progress = scaled, j2.progress_arg = &sp2;
        mmgeo_processor id_proc = {mmgeo_process_identity, NULL, 256, 1, 1, {C}, {C}};
        id_proc.user = &id_proc;
        r = mmgeo_run(&j2, &id_proc, err, errlen);
        if (r) {
            rc = r;
            goto out;
        }
    }
    for (int j = 0; nt > 1 && j < nt; j++) {
        GDALDriverH drv = GDALIdentifyDriver(staged[j], NULL);
        if (!drv || GDALRenameDataset(drv, job->targets[j].path, staged[j]) != CE_None) {
            mmgeo_fail(err, errlen, "cannot rename '%s' to '%s': %s", staged[j],
                       job->targets[j].path, gdal_msg());
            goto out;
        }
        staged[j][0] = 0;
    }
    rc = 0;
out:
    mmgeo_aoi_close(aoi);
    for (int i = 0; i < MMGEO_MAX_IO; i++) {
        if (fwd[i][0]) VSIUnlink(fwd[i]);
        if (back[i][0]) VSIUnlink(back[i]);
        if (staged[i][0]) {
            GDALDriverH drv = GDALIdentifyDriver(staged[i], NULL);
            CPLPushErrorHandler(CPLQuietErrorHandler);
            if (!drv || GDALDeleteDataset(drv, staged[i]) != CE_None) VSIUnlink(staged[i]);
            CPLPopErrorHandler();
        }
        if (work[i][0]) {
            CPLPushErrorHandler(CPLQuietErrorHandler);
            GDALDeleteDataset(GDALGetDriverByName("GTiff"), work[i]);
            CPLPopErrorHandler();
        }
    }
    return rc;
}
