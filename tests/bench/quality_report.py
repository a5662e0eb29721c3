"""The report step of tests/bench/quality.sh: mm_eval's JSON records -> results.md, results.json
and the side-by-side pictures (docs/quality.md). Run by the script with /usr/bin/python3 (numpy,
GDAL's Python bindings); not part of the build or the tests."""
import argparse
import json
import math
import os
import re

import sys

import numpy as np
from osgeo import gdal

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "train"))
import units  # noqa: E402

gdal.UseExceptions()

NAMES = {"sar": "SAR", "rgb": "RGB", "nir": "NIR", "pan": "PAN", "osm": "OSM"}
METHOD_NAMES = {"model1": "model, 1 step", "baseline": "LUT baseline",
                "reference": "the reference itself (ceiling)", "real": "real pair (ceiling)",
                "unrelated": "unrelated real scenes (floor)"}
MIN_PIXELS = 64  # as mm_eval's TEX_MIN_PIXELS


def method_name(m, steps):
    if m == f"four{steps}":
        return f"model, {steps} steps, the four together"
    return METHOD_NAMES.get(m, f"model, {steps} steps" if m == f"model{steps}" else m)


def load(path):
    # one mm_eval --json record per line (mm_eval writes an undefined or infinite score as null)
    with open(path) as f:
        return [json.loads(line) for line in f]


def mean(xs):
    xs = [x for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return sum(xs) / len(xs) if xs else float("nan")


def pool(textures):
    """Pixel-weighted pooling of per-scene texture stats {class: {pixels, mean, std}}."""
    acc = {}
    for t in textures:
        for k, v in t.items():
            a = acc.setdefault(k, [0.0, 0.0, 0.0])
            a[0] += v["pixels"]
            a[1] += v["pixels"] * v["mean"]
            a[2] += v["pixels"] * v["std"]
    return {k: {"pixels": a[0], "mean": a[1] / a[0], "std": a[2] / a[0]} for k, a in acc.items() if a[0]}


def texture_error(gen, ref):
    """Mean over classes (>= MIN_PIXELS reference pixels) of |std_gen - std_ref| / std_ref."""
    e = [abs(gen[k]["std"] - r["std"]) / r["std"] for k, r in ref.items()
         if r["pixels"] >= MIN_PIXELS and r["std"] > 0 and k in gen]
    return sum(e) / len(e) if e else float("nan")


def fmt(x, d=3):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, float) and math.isinf(x):
        return "∞"
    return f"{x:.{d}f}"


# ---- pictures --------------------------------------------------------------------------------

def display(path, modality):
    """A raster as H x W x 3 uint8 with a fixed stretch per modality (the same for every panel)."""
    a = gdal.Open(path).ReadAsArray().astype(np.float64)
    if a.ndim == 2:
        a = a[None]
    if modality == "sar":
        v = (units.sar_db(a) - units.SAR_DB_MIN) / (units.SAR_DB_MAX - units.SAR_DB_MIN)
    elif modality == "osm":
        v = a / 255
    elif modality == "rgb":
        v = a / 3500  # reflectance 0..0.35
    else:
        v = a / 6000  # NIR, PAN: reflectance 0..0.6
    v = np.clip(v * 255 + 0.5, 0, 255).astype(np.uint8)
    if v.shape[0] == 1:
        v = np.repeat(v, 3, axis=0)
    return v.transpose(1, 2, 0)


def tile(panels, gap=4, vertical=False):
    """H x W x 3 uint8 panels side by side (or one above the other), `gap` white pixels apart."""
    ax = 0 if vertical else 1
    size = [0, 0]
    size[ax] = sum(p.shape[ax] for p in panels) + gap * (len(panels) - 1)
    size[1 - ax] = max(p.shape[1 - ax] for p in panels)
    img = np.full((size[0], size[1], 3), 255, np.uint8)
    at = 0
    for p in panels:
        if vertical:
            img[at: at + p.shape[0], : p.shape[1]] = p
        else:
            img[: p.shape[0], at: at + p.shape[1]] = p
        at += p.shape[ax] + gap
    return img


def write_palette_png(path, img, colours=64):
    """An H x W x 3 uint8 image as a paletted PNG of `colours` colours (median cut, dithered):
    a quarter of the size of a true-colour PNG at 64."""
    h, w, _ = img.shape
    mem = gdal.GetDriverByName("MEM").Create("", w, h, 3, gdal.GDT_Byte)
    for b in range(3):
        mem.GetRasterBand(b + 1).WriteArray(img[:, :, b])
    ct = gdal.ColorTable()
    bands = [mem.GetRasterBand(b + 1) for b in range(3)]
    gdal.ComputeMedianCutPCT(*bands, colours, ct)
    pal = gdal.GetDriverByName("MEM").Create("", w, h, 1, gdal.GDT_Byte)
    pal.GetRasterBand(1).SetRasterColorTable(ct)
    gdal.DitherRGB2PCT(*bands, pal.GetRasterBand(1), ct)
    gdal.GetDriverByName("PNG").CreateCopy(path, pal, options=["ZLEVEL=9"])
    mem = pal = None
    aux = path + ".aux.xml"
    if os.path.exists(aux):
        os.remove(aux)


def montage(path, panels, gap=4):
    write_palette_png(path, tile(panels, gap), 64)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--scenes", type=int, required=True)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--model", required=True)
    ap.add_argument("--model-sha", required=True)
    ap.add_argument("--seconds", type=int, required=True)
    ap.add_argument("--command", required=True)
    ap.add_argument("--load", default="")
    ap.add_argument("--doc", help="a markdown file whose text between the markers "
                    "<!-- BEGIN quality.sh results --> and <!-- END quality.sh results --> is "
                    "replaced by the results (picture links relative to its directory)")
    a = ap.parse_args()
    recs = load(os.path.join(a.run, "evals.jsonl"))
    many = f"model{a.steps}"
    four = f"four{a.steps}"  # joint generation of the four modalities together

    # ---- translation directions
    directions = []
    for r in recs:
        if not r["direction"].startswith("joint:") and r["direction"] not in directions:
            directions.append(r["direction"])
    rows, texture_rows = [], []
    for d in directions:
        s, t = d.split(":")
        ref_tex = None
        for m in (many, "model1", "baseline", "reference"):
            rs = [r["eval"] for r in recs if r["direction"] == d and r["method"] == m]
            if not rs:
                continue
            gen = pool([e["texture_generated"] for e in rs])
            ref = pool([e["texture_reference"] for e in rs])
            ref_tex = ref
            row = {
                "direction": d, "source": s, "target": t, "method": m, "scenes": len(rs),
                "zero_shot": d == "sar:osm",
                "psnr": mean([mean([b["psnr"] for b in e["bands"]]) for e in rs]),
                "ssim": mean([mean([b["ssim"] for b in e["bands"]]) for e in rs]),
                "fsim": mean([mean([b["fsim"] for b in e["bands"]]) for e in rs]),
                "accuracy": mean([e["accuracy"] for e in rs]),
                "miou": mean([e["miou"] for e in rs]),
                "texture_error": texture_error(gen, ref),
                "texture": gen,
            }
            rows.append(row)
        if ref_tex is not None:
            texture_rows.append((d, ref_tex))

    # ---- joint generation
    joint = []
    pairs = []
    for r in recs:
        if r["direction"].startswith("joint:") and r["direction"] not in pairs:
            pairs.append(r["direction"])
    real_tex, gen_tex = {}, {}
    for p in pairs:
        ma, mb = p[6:].split(":")
        for m in (many, four, "model1", "real", "unrelated"):
            rs = [r["eval"] for r in recs if r["direction"] == p and r["method"] == m]
            if not rs:
                continue
            joint.append({"pair": p[6:], "method": m, "scenes": len(rs),
                          "agreement": mean([e["agreement"] for e in rs]),
                          "miou": mean([e["miou"] for e in rs])})
            if m in (many, four, "model1", "real"):
                store = real_tex if m == "real" else gen_tex.setdefault(m, {})
                store.setdefault(ma, []).extend(e["texture_a"] for e in rs)
                store.setdefault(mb, []).extend(e["texture_b"] for e in rs)
    joint_texture = []
    for m, per_mod in gen_tex.items():
        for mod, ts in per_mod.items():
            # a modality appears once per pair it is in: with the four generated together the
            # same pixels (pooling repeats them evenly), with pairs generated on their own
            # another generation of the same scene each time (pooled alike)
            g, r = pool(ts), pool(real_tex.get(mod, []))
            joint_texture.append({"method": m, "modality": mod, "texture_error": texture_error(g, r),
                                  "texture": g, "reference": r})

    # ---- pictures (the first scene)
    pics = []
    for d in directions:
        s, t = d.split(":")
        files = [os.path.join(a.run, f"s0_{s}.tif"), os.path.join(a.run, f"s0_{t}.tif")] + [
            os.path.join(a.run, f"g0_{s}2{t}_{m}.tif") for m in (many, "model1", "baseline")]
        mods = [s, t, t, t, t]
        if all(os.path.exists(f) for f in files):
            name = f"{s}2{t}.png"
            montage(os.path.join(a.out, name), [display(f, m) for f, m in zip(files, mods)])
            pics.append((d, name))
    # joint: the pairs RGB-SAR and RGB-OSM each generated on their own, then the real images
    jfiles = [(os.path.join(a.run, f"j0_{many}_{p}_{m}.tif"), m)
              for p in ("rgb-sar", "rgb-osm") for m in p.split("-")]
    if all(os.path.exists(f) for f, _ in jfiles):
        panels = [display(f, m) for f, m in jfiles]
        panels += [display(os.path.join(a.run, f"s0_{m}.tif"), m) for _, m in jfiles]
        montage(os.path.join(a.out, "joint.png"), panels)
        pics.append(("joint", "joint.png"))

    # ---- results.json
    res = {"command": a.command, "model": a.model, "model_sha256_prefix": a.model_sha,
           "scenes": a.scenes, "steps": a.steps, "seconds": a.seconds, "directions": rows,
           "joint": joint, "joint_texture": joint_texture,
           "reference_texture": {d: t for d, t in texture_rows}}
    def strict(x):  # NaN and infinities as null: strict JSON
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {k: strict(v) for k, v in x.items()}
        if isinstance(x, list):
            return [strict(v) for v in x]
        return x
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(strict(res), f, indent=1, allow_nan=False)

    # ---- results.md
    L = []
    load_note = f" (load average {a.load} at the end: the machine was shared)" if a.load else ""
    L.append(f"Produced by `{a.command}` in {a.seconds} s{load_note}: model `{a.model}` (SHA-256 "
             f"{a.model_sha}…), {a.scenes} held-out scenes of 160 × 160 (seeds 700001–{700000 + a.scenes}).")
    L.append("")
    L.append("### Translation")
    L.append("")
    L.append("PSNR, SSIM, FSIM: mean over bands and scenes. Accuracy, mIoU: the target modality's "
             "classifier on the output against the label map (mean over scenes). Texture error: "
             "mean over classes of |σ − σ_ref| / σ_ref, σ the class's mean 5 × 5 local standard "
             "deviation (pooled over scenes; lower is better). **Bold**: the better of the model "
             f"({a.steps} steps) and the baseline on semantic fidelity (mIoU) and texture. "
             "'The reference itself': the real target image scored as if it were an output, "
             "what a perfect generator would get (its texture error is 0 by definition).")
    L.append("")
    L.append("| direction | method | PSNR (dB) | SSIM | FSIM | accuracy | mIoU | texture error |")
    L.append("|---|---|---|---|---|---|---|---|")
    for d in directions:
        s, t = d.split(":")
        label = f"{NAMES[s]} → {NAMES[t]}" + (" (zero-shot)" if d == "sar:osm" else "")
        dr = {r["method"]: r for r in rows if r["direction"] == d}
        for m in (many, "model1", "baseline", "reference"):
            r = dr.get(m)
            if not r:
                continue
            miou, tex = fmt(r["miou"]), fmt(r["texture_error"])
            if m in (many, "baseline") and many in dr and "baseline" in dr:
                other = dr["baseline" if m == many else many]
                if r["miou"] > other["miou"]:
                    miou = f"**{miou}**"
                if r["texture_error"] < other["texture_error"]:
                    tex = f"**{tex}**"
            L.append(f"| {label} | {method_name(m, a.steps)} | {fmt(r['psnr'], 2)} | {fmt(r['ssim'])} | "
                     f"{fmt(r['fsim'])} | {fmt(r['accuracy'])} | {miou} | {tex} |")
    L.append("")
    if joint:
        L.append("### Joint generation")
        L.append("")
        L.append("`mm_generate` on each scene's grid, no source: each pair generated on its own "
                 "(joint generation of aligned pairs, as the paper evaluates it), and RGB, SAR, NIR "
                 "and OSM generated together ('the four together': more modalities at once than "
                 "the model trained on, SAR with OSM among them). "
                 "Agreement: fraction of pixels where the two modalities' classifiers give the same "
                 "class; mIoU between the two class maps (classes either map shows). Real pairs of "
                 "the same scene are the ceiling, real images of two unrelated scenes the floor.")
        L.append("")
        L.append("| pair | method | agreement | mIoU |")
        L.append("|---|---|---|---|")
        for j in joint:
            ma, mb = j["pair"].split(":")
            L.append(f"| {NAMES[ma]}–{NAMES[mb]} | {method_name(j['method'], a.steps)} | "
                     f"{fmt(j['agreement'])} | {fmt(j['miou'])} |")
        L.append("")
        L.append("Texture of the generated modalities per predicted class against real simulator "
                 "images of the same scenes (texture error as above, lower is better):")
        L.append("")
        L.append("| modality | method | texture error |")
        L.append("|---|---|---|")
        for jt in sorted(joint_texture, key=lambda x: (x["modality"], [many, four, "model1"].index(x["method"]))):
            L.append(f"| {NAMES[jt['modality']]} | {method_name(jt['method'], a.steps)} | "
                     f"{fmt(jt['texture_error'])} |")
        L.append("")
    L.append("### Texture per class")
    L.append("")
    L.append("Mean 5 × 5 local mean / local standard deviation of each class (by the label map), "
             "in scaled units (reflectance; SAR dB / 30; OSM colour / 255), pooled over scenes.")
    L.append("")
    L.append(f"| direction | class | pixels | reference | model {a.steps} steps | model 1 step | baseline |")
    L.append("|---|---|---|---|---|---|---|")
    for d, ref in texture_rows:
        s, t = d.split(":")
        dr = {r["method"]: r for r in rows if r["direction"] == d}
        for k, r in ref.items():
            cells = []
            for m in (many, "model1", "baseline"):
                g = dr.get(m, {}).get("texture", {}).get(k)
                cells.append(f"{fmt(g['mean'])} / {fmt(g['std'])}" if g else "–")
            L.append(f"| {NAMES[s]} → {NAMES[t]} | {k} | {r['pixels']:.0f} | {fmt(r['mean'])} / "
                     f"{fmt(r['std'])} | " + " | ".join(cells) + " |")
    L.append("")
    if pics:
        L.append("### Pictures (scene 700001)")
        L.append("")
        L.append(f"Each direction: source | reference | model {a.steps} steps | model 1 step | "
                 "LUT baseline. Joint: generated RGB, SAR, NIR, OSM | the real ones of the same "
                 "scene (not a pair: the generation has no source).")
        L.append("")
        for d, name in pics:
            title = "joint generation" if d == "joint" else \
                f"{NAMES[d.split(':')[0]]} → {NAMES[d.split(':')[1]]}"
            L.append(f"{title}: ![{title}](@PIC@{name})")
            L.append("")
    text = "\n".join(L)
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write(text.replace("@PIC@", ""))
    if a.doc:
        begin, end = "<!-- BEGIN quality.sh results -->", "<!-- END quality.sh results -->"
        with open(a.doc) as f:
            doc = f.read()
        i, j = doc.find(begin), doc.find(end)
        if i < 0 or j < i:
            raise SystemExit(f"{a.doc}: no {begin} ... {end} markers")
        rel = os.path.relpath(os.path.abspath(a.out), os.path.dirname(os.path.abspath(a.doc)))
        body = text.replace("@PIC@", rel + "/").replace("### ", "#### ")
        with open(a.doc, "w") as f:
            f.write(doc[: i + len(begin)] + "\n" + body + "\n" + doc[j:])


if __name__ == "__main__":
    main()
