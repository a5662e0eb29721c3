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


def water_mask(rgb):
    """Pixels that look like open water, by the rule of mm_eval's water mask without its
    smoothness test: every band below reflectance 0.07 and B >= 0.8 R (rgb in the model's
    [-1, 1], C x H x W) -> H x W bool."""
    r = (np.asarray(rgb, np.float32) + 1) / 2
    return (r.max(0) < 0.07) & (r[2] >= 0.8 * r[0])


def water_fraction(rgb):
    """The fraction of a window's pixels that look like open water (water_mask)."""
    return float(water_mask(rgb).mean())


def window_sums(a, k, stride=1):
    """Sums of every k x k window of a 2-D array whose origin is on a stride grid (a summed-area
    table): out[i, j] = a[i*stride : i*stride + k, j*stride : j*stride + k].sum()."""
    c = np.pad(np.asarray(a, np.float64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    y = np.arange(0, a.shape[0] - k + 1, stride)[:, None]
    x = np.arange(0, a.shape[1] - k + 1, stride)[None, :]
    return c[y + k, x + k] - c[y, x + k] - c[y + k, x] + c[y, x]


def box_mean(a, k):
    """k x k box mean of a 2-D array (edges replicated), k odd."""
    return window_sums(np.pad(np.asarray(a, np.float64), k // 2, mode="edge"), k) / (k * k)


def paste_water(rng, recipient, donor, sar_dark=None):
    """Copy-paste augmentation: the open water of a donor window (its pixels by water_mask,
    cleaned by a 5 x 5 majority so that single dark pixels do not count, in a random flip and
    quarter turn of the donor) replaces the same pixels of the recipient window in every modality
    both hold (SAR and RGB from the same real place, so the water's backscatter and colour stay
    paired). sar_dark: the model-space SAR value below which (5 x 5 mean) a water-coloured pixel
    counts. PAN is the luma of the composited RGB. Returns (window, water fraction pasted).

    Why: the training scenes are 0.8 % water, so dark backscatter is nearly always bare ground
    there and the model learns to ignore it; a flood scene is what the tools exist for."""
    k, flip = int(rng.integers(0, 4)), bool(rng.integers(0, 2))

    def turn(a):
        a = np.rot90(a, k, axes=(-2, -1))
        return a[..., ::-1] if flip else a

    # water by colour where the backscatter is dark too (5 x 5 mean below the calm-water level
    # of VH): the colour rule alone also takes shadows and dark roofs, whose VH is land's
    w = water_mask(turn(donor["rgb"]))
    if "sar" in donor and sar_dark is not None:
        w &= box_mean(turn(donor["sar"])[0], 5) < sar_dark
    m = box_mean(w, 5) > 0.5
    # a modality the donor lacks (NIR) cannot be composited: left out rather than kept dry
    out = {name: np.ascontiguousarray(np.where(m[None], turn(donor[name]), a))
           for name, a in recipient.items() if name != "pan" and name in donor}
    if "rgb" in out:
        out["pan"] = luma(out["rgb"]).astype(np.float32)
    elif "pan" in recipient:
        out["pan"] = recipient["pan"].copy()
    return out, float(m.mean())


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

    def window(self, rng, S, need=(), balance=0.0):
        """A dict modality -> C x S x S float32 of one random window of a scene holding every
        modality in `need` and at least S x S pixels. A scene is drawn with probability
        proportional to area ** (1 - balance): 0 in proportion to its area (every pixel alike),
        1 every scene alike (a small scene from another continent weighs as much as a large one:
        the largest source, Volkov's California, holds 96 % of the SAR pixels)."""
        ok = np.array([all(m in s[1] for m in need)
                       and min(s[1]["rgb"].shape[1:]) >= S for s in self.scenes], bool)
        if not ok.any():
            raise ValueError(f"no training scene holds {S} x {S} pixels of {', '.join(need) or 'rgb'}")
        p = self.area ** (1.0 - balance) * ok
        k = int(rng.choice(len(self.scenes), p=p / p.sum()))
        mods = self.scenes[k][1]
        _, h, w = mods["rgb"].shape
        y, x = int(rng.integers(0, h - S + 1)), int(rng.integers(0, w - S + 1))
        return self.crop(rng, k, y, x, S)

    def source_share(self, S, balance=0.0):
        """The expected share of window() draws per source (the scene id's prefix)."""
        ok = np.array([min(s[1]["rgb"].shape[1:]) >= S for s in self.scenes], bool)
        p = self.area ** (1.0 - balance) * ok
        out = {}
        for (sid, _), q in zip(self.scenes, p / p.sum()):
            out[sid.split("_")[0]] = out.get(sid.split("_")[0], 0.0) + float(q)
        return out

    def water_donors(self, S, min_frac=0.15, stride=32):
        """(scene, y, x) of every S x S window on a stride grid whose water fraction is at
        least min_frac and at most 0.9 (a shore, not open sea)."""
        out = []
        for k, (_, mods) in enumerate(self.scenes):
            if "sar" not in mods:
                continue
            f = window_sums(water_mask(mods["rgb"]), S, stride) / (S * S)
            out += [(k, int(i) * stride, int(j) * stride)
                    for i, j in zip(*np.nonzero((f >= min_frac) & (f <= 0.9)))]
        return out

    def crop(self, rng, k, y, x, S):
        """The S x S window of scene k at (y, x), in a random flip and quarter turn."""
        mods = self.scenes[k][1]
        flip, rot = bool(rng.integers(0, 2)), int(rng.integers(0, 4))
        out = {}
        for m, a in mods.items():
            c = a[:, y:y + S, x:x + S]
            if flip:
                c = c[:, :, ::-1]
            out[m] = np.ascontiguousarray(np.rot90(c, rot, axes=(1, 2)))
        return out
