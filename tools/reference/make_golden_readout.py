#!/usr/bin/python3
"""Golden tensors of the zero-shot scene readout (paper V-C, Eq. 22) and of joint guidance
(tests/golden/tiny_readout.safetensors, read by tests/test_readout.c).

    /usr/bin/python3 tools/reference/make_golden_readout.py [--out tests/golden] [--check]

Uses the committed tiny model (tests/golden/tiny_model.safetensors, F32) and the pseudo images of
make_golden.py (same seeds; the C test reads them as in.rgb / in.sar of tiny_golden.safetensors).
To keep the file a few KB, every tensor is stored as a strided subset of its flattened values:
the tensor NAME holds elements 0, k, 2k, ... of the full result, k = the metadata item
"stride.NAME". --check recomputes everything in float64 and reports the relative difference.
"""

import argparse
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_golden as G  # noqa: E402
import mm_ref as R  # noqa: E402
import safetensors_io  # noqa: E402

STEPS = 4
GUIDANCE = 1.5
READOUT_T = 0.25

# name -> stride
STRIDES = {
    "readout.sar2rgb": 16,          # sources sar (clean), readout branch rgb: [2, N, H]
    "readout.sar2rgb.t0.25": 32,    # the same with the source at t = 0.25
    "readout.rgbsar2nir": 32,       # two clean sources (rgb, sar), readout branch nir
    "joint.guided.rgb.image": 16,   # joint rgb + sar, guidance 1.5 between them, decoded
    "joint.guided.sar.image": 16,
    "joint.guided3.rgb.image": 32,  # joint rgb + sar + nir, guidance 1.5
    "joint.guided3.sar.image": 32,
    "joint.guided3.nir.image": 32,
}


@torch.no_grad()
def compute(model, images, dtype):
    cfg = model.cfg
    rgb, sar, nir = (cfg["modalities"].index(n) for n in ("rgb", "sar", "nir"))
    tiles, seed = G.TILE_IDS, G.SEED
    z_rgb = R.vae_encode(model, images["rgb"].to(dtype), rgb)
    z_sar = R.vae_encode(model, images["sar"].to(dtype), sar)
    full = {}
    full["readout.sar2rgb"] = R.scene_readout(model, [(z_sar, sar)], rgb, seed, tiles)
    full["readout.sar2rgb.t0.25"] = R.scene_readout(model, [(z_sar, sar)], rgb, seed, tiles,
                                                    READOUT_T)
    full["readout.rgbsar2nir"] = R.scene_readout(model, [(z_rgb, rgb), (z_sar, sar)], nir, seed,
                                                 tiles)
    x = R.sample(model, [], [rgb, sar], seed, tiles, STEPS, "euler_maruyama", GUIDANCE, 1.0, 1.0,
                 joint_guidance=True)
    for m, n in ((rgb, "rgb"), (sar, "sar")):
        full[f"joint.guided.{n}.image"] = R.vae_decode(model, x[m], m)
    x = R.sample(model, [], [rgb, sar, nir], seed, tiles, STEPS, "euler_maruyama", GUIDANCE, 1.0,
                 1.0, joint_guidance=True)
    for m, n in ((rgb, "rgb"), (sar, "sar"), (nir, "nir")):
        full[f"joint.guided3.{n}.image"] = R.vae_decode(model, x[m], m)
    # guidance 1 with joint guidance on is plain joint generation (nothing to check here: the C
    # test compares it with tiny_golden's sample.joint.*); the guided run must differ from it
    x1 = R.sample(model, [], [rgb, sar], seed, tiles, STEPS, "euler_maruyama", 1.0, 1.0, 1.0)
    d = float((R.vae_decode(model, x1[rgb], rgb) - full["joint.guided.rgb.image"]).abs().max())
    assert d > 1e-3, f"joint guidance 1.5 is indistinguishable from guidance 1 ({d})"
    return full


def subsets(full):
    return {k: v.detach().reshape(-1)[::STRIDES[k]].clone() for k, v in full.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", default=os.path.join(HERE, "..", "..", "tests", "golden"))
    ap.add_argument("--check", action="store_true", help="float64 cross-check")
    a = ap.parse_args()
    torch.set_num_threads(1)
    with open(os.path.join(a.out, "tiny_config.json")) as f:
        cfg = json.load(f)
    assert cfg == G.TINY_CONFIG
    mpath = os.path.join(a.out, "tiny_model.safetensors")
    model = R.load_model(mpath, torch.float32)
    images = {"rgb": G.pseudo_images(2, 3, cfg["image_size"], G.IMAGE_SEED),
              "sar": G.pseudo_images(2, 1, cfg["image_size"], G.IMAGE_SEED + 1)}
    # the inputs are the ones committed in tiny_golden.safetensors (what the C test reads)
    gold, _, _ = safetensors_io.read(os.path.join(a.out, "tiny_golden.safetensors"))
    assert torch.equal(gold["in.rgb"], images["rgb"]) and torch.equal(gold["in.sar"], images["sar"])
    full = compute(model, images, torch.float32)
    sub = subsets(full)
    meta = {
        "description": "MetaEarth-MM readout and joint-guidance golden tensors "
                       "(tools/reference/make_golden_readout.py), float32, strided subsets",
        "seed": str(G.SEED), "tile_ids": json.dumps(G.TILE_IDS),
        "sampling": json.dumps({"steps": STEPS, "sampler": "euler_maruyama",
                                "guidance": GUIDANCE, "joint_guidance": True}),
        "readout_t": str(READOUT_T),
    }
    for k, s in STRIDES.items():
        meta[f"stride.{k}"] = str(s)
        meta[f"shape.{k}"] = json.dumps(list(full[k].shape))
    path = os.path.join(a.out, "tiny_readout.safetensors")
    safetensors_io.write(path, {k: v.float() for k, v in sub.items()}, "F32", meta)
    for k in sorted(sub):
        print(f"{k:28s} full {str(list(full[k].shape)):16s} stored {sub[k].numel():5d} "
              f"rms {sub[k].pow(2).mean().sqrt():.4g}")
    print(f"{os.path.relpath(path)} {os.path.getsize(path)} bytes")
    if a.check:
        full64 = compute(R.load_model(mpath, torch.float64), images, torch.float64)
        worst = 0.0
        for k in sorted(full):
            rel = float((full[k].double() - full64[k]).abs().max() / full64[k].abs().max())
            worst = max(worst, rel)
            print(f"  float64 vs float32 {k:28s} {rel:.2e}")
        assert worst < 1e-4, "float32 golden values are dominated by rounding"
    print("ok")


if __name__ == "__main__":
    main()
