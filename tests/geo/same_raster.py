#!/usr/bin/env python3
"""Exit 0 when two rasters hold the same scene: size, bands, data type, geotransform, CRS, nodata,
mask flags and mask, default-domain metadata and every pixel's bytes; otherwise exit 1 saying what
differs. Usage: same_raster.py A B"""
import sys

from osgeo import gdal

gdal.UseExceptions()


def main():
    a, b = (gdal.Open(p) for p in sys.argv[1:3])
    bad = []

    def same(what, x, y):
        if x != y:
            bad.append("%s: %r != %r" % (what, x, y))

    same("size", (a.RasterXSize, a.RasterYSize, a.RasterCount), (b.RasterXSize, b.RasterYSize, b.RasterCount))
    same("geotransform", a.GetGeoTransform(can_return_null=True), b.GetGeoTransform(can_return_null=True))
    same("CRS", a.GetProjectionRef(), b.GetProjectionRef())
    same("metadata", a.GetMetadata(), b.GetMetadata())
    if not bad:
        for i in range(1, a.RasterCount + 1):
            x, y = a.GetRasterBand(i), b.GetRasterBand(i)
            same("band %d type" % i, x.DataType, y.DataType)
            same("band %d nodata" % i, x.GetNoDataValue(), y.GetNoDataValue())
            same("band %d mask flags" % i, x.GetMaskFlags(), y.GetMaskFlags())
            same("band %d unit" % i, x.GetUnitType(), y.GetUnitType())
            same("band %d colour" % i, x.GetColorInterpretation(), y.GetColorInterpretation())
            if x.ReadRaster() != y.ReadRaster():
                bad.append("band %d: the pixels differ" % i)
            if x.GetMaskBand().ReadRaster() != y.GetMaskBand().ReadRaster():
                bad.append("band %d: the masks differ" % i)
    if bad:
        print("%s vs %s: %s" % (sys.argv[1], sys.argv[2], "; ".join(bad)))
        return 1
    return 0


sys.exit(main())
