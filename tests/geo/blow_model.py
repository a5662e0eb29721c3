#!/usr/bin/env python3
"""Writes a copy of a model file whose network overflows: every F32 weight whose name matches
PATTERN (a substring; default: all) multiplied by FACTOR, so that sampling produces Inf and NaN
while every stored value stays finite (the loader refuses non-finite tensors).
Usage: blow_model.py IN OUT [FACTOR [PATTERN]]"""
import json
import struct
import sys

src, dst = sys.argv[1], sys.argv[2]
factor = float(sys.argv[3]) if len(sys.argv) > 3 else 1e30
pattern = sys.argv[4] if len(sys.argv) > 4 else ""
with open(src, "rb") as f:
    raw = f.read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
data = bytearray(raw[8 + n:])
for name, t in header.items():
    if name == "__metadata__" or t["dtype"] != "F32" or pattern not in name:
        continue
    a, b = t["data_offsets"]
    vals = struct.unpack("<%df" % ((b - a) // 4), data[a:b])
    big = [max(-3e38, min(3e38, v * factor)) for v in vals]
    data[a:b] = struct.pack("<%df" % len(big), *big)
with open(dst, "wb") as f:
    f.write(raw[:8 + n])
    f.write(data)
