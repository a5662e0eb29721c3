#!/usr/bin/python3
"""Produce the golden files of the C engine's parity tests (tests/golden/).

    /usr/bin/python3 tools/reference/make_golden.py [--out tests/golden] [--check]

Writes, from tests/golden/tiny_config.json (written here too, if absent):
    tiny_model.safetensors        F32 weights (export.py init, seed MODEL_SEED)
    tiny_model_bf16.safetensors   the same weights rounded to BF16
    tiny_model_f16.safetensors    the same weights rounded to F16
    tiny_golden.safetensors       named F32 stage inputs/outputs (see tests/golden/README.md)

The golden tensors are computed in float32 from the F32 weights. --check also recomputes
everything in float64 (same weights, same inputs) and reports the relative difference per tensor,
checks the Philox known answers, and checks that the files read back.
"""

import argparse
import json
import math
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import export  # noqa: E402
import mm_ref as R  # noqa: E402
import safetensors_io  # noqa: E402

MODEL_SEED = 0
IMAGE_SEED = 42
SEED = 1234
TILE_IDS = [7, 11]
TEMB_T = [0.0, 0.123, 0.25, 0.35, 0.5, 0.6, 0.75, 1.0]
SCENE_T_SAR = [0.0, 0.0]
SCENE_T_RGB = [0.6, 0.35]
STEPS = 4
GUIDANCE = 1.5

TINY_CONFIG = {
    "format": "metaearth-mm",
    "format_version": 1,
    "name": "tiny-test",
    "image_size": 32,
    "modalities": ["rgb", "sar", "nir", "pan", "osm"],
    "modality_channels": [3, 1, 1, 1, 3],
    "vae": {
        "in_channels": 3, "out_channels": 3, "latent_channels": 4,
        "block_out_channels": [32, 64], "layers_per_block": 1,
        "norm_num_groups": 8, "mid_block_add_attention": True,
        "use_quant_conv": True, "use_post_quant_conv": True,
        "scaling_factor": 0.18215, "shift_factor": 0.0,
    },
    "dit": {
        "hidden_size": 64, "num_heads": 4, "mlp_ratio": 4.0, "patch_size": 2,
        "scene_depth": 2, "gen_depth": 2, "freq_dim": 32,
        "ffn_branches": 5, "routing": [0, 1, 2, 3, 4],
    },
    "sampling": {"sampler": "euler_maruyama", "steps": 4, "guidance": 1.5,
                 "sde_eta": 1.0, "time_shift": 1.0},
}

PHILOX_KAT = [  # Random123 known answers: (ctr, key, expected)
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF, 0xFFFFFFFF), (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


def check_philox():
    for ctr, key, want in PHILOX_KAT:
        got = tuple(int(x) for x in R.philox4x32_10(ctr, key))
        assert got == want, f"Philox KAT failed: {[hex(x) for x in got]} != {[hex(x) for x in want]}"


def pseudo_images(B, c, S, seed):
    """Smooth-ish pseudo images in [-1, 1]: sums of random sinusoids plus small noise."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(S, dtype=torch.float32),
                            torch.arange(S, dtype=torch.float32), indexing="ij")
    img = torch.zeros(B, c, S, S)
    for b in range(B):
        for ch in range(c):
            for _ in range(4):
                fy, fx, ph = (torch.rand(3, generator=g) * torch.tensor([0.5, 0.5, 6.2832])).tolist()
                amp = float(torch.rand(1, generator=g)) * 0.5 + 0.2
                img[b, ch] += amp * torch.sin(fy * yy + fx * xx + ph)
    img += 0.05 * torch.randn(B, c, S, S, generator=g)
    return torch.tanh(img)


@torch.no_grad()
def compute(model, images, dtype):
    """All golden tensors, computed with `model` (already in `dtype`). Returns name -> tensor."""
    cfg = model.cfg
    rgb, sar = cfg["modalities"].index("rgb"), cfg["modalities"].index("sar")
    C, L = model.C, model.L
    shape = (C, L, L)
    B = len(TILE_IDS)
    out = {}
    f32 = lambda v: torch.tensor(np.asarray(v, dtype=np.float32))  # noqa: E731
    # t values are defined as float32 numbers (what the file stores); widened exactly to float64
    t64 = lambda v: f32(v).to(torch.float64)  # noqa: E731

    out["in.rgb"], out["in.sar"] = images["rgb"], images["sar"]
    # VAE
    out["vae.enc.rgb"] = R.vae_encode(model, images["rgb"].to(dtype), rgb)
    out["vae.enc.sar"] = R.vae_encode(model, images["sar"].to(dtype), sar)
    out["vae.dec.rgb"] = R.vae_decode(model, out["vae.enc.rgb"], rgb)
    out["vae.dec.sar"] = R.vae_decode(model, out["vae.enc.sar"], sar)
    # embeddings
    out["temb.t"] = f32(TEMB_T)
    out["temb.out"] = model.t_embedder(t64(TEMB_T))
    out["pos"] = model.pos(dtype)
    out["patch.sar"] = model.patchify_embed(model.scene.x_embedder[sar], out["vae.enc.sar"], sar)
    # noise
    out["noise.p0.m0.s0"] = R.noise_batch(SEED, TILE_IDS, 0, rgb, 0, shape)
    out["noise.p1.m0.s2"] = R.noise_batch(SEED, TILE_IDS, 1, rgb, 2, shape)
    out["noise.p2.m1.s0"] = R.noise_batch(SEED, TILE_IDS, 2, sar, 0, shape)
    # scene module: sar clean, rgb noisy (x_t = (1 - t) x0 + t eps), per-tile t
    t_sar, t_rgb = t64(SCENE_T_SAR), t64(SCENE_T_RGB)
    z_sar = out["vae.enc.sar"]
    tr = t_rgb.to(dtype)[:, None, None, None]
    z_rgb = (1 - tr) * out["vae.enc.rgb"] + tr * out["noise.p0.m0.s0"].to(dtype)
    out["scene.z.sar"], out["scene.t.sar"] = z_sar, f32(SCENE_T_SAR)
    out["scene.z.rgb"], out["scene.t.rgb"] = z_rgb, f32(SCENE_T_RGB)
    trace = {}
    S_sar, S_rgb = R.scene_forward(model, [(z_sar, t_sar, sar), (z_rgb, t_rgb, rgb)], trace)
    out["scene.x_in"] = trace["x_in"]
    for i in range(cfg["dit"]["scene_depth"]):
        out[f"scene.block{i}.out"] = trace[f"block{i}"]
    out["scene.tokens.sar"], out["scene.tokens.rgb"] = S_sar, S_rgb
    # generator
    gtrace = {}
    out["gen.v.rgb"] = R.gen_forward(model, z_rgb, S_rgb, t_rgb, rgb, gtrace)
    out["gen.block0.out"] = gtrace["block0"]
    # one guided velocity (first step of the translation: targets = initial noise at t = 1)
    out["cfg.v.rgb"] = R.predict_velocity(
        model, [(z_sar, sar)], [(out["noise.p0.m0.s0"].to(dtype), rgb)],
        torch.ones(B, dtype=torch.float64), GUIDANCE, [out["noise.p2.m1.s0"].to(dtype)])[0]
    # full samplers: translate sar -> rgb
    strace = {}
    x = R.sample(model, [(z_sar, sar)], [rgb], SEED, TILE_IDS, STEPS, "euler_maruyama", GUIDANCE,
                 1.0, 1.0, trace=strace)
    out["sample.translate.sar2rgb.latent"] = x[rgb]
    for i in range(STEPS - 1):
        out[f"sample.translate.sar2rgb.step{i}"] = strace[f"step{i}.{rgb}"]
    out["sample.translate.sar2rgb.image"] = R.vae_decode(model, x[rgb], rgb)
    for s in ("euler", "heun"):
        x = R.sample(model, [(z_sar, sar)], [rgb], SEED, TILE_IDS, STEPS, s, GUIDANCE, 1.0, 1.0)
        out[f"sample.{s}.translate.sar2rgb.latent"] = x[rgb]
    # joint generation rgb + sar, guidance 1
    x = R.sample(model, [], [rgb, sar], SEED, TILE_IDS, STEPS, "euler_maruyama", 1.0, 1.0, 1.0)
    out["sample.joint.rgb.latent"], out["sample.joint.sar.latent"] = x[rgb], x[sar]
    # scene embedding of sar alone
    out["embed.sar"] = R.scene_embedding(model, [(z_sar, sar)])[0]
    return {k: v.detach() for k, v in out.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", default=os.path.join(HERE, "..", "..", "tests", "golden"))
    ap.add_argument("--check", action="store_true", help="float64 cross-check and read-back")
    a = ap.parse_args()
    torch.set_num_threads(1)  # deterministic reductions
    os.makedirs(a.out, exist_ok=True)
    check_philox()

    cfg_path = os.path.join(a.out, "tiny_config.json")
    if os.path.exists(cfg_path):
        with open(cfg_path) as f:
            cfg = json.load(f)
        assert cfg == TINY_CONFIG, "tests/golden/tiny_config.json differs from TINY_CONFIG"
    else:
        with open(cfg_path, "w") as f:
            json.dump(TINY_CONFIG, f, indent=2)
            f.write("\n")
        cfg = TINY_CONFIG

    model = export.init_weights(R.build_model(cfg), MODEL_SEED)
    paths = {d: os.path.join(a.out, n) for d, n in
             [("F32", "tiny_model.safetensors"), ("BF16", "tiny_model_bf16.safetensors"),
              ("F16", "tiny_model_f16.safetensors")]}
    for d, p in paths.items():
        export.export(cfg, p, dtype=d, model=model)

    # the golden run uses the model as it is read back from the F32 file
    model = R.load_model(paths["F32"], torch.float32)
    images = {"rgb": pseudo_images(2, 3, cfg["image_size"], IMAGE_SEED),
              "sar": pseudo_images(2, 1, cfg["image_size"], IMAGE_SEED + 1)}
    gold = compute(model, images, torch.float32)
    meta = {
        "description": "MetaEarth-MM golden tensors (tools/reference/make_golden.py), float32",
        "config": json.dumps(cfg, separators=(",", ":")),
        "seed": str(SEED),
        "tile_ids": json.dumps(TILE_IDS),
        "model_seed": str(MODEL_SEED),
        "image_seed": str(IMAGE_SEED),
        "temb_t": json.dumps(TEMB_T),
        "scene_t": json.dumps({"sar": SCENE_T_SAR, "rgb": SCENE_T_RGB}),
        "scene_partitions": "sar (m=1) then rgb (m=0)",
        "sampling": json.dumps({"steps": STEPS, "guidance_translate": GUIDANCE,
                                "guidance_joint": 1.0, "sde_eta": 1.0, "time_shift": 1.0,
                                "time_grid": R.time_grid(STEPS)}),
    }
    gpath = os.path.join(a.out, "tiny_golden.safetensors")
    safetensors_io.write(gpath, {k: v.float() for k, v in gold.items()}, "F32", meta)

    for name in sorted(gold):
        v = gold[name]
        print(f"{name:40s} {str(list(v.shape)):18s} rms {v.float().pow(2).mean().sqrt():.4g}")
    total = 0
    for p in list(paths.values()) + [gpath, cfg_path]:
        total += os.path.getsize(p)
        print(f"{os.path.relpath(p):60s} {os.path.getsize(p):>9d} bytes")
    print(f"total {total} bytes")

    if a.check:
        back, meta2, dts = safetensors_io.read(gpath)
        assert set(back) == set(gold) and all(torch.equal(back[k], gold[k].float()) for k in gold)
        for d, p in paths.items():
            w, _, dts = safetensors_io.read(p)
            assert set(dts.values()) == {d}
            ref = model.state_dict()
            for k, v in w.items():
                conv = ref[k].to(torch.bfloat16 if d == "BF16" else torch.float16).float() \
                    if d != "F32" else ref[k]
                assert torch.equal(v, conv), (d, k)
            R.load_model(p)  # validates names and shapes
        # float64 cross-check: same (F32-read) weights, same inputs, computed in float64
        gold64 = compute(R.load_model(paths["F32"], torch.float64), images, torch.float64)
        worst = 0.0
        print("float64 vs float32: max|d| / max|ref| per tensor")
        for name in sorted(gold):
            a32, a64 = gold[name].double(), gold64[name]
            rel = float((a32 - a64).abs().max() / a64.abs().max().clamp_min(1e-30))
            worst = max(worst, rel)
            print(f"  {name:40s} {rel:.2e}")
        print(f"worst {worst:.2e}")
        assert worst < 1e-4, "float32 golden values are dominated by rounding"
    print("ok")


if __name__ == "__main__":
    main()
