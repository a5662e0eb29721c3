"""The report step of tests/bench/real_quality.sh: mm_eval's JSON records of the real-data test
scenes -> real_results.md (the mean per method), real_results.jsonl (the records) and the
side-by-side picture real_sar2rgb.png (docs/quality.md, "Real data"). Run by the script with
/usr/bin/python3 (numpy, GDAL's Python bindings); not part of the build or the tests."""
import argparse
import json
import math
import os
import shutil
import sys

import numpy as np
from osgeo import gdal

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from quality_report import tile, write_palette_png  # noqa: E402

gdal.UseExceptions()

METHODS = ["model", "model-mean", "sim-only", "regression", "sar-input"]
NAMES = {"model": "model", "model-mean": "model, mean of K samples", "sim-only": "simulator-only model", "regression": "regression (LUT)",
         "sar-input": "SAR input itself"}
MIN_WATER = 0.02  # scenes with less water are left out of the AUC means
CROP = 256


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def mean(xs):
    xs = [x for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return sum(xs) / len(xs) if xs else float("nan")


def fmt(x, d=3):
    if x is None or (isinstance(x, float) and (math.isnan(x) or math.isinf(x))):
        return "–"
    return f"{x:.{d}f}"


def band_mean(e, key):
    return mean([b.get(key) for b in e.get("bands", [])])


def pooled_miou(recs):
    """mIoU of the confusion matrix summed over the scenes (classes in either map)."""
    conf = None
    for r in recs:
        c = r["eval"].get("confusion")
        if c is None:
            continue
        c = np.array(c, dtype=np.float64)
        conf = c if conf is None else conf + c
    if conf is None:
        return float("nan")
    ious = []
    for k in range(conf.shape[0]):
        row, col, tp = conf[k].sum(), conf[:, k].sum(), conf[k, k]
        if row + col > 0:
            ious.append(tp / (row + col - tp))
    return sum(ious) / len(ious) if ious else float("nan")


def summary(recs, method):
    rs = [r for r in recs if r["method"] == method]
    wet = [r for r in rs if r["water_fraction"] >= MIN_WATER]
    e = [r["eval"] for r in rs]
    return {
        "scenes": len(rs),
        "psnr": mean([band_mean(x, "psnr") for x in e]),
        "ssim": mean([band_mean(x, "ssim") for x in e]),
        "fsim": mean([band_mean(x, "fsim") for x in e]),
        "w1_mean": mean([x.get("w1_mean") for x in e]),
        "texture_std_generated": mean([x.get("texture_std_generated") for x in e]),
        "texture_std_reference": mean([x.get("texture_std_reference") for x in e]),
        "texture_std_rel_error": mean([x.get("texture_std_rel_error") for x in e]),
        "texture_error": mean([x.get("texture_error") for x in e]),
        "class_agreement": mean([x.get("class_agreement") for x in e]),
        "miou": mean([x.get("miou") for x in e]),
        "miou_pooled": pooled_miou(rs),
        "water_auc": mean([r["eval"].get("water_auc") for r in wet]),
        "water_scenes": len(wet),
    }


def table(recs, title):
    lines = [f"**{title}**", "",
             "| method | scenes | PSNR (dB) | SSIM | FSIM | W1 mean | texture σ gen / ref | "
             "texture error (σ) | texture error (per class) | class agreement | mIoU | "
             "mIoU (pooled) | water AUC (scenes) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    out = {}
    for m in METHODS:
        if not any(r["method"] == m for r in recs):
            continue
        s = summary(recs, m)
        out[m] = s
        auc = f"{fmt(s['water_auc'])} ({s['water_scenes']})"
        if m == "sar-input":
            lines.append(f"| {NAMES[m]} | {s['scenes']} | | | | | | | | | | | {auc} |")
            continue
        lines.append(
            f"| {NAMES[m]} | {s['scenes']} | {fmt(s['psnr'], 2)} | {fmt(s['ssim'])} | {fmt(s['fsim'])} | "
            f"{fmt(s['w1_mean'], 4)} | {fmt(s['texture_std_generated'], 4)} / {fmt(s['texture_std_reference'], 4)} | "
            f"{fmt(s['texture_std_rel_error'])} | {fmt(s['texture_error'])} | {fmt(s['class_agreement'])} | "
            f"{fmt(s['miou'])} | {fmt(s['miou_pooled'])} | {auc} |")
    return lines, out


# ---- picture ---------------------------------------------------------------------------------

def read(path):
    a = gdal.Open(path).ReadAsArray().astype(np.float64)
    return a[None] if a.ndim == 2 else a


def display(a, kind):
    """C x H x W -> H x W x 3 uint8 with a fixed stretch (the same for every panel of a kind)."""
    if kind == "sar":
        v = (np.clip(a, -25, -5) + 25) / 20  # VH dB -25 .. -5
    else:
        v = a / 2500  # reflectance 0 .. 0.25
    v = np.clip(v * 255 + 0.5, 0, 255).astype(np.uint8)
    if v.shape[0] == 1:
        v = np.repeat(v, 3, axis=0)
    return v.transpose(1, 2, 0)


def wettest_crop(mask, size):
    """(y, x) of the size x size window, on a size / 4 grid, with the most water in the mask."""
    h, w = mask.shape
    if h <= size or w <= size:
        return 0, 0
    step = size // 4
    best, at = -1, (0, 0)
    wet = (mask == 1).astype(np.int64)
    for y in range(0, h - size + 1, step):
        for x in range(0, w - size + 1, step):
            s = int(wet[y:y + size, x:x + size].sum())
            if s > best:
                best, at = s, (y, x)
    return at


def picture(recs, run, path, n=3):
    """SAR | model | regression | real optical, one row per scene: the n test scenes with the most
    water (ties: file order), each at its wettest 256 x 256 crop."""
    seen, order = set(), []
    for r in recs:
        if r["method"] == "model" and r["scene"] not in seen:
            seen.add(r["scene"])
            order.append((r["water_fraction"], len(order), r["scene"]))
    order.sort(key=lambda t: (-t[0], t[1]))
    rows = []
    gap = 4
    for _, _, sc in order[:n]:
        mask = read(os.path.join(run, f"{sc}_water.tif"))[0]
        y, x = wettest_crop(mask, CROP)
        cut = (slice(None), slice(y, y + CROP), slice(x, x + CROP))
        panels = [display(read(os.path.join(run, f"{sc}_sar.vrt"))[cut], "sar"),
                  display(read(os.path.join(run, f"{sc}_model.tif"))[cut], "rgb"),
                  display(read(os.path.join(run, f"{sc}_regression.tif"))[cut], "rgb"),
                  display(read(os.path.join(run, f"{sc}_rgb.vrt"))[cut], "rgb")]
        row = tile(panels, gap)
        rows.append((sc, row))
    if not rows:
        return []
    # 128 colours, twice quality_report's 64: four panels of real texture per row
    write_palette_png(path, tile([r for _, r in rows], gap, vertical=True), 128)
    return [sc for sc, _ in rows]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True)
    ap.add_argument("--crop", type=int, default=0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--model-sha", default="")
    ap.add_argument("--sim-model", required=True)
    ap.add_argument("--sim-model-sha", default="")
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--samples", type=int, default=1)
    ap.add_argument("--seconds", type=int, default=0)
    ap.add_argument("--load", default="")
    ap.add_argument("--command", default="")
    a = ap.parse_args()
    recs = load(os.path.join(a.run, "evals.jsonl"))
    NAMES["model-mean"] = f"model, mean of {a.samples} samples"
    os.makedirs(a.out, exist_ok=True)
    shutil.copyfile(os.path.join(a.run, "evals.jsonl"), os.path.join(a.out, "real_results.jsonl"))
    volkov = sorted({r["scene"] for r in recs if r["source"] == "volkov"})
    sen = sorted({r["scene"] for r in recs if r["source"] != "volkov"})
    md = ["# Real-data quality: Sentinel-1 VH -> Sentinel-2 RGB", "",
          f"Written by `{a.command}` ({a.seconds} s, load {a.load}); method in "
          "[quality.md](../quality.md#real-data-sentinel-1-vh---sentinel-2-rgb).", "",
          f"* model: `{a.model}` (SHA-256 {a.model_sha}…), {a.steps} steps, seed 1"
          + (f"; and the per-pixel mean of {a.samples} samples (`--samples {a.samples}`)"
             if a.samples > 1 else ""),
          f"* simulator-only model: `{a.sim_model}` (SHA-256 {a.sim_model_sha}…), {a.steps} steps, seed 1",
          "* regression: mean RGB per SAR bin fitted on the training split (`mm_baseline --pairs`)",
          f"* test scenes: {len(volkov)} volkov (Texas, 1024 × 1024) and {len(sen)} sen12mscr (256 × 256); "
          f"the water AUC is averaged over the scenes with at least {MIN_WATER:.0%} water by the mask "
          "rule (the number in brackets)"]
    if a.crop:
        md += [f"* scored on the central {a.crop} × {a.crop} window of the larger scenes (REAL_CROP)"]
    md += [""]
    result = {}
    for title, sel in [("All test scenes", lambda r: True),
                       ("volkov (Texas)", lambda r: r["source"] == "volkov"),
                       ("sen12mscr", lambda r: r["source"] != "volkov")]:
        rs = [r for r in recs if sel(r)]
        if not rs:
            continue
        lines, out = table(rs, title)
        md += lines + [""]
        result[title] = out
    shown = picture(recs, a.run, os.path.join(a.out, "real_sar2rgb.png"))
    if shown:
        md += ["![SAR | model | regression | real optical](real_sar2rgb.png)", "",
               f"Left to right: SAR VH (−25 to −5 dB), the model, the regression, the real "
               f"Sentinel-2 RGB (reflectance 0 to 0.25); 256 × 256 crops (the wettest) of "
               f"{', '.join(shown)}.", ""]
    md += ["Per scene:", "",
           "| scene | water | method | PSNR | SSIM | W1 mean | texture error | mIoU | water AUC |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in recs:
        e = r["eval"]
        if r["method"] == "sar-input":
            md.append(f"| {r['scene']} | {r['water_fraction']:.3f} | {NAMES[r['method']]} | | | | | | "
                      f"{fmt(e.get('water_auc'))} |")
        else:
            md.append(f"| {r['scene']} | {r['water_fraction']:.3f} | {NAMES[r['method']]} | "
                      f"{fmt(band_mean(e, 'psnr'), 2)} | {fmt(band_mean(e, 'ssim'))} | {fmt(e.get('w1_mean'), 4)} | "
                      f"{fmt(e.get('texture_error'))} | {fmt(e.get('miou'))} | {fmt(e.get('water_auc'))} |")
    with open(os.path.join(a.out, "real_results.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    for m, s in result.get("All test scenes", {}).items():
        print(f"{m}: " + ", ".join(f"{k} {fmt(v) if isinstance(v, float) else v}" for k, v in s.items()))


if __name__ == "__main__":
    main()
