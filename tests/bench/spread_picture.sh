#!/bin/sh
# docs/img/samples_spread.png (docs/batch.md, "Uncertainty"): --samples 4 on a 512 x 512 crop of
# the real sample with the default model at 8 steps, and a quicklook: SAR input | mean RGB |
# spread (root mean square of the bands' standard deviations, black 0 to yellow at its 99th
# percentile), each halved to 256 pixels; 4 bits a channel so the PNG stays under 300 KB.
# Usage: tests/bench/spread_picture.sh BUILD_DIR [OUT_DIR]
set -eu
B=$1
O=${2:-out/spread}
R=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$O"
"$B/mm_translate" --threads 1 --steps 8 --samples 4 --stac -srcwin 0 512 512 512 \
    "$R/samples/s1_vh_texas.tif" "$O/texas_rgb.tif"
/usr/bin/python3 - "$R" "$O" <<'PY'
import sys
import numpy as np
from osgeo import gdal
R, O = sys.argv[1:3]
sar = gdal.Open(R + "/samples/s1_vh_texas.tif").ReadAsArray(0, 512, 512, 512).astype(float)
sp = gdal.Open(O + "/texas_rgb.spread.tif").ReadAsArray().astype(float)
m = gdal.Open(O + "/texas_rgb.tif").ReadAsArray().astype(float)
rms = np.sqrt((sp ** 2).mean(0))
down = lambda a: a.reshape(a.shape[0] // 2, 2, a.shape[1] // 2, 2).mean((1, 3))
t = np.clip(down(rms) / np.percentile(rms, 99), 0, 1)
ramp = np.stack([np.clip(1.6 * t, 0, 1), np.clip(1.6 * t - 0.6, 0, 1),
                 np.clip(np.where(t < 0.5, 1.2 * t, 1.2 - 1.2 * t) + np.clip(2 * t - 1.6, 0, 1), 0, 1)]) * 255
gap, img = 6, np.full((3, 256, 3 * 256 + 12), 255, np.uint8)
img[:, :, :256] = np.clip((down(sar) + 25) / 15 * 255, 0, 255).astype(np.uint8)
img[:, :, 256 + gap:512 + gap] = np.stack([np.clip(down(b) * 255 / 60, 0, 255) for b in m]).astype(np.uint8)
img[:, :, 512 + 2 * gap:] = ramp.astype(np.uint8)
img = (img & 0xF0) | 0x08
d = gdal.GetDriverByName("MEM").Create("", img.shape[2], 256, 3, gdal.GDT_Byte)
for i in range(3):
    d.GetRasterBand(i + 1).WriteArray(img[i])
gdal.GetDriverByName("PNG").CreateCopy(R + "/docs/img/samples_spread.png", d, options=["ZLEVEL=9"])
lake = sar < -21
print("spread: median %.1f DN, 99th percentile %.1f; lake (SAR < -21 dB) %.2f, elsewhere %.2f"
      % (np.median(rms), np.percentile(rms, 99), rms[lake].mean(), rms[~lake].mean()))
PY
