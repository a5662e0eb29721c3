#!/usr/bin/env python3
"""Writes the malformed members of tests/fuzz/corpus/ (bad_*.safetensors): one small file per
class of header or layout error the reader must refuse without crashing. The four well-formed
seeds (empty, metadata_only, rich, zero_size) are older and kept as they are. Usage:
    python3 tests/fuzz/make_corpus.py tests/fuzz/corpus"""
import json
import os
import struct
import sys


def st(header, data=b"", length=None, raw=None):
    h = raw if raw is not None else json.dumps(header, separators=(",", ":")).encode()
    n = len(h) if length is None else length
    return struct.pack("<Q", n) + h + data


T = lambda dt, shape, off: {"dtype": dt, "shape": shape, "data_offsets": off}
CASES = {
    "truncated_length": b"\x10\x00\x00",
    "length_past_end": st({}, length=1 << 20),
    "length_overflow": st({}, length=(1 << 64) - 1),
    "not_json": st(None, raw=b"{not json"),
    "not_object": st(None, raw=b"[1,2,3]"),
    "tensor_not_object": st({"a": 3}),
    "unknown_dtype": st({"a": T("F128", [1], [0, 16])}, b"\0" * 16),
    "negative_dim": st({"a": T("F32", [-1], [0, 4])}, b"\0" * 4),
    "shape_overflow": st({"a": T("F32", [1 << 40, 1 << 40], [0, 4])}, b"\0" * 4),
    "size_mismatch": st({"a": T("F32", [2], [0, 4])}, b"\0" * 4),
    "offset_past_end": st({"a": T("F32", [1], [0, 4])}, b"\0" * 2),
    "offsets_reversed": st({"a": T("F32", [1], [4, 0])}, b"\0" * 4),
    "overlap": st({"a": T("F32", [1], [0, 4]), "b": T("F32", [1], [0, 4])}, b"\0" * 4),
    "gap": st({"a": T("F32", [1], [4, 8])}, b"\0" * 8),
    "too_many_dims": st({"a": T("F32", [1] * 40, [0, 4])}, b"\0" * 4),
    "empty_name": st({"": T("F32", [1], [0, 4])}, b"\0" * 4),
    "long_name": st({"n" * 4000: T("F32", [1], [0, 4])}, b"\0" * 4),
    "metadata_not_strings": st({"__metadata__": {"config": 7}}),
    "offsets_not_numbers": st({"a": T("F32", [1], ["0", "4"])}, b"\0" * 4),
    "duplicate_name": st(None, raw=b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
                                   b'"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', data=b"\0" * 8),
    "nul_in_header": st(None, raw=b'{"a\x00b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}',
                        data=b"\0" * 4),
}

if __name__ == "__main__":
    out = sys.argv[1]
    for name, blob in CASES.items():
        with open(os.path.join(out, "bad_%s.safetensors" % name), "wb") as f:
            f.write(blob)
    print("%d files in %s" % (len(CASES), out))
