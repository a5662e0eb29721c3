#!/bin/sh
# mm_translate from the command line, with the bundled test model (2 steps) on the samples:
# extent independence (-srcwin equals the same region of the full run, bit for bit), the output
# grid and provenance, GDAL-style options, and bad input (clear message, non-zero exit, nothing
# left under the output name). Usage: cli.sh BUILD_DIR MODEL
set -u
B=$1
MODEL=$2
TEST_NAME=mm_translate_test
. "$(dirname "$0")/../lib/cli.sh" # $T, fail, expect, no_file
MT="$B/mm_translate -q --threads 1 --steps 2 --model $MODEL"
MT1="$B/mm_translate -q --threads 1 --steps 1 --guidance 1 --model $MODEL" # cheaper
MTI="$B/mm_translate -q --processor identity --model $MODEL"           # no model run


"$B/mm_make_samples" "$T" 72 54 >/dev/null || { echo "FAIL: mm_make_samples"; exit 1; }

# --- a full run (72 x 54 pixels: 3 x 2 windows of 32 with the overlap of 8), its grid and provenance
expect 0 "" $MT1 "$T/scene_sar.tif" "$T/out_rgb.tif"
gdalinfo -json "$T/out_rgb.tif" >"$T/info.json" || fail "gdalinfo"
grep -q '"size":' "$T/info.json" || fail "gdalinfo -json"
gdalinfo "$T/out_rgb.tif" >"$T/info.txt"
grep -q "Size is 72, 54" "$T/info.txt" || fail "output size"
grep -q "Origin = (500000.000000000000000,5000000.000000000000000)" "$T/info.txt" || fail "output origin"
grep -q 'ID\["EPSG",32632\]' "$T/info.txt" || fail "output CRS"
grep -q "SYNTHETIC=YES" "$T/info.txt" || fail "SYNTHETIC=YES"
grep -q "MM_MODALITY=rgb" "$T/info.txt" || fail "MM_MODALITY"
grep -q "MM_STEPS=1" "$T/info.txt" || fail "MM_STEPS"
grep -q "MM_MODEL_SHA256=$(sha256sum "$MODEL" | cut -c1-64)" "$T/info.txt" || fail "MM_MODEL_SHA256"
grep -q "COMPRESSION=DEFLATE" "$T/info.txt" || fail "DEFLATE"
grep -q "Block=256x256" "$T/info.txt" || fail "tiled"
grep -q "NoData Value=0" "$T/info.txt" || fail "nodata"

# --- extent independence: -srcwin == the same region of the full run, bit for bit, in float (no
# rounding hides a difference), with other batch sizes
expect 0 "" $MT -ot Float32 --batch 5 "$T/scene_sar.tif" "$T/full_f_rgb.tif"
expect 0 "" $MT -ot Float32 --batch 1 -srcwin 30 20 41 33 "$T/scene_sar.tif" "$T/win_f_rgb.tif"
gdal_translate -q -of ENVI -srcwin 30 20 41 33 "$T/full_f_rgb.tif" "$T/c.img" || fail "crop"
gdal_translate -q -of ENVI "$T/win_f_rgb.tif" "$T/d.img" || fail "copy"
cmp -s "$T/c.img" "$T/d.img" || fail "-srcwin output differs from the full run's region"
gdalinfo "$T/win_f_rgb.tif" | grep -q "Origin = (500300.000000000000000,4999800.000000000000000)" || fail "-srcwin origin"
gdalinfo "$T/win_f_rgb.tif" | grep -q "Size is 41, 33" || fail "-srcwin size"
# -projwin of the same window (in the raster's CRS, as gdal_translate) gives the same file
expect 0 "" $MT -ot Float32 --batch 2 -projwin 500300 4999800 500710 4999470 "$T/scene_sar.tif" "$T/pw_f_rgb.tif"
gdal_translate -q -of ENVI "$T/pw_f_rgb.tif" "$T/p.img" || fail "copy"
cmp -s "$T/d.img" "$T/p.img" || fail "-projwin output differs from the same -srcwin"
expect 1 "not inside" $MTI -projwin 500600 4999800 500800 4999700 "$T/scene_sar.tif" "$T/y_rgb.tif"
expect 1 "empty window" $MTI -projwin 500300 4999470 500710 4999800 "$T/scene_sar.tif" "$T/y_rgb.tif"
no_file "$T/y_rgb.tif"

# --- --aoi (the pixels are checked in test_geo: test_aoi): windows outside skipped and counted,
# MM_AOI; a bad file, layer or an AOI off the raster: an error, no output
cat >"$T/aoi.geojson" <<'EOF'
{"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32632"}},
 "features": [{"type": "Feature", "properties": {}, "geometry": {"type": "Polygon",
   "coordinates": [[[500005, 4999995], [500205, 4999995], [500005, 4999795], [500005, 4999995]]]}}]}
EOF
cat >"$T/far.geojson" <<'EOF'
{"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32632"}},
 "features": [{"type": "Feature", "properties": {}, "geometry": {"type": "Polygon",
   "coordinates": [[[600000, 4000000], [600100, 4000000], [600100, 3999900], [600000, 4000000]]]}}]}
EOF
$B/mm_translate --processor identity --model "$MODEL" --aoi "$T/aoi.geojson" "$T/scene_sar.tif" "$T/aoi_rgb.tif" >/dev/null 2>"$T/err.txt" ||
    fail "--aoi: $(cat "$T/err.txt")"
grep -Eq "[1-9][0-9]* of [0-9]+ windows outside the AOI skipped" "$T/err.txt" || fail "--aoi: no window skipped: $(cat "$T/err.txt")"
gdalinfo "$T/aoi_rgb.tif" | grep -q "MM_AOI=.*aoi.geojson" || fail "--aoi: MM_AOI"
expect 1 "cannot open" $MTI --aoi "$T/missing.geojson" "$T/scene_sar.tif" "$T/y_rgb.tif"
expect 1 "no layer 'roads'" $MTI --aoi "$T/aoi.geojson" --aoi-layer roads "$T/scene_sar.tif" "$T/y_rgb.tif"
expect 1 "does not overlap" $MTI --aoi "$T/far.geojson" "$T/scene_sar.tif" "$T/y_rgb.tif"
expect 1 "does not overlap" $MTI --aoi "$T/aoi.geojson" -srcwin 40 30 20 20 "$T/scene_sar.tif" "$T/y_rgb.tif"
expect 2 "needs --aoi" $MTI --aoi-layer roads "$T/scene_sar.tif" "$T/y_rgb.tif"
no_file "$T/y_rgb.tif"

# --- --gsd: the run at a working resolution (20 m for the 10 m samples), the result back on the
# input grid (the values are checked in test_geo: test_gsd); errors
expect 0 "" $MTI -ot Float32 --gsd 20 "$T/scene_sar.tif" "$T/gsd_rgb.tif"
gdalinfo "$T/gsd_rgb.tif" >"$T/ig.txt"
grep -q "Size is 72, 54" "$T/ig.txt" || fail "--gsd: size"
grep -q "Origin = (500000.000000000000000,5000000.000000000000000)" "$T/ig.txt" || fail "--gsd: origin"
grep -q "Pixel Size = (10.000000000000000,-10.000000000000000)" "$T/ig.txt" || fail "--gsd: pixel size"
grep -q "MM_GSD=20" "$T/ig.txt" || fail "--gsd: MM_GSD"
ls -a "$T" | grep -q mmgsd && fail "--gsd: a working file is left"
# warnings name the user's files, not the working ones
expect 0 "nodata value -9999 of '$T/scene_sar.tif'" $MTI --gsd 20 "$T/scene_sar.tif" "$T/gsd_b_rgb.tif"
grep -q vsimem "$T/err.txt" && fail "--gsd: a warning names a working file: $(cat "$T/err.txt")"
expect 0 "" $MTI -ot Float32 --gsd 20 -projwin 500100 4999900 500400 4999700 "$T/scene_sar.tif" "$T/gsd_w_rgb.tif"
gdalinfo "$T/gsd_w_rgb.tif" | grep -q "Size is 30, 20" || fail "--gsd -projwin: size"
gdalinfo "$T/gsd_w_rgb.tif" | grep -q "Origin = (500100.000000000000000,4999900.000000000000000)" || fail "--gsd -projwin: origin"
expect 2 "positive" $MTI --gsd -5 "$T/scene_sar.tif" "$T/y_rgb.tif"
no_file "$T/y_rgb.tif"

# --- modalities: from MM_MODALITY (the tag the tools write), several sources, -b
cp "$T/out_rgb.tif" "$T/tagged.tif"
expect 0 "" $MTI -t nir "$T/tagged.tif" "$T/x.tif"
gdalinfo "$T/x.tif" | grep -q "MM_MODALITY=nir" || fail "-t nir"
expect 0 "" $MT1 -s "sar:$T/scene_sar.tif" -s "rgb:$T/scene_rgb.tif" "$T/two_nir.tif"
gdalinfo "$T/two_nir.tif" | grep -q "MM_SOURCE=sar:.*scene_sar.tif;rgb:.*scene_rgb.tif" || fail "MM_SOURCE of two sources"
expect 0 "" $MTI -s pan -b 2 "$T/scene_rgb.tif" "$T/b2_sar.tif"
expect 0 "" $MTI -of COG -co COMPRESS=LZW "$T/scene_nir.tif" "$T/cog_sar.tif"
gdalinfo "$T/cog_sar.tif" | grep -q "LAYOUT=COG" || fail "-of COG"
gdalinfo "$T/cog_sar.tif" | grep -q "COMPRESSION=LZW" || fail "-co COMPRESS=LZW"
gdalinfo "$T/cog_sar.tif" | grep -q "Type=Float32" || fail "SAR output in Float32 dB"
expect 0 "" $MT1 --config GDAL_CACHEMAX 64 --profile sar=db:-20:0 --seed 3 --sampler euler "$T/scene_rgb.tif" "$T/opts_sar.tif"
gdalinfo "$T/opts_sar.tif" | grep -q "MM_IO_PROFILE=db:-20:0" || fail "--profile"
gdalinfo "$T/opts_sar.tif" | grep -q "MM_SAMPLER=euler" || fail "--sampler"

# --- the test hooks: identity reproduces the input exactly
expect 0 "" $MTI "$T/scene_rgb.tif" "$T/id_osm.tif"
gdal_translate -q -of ENVI "$T/scene_rgb.tif" "$T/e.img" && gdal_translate -q -of ENVI "$T/id_osm.tif" "$T/f.img"
cmp -s "$T/e.img" "$T/f.img" || fail "identity processor does not reproduce the input"

# --- options
expect 0 "" $B/mm_translate --help
grep -q "Usage: mm_translate" "$T/out.txt" || fail "--help"
expect 0 "" $B/mm_translate --version
grep -q "mm_translate 0.1.0" "$T/out.txt" || fail "--version"
expect 2 "expected SRC and DST" $MT "$T/scene_sar.tif"
expect 2 "steps" $MT --steps 0 "$T/scene_sar.tif" "$T/y_rgb.tif"
no_file "$T/y_rgb.tif"

# --- bad input: a clear message, non-zero exit, nothing under the output name
expect 1 "cannot open '$T/missing_sar.tif'" $MT "$T/missing_sar.tif" "$T/y_rgb.tif"
no_file "$T/y_rgb.tif"
echo "garbage" >"$T/garbage_sar.tif"
expect 1 "cannot open" $MT "$T/garbage_sar.tif" "$T/y_rgb.tif"
no_file "$T/y_rgb.tif"
cp "$T/scene_sar.tif" "$T/scene.tif"
expect 1 "cannot tell the modality of '$T/scene.tif'.*-s MODALITY" $MT "$T/scene.tif" "$T/y_rgb.tif"
expect 1 "cannot tell the target modality.*-t MODALITY" $MT "$T/scene_sar.tif" "$T/y.tif"
no_file "$T/y.tif"
expect 1 "has no modality 'dem' (it has rgb, sar, nir, pan, osm)" $MT -t dem "$T/scene_sar.tif" "$T/y_rgb.tif"
expect 1 "has no modality 'lidar'" $MT -s lidar "$T/scene_sar.tif" "$T/y_rgb.tif"
no_file "$T/y_rgb.tif"
expect 1 "has 1 band but modality 'rgb' needs 3" $MT -s rgb -t nir "$T/scene_sar.tif" "$T/y_nir.tif"
no_file "$T/y_nir.tif"
expect 1 "band 4 does not exist" $MT -s pan -b 4 "$T/scene_rgb.tif" "$T/y_sar.tif"
expect 1 "cannot create" $MT "$T/scene_sar.tif" "$T/no/such/dir/y_rgb.tif"
chmod 555 "$T" 2>/dev/null
if [ "$(id -u)" -ne 0 ]; then # root writes anyway
    expect 1 "cannot create" $MT "$T/scene_sar.tif" "$T/ro_rgb.tif"
fi
chmod 755 "$T"
# an existing output is untouched by a failed run
echo "previous" >"$T/keep_rgb.tif"
expect 1 "needs 3" $MT -s rgb -t nir "$T/scene_sar.tif" "$T/keep_rgb.tif"
expect 1 "" $MT -s rgb "$T/scene_sar.tif" "$T/keep_rgb.tif"
grep -q previous "$T/keep_rgb.tif" || fail "a failed run changed an existing output"
# no CRS: a warning, and the run goes on
gdal_create -q -outsize 40 30 -bands 1 -ot Float32 -burn 0.1 "$T/nocrs_sar.tif" 2>/dev/null ||
    gdal_translate -q -a_srs "" "$T/scene_sar.tif" "$T/nocrs_sar.tif"
expect 0 "warning: .*has no coordinate reference system" $MT1 "$T/nocrs_sar.tif" "$T/nocrs_rgb.tif"
[ -s "$T/nocrs_rgb.tif" ] || fail "no output without a CRS"
expect 1 "is not inside" $MT -srcwin 90 0 20 10 "$T/scene_sar.tif" "$T/y_rgb.tif"
gdalinfo "$T/nocrs_sar.tif" | grep -q "Origin =" ||
    expect 1 "no geotransform" $MTI -projwin 0 0 10 -10 "$T/nocrs_sar.tif" "$T/y_rgb.tif"
no_file "$T/y_rgb.tif"

# --- Ctrl-C: stops cleanly, no partial output (a long run: 50 steps on a larger scene)
"$B/mm_make_samples" "$T/big" 400 300 >/dev/null 2>&1 || { mkdir -p "$T/big" && "$B/mm_make_samples" "$T/big" 400 300 >/dev/null; }
# the signal is sent once the run has started (its progress bar shows), not after a fixed time:
# on a loaded machine start-up alone can take seconds
$B/mm_translate --threads 1 --steps 50 --model "$MODEL" "$T/big/scene_sar.tif" "$T/big/int_rgb.tif" 2>"$T/err.txt" &
pid=$!
i=0
while [ $i -lt 600 ] && ! grep -q "0" "$T/err.txt" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
kill -INT $pid
wait $pid
rc=$?
[ "$rc" -eq 130 ] || fail "Ctrl-C: exit $rc (expected 130): $(cat "$T/err.txt")"
grep -q "interrupted" "$T/err.txt" || fail "Ctrl-C: no message"
no_file "$T/big/int_rgb.tif"

[ "$fails" -eq 0 ] && echo "all mm_translate command-line checks passed"
[ "$fails" -eq 0 ]
