/* Areas of interest: the polygons of an OGR layer, reprojected to a raster's CRS and unioned, as a
 * GEOS prepared geometry (reentrant API) against which windows and pixels are tested. */
#include <cpl_conv.h>
#include <cpl_error.h>
#include <geos_c.h>
#include <ogr_api.h>
#include <ogr_srs_api.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct mmgeo_aoi {
    GEOSContextHandle_t h;
    GEOSGeometry *geom; /* in the raster's CRS */
    const GEOSPreparedGeometry *prep;
    double gt[6]; /* pixel -> georeferenced */
};

/* GEOS messages are dropped: failures come back as NULL or 2 */
static void geos_msg(const char *fmt, ...) {
    (void)fmt;
}

void mmgeo_aoi_close(mmgeo_aoi *a) {
    if (!a) return;
    if (a->prep) GEOSPreparedGeom_destroy_r(a->h, a->prep);
    if (a->geom) GEOSGeom_destroy_r(a->h, a->geom);
    if (a->h) GEOS_finish_r(a->h);
    free(a);
}

static int is_polygonal(OGRwkbGeometryType t) {
    t = wkbFlatten(t);
    return t == wkbPolygon || t == wkbMultiPolygon || t == wkbCurvePolygon ||
           t == wkbMultiSurface || t == wkbPolyhedralSurface || t == wkbTIN || t == wkbTriangle;
}

int mmgeo_aoi_open(const char *path, const char *layer_name, const double gt[6],
                   OGRSpatialReferenceH raster_srs, mmgeo_warn_fn warn, void *warn_user,
                   mmgeo_aoi **out, char *err, size_t errlen) {
    *out = NULL;
    int rc = MMGEO_ERROR;
    GDALDatasetH ds = NULL;
    OGRCoordinateTransformationH ct = NULL;
    OGRSpatialReferenceH lsrs = NULL, rsrs = NULL;
    GEOSGeometry **parts = NULL;
    int n = 0, cap = 0, skipped = 0;
    GEOSWKBReader *reader = NULL;
    GEOSContextHandle_t h = NULL;
    mmgeo_aoi *a = calloc(1, sizeof *a);
    if (!a) return mmgeo_fail(err, errlen, "out of memory");
    memcpy(a->gt, gt, sizeof a->gt);
    double inv[6];
    if (!GDALInvGeoTransform(a->gt, inv)) {
        mmgeo_fail(err, errlen, "--aoi: the raster's geotransform cannot be inverted");
        goto done;
    }
    h = a->h = GEOS_init_r();
    if (!h) {
        mmgeo_fail(err, errlen, "--aoi: cannot start GEOS");
        goto done;
    }
    GEOSContext_setErrorHandler_r(a->h, geos_msg);
    GEOSContext_setNoticeHandler_r(a->h, geos_msg);
    reader = GEOSWKBReader_create_r(a->h);

    CPLErrorReset();
    CPLPushErrorHandler(CPLQuietErrorHandler);
    ds = GDALOpenEx(path, GDAL_OF_VECTOR | GDAL_OF_READONLY, NULL, NULL, NULL);
    CPLPopErrorHandler();
    if (!ds) {
        mmgeo_fail(err, errlen, "--aoi: cannot open '%s' as a vector file: %s", path,
                   *CPLGetLastErrorMsg() ? CPLGetLastErrorMsg() : "unknown format");
        goto done;
    }
    OGRLayerH layer = NULL;
    if (layer_name) {
        layer = GDALDatasetGetLayerByName(ds, layer_name);
        if (!layer) {
            char names[512] = "";
            for (int i = 0; i < GDALDatasetGetLayerCount(ds); i++)
                snprintf(names + strlen(names), sizeof names - strlen(names), "%s'%s'",
                         i ? ", " : "", OGR_L_GetName(GDALDatasetGetLayer(ds, i)));
            mmgeo_fail(err, errlen, "--aoi: '%s' has no layer '%s' (it has %s)", path, layer_name,
                       *names ? names : "none");
            goto done;
        }
    } else {
        if (GDALDatasetGetLayerCount(ds) < 1) {
            mmgeo_fail(err, errlen, "--aoi: '%s' has no layer", path);
            goto done;
        }
        layer = GDALDatasetGetLayer(ds, 0);
    }
    /* the layer's CRS to the raster's, both in GIS (x = easting / longitude) order */
    OGRSpatialReferenceH l0 = OGR_L_GetSpatialRef(layer);
    if (l0 && raster_srs) {
        lsrs = OSRClone(l0);
        rsrs = OSRClone(raster_srs);
        OSRSetAxisMappingStrategy(lsrs, OAMS_TRADITIONAL_GIS_ORDER);
        OSRSetAxisMappingStrategy(rsrs, OAMS_TRADITIONAL_GIS_ORDER);
        if (!OSRIsSame(lsrs, rsrs)) {
            CPLPushErrorHandler(CPLQuietErrorHandler);
            ct = OCTNewCoordinateTransformation(lsrs, rsrs);
            CPLPopErrorHandler();
            if (!ct) {
                mmgeo_fail(err, errlen, "--aoi: cannot transform '%s' to the raster's CRS: %s",
                           path,
                           *CPLGetLastErrorMsg() ? CPLGetLastErrorMsg() : "no transformation");
                goto done;
            }
        }
    } else if (warn) {
        char msg[1024];
        snprintf(msg, sizeof msg,
                 "--aoi: %s has no coordinate reference system; its coordinates "
                 "are taken as the raster's",
                 l0 ? "the raster" : path);
        warn(warn_user, msg);
    }
    OGR_L_ResetReading(layer);
    OGRFeatureH f;
    while ((f = OGR_L_GetNextFeature(layer))) {
        OGRGeometryH g = OGR_F_GetGeometryRef(f);
        if (!g || OGR_G_IsEmpty(g) || !is_polygonal(OGR_G_GetGeometryType(g))) {
            skipped++;
            OGR_F_Destroy(f);
            continue;
        }
        OGRGeometryH c = OGR_G_ForceToMultiPolygon(OGR_G_GetLinearGeometry(g, 0, NULL));
        if (ct && OGR_G_Transform(c, ct) != OGRERR_NONE) {
            OGR_G_DestroyGeometry(c);
            OGR_F_Destroy(f);
            mmgeo_fail(err, errlen,
                       "--aoi: a feature of '%s' cannot be transformed to the "
                       "raster's CRS",
                       path);
            goto done;
        }
        const size_t nb = (size_t)OGR_G_WkbSize(c);
        unsigned char *wkb = malloc(nb);
        GEOSGeometry *gg = NULL;
        if (wkb && OGR_G_ExportToWkb(c, wkbNDR, wkb) == OGRERR_NONE)
            gg = GEOSWKBReader_read_r(a->h, reader, wkb, nb);
        free(wkb);
        OGR_G_DestroyGeometry(c);
        OGR_F_Destroy(f);
        if (gg && !GEOSisValid_r(a->h, gg)) {
            GEOSGeometry *v = GEOSMakeValid_r(a->h, gg);
            GEOSGeom_destroy_r(a->h, gg);
            gg = v;
        }
        if (!gg) {
            mmgeo_fail(err, errlen, "--aoi: GEOS cannot read a polygon of '%s'", path);
            goto done;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            GEOSGeometry **p = realloc(parts, sizeof *p * (size_t)cap);
            if (!p) {
                GEOSGeom_destroy_r(a->h, gg);
                mmgeo_fail(err, errlen, "out of memory");
                goto done;
            }
            parts = p;
        }
        parts[n++] = gg;
    }
    if (n == 0) {
        mmgeo_fail(err, errlen, "--aoi: layer '%s' of '%s' has no polygon%s", OGR_L_GetName(layer),
                   path, skipped ? " (only other geometries)" : "");
        goto done;
    }
    GEOSGeometry *coll =
        GEOSGeom_createCollection_r(a->h, GEOS_GEOMETRYCOLLECTION, parts, (unsigned)n);
    if (coll) n = 0; /* owned by the collection now */
    a->geom = coll ? GEOSUnaryUnion_r(a->h, coll) : NULL;
    if (coll) GEOSGeom_destroy_r(a->h, coll);
    if (!a->geom || !(a->prep = GEOSPrepare_r(a->h, a->geom))) {
        mmgeo_fail(err, errlen, "--aoi: GEOS cannot union the polygons of '%s'", path);
        goto done;
    }
    if (skipped && warn) {
        char msg[1024];
        snprintf(msg, sizeof msg, "--aoi: %d feature%s of '%s' without a polygon ignored", skipped,
                 skipped == 1 ? "" : "s", path);
        warn(warn_user, msg);
    }
    *out = a;
    a = NULL;
    rc = 0;
done:
    for (int i = 0; i < n; i++)
        GEOSGeom_destroy_r(h, parts[i]);
    free(parts);
    if (reader) GEOSWKBReader_destroy_r(h, reader);
    if (ct) OCTDestroyCoordinateTransformation(ct);
    if (lsrs) OSRDestroySpatialReference(lsrs);
    if (rsrs) OSRDestroySpatialReference(rsrs);
    if (ds) GDALClose(ds);
    mmgeo_aoi_close(a);
    return rc;
}

int mmgeo_aoi_open_raster(const char *path, const char *layer, const char *raster,
                          mmgeo_warn_fn warn, void *warn_user, mmgeo_aoi **out, char *err,
                          size_t errlen) {
    *out = NULL;
    CPLPushErrorHandler(CPLQuietErrorHandler);
    GDALDatasetH ds = GDALOpenEx(raster, GDAL_OF_RASTER | GDAL_OF_READONLY, NULL, NULL, NULL);
    CPLPopErrorHandler();
    if (!ds) return mmgeo_fail(err, errlen, "cannot open '%s' as a raster", raster);
    double gt[6];
    int rc;
    if (GDALGetGeoTransform(ds, gt) != CE_None)
        rc = mmgeo_fail(err, errlen, "--aoi: '%s' has no geotransform", raster);
    else
        rc = mmgeo_aoi_open(path, layer, gt, GDALGetSpatialRef(ds), warn, warn_user, out, err,
                            errlen);
    GDALClose(ds);
    return rc;
}

/* The georeferenced polygon of the pixel rectangle [x0, x1) x [y0, y1). */
static GEOSGeometry *rect(const mmgeo_aoi *a, double x0, double y0, double x1, double y1) {
    const double px[5] = {x0, x1, x1, x0, x0}, py[5] = {y0, y0, y1, y1, y0};
    GEOSCoordSequence *s = GEOSCoordSeq_create_r(a->h, 5, 2);
    if (!s) return NULL;
    for (unsigned i = 0; i < 5; i++)
        GEOSCoordSeq_setXY_r(a->h, s, i, a->gt[0] + px[i] * a->gt[1] + py[i] * a->gt[2],
                             a->gt[3] + px[i] * a->gt[4] + py[i] * a->gt[5]);
    GEOSGeometry *ring = GEOSGeom_createLinearRing_r(a->h, s);
    return ring ? GEOSGeom_createPolygon_r(a->h, ring, NULL, 0) : NULL;
}

/* 0: the rectangle does not meet the AOI, 2: it lies inside, 1: partly (or GEOS failed). */
static int test_rect(const mmgeo_aoi *a, double x0, double y0, double x1, double y1) {
    GEOSGeometry *r = rect(a, x0, y0, x1, y1);
    if (!r) return 1;
    int res = 1;
    if (GEOSPreparedIntersects_r(a->h, a->prep, r) == 0)
        res = 0;
    else if (GEOSPreparedContains_r(a->h, a->prep, r) == 1)
        res = 2;
    GEOSGeom_destroy_r(a->h, r);
    return res;
}

int mmgeo_aoi_window(const mmgeo_aoi *a, int ox, int oy, int S, int W, int H, uint8_t *valid) {
    const int w = ox + S <= W ? S : W - ox, h = oy + S <= H ? S : H - oy;
    const int t = test_rect(a, ox, oy, ox + w, oy + h);
    if (t != 1) return t;
    enum { B = 16 }; /* blocks inside or outside as a whole; pixel centres in the others */
    for (int by = 0; by < h; by += B)
        for (int bx = 0; bx < w; bx += B) {
            const int bw = bx + B <= w ? B : w - bx, bh = by + B <= h ? B : h - by;
            const int tb = test_rect(a, ox + bx, oy + by, ox + bx + bw, oy + by + bh);
            if (tb == 2) continue;
            for (int y = by; y < by + bh; y++)
                for (int x = bx; x < bx + bw; x++) {
                    int in = 0;
                    if (tb == 1) {
                        const double cx = ox + x + 0.5, cy = oy + y + 0.5;
                        GEOSGeometry *p = GEOSGeom_createPointFromXY_r(
                            a->h, a->gt[0] + cx * a->gt[1] + cy * a->gt[2],
                            a->gt[3] + cx * a->gt[4] + cy * a->gt[5]);
                        in = p && GEOSPreparedIntersects_r(a->h, a->prep, p) == 1;
                        if (p) GEOSGeom_destroy_r(a->h, p);
                    }
                    if (!in) valid[(size_t)y * S + x] = 0;
                }
        }
    return 1;
}

int mmgeo_aoi_meets(const mmgeo_aoi *a, int x, int y, int w, int h) {
    return test_rect(a, x, y, x + w, y + h) != 0;
}

int mmgeo_aoi_open_job(const char *path, const char *layer, const mmgeo_job *job, mmgeo_aoi **out,
                       char *err, size_t errlen) {
    *out = NULL;
    if (job->n_sources < 1) { /* generation: the job's grid */
        const mmgeo_grid *g = &job->grid;
        OGRSpatialReferenceH srs = NULL;
        if (g->srs) {
            srs = OSRNewSpatialReference(NULL);
            OSRSetAxisMappingStrategy(srs, OAMS_TRADITIONAL_GIS_ORDER);
            if (OSRSetFromUserInput(srs, g->srs) != OGRERR_NONE) {
                OSRDestroySpatialReference(srs);
                return mmgeo_fail(err, errlen, "--aoi: cannot read the CRS '%s'", g->srs);
            }
        }
        int rc = mmgeo_aoi_open(path, layer, g->geotransform, srs, job->warn, job->warn_user, out,
                                err, errlen);
        if (srs) OSRDestroySpatialReference(srs);
        if (rc) return rc;
        if (g->width < 1 || g->height < 1 || !mmgeo_aoi_meets(*out, 0, 0, g->width, g->height)) {
            mmgeo_aoi_close(*out);
            *out = NULL;
            return mmgeo_fail(err, errlen, "--aoi: '%s'%s%s does not overlap the output grid", path,
                              layer ? " layer " : "", layer ? layer : "");
        }
        return 0;
    }
    const char *raster = job->sources[0].path;
    if (mmgeo_aoi_open_raster(path, layer, raster, job->warn, job->warn_user, out, err, errlen))
        return MMGEO_ERROR;
    int x = 0, y = 0, w = 0, h = 0;
    if (job->has_srcwin) {
        x = job->srcwin[0], y = job->srcwin[1], w = job->srcwin[2], h = job->srcwin[3];
    } else {
        CPLPushErrorHandler(CPLQuietErrorHandler);
        GDALDatasetH ds = GDALOpenEx(raster, GDAL_OF_RASTER | GDAL_OF_READONLY, NULL, NULL, NULL);
        CPLPopErrorHandler();
        if (ds) w = GDALGetRasterXSize(ds), h = GDALGetRasterYSize(ds), GDALClose(ds);
    }
    if (w < 1 || h < 1 || !mmgeo_aoi_meets(*out, x, y, w, h)) {
        mmgeo_aoi_close(*out);
        *out = NULL;
        return mmgeo_fail(err, errlen,
                          "--aoi: '%s'%s%s does not overlap the processed extent of "
                          "'%s'",
                          path, layer ? " layer " : "", layer ? layer : "", raster);
    }
    return 0;
}

mmgeo_aoi *mmgeo_aoi_regrid(const mmgeo_aoi *a, const double gt[6]) {
    mmgeo_aoi *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    memcpy(b->gt, gt, sizeof b->gt);
    b->h = GEOS_init_r();
    if (b->h) {
        GEOSContext_setErrorHandler_r(b->h, geos_msg);
        GEOSContext_setNoticeHandler_r(b->h, geos_msg);
        b->geom = GEOSGeom_clone_r(b->h, a->geom);
    }
    if (!b->geom || !(b->prep = GEOSPrepare_r(b->h, b->geom))) {
        mmgeo_aoi_close(b);
        return NULL;
    }
    return b;
}
