#!/bin/sh
# The README's demo picture (docs/demo-sar2rgb.png): the bundled SAR sample, the default model's
# RGB translation of it (as `./bootstrap.sh demo` makes it: 8 steps, the default seed) and
# the simulated truth (mm_simulate with the sample's own seed and settings), a 512 x 512 crop of
# each, side by side, with the same display stretch as docs/quality/ (quality_report.py).
#
#   tests/bench/demo_picture.sh BUILD_DIR [OUT_PNG]
set -eu
[ $# -ge 1 ] || { echo "usage: $0 BUILD_DIR [OUT_PNG]" >&2; exit 2; }
B=$1
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$HERE/../..
OUT=${2:-$ROOT/docs/demo-sar2rgb.png}
W=$(mktemp -d /tmp/mm_demo_picture.XXXXXX)
trap 'rm -rf "$W"' EXIT
SAR=$ROOT/samples/demo_sar.tif
# the sample's simulator settings are in its metadata (samples/demo_sar.tif was made this way)
seed=$(gdalinfo "$SAR" | sed -n 's/^ *MM_SIMULATOR_SEED=//p')
[ -n "$seed" ] || { echo "$0: $SAR has no MM_SIMULATOR_SEED" >&2; exit 1; }
"$B/mm_simulate" -q --seed "$seed" --size 1024 --gsd 2 --looks 4 --sun 45 --only rgb "$W/truth"
# written as UInt16 reflectance like the truth (the demo's Byte RGB is the same values x 255),
# so that one display stretch serves both
"$B/mm_translate" -q --steps 8 --model "$ROOT/models/default.safetensors" \
    --profile rgb=reflectance:0:10000 "$SAR" "$W/demo_rgb.tif"
/usr/bin/python3 - "$SAR" "$W/demo_rgb.tif" "$W/truth_rgb.tif" "$OUT" "$HERE" <<'PY'
import sys
sys.path.insert(0, sys.argv[5])
from quality_report import display, montage
sar, gen, truth, out = sys.argv[1:5]
crop = lambda a: a[256:768, 256:768]
montage(out, [crop(display(sar, "sar")), crop(display(gen, "rgb")), crop(display(truth, "rgb"))])
PY
echo "$0: wrote $OUT (left to right: SAR, generated RGB, simulated truth; pixels 256-768)"
