"""Small MetaEarth-MM models written as other authors would write them, for the mm_convert round
trips (roundtrip.py). They are not the project's reference (tools/reference/mm_ref.py): each is
written here in the natural layout and conventions of its code style, so that a conversion that
gets a name, a shape or a convention wrong gives different numbers.

    DiTStyle: DiT's layout (timm PatchEmbed `x_embedder.{m}.proj`, fused `attn.qkv`, a
      LabelEmbedder `y_embedder.embedding_table` with a null row, the column-first sin-cos table
      stored as the `pos_embed` parameter, t in [0, 1] with t = 1 at the noise, fed as 1000 t),
      adaLN-Zero (6 chunks), an affine LayerNorm `scene_norm` on the scene tokens.
    SiTStyle: separate `q_proj`/`k_proj`/`v_proj`/`out_proj`, t in [0, 1] with t = 1 at the data,
      fed unscaled, the velocity is data - noise, the position table computed (column-first, not
      stored), adaLN without gates (4 chunks), no norm on the scene tokens, and the generator's
      condition S + e_t (no modality embedding in the condition).

The VAE is diffusers' AutoencoderKL layout; its body reuses the reference's diffusers-semantics
modules (proven against the C engine by the golden tests), while the latent statistics
(scaling_factor, latents_mean, latents_std) are applied here as a diffusers pipeline does.
"""

import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools", "reference"))
import mm_ref  # noqa: E402  (VAE body and Philox noise only)


# ---- shared pieces, DiT's way ----------------------------------------------------------------

def sincos_1d(dim, pos):
    omega = 1.0 / 10000 ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2.0))
    out = np.einsum("m,d->md", pos.reshape(-1), omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def sincos_2d(dim, grid_size):
    """DiT/MAE's table: meshgrid(w, h), so the first half encodes the column."""
    gh = np.arange(grid_size, dtype=np.float64)
    gw = np.arange(grid_size, dtype=np.float64)
    grid = np.stack(np.meshgrid(gw, gh), axis=0).reshape(2, 1, grid_size, grid_size)
    return np.concatenate([sincos_1d(dim // 2, grid[0]), sincos_1d(dim // 2, grid[1])], axis=1)


def timestep_embedding(t, dim):
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float64) / half)
    args = t.to(torch.float64)[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1).float()


class TimestepEmbedder(nn.Module):
    def __init__(self, H, fd, scale):
        super().__init__()
        self.fd, self.scale = fd, scale
        self.mlp = nn.Sequential(nn.Linear(fd, H), nn.SiLU(), nn.Linear(H, H))

    def forward(self, t):
        return self.mlp(timestep_embedding(self.scale * t.to(torch.float64), self.fd))


class PatchEmbed(nn.Module):
    def __init__(self, C, H, p):
        super().__init__()
        self.proj = nn.Conv2d(C, H, p, stride=p)

    def forward(self, z):
        return self.proj(z).flatten(2).transpose(1, 2)


class FusedAttention(nn.Module):
    def __init__(self, H, nh):
        super().__init__()
        self.nh = nh
        self.qkv = nn.Linear(H, 3 * H)
        self.proj = nn.Linear(H, H)

    def forward(self, x):
        B, T, H = x.shape
        q, k, v = self.qkv(x).reshape(B, T, 3, self.nh, H // self.nh).permute(2, 0, 3, 1, 4)
        a = (q @ k.transpose(-2, -1) / math.sqrt(H // self.nh)).softmax(-1)
        return self.proj((a @ v).transpose(1, 2).reshape(B, T, H))


class SplitAttention(nn.Module):
    def __init__(self, H, nh):
        super().__init__()
        self.nh = nh
        self.q_proj, self.k_proj = nn.Linear(H, H), nn.Linear(H, H)
        self.v_proj, self.out_proj = nn.Linear(H, H), nn.Linear(H, H)

    def forward(self, x):
        B, T, H = x.shape
        sh = lambda y: y.reshape(B, T, self.nh, H // self.nh).transpose(1, 2)  # noqa: E731
        q, k, v = sh(self.q_proj(x)), sh(self.k_proj(x)), sh(self.v_proj(x))
        a = torch.softmax(q @ k.transpose(-2, -1) * (H // self.nh) ** -0.5, dim=-1)
        return self.out_proj((a @ v).transpose(1, 2).reshape(B, T, H))


class Mlp(nn.Module):
    def __init__(self, H, Fh):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(H, Fh), nn.Linear(Fh, H)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, H, nh, Fh, chunks, split, experts=None, n_experts=0):
        super().__init__()
        self.chunks = chunks
        self.norm1 = nn.LayerNorm(H, elementwise_affine=False, eps=1e-6)
        self.norm2 = nn.LayerNorm(H, elementwise_affine=False, eps=1e-6)
        self.attn = SplitAttention(H, nh) if split else FusedAttention(H, nh)
        self.experts_name = experts
        if experts:
            setattr(self, experts, nn.ModuleList([Mlp(H, Fh) for _ in range(n_experts)]))
        else:
            self.mlp = Mlp(H, Fh)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(H, chunks * H))

    def forward(self, x, c, expert=0):
        mlp = getattr(self, self.experts_name)[expert] if self.experts_name else self.mlp
        mod = self.adaLN_modulation(c).chunk(self.chunks, dim=-1)
        if self.chunks == 6:
            s1, c1, g1, s2, c2, g2 = mod
            x = x + g1 * self.attn(self.norm1(x) * (1 + c1) + s1)
            return x + g2 * mlp(self.norm2(x) * (1 + c2) + s2)
        s1, c1, s2, c2 = mod  # adaLN without gates
        x = x + self.attn(self.norm1(x) * (1 + c1) + s1)
        return x + mlp(self.norm2(x) * (1 + c2) + s2)


class FinalLayer(nn.Module):
    def __init__(self, H, p, C):
        super().__init__()
        self.norm_final = nn.LayerNorm(H, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(H, p * p * C)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(H, 2 * H))

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=-1)
        return self.linear(self.norm_final(x) * (1 + scale) + shift)


class LabelEmbedder(nn.Module):
    def __init__(self, n, H):
        super().__init__()
        self.embedding_table = nn.Embedding(n + 1, H)  # + the null class


# ---- the two models ----------------------------------------------------------------------------

class _MM(nn.Module):
    """What the two styles share: a MetaEarth-MM forward in the model's own time convention."""

    def emb(self, m):
        raise NotImplementedError

    def tokens(self, embedders, z, m):
        return embedders[m](z) + self.pos.to(z.dtype) + self.emb(m)

    def cond(self, t, m):
        e = self.t_embedder(t)
        return e + self.emb(m) if self.cond_modality else e

    def scene(self, parts):
        x = torch.cat([self.tokens(self.scene_embedders, z, m) for z, _, m in parts], dim=1)
        c = torch.stack([self.cond(t, m) for _, t, m in parts], dim=1)
        c = c.repeat_interleave(self.N, dim=1)
        for b in self.scene_blocks:
            x = b(x, c)
        if self.scene_norm is not None:
            x = self.scene_norm(x)
        return list(x.split(self.N, dim=1))

    def gen(self, z, S, t, m):
        x = self.tokens(self.gen_embedders, z, m)
        u = S + self.cond(t, m)[:, None]
        for b in self.gen_blocks:
            x = b(x, u, self.routing[m])
        out = self.final_layer(x, u)
        g, p, C = self.grid, self.p, self.C
        out = out.reshape(out.shape[0], g, g, p, p, C)
        return torch.einsum("nhwpqc->nchpwq", out).reshape(out.shape[0], C, g * p, g * p)

    def velocity(self, sources, target, t):
        """sources [(z, t_src, m)], target (z, m) at time t (all in the model's convention)."""
        z, m = target
        S = self.scene(sources + [(z, t, m)])[-1]
        return self.gen(z, S, t, m)


class DiTStyle(_MM):
    def __init__(self, M, H, nh, Fh, C, p, grid, scene_depth, gen_depth, experts, routing, fd=256):
        super().__init__()
        self.N, self.grid, self.p, self.C, self.routing = grid * grid, grid, p, C, routing
        self.cond_modality = True
        self.x_embedder = nn.ModuleList([PatchEmbed(C, H, p) for _ in range(M)])
        self.gen_x_embedder = nn.ModuleList([PatchEmbed(C, H, p) for _ in range(M)])
        self.t_embedder = TimestepEmbedder(H, fd, 1000.0)
        self.y_embedder = LabelEmbedder(M, H)
        self.pos_embed = nn.Parameter(torch.from_numpy(sincos_2d(H, grid)).float()[None],
                                      requires_grad=False)
        self.scene_blocks = nn.ModuleList([Block(H, nh, Fh, 6, False) for _ in range(scene_depth)])
        self.scene_norm = nn.LayerNorm(H, eps=1e-6)
        self.gen_blocks = nn.ModuleList([Block(H, nh, Fh, 6, False, "experts", experts)
                                         for _ in range(gen_depth)])
        self.final_layer = FinalLayer(H, p, C)
    @property
    def scene_embedders(self):
        return self.x_embedder

    @property
    def gen_embedders(self):
        return self.gen_x_embedder

    @property
    def pos(self):
        return self.pos_embed[0]

    def emb(self, m):
        return self.y_embedder.embedding_table.weight[m]


class SiTStyle(_MM):
    def __init__(self, M, H, nh, Fh, C, p, grid, scene_depth, gen_depth, experts, routing, fd=256):
        super().__init__()
        self.N, self.grid, self.p, self.C, self.routing = grid * grid, grid, p, C, routing
        self.cond_modality = False
        self.x_embedders = nn.ModuleList([PatchEmbed(C, H, p) for _ in range(M)])
        self.gen_x_embedders = nn.ModuleList([PatchEmbed(C, H, p) for _ in range(M)])
        self.t_embedder = TimestepEmbedder(H, fd, 1.0)
        self.modality_embedder = nn.Embedding(M, H)
        self.register_buffer("_pos", torch.from_numpy(sincos_2d(H, grid)).float(), persistent=False)
        self.scene_blocks = nn.ModuleList([Block(H, nh, Fh, 4, True) for _ in range(scene_depth)])
        self.scene_norm = None
        self.gen_blocks = nn.ModuleList([Block(H, nh, Fh, 4, True, "moe", experts)
                                         for _ in range(gen_depth)])
        self.final_layer = FinalLayer(H, p, C)
    @property
    def scene_embedders(self):
        return self.x_embedders

    @property
    def gen_embedders(self):
        return self.gen_x_embedders

    @property
    def pos(self):
        return self._pos

    def emb(self, m):
        return self.modality_embedder.weight[m]


@torch.no_grad()
def randomise(model, seed, H):
    """Weights that make every path matter (nothing zero-initialised as DiT would)."""
    g = torch.Generator().manual_seed(seed)
    for name, p in sorted(model.named_parameters()):
        if name == "pos_embed":
            continue
        if p.dim() == 1:
            base = 1.0 if ("norm" in name and name.endswith("weight")) else 0.0
            p.copy_(base + 0.05 * torch.randn(p.shape, generator=g))
        elif "adaLN_modulation" in name:
            p.copy_(torch.randn(p.shape, generator=g) * 0.8 / math.sqrt(H))
        elif "embed" in name and p.dim() == 2 and "mlp" not in name:
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        else:
            p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p[0].numel()))
    return model


# ---- a diffusers-like VAE ------------------------------------------------------------------

class DiffusersVAE(nn.Module):
    def __init__(self, vcfg):
        super().__init__()
        self.cfg = vcfg
        C = vcfg["latent_channels"]
        self.encoder = mm_ref.Encoder(vcfg)
        self.decoder = mm_ref.Decoder(vcfg)
        self.quant_conv = nn.Conv2d(2 * C, 2 * C, 1)
        self.post_quant_conv = nn.Conv2d(C, C, 1)

    def _stats(self):
        c = self.cfg
        lm = torch.tensor(c["latents_mean"]).view(1, -1, 1, 1)
        ls = torch.tensor(c["latents_std"]).view(1, -1, 1, 1)
        return lm, ls, c["scaling_factor"]

    def encode(self, img):
        """As an SDXL-style pipeline: (posterior mean - latents_mean) * scaling / latents_std."""
        if img.shape[1] != self.cfg["in_channels"]:
            img = img.repeat(1, self.cfg["in_channels"] // img.shape[1], 1, 1)
        mean = self.quant_conv(self.encoder(img))[:, : self.cfg["latent_channels"]]
        lm, ls, sf = self._stats()
        return (mean - lm) * sf / ls

    def decode(self, z):
        lm, ls, sf = self._stats()
        return self.decoder(self.post_quant_conv(z * ls / sf + lm))


@torch.no_grad()
def randomise_vae(vae, seed):
    g = torch.Generator().manual_seed(seed)
    for name, p in sorted(vae.named_parameters()):
        if p.dim() == 1:
            base = 1.0 if "norm" in name and name.endswith("weight") else 0.0
            p.copy_(base + 0.05 * torch.randn(p.shape, generator=g))
        else:
            p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p[0].numel()))
    return vae


def legacy_vae_names(sd):
    """diffusers before 0.14: query/key/value/proj_attn in the mid-block attention."""
    ren = {".to_q.": ".query.", ".to_k.": ".key.", ".to_v.": ".value.", ".to_out.0.": ".proj_attn."}
    out = {}
    for k, v in sd.items():
        for a, b in ren.items():
            k = k.replace(a, b)
        out[k] = v
    return out


noise_batch = mm_ref.noise_batch
