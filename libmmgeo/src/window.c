/* Processed regions given in georeferenced coordinates: -projwin. */
#include <cpl_error.h>
#include <math.h>

#include "internal.h"

int mmgeo_projwin_srcwin(const char *path, const double pw[4], int srcwin[4], char *err,
                         size_t errlen) {
    CPLErrorReset();
    CPLPushErrorHandler(CPLQuietErrorHandler);
    GDALDatasetH ds = GDALOpenEx(path, GDAL_OF_RASTER | GDAL_OF_READONLY, NULL, NULL, NULL);
    CPLPopErrorHandler();
    if (!ds) return mmgeo_fail(err, errlen, "cannot open '%s' as a raster", path);
    double gt[6];
    const int W = GDALGetRasterXSize(ds), H = GDALGetRasterYSize(ds);
    const int has_gt = GDALGetGeoTransform(ds, gt) == CE_None;
    GDALClose(ds);
    if (!has_gt)
        return mmgeo_fail(err, errlen, "-projwin: '%s' has no geotransform (use -srcwin)", path);
    if (gt[2] != 0 || gt[4] != 0)
        return mmgeo_fail(err, errlen, "-projwin: '%s' has a rotated geotransform (use -srcwin)",
                          path);
    for (int i = 0; i < 4; i++)
        if (!isfinite(pw[i])) return mmgeo_fail(err, errlen, "-projwin: not a finite number");
    const double fx = (pw[0] - gt[0]) / gt[1], fy = (pw[1] - gt[3]) / gt[5];
    const double fw = (pw[2] - pw[0]) / gt[1], fh = (pw[3] - pw[1]) / gt[5];
    if (!(fw > 0) || !(fh > 0))
        return mmgeo_fail(err, errlen,
                          "-projwin %g %g %g %g: an empty window (ulx uly lrx lry: upper left "
                          "then lower right)",
                          pw[0], pw[1], pw[2], pw[3]);
    const double x = floor(fx + 0.001), y = floor(fy + 0.001);
    const double w = floor(fw + 0.5), h = floor(fh + 0.5);
    if (x < 0 || y < 0 || w < 1 || h < 1 || x + w > W || y + h > H)
        return mmgeo_fail(err, errlen,
                          "-projwin %g %g %g %g (pixels %.0f %.0f %.0f %.0f) is not inside the "
                          "%dx%d raster '%s' (%g %g %g %g)",
                          pw[0], pw[1], pw[2], pw[3], x, y, w, h, W, H, path, gt[0], gt[3],
                          gt[0] + W * gt[1], gt[3] + H * gt[5]);
    srcwin[0] = (int)x, srcwin[1] = (int)y, srcwin[2] = (int)w, srcwin[3] = (int)h;
    return 0;
}
