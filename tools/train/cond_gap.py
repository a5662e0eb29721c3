#!/usr/bin/python3
"""How much a model's translation uses its source: the flow-matching loss of TARGET given the
true SOURCE against the same loss given another window's SOURCE (shuffled), on held-out real
windows (docs/training.md, "conditioning gap").

A model that ignores its source scores the same both ways (gap 0 %); the gap at t near 1 (pure
noise, where the layout is decided) is what tells whether the output follows the scene.

    /usr/bin/python3 tools/train/cond_gap.py --real /work/data/real MODEL.safetensors|dit.pt ...

A dit.pt (train.py's checkpoint) is read with its EMA weights and the latent scale and shift of
the latents.pt beside it; a model file with the scale and shift of its config.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
import mm_ref as R  # noqa: E402
import realdata  # noqa: E402
import safetensors_io  # noqa: E402


def load(path, cfg_path, raw=False):
    """(model, shift, scale) of a model file or a train.py checkpoint (its EMA weights, or with
    raw its current ones)."""
    if path.endswith(".pt"):
        cfg = json.load(open(cfg_path))
        model = R.build_model(cfg)
        model.load_state_dict(torch.load(path)["model" if raw else "ema"])
        lat = torch.load(os.path.join(os.path.dirname(path), "latents.pt"))
        return model.eval(), cfg, lat["shift"], lat["scale"]
    tensors, meta, _ = safetensors_io.read(path)
    cfg = json.loads(meta["config"])
    model = R.build_model(cfg)
    model.load_state_dict({k: v.float() for k, v in tensors.items()})
    return model.eval(), cfg, cfg["vae"]["shift_factor"], cfg["vae"]["scaling_factor"]


@torch.no_grad()
def encode(model, cfg, x):
    x = torch.from_numpy(x)
    x = x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x
    mom = model.encoder(x)
    if model.quant_conv is not None:
        mom = model.quant_conv(mom)
    return mom[:, : cfg["vae"]["latent_channels"]].float()


@torch.no_grad()
def fm_loss(model, mods, src, tgt, xc, x0, t, seed):
    B = x0.shape[0]
    tt = torch.full((B,), t, dtype=torch.float64)
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed))
    xt = (1 - t) * x0 + t * eps
    S = R.scene_forward(model, [(xc, torch.zeros(B, dtype=torch.float64), mods.index(src)),
                                (xt, tt, mods.index(tgt))])
    v = R.gen_forward(model, xt, S[1], tt, mods.index(tgt)).float()
    return float(((v - (eps - x0)) ** 2).mean())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--real", required=True, help="prepare_real.py's directory (its test split)")
    ap.add_argument("--config", default=os.path.join(HERE, "..", "..", "models", "default-config.json"),
                    help="the config of a dit.pt checkpoint")
    ap.add_argument("--task", default="sar:rgb")
    ap.add_argument("--split", default="test", help="the windows' split (train: is it learnt at all)")
    ap.add_argument("--windows", type=int, default=96)
    ap.add_argument("--times", default="0.3,0.6,0.9,1.0")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--raw", action="store_true", help="a dit.pt's current weights, not its EMA")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    src, tgt = args.task.split(":")
    times = [float(t) for t in args.times.split(",")]
    scenes = None
    print(f"conditioning gap, {args.task}, {args.split} windows; loss true / shuffled source, gap %")
    for path in args.models:
        model, cfg, shift, scale = load(path, args.config, args.raw)
        if scenes is None:  # the same windows for every model (the first model's config)
            scenes = realdata.RealScenes(args.real, cfg, args.split)
            rng = np.random.default_rng(12345)
            S = cfg["image_size"]
            wins = [scenes.window(rng, S, need=(src, tgt)) for _ in range(args.windows)]
        xc = (encode(model, cfg, np.stack([w[src] for w in wins])) - shift) * scale
        x0 = (encode(model, cfg, np.stack([w[tgt] for w in wins])) - shift) * scale
        perm = torch.from_numpy(np.roll(np.arange(args.windows), args.windows // 2))
        cells = []
        for k, t in enumerate(times):
            a = fm_loss(model, cfg["modalities"], src, tgt, xc, x0, t, 100 + k)
            b = fm_loss(model, cfg["modalities"], src, tgt, xc[perm], x0, t, 100 + k)
            cells.append(f"t={t:g}: {a:.3f}/{b:.3f} ({100 * (b - a) / b:+.1f} %)")
        print(f"{os.path.basename(path)}: " + "  ".join(cells), flush=True)


if __name__ == "__main__":
    main()
