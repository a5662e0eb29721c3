#!/bin/sh
# mm_generate, mm_embed and the seamless mode from the command line, with the bundled test model
# (1-2 steps): output grids and provenance, seamless -srcwin equal to the same region of the full
# seamless run (bit for bit), and bad input. Usage: tools.sh BUILD_DIR MODEL
set -u
B=$1
MODEL=$2
TEST_NAME=mm_tools_test
. "$(dirname "$0")/../lib/cli.sh" # $T, fail, expect, no_file
G="$B/mm_generate -q --threads 1 --steps 1 --model $MODEL"
E="$B/mm_embed -q --threads 1 --model $MODEL"
MT="$B/mm_translate -q --threads 1 --model $MODEL"

"$B/mm_make_samples" "$T" 72 54 >/dev/null || { echo "FAIL: mm_make_samples"; exit 1; }

# --- mm_generate: -te/-tr/-t_srs, one file per modality, provenance
expect 0 "" $G -te 600000 4000000 600500 4000300 -tr 10 10 -t_srs EPSG:32633 -t "sar:$T/g_a.tif" "$T/g_rgb.tif"
gdalinfo "$T/g_rgb.tif" >"$T/i1.txt"; gdalinfo "$T/g_a.tif" >"$T/i2.txt"
grep -q "Size is 50, 30" "$T/i1.txt" || fail "generate: size"
grep -q "Origin = (600000.000000000000000,4000300.000000000000000)" "$T/i1.txt" || fail "generate: origin"
grep -q 'ID\["EPSG",32633\]' "$T/i1.txt" || fail "generate: CRS"
grep -q "Band 3" "$T/i1.txt" || fail "generate: rgb bands"
grep -q "Type=Float32" "$T/i2.txt" || fail "generate: sar Float32 dB"
grep -q "Size is 50, 30" "$T/i2.txt" || fail "generate: second output size"
for k in SYNTHETIC=YES MM_MODALITY=sar "MM_JOINT=sar,rgb" MM_STEPS=1 MM_TOOL=mm_generate MM_TILING=blend \
         "MM_MODEL_SHA256=$(sha256sum "$MODEL" | cut -c1-64)"; do
    grep -q "$k" "$T/i2.txt" || fail "generate: $k"
done
# -ts, and -like (size, geotransform, CRS of a file); the same seed gives the same pixels whatever
# the way the grid was given
expect 0 "" $G -te 500000 4999460 500720 5000000 -ts 72 54 -t_srs EPSG:32632 "$T/ts_nir.tif"
expect 0 "" $G -like "$T/scene_sar.tif" "$T/like_nir.tif"
gdalinfo "$T/like_nir.tif" | grep -q "Size is 72, 54" || fail "-like: size"
gdalinfo "$T/like_nir.tif" | grep -q "Origin = (500000.000000000000000,5000000.000000000000000)" || fail "-like: origin"
gdal_translate -q -of ENVI "$T/ts_nir.tif" "$T/a.img" && gdal_translate -q -of ENVI "$T/like_nir.tif" "$T/b.img"
cmp -s "$T/a.img" "$T/b.img" || fail "-ts and -like grids give different pixels"
# seamless generation
expect 0 "" $G --seamless --steps 2 -like "$T/scene_sar.tif" "$T/sl_rgb.tif" "$T/sl_osm.tif"
gdalinfo "$T/sl_osm.tif" | grep -q "MM_TILING=seamless" || fail "generate --seamless: MM_TILING"
# errors: usage (2), bad grid or modality (1), nothing written
expect 2 "no output grid" $G "$T/x_rgb.tif"
expect 2 "-like takes the whole grid" $G -like "$T/scene_sar.tif" -tr 10 10 "$T/x_rgb.tif"
expect 2 "exactly one of -tr" $G -te 0 0 10 10 "$T/x_rgb.tif"
expect 2 "XMAX > XMIN" $G -te 10 0 0 10 -tr 1 1 "$T/x_rgb.tif"
expect 2 "no output" $G -te 0 0 10 10 -tr 1 1
expect 1 "not a coordinate reference system" $G -te 0 0 10 10 -tr 1 1 -t_srs EPSG:999999 "$T/x_rgb.tif"
expect 1 "cannot tell the modality of the output" $G -te 0 0 10 10 -tr 1 1 "$T/x.tif"
expect 1 "has no modality 'dem'" $G -te 0 0 10 10 -tr 1 1 -t "dem:$T/x_rgb.tif"
expect 1 "two outputs are 'rgb'" $G -te 0 0 10 10 -tr 1 1 "$T/x_rgb.tif" -t "rgb:$T/y.tif"
expect 1 "cannot open" $G -like "$T/missing.tif" "$T/x_rgb.tif"
expect 0 "warning: .*no coordinate reference system" $G -te 0 0 40 40 -tr 1 1 "$T/nocrs_rgb.tif"
no_file "$T/x_rgb.tif"; no_file "$T/x.tif"
expect 1 "cannot create" $G -te 0 0 10 10 -tr 1 1 "$T/rgb_ok.tif" -t "sar:$T/no/dir/x.tif"
no_file "$T/rgb_ok.tif"

# --- seamless translation: -srcwin equals the same region of the full run, bit for bit, on a
# raster wide enough (8 windows) that the -srcwin run samples only part of the canvas
"$B/mm_make_samples" "$T/wide" 200 40 >/dev/null 2>&1 || { mkdir -p "$T/wide" && "$B/mm_make_samples" "$T/wide" 200 40 >/dev/null; }
expect 0 "" $MT --seamless --steps 1 --sampler euler -ot Float32 --batch 3 "$T/wide/scene_sar.tif" "$T/sf_rgb.tif"
expect 0 "" $MT --seamless --steps 1 --sampler euler -ot Float32 --batch 2 -srcwin 150 5 40 30 "$T/wide/scene_sar.tif" "$T/sw_rgb.tif"
gdal_translate -q -of ENVI -srcwin 150 5 40 30 "$T/sf_rgb.tif" "$T/c.img" && gdal_translate -q -of ENVI "$T/sw_rgb.tif" "$T/d.img"
cmp -s "$T/c.img" "$T/d.img" || fail "seamless -srcwin output differs from the full run's region"
gdalinfo "$T/sf_rgb.tif" | grep -q "MM_TILING=seamless" || fail "translate --seamless: MM_TILING"
expect 1 "runs the model" $MT --seamless --processor identity "$T/scene_sar.tif" "$T/x_rgb.tif"
no_file "$T/x_rgb.tif"

# --- mm_embed: token resolution (cell 4 px for the test model), hidden bands, nodata
expect 0 "" $E "$T/scene_sar.tif" "$T/emb.tif"
gdalinfo "$T/emb.tif" >"$T/ie.txt"
grep -q "Size is 18, 14" "$T/ie.txt" || fail "embed: size (ceil(72/4), ceil(54/4))"
grep -q "Pixel Size = (40.000000000000000,-40.000000000000000)" "$T/ie.txt" || fail "embed: pixel size"
grep -q "Origin = (500000.000000000000000,5000000.000000000000000)" "$T/ie.txt" || fail "embed: origin"
grep -q "Band 64 .*Type=Float32" "$T/ie.txt" || fail "embed: 64 Float32 bands"
grep -q "MM_TOKEN_CELL=4" "$T/ie.txt" || fail "embed: MM_TOKEN_CELL"
grep -q "NoData Value=" "$T/ie.txt" || fail "embed: nodata"
gdalinfo -stats -b 1 "$T/emb.tif" 2>/dev/null | grep -q "STATISTICS_VALID_PERCENT=100" && fail "embed: the nodata corner is not nodata"
# -srcwin (pixels 13..43 x 6..26): the token cells it touches (3..11 x 1..7), bit-identical to
# the same cells of the full run; -projwin of the same window gives the same file
expect 0 "" $E -srcwin 13 6 30 20 "$T/scene_sar.tif" "$T/emb_w.tif"
gdalinfo "$T/emb_w.tif" >"$T/iw.txt"
grep -q "Size is 8, 6" "$T/iw.txt" || fail "embed -srcwin: size"
grep -q "Origin = (500120.000000000000000,4999960.000000000000000)" "$T/iw.txt" || fail "embed -srcwin: origin"
gdal_translate -q -of ENVI -srcwin 3 1 8 6 "$T/emb.tif" "$T/e1.img" && gdal_translate -q -of ENVI "$T/emb_w.tif" "$T/e2.img"
cmp -s "$T/e1.img" "$T/e2.img" || fail "embed -srcwin differs from the same cells of the full run"
expect 0 "" $E -projwin 500130 4999940 500430 4999740 "$T/scene_sar.tif" "$T/emb_p.tif"
gdal_translate -q -of ENVI "$T/emb_p.tif" "$T/e3.img"
cmp -s "$T/e2.img" "$T/e3.img" || fail "embed -projwin differs from the same -srcwin"
expect 1 "not inside" $E -srcwin 60 0 20 10 "$T/scene_sar.tif" "$T/x.tif"
expect 1 "not inside" $E -projwin 499000 5000000 500100 4999900 "$T/scene_sar.tif" "$T/x.tif"
expect 2 "not both" $E -srcwin 0 0 8 8 -projwin 500000 5000000 500080 4999920 "$T/scene_sar.tif" "$T/x.tif"
expect 2 "must be a number" $E -projwin 500000 5000000 east 4999920 "$T/scene_sar.tif" "$T/x.tif"
# --aoi: cells outside nodata, MM_AOI
printf '%s' '{"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32632"}}, "features": [{"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [[[500000, 5000000], [500300, 5000000], [500000, 4999700], [500000, 5000000]]]}}]}' >"$T/aoi.geojson"
expect 0 "" $E --aoi "$T/aoi.geojson" "$T/scene_sar.tif" "$T/emb_aoi.tif"
gdalinfo "$T/emb_aoi.tif" | grep -q "MM_AOI=" || fail "embed --aoi: MM_AOI"
# mm_generate --gsd: generated at 20 m, resampled onto the 10 m -like grid; both outputs renamed
# into place together; nothing left on failure
expect 0 "" $G --gsd 20 -like "$T/scene_sar.tif" "$T/gg_rgb.tif" -t "sar:$T/gg_b.tif"
for f in gg_rgb gg_b; do
    gdalinfo "$T/$f.tif" >"$T/igg.txt"
    grep -q "Size is 72, 54" "$T/igg.txt" || fail "generate --gsd: $f size"
    grep -q "Origin = (500000.000000000000000,5000000.000000000000000)" "$T/igg.txt" || fail "generate --gsd: $f origin"
    grep -q "MM_GSD=20" "$T/igg.txt" || fail "generate --gsd: $f MM_GSD"
done
ls -a "$T" | grep -q mmgsd && fail "generate --gsd: a working file is left"
expect 1 "cannot create" $G --gsd 20 -like "$T/scene_sar.tif" "$T/gg2_rgb.tif" -t "sar:$T/no/dir/x.tif"
no_file "$T/gg2_rgb.tif"
# mm_generate --aoi on the -like grid: windows outside skipped, pixels outside masked; an area
# off the grid: an error, nothing written
$B/mm_generate --threads 1 --steps 1 --model "$MODEL" -like "$T/scene_sar.tif" --aoi "$T/aoi.geojson" "$T/gaoi_rgb.tif" >/dev/null 2>"$T/err.txt" ||
    fail "generate --aoi: $(cat "$T/err.txt")"
grep -Eq "[1-9][0-9]* of [0-9]+ windows outside the AOI skipped" "$T/err.txt" || fail "generate --aoi: no window skipped"
gdalinfo "$T/gaoi_rgb.tif" | grep -q "Mask Flags: PER_DATASET" || fail "generate --aoi: no mask"
expect 1 "does not overlap the output grid" $G -te 0 0 320 320 -tr 10 10 -t_srs EPSG:32632 --aoi "$T/aoi.geojson" "$T/x_rgb.tif"
no_file "$T/x_rgb.tif"
expect 1 "multiple of the token cell" $E --overlap 6 "$T/scene_sar.tif" "$T/x.tif"
expect 1 "has 3 bands and none is labelled VH" $E -s sar "$T/scene_rgb.tif" "$T/x.tif"
no_file "$T/x.tif"
expect 2 "expected SRC and DST" $E "$T/scene_sar.tif"

[ "$fails" -eq 0 ] && echo "all mm_generate / mm_embed / seamless command-line checks passed"
[ "$fails" -eq 0 ]
