"""Independent PyTorch reference of the MetaEarth-MM model (docs/architecture.md).

This file is the project's ground truth for the C engine's parity tests. It follows
docs/architecture.md and docs/model-format.md literally; where those leave a choice, the reading
taken is written in docs/reference.md (and marked "reading:" below).

Main entry points
    build_model(config) / load_model(path)         config dict or model file -> MetaEarthMM
    vae_encode(model, img, m) / vae_decode(model, z, m)
    timestep_features(t, freq_dim), pos_embed(H, grid)
    scene_forward(model, partitions)               [(z, t, m), ...] -> [S_m, ...]
    gen_forward(model, z, S, t, m)                 -> velocity
    predict_velocity(model, sources, targets, t, guidance, uncond_sources)
    sample(model, ...)                             euler / heun / euler_maruyama with CFG
    philox4x32_10(ctr, key), philox_noise(...), noise_batch(...)

Modalities are referred to by index m into config["modalities"]. Timesteps `t` are per batch
item (shape [B]) and are kept in float64 until the sinusoidal features are formed.
"""

import contextlib
import json
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

LN_EPS = 1e-6
GN_EPS = 1e-6

# --------------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------------


def validate_config(cfg):
    """Check the rules of docs/model-format.md; raise ValueError naming the problem."""
    def req(cond, msg):
        if not cond:
            raise ValueError("config: " + msg)

    req(cfg.get("format") == "metaearth-mm", 'format must be "metaearth-mm"')
    req(cfg.get("format_version") == 1, "format_version must be 1")
    mods = cfg["modalities"]
    req(1 <= len(mods) <= 16, "1 to 16 modalities")
    req(len(set(mods)) == len(mods), "modalities must be distinct")
    req(all(isinstance(s, str) and s and s == s.lower() for s in mods), "lower-case names")
    vae, dit = cfg["vae"], cfg["dit"]
    chans = cfg["modality_channels"]
    req(len(chans) == len(mods), "modality_channels length")
    req(all(1 <= c <= vae["in_channels"] for c in chans), "modality_channels <= vae.in_channels")
    boc = vae["block_out_channels"]
    p = dit["patch_size"]
    req(cfg["image_size"] % (2 ** (len(boc) - 1) * p) == 0, "image_size divisibility")
    H = dit["hidden_size"]
    req(H % dit["num_heads"] == 0 and H % 4 == 0, "hidden_size divisible by num_heads and 4")
    req(len(dit["routing"]) == len(mods), "routing length")
    req(all(0 <= r < dit["ffn_branches"] for r in dit["routing"]), "routing[m] < ffn_branches")
    req(all(c % vae["norm_num_groups"] == 0 for c in boc), "block_out_channels % norm_num_groups")
    req(float(dit["mlp_ratio"] * H).is_integer(), "mlp_ratio * hidden_size integer")
    req(dit["freq_dim"] % 2 == 0, "freq_dim even")
    cv = conventions(cfg)
    req(cv["timestep_scale"] > 0, "dit.timestep_scale must be > 0")
    req(cv["time_direction"] in ("noise_at_1", "data_at_1"), "dit.time_direction")
    req(cv["pos_embed_order"] in ("row_first", "column_first"), "dit.pos_embed_order")
    req(isinstance(cv["scene_norm_out"], bool), "dit.scene_norm_out is a boolean")
    req(cv["adaln_chunks"] in (4, 6), "dit.adaln_chunks must be 6 or 4")
    req(cv["condition"] in ("scene+time+modality", "scene+time"), "dit.condition")
    req(cv["final_step"] in ("euler", "mean"), "sampling.final_step")
    req(0.0 <= cv["final_step_size"] < 1.0, "sampling.final_step_size in [0, 1)")
    lm, ls = vae.get("latents_mean"), vae.get("latents_std")
    req((lm is None) == (ls is None), "vae.latents_mean and latents_std go together")
    if lm is not None:
        req(len(lm) == len(ls) == vae["latent_channels"], "vae.latents_mean/std: one per channel")
        req(all(x > 0 for x in ls), "vae.latents_std > 0")
    geo = cfg.get("geo")  # GSD range and I/O profiles: passed through to the exported config
    if geo is not None:
        req(isinstance(geo, dict) and set(geo) <= {"gsd_range_m", "profiles"},
            "geo is an object of gsd_range_m and profiles")
        r = geo.get("gsd_range_m", [1, 2])
        req(isinstance(r, list) and len(r) == 2 and all(isinstance(x, (int, float)) and x > 0 for x in r)
            and r[0] < r[1], "geo.gsd_range_m is [lo, hi] with 0 < lo < hi")
        prof = geo.get("profiles", {})
        req(isinstance(prof, dict) and all(k in mods and isinstance(v, str) and v for k, v in prof.items()),
            "geo.profiles maps modality names to profile strings")
    return cfg


def conventions(cfg):
    """The convention fields of docs/model-format.md with their defaults (the project's own)."""
    d, s = cfg["dit"], cfg.get("sampling", {})
    return {
        "timestep_scale": float(d.get("timestep_scale", 1000.0)),
        "time_direction": d.get("time_direction", "noise_at_1"),
        "pos_embed_order": d.get("pos_embed_order", "row_first"),
        "scene_norm_out": d.get("scene_norm_out", True),
        "adaln_chunks": d.get("adaln_chunks", 6),
        "condition": d.get("condition", "scene+time+modality"),
        "final_step": s.get("final_step", "euler"),
        "final_step_size": float(s.get("final_step_size", 0.0)),
    }


def latent_geometry(cfg):
    """(C, L, grid, N): latent channels, latent side, token grid side, tokens per modality."""
    C = cfg["vae"]["latent_channels"]
    L = cfg["image_size"] // 2 ** (len(cfg["vae"]["block_out_channels"]) - 1)
    g = L // cfg["dit"]["patch_size"]
    return C, L, g, g * g


# --------------------------------------------------------------------------------------------
# VAE: diffusers AutoencoderKL semantics
# --------------------------------------------------------------------------------------------


class ResnetBlock2D(nn.Module):
    def __init__(self, cin, cout, groups):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps=GN_EPS)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, cout, eps=GN_EPS)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        if self.conv_shortcut is not None:
            x = self.conv_shortcut(x)
        return x + h  # output_scale_factor 1


class Downsample2D(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, stride=2, padding=0)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample2D(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class VAEAttention(nn.Module):
    """Single-head self-attention over the H*W positions, channels as features."""

    def __init__(self, ch, groups):
        super().__init__()
        self.group_norm = nn.GroupNorm(groups, ch, eps=GN_EPS)
        self.to_q = nn.Linear(ch, ch)
        self.to_k = nn.Linear(ch, ch)
        self.to_v = nn.Linear(ch, ch)
        self.to_out = nn.ModuleList([nn.Linear(ch, ch)])

    def forward(self, x):
        B, C, Hh, Ww = x.shape
        h = self.group_norm(x).reshape(B, C, Hh * Ww).transpose(1, 2)  # [B, HW, C]
        q, k, v = self.to_q(h), self.to_k(h), self.to_v(h)
        a = torch.softmax((q @ k.transpose(1, 2)) * (1.0 / math.sqrt(C)), dim=-1)
        o = self.to_out[0](a @ v)
        return x + o.transpose(1, 2).reshape(B, C, Hh, Ww)


class MidBlock2D(nn.Module):
    def __init__(self, ch, groups, add_attention):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(ch, ch, groups), ResnetBlock2D(ch, ch, groups)])
        self.attentions = nn.ModuleList([VAEAttention(ch, groups)]) if add_attention else None

    def forward(self, x):
        x = self.resnets[0](x)
        if self.attentions is not None:
            x = self.attentions[0](x)
        return self.resnets[1](x)


class DownEncoderBlock2D(nn.Module):
    def __init__(self, cin, ch, n, groups, downsample):
        super().__init__()
        self.resnets = nn.ModuleList(
            [ResnetBlock2D(cin if j == 0 else ch, ch, groups) for j in range(n)])
        self.downsamplers = nn.ModuleList([Downsample2D(ch)]) if downsample else None

    def forward(self, x):
        for r in self.resnets:
            x = r(x)
        if self.downsamplers is not None:
            x = self.downsamplers[0](x)
        return x


class UpDecoderBlock2D(nn.Module):
    def __init__(self, cin, ch, n, groups, upsample):
        super().__init__()
        self.resnets = nn.ModuleList(
            [ResnetBlock2D(cin if j == 0 else ch, ch, groups) for j in range(n)])
        self.upsamplers = nn.ModuleList([Upsample2D(ch)]) if upsample else None

    def forward(self, x):
        for r in self.resnets:
            x = r(x)
        if self.upsamplers is not None:
            x = self.upsamplers[0](x)
        return x


class Encoder(nn.Module):
    def __init__(self, v):
        super().__init__()
        boc, g, n = v["block_out_channels"], v["norm_num_groups"], v["layers_per_block"]
        self.conv_in = nn.Conv2d(v["in_channels"], boc[0], 3, padding=1)
        self.down_blocks = nn.ModuleList()
        cin = boc[0]
        for i, ch in enumerate(boc):
            self.down_blocks.append(DownEncoderBlock2D(cin, ch, n, g, i < len(boc) - 1))
            cin = ch
        self.mid_block = MidBlock2D(boc[-1], g, v["mid_block_add_attention"])
        self.conv_norm_out = nn.GroupNorm(g, boc[-1], eps=GN_EPS)
        self.conv_out = nn.Conv2d(boc[-1], 2 * v["latent_channels"], 3, padding=1)

    def forward(self, x):
        x = self.conv_in(x)
        for b in self.down_blocks:
            x = b(x)
        x = self.mid_block(x)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


class Decoder(nn.Module):
    def __init__(self, v):
        super().__init__()
        boc, g, n = v["block_out_channels"], v["norm_num_groups"], v["layers_per_block"]
        rev = list(reversed(boc))
        self.conv_in = nn.Conv2d(v["latent_channels"], rev[0], 3, padding=1)
        self.mid_block = MidBlock2D(rev[0], g, v["mid_block_add_attention"])
        self.up_blocks = nn.ModuleList()
        cin = rev[0]
        for i, ch in enumerate(rev):
            self.up_blocks.append(UpDecoderBlock2D(cin, ch, n + 1, g, i < len(rev) - 1))
            cin = ch
        self.conv_norm_out = nn.GroupNorm(g, boc[0], eps=GN_EPS)
        self.conv_out = nn.Conv2d(boc[0], v["out_channels"], 3, padding=1)

    def forward(self, z):
        x = self.conv_in(z)
        x = self.mid_block(x)
        for b in self.up_blocks:
            x = b(x)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


# --------------------------------------------------------------------------------------------
# Diffusion transformer
# --------------------------------------------------------------------------------------------


def timestep_features(t, freq_dim, scale=1000.0):
    """Sinusoidal features of scale*t (dit.timestep_scale), [cos..., sin...], in float64.

    t: tensor [B] (any float dtype; widened to float64). Returns float64 [B, freq_dim].
    reading: f_i = exp(-ln(10000) * i / (freq_dim/2)) and the argument (1000 t) * f_i are formed
    in double precision; the caller rounds the features to the working dtype.
    """
    half = freq_dim // 2
    i = torch.arange(half, dtype=torch.float64)
    f = torch.exp(-math.log(10000.0) * i / half)
    arg = (scale * t.to(torch.float64))[:, None] * f[None, :]
    return torch.cat([torch.cos(arg), torch.sin(arg)], dim=-1)


def pos_embed(H, grid, column_first=False):
    """Fixed 2-D sin-cos position embedding, float64 [grid*grid, H], tokens row-major.

    Token (r, c) gets [sincos(r), sincos(c)], sincos(x) = [sin(x w_i)..., cos(x w_i)...],
    w_i = 10000^(-i/(H/4)), i < H/4. (Row coordinate first, unlike the DiT/MAE code, whose
    first half uses the column coordinate; the spec is explicit. dit.pos_embed_order
    "column_first" gives that table: [sincos(c), sincos(r)].)
    """
    assert H % 4 == 0
    q = H // 4
    w = 1.0 / (10000.0 ** (torch.arange(q, dtype=torch.float64) / q))
    pos = torch.arange(grid, dtype=torch.float64)
    r = pos.repeat_interleave(grid)  # row of token k = k // grid
    c = pos.repeat(grid)             # column of token k = k % grid

    def sincos(x):
        a = x[:, None] * w[None, :]
        return torch.cat([torch.sin(a), torch.cos(a)], dim=-1)

    if column_first:
        return torch.cat([sincos(c), sincos(r)], dim=-1)
    return torch.cat([sincos(r), sincos(c)], dim=-1)


def layer_norm(x):
    """LayerNorm over the last dim, no affine, eps 1e-6."""
    return F.layer_norm(x, (x.shape[-1],), eps=LN_EPS)


def modulate(x, shift, scale):
    return x * (1 + scale) + shift


def split_mod(mod, chunks):
    """(sa, ca, ga, sf, cf, gf); with 4 chunks (adaLN without gates) the gates are 1."""
    if chunks == 6:
        return mod.chunk(6, dim=-1)
    sa, ca, sf, cf = mod.chunk(4, dim=-1)
    return sa, ca, 1.0, sf, cf, 1.0


class TimestepEmbedder(nn.Module):
    def __init__(self, H, freq_dim, scale=1000.0):
        super().__init__()
        self.freq_dim = freq_dim
        self.scale = scale
        self.mlp = nn.Sequential(nn.Linear(freq_dim, H), nn.SiLU(), nn.Linear(H, H))

    def forward(self, t):
        feat = timestep_features(t, self.freq_dim, self.scale).to(self.mlp[0].weight.dtype)
        return self.mlp(feat)


class Attention(nn.Module):
    """Multi-head self-attention, qkv split [q; k; v], heads = contiguous hd slices, no mask."""

    def __init__(self, H, nh):
        super().__init__()
        self.nh = nh
        self.qkv = nn.Linear(H, 3 * H)
        self.proj = nn.Linear(H, H)

    def forward(self, x):
        B, T, H = x.shape
        hd = H // self.nh
        qkv = self.qkv(x).reshape(B, T, 3, self.nh, hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # [B, nh, T, hd]
        a = torch.softmax((q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd)), dim=-1)
        o = (a @ v).transpose(1, 2).reshape(B, T, H)
        return self.proj(o)


class Mlp(nn.Module):
    def __init__(self, H, Fh):
        super().__init__()
        self.fc1 = nn.Linear(H, Fh)
        self.fc2 = nn.Linear(Fh, H)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class SceneBlock(nn.Module):
    def __init__(self, H, nh, Fh, chunks=6):
        super().__init__()
        self.chunks = chunks
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(H, chunks * H))
        self.attn = Attention(H, nh)
        self.mlp = Mlp(H, Fh)

    def forward(self, x, c, part_of_token):
        """x [B, T, H]; c [B, P, H] condition per partition; part_of_token [T] long."""
        mod = self.adaLN_modulation(c)[:, part_of_token]  # [B, T, chunks*H]
        sa, ca, ga, sf, cf, gf = split_mod(mod, self.chunks)
        x = x + ga * self.attn(modulate(layer_norm(x), sa, ca))
        x = x + gf * self.mlp(modulate(layer_norm(x), sf, cf))
        return x


class SceneModule(nn.Module):
    def __init__(self, H, nh, Fh, C, p, M, depth, chunks=6, norm_out=True):
        super().__init__()
        self.x_embedder = nn.ModuleList([nn.Conv2d(C, H, p, stride=p) for _ in range(M)])
        self.blocks = nn.ModuleList([SceneBlock(H, nh, Fh, chunks) for _ in range(depth)])
        # affine; dit.scene_norm_out false: none, S is the last block's output
        self.norm_out = nn.LayerNorm(H, eps=LN_EPS) if norm_out else None


class GenBlock(nn.Module):
    def __init__(self, H, nh, Fh, branches, chunks=6):
        super().__init__()
        self.chunks = chunks
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(H, chunks * H))
        self.attn = Attention(H, nh)
        self.mlp = nn.ModuleList([Mlp(H, Fh) for _ in range(branches)])

    def forward(self, x, u, branch):
        """x [B, N, H]; u [B, N, H] token-wise condition; branch: FFN branch index."""
        sa, ca, ga, sf, cf, gf = split_mod(self.adaLN_modulation(u), self.chunks)
        x = x + ga * self.attn(modulate(layer_norm(x), sa, ca))
        x = x + gf * self.mlp[branch](modulate(layer_norm(x), sf, cf))
        return x


class FinalLayer(nn.Module):
    def __init__(self, H, out):
        super().__init__()
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(H, 2 * H))
        self.linear = nn.Linear(H, out)

    def forward(self, x, u):
        s, c = self.adaLN_modulation(u).chunk(2, dim=-1)
        return self.linear(modulate(layer_norm(x), s, c))


class Generator(nn.Module):
    def __init__(self, H, nh, Fh, C, p, M, depth, branches, chunks=6):
        super().__init__()
        self.x_embedder = nn.ModuleList([nn.Conv2d(C, H, p, stride=p) for _ in range(M)])
        self.blocks = nn.ModuleList([GenBlock(H, nh, Fh, branches, chunks) for _ in range(depth)])
        self.final_layer = FinalLayer(H, p * p * C)


class MetaEarthMM(nn.Module):
    """All tensors of a model file; state_dict() names are exactly the file's tensor names."""

    def __init__(self, cfg):
        super().__init__()
        validate_config(cfg)
        self.cfg = cfg
        v, d = cfg["vae"], cfg["dit"]
        self.encoder = Encoder(v)
        self.decoder = Decoder(v)
        C = v["latent_channels"]
        self.quant_conv = nn.Conv2d(2 * C, 2 * C, 1) if v["use_quant_conv"] else None
        self.post_quant_conv = nn.Conv2d(C, C, 1) if v["use_post_quant_conv"] else None
        H, nh, p = d["hidden_size"], d["num_heads"], d["patch_size"]
        Fh = int(d["mlp_ratio"] * H)
        M = len(cfg["modalities"])
        cv = self.conv = conventions(cfg)
        K = cv["adaln_chunks"]
        self.t_embedder = TimestepEmbedder(H, d["freq_dim"], cv["timestep_scale"])
        self.modality_embed = nn.Parameter(torch.zeros(M, H))
        self.scene = SceneModule(H, nh, Fh, C, p, M, d["scene_depth"], K, cv["scene_norm_out"])
        self.gen = Generator(H, nh, Fh, C, p, M, d["gen_depth"], d["ffn_branches"], K)
        self.C, self.L, self.grid, self.N = latent_geometry(cfg)
        self.H, self.p = H, p
        self._pos = pos_embed(H, self.grid, cv["pos_embed_order"] == "column_first")  # float64

    # -- helpers -------------------------------------------------------------------------

    @property
    def dtype(self):
        return self.modality_embed.dtype

    def pos(self, dtype):
        return self._pos.to(dtype)

    def net_time(self, t):
        """The network's time: t (0 = data), or 1 - t for dit.time_direction "data_at_1"."""
        return 1.0 - t if self.conv["time_direction"] == "data_at_1" else t

    def cond(self, t, m):
        """c_m(t) = e_t + e_m ("scene+time": e_t alone), [B, H]."""
        e = self.t_embedder(self.net_time(t))
        if self.conv["condition"] == "scene+time+modality":
            e = e + self.modality_embed[m]
        return e

    def patchify_embed(self, embedder, z, m):
        """PatchEmbed_m(z) + pos + e_m, [B, N, H]."""
        x = embedder(z).flatten(2).transpose(1, 2).to(self.dtype)  # residual stream: model dtype
        return x + self.pos(x.dtype) + self.modality_embed[m]

    def unpatchify(self, out):
        """[B, N, p*p*C] in (i, j, c) order -> [B, C, L, L]."""
        B, g, p, C = out.shape[0], self.grid, self.p, self.C
        return out.reshape(B, g, g, p, p, C).permute(0, 5, 1, 3, 2, 4).reshape(B, C, g * p, g * p)


def build_model(cfg):
    return MetaEarthMM(cfg).eval()


def load_model(path, dtype=torch.float32):
    """Load a model file (F32/F16/BF16 weights) -> MetaEarthMM in `dtype`."""
    from safetensors_io import read
    tensors, meta, _ = read(path)
    cfg = json.loads(meta["config"])
    model = build_model(cfg)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in tensors.items()}
    if expected != got:
        missing = sorted(set(expected) - set(got))
        extra = sorted(set(got) - set(expected))
        bad = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
        raise ValueError(f"tensor mismatch: missing {missing[:5]} extra {extra[:5]} shape {bad[:5]}")
    model.load_state_dict(tensors, strict=True)
    return model.to(dtype)


# --------------------------------------------------------------------------------------------
# Stage functions
# --------------------------------------------------------------------------------------------


def _to_vae_channels(img, n):
    """Channel k of the VAE input is image channel k mod c_m (1 channel: repeated)."""
    c = img.shape[1]
    if c == n:
        return img
    return img[:, [k % c for k in range(n)]]


def vae_encode(model, img, m):
    """img [B, c_m, S, S] in [-1, 1] -> z [B, C, L, L] = (mean - shift) * scale."""
    v = model.cfg["vae"]
    x = _to_vae_channels(img.to(model.dtype), v["in_channels"])
    moments = model.encoder(x)
    if model.quant_conv is not None:
        moments = model.quant_conv(moments)
    mean = moments[:, : v["latent_channels"]]
    mean = mean - v.get("shift_factor", 0.0)
    if v.get("latents_mean") is not None:  # diffusers' per-channel statistics
        lm = torch.tensor(v["latents_mean"], dtype=mean.dtype)[None, :, None, None]
        ls = torch.tensor(v["latents_std"], dtype=mean.dtype)[None, :, None, None]
        return (mean - lm) * v["scaling_factor"] / ls
    return mean * v["scaling_factor"]


def vae_decode(model, z, m):
    """z [B, C, L, L] -> image [B, c_m, S, S]; channels averaged down to c_m."""
    v = model.cfg["vae"]
    z = z.to(model.dtype)
    if v.get("latents_mean") is not None:
        lm = torch.tensor(v["latents_mean"], dtype=z.dtype)[None, :, None, None]
        ls = torch.tensor(v["latents_std"], dtype=z.dtype)[None, :, None, None]
        z = z * ls / v["scaling_factor"] + lm + v.get("shift_factor", 0.0)
    else:
        z = z / v["scaling_factor"] + v.get("shift_factor", 0.0)
    if model.post_quant_conv is not None:
        z = model.post_quant_conv(z)
    x = model.decoder(z)
    c = model.cfg["modality_channels"][m]
    n = x.shape[1]
    if c == n:
        return x
    # output channel j = mean of decoded channels k with k mod c == j
    return torch.stack([x[:, j::c].mean(dim=1) for j in range(c)], dim=1)


def _t_vec(t, B):
    """Timestep(s) -> float64 tensor [B]."""
    t = torch.as_tensor(t, dtype=torch.float64)
    return t.expand(B).clone() if t.dim() == 0 else t.to(torch.float64)


def scene_embed_inputs(model, partitions):
    """Joint input sequence, per-partition conditions and token->partition map."""
    xs, cs, part = [], [], []
    for k, (z, t, m) in enumerate(partitions):
        z = z.to(model.dtype)
        xs.append(model.patchify_embed(model.scene.x_embedder[m], z, m))
        cs.append(model.cond(_t_vec(t, z.shape[0]), m))
        part += [k] * model.N
    return torch.cat(xs, dim=1), torch.stack(cs, dim=1), torch.tensor(part, dtype=torch.long)


def scene_forward(model, partitions, trace=None):
    """Scene inference module over the joint sequence of `partitions`.

    partitions: list of (z [B, C, L, L], t (float or [B]), m), each m distinct, in sequence order.
    Returns the list of scene tokens S_m [B, N, H], one per partition, in the same order.
    trace: optional dict receiving "x_in" and "block{i}" (the joint sequence after block i).
    """
    ms = [m for _, _, m in partitions]
    assert len(ms) >= 1 and len(set(ms)) == len(ms), "partitions must be distinct modalities"
    x, c, part = scene_embed_inputs(model, partitions)
    if trace is not None:
        trace["x_in"] = x
    for i, blk in enumerate(model.scene.blocks):
        x = blk(x, c, part)
        if trace is not None:
            trace[f"block{i}"] = x
    S = model.scene.norm_out(x) if model.scene.norm_out is not None else x
    return list(S.split(model.N, dim=1))


def gen_forward(model, z, S, t, m, trace=None):
    """Routed generator for target modality m: velocity [B, C, L, L]."""
    z = z.to(model.dtype)
    x = model.patchify_embed(model.gen.x_embedder[m], z, m)
    u = S + model.cond(_t_vec(t, z.shape[0]), m)[:, None, :]
    branch = model.cfg["dit"]["routing"][m]
    for j, blk in enumerate(model.gen.blocks):
        x = blk(x, u, branch)
        if trace is not None:
            trace[f"block{j}"] = x
    v = model.unpatchify(model.gen.final_layer(x, u))
    # t = 1 at the data: the network predicts data - noise; the engine's velocity is noise - data
    return -v if model.conv["time_direction"] == "data_at_1" else v


def predict_velocity(model, sources, targets, t, guidance=1.0, uncond_sources=None,
                     joint_uncond=None):
    """Velocity of each target for one step of a task, with classifier-free guidance.

    sources: list of (z, m), clean (t = 0). targets: list of (z, m), all at time t ([B] or float).
    uncond_sources: list of noise latents, one per source, used at t = 1 in the unconditional
    branch (required when guidance != 1 and there are sources).
    joint_uncond: joint guidance (no sources, two or more targets): one noise latent per target;
    target j's unconditional branch is the same step with every other target k replaced by
    joint_uncond[k] at t = 1 (dropped as in training), target j itself kept at t.
    The scene sequence is sources (in order) then targets (in order).
    Returns the list of velocities, one per target.
    """
    B = targets[0][0].shape[0]
    tt = _t_vec(t, B)
    zero, one = torch.zeros(B, dtype=torch.float64), torch.ones(B, dtype=torch.float64)
    tgt_parts = [(z, tt, m) for z, m in targets]

    def velocities(src_parts):
        S = scene_forward(model, src_parts + tgt_parts)[len(src_parts):]
        return [gen_forward(model, z, s, tt, m) for (z, m), s in zip(targets, S)]

    v_c = velocities([(z, zero, m) for z, m in sources])
    if guidance == 1.0:
        return v_c
    if not sources:
        if joint_uncond is None or len(targets) < 2:
            return v_c  # nothing to drop: the conditional and unconditional steps are one
        assert len(joint_uncond) == len(targets)
        w = torch.tensor(guidance, dtype=v_c[0].dtype)
        out = []
        for j, (zj, mj) in enumerate(targets):
            parts = [(zj, tt, m) if k == j else (joint_uncond[k], one, m)
                     for k, (_, m) in enumerate(targets)]
            vu = gen_forward(model, zj, scene_forward(model, parts)[j], tt, mj)
            out.append(vu + w * (v_c[j] - vu))
        return out
    assert uncond_sources is not None and len(uncond_sources) == len(sources)
    v_u = velocities([(n, one, m) for n, (_, m) in zip(uncond_sources, sources)])
    w = torch.tensor(guidance, dtype=v_c[0].dtype)
    return [vu + w * (vc - vu) for vc, vu in zip(v_c, v_u)]


# --------------------------------------------------------------------------------------------
# Noise: Philox-4x32-10 + Box-Muller
# --------------------------------------------------------------------------------------------

_MASK = np.uint64(0xFFFFFFFF)
_M0, _M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
_W0, _W1 = np.uint64(0x9E3779B9), np.uint64(0xBB67AE85)
_S32 = np.uint64(32)


def philox4x32_10(ctr, key):
    """Philox-4x32-10. ctr: 4 uint32 values or arrays (broadcast); key: 2 uint32 values.

    Returns a uint32 array [..., 4]. Arithmetic in uint64, masked to 32 bits.
    """
    c = [np.asarray(x, dtype=np.uint64) & _MASK for x in ctr]
    c0, c1, c2, c3 = np.broadcast_arrays(*c)
    k0 = np.uint64(key[0]) & _MASK
    k1 = np.uint64(key[1]) & _MASK
    for r in range(10):
        if r:
            k0 = (k0 + _W0) & _MASK
            k1 = (k1 + _W1) & _MASK
        p0 = _M0 * c0
        p1 = _M1 * c2
        hi0, lo0 = p0 >> _S32, p0 & _MASK
        hi1, lo1 = p1 >> _S32, p1 & _MASK
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return np.stack([c0, c1, c2, c3], axis=-1).astype(np.uint32)


PURPOSE_INIT, PURPOSE_SDE, PURPOSE_UNCOND = 0, 1, 2


def philox_noise(seed, tile_id, purpose, modality, step, nelem):
    """Standard normal float32 [nelem] for one tile (docs/architecture.md section 6)."""
    assert 0 <= purpose < 256 and 0 <= modality < 256 and 0 <= step < 65536
    ngroups = (nelem + 3) // 4
    assert ngroups <= 2 ** 32
    seed, tile_id = int(seed), int(tile_id)
    stream = (purpose << 24) | (modality << 16) | step
    g = np.arange(ngroups, dtype=np.uint64)
    w = philox4x32_10((g, stream, tile_id & 0xFFFFFFFF, tile_id >> 32),
                      (seed & 0xFFFFFFFF, seed >> 32)).astype(np.float64)  # [G, 4]
    u1 = (w[:, 0::2] + 1.0) * 2.0 ** -32   # from w0, w2
    u2 = w[:, 1::2] * 2.0 ** -32           # from w1, w3
    r = np.sqrt(-2.0 * np.log(u1))
    ang = (2.0 * np.pi) * u2
    z = np.empty((ngroups, 4), dtype=np.float64)
    z[:, 0::2] = r * np.cos(ang)  # lanes 0, 2
    z[:, 1::2] = r * np.sin(ang)  # lanes 1, 3
    return z.reshape(-1)[:nelem].astype(np.float32)


def noise_batch(seed, tile_ids, purpose, modality, step, shape):
    """Noise for a batch of tiles: float32 tensor [len(tile_ids), *shape]."""
    n = int(np.prod(shape))
    return torch.from_numpy(np.stack([
        philox_noise(seed, tid, purpose, modality, step, n).reshape(shape) for tid in tile_ids]))


# --------------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------------


def time_grid(steps, shift=1.0, final_step_size=0.0):
    """t_0 = 1 > t_1 > ... > t_n = 0, float64 (python floats). With final_step_size d > 0 the
    first n - 1 steps cover [1, d] evenly and the last goes from d to 0 (SiT's last step)."""
    ts = []
    d = final_step_size
    for i in range(steps + 1):
        if i == steps:
            tau = 0.0
        elif d > 0.0:
            tau = 1.0 - i * (1.0 - d) / (steps - 1) if steps > 1 else 1.0
        else:
            tau = 1.0 - i / steps
        ts.append(shift * tau / (1.0 + (shift - 1.0) * tau))
    return ts


def sample(model, sources, targets, seed, tile_ids, steps=None, sampler=None, guidance=None,
           sde_eta=None, time_shift=None, bf16=False, trace=None, joint_guidance=False):
    """Run a translate (sources non-empty) or joint generation (sources empty) task.

    joint_guidance: without sources, guidance between the jointly generated targets (see
    predict_velocity; the dropped targets' noise is PURPOSE_UNCOND, step 0, once per tile).

    sources: list of (z_clean [B, C, L, L], m); targets: list of modality indices.
    Defaults come from config["sampling"]. The sampler state is kept in the model dtype
    (float32 for the golden reference); bf16=True runs the network under CPU bf16 autocast.
    Scalar coefficients (Delta, 1 - t_i, sqrt(2 eta t_i Delta), Delta/2, eta, w) are computed in
    float64 and rounded to the state dtype. Returns {m: final latent}.
    trace: optional dict receiving "step{i}.{m}" latents after each step.
    """
    sc = model.cfg["sampling"]
    steps = sc["steps"] if steps is None else steps
    sampler = sc["sampler"] if sampler is None else sampler
    guidance = sc["guidance"] if guidance is None else guidance
    eta = sc["sde_eta"] if sde_eta is None else sde_eta
    shift = sc["time_shift"] if time_shift is None else time_shift
    assert sampler in ("euler", "heun", "euler_maruyama")
    dt = model.dtype
    shape = (model.C, model.L, model.L)
    B = len(tile_ids)

    def S(x):  # scalar in the state dtype
        return torch.tensor(x, dtype=dt)

    x = {m: noise_batch(seed, tile_ids, PURPOSE_INIT, m, 0, shape).to(dt) for m in targets}
    srcs = [(z.to(dt), m) for z, m in sources]
    uncond = None
    if guidance != 1.0 and sources:
        uncond = [noise_batch(seed, tile_ids, PURPOSE_UNCOND, m, 0, shape).to(dt)
                  for _, m in sources]
    joint_uncond = None
    if joint_guidance and not sources and guidance != 1.0 and len(targets) >= 2:
        joint_uncond = [noise_batch(seed, tile_ids, PURPOSE_UNCOND, m, 0, shape).to(dt)
                        for m in targets]

    ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext

    def vel(state, t):
        with ctx():
            vs = predict_velocity(model, srcs, [(state[m], m) for m in targets],
                                  torch.full((B,), t, dtype=torch.float64), guidance, uncond,
                                  joint_uncond)
        return {m: v.to(dt) for m, v in zip(targets, vs)}

    final_mean = model.conv["final_step"] == "mean"
    ts = time_grid(steps, shift, model.conv["final_step_size"])
    for i in range(steps):
        t0, t1 = ts[i], ts[i + 1]
        d = t0 - t1
        v = vel(x, t0)
        if sampler == "euler_maruyama" and t1 == 0.0 and final_mean:
            # sampling.final_step "mean": the SDE step's drift, without its noise
            x = {m: x[m] - S(d) * (v[m] + S(eta) * (x[m] + S(1.0 - t0) * v[m])) for m in targets}
        elif sampler == "euler" or (sampler == "euler_maruyama" and t1 == 0.0):
            x = {m: x[m] - S(d) * v[m] for m in targets}
        elif sampler == "heun":
            x1 = {m: x[m] - S(d) * v[m] for m in targets}
            if t1 > 0.0:
                v2 = vel(x1, t1)
                x = {m: x[m] - S(d / 2) * (v[m] + v2[m]) for m in targets}
            else:
                x = x1
        else:  # euler_maruyama
            nx = {}
            for m in targets:
                eps_hat = x[m] + S(1.0 - t0) * v[m]
                xi = noise_batch(seed, tile_ids, PURPOSE_SDE, m, i, shape).to(dt)
                nx[m] = x[m] - S(d) * (v[m] + S(eta) * eps_hat) + S(math.sqrt(2 * eta * t0 * d)) * xi
            x = nx
        if trace is not None:
            for m in targets:
                trace[f"step{i}.{m}"] = x[m]
    return x


def scene_embedding(model, sources):
    """Scene embedding task: S of each clean source partition (t = 0)."""
    B = sources[0][0].shape[0]
    return scene_forward(model, [(z, torch.zeros(B, dtype=torch.float64), m) for z, m in sources])


def scene_readout(model, sources, readout_mod, seed, tile_ids, source_t=0.0):
    """Zero-shot scene readout (paper V-C, Eq. 22): the scene tokens of the branch of modality
    readout_mod, which is given as pure noise (PURPOSE_UNCOND, step 0) at t = 1, inferred from the
    sources (list of (z_clean, m)) at time source_t: clean for 0 (the paper's), else
    (1 - t) z + t eps with eps the PURPOSE_INIT noise of the source's modality. The scene sequence
    is the sources (in order) then the readout branch. Returns [B, N, H]."""
    assert all(m != readout_mod for _, m in sources) and 0.0 <= source_t < 1.0
    dt = model.dtype
    B = len(tile_ids)
    shape = (model.C, model.L, model.L)
    ts = float(np.float32(source_t))  # the time as the C API takes it (float32)
    parts = []
    for z, m in sources:
        z = z.to(dt)
        if ts > 0.0:
            eps = noise_batch(seed, tile_ids, PURPOSE_INIT, m, 0, shape).to(dt)
            z = (1 - torch.tensor(ts, dtype=dt)) * z + torch.tensor(ts, dtype=dt) * eps
        parts.append((z, torch.full((B,), ts, dtype=torch.float64), m))
    noise = noise_batch(seed, tile_ids, PURPOSE_UNCOND, readout_mod, 0, shape).to(dt)
    parts.append((noise, torch.ones(B, dtype=torch.float64), readout_mod))
    return scene_forward(model, parts)[-1]


# --------------------------------------------------------------------------------------------
# CLI: list the tensors a config implies
# --------------------------------------------------------------------------------------------

if __name__ == "__main__":
    import sys
    if len(sys.argv) != 3 or sys.argv[1] != "names":
        sys.exit("usage: mm_ref.py names CONFIG.json   (prints every implied tensor and shape)")
    with open(sys.argv[2]) as f:
        model = build_model(json.load(f))
    for k, v in sorted(model.state_dict().items()):
        print(k, list(v.shape))
