"""Minimal safetensors reader/writer (F32, F16, BF16) for the MetaEarth-MM reference.

File layout (see docs/model-format.md):

    u64 little-endian N | N bytes of JSON header | data

The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets
relative to the start of the data section) plus an optional "__metadata__" object whose values
are strings. This writer lays the tensors out contiguously in sorted-by-name order, starting at
offset 0, with no gaps, and pads the JSON header with trailing spaces to a multiple of 8 bytes.
The model config JSON text is stored at __metadata__["config"].

No dependency beyond numpy and torch (the `safetensors` package is not available here).
"""

import json
import math
import os
import struct

import numpy as np
import torch

DTYPE_SIZES = {"F32": 4, "F16": 2, "BF16": 2}
MAX_HEADER = 100_000_000


def _to_bytes(t, dtype):
    """Little-endian bytes of tensor `t` converted to safetensors dtype `dtype`."""
    if isinstance(t, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(t))
    t = t.detach().cpu()
    if dtype == "F32":
        return t.to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
    if dtype == "F16":
        return t.to(torch.float32).to(torch.float16).contiguous().numpy().astype("<f2").tobytes()
    if dtype == "BF16":
        # torch rounds fp32 -> bf16 to nearest, ties to even.
        b = t.to(torch.float32).to(torch.bfloat16).contiguous().view(torch.int16)
        return b.numpy().astype("<i2").tobytes()
    raise ValueError(f"unsupported dtype {dtype!r}")


def write(path, tensors, dtype="F32", metadata=None):
    """Write `tensors` (name -> torch tensor or numpy array) to `path`.

    `dtype` is one of F32/F16/BF16 for all tensors, or a dict name -> dtype.
    `metadata` is a dict of str -> str (stored as "__metadata__").
    """
    names = sorted(tensors)
    header = {}
    if metadata:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError("__metadata__ keys and values must be strings")
        header["__metadata__"] = dict(metadata)
    blobs = []
    offset = 0
    for name in names:
        if not name or len(name.encode("utf-8")) > 1024 or name == "__metadata__":
            raise ValueError(f"bad tensor name {name!r}")
        dt = dtype[name] if isinstance(dtype, dict) else dtype
        if dt not in DTYPE_SIZES:
            raise ValueError(f"unsupported dtype {dt!r}")
        t = tensors[name]
        shape = [int(s) for s in t.shape]
        blob = _to_bytes(t, dt)
        assert len(blob) == int(np.prod(shape, dtype=np.int64)) * DTYPE_SIZES[dt]
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * ((-len(text)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def _decode(raw, dt, shape):
    if dt == "F32":
        a = np.frombuffer(raw, dtype="<f4").astype(np.float32)
    elif dt == "F16":
        a = np.frombuffer(raw, dtype="<f2").astype(np.float32)
    elif dt == "BF16":
        a = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    else:
        raise ValueError(f"unsupported dtype {dt!r}")
    return a.reshape(shape)


def read(path, validate=True):
    """Read a safetensors file. Returns (tensors, metadata, dtypes).

    tensors: name -> float32 torch tensor (F16/BF16 are widened exactly);
    metadata: the "__metadata__" dict (or {}); dtypes: name -> stored dtype.
    With `validate`, applies the structural checks of docs/model-format.md.
    """
    size = os.path.getsize(path)
    if size < 8:
        raise ValueError("file shorter than 8 bytes")
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        if n > MAX_HEADER or 8 + n > size:
            raise ValueError("bad header length")
        head = f.read(n)

    def no_dupes(pairs):
        d = {}
        for k, v in pairs:
            if k in d:
                raise ValueError(f"duplicate key {k!r}")
            d[k] = v
        return d

    header = json.loads(head.decode("utf-8"), object_pairs_hook=no_dupes)
    if not isinstance(header, dict):
        raise ValueError("header is not a JSON object")
    metadata = header.pop("__metadata__", {}) or {}
    data_len = size - 8 - n
    entries = []
    for name, e in header.items():
        if validate:
            if not name or len(name.encode("utf-8")) > 1024:
                raise ValueError(f"bad name {name!r}")
            if not isinstance(e, dict) or set(e) != {"dtype", "shape", "data_offsets"}:
                raise ValueError(f"{name}: entry must have exactly dtype, shape, data_offsets")
            if e["dtype"] not in DTYPE_SIZES:
                raise ValueError(f"{name}: unknown dtype {e['dtype']!r}")
            if not isinstance(e["shape"], list) or len(e["shape"]) > 8 or any(
                    not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in e["shape"]):
                raise ValueError(f"{name}: bad shape")
            off = e["data_offsets"]
            if not isinstance(off, list) or len(off) != 2 or any(
                    not isinstance(o, int) or isinstance(o, bool) or o < 0 for o in off):
                raise ValueError(f"{name}: bad data_offsets")
            b, en = off
            if not b <= en:
                raise ValueError(f"{name}: begin > end")
            if en - b != math.prod(e["shape"]) * DTYPE_SIZES[e["dtype"]]:
                raise ValueError(f"{name}: size does not match shape and dtype")
        entries.append((e["data_offsets"][0], e["data_offsets"][1], name, e))
    if validate:
        for k, v in metadata.items():
            if not isinstance(v, str):
                raise ValueError(f"__metadata__[{k!r}] is not a string")
        pos = 0
        for b, en, name, _ in sorted(entries):
            if b != pos:
                raise ValueError(f"{name}: gap or overlap in the data section")
            pos = en
        if pos != data_len:
            raise ValueError("tensors do not end exactly at the end of the file")
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n, shape=(data_len,)) \
        if data_len else np.zeros(0, np.uint8)
    tensors, dtypes = {}, {}
    for b, en, name, e in entries:
        tensors[name] = torch.from_numpy(_decode(data[b:en], e["dtype"], e["shape"]).copy())
        dtypes[name] = e["dtype"]
    return tensors, metadata, dtypes
