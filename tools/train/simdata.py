"""The C scene simulator (sim/, libmmsim.so) from Python through ctypes, for training.

Modalities come back in the model's value range [-1, 1] (units.py: reflectance r -> 2 r - 1,
SAR dB clipped to [-25, 5] -> (dB + 10) / 15, 8-bit OSM colours c -> c / 127.5 - 1).
"""
import ctypes
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import units  # noqa: E402

MODALITIES = ["rgb", "sar", "nir", "pan", "osm"]
CHANNELS = {"rgb": 3, "sar": 1, "nir": 1, "pan": 1, "osm": 3}


class SimParams(ctypes.Structure):
    _fields_ = [("width", ctypes.c_int), ("height", ctypes.c_int), ("gsd", ctypes.c_double),
                ("sar_looks", ctypes.c_int), ("sun_elevation_deg", ctypes.c_double),
                ("origin_x", ctypes.c_double), ("origin_y", ctypes.c_double)]


def load(path=None):
    if path is None:
        path = os.environ.get("MM_SIM_LIB", "build/libmmsim.so")
    lib = ctypes.CDLL(path)
    lib.mm_sim_render.restype = ctypes.c_int
    lib.mm_sim_params_default.restype = None
    return lib


def render(lib, seed, size, gsd=2.0, looks=4, sun=45.0, origin=(0.0, 0.0)):
    """One scene: dict of float32 arrays in [-1, 1] per modality (C x size x size) + 'label'."""
    p = SimParams(size, size, gsd, looks, sun, origin[0], origin[1])
    n = size * size
    label = np.empty(n, np.uint8)
    rgb = np.empty(3 * n, np.float32)
    nir = np.empty(n, np.float32)
    pan = np.empty(n, np.float32)
    sar = np.empty(n, np.float32)
    osm = np.empty(3 * n, np.uint8)
    ptr = lambda a: a.ctypes.data_as(ctypes.c_void_p)  # noqa: E731
    rc = lib.mm_sim_render(ctypes.c_uint64(seed), ctypes.byref(p), ptr(label), ptr(rgb), ptr(nir),
                           ptr(pan), ptr(sar), ptr(osm))
    if rc != 0:
        raise RuntimeError("mm_sim_render failed")
    s = (size, size)
    return {
        "rgb": units.to_model("rgb", rgb, 1.0).reshape(3, *s),
        "nir": units.to_model("nir", nir, 1.0).reshape(1, *s),
        "pan": units.to_model("pan", pan, 1.0).reshape(1, *s),
        "sar": units.to_model("sar", sar).reshape(1, *s),
        "osm": units.to_model("osm", osm).reshape(3, *s),
        "label": label.reshape(s),
    }


def sample(lib, index, size, base_seed=0):
    """Training sample `index`: its own scene seed, window position, GSD and sun (all derived
    from (base_seed, index), so the same seed gives the same data)."""
    rng = np.random.Generator(np.random.Philox(key=base_seed * 1000003 + index))
    seed = int(rng.integers(0, 2**63))
    gsd = float(rng.uniform(1.5, 4.0))
    origin = (float(rng.uniform(-3000, 3000)), float(rng.uniform(-3000, 3000)))
    sun = float(rng.uniform(30, 65))
    return render(lib, seed, size, gsd=gsd, looks=4, sun=sun, origin=origin)


def write_png(path, img):
    """img: H x W x 3 uint8 (or H x W). Minimal PNG writer (zlib), so no imaging library is needed."""
    import struct
    import zlib
    img = np.asarray(img, np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    h, w, _ = img.shape
    raw = b"".join(b"\x00" + img[y].tobytes() for y in range(h))
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def to_uint8(x):
    """[-1, 1] C x H x W -> H x W x 3 uint8 (single band repeated)."""
    x = np.clip((np.asarray(x) + 1) * 127.5, 0, 255).astype(np.uint8)
    if x.shape[0] == 1:
        x = np.repeat(x, 3, axis=0)
    return x.transpose(1, 2, 0)
