#!/bin/sh
# --samples K and STAC out (issue 18, items 4 and 5) with the bundled test model (1 step):
#  - K=1 is today's output byte for byte; the seeds of the samples are computed here
#    (SplitMix64, as docs/batch.md states) and each run alone with --seed: the K=3 mean equals
#    their average and the sidecar spread their sample standard deviation (Float32 and Byte,
#    overlap 0 so that each pixel has one window); --spread band is the root mean square of the
#    sidecar's bands; a deterministic processor (identity) gives spread 0; the spread is >= 0 and
#    > 0 somewhere; the driver's SAMPLES=3 gives the CLI's --samples 3 --spread band pixels;
#  - bad K (0, -1, 1e9, x, empty) and bad --spread: a message, exit 2, nothing written;
#  - STAC: mm_translate --stac's item checked by check_stac.py (the Item spec's required fields,
#    bbox and geometry containing the corners transformed here with OSR, the projection fields,
#    assets read back by GDAL, the model's SHA-256), datetime from the source's metadata
#    (ACQUISITION_DATE, TIFFTAG_DATETIME) or its own STAC item, else the processing time said so;
#    mm_batch writes an item per output and catalog.json, --no-stac none.
# Usage: samples_stac.sh BUILD_DIR MODEL [DRIVER_DIR]
set -u
TEST_NAME=mm_samples_stac_test
. "$(dirname "$0")/../lib/geo.sh" # $B $MODEL $PLUGIN $HERE $PY $SAME need_python; $T fail expect no_file
need_python 'from osgeo import gdal; import numpy' 'GDAL and numpy (python3-gdal, python3-numpy)'
OPTS="--threads 1 --steps 1 --guidance 1"
MT0="$B/mm_translate -q --model $MODEL $OPTS -t rgb"
MT="$B/mm_translate -q --model $MODEL $OPTS"
# 96 x 64: with --overlap 0 the 32-pixel windows tile it exactly (each pixel has one window)
make_samples 96 64
S=$T/scene_sar.tif
SHA=$(sha256sum "$MODEL" | cut -d' ' -f1)

# --- 1. K=1 is the plain run, byte for byte; no spread, no sampling items
$MT --seed 5 "$S" "$T/plain_rgb.tif" 2>/dev/null || fail "plain run"
$MT --seed 5 --samples 1 "$S" "$T/k1_rgb.tif" 2>/dev/null || fail "--samples 1"
cmp -s "$T/plain_rgb.tif" "$T/k1_rgb.tif" || fail "--samples 1 is not byte-identical to the plain run"
no_file "$T/k1_rgb.spread.tif"
gdalinfo "$T/k1_rgb.tif" | grep -q MM_SAMPLES && fail "--samples 1 output says MM_SAMPLES"

# --- 2. K=3 against three runs with the seeds of the samples, computed here
SEEDS=$($PY -c '
M = (1 << 64) - 1
def seed(base, k):
    if k == 0: return base
    z = (base + k * 0x9E3779B97F4A7C15) & M
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
    return z ^ (z >> 31)
print(" ".join(str(seed(5, k)) for k in range(3)))')
[ -n "$SEEDS" ] || fail "no seeds"
for ot in Float32 Byte; do
    i=0
    for s in $SEEDS; do
        $MT0 --overlap 0 -ot $ot --seed "$s" "$S" "$T/run${i}_$ot.tif" 2>/dev/null || fail "run $i ($ot)"
        i=$((i + 1))
    done
    $MT0 --overlap 0 -ot $ot --seed 5 --samples 3 "$S" "$T/k3_$ot.tif" 2>/dev/null || fail "--samples 3 ($ot)"
    $MT0 --overlap 0 -ot $ot --seed 5 --samples 3 --spread band "$S" "$T/k3b_$ot.tif" 2>/dev/null ||
        fail "--samples 3 --spread band ($ot)"
done
gdalinfo "$T/k3_Byte.tif" | grep -q "MM_SAMPLE_SEEDS=$(echo $SEEDS | tr ' ' ,)" ||
    fail "MM_SAMPLE_SEEDS is not $SEEDS: $(gdalinfo "$T/k3_Byte.tif" | grep MM_SAMPLE)"
$PY - "$T" <<'PY' || fail "K=3 mean and spread against the three runs"
import sys
import numpy as np
from osgeo import gdal
T = sys.argv[1]
bad = 0
def rd(p):
    return gdal.Open(p).ReadAsArray().astype(np.float64)
for ot, tol_mean, tol_sd in (("Float32", 1e-3, 1e-3), ("Byte", 1.0, 1.0)):
    runs = np.stack([rd("%s/run%d_%s.tif" % (T, i, ot)) for i in range(3)])
    mean, sd = rd("%s/k3_%s.tif" % (T, ot)), rd("%s/k3_%s.spread.tif" % (T, ot))
    kds = gdal.Open("%s/k3_%s.tif" % (T, ot))  # kept: a band outlives no dataset in GDAL's Python
    valid = kds.GetRasterBand(1).GetMaskBand().ReadAsArray() > 0
    dm = np.abs(mean - runs.mean(0))[:, valid].max()
    # Byte: each run is rounded, so their spread is only known to about a DN
    ds = np.abs(sd - runs.std(0, ddof=1))[:, valid].max()
    print("%s: mean within %.3g of the runs' average, spread within %.3g of their std" % (ot, dm, ds))
    if dm > tol_mean or ds > tol_sd + (0 if ot == "Float32" else 0.0):
        print("FAIL: %s mean off by %g (tolerance %g), spread by %g (%g)" % (ot, dm, tol_mean, ds, tol_sd)); bad = 1
    if not (sd[:, valid] >= 0).all() or not (sd[:, valid] > 0).any():
        print("FAIL: %s spread not >= 0 everywhere and > 0 somewhere" % ot); bad = 1
    band = rd("%s/k3b_%s.tif" % (T, ot))
    if band.shape[0] != 4 or np.abs(band[:3] - mean)[:, valid].max() > 0:
        print("FAIL: --spread band: %d bands, or its bands 1-3 differ from the sidecar run's" % band.shape[0]); bad = 1
    rms = np.sqrt((sd ** 2).mean(0))
    d = np.abs(band[3] - rms)[valid].max()
    if d > (1e-3 if ot == "Float32" else 0.5 + 1e-3):
        print("FAIL: %s band 4 is not the RMS of the sidecar's bands (off by %g)" % (ot, d)); bad = 1
    bds = gdal.Open("%s/k3b_%s.tif" % (T, ot))
    b4 = bds.GetRasterBand(4)
    if "spread" not in b4.GetDescription() or b4.GetMetadataItem("MM_SPREAD") != "STDDEV":
        print("FAIL: band 4 is not described as the spread: %r" % b4.GetDescription()); bad = 1
sds = gdal.Open("%s/k3_Byte.spread.tif" % T)
s1 = sds.GetRasterBand(1)
if s1.DataType != gdal.GDT_Float32 or "standard deviation" not in s1.GetDescription():
    print("FAIL: the sidecar is not Float32 with its bands described"); bad = 1
sys.exit(bad)
PY

# --- 3. a deterministic processor: spread exactly 0, mean its output
$MT --processor identity --samples 4 "$S" "$T/id4_rgb.tif" 2>/dev/null || fail "identity --samples 4"
$MT --processor identity "$S" "$T/id1_rgb.tif" 2>/dev/null || fail "identity"
$PY - "$T" <<'PY' || fail "deterministic processor"
import sys
import numpy as np
from osgeo import gdal
T = sys.argv[1]
a = gdal.Open(T + "/id4_rgb.tif").ReadAsArray(); b = gdal.Open(T + "/id1_rgb.tif").ReadAsArray()
s = gdal.Open(T + "/id4_rgb.spread.tif")
v = s.GetRasterBand(1).GetMaskBand().ReadAsArray() > 0
sd = s.ReadAsArray()
ok = (a == b).all() and v.any() and (sd[:, v] == 0).all()
print("identity: mean %s its output, spread max %g" % ("is" if (a == b).all() else "is not", sd[:, v].max()))
sys.exit(0 if ok else 1)
PY

# --- 4. the driver: SAMPLES=3 is --samples 3 --spread band (the blended default overlap)
if [ -n "$PLUGIN" ]; then
    $MT --seed 5 --samples 3 --spread band "$S" "$T/cli_rgb.tif" 2>/dev/null || fail "CLI --samples 3 --spread band"
    GDAL_DRIVER_PATH=$PLUGIN gdal_translate -q -oo MODEL="$MODEL" -oo STEPS=1 -oo GUIDANCE=1 -oo THREADS=1 \
        -oo SEED=5 -oo SAMPLES=3 "MM:rgb:$S" "$T/drv.tif" 2>"$T/err.txt" || fail "driver SAMPLES=3: $(cat "$T/err.txt")"
    $PY -c 'import sys, numpy as np
from osgeo import gdal
a, b = (gdal.Open(p) for p in sys.argv[1:3])
same = a.RasterCount == b.RasterCount == 4 and (a.ReadAsArray() == b.ReadAsArray()).all()
band4 = b.GetRasterBand(4)
d = band4.GetDescription()
sys.exit(0 if same and "spread" in d and b.GetMetadataItem("MM_SAMPLES") == "3" else 1)' "$T/cli_rgb.tif" "$T/drv.tif" ||
        fail "driver SAMPLES=3 differs from mm_translate --samples 3 --spread band"
    for k in 0 -1 1e9 x; do
        GDAL_DRIVER_PATH=$PLUGIN gdalinfo -oo MODEL="$MODEL" -oo SAMPLES=$k "MM:rgb:$S" >/dev/null 2>"$T/err.txt" &&
            fail "driver SAMPLES=$k opened"
        grep -q "SAMPLES must be a decimal integer from 1 to 1000" "$T/err.txt" || fail "driver SAMPLES=$k: $(cat "$T/err.txt")"
    done
else
    fail "no driver directory given: the driver's SAMPLES is not checked"
fi

# --- 5. bad values: a message, exit 2, nothing written
for k in 0 -1 1e9 x ""; do
    expect 2 "--samples / SAMPLES must be a decimal integer from 1 to 1000" $MT --samples "$k" "$S" "$T/bad_rgb.tif"
    no_file "$T/bad_rgb.tif"
done
expect 2 "--spread / SPREAD takes band or sidecar" $MT --samples 2 --spread nope "$S" "$T/bad_rgb.tif"
expect 2 "--spread / SPREAD needs --samples" $MT --spread band "$S" "$T/bad_rgb.tif"
expect 2 "not --seamless" $MT --samples 2 --seamless "$S" "$T/bad_rgb.tif"
no_file "$T/bad_rgb.tif"
no_file "$T/bad_rgb.spread.tif"

# --- 6. STAC items of mm_translate --stac
$MT --seed 5 --samples 3 --stac "$S" "$T/st_rgb.tif" 2>/dev/null || fail "--stac"
[ -s "$T/st_rgb.tif.stac.json" ] || fail "no st_rgb.tif.stac.json"
$PY "$HERE/check_stac.py" "$T/st_rgb.tif.stac.json" metaearth:samples=3 metaearth:steps=1 \
    metaearth:seed=5 metaearth:model_sha256="$SHA" metaearth:task=sar:rgb proj:epsg=32632 \
    "metaearth:datetime_source=processing time: the source states no acquisition time" \
    metaearth:version=? metaearth:model=? || fail "the STAC item of --stac"
$PY -c 'import json, sys
it = json.load(open(sys.argv[1]))
l = [x for x in it["links"] if x["rel"] == "derived_from"]
ok = l and l[0]["href"] == sys.argv[2] and it["assets"]["spread"]["href"] == "./st_rgb.spread.tif"
sys.exit(0 if ok else 1)' "$T/st_rgb.tif.stac.json" "$(realpath "$S")" || fail "the item's source link or spread asset"
$MT --seed 5 "$S" "$T/nost_rgb.tif" 2>/dev/null
no_file "$T/nost_rgb.tif.stac.json"
# the source's acquisition time: its metadata, or its own STAC item
gdal_translate -q -mo ACQUISITION_DATE=2020-12-04 "$S" "$T/dated_sar.tif"
$MT --stac "$T/dated_sar.tif" "$T/dated_rgb.tif" 2>/dev/null || fail "--stac (dated source)"
$PY "$HERE/check_stac.py" "$T/dated_rgb.tif.stac.json" datetime=2020-12-04T00:00:00Z \
    "metaearth:datetime_source=the source's ACQUISITION_DATE metadata item" || fail "datetime from ACQUISITION_DATE"
gdal_translate -q -mo "TIFFTAG_DATETIME=2020:12:04 16:20:31" "$S" "$T/tagged_sar.tif"
$MT --stac "$T/tagged_sar.tif" "$T/tagged_rgb.tif" 2>/dev/null || fail "--stac (TIFFTAG_DATETIME)"
$PY "$HERE/check_stac.py" "$T/tagged_rgb.tif.stac.json" datetime=2020-12-04T16:20:31Z || fail "datetime from TIFFTAG_DATETIME"
$MT --stac -s rgb -t sar "$T/dated_rgb.tif" "$T/back.tif" 2>/dev/null || fail "--stac from an output with an item"
$PY "$HERE/check_stac.py" "$T/back.tif.stac.json" datetime=2020-12-04T00:00:00Z metaearth:task=rgb:sar || fail "datetime from the source's item"
grep -q "dated_rgb.tif.stac.json" "$T/back.tif.stac.json" || fail "no link to the source's item"

# --- 7. mm_batch: an item per output and catalog.json (on by default), none with --no-stac
mkdir "$T/b"
cp "$S" "$T/b/a_sar.tif"
printf 'input,output,task,options\na_sar.tif,a_rgb.tif,sar:rgb,--seed 1\nmissing_sar.tif,m_rgb.tif,sar:rgb,\na_sar.tif,s_rgb.tif,sar:rgb,--samples 2\n' >"$T/b/m.csv"
expect 1 "" "$B/mm_batch" --model "$MODEL" $OPTS "$T/b/m.csv"
grep -q "STAC catalog .*catalog.json (2 items)" "$T/err.txt" || fail "mm_batch: no catalog line: $(tail -2 "$T/err.txt")"
$PY "$HERE/check_stac.py" --catalog "$T/b/catalog.json" 2 || fail "mm_batch catalog.json"
$PY "$HERE/check_stac.py" "$T/b/a_rgb.tif.stac.json" metaearth:seed=1 metaearth:samples=1 || fail "mm_batch item a"
$PY "$HERE/check_stac.py" "$T/b/s_rgb.tif.stac.json" metaearth:samples=2 || fail "mm_batch item s"
# a rerun skips the items and writes a missing item from the output
rm "$T/b/a_rgb.tif.stac.json"
expect 1 "" "$B/mm_batch" --model "$MODEL" $OPTS "$T/b/m.csv"
grep -q "2 skipped" "$T/err.txt" || fail "mm_batch rerun did not skip: $(tail -2 "$T/err.txt")"
[ -s "$T/b/a_rgb.tif.stac.json" ] || fail "mm_batch rerun did not write the missing item"
# --samples changes the stamp: redone
expect 1 "" "$B/mm_batch" --model "$MODEL" $OPTS --samples 2 "$T/b/m.csv"
grep -q "1 done, 1 skipped" "$T/err.txt" || fail "mm_batch --samples 2 did not redo a_rgb only: $(tail -2 "$T/err.txt")"
mkdir "$T/c"
cp "$S" "$T/c/a_sar.tif"
printf 'input,output,task\na_sar.tif,a_rgb.tif,sar:rgb\n' >"$T/c/m.csv"
expect 0 "" "$B/mm_batch" -q --no-stac --model "$MODEL" $OPTS "$T/c/m.csv"
no_file "$T/c/a_rgb.tif.stac.json"
no_file "$T/c/catalog.json"
expect 2 "--samples / SAMPLES must be a decimal integer" "$B/mm_batch" --samples 0 --model "$MODEL" "$T/c/m.csv"
printf 'input,output,task,options\na_sar.tif,n_rgb.tif,sar:rgb,--no-stac\n' >"$T/c/n.csv"
expect 1 "--no-stac is an option of mm_batch's command line" "$B/mm_batch" -q --model "$MODEL" $OPTS "$T/c/n.csv"

[ "$fails" -eq 0 ] && echo "PASS" || { echo "$fails failure(s)"; exit 1; }
