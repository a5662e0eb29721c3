#!/usr/bin/python3
"""Build a MetaEarth-MM model from a config JSON with seeded random weights and write the model
file (safetensors, config at __metadata__["config"]).

    /usr/bin/python3 tools/reference/export.py CONFIG.json OUT.safetensors [--seed 0] [--dtype F32]

Random init (every path non-trivial, activations O(1), nothing zero-initialised):
  * conv / linear weights: normal, std 1/sqrt(fan_in); biases: normal, std 0.02;
  * adaLN_modulation and gen.final_layer weights: normal, std 0.8/sqrt(H) (0.1 at H = 64),
    biases std 0.05 (DiT would zero these; here they must not be, and the gates must be large
    enough that every residual branch visibly moves the outputs);
  * encoder.conv_out weight and bias are further multiplied by 1/scaling_factor, so the scaled
    latents are O(1) (rms ~0.5), as they are with a trained VAE;
  * GroupNorm / affine LayerNorm: weight 1 + 0.1*normal, bias 0.1*normal;
  * modality_embed: normal, std 0.5.
"""

import argparse
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mm_ref  # noqa: E402
import safetensors_io  # noqa: E402


ADA_GAIN = 0.8  # adaLN / final-layer weight std = ADA_GAIN / sqrt(H)
LATENT_GAIN = 1.0  # encoder.conv_out scaled by LATENT_GAIN / scaling_factor


@torch.no_grad()
def init_weights(model, seed=0):
    gen = torch.Generator().manual_seed(seed)

    def normal(shape, std, mean=0.0):
        return torch.randn(shape, generator=gen, dtype=torch.float32) * std + mean

    H = model.H
    sd = model.state_dict()
    new = {}
    for name in sorted(sd):  # sorted: the init does not depend on module order
        shape = sd[name].shape
        special = "adaLN_modulation" in name or name.startswith("gen.final_layer.")
        if name == "modality_embed":
            new[name] = normal(shape, 0.5)
        elif ("norm" in name.rsplit(".", 2)[-2]) and len(shape) == 1:  # GroupNorm / LayerNorm
            new[name] = normal(shape, 0.1, 1.0) if name.endswith("weight") else normal(shape, 0.1)
        elif name.endswith("weight"):
            fan_in = math.prod(shape[1:])
            new[name] = normal(shape, ADA_GAIN / math.sqrt(H) if special else 1.0 / math.sqrt(fan_in))
        else:
            new[name] = normal(shape, 0.05 if special else 0.02)
    # O(1) latents after scaling, as with a trained VAE
    for k in ("encoder.conv_out.weight", "encoder.conv_out.bias"):
        new[k] = new[k] * (LATENT_GAIN / model.cfg["vae"]["scaling_factor"])
    model.load_state_dict(new, strict=True)
    return model


def export(cfg, out_path, seed=0, dtype="F32", model=None):
    """Write `model` (or a freshly initialised one) to `out_path`. Returns the model."""
    if model is None:
        model = init_weights(mm_ref.build_model(cfg), seed)
    tensors = {k: v.float() for k, v in model.state_dict().items()}
    safetensors_io.write(out_path, tensors, dtype=dtype,
                         metadata={"config": json.dumps(cfg, separators=(",", ":"))})
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("config")
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dtype", choices=["F32", "F16", "BF16"], default="F32")
    a = ap.parse_args()
    with open(a.config) as f:
        cfg = json.load(f)
    export(cfg, a.out, a.seed, a.dtype)
    print(f"wrote {a.out} ({os.path.getsize(a.out)} bytes)")


if __name__ == "__main__":
    main()
