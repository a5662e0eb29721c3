#!/bin/sh
# mm_eval's real-data scores (docs/quality.md, "Real data") on small constructed rasters: the
# Wasserstein-1 distance of the band distributions is 0 for identical images and exactly the
# shift for a shifted one; the water AUC is 1, 0.5, 0 and 0.75 on constructed cases; the
# real-data classifier (rules + naive Bayes) fits, agrees with itself, and the water mask rule
# finds the water; bad input fails with a message.
set -eu
eval=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
S=16

# one band, S x S, from an awk expression of x (column) and y (row): an ASCII grid, then GeoTIFF
grid() { # NAME TYPE EXPR
    {
        printf 'ncols %d\nnrows %d\nxllcorner 500000\nyllcorner 4000000\ncellsize 10\n' $S $S
        awk -v s=$S "BEGIN { for (y = 0; y < s; y++) { for (x = 0; x < s; x++) printf \"%d \", $3; printf \"\\n\" } }"
    } >"$dir/$1.asc"
    gdal_translate -q -ot "$2" -a_srs EPSG:32633 "$dir/$1.asc" "$dir/$1.tif"
}
rgb() { # NAME R_EXPR G_EXPR B_EXPR: a 3-band UInt16 raster
    grid "$1_r" UInt16 "$2"
    grid "$1_g" UInt16 "$3"
    grid "$1_b" UInt16 "$4"
    gdalbuildvrt -q -separate "$dir/$1.vrt" "$dir/$1_r.tif" "$dir/$1_g.tif" "$dir/$1_b.tif"
    gdal_translate -q "$dir/$1.vrt" "$dir/$1.tif"
}
field() { "$eval" --json "$@" | sed "s/.*\"$F\": \([0-9.a-z-]*\).*/\1/"; }

# three columns of land cover by the rules: water (dark, bluish, smooth), vegetation (dark, no
# blue), bare (bright); reflectance x 10000
rgb cls 'x < 6 ? 300 : x < 11 ? 500 : 2000' 'x < 6 ? 400 : x < 11 ? 600 : 1800' \
    'x < 6 ? 400 : x < 11 ? 100 : 1500'
gdal_translate -q -scale 0 10000 500 10500 -ot UInt16 "$dir/cls.tif" "$dir/shifted.tif"

# Wasserstein-1: 0 against itself, 0.05 reflectance (500 / 10000) in every band when shifted
F=w1_mean
w=$(field --modality rgb "$dir/cls.tif" "$dir/cls.tif")
echo "W1 mean, identical: $w"
[ "$w" = "0.000000" ] || fail "W1 of identical images $w"
w=$(field --modality rgb "$dir/shifted.tif" "$dir/cls.tif")
echo "W1 mean, shifted by 500: $w"
[ "$w" = "0.050000" ] || fail "W1 of the shifted image $w"
"$eval" --json --modality rgb "$dir/shifted.tif" "$dir/cls.tif" | grep -o '"w1": 0.050000' | wc -l |
    grep -qx 3 || fail "W1 per band"

# water AUC on constructed cases: mask water in the left half, land in the right, the last
# column 255 (ignored)
grid mask Byte 'x == 15 ? 255 : x < 8 ? 1 : 0'
grid dark Float32 'x < 8 ? 100 : 200'
grid flat Float32 '7'
grid bright Float32 'x < 8 ? 200 : 100'
grid mixed Float32 'x < 8 ? 1 + 2 * (y % 2) : 2 + 2 * (y % 2)'
F=water_auc
for c in dark:1.00000 flat:0.50000 bright:0.00000 mixed:0.75000; do
    a=$(field --auc-only "$dir/${c%%:*}.tif" --water "$dir/mask.tif")
    echo "water AUC, ${c%%:*}: $a"
    [ "$a" = "${c##*:}" ] || fail "water AUC of ${c%%:*}: $a, expected ${c##*:}"
done
"$eval" --json --auc-only "$dir/dark.tif" --water "$dir/mask.tif" | grep -q '"water_pixels": 128, "land_pixels": 112' ||
    fail "water and land pixel counts (the 255 column ignored)"

# the real-data classifier: fitted on the image (every class present), it agrees with itself
"$eval" --fit-classifier real-rgb --out "$dir/real.clf" "$dir/cls.tif" | grep -q "water 0.3750, vegetation 0.3125" ||
    fail "rule classes of the fitting image"
head -1 "$dir/real.clf" | grep -q "^mm_eval-classifier 3 rgb 3 9 .* naive-bayes 3 water vegetation bare-built$" ||
    fail "classifier header: $(head -1 "$dir/real.clf")"
F=miou
m=$(field --classifier "$dir/real.clf" "$dir/cls.tif" "$dir/cls.tif")
[ "$m" = "1.00000" ] || fail "mIoU of an image with itself $m"
# the water mask of the reference: the rule's water, on the image's grid
"$eval" --make-water-mask "$dir/cls.tif" --out "$dir/water.tif" | grep -q "0.3750 water" || fail "water mask fraction"
gdalinfo "$dir/water.tif" | grep -q "UTM zone 33N" || fail "water mask CRS"
[ ! -e "$dir/water.tif.part" ] || fail "temporary file left"
F=water_auc
a=$(field --classifier "$dir/real.clf" --water "$dir/water.tif" "$dir/cls.tif" "$dir/cls.tif")
echo "water AUC of the class image against its own water mask: $a"
[ "$a" = "1.00000" ] || fail "water AUC $a"

# bad input: a clear message and a non-zero exit
if "$eval" --auc-only "$dir/dark.tif" 2>"$dir/err" >/dev/null; then fail "--auc-only without --water"; fi
grep -q "needs --water" "$dir/err" || fail "message: $(cat "$dir/err")"
if "$eval" --auc-only "$dir/dark.tif" --water "$dir/missing.tif" 2>"$dir/err" >/dev/null; then fail "missing mask"; fi
grep -q "cannot open" "$dir/err" || fail "message: $(cat "$dir/err")"
gdal_translate -q -srcwin 0 0 8 8 "$dir/mask.tif" "$dir/small_mask.tif"
if "$eval" --water "$dir/small_mask.tif" "$dir/cls.tif" "$dir/cls.tif" 2>"$dir/err" >/dev/null; then
    fail "mask of another size accepted"
fi
grep -q "water mask .* is 8 x 8" "$dir/err" || fail "message: $(cat "$dir/err")"
gdal_translate -q -srcwin 0 0 8 8 "$dir/cls.tif" "$dir/small.tif"
if "$eval" "$dir/small.tif" "$dir/cls.tif" 2>"$dir/err" >/dev/null; then fail "size mismatch accepted"; fi
grep -q "must match" "$dir/err" || fail "message: $(cat "$dir/err")"
if "$eval" --labels "$dir/mask.tif" --classifier "$dir/real.clf" "$dir/cls.tif" "$dir/cls.tif" \
    2>"$dir/err" >/dev/null; then fail "label map with the real-data classifier accepted"; fi
grep -q "real-data classifier" "$dir/err" || fail "message: $(cat "$dir/err")"
if "$eval" --fit-classifier real-rgb --out "$dir/x.clf" "$dir/dark.tif" 2>"$dir/err" >/dev/null; then
    fail "one-band fitting image accepted"
fi
grep -q "has 1 band" "$dir/err" || fail "message: $(cat "$dir/err")"
if "$eval" --fit-classifier real-rgb --out "$dir/x.clf" "$dir/shifted.tif" 2>"$dir/err" >/dev/null; then
    fail "fitting without water accepted"
fi
grep -q "no training pixel is water" "$dir/err" || fail "message: $(cat "$dir/err")"
echo "1 passed, 0 failed"
