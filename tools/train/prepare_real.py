#!/usr/bin/python3
"""Turn the fetched real Sentinel-1 / Sentinel-2 pairs into calibrated GeoTIFF scenes for training
and evaluation (docs/data.md lists every source, its licence and this conversion).

    /usr/bin/python3 tools/train/prepare_real.py --raw /work/data/raw --out /work/data/real

--raw holds the sources as `git archive` of their repositories wrote them (docs/data.md):
  volkov/dataset/{sar,opt}/NNN.png, metadata.json   VolkovVl/Optical-SAR-dataset (S1 VH, S2 RGB)
  sen12mscr/SEN12MS_CR_SARColorData/{sar,gt}_{train,test}/*.tif   (S1 VV+VH dB, S2 RGB L1C)
  integration_tests/tiffs/SSL4EO-S12/{s1,s2c}/...    kai-tub/rico-hdl (S1 VV/VH dB, S2 L1C)
  integration_tests/tiffs/Major-TOM-Core/S2L2A/...   kai-tub/rico-hdl (S2 L2A with NIR)
  terramind/examples/{S1RTC,S2L1C}/<cell>.tif       IBM/terramind (TerraMesh: S1 RTC VV+VH dB,
                                                    S2 L1C 13 bands; train only)

Writes --out/{train,test}/<id>_{sar,rgb,nir}.tif (SAR: Float32 VH sigma0 dB, unit type "dB" and
SAR_UNITS=db; optical: UInt16 reflectance x 10000) and --out/calibration.json, the 8-bit to dB
and 8-bit to reflectance tables with the evidence they were estimated from.

The split is by source scene: every fragment of the Sentinel-1 scene of 2020-12-04 (Texas, S2
tile T14RNT) and the four SEN12MS-CR test patches are held out; nothing of them trains.
Sources added after the first model (TerraMesh) only add training scenes: they are not part of
the calibration references, so every earlier output is written exactly as before.
"""
import argparse
import glob
import json
import os

import numpy as np
from osgeo import gdal, osr

gdal.UseExceptions()

HELD_OUT_S1 = "S1A_IW_GRDH_1SDV_20201204T003507"  # the VolkovVl scene kept for evaluation
QUANTILES = np.linspace(0.0, 1.0, 257)
# TerraMesh S1 is radiometrically terrain-corrected gamma0 (Major-TOM Core S1RTC); the model's
# SAR is sigma0. On flat ground sigma0 = gamma0 * cos(theta); at the middle of the IW swath
# (theta about 37 degrees, 29..46 across it) that is -0.98 dB (-0.6 .. -1.6 dB across the swath).
RTC_GAMMA0_TO_SIGMA0_DB = 10.0 * np.log10(np.cos(np.radians(37.0)))


def read(path):
    return gdal.Open(path).ReadAsArray().astype(np.float64)


def write(path, bands, dtype, srs_wkt, gt, units=None, descriptions=None):
    """One GeoTIFF, written as path.part and renamed (a killed run leaves no half file)."""
    bands = np.atleast_3d(np.asarray(bands).transpose(1, 2, 0) if np.ndim(bands) == 3 else bands)
    h, w, n = bands.shape
    tmp = path + ".part"
    ds = gdal.GetDriverByName("GTiff").Create(tmp, w, h, n, dtype,
                                              ["COMPRESS=DEFLATE", "TILED=YES"])
    ds.SetGeoTransform(gt)
    ds.SetProjection(srs_wkt)
    for i in range(n):
        b = ds.GetRasterBand(i + 1)
        b.WriteArray(bands[:, :, i])
        if units:
            b.SetUnitType(units)
        if descriptions:
            b.SetDescription(descriptions[i])
    if units == "dB":
        ds.SetMetadataItem("SAR_UNITS", "db")
    ds.SetMetadataItem("MM_MODALITY", path.rsplit("_", 1)[-1][:-len(".tif")])
    ds = None
    os.replace(tmp, path)


def lut_from(src_q, ref_q):
    """A 256-entry table: 8-bit level -> calibrated value, by interpolating the quantile pairs
    (levels repeated in src_q, at the clipped ends, take the mean of their reference values)."""
    levels = np.arange(256, dtype=np.float64)
    xs, ys = [], []
    for v in np.unique(src_q):
        xs.append(v)
        ys.append(ref_q[src_q == v].mean())
    return np.interp(levels, np.array(xs), np.array(ys))


def box_mean(a, k=9):
    """Mean over k x k neighbourhoods (edges replicated)."""
    p = np.pad(a, ((k // 2 + 1, k // 2), (k // 2 + 1, k // 2)), mode="edge")
    c = np.cumsum(np.cumsum(p, 0), 1)
    return (c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]) / (k * k)


def veg_mask(rgb):
    """Vegetation from reflectance R, G, B (3 x H x W): green above red, and dark (9 x 9 mean
    luminance below 0.12) but not water-dark (above 0.06). A crude rule, used only to anchor
    the SAR calibration on one land-cover type."""
    m = box_mean(rgb.mean(0))
    return (rgb[1] > rgb[0]) & (m < 0.12) & (m > 0.06)


def epsg_wkt(code):
    s = osr.SpatialReference()
    s.ImportFromEPSG(code)
    return s.ExportToWkt()


def terramesh_scenes(raw, out, count, scenes):
    """TerraMesh validation samples shipped by IBM/terramind (examples/): per Major-TOM grid cell
    one S1 RTC file (Float64, band 1 VV, band 2 VH, gamma0 in dB) and one S2 L1C file (Int16, 13
    bands B1..B8, B8A, B9..B12, reflectance x 10000, no offset) on the same 224 x 224 UTM grid.
    Written as training scenes: VH sigma0 dB (gamma0 + RTC_GAMMA0_TO_SIGMA0_DB), RGB (B4, B3,
    B2) and NIR (B8). Returns the VH (dB, as written) and vegetation VH of all scenes, for the
    evidence in calibration.json."""
    ex = os.path.join(raw, "terramind", "examples")
    all_vh, veg_vh = [], []
    for s1p in sorted(glob.glob(os.path.join(ex, "S1RTC", "*.tif"))):
        cell = os.path.basename(s1p)[:-len(".tif")]
        s2p = os.path.join(ex, "S2L1C", cell + ".tif")
        d1, d2 = gdal.Open(s1p), gdal.Open(s2p)
        same_crs = osr.SpatialReference(d1.GetProjection()).IsSame(
            osr.SpatialReference(d2.GetProjection()))
        if d1.GetGeoTransform() != d2.GetGeoTransform() or not same_crs \
                or d1.RasterCount != 2 or d2.RasterCount != 13:
            raise SystemExit(f"{cell}: S1RTC and S2L1C are not on one grid or not 2 / 13 bands")
        vh = d1.GetRasterBand(2).ReadAsArray().astype(np.float64)
        if not np.isfinite(vh).all():
            raise SystemExit(f"{cell}: VH holds non-finite values")
        vh = (vh + RTC_GAMMA0_TO_SIGMA0_DB).astype(np.float32)
        o = d2.ReadAsArray()
        rgb, nir = o[[3, 2, 1]].astype(np.float64), o[7].astype(np.float64)
        ident = "terramesh_" + cell
        base = os.path.join(out, "train", ident)
        write(base + "_sar.tif", vh[None], gdal.GDT_Float32, d1.GetProjection(),
              d1.GetGeoTransform(), units="dB", descriptions=["VH"])
        write(base + "_rgb.tif", np.clip(rgb, 0, 65535).astype(np.uint16), gdal.GDT_UInt16,
              d2.GetProjection(), d2.GetGeoTransform(),
              descriptions=["B4 red", "B3 green", "B2 blue"])
        write(base + "_nir.tif", np.clip(nir, 0, 65535).astype(np.uint16)[None], gdal.GDT_UInt16,
              d2.GetProjection(), d2.GetGeoTransform(), descriptions=["B8 NIR"])
        all_vh.append(vh.ravel())
        veg_vh.append(vh[veg_mask(rgb / 10000.0)])
        count["train"] += 1
        scenes.append({"id": ident, "split": "train", "source": "terramesh",
                       "s1": d1.GetMetadataItem("datetime"),
                       "s2": gdal.Open(os.path.join(ex, "S2RGB", cell + ".tif"))
                       .GetMetadataItem("datetime"),
                       "modalities": ["sar", "rgb", "nir"]})
    return np.concatenate(all_vh), np.concatenate(veg_vh)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--raw", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    raw = args.raw
    for split in ("train", "test"):
        os.makedirs(os.path.join(args.out, split), exist_ok=True)

    # ---- calibrated references: SEN12MS-CR (all 8 patches) and SSL4EO-S12 (2 dates) ----
    s12 = os.path.join(raw, "sen12mscr", "SEN12MS_CR_SARColorData")
    ref_vh, ref_rgb, ref_veg_db = [], [[], [], []], []
    sen12 = []
    for sar in sorted(glob.glob(os.path.join(s12, "sar_*", "*.tif"))):
        split = "train" if "sar_train" in sar else "test"
        gt = sar.replace("sar_", "gt_").replace("_s1_", "_gt_")
        s, o = read(sar), read(gt)
        ref_vh.append(s[1].ravel())
        for c in range(3):
            ref_rgb[c].append(o[c].ravel() / 10000.0)
        ref_veg_db.append(s[1][veg_mask(o / 10000.0)])
        sen12.append((split, sar, gt))
    ssl = os.path.join(raw, "integration_tests", "tiffs", "SSL4EO-S12")
    for vh, d in zip(sorted(glob.glob(os.path.join(ssl, "s1", "*", "*", "VH.tif"))),
                     sorted(glob.glob(os.path.join(ssl, "s2c", "*", "*")))):
        v = read(vh)
        ref_vh.append(v.ravel())
        o = np.stack([read(os.path.join(d, b + ".tif")) for b in ("B4", "B3", "B2")]) / 10000.0
        for c in range(3):
            ref_rgb[c].append(o[c].ravel())
        ref_veg_db.append(v[veg_mask(o)])
    ref_vh = np.concatenate(ref_vh)
    ref_vh_q = np.quantile(ref_vh, QUANTILES)
    # zero reflectance is nodata in SEN12MS-CR (never a real value of L1C)
    ref_rgb_q = [np.quantile(np.concatenate(v)[np.concatenate(v) > 0], QUANTILES) for v in ref_rgb]

    # ---- VolkovVl: 8-bit VH and stretched RGB, calibrated by quantile matching ----
    vol = os.path.join(raw, "volkov", "dataset")
    meta = {m["fragment_filename"]: m for m in json.load(open(os.path.join(vol, "metadata.json")))}
    names = sorted(n for n in os.listdir(os.path.join(vol, "sar")) if n.endswith(".png"))
    train_names = [n for n in names if not meta[n]["sar_tile_name"].startswith(HELD_OUT_S1)]
    pool_sar, pool_rgb = [], [[], [], []]
    for n in train_names:  # the tables are estimated on the training scenes only
        s = read(os.path.join(vol, "sar", n))[0]
        o = read(os.path.join(vol, "opt", n))
        pool_sar.append(s[::4, ::4].ravel())
        for c in range(3):
            pool_rgb[c].append(o[c, ::4, ::4].ravel())
    rgb_luts = [lut_from(np.quantile(np.concatenate(pool_rgb[c]), QUANTILES), ref_rgb_q[c])
                for c in range(3)]

    # The PNGs are a linear stretch of backscatter, divided by a 99 % quantile of the whole
    # Sentinel-1 scene and clipped: in decibels an 8-bit level p is dB = a * 10 log10(p / 255) + b,
    # b depending on the scene. The slope a is fitted by least squares on the 5..95 % quantiles
    # of the pooled training fragments against the calibrated references (a = 1 would be a
    # stretch of intensity, a = 2 of amplitude). The offset b of each scene is set so that its
    # vegetation (land-cover from the optical image, veg_mask) has the references' median
    # vegetation backscatter: the per-land-cover match, which a pooled match cannot give when
    # the scenes hold other mixes of land cover than the references.
    sar_q = np.quantile(np.concatenate(pool_sar), QUANTILES)
    sel = (QUANTILES >= 0.05) & (QUANTILES <= 0.95)
    a, b_pooled = np.polyfit(10 * np.log10(np.maximum(sar_q[sel], 0.5) / 255), ref_vh_q[sel], 1)
    log_level = 10 * np.log10(np.maximum(np.arange(256), 0.5) / 255)
    quantile_lut = lut_from(sar_q, ref_vh_q)
    ref_veg = float(np.median(np.concatenate(ref_veg_db)))
    by_scene = {}
    for n in names:
        s1 = meta[n]["sar_tile_name"]
        s = read(os.path.join(vol, "sar", n))[0][::2, ::2].astype(np.uint8)
        o = np.stack([rgb_luts[k][read(os.path.join(vol, "opt", n))[k][::2, ::2].astype(np.uint8)]
                      for k in range(3)])
        by_scene.setdefault(s1, []).append(log_level[s][veg_mask(o)])
    offsets = {s1: ref_veg - a * float(np.median(np.concatenate(v))) for s1, v in by_scene.items()}
    sar_luts = {s1: a * log_level + b for s1, b in offsets.items()}

    wkt3395 = epsg_wkt(3395)
    count = {"train": 0, "test": 0}
    scenes = []
    for n in names:
        m = meta[n]
        split = "test" if m["sar_tile_name"].startswith(HELD_OUT_S1) else "train"
        c = np.array(m["corners_EPSG:3395"])
        s = read(os.path.join(vol, "sar", n))[0].astype(np.uint8)
        o = read(os.path.join(vol, "opt", n)).astype(np.uint8)
        h, w = s.shape
        gt = (c[0, 0], (c[1, 0] - c[0, 0]) / w, 0.0, c[0, 1], 0.0, (c[3, 1] - c[0, 1]) / h)
        ident = "volkov_" + n[:-4]
        base = os.path.join(args.out, split, ident)
        write(base + "_sar.tif", sar_luts[m["sar_tile_name"]][s].astype(np.float32)[None], gdal.GDT_Float32, wkt3395,
              gt, units="dB", descriptions=["VH"])
        rgb = np.stack([rgb_luts[k][o[k]] for k in range(3)])
        write(base + "_rgb.tif", np.round(rgb * 10000).astype(np.uint16), gdal.GDT_UInt16,
              wkt3395, gt, descriptions=["B4 red", "B3 green", "B2 blue"])
        count[split] += 1
        scenes.append({"id": ident, "split": split, "source": "volkov", "s1": m["sar_tile_name"],
                       "s2": m["opt_tile_name"], "modalities": ["sar", "rgb"]})

    # ---- SEN12MS-CR: calibrated already; VH band, RGB L1C ----
    for split, sar, gtp in sen12:
        ds = gdal.Open(sar)
        ident = "sen12mscr_" + os.path.basename(sar)[:-4].replace("ROIs1158_spring_s1_", "")
        base = os.path.join(args.out, split, ident)
        s = ds.GetRasterBand(2).ReadAsArray().astype(np.float32)
        write(base + "_sar.tif", s[None], gdal.GDT_Float32, ds.GetProjection(), ds.GetGeoTransform(),
              units="dB", descriptions=["VH"])
        o = read(gtp)
        write(base + "_rgb.tif", o.astype(np.uint16), gdal.GDT_UInt16, ds.GetProjection(),
              ds.GetGeoTransform(), descriptions=["B4 red", "B3 green", "B2 blue"])
        count[split] += 1
        scenes.append({"id": ident, "split": split, "source": "sen12mscr",
                       "modalities": ["sar", "rgb"]})

    # ---- SSL4EO-S12 (one place, S1 two dates, S2 L1C two dates; paired by order) ----
    s1s = sorted(glob.glob(os.path.join(ssl, "s1", "*", "*")))
    s2s = sorted(glob.glob(os.path.join(ssl, "s2c", "*", "*")))
    for k, (d1, d2) in enumerate(zip(s1s, s2s)):
        ds = gdal.Open(os.path.join(d1, "VH.tif"))
        ident = f"ssl4eo_{k}"
        base = os.path.join(args.out, "train", ident)
        write(base + "_sar.tif", ds.ReadAsArray().astype(np.float32)[None], gdal.GDT_Float32,
              ds.GetProjection(), ds.GetGeoTransform(), units="dB", descriptions=["VH"])
        o = np.stack([read(os.path.join(d2, b + ".tif")) for b in ("B4", "B3", "B2")])
        d2ds = gdal.Open(os.path.join(d2, "B4.tif"))
        write(base + "_rgb.tif", o.astype(np.uint16), gdal.GDT_UInt16, d2ds.GetProjection(),
              d2ds.GetGeoTransform(), descriptions=["B4 red", "B3 green", "B2 blue"])
        nir = read(os.path.join(d2, "B8.tif"))
        write(base + "_nir.tif", nir.astype(np.uint16)[None], gdal.GDT_UInt16, d2ds.GetProjection(),
              d2ds.GetGeoTransform(), descriptions=["B8 NIR"])
        count["train"] += 1
        scenes.append({"id": ident, "split": "train", "source": "ssl4eo", "s1": os.path.basename(d1),
                       "s2": os.path.basename(d2), "modalities": ["sar", "rgb", "nir"]})

    # ---- Major-TOM Core S2 L2A: RGB + NIR (no S1 in the fetched files) ----
    mt = os.path.join(raw, "integration_tests", "tiffs", "Major-TOM-Core", "S2L2A")
    for k, d in enumerate(sorted(glob.glob(os.path.join(mt, "*", "*", "*")))):
        ds = gdal.Open(os.path.join(d, "B04.tif"))
        o = np.stack([read(os.path.join(d, b + ".tif")) for b in ("B04", "B03", "B02")])
        nir = read(os.path.join(d, "B08.tif"))
        # L2A of processing baseline >= 04.00 carries a +1000 offset (BOA_ADD_OFFSET)
        offset = 1000.0 if "_N0400_" in d or "_N05" in d else 0.0
        o, nir = np.clip(o - offset, 0, None), np.clip(nir - offset, 0, None)
        ident = f"majortom_{k}"
        base = os.path.join(args.out, "train", ident)
        write(base + "_rgb.tif", o.astype(np.uint16), gdal.GDT_UInt16, ds.GetProjection(),
              ds.GetGeoTransform(), descriptions=["B4 red", "B3 green", "B2 blue"])
        write(base + "_nir.tif", nir.astype(np.uint16)[None], gdal.GDT_UInt16, ds.GetProjection(),
              ds.GetGeoTransform(), descriptions=["B8 NIR"])
        count["train"] += 1
        scenes.append({"id": ident, "split": "train", "source": "majortom",
                       "s2": os.path.basename(d), "modalities": ["rgb", "nir"]})

    # ---- TerraMesh (IBM/terramind examples): S1 RTC + S2 L1C, train only ----
    tm_vh, tm_veg = terramesh_scenes(raw, args.out, count, scenes)

    # ---- evidence for docs/data.md ----
    def stats(a):
        return [round(float(x), 2) for x in np.percentile(a, [1, 5, 25, 50, 75, 95, 99])]
    cal = {
        "sar_fit_slope_a": round(float(a), 4),
        "sar_pooled_offset_b": round(float(b_pooled), 3),
        "sar_offset_b_by_s1_scene": {k: round(v, 3) for k, v in offsets.items()},
        "reference_vegetation_vh_db_median": round(ref_veg, 2),
        "sar_pooled_fit_max_abs_dev_from_quantile_match_db_levels_20_250": round(float(
            np.abs(a * log_level + b_pooled - quantile_lut)[20:251].max()), 3),
        "sar_8bit_to_vh_db_by_s1_scene": {k: [round(float(x), 3) for x in v]
                                          for k, v in sar_luts.items()},
        "rgb_8bit_to_reflectance": [[round(float(v), 5) for v in t] for t in rgb_luts],
        "reference_vh_db_percentiles_1_5_25_50_75_95_99": stats(ref_vh),
        "volkov_train_8bit_percentiles": stats(np.concatenate(pool_sar)),
        "reference_pixels": int(ref_vh.size),
        "volkov_train_fragments": len(train_names),
        "terramesh_rtc_gamma0_to_sigma0_db": round(float(RTC_GAMMA0_TO_SIGMA0_DB), 3),
        "terramesh_vh_db_percentiles_1_5_25_50_75_95_99": stats(tm_vh),
        "terramesh_vegetation_vh_db_median": round(float(np.median(tm_veg)), 2),
        "terramesh_vegetation_pixels": int(tm_veg.size),
        "counts": count,
        "scenes": scenes,
    }
    with open(os.path.join(args.out, "calibration.json"), "w") as f:
        json.dump(cal, f, indent=1)
    print(json.dumps({k: v for k, v in cal.items() if k not in ("scenes", "sar_8bit_to_vh_db",
                                                                    "rgb_8bit_to_reflectance")}))


if __name__ == "__main__":
    main()
