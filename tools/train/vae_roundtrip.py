#!/usr/bin/python3
"""How much of a target modality survives the model's VAE: encode and decode the real held-out
images of a quality run and score the round trip like a generated image (docs/training.md).

    /usr/bin/python3 tools/train/vae_roundtrip.py MODEL QUALITY_WORK BUILD [N_SCENES]

QUALITY_WORK is the work directory of tests/bench/quality.sh (its run/ holds the simulated scenes,
its cache/ the classifiers); BUILD holds mm_eval. No generator can score better than its decoder
allows, so this is the ceiling of the model's mIoU and texture error, direction by direction.
Prints one line per target modality: mean mIoU and texture error of the round trip and of the
real image itself (mm_eval, the same classifier as the quality report).
"""
import json
import os
import subprocess
import sys

import numpy as np
import torch
from osgeo import gdal

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
import mm_ref as R  # noqa: E402
import units  # noqa: E402

gdal.UseExceptions()


def score(build, clf, labels, gen, ref):
    out = subprocess.check_output([os.path.join(build, "mm_eval"), "--json", "--labels", labels,
                                   "--classifier", clf, gen, ref])
    e = json.loads(out)
    return e["miou"], e["texture_error"]


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    model_path, work, build = sys.argv[1:4]
    n = int(sys.argv[4]) if len(sys.argv) == 5 else 4
    torch.set_num_threads(2)
    model = R.load_model(model_path)
    mods = model.cfg["modalities"]
    run, cache = os.path.join(work, "run"), os.path.join(work, "cache")
    tmp = os.path.join(work, "roundtrip")
    os.makedirs(tmp, exist_ok=True)
    print("target  round-trip mIoU  texture error   real-image mIoU")
    for m in ("rgb", "sar", "nir", "osm"):
        rt, real = [], []
        for i in range(n):
            src, lab = os.path.join(run, f"s{i}_{m}.tif"), os.path.join(run, f"s{i}_label.tif")
            ds = gdal.Open(src)
            a = ds.ReadAsArray().astype(np.float64)
            a = a[None] if a.ndim == 2 else a
            x = torch.from_numpy(units.to_model(m, units.sar_db(a) if m == "sar" else a))[None]
            with torch.no_grad():
                k = mods.index(m)
                y = R.vae_decode(model, R.vae_encode(model, x, k), k)[0].float().numpy()
            out = os.path.join(tmp, f"r{i}_{m}.tif")
            dt = {"sar": gdal.GDT_Float32, "osm": gdal.GDT_Byte}.get(m, gdal.GDT_UInt16)
            o = gdal.GetDriverByName("GTiff").Create(out, ds.RasterXSize, ds.RasterYSize, y.shape[0], dt)
            o.SetGeoTransform(ds.GetGeoTransform())
            o.SetProjection(ds.GetProjection())
            for b in range(y.shape[0]):
                o.GetRasterBand(b + 1).WriteArray(units.from_model(m, y[b]))
            o = None
            clf = os.path.join(cache, f"{m}.clf")
            rt.append(score(build, clf, lab, out, src))
            real.append(score(build, clf, lab, src, src))
        print(f"{m:6s}  {np.mean([r[0] for r in rt]):15.3f}  {np.mean([r[1] for r in rt]):13.3f}"
              f"   {np.mean([r[0] for r in real]):15.3f}")


if __name__ == "__main__":
    main()
