#!/usr/bin/env python3
"""Checks a STAC 1.0.0 Item written by mm_translate --stac (or mm_batch) against the fields the
Item spec requires (pystac is not a dependency: the spec's rules are checked here) and against the
raster it describes, computed independently with GDAL/OSR: bbox and geometry contain the raster's
corners transformed to WGS 84, proj:shape, proj:transform, proj:epsg and proj:wkt2 are the
raster's, the assets resolve to rasters GDAL opens. Exit 0, or 1 printing what is wrong.
Usage: check_stac.py ITEM.json [KEY=VALUE ...]   (expected properties, compared as strings;
       KEY=? only asks that the property is there)
       check_stac.py --catalog CATALOG.json N    (a Catalog linking N items that exist)"""
import json
import math
import os
import re
import sys

from osgeo import gdal, osr

gdal.UseExceptions()
PROJ = "https://stac-extensions.github.io/projection/v1.1.0/schema.json"
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
bad = []


def need(cond, what):
    if not cond:
        bad.append(what)
    return cond


def check_links(links, where):
    if need(isinstance(links, list), "%s: links is not an array" % where):
        for l in links:
            need(isinstance(l, dict) and isinstance(l.get("href"), str) and isinstance(l.get("rel"), str),
                 "%s: a link without href and rel: %r" % (where, l))


def catalog(path, n):
    c = json.load(open(path))
    need(c.get("type") == "Catalog", "type is not Catalog")
    need(c.get("stac_version") == "1.0.0", "stac_version")
    need(isinstance(c.get("id"), str) and c["id"], "id")
    need(isinstance(c.get("description"), str) and c["description"], "description")
    check_links(c.get("links"), "catalog")
    items = [l for l in c.get("links", []) if l.get("rel") == "item"]
    need(len(items) == n, "%d item links, expected %d" % (len(items), n))
    for l in items:
        p = l["href"] if os.path.isabs(l["href"]) else os.path.join(os.path.dirname(path), l["href"])
        if need(os.path.exists(p), "the item %s does not exist" % p):
            need(json.load(open(p)).get("type") == "Feature", "%s is not an Item" % p)


def item(path, expect):
    it = json.load(open(path))
    d = os.path.dirname(os.path.abspath(path))
    # the Item spec's required fields
    need(it.get("type") == "Feature", "type is not Feature")
    need(it.get("stac_version") == "1.0.0", "stac_version is not 1.0.0")
    need(isinstance(it.get("id"), str) and it["id"], "no id")
    ext = it.get("stac_extensions")
    need(isinstance(ext, list) and all(isinstance(e, str) for e in ext), "stac_extensions")
    need(PROJ in (ext or []), "the projection extension is not in stac_extensions")
    props = it.get("properties")
    if not need(isinstance(props, dict), "no properties"):
        return
    dt = props.get("datetime", "missing")
    need(dt != "missing", "properties.datetime is missing (it may be null, not absent)")
    if dt is None:  # then start and end are required
        for k in ("start_datetime", "end_datetime"):
            need(isinstance(props.get(k), str) and RFC3339.match(props[k]), "datetime null without %s" % k)
    else:
        need(isinstance(dt, str) and RFC3339.match(dt), "datetime %r is not RFC 3339" % dt)
    check_links(it.get("links"), "item")
    assets = it.get("assets")
    need(isinstance(assets, dict) and assets, "no assets")
    for k, a in (assets or {}).items():
        need(isinstance(a.get("href"), str), "asset %s has no href" % k)
    # the raster, read back
    data = assets.get("data", {})
    need("data" in data.get("roles", []), "the data asset's roles lack data")
    need(data.get("type") == "image/tiff; application=geotiff", "data asset type %r" % data.get("type"))
    rpath = os.path.normpath(os.path.join(d, data.get("href", "")))
    ds = gdal.Open(rpath)
    W, H = ds.RasterXSize, ds.RasterYSize
    gt = ds.GetGeoTransform()
    srs = ds.GetSpatialRef()
    need(props.get("proj:shape") == [H, W], "proj:shape %r, raster %dx%d" % (props.get("proj:shape"), W, H))
    t = props.get("proj:transform")
    want = [gt[1], gt[2], gt[0], gt[4], gt[5], gt[3], 0, 0, 1]
    need(isinstance(t, list) and len(t) == 9 and all(abs(a - b) <= 1e-9 * max(1, abs(b)) for a, b in zip(t, want)),
         "proj:transform %r, geotransform %r" % (t, gt))
    code = srs.GetAuthorityCode(None) if srs.GetAuthorityName(None) == "EPSG" else None
    need(props.get("proj:epsg") == (int(code) if code else None), "proj:epsg %r, raster EPSG %r" % (props.get("proj:epsg"), code))
    w2 = osr.SpatialReference()
    need(isinstance(props.get("proj:wkt2"), str) and w2.ImportFromWkt(props["proj:wkt2"]) == 0 and w2.IsSame(srs),
         "proj:wkt2 is not the raster's CRS")
    # the corners in WGS 84, computed here: bbox and geometry contain them
    wgs = osr.SpatialReference()
    wgs.ImportFromEPSG(4326)
    wgs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    s2 = srs.Clone()
    s2.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    ct = osr.CoordinateTransformation(s2, wgs)
    corners = [ct.TransformPoint(gt[0] + px * gt[1] + py * gt[2], gt[3] + px * gt[4] + py * gt[5])[:2]
               for px, py in ((0, 0), (W, 0), (W, H), (0, H))]
    bb = it.get("bbox")
    if need(isinstance(bb, list) and len(bb) == 4, "bbox %r" % bb):
        eps = 1e-9
        for x, y in corners:
            need(bb[0] - eps <= x <= bb[2] + eps and bb[1] - eps <= y <= bb[3] + eps,
                 "corner (%.9f, %.9f) outside the bbox %r" % (x, y, bb))
        need(-180 <= bb[0] < bb[2] <= 180 and -90 <= bb[1] < bb[3] <= 90, "bbox %r is not lon/lat" % bb)
    g = it.get("geometry") or {}
    ring = (g.get("coordinates") or [[]])[0]
    need(g.get("type") == "Polygon" and len(ring) >= 5 and ring[0] == ring[-1], "geometry is not a closed polygon")
    for x, y in corners:
        need(min(math.hypot(x - p[0], y - p[1]) for p in ring) < 1e-9, "corner (%.9f, %.9f) is not a vertex" % (x, y))
    area2 = sum(ring[i][0] * ring[i + 1][1] - ring[i + 1][0] * ring[i][1] for i in range(len(ring) - 1))
    need(area2 > 0, "the exterior ring is not counter-clockwise (RFC 7946)")
    need(props.get("metaearth:synthetic") is True, "metaearth:synthetic is not true")
    for a in assets.values():  # every asset opens
        try:
            gdal.Open(os.path.normpath(os.path.join(d, a["href"])))
        except RuntimeError as e:
            bad.append("asset %s does not open: %s" % (a["href"], e))
    for kv in expect:
        k, v = kv.split("=", 1)
        got = props.get(k, it.get(k))
        if v == "?":
            need(got is not None, "no %s" % k)
        else:
            need(str(got) == v or json.dumps(got) == v, "%s is %r, expected %s" % (k, got, v))


if __name__ == "__main__":
    if sys.argv[1] == "--catalog":
        catalog(sys.argv[2], int(sys.argv[3]))
    else:
        item(sys.argv[1], sys.argv[2:])
    for b in bad:
        print("STAC: " + b)
    sys.exit(1 if bad else 0)
