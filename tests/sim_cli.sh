#!/bin/sh
# mm_simulate writes six georeferenced GeoTIFFs; mm_eval scores them: a raster against itself is
# perfect, against another scene it is not; the land-cover classifier recovers the labels of a
# real simulated image far above chance; bad input fails cleanly.
set -eu
sim=$1
eval=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$sim" -q --seed 4242 --size 160x120 --gsd 2 "$dir/a"
"$sim" -q --seed 4243 --size 160x120 --gsd 2 --only sar "$dir/b"
for m in rgb nir pan sar osm label; do
    [ -s "$dir/a_$m.tif" ] || fail "a_$m.tif missing"
done
[ ! -e "$dir/b_rgb.tif" ] || fail "--only sar wrote rgb"
ls "$dir" | grep -q part && fail "temporary file left"
gdalinfo "$dir/a_sar.tif" | grep -q "Size is 160, 120" || fail "size"
gdalinfo "$dir/a_sar.tif" | grep -q "UTM zone 33N" || fail "CRS"
gdalinfo "$dir/a_sar.tif" | grep -q "MM_MODALITY=sar" || fail "modality tag"
gdalinfo "$dir/a_sar.tif" | grep -q "SYNTHETIC=YES" || fail "synthetic tag"

# same seed, same pixels
"$sim" -q --seed 4242 --size 160x120 --gsd 2 --only sar "$dir/c"
cmp -s "$dir/a_sar.tif" "$dir/c_sar.tif" || fail "not deterministic"

"$eval" --json --modality sar "$dir/a_sar.tif" "$dir/a_sar.tif" | grep -q '"psnr": inf' || fail "self PSNR"
"$eval" --json --modality sar "$dir/a_sar.tif" "$dir/b_sar.tif" | grep -q '"psnr": inf' && fail "other scene PSNR inf"

"$eval" --fit-classifier osm --out "$dir/osm.clf" --scenes 10 >/dev/null
acc=$("$eval" --json --modality osm --labels "$dir/a_label.tif" --classifier "$dir/osm.clf" \
      "$dir/a_osm.tif" "$dir/a_osm.tif" | sed 's/.*"accuracy": \([0-9.]*\).*/\1/')
echo "osm classifier accuracy on a real simulated map: $acc"
awk -v a="$acc" 'BEGIN { exit !(a > 0.8) }' || fail "osm classifier accuracy $acc"

# bad input: clear message, non-zero exit
if "$eval" "$dir/a_sar.tif" "$dir/missing.tif" 2>"$dir/err"; then fail "missing file accepted"; fi
grep -q "cannot open" "$dir/err" || fail "message: $(cat "$dir/err")"
if "$eval" "$dir/a_rgb.tif" "$dir/a_sar.tif" 2>"$dir/err"; then fail "band mismatch accepted"; fi
if "$sim" --size 0 "$dir/x" 2>"$dir/err"; then fail "size 0 accepted"; fi
echo "1 passed, 0 failed"
