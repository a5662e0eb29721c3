#!/usr/bin/python3
"""mm_convert round trips (issue 19): foreign checkpoints in, the C engine's numbers out.

    roundtrip.py MODE MM_CONVERT CONVERT_RUN
    MODE: dit | sit | conventions_{dit,sit}_{1,2,3} | stray

dit / sit: a DiT-style and a SiT-style MetaEarth-MM (tests/convert/foreign.py) with a
diffusers-like VAE carrying latents_mean / latents_std are saved as their authors would (DiT: a
torch.save training checkpoint {"model", "ema", "args"} and the VAE as a sharded safetensors with
its index.json and diffusers config.json; SiT: a sharded safetensors with model.safetensors.index
.json and the VAE as a torch.save .bin in diffusers' pre-0.14 names), converted with mm_convert,
and run by the C engine in fp32 (convert_run): the VAE encode and decode, one evaluation
(velocity and scene tokens) and one full guided SDE sampling run from a source image to a target
image must match the PyTorch models within 1e-4 relative (max |diff| / max |ref|).
conventions_*: each convention set wrongly is detected: the output differs (by more than 100x the
tolerance) or mm_convert / libmm refuses, naming the field or tensor.
stray: a checkpoint with a stray tensor is refused, naming it, until a mapping (or --drop)
drops it.
"""

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools", "reference"))
import foreign  # noqa: E402
import safetensors_io  # noqa: E402

TOL = 1e-4
TILES = [7, 11]
B = len(TILES)
SEED = 1234
RGB, SAR = 0, 1
GEOM = {"image_size": 32, "modalities": ["rgb", "sar"], "modality_channels": [3, 1]}
DIT = {"hidden_size": 64, "num_heads": 4, "mlp_ratio": 2.0, "patch_size": 2, "scene_depth": 2,
       "gen_depth": 2, "freq_dim": 64, "ffn_branches": 2, "routing": [0, 1]}
VAE_CONFIG = {  # a diffusers AutoencoderKL config.json, as diffusers writes it
    "_class_name": "AutoencoderKL", "_diffusers_version": "0.21.4", "act_fn": "silu",
    "block_out_channels": [32, 32], "down_block_types": ["DownEncoderBlock2D"] * 2,
    "up_block_types": ["UpDecoderBlock2D"] * 2, "in_channels": 3, "out_channels": 3,
    "latent_channels": 4, "layers_per_block": 1, "norm_num_groups": 8, "sample_size": 32,
    "scaling_factor": 0.6, "force_upcast": True, "mid_block_add_attention": True,
    "use_quant_conv": True, "use_post_quant_conv": True,
    "latents_mean": [0.3, -0.2, 0.1, 0.5], "latents_std": [1.7, 0.6, 1.1, 2.3]}
STEPS = {"dit": 4, "sit": 5}
GUIDANCE = 1.5
ETA = 1.0
PARTS = 3  # the convention checks of a style are split over this many tests

fails = 0


def fail(msg):
    global fails
    fails += 1
    print("FAIL: " + msg)


def rel(a, b):
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


# ---- the models and their checkpoints ---------------------------------------------------------

def make(style):
    torch.manual_seed(0)
    cls = foreign.DiTStyle if style == "dit" else foreign.SiTStyle
    args = (2, 64, 4, 128, 4, 2, 8, 2, 2, 2, [0, 1], 64)
    model = foreign.randomise(cls(*args), 1 if style == "dit" else 2, 64).eval()
    vae = foreign.randomise_vae(foreign.DiffusersVAE(VAE_CONFIG), 3).eval()
    return model, vae


def save(style, model, vae, d):
    """The checkpoint files as their authors would write them; returns mm_convert's arguments."""
    vdir = os.path.join(d, "vae")
    os.makedirs(vdir, exist_ok=True)
    with open(os.path.join(vdir, "config.json"), "w") as f:
        json.dump(VAE_CONFIG, f, indent=2)
    cfg = dict(GEOM, name=f"{style}-style-test", dit=dict(DIT),
               sampling={"steps": STEPS[style], "guidance": GUIDANCE})
    vsd = {k: v.detach().clone() for k, v in vae.state_dict().items()}
    msd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if style == "dit":
        # DiT's train.py checkpoint: the raw model, its EMA (what is sampled from), the run's args
        other = foreign.randomise(foreign.DiTStyle(2, 64, 4, 128, 4, 2, 8, 2, 2, 2, [0, 1], 64), 9, 64)
        torch.save({"model": other.state_dict(), "ema": msd, "args": {"image_size": 32}},
                   os.path.join(d, "dit.pt"))
        shard_dir, names, index = vdir, sorted(vsd), "diffusion_pytorch_model.safetensors.index.json"
        shards = [names[: len(names) // 2], names[len(names) // 2:]]
        wm = {}
        for i, part in enumerate(shards):
            fn = f"diffusion_pytorch_model-{i + 1:05d}-of-00002.safetensors"
            safetensors_io.write(os.path.join(shard_dir, fn), {k: vsd[k] for k in part})
            wm.update({k: fn for k in part})
        with open(os.path.join(shard_dir, index), "w") as f:
            json.dump({"metadata": {"total_size": 0}, "weight_map": wm}, f)
        inputs = [os.path.join(d, "dit.pt"), os.path.join(shard_dir, index)]
        extra = ["--state-key", "ema"]
        maps = ["dit", "diffusers-vae"]
    else:
        cfg["dit"].update({"adaln_chunks": 4, "scene_norm_out": False, "condition": "scene+time"})
        names = sorted(msd)
        wm = {}
        for i, part in enumerate([names[: len(names) // 3], names[len(names) // 3:]]):
            fn = f"model-{i + 1:05d}-of-00002.safetensors"
            safetensors_io.write(os.path.join(d, fn), {k: msd[k] for k in part})
            wm.update({k: fn for k in part})
        with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {}, "weight_map": wm}, f)
        torch.save(foreign.legacy_vae_names(vsd), os.path.join(vdir, "diffusion_pytorch_model.bin"))
        inputs = [os.path.join(d, "model.safetensors.index.json"),
                  os.path.join(vdir, "diffusion_pytorch_model.bin")]
        extra = []
        maps = ["sit", "diffusers-vae"]
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    args = []
    for m in maps:
        args += ["-m", m]
    return args + ["-c", os.path.join(d, "config.json"), "--vae-config",
                   os.path.join(vdir, "config.json")] + extra, inputs


# ---- the PyTorch side: each model in its own convention ------------------------------------

def inputs(vae):
    g = torch.Generator().manual_seed(5)
    img = torch.tanh(torch.randn(B, 1, 32, 32, generator=g) * 0.7
                     + torch.sin(torch.arange(32.0) / 3.0)[None, None, None, :])
    with torch.no_grad():
        z_src = vae.encode(img)
    z_tgt = torch.randn(B, 4, 16, 16, generator=g)
    t_tgt = torch.tensor([0.6, 0.35], dtype=torch.float32)
    return img, z_src, z_tgt, t_tgt


def engine_velocity(style, model, z_src, z_tgt, t):
    """What the engine computes for (source clean, target at engine time t): in the model's own
    convention for DiT (t = 1 at the noise); for SiT the network runs at s = 1 - t (clean source
    at s = 1) and its velocity (data - noise) is negated."""
    t = t.to(torch.float64)
    if style == "dit":
        v = model.velocity([(z_src, torch.zeros(B), SAR)], (z_tgt, RGB), t)
        S = model.scene([(z_src, torch.zeros(B), SAR), (z_tgt, t, RGB)])
        return v, S
    s = 1.0 - t
    v = model.velocity([(z_src, torch.ones(B), SAR)], (z_tgt, RGB), s)
    S = model.scene([(z_src, torch.ones(B), SAR), (z_tgt, s, RGB)])
    return -v, S


def noise(purpose, m, step):
    return foreign.noise_batch(SEED, TILES, purpose, m, step, (4, 16, 16))


def sample_dit(model, vae, img, steps):
    """Euler-Maruyama from t = 1 (noise) to 0 with classifier-free guidance, the unconditional
    branch seeing noise at t = 1 in place of the source; the last step without noise."""
    z_src = vae.encode(img)
    x, un = noise(0, RGB, 0), noise(2, SAR, 0)

    def vel(x, t):
        tt = torch.full((B,), t, dtype=torch.float32)
        vc = model.velocity([(z_src, torch.zeros(B), SAR)], (x, RGB), tt)
        vu = model.velocity([(un, torch.ones(B), SAR)], (x, RGB), tt)
        return vu + GUIDANCE * (vc - vu)

    ts = [1.0 - i / steps for i in range(steps + 1)]
    for i in range(steps):
        t, tn = ts[i], ts[i + 1]
        d = t - tn
        v = vel(x, t)
        if tn > 0:
            eps = x + (1.0 - t) * v
            x = x - d * (v + ETA * eps) + math.sqrt(2 * ETA * t * d) * noise(1, RGB, i)
        else:
            x = x - d * v
    return vae.decode(x)


def sample_sit(model, vae, img, steps, last=0.04):
    """SiT's SDE sampler: s from 0 (noise) to 1 - last on an even grid, steps - 1 Euler-Maruyama
    steps, then the "Mean" last step of size `last` (the drift, no noise). Guided as above, the
    unconditional branch seeing noise (s = 0) in place of the source."""
    z_src = vae.encode(img)
    x, un = noise(0, RGB, 0), noise(2, SAR, 0)

    def vel(x, s):
        ss = torch.full((B,), s, dtype=torch.float64)
        vc = model.velocity([(z_src, torch.ones(B), SAR)], (x, RGB), ss)
        vu = model.velocity([(un, torch.zeros(B), SAR)], (x, RGB), ss)
        return vu + GUIDANCE * (vc - vu)

    grid = [i * (1.0 - last) / (steps - 1) for i in range(steps)]
    for i in range(steps - 1):
        s, d = grid[i], grid[i + 1] - grid[i]
        v = vel(x, s)
        eps = x - s * v  # the noise the velocity implies
        x = x + d * (v - ETA * eps) + math.sqrt(2 * ETA * (1.0 - s) * d) * noise(1, RGB, i)
    s = grid[-1]
    v = vel(x, s)
    return vae.decode(x + last * (v - ETA * (x - s * v)))


def expected(style, model, vae, img, z_src, z_tgt, t_tgt):
    with torch.no_grad():
        v, S = engine_velocity(style, model, z_src, z_tgt, t_tgt)
        out = {"enc": vae.encode(img), "dec": vae.decode(z_tgt), "v": v,
               "scene": torch.stack(S, dim=1)}
        sampler = sample_dit if style == "dit" else sample_sit
        out["translate"] = sampler(model, vae, img, STEPS[style])
    return {k: t.numpy() for k, t in out.items()}


# ---- the C side ------------------------------------------------------------------------------

def convert(conv, args, inputs_, out):
    r = subprocess.run([conv] + args + ["-o", out] + inputs_, capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


def run_engine(runner, model_file, io_file, d, steps):
    r = subprocess.run([runner, model_file, io_file, d, "sar", "rgb", "euler_maruyama", str(steps),
                        str(GUIDANCE), str(SEED)], capture_output=True, text=True)
    if r.returncode != 0:
        return None, r.stderr
    return {k: np.fromfile(os.path.join(d, k + ".f32"), dtype="<f4")
            for k in ("enc", "dec", "v", "scene", "translate")}, ""


class Case:
    def __init__(self, style, conv, runner, d):
        self.style, self.conv, self.runner, self.d = style, conv, runner, d
        self.model, self.vae = make(style)
        self.args, self.inputs = save(style, self.model, self.vae, d)
        img, z_src, z_tgt, t_tgt = inputs(self.vae)
        self.io = os.path.join(d, "io.safetensors")
        safetensors_io.write(self.io, {"img.src": img, "z.src": z_src, "z.tgt": z_tgt,
                                       "t.tgt": t_tgt})
        self.want = expected(style, self.model, self.vae, img, z_src, z_tgt, t_tgt)
        self.n = 0

    def engine(self, extra=()):
        """(rc, message, outputs) of converting with extra arguments and running the result."""
        self.n += 1
        out = os.path.join(self.d, f"m{self.n}.safetensors")
        rc, msg = convert(self.conv, self.args + list(extra), self.inputs, out)
        if rc != 0:
            return rc, msg, None
        od = os.path.join(self.d, f"o{self.n}")
        os.makedirs(od)
        got, err = run_engine(self.runner, out, self.io, od, STEPS[self.style])
        if got is None:
            return 1, err, None
        return 0, msg, got

    def errors(self, got):
        return {k: rel(got[k], self.want[k]) for k in self.want}


def check_roundtrip(case):
    rc, msg, got = case.engine()
    if rc != 0:
        fail(f"{case.style}: conversion or run failed: {msg.strip()}")
        return
    for k, e in case.errors(got).items():
        print(f"{case.style}: {k:10s} rel {e:.2e}")
        if not e <= TOL:
            fail(f"{case.style}: {k} differs from PyTorch by {e:.2e} (tolerance {TOL:g})")
    # the reported dropped tensors: DiT's stored position table only
    if case.style == "dit" and "dropped: pos_embed" not in msg:
        fail(f"dit: pos_embed not reported as dropped: {msg}")


def expect_differs(case, what, extra, keys):
    rc, msg, got = case.engine(extra)
    if rc != 0:
        fail(f"{case.style}: {what}: the wrong setting was expected to run, but: {msg.strip()}")
        return
    errs = case.errors(got)
    worst = max(errs[k] for k in keys)
    print(f"{case.style}: wrong {what}: {', '.join(f'{k} rel {errs[k]:.2e}' for k in keys)}")
    if not worst > 100 * TOL:
        fail(f"{case.style}: wrong {what} not detected (rel {worst:.2e})")


def expect_refused(case, what, extra, needle):
    rc, msg, _ = case.engine(extra)
    print(f"{case.style}: wrong {what}: exit {rc}: {msg.strip().splitlines()[0] if msg.strip() else ''}")
    if rc == 0:
        fail(f"{case.style}: wrong {what} was accepted")
    elif needle not in msg:
        fail(f"{case.style}: wrong {what}: the message does not name '{needle}': {msg.strip()}")


def conventions(case, part):
    """Every PARTS-th check of one style from `part` on: several tests, each short."""
    S = ["--set"]
    D, R = expect_differs, expect_refused
    if case.style == "sit":
        checks = [
            (D, "dit.timestep_scale (1000 for SiT's 1)", S + ["dit.timestep_scale=1000"], ["v"]),
            (D, "dit.time_direction (noise_at_1)", S + ["dit.time_direction=noise_at_1"], ["v"]),
            (D, "dit.pos_embed_order (row_first)", S + ["dit.pos_embed_order=row_first"], ["v"]),
            (R, "dit.time_direction (unknown)", S + ["dit.time_direction=backwards"],
             "dit.time_direction"),
            (R, "dit.adaln_chunks (9)", S + ["dit.adaln_chunks=9"], "dit.adaln_chunks"),
            (D, "dit.condition (scene+time+modality)", S + ["dit.condition=scene+time+modality"],
             ["v"]),
            (D, "sampling.final_step (euler)", S + ["sampling.final_step=euler"], ["translate"]),
            (D, "sampling.final_step_size (0)", S + ["sampling.final_step_size=0"], ["translate"]),
            (R, "dit.scene_norm_out (true)", S + ["dit.scene_norm_out=true"],
             "missing target tensor 'scene.norm_out.weight'"),
            (R, "dit.adaln_chunks (6)", S + ["dit.adaln_chunks=6"],
             "scene.blocks.0.adaLN_modulation.1.weight' made from"),
        ]
    else:
        checks = [
            (D, "dit.timestep_scale (1)", S + ["dit.timestep_scale=1"], ["v"]),
            (D, "dit.time_direction (data_at_1)", S + ["dit.time_direction=data_at_1"], ["v"]),
            (D, "dit.pos_embed_order (row_first)", S + ["dit.pos_embed_order=row_first"], ["v"]),
            (D, "dit.condition (scene+time)", S + ["dit.condition=scene+time"], ["v"]),
            (R, "dit.scene_norm_out (false)", S + ["dit.scene_norm_out=false"],
             "target tensor 'scene.norm_out.weight' made from ['scene_norm.weight'] is not part"),
            (D, "sampling.final_step (mean)", S + ["sampling.final_step=mean"], ["translate"]),
            (D, "vae.latents_mean/std (dropped)",
             S + ["vae.latents_mean=null", "--set", "vae.latents_std=null"], ["enc", "dec"]),
            (D, "vae.scaling_factor (0.18215)", S + ["vae.scaling_factor=0.18215"], ["enc", "dec"]),
            (D, "vae.shift_factor (0.3)", S + ["vae.shift_factor=0.3"], ["enc", "dec"]),
            (R, "dit.adaln_chunks (4)", S + ["dit.adaln_chunks=4"],
             "has shape [384, 64], the config implies [256, 64]"),
            (R, "vae.latents_std (alone)", S + ["vae.latents_mean=null"], "vae.latents_mean"),
        ]
    for fn, what, extra, arg in checks[part::PARTS]:
        fn(case, what, extra, arg)


def stray(conv, d):
    model, vae = make("dit")
    args, inp = save("dit", model, vae, d)
    ck = torch.load(inp[0])
    # one that no rule matches, one that the catch-all block rule would carry into the model
    ck["ema"]["logvar"] = torch.zeros(1000)
    ck["ema"]["scene_blocks.1.attn.rel_pos_bias"] = torch.zeros(4, 15)
    torch.save(ck, inp[0])
    out = os.path.join(d, "s.safetensors")
    rc, msg = convert(conv, args, inp, out)
    print(f"stray: exit {rc}: {msg.strip()}")
    if rc == 0 or "unmapped source tensor 'logvar'" not in msg or \
            "made from ['scene_blocks.1.attn.rel_pos_bias'] is not part of the model" not in msg:
        fail(f"stray: not refused naming both stray tensors: exit {rc}: {msg.strip()}")
    if os.path.exists(out):
        fail("stray: an output file was written although the conversion was refused")
    extra_map = os.path.join(d, "drop-rel-pos.json")
    with open(extra_map, "w") as f:
        json.dump({"description": "this checkpoint's unused relative position bias",
                   "drop": ["scene_blocks.{i}.attn.rel_pos_bias", "logvar"]}, f)
    rc, msg = convert(conv, args + ["-m", extra_map], inp, out)
    if rc != 0 or "dropped: scene_blocks.1.attn.rel_pos_bias" not in msg:
        fail(f"stray: not converted once the mapping drops it: exit {rc}: {msg.strip()}")
    rc, msg = convert(conv, args + ["--drop", "scene_blocks.{i}.attn.rel_pos_bias", "--drop", "logvar"],
                      inp, out)
    if rc != 0:
        fail(f"stray: not converted with --drop: {msg.strip()}")
    # a missing tensor is named too
    del ck["ema"]["scene_blocks.1.attn.rel_pos_bias"], ck["ema"]["logvar"]
    del ck["ema"]["gen_blocks.1.experts.1.fc2.bias"]
    torch.save(ck, inp[0])
    rc, msg = convert(conv, args, inp, out + "2")
    if rc == 0 or "missing target tensor 'gen.blocks.1.mlp.1.fc2.bias'" not in msg:
        fail(f"stray: a missing tensor not named: exit {rc}: {msg.strip()}")


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    mode, conv, runner = sys.argv[1:]
    t0 = time.time()
    torch.set_num_threads(1)
    d = tempfile.mkdtemp(prefix="mm_convert_test.")
    try:
        if mode in ("dit", "sit"):
            check_roundtrip(Case(mode, conv, runner, d))
        elif mode.startswith("conventions_") and mode.split("_")[1] in ("dit", "sit") and \
                mode.split("_")[-1] in [str(k + 1) for k in range(PARTS)]:
            case = Case(mode.split("_")[1], conv, runner, d)
            check_roundtrip(case)  # the right settings pass: the wrong ones are what differs
            conventions(case, int(mode.split("_")[-1]) - 1)
        elif mode == "stray":
            stray(conv, d)
        else:
            sys.exit(f"unknown mode {mode}")
    finally:
        shutil.rmtree(d, ignore_errors=True)
    print(f"{mode}: {time.time() - t0:.1f} s")
    if fails:
        print(f"{fails} failure(s)")
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
