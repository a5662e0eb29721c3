"""Reading checkpoints as their authors save them, and writing a libmm model file.

    load_inputs(paths, state_key=None) -> {name: torch.Tensor}

Formats: PyTorch pickles (torch.save of a state dict or of a dict holding one: .pt, .pth, .bin,
.ckpt), safetensors (F64/F32/F16/BF16 and integer dtypes, read here: the safetensors package is
not needed), and the `*.index.json` of a sharded checkpoint (its "weight_map" names each
tensor's shard, either format). Several inputs are read as one; a name in two of them is an
error. write_model() lays a libmm model file out as libmm requires (docs/model-format.md).
"""

import json
import os
import struct

import numpy as np
import torch

_ST_DTYPES = {
    "F64": (np.float64, 8), "F32": (np.float32, 4), "F16": (np.float16, 2), "BF16": (None, 2),
    "I64": (np.int64, 8), "I32": (np.int32, 4), "I16": (np.int16, 2), "I8": (np.int8, 1),
    "U8": (np.uint8, 1), "BOOL": (np.bool_, 1),
}


class ConvertError(Exception):
    """A problem with the user's inputs: reported as one message, exit status 1."""


def read_safetensors(path):
    """{name: tensor} of a safetensors file (bf16 widened to float32)."""
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise ConvertError(f"{path}: not a safetensors file (shorter than 8 bytes)")
        n = struct.unpack("<Q", raw)[0]
        if n > 100_000_000:
            raise ConvertError(f"{path}: not a safetensors file (header of {n} bytes)")
        try:
            header = json.loads(f.read(n))
        except ValueError as e:
            raise ConvertError(f"{path}: invalid safetensors header: {e}")
        data = f.read()
    out = {}
    for name, ent in header.items():
        if name == "__metadata__":
            continue
        dt = ent.get("dtype")
        if dt not in _ST_DTYPES:
            raise ConvertError(f"{path}: tensor '{name}' has dtype {dt}, which is not supported")
        b, e = ent["data_offsets"]
        shape = tuple(ent["shape"])
        buf = data[b:e]
        if len(buf) != e - b:
            raise ConvertError(f"{path}: tensor '{name}' lies beyond the end of the file")
        if dt == "BF16":
            u = np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16
            arr = u.view(np.float32)
        else:
            arr = np.frombuffer(buf, dtype=np.dtype(_ST_DTYPES[dt][0]).newbyteorder("<"))
        out[name] = torch.from_numpy(arr.astype(arr.dtype.newbyteorder("="), copy=True).reshape(shape))
    return out


def _is_state_dict(d):
    return isinstance(d, dict) and d and all(isinstance(v, torch.Tensor) for v in d.values())


def read_torch(path, state_key=None):
    """The state dict of a torch.save file: the file's dict itself, or its `state_key` entry."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except TypeError:  # a torch without weights_only
        obj = torch.load(path, map_location="cpu")
    except Exception as e:  # noqa: BLE001 - any unpickling failure is the input's
        raise ConvertError(f"{path}: cannot read as a PyTorch checkpoint: {e}")
    if state_key is not None:
        if not isinstance(obj, dict) or state_key not in obj:
            keys = sorted(obj) if isinstance(obj, dict) else []
            raise ConvertError(f"{path}: no '{state_key}' in the checkpoint (it has {keys})")
        obj = obj[state_key]
    if not _is_state_dict(obj):
        keys = sorted(k for k in obj) if isinstance(obj, dict) else type(obj).__name__
        raise ConvertError(f"{path}: not a state dict of tensors; choose one with --state-key "
                           f"(top-level entries: {keys})")
    return dict(obj)


def read_one(path, state_key=None):
    if path.endswith(".safetensors"):
        return read_safetensors(path)
    return read_torch(path, state_key)


def read_index(path, state_key=None):
    """A sharded checkpoint: the shards its weight_map names, exactly the tensors it lists."""
    try:
        with open(path) as f:
            idx = json.load(f)
        wm = idx["weight_map"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConvertError(f"{path}: not a checkpoint index (weight_map): {e}")
    base = os.path.dirname(path)
    out = {}
    for shard in sorted(set(wm.values())):
        part = read_one(os.path.join(base, shard), state_key)
        want = {k for k, v in wm.items() if v == shard}
        missing = sorted(want - set(part))
        if missing:
            raise ConvertError(f"{path}: shard {shard} lacks {missing[:5]} that the index names")
        extra = sorted(set(part) - want)
        if extra:
            raise ConvertError(f"{path}: shard {shard} holds {extra[:5]} that the index does not name")
        out.update(part)
    return out


def load_inputs(paths, state_key=None):
    tensors, origin = {}, {}
    for p in paths:
        if not os.path.exists(p):
            raise ConvertError(f"{p}: no such file")
        part = read_index(p, state_key) if p.endswith(".index.json") else read_one(p, state_key)
        for k, v in part.items():
            if k in tensors:
                raise ConvertError(f"tensor '{k}' is in both {origin[k]} and {p}")
            tensors[k], origin[k] = v, p
    return tensors


def write_model(path, tensors, config_json, dtype="F32"):
    """A libmm model file: tensors sorted by name, contiguous from offset 0, config in metadata.
    Written under a temporary name and renamed, so a failed run leaves no partial file."""
    names = sorted(tensors)
    blobs, header, off = [], {}, 0
    for n in names:
        t = tensors[n].detach().to(torch.float32).contiguous()
        if dtype == "F32":
            b = t.numpy().astype("<f4").tobytes()
        elif dtype == "F16":
            b = t.to(torch.float16).numpy().astype("<f2").tobytes()
        else:
            b = t.to(torch.bfloat16).view(torch.int16).numpy().astype("<i2").tobytes()
        header[n] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = {"config": config_json, "converted_by": "mm_convert"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = path + ".part"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)
