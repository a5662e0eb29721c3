#!/bin/sh
# The seam metric of docs/tools.md: blend versus --seamless, for mm_generate and mm_translate, on a
# 192 x 192 scene with the bundled test model (window 32, overlap 8; random weights, so these are
# figures of the tiling, not of a trained model). Not part of ctest (about 10 s).
# Usage: seam_bench.sh BUILD_DIR [MODEL] [STEPS]
set -eu
B=$1
MODEL=${2:-$(dirname "$0")/../golden/tiny_model.safetensors}
STEPS=${3:-4}
T=$(mktemp -d "${TMPDIR:-/tmp}/mm_seam.XXXXXX")
trap 'rm -rf "$T"' EXIT
"$B/mm_make_samples" "$T" 192 192 >/dev/null
O="-q --threads 1 --steps $STEPS --model $MODEL --overlap 8"
for seed in 1 2 3; do
    "$B/mm_generate" $O --seed $seed -like "$T/scene_sar.tif" "$T/gb_$seed""_rgb.tif"
    "$B/mm_generate" $O --seed $seed --seamless -like "$T/scene_sar.tif" "$T/gs_$seed""_rgb.tif"
    "$B/mm_translate" $O --seed $seed "$T/scene_sar.tif" "$T/tb_$seed""_rgb.tif" 2>/dev/null
    "$B/mm_translate" $O --seed $seed --seamless "$T/scene_sar.tif" "$T/ts_$seed""_rgb.tif" 2>/dev/null
    printf "seed %s  generate blend:     " $seed; "$B/tests/geo/seam_metric" "$T/gb_$seed""_rgb.tif" 32 8 1
    printf "seed %s  generate seamless:  " $seed; "$B/tests/geo/seam_metric" "$T/gs_$seed""_rgb.tif" 32 8 2
    printf "seed %s  translate blend:    " $seed; "$B/tests/geo/seam_metric" "$T/tb_$seed""_rgb.tif" 32 8 1
    printf "seed %s  translate seamless: " $seed; "$B/tests/geo/seam_metric" "$T/ts_$seed""_rgb.tif" 32 8 2
done
