#!/bin/sh
# mm_batch plan | chunk | stitch (issue 18, item 2) without a cluster, with the bundled test model
# (1 step): one scene cut into 1, 2, 3 (5 window rows: uneven), 4, 7 and 12 (rows and columns)
# chunks, each chunk run alone, stitched; the result is the same raster as mm_translate's in one
# process (size, geotransform, CRS, nodata, mask, metadata, every pixel: same_raster.py), in
# Float32, as Byte COG with -co, with a masked source and under -srcwin. A rerun of a done chunk is
# skipped; a chunk lost is named by stitch (exit 1, nothing written) and redone alone; the scripts
# carry the sbatch options; --submit runs sbatch (a stand-in that records its arguments) for the
# array and the stitch with --dependency=afterok; bad usage exits 2. Two sources (SAR and NIR):
# a change to the second source redoes the chunks (their stamps hash every source).
# Usage: batch_plan.sh BUILD_DIR MODEL
set -u
TEST_NAME=mm_batch_plan_test
. "$(dirname "$0")/../lib/geo.sh" # $B $MODEL $PLUGIN $HERE $PY $SAME need_python; $T fail expect no_file
need_python 'from osgeo import gdal' 'GDAL (python3-gdal)'
OPTS="--model $MODEL --threads 1 --steps 1 --guidance 1"
MB="$B/mm_batch"
MT="$B/mm_translate -q $OPTS"
# 150 x 110 pixels: 6 x 5 windows of 32 with the overlap of 8
make_samples 150 110
cd "$T" || exit 1
nchunks() { $PY -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["chunks"]))' "$1/plan.json"; }
run_all() { # PLAN: every chunk, one process each
    nn=$(nchunks "$1")
    ii=0
    while [ "$ii" -lt "$nn" ]; do
        $MB chunk "$1" "$ii" >/dev/null 2>"$T/chunk_err.txt" || fail "chunk $ii of $1: $(cat "$T/chunk_err.txt")"
        ii=$((ii + 1))
    done
}

# --- 1. several chunk counts, Float32 (no rounding hides a difference)
$MT -ot Float32 scene_sar.tif full_f_rgb.tif || fail "mm_translate (Float32)"
for n in 1 2 3 4 7 12; do
    expect 0 "plan: " $MB plan --chunks $n --dir "p$n" -- $OPTS -ot Float32 scene_sar.tif "f${n}_rgb.tif"
    [ $n -ne 12 ] || grep -q "12 chunks asked, but the extent has room for 10" err.txt ||
        fail "--chunks 12: no message that only 10 fit"
    got=$(nchunks "p$n")
    case $n in 7) want=5 ;; 12) want=10 ;; *) want=$n ;; esac
    [ "$got" = "$want" ] || fail "--chunks $n: $got chunks in the plan, expected $want"
    run_all "p$n"
    expect 0 "stitch: $want chunks" $MB stitch "p$n"
    [ -s "f${n}_rgb.tif" ] || fail "--chunks $n: no stitched output"
    $SAME full_f_rgb.tif "f${n}_rgb.tif" || fail "--chunks $n: the stitched output differs from mm_translate's"
done

# --- 2. Byte COG with a creation option, against mm_translate -of COG
$MT -of COG -co BLOCKSIZE=64 scene_sar.tif full_c_rgb.tif || fail "mm_translate (COG)"
expect 0 "" $MB plan -q --chunks 4 --dir pc -- $OPTS -of COG -co BLOCKSIZE=64 scene_sar.tif c_rgb.tif
run_all pc
expect 0 "(COG)" $MB stitch pc
$SAME full_c_rgb.tif c_rgb.tif || fail "COG: the stitched output differs from mm_translate's"
gdalinfo c_rgb.tif | grep -q "LAYOUT=COG" || fail "COG: not a cloud-optimised GeoTIFF"
gdalinfo c_rgb.tif | grep -q "Block=64x64" || fail "COG: -co BLOCKSIZE=64 not applied"
ls | grep -q '\.part' && fail "a .part file left: $(ls | grep '\.part')"

# --- 3. a source with a mask and no nodata (the output gets a mask), Byte GeoTIFF
$PY - scene_sar.tif m_sar.tif <<'PY' || fail "cannot make the masked source"
import sys
from osgeo import gdal
gdal.UseExceptions()
s = gdal.Open(sys.argv[1])
d = gdal.GetDriverByName("GTiff").CreateCopy(sys.argv[2], s)
b = d.GetRasterBand(1)
b.DeleteNoDataValue()
v = b.ReadAsArray()
m = (v != -9999).astype("uint8") * 255
v[m == 0] = 0.05
b.WriteArray(v)
d.CreateMaskBand(gdal.GMF_PER_DATASET)
b.GetMaskBand().WriteArray(m)
d = None
PY
$MT -s sar m_sar.tif full_m_rgb.tif || fail "mm_translate (masked)"
expect 0 "" $MB plan -q --chunks 4 --dir pm -- $OPTS -s sar m_sar.tif m_rgb.tif
run_all pm
expect 0 "" $MB stitch -q pm
$SAME full_m_rgb.tif m_rgb.tif || fail "masked source: the stitched output differs from mm_translate's"

# --- 4. a translation of a source window: the chunks cover the window only
$MT -ot Float32 -srcwin 17 9 101 77 scene_sar.tif full_w_rgb.tif || fail "mm_translate -srcwin"
expect 0 "" $MB plan -q --chunks 3 --dir pw -- $OPTS -ot Float32 -srcwin 17 9 101 77 scene_sar.tif w_rgb.tif
run_all pw
expect 0 "" $MB stitch -q pw
$SAME full_w_rgb.tif w_rgb.tif || fail "-srcwin: the stitched output differs from mm_translate's"

# --- 5. reruns: a done chunk skipped, a lost chunk named by stitch and redone alone
mtime() { stat -c %Y.%y "$1"; }
c0=$(ls p4/chunks/chunk-0000_*.tif) c1=$(ls p4/chunks/chunk-0001_*.tif)
m0=$(mtime "$c0")
expect 0 "up to date" $MB chunk p4 0
[ "$(mtime "$c0")" = "$m0" ] || fail "a done chunk was written again"
SLURM_ARRAY_TASK_ID=2 expect 0 "chunk 2 of 4: .*up to date" $MB chunk p4
rm -f "$c1" f4_rgb.tif f4_rgb.tif.mmstamp.json
expect 1 "1 of the 4 chunks is missing or out of date: 1; .*--array=1" $MB stitch p4
no_file f4_rgb.tif
ls | grep -q '\.part' && fail "stitch left a .part file: $(ls | grep '\.part')"
expect 0 "chunk 1 of 4: .*done" $MB chunk p4 1
[ "$(mtime "$c0")" = "$m0" ] || fail "redoing chunk 1 touched chunk 0"
expect 0 "" $MB stitch -q p4
$SAME full_f_rgb.tif f4_rgb.tif || fail "after the rerun of chunk 1: the stitched output differs"
expect 0 "up to date" $MB stitch p4
# a chunk whose file changed (a partial copy, another run) is not taken
echo junk >>"$c1"
rm -f f4_rgb.tif.mmstamp.json
expect 1 "missing or out of date: 1;" $MB stitch p4

# --- 6. the scripts, sbatch options, --submit through a stand-in sbatch
expect 0 "" $MB plan -q --chunks 4 --dir ps --partition debug --time 01:00:00 --mem 2G \
    --cpus-per-task 2 --account geo --qos low --sbatch=--constraint=avx512 -- $OPTS scene_sar.tif s_rgb.tif
for l in "--array=0-3" "--partition=debug" "--time=01:00:00" "--mem=2G" "--cpus-per-task=2" \
    "--account=geo" "--qos=low" "--constraint=avx512" "--output=$T/ps/logs/chunk-%a.log"; do
    grep -q -- "^#SBATCH $l\$" ps/array.sbatch || fail "array.sbatch: no '#SBATCH $l'"
done
grep -q -- "^#SBATCH --partition=debug\$" ps/stitch.sbatch || fail "stitch.sbatch: no partition"
grep -q -- "--array" ps/stitch.sbatch && fail "stitch.sbatch is an array"
grep -q "chunk '$T/ps'\$" ps/array.sbatch || fail "array.sbatch does not run the chunk of its task"
grep -q "stitch '$T/ps'\$" ps/stitch.sbatch || fail "stitch.sbatch does not stitch"
sh -n ps/array.sbatch && sh -n ps/stitch.sbatch || fail "the scripts are not valid sh"
mkdir bin
cat >bin/sbatch <<EOF
#!/bin/sh
echo "\$*" >>"$T/sbatch_calls.txt"
n=\$(wc -l <"$T/sbatch_calls.txt")
[ "\$n" -eq 1 ] && echo 4711 || echo "4712;cluster"
EOF
chmod +x bin/sbatch
PATH="$T/bin:$PATH" expect 0 "submitted" $MB plan --chunks 4 --dir ps --submit -- $OPTS scene_sar.tif s_rgb.tif
grep -q "array job 4711 (4 tasks), stitch job 4712" out.txt || fail "--submit: job ids: $(cat out.txt)"
sed -n 1p sbatch_calls.txt | grep -q "^--parsable $T/ps/array.sbatch\$" || fail "--submit: array: $(cat sbatch_calls.txt)"
sed -n 2p sbatch_calls.txt | grep -q "^--parsable --dependency=afterok:4711 .*$T/ps/stitch.sbatch\$" ||
    fail "--submit: stitch: $(cat sbatch_calls.txt)"
printf '#!/bin/sh\necho "sbatch: error: Invalid partition name specified" >&2\nexit 1\n' >bin/sbatch
PATH="$T/bin:$PATH" expect 1 "sbatch .* failed (exit status 1)" $MB plan -q --dir ps --submit -- $OPTS scene_sar.tif s_rgb.tif

# --- 7. bad usage
expect 2 "after '--'" $MB plan --chunks 2 $OPTS scene_sar.tif x_rgb.tif
expect 2 "not supported in a plan" $MB plan -- $OPTS --gsd 20 scene_sar.tif x_rgb.tif
expect 2 "not supported in a plan" $MB plan -- $OPTS --seamless scene_sar.tif x_rgb.tif
expect 2 "steps" $MB plan -- $OPTS --steps many scene_sar.tif x_rgb.tif
expect 2 "chunks" $MB plan --chunks 0 -- $OPTS scene_sar.tif x_rgb.tif
expect 1 "No such file" $MB plan -- $OPTS missing_sar.tif x_rgb.tif
expect 1 "unknown creation option" $MB plan -- $OPTS -co NOSUCH=1 scene_sar.tif x_rgb.tif
expect 2 "cannot open the plan" $MB chunk nowhere 0
expect 2 "INDEX must be" $MB chunk p4 4
env -u SLURM_ARRAY_TASK_ID $MB chunk p4 >/dev/null 2>err.txt
[ $? -eq 2 ] && grep -q "no INDEX and no" err.txt || fail "chunk without INDEX: $(cat err.txt)"
echo '{"plan_version": 9}' >bad.json
expect 2 "not a plan" $MB stitch bad.json
no_file x_rgb.tif

# --- 8. two sources (SAR and NIR): the chunks' stamps hash every source, so a change to the
# second source redoes the chunks (and stitch refuses the old ones)
cp scene_sar.tif ms_sar.tif
cp scene_nir.tif ms_nir.tif
MS="-s sar:ms_sar.tif -s nir:ms_nir.tif"
$MT $MS full_ms_rgb.tif || fail "mm_translate (two sources)"
expect 0 "" $MB plan -q --chunks 2 --dir pms -- $OPTS $MS ms_rgb.tif
run_all pms
expect 0 "" $MB stitch -q pms
$SAME full_ms_rgb.tif ms_rgb.tif || fail "two sources: the stitched output differs from mm_translate's"
grep -q '"sources_sha256"' pms/chunks/chunk-0000_*.mmstamp.json || fail "two sources: the chunk's stamp has no sources_sha256"
expect 0 "up to date" $MB chunk pms 0
$PY - ms_nir.tif <<'PY' || fail "cannot change the second source"
import sys
from osgeo import gdal
gdal.UseExceptions()
d = gdal.Open(sys.argv[1], gdal.GA_Update)
b = d.GetRasterBand(1)
b.WriteArray(b.ReadAsArray() * 0.5)
d = None
PY
expect 1 "2 of the 2 chunks are missing or out of date: 0,1" $MB stitch pms
expect 0 "chunk 0 of 2: .*done" $MB chunk pms 0
grep -q "up to date" err.txt && fail "two sources: chunk 0 taken as up to date after the second source changed"
expect 0 "chunk 1 of 2: .*done" $MB chunk pms 1
expect 0 "" $MB stitch -q pms
$MT $MS full_ms2_rgb.tif || fail "mm_translate (two sources, changed)"
$SAME full_ms2_rgb.tif ms_rgb.tif || fail "two sources: after the change the stitched output differs from mm_translate's"

[ "$fails" -eq 0 ] && echo "PASS" || { echo "$fails failure(s)"; exit 1; }
