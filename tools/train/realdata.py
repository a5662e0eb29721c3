"""Real Sentinel-1 / Sentinel-2 training windows from the scenes prepare_real.py wrote.

Every training scene is read once into the model's value range (units.py; SAR with the dB window
of the model config's SAR profile); a window is a random S x S crop of a random scene (drawn in
proportion to its area) with a random flip and quarter turn, the same for all its modalities.
PAN is pseudo-PAN, the luma of the real RGB (paper IV-B2: no real PAN pairs are fetched).
"""
import json
import os

import numpy as np
from osgeo import gdal

import units

gdal.UseExceptions()


def sar_window(cfg):
    """(lo, hi) dB of the config's SAR profile, e.g. "db:-35:0" -> (-35.0, 0.0)."""
    spec = cfg.get("geo", {}).get("profiles", {}).get("sar", "intensity:-25:5").split(":")
    if len(spec) == 3:
        return float(spec[1]), float(spec[2])
    return units.SAR_DB_MIN, units.SAR_DB_MAX


def water_fraction(rgb):
    """The fraction of a window's pixels that look like open water, by the rule of mm_eval's
    water mask without its smoothness test: every band below reflectance 0.07 and B >= 0.8 R
    (rgb in the model's [-1, 1])."""
    r = (np.asarray(rgb, np.float32) + 1) / 2
    return float(((r.max(0) < 0.07) & (r[2] >= 0.8 * r[0])).mean())


def luma(rgb):
    return (0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2])[None]


class RealScenes:
    def __init__(self, root, cfg, split="train"):
        cal = json.load(open(os.path.join(root, "calibration.json")))
        win = sar_window(cfg)
        self.scenes = []
        for sc in cal["scenes"]:
            if sc["split"] != split:
                continue
            base = os.path.join(root, split, sc["id"])
            mods = {}
            for m in sc["modalities"]:
                a = gdal.Open(f"{base}_{m}.tif").ReadAsArray().astype(np.float32)
                a = a[None] if a.ndim == 2 else a
                mods[m] = units.to_model(m, a, sar_window=win) if m == "sar" else units.to_model(m, a)
            if "rgb" in mods:
                mods["pan"] = luma(mods["rgb"]).astype(np.float32)
            h = min(v.shape[1] for v in mods.values())
            w = min(v.shape[2] for v in mods.values())
            mods = {m: v[:, :h, :w] for m, v in mods.items()}
            self.scenes.append((sc["id"], mods))
        self.area = np.array([s[1]["rgb"].shape[1] * s[1]["rgb"].shape[2] for s in self.scenes],
                             np.float64)

    def window(self, rng, S, need=()):
        """A dict modality -> C x S x S float32 of one random window of a scene holding every
        modality in `need`."""
        ok = np.array([all(m in s[1] for m in need) for s in self.scenes], bool)
        p = self.area * ok
        k = int(rng.choice(len(self.scenes), p=p / p.sum()))
        mods = self.scenes[k][1]
        _, h, w = mods["rgb"].shape
        y, x = int(rng.integers(0, h - S + 1)), int(rng.integers(0, w - S + 1))
        flip, rot = bool(rng.integers(0, 2)), int(rng.integers(0, 4))
        out = {}
        for m, a in mods.items():
            c = a[:, y:y + S, x:x + S]
            if flip:
                c = c[:, :, ::-1]
            out[m] = np.ascontiguousarray(np.rot90(c, rot, axes=(1, 2)))
        return out
