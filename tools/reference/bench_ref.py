#!/usr/bin/python3
"""Time ONE guided sampling step of the PyTorch reference on CPU (default) or on a CUDA GPU.

One step = the velocity of a translation step with classifier-free guidance: the scene module
over [source; target] partitions and the generator for the target, once conditional and once
unconditional (source replaced by noise at t = 1), combined as v_u + w (v_c - v_u).

    /usr/bin/python3 tools/reference/bench_ref.py (--config CFG.json | --model FILE.safetensors)
        [--batch 1] [--threads N] [--iters 3] [--warmup 1] [--modes fp32,bf16]
        [--source sar] [--target rgb] [--guidance 1.5] [--seed 0] [--device cpu|cuda]

--config builds the model with export.py's seeded random weights; --model loads a model file
(F32/F16/BF16), so the C engine and this reference run the same weights. Modes: fp32 eager, and
bf16 = torch.autocast('cpu', dtype=torch.bfloat16) eager. Prints one line of JSON with the
median seconds per step of each mode.

--device cuda: the model and every tensor on the GPU, bf16 = torch.autocast('cuda',
dtype=torch.bfloat16); steps are timed with torch.cuda.synchronize() around them. fp32 on CUDA
is whatever torch's defaults give (torch.backends.cuda.matmul.allow_tf32, reported in the JSON).
"""

import argparse
import contextlib
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export  # noqa: E402
import mm_ref as R  # noqa: E402


def loaded_blas():
    """Which BLAS library this process mapped (fp32 eager speed depends on it)."""
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "blas" in line.lower() and "/" in line}
        return ",".join(sorted(os.path.realpath(p) for p in libs)) or "none mapped"
    except OSError:
        return "unknown"


def on_device(model, dev):
    """The reference model on a GPU. mm_ref computes the timestep features and keeps the fixed
    position table on the CPU (float64, made on the fly); both are moved to the device here,
    without changing mm_ref itself (the CPU path stays exactly as it was)."""
    model = model.to(dev)
    model._pos = model._pos.to(dev)
    features = R.timestep_features
    if not getattr(features, "_on_device", False):
        def timestep_features(t, freq_dim):
            return features(t.detach().to("cpu"), freq_dim).to(dev)
        timestep_features._on_device = True
        R.timestep_features = timestep_features
    return model


@torch.no_grad()
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--config")
    src.add_argument("--model")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--modes", default="fp32,bf16")
    ap.add_argument("--source", default="sar")
    ap.add_argument("--target", default="rgb")
    ap.add_argument("--guidance", type=float, default=1.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cuda = a.device == "cuda"
    if cuda and not torch.cuda.is_available():
        sys.exit("bench_ref.py: --device cuda but torch sees no CUDA device")
    dev = torch.device(a.device)

    t0 = time.perf_counter()
    if a.model:
        model = R.load_model(a.model)
    else:
        with open(a.config) as f:
            model = export.init_weights(R.build_model(json.load(f)), a.seed)
    if cuda:
        model = on_device(model, dev)
    load_s = time.perf_counter() - t0
    cfg = model.cfg
    s, m = cfg["modalities"].index(a.source), cfg["modalities"].index(a.target)
    shape = (model.C, model.L, model.L)
    tiles = list(range(a.batch))
    g = torch.Generator().manual_seed(a.seed)
    z_src = 0.5 * torch.randn((a.batch,) + shape, generator=g)  # stand-in clean source latent
    x_tgt = R.noise_batch(a.seed, tiles, R.PURPOSE_INIT, m, 0, shape)
    unc = R.noise_batch(a.seed, tiles, R.PURPOSE_UNCOND, s, 0, shape)
    t = torch.full((a.batch,), 0.5, dtype=torch.float64)
    if cuda:
        z_src, x_tgt, unc, t = (v.to(dev) for v in (z_src, x_tgt, unc, t))

    def step():
        return R.predict_velocity(model, [(z_src, s)], [(x_tgt, m)], t, a.guidance, [unc])[0]

    def sync():
        if cuda:
            torch.cuda.synchronize()

    result = {"name": cfg.get("name", ""), "batch": a.batch, "threads": a.threads,
              "tokens_per_modality": model.N, "hidden": model.H, "guidance": a.guidance,
              "weights": a.model or "random", "load_s": round(load_s, 3),
              "torch": torch.__version__, "blas": loaded_blas(), "device": a.device}
    if cuda:
        result["gpu"] = torch.cuda.get_device_name(dev)
        result["fp32_matmul_allow_tf32"] = torch.backends.cuda.matmul.allow_tf32
    for mode in a.modes.split(","):
        if mode == "fp32":
            ctx = contextlib.nullcontext
        elif mode == "bf16":
            ctx = lambda: torch.autocast(a.device, dtype=torch.bfloat16)  # noqa: E731
        else:
            sys.exit(f"unknown mode {mode}")
        times = []
        for i in range(a.warmup + a.iters):
            sync()
            t1 = time.perf_counter()
            with ctx():
                v = step()
            sync()
            dt = time.perf_counter() - t1
            if i >= a.warmup:
                times.append(dt)
        assert torch.isfinite(v.float()).all()
        result[f"{mode}_s_per_step"] = round(statistics.median(times), 6)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
