#!/usr/bin/python3
"""Self-test of the reference: a second, deliberately naive implementation of the transformer
stages written straight from docs/architecture.md against the raw tensors of a model file,
compared with mm_ref; plus Philox known answers and safetensors layout checks.

    /usr/bin/python3 tools/reference/selftest.py [tests/golden/tiny_model.safetensors]

Runs in float64 so that differences are implementation differences, not rounding.
"""

import json
import math
import os
import struct
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_golden  # noqa: E402
import mm_ref as R  # noqa: E402
import safetensors_io  # noqa: E402

D = torch.float64


def naive_ln(x, eps=1e-6):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps)


def naive_silu(x):
    return x / (1 + torch.exp(-x))


def naive_gelu_tanh(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


class Naive:
    def __init__(self, W, cfg):
        self.W, self.cfg = W, cfg
        d = cfg["dit"]
        self.H, self.nh, self.p = d["hidden_size"], d["num_heads"], d["patch_size"]
        self.C, self.L, self.g, self.N = R.latent_geometry(cfg)

    def lin(self, name, x):
        return x @ self.W[name + ".weight"].T + self.W[name + ".bias"]

    def temb(self, t):
        fd = self.cfg["dit"]["freq_dim"]
        half = fd // 2
        rows = []
        for tv in t.tolist():
            f = [math.exp(-math.log(10000) * i / half) for i in range(half)]
            rows.append([math.cos(1000 * tv * fi) for fi in f] + [math.sin(1000 * tv * fi) for fi in f])
        feat = torch.tensor(rows, dtype=D)
        return self.lin("t_embedder.mlp.2", naive_silu(self.lin("t_embedder.mlp.0", feat)))

    def pos(self):
        H, g = self.H, self.g
        q = H // 4
        out = torch.zeros(g * g, H, dtype=D)
        for r in range(g):
            for c in range(g):
                k = r * g + c
                for i in range(q):
                    w = 10000 ** (-i / q)
                    out[k, i], out[k, q + i] = math.sin(r * w), math.cos(r * w)
                    out[k, 2 * q + i], out[k, 3 * q + i] = math.sin(c * w), math.cos(c * w)
        return out

    def patch(self, prefix, z, m):
        B, p, g = z.shape[0], self.p, self.g
        Wt = self.W[f"{prefix}.x_embedder.{m}.weight"].reshape(self.H, -1)  # (c, i, j) flattening
        toks = torch.zeros(B, g * g, self.H, dtype=D)
        for r in range(g):
            for c in range(g):
                patch = z[:, :, r * p:(r + 1) * p, c * p:(c + 1) * p].reshape(B, -1)
                toks[:, r * g + c] = patch @ Wt.T + self.W[f"{prefix}.x_embedder.{m}.bias"]
        return toks + self.pos() + self.W["modality_embed"][m]

    def attn(self, prefix, h):
        H, nh = self.H, self.nh
        hd = H // nh
        qkv = self.lin(prefix + ".qkv", h)
        q, k, v = qkv[..., :H], qkv[..., H:2 * H], qkv[..., 2 * H:]
        outs = []
        for i in range(nh):
            sl = slice(i * hd, (i + 1) * hd)
            s = q[..., sl] @ k[..., sl].transpose(-1, -2) / math.sqrt(hd)
            s = torch.exp(s - s.max(-1, keepdim=True).values)
            outs.append((s / s.sum(-1, keepdim=True)) @ v[..., sl])
        return self.lin(prefix + ".proj", torch.cat(outs, -1))

    def mlp(self, prefix, h):
        return self.lin(prefix + ".fc2", naive_gelu_tanh(self.lin(prefix + ".fc1", h)))

    def scene(self, parts):
        H, N = self.H, self.N
        xs = [self.patch("scene", z, m) for z, t, m in parts]
        cs = [self.temb(t) + self.W["modality_embed"][m] for z, t, m in parts]
        x = torch.cat(xs, 1)
        for i in range(self.cfg["dit"]["scene_depth"]):
            pre = f"scene.blocks.{i}"
            mods = [self.lin(pre + ".adaLN_modulation.1", naive_silu(c)) for c in cs]  # [B, 6H]

            def chunk(j):  # per-token [B, T, H] from per-partition chunk j
                return torch.cat([mo[:, None, j * H:(j + 1) * H].expand(-1, N, -1) for mo in mods], 1)

            h = naive_ln(x) * (1 + chunk(1)) + chunk(0)
            x = x + chunk(2) * self.attn(pre + ".attn", h)
            h = naive_ln(x) * (1 + chunk(4)) + chunk(3)
            x = x + chunk(5) * self.mlp(pre + ".mlp", h)
        S = naive_ln(x) * self.W["scene.norm_out.weight"] + self.W["scene.norm_out.bias"]
        return [S[:, k * N:(k + 1) * N] for k in range(len(parts))]

    def gen(self, z, S, t, m):
        H, p, C, g = self.H, self.p, self.C, self.g
        x = self.patch("gen", z, m)
        u = S + (self.temb(t) + self.W["modality_embed"][m])[:, None]
        br = self.cfg["dit"]["routing"][m]
        for j in range(self.cfg["dit"]["gen_depth"]):
            pre = f"gen.blocks.{j}"
            mo = self.lin(pre + ".adaLN_modulation.1", naive_silu(u))
            ch = [mo[..., k * H:(k + 1) * H] for k in range(6)]
            x = x + ch[2] * self.attn(pre + ".attn", naive_ln(x) * (1 + ch[1]) + ch[0])
            x = x + ch[5] * self.mlp(f"{pre}.mlp.{br}", naive_ln(x) * (1 + ch[4]) + ch[3])
        mo = self.lin("gen.final_layer.adaLN_modulation.1", naive_silu(u))
        out = self.lin("gen.final_layer.linear", naive_ln(x) * (1 + mo[..., H:]) + mo[..., :H])
        B = z.shape[0]
        v = torch.zeros(B, C, g * p, g * p, dtype=D)
        for r in range(g):
            for c in range(g):
                for i in range(p):
                    for jj in range(p):
                        for cc in range(C):
                            v[:, cc, r * p + i, c * p + jj] = out[:, r * g + c, (i * p + jj) * C + cc]
        return v


def check_close(name, a, b, tol=1e-10):
    rel = float((a - b).abs().max() / b.abs().max())
    print(f"  {name:28s} rel {rel:.1e}")
    assert rel < tol, name


def check_safetensors_layout(path):
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    assert n % 8 == 0
    header = json.loads(buf[8:8 + n])
    header.pop("__metadata__", None)
    names = sorted(header)
    pos = 0
    for k in names:  # sorted-by-name order, contiguous from 0
        b, e = header[k]["data_offsets"]
        assert b == pos, k
        pos = e
    assert 8 + n + pos == len(buf)


@torch.no_grad()
def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        HERE, "..", "..", "tests", "golden", "tiny_model.safetensors")
    make_golden.check_philox()
    print("philox known answers ok")
    check_safetensors_layout(path)
    print("safetensors layout ok")

    model = R.load_model(path, D)
    W = {k: v.to(D) for k, v in model.state_dict().items()}
    nv = Naive(W, model.cfg)
    B, C, L = 2, model.C, model.L
    gen = torch.Generator().manual_seed(5)
    z_a = torch.randn(B, C, L, L, generator=gen, dtype=D)
    z_b = torch.randn(B, C, L, L, generator=gen, dtype=D)
    t_a = torch.tensor([0.0, 0.3], dtype=D)
    t_b = torch.tensor([0.6, 1.0], dtype=D)
    check_close("timestep embedding", model.t_embedder(t_b), nv.temb(t_b))
    check_close("pos embedding", model.pos(D), nv.pos())
    check_close("patch embedding", model.patchify_embed(model.scene.x_embedder[2], z_a, 2),
                nv.patch("scene", z_a, 2))
    parts = [(z_a, t_a, 1), (z_b, t_b, 0)]
    S = R.scene_forward(model, parts)
    Sn = nv.scene(parts)
    check_close("scene tokens 0", S[0], Sn[0])
    check_close("scene tokens 1", S[1], Sn[1])
    # scene module is permutation-equivariant over partitions
    S_sw = R.scene_forward(model, parts[::-1])
    check_close("scene partition order", S_sw[1], S[0])
    for m in range(len(model.cfg["modalities"])):
        check_close(f"generator m={m}", R.gen_forward(model, z_b, S[1], t_b, m),
                    nv.gen(z_b, Sn[1], t_b, m))
    # Euler-Maruyama step against the formula, with an explicit CFG combination
    w, eta, tt = 1.5, 1.0, R.time_grid(4)
    unc = R.noise_batch(1234, [7, 11], 2, 1, 0, (C, L, L)).to(D)
    x0 = R.noise_batch(1234, [7, 11], 0, 0, 0, (C, L, L)).to(D)
    vc = nv.gen(x0, nv.scene([(z_a, torch.zeros(B, dtype=D), 1), (x0, torch.ones(B, dtype=D), 0)])[1],
                torch.ones(B, dtype=D), 0)
    vu = nv.gen(x0, nv.scene([(unc, torch.ones(B, dtype=D), 1), (x0, torch.ones(B, dtype=D), 0)])[1],
                torch.ones(B, dtype=D), 0)
    v = vu + w * (vc - vu)
    d = tt[0] - tt[1]
    eps_hat = x0 + (1 - tt[0]) * v
    xi = R.noise_batch(1234, [7, 11], 1, 0, 0, (C, L, L)).to(D)
    x1 = x0 - d * (v + eta * eps_hat) + math.sqrt(2 * eta * tt[0] * d) * xi
    trace = {}
    R.sample(model, [(z_a, 1)], [0], 1234, [7, 11], 4, "euler_maruyama", w, eta, 1.0, trace=trace)
    check_close("euler-maruyama step 0", trace["step0.0"], x1)
    # noise: a tile's values do not depend on the batch it is in
    a = R.noise_batch(9, [3, 5], 1, 2, 7, (C, L, L))
    assert torch.equal(a[1], R.noise_batch(9, [5], 1, 2, 7, (C, L, L))[0])
    z = R.philox_noise(9, 5, 1, 2, 7, 1 << 16)
    assert abs(z.mean()) < 0.02 and abs(z.std() - 1) < 0.02
    print("ok")


if __name__ == "__main__":
    main()
