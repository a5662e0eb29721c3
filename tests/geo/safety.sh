#!/bin/sh
# Runtime safety of the georeferenced tools (issue 20, part A): outputs compared with inputs by
# file identity (other spellings, symlinks, hard links), non-regular outputs refused, duplicate
# targets, NaN/Inf from the network (an error naming the window, or --nonfinite nodata), NaN
# source pixels masked, size guards (--max-pixels, --force, --gsd 0.0001 fails fast), stale
# temporary files of dead processes removed, Ctrl-C, creation options checked against the
# driver's list, and the message of a missing input. Usage: safety.sh BUILD_DIR MODEL [PLUGIN_DIR]
set -u
TEST_NAME=mm_safety_test
. "$(dirname "$0")/../lib/geo.sh" # $B $MODEL $PLUGIN $HERE $PY $SAME need_python; $T fail expect no_file
MT="$B/mm_translate -q --threads 1 --steps 1 --guidance 1 --model $MODEL"
MTI="$B/mm_translate -q --processor identity --model $MODEL" # no model run
MG="$B/mm_generate -q --threads 1 --steps 1 --model $MODEL"
ME="$B/mm_embed -q --threads 1 --model $MODEL"
make_samples 72 54
sum() { sha256sum "$1" | cut -c1-64; }

# --- 1. identity of files, not strings
mkdir "$T/o" && cp "$T/scene_rgb.tif" "$T/o/x.tif"
before=$(sum "$T/o/x.tif")
(cd "$T" && expect 1 "is the input" $MTI -s rgb -t sar o/x.tif ./o/x.tif && exit $fails) || fails=$((fails + 1))
[ "$(sum "$T/o/x.tif")" = "$before" ] || fail "the input was replaced (./o/x.tif)"
expect 1 "is the input" $MTI -s rgb -t sar "$T/o/x.tif" "$T/o/../o/x.tif"
ln -s x.tif "$T/o/link.tif"
expect 1 "is the input" $MTI -s rgb -t sar "$T/o/x.tif" "$T/o/link.tif"
ln "$T/o/x.tif" "$T/o/hard.tif"
expect 1 "is the input" $MTI -s rgb -t sar "$T/o/x.tif" "$T/o/hard.tif"
[ "$(sum "$T/o/x.tif")" = "$before" ] || fail "the input was replaced (a link)"
[ -L "$T/o/link.tif" ] || fail "the symlink was replaced"
ls -a "$T/o" | grep -q mmtmp && fail "a temporary file is left in $T/o"
# mm_generate: two spellings of one target, refused before anything is written
mkdir "$T/g"
expect 1 "one file" $MG -te 500000 4999680 500320 5000000 -tr 10 10 -t_srs EPSG:32632 \
    -t "rgb:$T/g/a.tif" -t "sar:$T/g/./a.tif"
no_file "$T/g/a.tif"
# non-regular outputs: refused, never replaced
mkfifo "$T/fifo_sar.tif"
expect 1 "FIFO" $MTI -s rgb "$T/scene_rgb.tif" "$T/fifo_sar.tif"
[ -p "$T/fifo_sar.tif" ] || fail "the FIFO was replaced"
mkdir "$T/dir_sar.tif"
expect 1 "directory" $MTI -s rgb "$T/scene_rgb.tif" "$T/dir_sar.tif"
[ -d "$T/dir_sar.tif" ] || fail "the directory was replaced"
if [ "$(id -u)" -eq 0 ] && mknod "$T/null_sar.tif" c 1 3 2>/dev/null; then # a /dev/null of ours
    expect 1 "character device" $MTI -s rgb "$T/scene_rgb.tif" "$T/null_sar.tif"
    [ -c "$T/null_sar.tif" ] || fail "the device node was replaced"
fi
ln -s "$T/fifo_sar.tif" "$T/tofifo_sar.tif"
expect 1 "FIFO" $MTI -s rgb "$T/scene_rgb.tif" "$T/tofifo_sar.tif"

# --- 5. messages: a missing input says why
expect 1 "cannot open '$T/missing_sar.tif': No such file" $MTI "$T/missing_sar.tif" "$T/m_rgb.tif"
grep -q "unknown" "$T/err.txt" && fail "missing input: $(cat "$T/err.txt")"
expect 1 "No such file" $ME "$T/missing_sar.tif" "$T/m_emb.tif"
expect 1 "No such file" $MG -like "$T/missing.tif" "$T/m_rgb.tif"

# --- 4. creation options checked against the driver's list
expect 1 "COMPRESS=BOGUS" $MTI -co COMPRESS=BOGUS "$T/scene_sar.tif" "$T/co_rgb.tif"
no_file "$T/co_rgb.tif"
expect 1 "NO_SUCH_OPTION" $MTI -co NO_SUCH_OPTION=1 "$T/scene_sar.tif" "$T/co_rgb.tif"
expect 1 "TILED=MAYBE" $MTI -co TILED=MAYBE "$T/scene_sar.tif" "$T/co_rgb.tif"
no_file "$T/co_rgb.tif"
expect 0 "" $MTI -co COMPRESS=LZW -co tiled=no "$T/scene_sar.tif" "$T/co_rgb.tif"
gdalinfo "$T/co_rgb.tif" | grep -q "COMPRESSION=LZW" || fail "-co COMPRESS=LZW not applied"

# --- 3. size guards
expect 1 "72 x 54 = 3888 pixels (limit 1000" $MTI --max-pixels 1000 "$T/scene_sar.tif" "$T/big_rgb.tif"
grep -q "MiB of memory" "$T/err.txt" || fail "no memory figure: $(cat "$T/err.txt")"
no_file "$T/big_rgb.tif"
expect 0 "" $MTI --max-pixels 1000 --force "$T/scene_sar.tif" "$T/big_rgb.tif"
t0=$(date +%s)
expect 1 "too large" timeout 30 $MTI --gsd 0.0001 "$T/scene_sar.tif" "$T/gsd_rgb.tif"
[ $(($(date +%s) - t0)) -le 10 ] || fail "--gsd 0.0001 took $(($(date +%s) - t0)) s to fail"
no_file "$T/gsd_rgb.tif"
t0=$(date +%s)
expect 1 "too large" timeout 30 $MG -te 0 0 200000 100000 -tr 1 1 -t_srs EPSG:32632 "$T/huge_rgb.tif"
[ $(($(date +%s) - t0)) -le 10 ] || fail "a 2e10 pixel grid took $(($(date +%s) - t0)) s to fail"
no_file "$T/huge_rgb.tif"
# stale temporary files: a dead process's removed by the next run, a live one's kept
mkdir "$T/st"
deadpid=$(sh -c 'echo $$')
touch "$T/st/.out_rgb.tif.mmtmp-$deadpid.tif" "$T/st/.out_rgb.tif.mmtmp-$deadpid.tif.aux.xml" \
      "$T/st/.out_rgb.tif.mmtmp-$deadpid-stage.tif" "$T/st/.out_rgb.tif.mmtmp-$$.tif"
expect 0 "" $MTI "$T/scene_sar.tif" "$T/st/out_rgb.tif"
ls -a "$T/st" | grep -q "mmtmp-$deadpid" && fail "a dead process's temporary files were kept: $(ls -a "$T/st")"
[ -e "$T/st/.out_rgb.tif.mmtmp-$$.tif" ] || fail "a live process's temporary file was removed"
rm -f "$T/st/.out_rgb.tif.mmtmp-$$.tif"
# Ctrl-C: exit 130, stopped long before the job's end, nothing left (a larger scene, many steps;
# the bound is loose on purpose: CI machines are loaded, an ASan build is slow; docs/tools.md has
# the measured time)
mkdir "$T/int"
"$B/mm_make_samples" "$T/int" 1024 1024 >/dev/null || fail "mm_make_samples 1024"
$B/mm_translate -q --threads 1 --steps 400 --model "$MODEL" "$T/int/scene_sar.tif" "$T/int/out_rgb.tif" \
    2>"$T/int/err.txt" &
pid=$!
sleep 2
kill -INT $pid
t0=$(date +%s)
wait $pid
rc=$?
dt=$(($(date +%s) - t0))
[ "$rc" -eq 130 ] || fail "Ctrl-C: exit $rc (expected 130): $(cat "$T/int/err.txt")"
[ "$dt" -le 15 ] || fail "Ctrl-C: $dt s to stop"
no_file "$T/int/out_rgb.tif"

# --- 2. non-finite results: the tiny model's weights scaled until the network overflows
command -v python3 >/dev/null 2>&1 || fail "python3 not found (the non-finite and NaN-source checks need it)"
if command -v python3 >/dev/null 2>&1; then
    python3 "$HERE/blow_model.py" "$MODEL" "$T/blown.safetensors" 1e30 || fail "blow_model.py"
    BT="$B/mm_translate -q --threads 1 --steps 1 --model $T/blown.safetensors"
    expect 1 "NaN or Inf at .* pixel offsets 0, 0" $BT "$T/scene_sar.tif" "$T/nan_rgb.tif"
    no_file "$T/nan_rgb.tif"
    expect 1 "NaN or Inf" $BT --processor model -ot Float32 "$T/scene_sar.tif" "$T/nan_rgb.tif"
    no_file "$T/nan_rgb.tif"
    expect 1 "NaN or Inf" $B/mm_embed -q --threads 1 --model "$T/blown.safetensors" \
        "$T/scene_sar.tif" "$T/nan_emb.tif"
    no_file "$T/nan_emb.tif"
    expect 1 "NaN or Inf" $B/mm_generate -q --threads 1 --steps 1 --model "$T/blown.safetensors" \
        -like "$T/scene_sar.tif" "$T/nan_rgb.tif"
    no_file "$T/nan_rgb.tif"
    # --nonfinite nodata: written as nodata, with a warning and the count
    $BT --nonfinite nodata "$T/scene_sar.tif" "$T/nd_rgb.tif" 2>"$T/err.txt" ||
        fail "--nonfinite nodata: $(cat "$T/err.txt")"
    grep -q "NaN or Inf at [0-9]* output pixels; written as nodata" "$T/err.txt" ||
        fail "--nonfinite nodata: no warning with a count: $(cat "$T/err.txt")"
    gdalinfo -stats "$T/nd_rgb.tif" 2>&1 | grep -q "no valid pixels" ||
        fail "--nonfinite nodata: valid pixels from a NaN network"
    $B/mm_embed -q --threads 1 --nonfinite nodata --model "$T/blown.safetensors" \
        "$T/scene_sar.tif" "$T/nd_emb.tif" 2>"$T/err.txt" || fail "mm_embed --nonfinite nodata"
    gdalinfo -stats "$T/nd_emb.tif" 2>&1 | grep -q "no valid pixels" ||
        fail "mm_embed --nonfinite nodata: valid tokens from a NaN network"
    expect 2 "error or nodata" $MTI --nonfinite maybe "$T/scene_sar.tif" "$T/x_rgb.tif"
    if [ -n "$PLUGIN" ]; then # the GDAL driver: a read error naming the window, never data
        expect 1 "NaN or Inf at .* pixel offsets" env GDAL_DRIVER_PATH="$PLUGIN" gdal_translate -q \
            -oo MODEL="$T/blown.safetensors" -oo STEPS=1 "MM:rgb:$T/scene_sar.tif" "$T/drv.tif"
        expect 0 "" env GDAL_DRIVER_PATH="$PLUGIN" gdal_translate -q -oo NONFINITE=NODATA \
            -oo MODEL="$T/blown.safetensors" -oo STEPS=1 "MM:rgb:$T/scene_sar.tif" "$T/drv_nd.tif"
        gdalinfo -stats "$T/drv_nd.tif" 2>&1 | grep -q "no valid pixels" ||
            fail "the driver's NONFINITE=NODATA: valid pixels from a NaN network"
        expect 1 "NONFINITE takes error or nodata" env GDAL_DRIVER_PATH="$PLUGIN" gdalinfo -oo NONFINITE=maybe \
            -oo MODEL="$MODEL" "MM:rgb:$T/scene_sar.tif"
    fi
fi

# --- 2b. NaN source pixels without a nodata value: masked in the output, never valid black
if command -v python3 >/dev/null 2>&1; then
    # a float SAR scene (linear, 72 x 54, ENVI: raw floats) with NaN in rows 10-19, columns 5-29
    python3 - "$T/nan_sar" <<'PY' || fail "NaN source"
import struct, sys
w, h = 72, 54
px = [float("nan") if 10 <= y < 20 and 5 <= x < 30 else 0.01 + 0.001 * ((x * 7 + y * 3) % 50)
      for y in range(h) for x in range(w)]
open(sys.argv[1] + ".img", "wb").write(struct.pack("<%df" % len(px), *px))
open(sys.argv[1] + ".hdr", "w").write(
    "ENVI\nsamples = 72\nlines = 54\nbands = 1\nheader offset = 0\nfile type = ENVI Standard\n"
    "data type = 4\ninterleave = bsq\nbyte order = 0\n"
    "map info = {UTM, 1, 1, 500000, 5000000, 10, 10, 32, North, WGS-84}\n")
PY
    expect 0 "" $MTI -s sar --sar-units linear "$T/nan_sar.img" "$T/nans_rgb.tif"
    check_mask() { # the mask of $1: 0 exactly at the NaN source pixels
    gdal_translate -q -b mask -of ENVI "$@" "$T/nans_mask.img" || fail "no mask read: $*"
    python3 - "$T/nans_mask.img" <<'PY' >"$T/out.txt" 2>&1 || fail "NaN source pixels ($*): $(cat "$T/out.txt")"
import sys
m = open(sys.argv[1], "rb").read()
w, h = 72, 54
assert len(m) == w * h, len(m)
bad = [(x, y) for y in range(h) for x in range(w)
       if (m[y * w + x] != 0) != (not (10 <= y < 20 and 5 <= x < 30))]
assert not bad, "%d pixels wrong in the mask (NaN source pixels valid, or valid ones masked), e.g. %s" % (len(bad), bad[:3])
PY
    }
    check_mask "$T/nans_rgb.tif"
    if [ -n "$PLUGIN" ]; then # the driver's mask, the same
        export GDAL_DRIVER_PATH="$PLUGIN"
        check_mask -oo MODEL="$MODEL" -oo PROCESSOR=identity -oo SAR_UNITS=linear "MM:rgb:$T/nan_sar.img"
        unset GDAL_DRIVER_PATH
    fi
fi

[ "$fails" -eq 0 ] && echo "mm_safety_test: all checks passed" || { echo "mm_safety_test: $fails failed"; exit 1; }
