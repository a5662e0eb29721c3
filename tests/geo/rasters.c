#include "rasters.h"

#include <cpl_conv.h>
#include <cpl_string.h>
#include <math.h>
#include <ogr_srs_api.h>
#include <stdlib.h>

void raster_value(const raster_spec *s, int x, int y, int b, double *re, double *im) {
    const double u = x / 17.0, v = y / 13.0;
    const double f = 0.5 + 0.25 * sin(u + 1.3 * b) * cos(v - 0.7 * b) + 0.2 * sin(0.37 * x * y / 50.0);
    const int band = (x * 3 + y * 5 + b * 7) % 11;
    *im = 0;
    switch (s->type) {
    case GDT_Byte: *re = (double)((int)(f * 230) + band); break;
    case GDT_UInt16: *re = (double)((int)(f * 9000) + band * 50); break;
    case GDT_CFloat32:
    case GDT_CInt16: {
        const double amp = pow(10.0, (s->type == GDT_CInt16 ? 15 + 38 * f : -24 + 28 * f) / 20.0);
        const double ph = 0.3 * x - 0.2 * y + b;
        *re = amp * cos(ph), *im = amp * sin(ph);
        if (s->type == GDT_CInt16) *re = floor(*re), *im = floor(*im);
        break;
    }
    default: *re = pow(10.0, (-24 + 28 * f) / 10.0); break; /* SAR intensity */
    }
}

int raster_hole(const raster_spec *s, int x, int y) {
    return (x >= s->width / 3 && x < s->width / 3 + 9 && y >= 2 && y < 12) ||
           (y == s->height - 3) || (x + y) % 29 == 0;
}

int raster_set_utm(GDALDatasetH ds) {
    double gt[6] = {500000, 10, 0, 5000000, 0, -10};
    OGRSpatialReferenceH srs = OSRNewSpatialReference(NULL);
    int bad = GDALSetGeoTransform(ds, gt) != CE_None;
    bad |= OSRImportFromEPSG(srs, 32632) != OGRERR_NONE;
    bad |= GDALSetSpatialRef(ds, srs) != CE_None;
    OSRDestroySpatialReference(srs);
    return bad;
}

int raster_write(const char *path, const raster_spec *s) {
    GDALDriverH drv = GDALGetDriverByName("GTiff");
    char **co = CSLSetNameValue(NULL, "COMPRESS", "DEFLATE");
    GDALDatasetH ds = GDALCreate(drv, path, s->width, s->height, s->bands, s->type, co);
    CSLDestroy(co);
    if (!ds) return 1;
    OGRSpatialReferenceH srs = OSRNewSpatialReference(NULL);
    OSRSetAxisMappingStrategy(srs, OAMS_TRADITIONAL_GIS_ORDER);
    if (s->geo == GEO_GEOGRAPHIC) OSRImportFromEPSG(srs, 4326);
    else OSRImportFromEPSG(srs, 32632); /* UTM 32N */
    switch (s->geo) {
    case GEO_UTM: raster_set_utm(ds); break;
    case GEO_GEOGRAPHIC: {
        double g[6] = {9.1, 0.0001, 0, 45.6, 0, -0.0001};
        GDALSetGeoTransform(ds, g);
        GDALSetSpatialRef(ds, srs);
        break;
    }
    case GEO_ROTATED: {
        double g[6] = {500000, 8.66, 5, 5000000, 5, -8.66};
        GDALSetGeoTransform(ds, g);
        GDALSetSpatialRef(ds, srs);
        break;
    }
    case GEO_GCPS: {
        GDAL_GCP g[4];
        GDALInitGCPs(4, g);
        const double px[4] = {0, s->width, 0, s->width}, ln[4] = {0, 0, s->height, s->height};
        for (int i = 0; i < 4; i++) {
            g[i].dfGCPPixel = px[i], g[i].dfGCPLine = ln[i];
            g[i].dfGCPX = 9.0 + 0.001 * px[i] + 0.0002 * ln[i];
            g[i].dfGCPY = 45.0 - 0.0009 * ln[i] + 0.0001 * px[i];
        }
        OGRSpatialReferenceH wgs = OSRNewSpatialReference(NULL);
        OSRImportFromEPSG(wgs, 4326);
        GDALSetGCPs2(ds, 4, g, wgs);
        OSRDestroySpatialReference(wgs);
        GDALDeinitGCPs(4, g);
        break;
    }
    default: break;
    }
    OSRDestroySpatialReference(srs);
    if (s->modality) GDALSetMetadataItem(ds, "MM_MODALITY", s->modality, NULL);
    const int cplx = GDALDataTypeIsComplex(s->type);
    double *buf = malloc(sizeof(double) * 2 * (size_t)s->width * s->height);
    int bad = !buf;
    for (int b = 0; b < s->bands && !bad; b++) {
        GDALRasterBandH band = GDALGetRasterBand(ds, b + 1);
        if (s->has_nodata) GDALSetRasterNoDataValue(band, s->nodata);
        for (int y = 0; y < s->height; y++)
            for (int x = 0; x < s->width; x++) {
                double re, im;
                raster_value(s, x, y, b, &re, &im);
                if (s->has_nodata && raster_hole(s, x, y)) re = s->nodata, im = 0;
                const size_t k = (size_t)y * s->width + x;
                if (cplx) buf[2 * k] = re, buf[2 * k + 1] = im;
                else buf[k] = re;
            }
        bad |= GDALRasterIO(band, GF_Write, 0, 0, s->width, s->height, buf, s->width, s->height,
                            cplx ? GDT_CFloat64 : GDT_Float64, 0, 0) != CE_None;
    }
    if (!bad && s->internal_mask) {
        CPLSetConfigOption("GDAL_TIFF_INTERNAL_MASK", "YES");
        bad |= GDALCreateDatasetMaskBand(ds, GMF_PER_DATASET) != CE_None;
        GDALRasterBandH m = GDALGetMaskBand(GDALGetRasterBand(ds, 1));
        unsigned char *mb = malloc((size_t)s->width * s->height);
        for (int y = 0; y < s->height; y++)
            for (int x = 0; x < s->width; x++)
                mb[(size_t)y * s->width + x] = raster_hole(s, x, y) ? 0 : 255;
        bad |= GDALRasterIO(m, GF_Write, 0, 0, s->width, s->height, mb, s->width, s->height,
                            GDT_Byte, 0, 0) != CE_None;
        free(mb);
    }
    free(buf);
    GDALClose(ds);
    return bad;
}
