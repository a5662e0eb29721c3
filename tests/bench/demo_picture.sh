#!/bin/sh
# The README's demo picture (docs/demo-sar2rgb.png): the bundled real Sentinel-1 sample
# (samples/s1_vh_texas.tif, VH sigma0 dB), the default model's RGB translation of it (as
# `./bootstrap.sh demo` makes it: 8 steps, the default seed) and the real Sentinel-2 image of
# the same place (samples/s2_rgb_texas.tif), a 512 x 512 crop of each, side by side. SAR is shown
# over -30..-5 dB, RGB over reflectance 0..0.35 (the same stretch for generated and real).
#
#   tests/bench/demo_picture.sh BUILD_DIR [OUT_PNG] [X0 Y0]
set -eu
[ $# -ge 1 ] || { echo "usage: $0 BUILD_DIR [OUT_PNG] [X0 Y0]" >&2; exit 2; }
B=$1
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$HERE/../..
OUT=${2:-$ROOT/docs/demo-sar2rgb.png}
X0=${3:-256}
Y0=${4:-256}
W=$(mktemp -d /tmp/mm_demo_picture.XXXXXX)
trap 'rm -rf "$W"' EXIT
SAR=$ROOT/samples/s1_vh_texas.tif
REAL=$ROOT/samples/s2_rgb_texas.tif
"$B/mm_translate" -q --steps 8 --model "${MODEL:-$ROOT/models/default.safetensors}" \
    --profile rgb=reflectance:0:10000 "$SAR" "$W/demo_rgb.tif"
/usr/bin/python3 - "$SAR" "$W/demo_rgb.tif" "$REAL" "$OUT" "$HERE" "$X0" "$Y0" <<'PY'
import sys
import numpy as np
from osgeo import gdal
sys.path.insert(0, sys.argv[5])
from quality_report import montage
sar, gen, real, out = sys.argv[1:5]
x0, y0 = int(sys.argv[6]), int(sys.argv[7])
def show(path, lo, hi):
    a = gdal.Open(path).ReadAsArray(x0, y0, 512, 512).astype(np.float64)
    a = a[None] if a.ndim == 2 else a
    v = np.clip((a - lo) / (hi - lo) * 255 + 0.5, 0, 255).astype(np.uint8)
    return np.repeat(v, 3, 0).transpose(1, 2, 0) if v.shape[0] == 1 else v.transpose(1, 2, 0)
montage(out, [show(sar, -30, -5), show(gen, 0, 3500), show(real, 0, 3500)])
PY
echo "$0: wrote $OUT (left to right: Sentinel-1 VH, generated RGB, real Sentinel-2 RGB;" \
     "pixels $X0..$((X0 + 512)), $Y0..$((Y0 + 512)))"
