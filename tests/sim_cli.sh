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

"$eval" --json --modality sar "$dir/a_sar.tif" "$dir/a_sar.tif" | grep -q '"psnr": null' || fail "self PSNR (identical rasters: +inf, written as JSON null)"
"$eval" --json --modality sar "$dir/a_sar.tif" "$dir/b_sar.tif" | grep -q '"psnr": inf' && fail "other scene PSNR inf"

"$eval" --fit-classifier osm --out "$dir/osm.clf" --scenes 10 >/dev/null
acc=$("$eval" --json --modality osm --labels "$dir/a_label.tif" --classifier "$dir/osm.clf" \
      "$dir/a_osm.tif" "$dir/a_osm.tif" | sed 's/.*"accuracy": \([0-9.]*\).*/\1/')
echo "osm classifier accuracy on a real simulated map: $acc"
[ "$acc" = "1.00000" ] || fail "osm classifier accuracy $acc (the nearest map colour of a rendering is its class)"
# a map whose colours are all a few levels off (every band + 6) is still read by the nearest colour
gdal_translate -q -scale 0 255 6 261 "$dir/a_osm.tif" "$dir/a_osm_off.tif"
acc=$("$eval" --json --modality osm --labels "$dir/a_label.tif" --classifier "$dir/osm.clf" \
      "$dir/a_osm_off.tif" "$dir/a_osm.tif" | sed 's/.*"accuracy": \([0-9.]*\).*/\1/')
echo "osm classifier accuracy on the map shifted by 6 levels: $acc"
awk -v a="$acc" 'BEGIN { exit !(a > 0.95) }' || fail "osm classifier accuracy on a shifted map $acc"
# an OSM classifier of the old format (naive Bayes, version 1) is refused, not silently used
printf 'mm_eval-classifier 1 osm 3 9 0.0039\n' >"$dir/old_osm.clf"
if "$eval" --labels "$dir/a_label.tif" --classifier "$dir/old_osm.clf" "$dir/a_osm.tif" "$dir/a_osm.tif" \
    2>"$dir/err" >/dev/null; then fail "old OSM classifier accepted"; fi
grep -q "refit" "$dir/err" || fail "message: $(cat "$dir/err")"

# FSIM: 1 for a raster against itself; lower the noisier the speckle of the same scene (4 and 1
# looks against 64 looks)
"$sim" -q --seed 4242 --size 160x120 --gsd 2 --looks 64 --only sar "$dir/l64"
"$sim" -q --seed 4242 --size 160x120 --gsd 2 --looks 1 --only sar "$dir/l1"
fsim() { "$eval" --json --modality sar "$1" "$2" | sed 's/.*"fsim": \([0-9.a-z-]*\).*/\1/'; }
f_self=$(fsim "$dir/a_sar.tif" "$dir/a_sar.tif")
f4=$(fsim "$dir/a_sar.tif" "$dir/l64_sar.tif")
f1=$(fsim "$dir/l1_sar.tif" "$dir/l64_sar.tif")
echo "FSIM: self $f_self, 4 looks $f4, 1 look $f1"
awk -v a="$f_self" 'BEGIN { exit !(a > 0.99999) }' || fail "FSIM(x, x) = $f_self"
awk -v a="$f4" -v b="$f1" 'BEGIN { exit !(a < 0.95 && b < a - 0.1) }' ||
    fail "FSIM does not fall with noise: $f4, $f1"
f_rgb=$("$eval" --json --modality rgb "$dir/a_rgb.tif" "$dir/a_rgb.tif" | grep -o '"fsim": [0-9.]*' | wc -l)
[ "$f_rgb" = 3 ] || fail "FSIM per band of RGB: $f_rgb values"

# class agreement of two modalities: high for the RGB and OSM of one scene, low across scenes
"$eval" --fit-classifier rgb --out "$dir/rgb.clf" --scenes 10 >/dev/null
ls "$dir" | grep -q '\.clf\.part' && fail "classifier temporary file left"
# a classifier that cannot be written: a clear error, non-zero, nothing under the final name
if "$eval" --fit-classifier nir --out "$dir/missing/nir.clf" --scenes 1 2>"$dir/err" >/dev/null; then
    fail "unwritable classifier path accepted"
fi
grep -q "cannot write '$dir/missing/nir.clf'" "$dir/err" || fail "message: $(cat "$dir/err")"
"$sim" -q --seed 4250 --size 160x120 --gsd 2 --only osm "$dir/other"
agree() { "$eval" --json --agreement "$1" "$2" --classifier-a "$dir/rgb.clf" --classifier-b "$dir/osm.clf" |
          sed 's/.*"agreement": \([0-9.]*\).*/\1/'; }
same=$(agree "$dir/a_rgb.tif" "$dir/a_osm.tif")
cross=$(agree "$dir/a_rgb.tif" "$dir/other_osm.tif")
echo "class agreement RGB/OSM: same scene $same, other scene $cross"
awk -v a="$same" -v b="$cross" 'BEGIN { exit !(a > 0.7 && b < a - 0.2) }' || fail "agreement $same vs $cross"
"$eval" --json --agreement "$dir/a_rgb.tif" "$dir/a_osm.tif" --classifier-a "$dir/rgb.clf" \
    --classifier-b "$dir/osm.clf" | grep -q '"texture_b": {"[a-z ]*": {"pixels": [1-9]' || fail "agreement texture"
if "$eval" --agreement "$dir/a_rgb.tif" "$dir/a_osm.tif" --classifier-a "$dir/osm.clf" \
    --classifier-b "$dir/osm.clf" 2>"$dir/err"; then fail "agreement with the wrong classifier accepted"; fi
grep -q "takes 3 bands\|classifier" "$dir/err" || fail "message: $(cat "$dir/err")"
if "$eval" --agreement "$dir/a_rgb.tif" "$dir/a_osm.tif" 2>"$dir/err"; then fail "agreement without classifiers"; fi
grep -q "classifier-a" "$dir/err" || fail "message: $(cat "$dir/err")"

# texture error: 0 for the reference itself, positive for another scene's raster
te=$("$eval" --json --labels "$dir/a_label.tif" --classifier "$dir/osm.clf" "$dir/a_osm.tif" "$dir/a_osm.tif" |
     sed 's/.*"texture_error": \([0-9.a-z]*\).*/\1/')
[ "$te" = "0.00000" ] || fail "texture error of the reference itself: $te"

# bad input: clear message, non-zero exit
if "$eval" "$dir/a_sar.tif" "$dir/missing.tif" 2>"$dir/err"; then fail "missing file accepted"; fi
grep -q "cannot open" "$dir/err" || fail "message: $(cat "$dir/err")"
if "$eval" "$dir/a_rgb.tif" "$dir/a_sar.tif" 2>"$dir/err"; then fail "band mismatch accepted"; fi
if "$sim" --size 0 "$dir/x" 2>"$dir/err"; then fail "size 0 accepted"; fi
echo "1 passed, 0 failed"
