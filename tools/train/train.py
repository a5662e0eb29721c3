#!/usr/bin/python3
"""Train the default MetaEarth-MM model on simulated scenes (docs/training.md).

Phases, each resumable from its checkpoint in --work:
  vae      the shared VAE (AutoencoderKL semantics: L1 + KL), all five modalities
  latents  encode a fixed set of simulator scenes with the frozen VAE (the DiT's data)
  dit      joint flow matching: uniform modality pairs (one pair held out for zero-shot),
           an independent timestep per modality (a quarter of them clean, t = 0), modality
           drop p = 0.1 to pure noise, pseudo-PAN from RGB, scene-consistency InfoNCE with a
           learnable temperature (weight --lam), AdamW, EMA of the weights
  decoder  refine the VAE decoder with the encoder frozen (the DiT's latent space does not
           move): L1 + --tex x L1 of the 5 x 5 local standard deviation (texture, speckle)
  export   write the EMA model to a model file (F16) for libmm (with the refined decoder when
           --work holds decoder.pt)

    /usr/bin/python3 tools/train/train.py --work /tmp/mmtrain --phase all \\
        --config models/default-config.json --out models/default.safetensors

Same --seed, same data: every training sample is drawn from the simulator by (seed, index).
"""
import argparse
import copy
import itertools
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
import mm_ref as R  # noqa: E402
import safetensors_io  # noqa: E402
import simdata  # noqa: E402
import realdata  # noqa: E402

HELD_OUT_PAIR = ("sar", "osm")  # never trained together: the zero-shot pair (paper: OSM-SAR)
REAL_MODALITIES = ["rgb", "sar", "nir", "pan"]  # what a real window may hold (PAN: pseudo-PAN)
PASTE_DARK_DB = -20.0  # --water-paste: pasted water is water-coloured with VH below this (dB)


def log(work, msg):
    line = f"{time.strftime('%H:%M:%S')} {msg}"
    print(line, flush=True)
    with open(os.path.join(work, "train.log"), "a") as f:
        f.write(line + "\n")


def log_losses(work, phase, step, t0, losses, note=""):
    """The record of a phase every 25 steps (t0: the time of the previous one): a train.log line
    with the losses, note and the time per step, and a row of loss_<phase>.tsv (step, losses)
    for plot_loss.py. Returns the time now, the next t0."""
    text = " ".join(f"{k} {v:.4f}" for k, v in losses.items())
    log(work, f"{phase} step {step} {text}{note} ({(time.time() - t0) / 25:.2f} s/step)")
    with open(os.path.join(work, f"loss_{phase}.tsv"), "a") as f:
        f.write("\t".join([str(step)] + [f"{v:.6f}" for v in losses.values()]) + "\n")
    return time.time()


def resume(work, phase, ck, model, opt, strict=True):
    """Loads the model and optimizer state of checkpoint ck when it exists. Returns (step, the
    checkpoint), or (0, None) for a fresh start."""
    if not os.path.exists(ck):
        return 0, None
    st = torch.load(ck)
    model.load_state_dict(st["model"], strict=strict)
    opt.load_state_dict(st["opt"])
    log(work, f"{phase}: resumed at step {st['step']}")
    return st["step"], st


def save(path, obj):
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


# ---- VAE -------------------------------------------------------------------------------------


VAE_PARTS = ("encoder", "decoder", "quant_conv", "post_quant_conv")
DECODER_PARTS = ("decoder", "post_quant_conv")  # what the decoder phase trains


def parts(model, names):
    """The model's submodules of those names (the quant convs are None in some configs)."""
    return [getattr(model, n) for n in names if getattr(model, n) is not None]


def part_state(model, names):
    """The entries of model.state_dict() that belong to those submodules."""
    prefixes = tuple(n + "." for n in names)
    return {k: v for k, v in model.state_dict().items() if k.startswith(prefixes)}


def vae_modules(model):
    return parts(model, VAE_PARTS)


def vae_batch(lib, cfg, rng, batch, base_seed, weights=None):
    """Images of random modalities, as 3-channel VAE inputs. With weights (one per modality),
    also returns each image's weight as a B x 1 x 1 x 1 tensor."""
    S = cfg["image_size"]
    xs, ws = [], []
    for _ in range(batch):
        sc = simdata.sample(lib, int(rng.integers(0, 2**31)), S, base_seed)
        k = int(rng.integers(0, 5))
        x = torch.from_numpy(sc[simdata.MODALITIES[k]])
        xs.append(x.repeat(3, 1, 1) if x.shape[0] == 1 else x)
        ws.append(1.0 if weights is None else weights[k])
    if weights is None:
        return torch.stack(xs)
    return torch.stack(xs), torch.tensor(ws)[:, None, None, None]


def vae_pass(model, x, C, encoder_grad=True):
    """Encode, sample the posterior, decode (fp32: torch 1.13's CPU autocast breaks GroupNorm).
    Returns the reconstruction and the posterior's mean and log-variance."""
    with torch.set_grad_enabled(encoder_grad and torch.is_grad_enabled()):
        mom = model.encoder(x)
        if model.quant_conv is not None:
            mom = model.quant_conv(mom)
        mean, logvar = mom[:, :C], mom[:, C:].clamp(-30, 20)
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
    if model.post_quant_conv is not None:
        z = model.post_quant_conv(z)
    return model.decoder(z), mean, logvar


def optimizer_step(opt, params, loss):
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()


def train_vae(args, cfg, lib, model):
    """Trains the VAE, or with --init-from continues the VAE of that model file (its encoder
    too: the latent space moves, so the DiT must follow on the new latents)."""
    ck = os.path.join(args.work, "vae.pt")
    params = [p for m in vae_modules(model) for p in m.parameters()]
    opt = torch.optim.AdamW(params, lr=args.vae_lr, weight_decay=0.0)
    step, st = resume(args.work, "vae", ck, model, opt)
    before = st.get("before", {}) if st else {}
    if args.init_from and not st:
        tensors, meta, _ = safetensors_io.read(args.init_from)
        model.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=True)
        before = json.loads(meta.get("training", "{}"))
        log(args.work, f"vae: continuing the VAE of {args.init_from}")
    rng = np.random.default_rng(args.seed * 7919 + step)
    weights = [args.osm_weight if m == "osm" else 1.0 for m in simdata.MODALITIES]
    C = cfg["vae"]["latent_channels"]
    model.train()
    t0 = time.time()
    while step < args.vae_steps:
        x, w = vae_batch(lib, cfg, rng, args.vae_batch, args.seed + 3 * bool(args.init_from), weights)
        y, mean, logvar = vae_pass(model, x, C)
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).mean()
        rec, tex, low = image_losses(y, x, w, texture=args.vae_tex > 0)
        loss = rec + args.kl * kl + args.vae_tex * tex + args.lowfreq * low
        optimizer_step(opt, params, loss)
        step += 1
        if step % 25 == 0:
            t0 = log_losses(args.work, "vae", step, t0,
                            {"rec": rec.item(), "kl": kl.item(), "tex": tex.item(), "low": low.item()})
        if step % 100 == 0 or step == args.vae_steps:
            save(ck, {"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                      "before": before})
    model.eval()


# ---- decoder refinement ------------------------------------------------------------------------


def local_std(x, k=5):
    """Per-channel standard deviation over k x k neighbourhoods (the texture statistic of
    mm_eval: its classifier and texture error use the 5 x 5 local standard deviation)."""
    m = F.avg_pool2d(x, k, 1, k // 2, count_include_pad=False)
    m2 = F.avg_pool2d(x * x, k, 1, k // 2, count_include_pad=False)
    return (m2 - m * m).clamp(min=0).add(1e-6).sqrt()


def image_losses(y, x, w, texture=True):
    """The reconstruction losses of phases vae and decoder, each image weighted by w: L1, the L1
    of the 5 x 5 local standard deviations (texture; 0 without texture) and the L1 of the 4 x 4
    means (one latent pixel's footprint: the local colour)."""
    rec = ((y - x).abs() * w).mean()
    tex = ((local_std(y) - local_std(x)).abs() * w).mean() if texture else torch.zeros(())
    low = ((F.avg_pool2d(y, 4) - F.avg_pool2d(x, 4)).abs() * w).mean()
    return rec, tex, low


def train_decoder(args, cfg, lib, model):
    """Refine the VAE decoder with the encoder frozen. The latent space the DiT was trained in
    does not move (the encoder is untouched), so a trained DiT stays valid; only the way latents
    become pixels improves. Loss: L1 + --tex x L1 of the 5 x 5 local standard deviation (a
    deterministic decoder trained on L1 alone averages texture and speckle away) + --lowfreq x L1
    of the 4 x 4 means (one latent pixel's footprint: the local colour, which tells land-cover
    classes apart; the simulator's water and forest differ by 0.01-0.03 in reflectance, a small
    part of a per-pixel L1 dominated by texture), images weighted by --osm-weight as in phase vae."""
    ck = os.path.join(args.work, "decoder.pt")
    params = [p for m in parts(model, DECODER_PARTS) for p in m.parameters()]
    opt = torch.optim.AdamW(params, lr=args.dec_lr, weight_decay=0.0)
    step, _ = resume(args.work, "decoder", ck, model, opt, strict=False)  # the decoder's keys only
    for g in opt.param_groups:  # --dec-lr holds on resume too (the saved state has the old rate)
        g["lr"] = args.dec_lr
    for p in model.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    rng = np.random.default_rng(args.seed * 15485863 + step)
    weights = [args.osm_weight if m == "osm" else 1.0 for m in simdata.MODALITIES]
    C = cfg["vae"]["latent_channels"]
    t0 = time.time()
    while step < args.dec_steps:
        # its own data stream (base seed --seed + 2: the VAE used --seed, the DiT --seed + 1)
        x, w = vae_batch(lib, cfg, rng, args.vae_batch, args.seed + 2, weights)
        y, _, _ = vae_pass(model, x, C, encoder_grad=False)
        rec, tex, low = image_losses(y, x, w)
        optimizer_step(opt, params, rec + args.tex * tex + args.lowfreq * low)
        step += 1
        if step % 25 == 0:
            t0 = log_losses(args.work, "decoder", step, t0,
                            {"rec": rec.item(), "tex": tex.item(), "low": low.item()})
        if step % 100 == 0 or step == args.dec_steps:
            save(ck, {"model": part_state(model, DECODER_PARTS),
                      "opt": opt.state_dict(), "step": step})
    model.eval()


# ---- latents ---------------------------------------------------------------------------------


@torch.no_grad()
def make_latents(args, cfg, lib, model):
    path = os.path.join(args.work, "latents.pt")
    if os.path.exists(path):
        return torch.load(path)
    S, n = cfg["image_size"], args.scenes
    v = cfg["vae"]
    C = v["latent_channels"]
    lat = {m: [] for m in simdata.MODALITIES}
    t0 = time.time()
    for i0 in range(0, n, 64):
        scenes = [simdata.sample(lib, i, S, args.seed + 1) for i in range(i0, min(n, i0 + 64))]
        for k, m in enumerate(simdata.MODALITIES):
            x = torch.from_numpy(np.stack([sc[m] for sc in scenes]))
            x = x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x
            mom = model.encoder(x)
            if model.quant_conv is not None:
                mom = model.quant_conv(mom)
            lat[m].append(mom.float()[:, :C].half())
        if i0 % 1024 == 0:
            log(args.work, f"latents {i0}/{n} ({time.time() - t0:.0f} s)")
    lat = {m: torch.cat(v_) for m, v_ in lat.items()}
    allm = torch.cat([lat[m].float() for m in simdata.MODALITIES])
    shift, std = float(allm.mean()), float(allm.std())
    out = {"latents": lat, "shift": shift, "scale": 1.0 / std}
    log(args.work, f"latents: {n} scenes, mean {shift:.4f} std {std:.4f}")
    save(path, out)
    return out


def real_water(args, cfg, real):
    """The water fraction of each window of an older real_latents.pt, its windows drawn again
    (make_real_latents draws them from a fixed seed)."""
    scenes = realdata.RealScenes(args.real, cfg, "train")
    if [s[0] for s in scenes.scenes] != real["scenes"]:
        sys.exit("train.py: the real scenes changed since real_latents.pt was written")
    rng = np.random.default_rng(args.seed * 7 + 5)
    n = real["latents"]["rgb"].shape[0]
    water = torch.tensor([realdata.water_fraction(scenes.window(rng, cfg["image_size"])["rgb"])
                          for _ in range(n)])
    log(args.work, f"real latents: water in {int((water > 0.02).sum())} of {n} windows (> 2 %)")
    return water


@torch.no_grad()
def make_real_latents(args, cfg, model):
    """With --real: the latents of --real-windows fixed windows of the real training scenes
    (realdata.py), one tensor per modality over the windows that hold it (rgb, sar, nir, pan =
    pseudo-PAN from the real RGB), and for each window which modalities it holds."""
    path = os.path.join(args.work, "real_latents.pt")
    if os.path.exists(path):
        out = torch.load(path)
        if "water" not in out:  # written before the water fraction was kept: the same windows
            out["water"] = real_water(args, cfg, out)
            save(path, out)
        return out
    scenes = realdata.RealScenes(args.real, cfg, "train")
    rng = np.random.default_rng(args.seed * 7 + 5)
    S = cfg["image_size"]
    mods = REAL_MODALITIES
    n = args.real_windows
    wins = [scenes.window(rng, S, balance=args.scene_balance) for _ in range(n)]
    share = scenes.source_share(S, args.scene_balance)
    log(args.work, f"real windows: --scene-balance {args.scene_balance}, expected share by source "
                   + ", ".join(f"{k} {v:.3f}" for k, v in share.items()))
    lat, has = encode_windows(model, cfg, wins, mods)
    water = torch.tensor([realdata.water_fraction(w["rgb"]) for w in wins])
    out = {"latents": lat, "has": has, "water": water, "scenes": [s[0] for s in scenes.scenes]}
    log(args.work, f"real latents: {n} windows of {len(scenes.scenes)} scenes, "
                   + ", ".join(f"{m} {int(has[m].sum())}" for m in mods))
    save(path, out)
    return out


@torch.no_grad()
def encode_windows(model, cfg, wins, mods):
    """Latents (float16) of a list of window dicts, per modality over the windows that hold it,
    and which windows hold each modality."""
    S, C = cfg["image_size"], cfg["vae"]["latent_channels"]
    n = len(wins)
    lat = {m: torch.zeros(n, C, S // 4, S // 4, dtype=torch.float16) for m in mods}
    has = {m: torch.tensor([m in w for w in wins]) for m in mods}
    for m in mods:
        idx = [i for i in range(n) if m in wins[i]]
        for i0 in range(0, len(idx), 64):
            part = idx[i0:i0 + 64]
            x = torch.from_numpy(np.stack([wins[i][m] for i in part]))
            x = x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x
            mom = model.encoder(x)
            if model.quant_conv is not None:
                mom = model.quant_conv(mom)
            lat[m][part] = mom.float()[:, :C].half()
    return lat, has


def add_water_paste(args, cfg, model, real):
    """With --water-paste N: N more real windows, each a random training window with the open
    water of another training window pasted in (realdata.paste_water), appended to the real
    windows (their latents cached in real_paste_latents.pt)."""
    path = os.path.join(args.work, "real_paste_latents.pt")
    if os.path.exists(path):
        extra = torch.load(path)
    else:
        scenes = realdata.RealScenes(args.real, cfg, "train")
        S = cfg["image_size"]
        donors = scenes.water_donors(S, 0.15, 32)
        if not donors:
            sys.exit("train.py: --water-paste: no training window holds 15 % open water")
        lo, hi = realdata.sar_window(cfg)
        dark = -1 + 2 * (PASTE_DARK_DB - lo) / (hi - lo)
        rng = np.random.default_rng(args.seed * 7 + 11)
        wins, frac = [], []
        while len(wins) < args.water_paste:
            rec = scenes.window(rng, S, need=("sar", "rgb"), balance=args.scene_balance)
            don = scenes.crop(rng, *donors[int(rng.integers(0, len(donors)))], S)
            w, f = realdata.paste_water(rng, rec, don, dark)
            if f >= 0.02:  # a donor whose water is all bright (wind, shadow) pastes nothing
                wins.append(w)
                frac.append(f)
        lat, has = encode_windows(model, cfg, wins, REAL_MODALITIES)
        water = torch.tensor([realdata.water_fraction(w["rgb"]) for w in wins])
        extra = {"latents": lat, "has": has, "water": water, "donors": len(donors)}
        log(args.work, f"water paste: {len(wins)} windows from {len(donors)} donor windows, "
                       f"pasted water {np.mean(frac):.3f} of a window on average")
        save(path, extra)
    out = dict(real)
    out["latents"] = {m: torch.cat([real["latents"][m], extra["latents"][m]]) for m in real["latents"]}
    out["has"] = {m: torch.cat([real["has"][m], extra["has"][m]]) for m in real["has"]}
    out["water"] = torch.cat([real["water"], extra["water"]])
    return out


# ---- DiT ---------------------------------------------------------------------------------------


def dit_parameters(model):
    skip = set(id(p) for m in vae_modules(model) for p in m.parameters())
    return [p for p in model.parameters() if id(p) not in skip]


def sets_allowed(cfg, size):
    """The modality sets of `size` the DiT may be trained on: every combination that does not
    hold the zero-shot pair together."""
    mods = cfg["modalities"]
    return [c for c in itertools.combinations(range(len(mods)), size)
            if not set(HELD_OUT_PAIR) <= {mods[i] for i in c}]


def scene_infonce(Sa, Sb, log_tau):
    """Symmetric InfoNCE over the batch; similarity = mean cosine of corresponding tokens."""
    a, b = F.normalize(Sa.float(), dim=-1), F.normalize(Sb.float(), dim=-1)
    sim = torch.einsum("ink,jnk->ij", a, b) / a.shape[1]
    logits = sim / log_tau.exp()
    target = torch.arange(a.shape[0])
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))


REAL_PAIR_WEIGHT = {("rgb", "sar"): 4.0}  # SAR -> RGB, the main job, drawn 4x as often


def real_pairs(cfg, real):
    """The modality pairs the real windows hold (both present in some window), with their
    drawing weights, as (index pairs, probabilities)."""
    mods = cfg["modalities"]
    out, w = [], []
    for a, b in sets_allowed(cfg, 2):
        ma, mb = mods[a], mods[b]
        if ma not in real["has"] or mb not in real["has"]:
            continue
        if int((real["has"][ma] & real["has"][mb]).sum()) == 0:
            continue
        out.append((a, b))
        w.append(REAL_PAIR_WEIGHT.get(tuple(sorted((ma, mb))), 1.0))
    w = np.array(w)
    return out, w / w.sum()


def train_dit(args, cfg, model, data, real=None):
    ck = os.path.join(args.work, "dit.pt")
    lat = data["latents"]
    scale, shift = data["scale"], data["shift"]
    n = lat["rgb"].shape[0]
    mods = cfg["modalities"]
    pairs = sets_allowed(cfg, 2)
    triples = sets_allowed(cfg, 3) if args.triple_frac > 0 else []
    if real is not None:
        # the simulator teaches only what no real pair holds (OSM); its SAR (2 m, VV-like) is
        # not the real VH the model now takes, so no simulated pair holds SAR
        sar_i = mods.index("sar")
        pairs = [p for p in pairs if sar_i not in p]
        triples = [p for p in triples if sar_i not in p]
        rpairs, rprob = real_pairs(cfg, real)
        log(args.work, "dit: real pairs " + ", ".join(f"{mods[a]}-{mods[b]} {p:.2f}"
                                                     for (a, b), p in zip(rpairs, rprob)))
    params = dit_parameters(model)
    log_tau = torch.nn.Parameter(torch.tensor(math.log(0.07)))
    opt = torch.optim.AdamW(params + [log_tau], lr=args.lr, weight_decay=0.01)
    before = {}
    if args.init_from and not os.path.exists(ck):
        # the DiT's weights only: the VAE in --work (vae.pt) may be newer than the file's
        vae_keys = set(part_state(model, VAE_PARTS))
        tensors, meta, _ = safetensors_io.read(args.init_from)
        missing, _ = model.load_state_dict({k: v.float() for k, v in tensors.items()
                                            if k not in vae_keys}, strict=False)
        if set(missing) != vae_keys:
            sys.exit(f"train.py: {args.init_from} lacks DiT weights: {sorted(set(missing) - vae_keys)[:3]}")
        before = json.loads(meta.get("training", "{}"))
        log(args.work, f"dit: weights from {args.init_from}")
    ema = copy.deepcopy(model).eval()
    step, st = resume(args.work, "dit", ck, model, opt)
    if st:
        ema.load_state_dict(st["ema"])
        log_tau.data.copy_(st["log_tau"])
        before = st.get("before", {})
    for p in ema.parameters():
        p.requires_grad_(False)
    for m in vae_modules(model):
        for p in m.parameters():
            p.requires_grad_(False)
    rng = np.random.default_rng(args.seed * 104729 + step)
    B = args.batch
    model.train()
    t0 = time.time()
    pan_i, rgb_i = mods.index("pan"), mods.index("rgb")
    while step < args.steps:
        lr = args.lr * min(1.0, (step + 1) / max(1, args.warmup))  # warm-up
        for g in opt.param_groups:
            g["lr"] = lr
        # a pair, or with --triple-frac three modalities (joint generation of more than two
        # must not be out of distribution); the order of the sequence is random too
        use_real = real is not None and rng.random() < args.real_frac
        task = use_real and args.task_frac > 0 and rng.random() < args.task_frac
        if task:  # the main job as it runs: the source clean, the target from noise
            ms = [mods.index(m) for m in args.task.split(":")]
        elif use_real:  # a pair of real modalities, from the windows that hold both
            ms = list(rpairs[int(rng.choice(len(rpairs), p=rprob))])
            if rng.random() < 0.5:
                ms.reverse()
        if use_real:
            both = real["has"][mods[ms[0]]] & real["has"][mods[ms[1]]]
            pool = torch.nonzero(both)[:, 0]
            if args.water_boost > 0:
                # windows with open water drawn (1 + --water-boost) times as often: the scenes
                # are mostly dry land, where dark SAR is bare ground, not water
                pw = 1 + args.water_boost * (real["water"][pool] > 0.02).double().numpy()
                idx = pool[torch.from_numpy(rng.choice(len(pool), B, p=pw / pw.sum()))]
            else:
                idx = pool[torch.from_numpy(rng.integers(0, len(pool), B))]
            src = real["latents"]
        elif triples and rng.random() < args.triple_frac:
            ms = [int(i) for i in rng.permutation(triples[int(rng.integers(0, len(triples)))])]
        else:  # drawn as before --triple-frac existed, so earlier runs stay reproducible
            ms = list(pairs[int(rng.integers(0, len(pairs)))])
            if rng.random() < 0.5:
                ms.reverse()
        if not use_real:
            idx = torch.from_numpy(rng.integers(0, n, B))
            src = lat
        x0 = {}
        for m in ms:
            z = src[mods[m]][idx].float()
            x0[m] = (z - shift) * scale
        if use_real and args.latent_aug:
            # the same flip and quarter turn of every modality's latent (the VAE is convolutional:
            # a turned image has nearly the turned latent), 8x the real windows' variety
            k, flip = int(rng.integers(0, 4)), bool(rng.integers(0, 2))
            for m in ms:
                z = torch.rot90(x0[m], k, dims=(2, 3))
                x0[m] = torch.flip(z, dims=(3,)) if flip else z
        # pseudo-PAN (paper IV-B2): 30 % of PAN samples are the latent of the grey (luma) RGB
        # image of the same scene, precomputed by add_pseudo_pan (real windows: PAN is always
        # the luma of their real RGB)
        if not use_real and pan_i in ms and rgb_i not in ms and rng.random() < 0.3:
            x0[pan_i] = (lat["pan_from_rgb"][idx].float() - shift) * scale
        # independent timestep per modality: a fraction --clean-frac clean (t = 0, a condition),
        # the rest U(0, 1)
        ts, eps, xt = {}, {}, {}
        for k, m in enumerate(ms):
            t = torch.rand(B, dtype=torch.float64)
            if task:  # source clean; the target's t uniform, a quarter of it in the last 0.1
                t = torch.zeros(B, dtype=torch.float64) if k == 0 else torch.where(
                    torch.rand(B) < 0.25, 0.9 + 0.1 * t, t)
            else:
                t[torch.rand(B) < args.clean_frac] = 0.0
            ts[m] = t
        # modality drop (p = 0.1): one partition becomes pure noise at t = 1 (in task steps only
        # the source: the unconditional velocity that guidance needs)
        drop = torch.rand(B) < 0.1
        if task:
            drop = torch.zeros(B, dtype=torch.bool)
            drop[: max(1, B // 10)] = True
            which = torch.zeros(B, dtype=torch.long)
        elif len(ms) == 2:
            which = (torch.rand(B) >= 0.5).long()  # as before: the first dropped where rand < 0.5
        else:
            which = torch.randint(0, len(ms), (B,))
        for k, m in enumerate(ms):
            ts[m] = torch.where(drop & (which == k), torch.ones_like(ts[m]), ts[m])
        for m in ms:
            eps[m] = torch.randn_like(x0[m])
            tt = ts[m].float()[:, None, None, None]
            xt[m] = (1 - tt) * x0[m] + tt * eps[m]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(args.bf16)):
            S = R.scene_forward(model, [(xt[m], ts[m], m) for m in ms])
            fm = 0.0
            for k, m in enumerate(ms):
                v = R.gen_forward(model, xt[m], S[k], ts[m], m).float()
                w = (ts[m] > 0).float()[:, None, None, None]  # clean partitions are conditions
                err = ((v - (eps[m] - x0[m])) ** 2) * w
                fm = fm + err.sum() / (w.sum() * v[0].numel()).clamp(min=1)
        # InfoNCE over every pair of partitions (one pair unless a triple was drawn)
        if args.lam > 0:
            nce_pairs = list(itertools.combinations(range(len(ms)), 2))
            nce = sum(scene_infonce(S[a], S[b], log_tau) for a, b in nce_pairs) / len(nce_pairs)
        else:
            nce = torch.zeros(())
        optimizer_step(opt, params, fm + args.lam * nce)  # clips the DiT's parameters, not tau
        with torch.no_grad():
            d = min(args.ema, (1 + step) / (10 + step))
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.mul_(d).add_(pm.detach(), alpha=1 - d)
        step += 1
        if step % 25 == 0:
            t0 = log_losses(args.work, "dit", step, t0, {"fm": float(fm), "nce": float(nce)},
                            f" tau {log_tau.exp().item():.3f}")
        if step % 200 == 0 or step == args.steps:
            save(ck, {"model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                      "log_tau": log_tau.detach(), "step": step, "before": before})
    return ema


@torch.no_grad()
def add_pseudo_pan(args, cfg, lib, model, data):
    """Latents of grey (luma) RGB, for the pseudo-PAN augmentation."""
    if "pan_from_rgb" in data["latents"]:
        return data
    S, n = cfg["image_size"], data["latents"]["rgb"].shape[0]
    C = cfg["vae"]["latent_channels"]
    out = []
    for i0 in range(0, n, 64):
        scenes = [simdata.sample(lib, i, S, args.seed + 1) for i in range(i0, min(n, i0 + 64))]
        rgb = np.stack([sc["rgb"] for sc in scenes])
        grey = (0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2])[:, None]
        x = torch.from_numpy(np.repeat(grey, 3, axis=1).astype(np.float32))
        mom = model.encoder(x)
        if model.quant_conv is not None:
            mom = model.quant_conv(mom)
        out.append(mom.float()[:, :C].half())
    data["latents"]["pan_from_rgb"] = torch.cat(out)
    save(os.path.join(args.work, "latents.pt"), data)
    return data


def export(args, cfg, model, data, trained):
    """trained: the steps each phase of the exported weights ran (recorded in the file)."""
    cfg = json.loads(json.dumps(cfg))
    cfg["vae"]["scaling_factor"] = round(float(data["scale"]), 6)
    cfg["vae"]["shift_factor"] = round(float(data["shift"]), 6)
    tensors = {k: v.float() for k, v in model.state_dict().items()}
    safetensors_io.write(args.out, tensors, dtype="F16",
                         metadata={"config": json.dumps(cfg, separators=(",", ":")),
                                   "training": json.dumps({"seed": args.seed,
                                                           "scenes": int(data["latents"]["rgb"].shape[0]),
                                                           **trained, "tex": args.tex,
                                                           "held_out_pair": list(HELD_OUT_PAIR)})})
    log(args.work, f"exported {args.out} ({os.path.getsize(args.out) / 1e6:.1f} MB)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--config", default=os.path.join(HERE, "..", "..", "models", "default-config.json"))
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", default=os.path.join(HERE, "..", "..", "models", "default.safetensors"))
    ap.add_argument("--phase", default="all", choices=["vae", "latents", "dit", "decoder", "export", "all"])
    ap.add_argument("--sim-lib", default=None)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bf16", type=int, default=1)
    ap.add_argument("--vae-steps", type=int, default=300)
    ap.add_argument("--vae-batch", type=int, default=16)
    ap.add_argument("--vae-lr", type=float, default=1e-3)
    ap.add_argument("--kl", type=float, default=1e-4)
    ap.add_argument("--vae-tex", type=float, default=0.0,
                    help="weight of the texture loss (as --tex) in the VAE phase")
    ap.add_argument("--osm-weight", type=float, default=1.0,
                    help="weight of OSM images in the VAE and decoder phases' losses (flat map "
                         "colours differ little in value; an unweighted L1 lets the VAE blur them "
                         "away)")
    ap.add_argument("--dec-steps", type=int, default=0,
                    help="decoder refinement steps (phase decoder, or after the DiT in phase all)")
    ap.add_argument("--dec-lr", type=float, default=1e-3)
    ap.add_argument("--tex", type=float, default=1.0,
                    help="weight of the local-standard-deviation (texture) loss of the decoder")
    ap.add_argument("--lowfreq", type=float, default=0.0,
                    help="weight of the L1 of 4 x 4 means (local colour) in phases vae and decoder "
                         "(the first VAE's encoder gave water and forest nearly the same latents)")
    ap.add_argument("--scenes", type=int, default=6144)
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--batch", type=int, default=48)
    ap.add_argument("--lr", type=float, default=4e-4)
    ap.add_argument("--lam", type=float, default=0.05)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--clean-frac", type=float, default=0.25,
                    help="fraction of partitions given clean (t = 0): the translation case")
    ap.add_argument("--triple-frac", type=float, default=0.0,
                    help="fraction of DiT steps trained on three modalities instead of a pair")
    ap.add_argument("--real", default=None,
                    help="directory of real scenes from prepare_real.py: the DiT trains on real "
                         "pairs (a fraction --real-frac of its steps) and the simulator only for "
                         "pairs without SAR")
    ap.add_argument("--real-frac", type=float, default=0.75)
    ap.add_argument("--task", default="sar:rgb",
                    help="SOURCE:TARGET of the main job (with --real): the pair --task-frac trains "
                         "as it runs, source clean and target from noise")
    ap.add_argument("--task-frac", type=float, default=0.0,
                    help="fraction of the real steps given to --task (0: pairs drawn as before)")
    ap.add_argument("--latent-aug", type=int, default=0,
                    help="1: random flip and quarter turn of the real windows' latents each step")
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--water-boost", type=float, default=0.0,
                    help="real windows with more than 2 %% open water drawn 1 + this times as often")
    ap.add_argument("--real-windows", type=int, default=6144)
    ap.add_argument("--scene-balance", type=float, default=0.0,
                    help="real windows drawn from a scene with probability proportional to "
                         "area ** (1 - this): 0 by area, 1 every scene alike (realdata.py)")
    ap.add_argument("--water-paste", type=int, default=0,
                    help="N more real windows with another window's open water pasted in "
                         "(copy-paste augmentation: SAR and RGB of the same water; realdata.py)")
    ap.add_argument("--init-from", default=None,
                    help="start from an exported model file (weights only: a fresh optimizer) "
                         "when --work has no checkpoint: phase vae continues its VAE, phase dit "
                         "its DiT; phase all takes its VAE as trained")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    with open(args.config) as f:
        cfg = json.load(f)
    lib = simdata.load(args.sim_lib)
    model = R.build_model(cfg)
    import export as E
    E.init_weights(model, args.seed)
    with torch.no_grad():  # undo the init's latent gain, meant for an already trained VAE
        for k in ("weight", "bias"):
            getattr(model.encoder.conv_out, k).mul_(cfg["vae"]["scaling_factor"] / E.LATENT_GAIN)
    log(args.work, f"config {args.config}: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters")
    if args.phase == "vae" or (args.phase == "all" and not args.init_from):
        train_vae(args, cfg, lib, model)
    if args.phase == "vae":
        return
    if args.init_from and not os.path.exists(os.path.join(args.work, "vae.pt")):
        # continuing from an exported model in a fresh --work: its VAE is the trained one
        tensors, _, _ = safetensors_io.read(args.init_from)
        model.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=True)
        save(os.path.join(args.work, "vae.pt"), {"model": model.state_dict(), "step": args.vae_steps})
        log(args.work, f"vae: taken from {args.init_from}")
    if not os.path.exists(os.path.join(args.work, "vae.pt")):
        sys.exit("train.py: no trained VAE in --work (run --phase vae first)")
    vst = torch.load(os.path.join(args.work, "vae.pt"))
    model.load_state_dict(vst["model"])
    model.eval()
    if args.phase == "decoder":
        train_decoder(args, cfg, lib, model)
        return
    data = make_latents(args, cfg, lib, model)
    data = add_pseudo_pan(args, cfg, lib, model, data)
    if args.phase == "latents":
        return
    real = make_real_latents(args, cfg, model) if args.real else None
    if real is not None and args.water_paste > 0:
        real = add_water_paste(args, cfg, model, real)
    ema = None
    if args.phase in ("dit", "all"):
        ema = train_dit(args, cfg, model, data, real)
    if args.phase in ("export", "all"):
        trained = {"vae_steps": vst["step"], "dec_steps": 0}
        if vst.get("before"):  # a continued VAE: the training record of the file it came from
            trained["vae_continued_from"] = vst["before"]
        dst = torch.load(os.path.join(args.work, "dit.pt"))
        if ema is None:
            # the DiT checkpoint holds the whole model, VAE included: the VAE whose latents it
            # trained on. A vae.pt changed since (continued, or copied in) would be silently
            # replaced by that copy; and a DiT paired with another VAE is not a model.
            # (not bit for bit: the EMA update rounds the frozen VAE's copy a little each step)
            vae_now = part_state(model, VAE_PARTS)
            if any((v - dst["ema"][k]).abs().max() > 1e-4 * v.abs().max() + 1e-6
                   for k, v in vae_now.items()):
                sys.exit("train.py: dit.pt was trained on another VAE than vae.pt in --work; "
                         "train the DiT on this VAE's latents (phase dit) before exporting")
            model.load_state_dict(dst["ema"])
            ema = model
        trained["steps"] = dst["step"]
        if dst.get("before"):  # a continued DiT, likewise
            trained["dit_continued_from"] = dst["before"]
        if args.phase == "all" and args.dec_steps > 0:
            train_decoder(args, cfg, lib, ema)
        dec = os.path.join(args.work, "decoder.pt")
        if os.path.exists(dec):  # the refined decoder replaces the VAE's (the encoder is the same)
            st = torch.load(dec)
            ema.load_state_dict(st["model"], strict=False)
            trained["dec_steps"] = st["step"]
            log(args.work, f"export: decoder refined for {st['step']} steps ({dec})")
        export(args, cfg, ema, data, trained)


if __name__ == "__main__":
    main()
