#!/usr/bin/python3
"""Loss curves of a training run as a PNG, without a plotting library.

    /usr/bin/python3 tools/train/plot_loss.py WORK_DIR docs/training-loss.png

Panels, left to right: the VAE's L1 reconstruction loss, the DiT's flow-matching loss and, when
the run refined its decoder, the refined decoder's L1 reconstruction loss (log scale, all smoothed
over 4 points). Each logged value is one batch (every 25 steps).
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import simdata  # noqa: E402  (write_png)

# 5x7 digits for the axis labels
FONT = {
    "0": "01110100011001110101110011000101110", "1": "00100011000010000100001000010001110",
    "2": "01110100010000100010001000100011111", "3": "11110000010000101110000010000111110",
    "4": "00010001100101010010111110001000010", "5": "11111100001111000001000011000101110",
    "6": "00110010001000011110100011000101110", "7": "11111000010001000100010000100001000",
    "8": "01110100011000101110100011000101110", "9": "01110100011000101111000010001001100",
    ".": "00000000000000000000000000110001100", "e": "00000000000111010001111111000001110",
    "-": "00000000000000011111000000000000000",
}


def text(img, x, y, s, col=(0, 0, 0)):
    for ch in s:
        g = FONT.get(ch)
        if g:
            for i, bit in enumerate(g):
                if bit == "1":
                    img[y + i // 5, x + i % 5] = col
        x += 6


def panel(img, x0, y0, w, h, steps, vals, title_col):
    img[y0:y0 + h, x0] = 0
    img[y0 + h - 1, x0:x0 + w] = 0
    if len(vals) < 2:
        return
    v = np.log10(np.maximum(np.convolve(vals, np.ones(4) / 4, mode="valid"), 1e-6))
    s = steps[3:] if len(steps) > 3 else steps
    lo, hi = v.min(), v.max()
    if hi - lo < 1e-9:
        hi = lo + 1
    xs = (x0 + 2 + (s - s.min()) / max(1, s.max() - s.min()) * (w - 4)).astype(int)
    ys = (y0 + h - 3 - (v - lo) / (hi - lo) * (h - 6)).astype(int)
    for i in range(len(xs) - 1):
        n = max(abs(xs[i + 1] - xs[i]), abs(ys[i + 1] - ys[i]), 1)
        for t in np.linspace(0, 1, n + 1):
            img[int(ys[i] + t * (ys[i + 1] - ys[i])), int(xs[i] + t * (xs[i + 1] - xs[i]))] = title_col
    text(img, x0 + 4, y0 + 2, f"{10 ** hi:.3f}")
    text(img, x0 + 4, y0 + h - 12, f"{10 ** lo:.3f}")
    text(img, x0 + w - 40, y0 + h - 12, f"{int(s.max())}")


def main():
    work, out = sys.argv[1], sys.argv[2]
    curves = [("loss_vae.tsv", (200, 40, 40)), ("loss_dit.tsv", (40, 40, 200))]
    if os.path.exists(os.path.join(work, "loss_decoder.tsv")):
        curves.append(("loss_decoder.tsv", (40, 150, 40)))
    img = np.full((220, 320 * len(curves), 3), 255, np.uint8)
    for k, (name, col) in enumerate(curves):
        path = os.path.join(work, name)
        if os.path.exists(path):
            d = np.loadtxt(path, ndmin=2)
            panel(img, 10 + 320 * k, 10, 300, 200, d[:, 0], d[:, 1], col)
    simdata.write_png(out, img)


if __name__ == "__main__":
    main()
