"""The value conventions between stored rasters and the model's [-1, 1] (docs/simulator.md,
normalisation), in one place for the Python side: training data (simdata), the VAE round trip
(vae_roundtrip.py) and the quality report's pictures (tests/bench/quality_report.py).

  rgb, nir, pan: reflectance r (stored as r x REFLECTANCE_SCALE) -> 2 r - 1
  sar: sigma0 in dB, clipped to [SAR_DB_MIN, SAR_DB_MAX] -> (dB + 10) / 15
  osm: 8-bit colours c -> c / 127.5 - 1

The C side has its own copy in libmm's geo profiles (models/default-config.json "profiles").
"""
import numpy as np

REFLECTANCE_SCALE = 10000.0  # UInt16 reflectance, as the simulator and mm_translate write it
SAR_DB_MIN, SAR_DB_MAX = -25.0, 5.0


def sar_db(a):
    """SAR as stored -> dB. The simulator writes linear intensity (never negative); the tools
    write dB. A raster with no negative value is taken as linear."""
    a = np.asarray(a, np.float64)
    if (a >= 0).all():
        return 10 * np.log10(np.maximum(a, 1e-12))
    return a


def to_model(m, a, reflectance_scale=REFLECTANCE_SCALE, sar_window=(SAR_DB_MIN, SAR_DB_MAX)):
    """Stored units -> the model's [-1, 1], float32 (computed in float32, as training always
    was: the same seed gives bit-identical data). SAR in dB (see sar_db), its window
    (lo, hi) mapped to [-1, 1]: the dB range of the model config's SAR profile."""
    a = np.asarray(a, np.float32)
    if m in ("rgb", "nir", "pan"):
        x = 2 * a - 1 if reflectance_scale == 1 else 2 * a / np.float32(reflectance_scale) - 1
    elif m == "sar":
        lo, hi = sar_window
        x = (np.clip(a, lo, hi) - np.float32((lo + hi) / 2)) / np.float32((hi - lo) / 2)
    else:
        x = a / 127.5 - 1
    return x


def from_model(m, x, sar_window=(SAR_DB_MIN, SAR_DB_MAX)):
    """The model's [-1, 1] -> stored units: UInt16 reflectance, SAR in dB (as mm_translate writes
    SAR targets), 8-bit OSM colours."""
    x = np.clip(np.asarray(x, np.float64), -1, 1)
    if m in ("rgb", "nir", "pan"):
        return np.round((x + 1) * (REFLECTANCE_SCALE / 2)).astype(np.uint16)
    if m == "sar":
        lo, hi = sar_window
        return (x * ((hi - lo) / 2) + (lo + hi) / 2).astype(np.float32)
    return np.round((x + 1) * 127.5).astype(np.uint8)
