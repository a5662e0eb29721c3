#!/bin/sh
# The GDAL driver gdal_MM (issue 5) through GDAL's own programs and Python GDAL, with the bundled
# test model (1 step) on small samples and the negate test processor on a larger raster: gdalinfo
# output; full reads and gdal_translate -srcwin windows at unaligned offsets equal to mm_translate's
# output (bit for bit); gdalwarp, multi-threaded equal to single-threaded; a Python read and the
# cache counters; the SQLite cache (hits on a second read, two processes at once, a source changed
# on disk); a .mmvrt file with two sources; overviews; bad connection strings and sources.
# Usage: driver.sh BUILD_DIR PLUGIN_DIR MODEL
set -u
B=$1
export GDAL_DRIVER_PATH=$2
MODEL=$(cd "$(dirname "$3")" && pwd)/$(basename "$3")
PY=${MM_TEST_PYTHON:-/usr/bin/python3}
TEST_NAME=mm_driver_test
. "$(dirname "$0")/../lib/cli.sh" # $T, fail, expect, no_file
# same A B [SRCWIN...]: the two rasters (or the same window of both) have the same bytes
same() {
    a=$1 b=$2
    shift 2
    rm -f "$T/s1.img" "$T/s2.img"
    gdal_translate -q -of ENVI ${1+-srcwin "$@"} "$a" "$T/s1.img" 2>"$T/s_err.txt" &&
        gdal_translate -q -of ENVI ${1+-srcwin "$@"} "$b" "$T/s2.img" 2>>"$T/s_err.txt" ||
        { fail "cannot read $a / $b ${1+-srcwin $*}: $(cat "$T/s_err.txt")"; return; }
    cmp -s "$T/s1.img" "$T/s2.img" || fail "$a and $b differ ${1+in -srcwin $*}"
}
# counters of a gdal_translate through the driver (the MM debug line at close)
counted() { grep "MM: MM:" "$T/dbg.txt" | tail -1; }

gdalinfo --formats | grep -q "MM -raster- (ro" || { echo "FAIL: gdalinfo --formats does not list MM"; exit 1; }
mkdir "$T/s" "$T/big"
"$B/mm_make_samples" "$T/s" 72 54 >/dev/null || { echo "FAIL: mm_make_samples"; exit 1; }
"$B/mm_make_samples" "$T/big" 600 520 >/dev/null || { echo "FAIL: mm_make_samples"; exit 1; }
S=$T/s/scene_sar.tif
MT="$B/mm_translate -q --threads 1 --steps 1 --model $MODEL"
OO="-oo MODEL=$MODEL -oo STEPS=1 -oo THREADS=1"

# --- gdalinfo: grid, CRS, bands, blocks, nodata, provenance
expect 0 "" gdalinfo $OO "MM:rgb:$S"
I=$T/out.txt
grep -q "Driver: MM/" "$I" || fail "gdalinfo: driver"
grep -q "Size is 72, 54" "$I" || fail "gdalinfo: size"
grep -q 'ID\["EPSG",32632\]' "$I" || fail "gdalinfo: CRS"
grep -q "Origin = (500000.000000000000000,5000000.000000000000000)" "$I" || fail "gdalinfo: origin"
grep -q "Band 3 Block=256x256 Type=Byte, ColorInterp=Blue" "$I" || fail "gdalinfo: bands"
grep -q "Band 4" "$I" && fail "gdalinfo: 4 bands"
grep -q "NoData Value=0" "$I" || fail "gdalinfo: nodata (the source's -9999 as Byte: 0, as mm_translate)"
for k in SYNTHETIC=YES MM_MODALITY=rgb MM_STEPS=1 "MM_TOOL=gdal_MM" MM_TILING=blend MM_WINDOW=32 \
         MM_OVERLAP=8 "MM_SOURCE=sar:$S" "MM_MODEL_SHA256=$(sha256sum "$MODEL" | cut -c1-64)"; do
    grep -q -- "$k" "$I" || fail "gdalinfo: $k"
done
expect 0 "" gdalinfo $OO "MM:sar:$T/s/scene_rgb.tif"
grep -q "Band 1 Block=256x256 Type=Float32" "$T/out.txt" || fail "gdalinfo: SAR is Float32 dB"

# a source georeferenced by GCPs: the dataset has its GCPs
gdal_translate -q -gcp 0 0 500000 5000000 -gcp 72 0 500720 5000000 -gcp 0 54 500000 4999460 \
    "$S" "$T/s/gcp_sar.tif"
expect 0 "" gdalinfo $OO "MM:rgb:$T/s/gcp_sar.tif"
grep -q "GCP\[  2\]: Id=3" "$T/out.txt" && grep -q "(0,54) -> (500000,4999460" "$T/out.txt" ||
    fail "GCPs: $(grep GCP "$T/out.txt")"

# --- full reads and unaligned windows equal mm_translate's output (RGB from SAR, SAR from RGB)
$MT "$S" "$T/ref_rgb.tif" 2>/dev/null || fail "mm_translate sar -> rgb"
$MT -t sar "$T/s/scene_rgb.tif" "$T/ref_sar.tif" || fail "mm_translate rgb -> sar"
gdal_translate -q -of VRT $OO "MM:rgb:$S" "$T/rgb.vrt" # (the open options are kept in the VRT)
same "$T/ref_rgb.tif" "$T/rgb.vrt"
for w in "5 7 40 30" "33 21 39 33" "0 0 1 1" "71 53 1 1" "23 0 3 54"; do
    same "$T/ref_rgb.tif" "$T/rgb.vrt" $w
done
gdal_translate -q -of VRT $OO "MM:sar:$T/s/scene_rgb.tif" "$T/sar.vrt"
same "$T/ref_sar.tif" "$T/sar.vrt"
same "$T/ref_sar.tif" "$T/sar.vrt" 13 9 50 41

# mm_translate's -b, --profile and -ot as BANDS, PROFILE and OT
$MT -b 1 --profile sar=db:-30:10 --profile rgb=reflectance:0:10000 -ot UInt16 "$S" "$T/ref_pr_rgb.tif" 2>/dev/null ||
    fail "mm_translate -b --profile -ot"
gdal_translate -q -of VRT $OO -oo BANDS=1 -oo PROFILE=sar=db:-30:10,rgb=reflectance:0:10000 -oo OT=UInt16 \
    "MM:rgb:$S" "$T/pr.vrt"
gdalinfo "$T/pr.vrt" | grep -q "Type=UInt16" || fail "OT=UInt16"
same "$T/ref_pr_rgb.tif" "$T/pr.vrt"
same "$T/ref_pr_rgb.tif" "$T/pr.vrt" 9 11 30 20

# --- several 256 x 256 blocks (600 x 520), the negate test processor (window 64): full and
# windows across block boundaries, read in any order
BS=$T/big/scene_sar.tif
$B/mm_translate -q --processor negate --window 64 --model "$MODEL" -t rgb "$BS" "$T/ref_big.tif" 2>/dev/null ||
    fail "mm_translate --processor negate"
gdal_translate -q -of VRT -oo MODEL="$MODEL" -oo PROCESSOR=negate -oo WINDOW=64 "MM:rgb:$BS" "$T/big.vrt"
same "$T/ref_big.tif" "$T/big.vrt"
for w in "250 240 20 30" "255 0 300 520" "511 257 89 263" "599 519 1 1"; do
    same "$T/ref_big.tif" "$T/big.vrt" $w
done

# --- gdalwarp through the driver; -multi with 2 threads equals one thread
expect 0 "" gdalwarp -q -t_srs EPSG:4326 $OO "MM:rgb:$S" "$T/w1.tif"
gdalinfo "$T/w1.tif" | grep -q 'ID\["EPSG",4326\]' || fail "gdalwarp: CRS"
expect 0 "" gdalwarp -q -multi -wo NUM_THREADS=2 --config GDAL_NUM_THREADS 2 -t_srs EPSG:4326 $OO "MM:rgb:$S" "$T/w2.tif"
same "$T/w1.tif" "$T/w2.tif"
expect 0 "" gdalwarp -q -multi -wo NUM_THREADS=2 -t_srs EPSG:4326 "$T/big.vrt" "$T/wb2.tif"
expect 0 "" gdalwarp -q -t_srs EPSG:4326 "$T/ref_big.tif" "$T/wb1.tif"
same "$T/wb1.tif" "$T/wb2.tif"

# --- Python GDAL: a read equal to mm_translate's; the counters; threads reading one dataset
cat >"$T/read.py" <<'PYEOF'
import sys, threading
from osgeo import gdal
import numpy as np
gdal.UseExceptions()
src, model, ref, cache = sys.argv[1:5]
oo = ["MODEL=" + model, "STEPS=1", "THREADS=1", "CACHE=" + cache]
ds = gdal.OpenEx("MM:rgb:" + src, gdal.OF_RASTER, open_options=oo)
a = ds.ReadAsArray()
b = gdal.Open(ref).ReadAsArray()
assert a.shape == (3, 54, 72) and a.dtype == np.uint8, (a.shape, a.dtype)
assert np.array_equal(a, b), "python read differs from mm_translate"
st = ds.GetMetadata("MM_STATS")
assert int(st["WINDOWS_COMPUTED"]) == 6 and int(st["DISK_HITS"]) == 0, st
ds = None
# a second dataset on the same cache: every window from the SQLite file
ds = gdal.OpenEx("MM:rgb:" + src, gdal.OF_RASTER, open_options=oo)
a2 = ds.ReadAsArray()
st = ds.GetMetadata("MM_STATS")
assert int(st["WINDOWS_COMPUTED"]) == 0 and int(st["DISK_HITS"]) == 6, st
assert np.array_equal(a2, b)
# threads, each with its own dataset (a GDAL dataset is for one thread at a time)
out = {}
def rd(k, d):
    out[k] = d.ReadAsArray()
th = [threading.Thread(target=rd, args=(k, gdal.OpenEx("MM:rgb:" + src, gdal.OF_RASTER, open_options=oo[:3]))) for k in range(4)]
[t.start() for t in th]
[t.join() for t in th]
for k in range(4):
    assert np.array_equal(out[k], b), "thread %d" % k
print("ok")
PYEOF
if $PY -c "import osgeo.gdal, numpy" 2>/dev/null; then
    expect 0 "" $PY "$T/read.py" "$S" "$MODEL" "$T/ref_rgb.tif" "$T/py.sqlite"
    grep -q ok "$T/out.txt" || fail "python read: $(cat "$T/out.txt")"
else
    fail "python3-gdal (osgeo) and numpy are needed ($PY)"
fi

# a source with a mask and no nodata value: the same pixels and the same per-dataset mask
gdal_translate -q -a_nodata none -mask 1 "$S" "$T/s/masked_sar.tif"
$MT "$T/s/masked_sar.tif" "$T/ref_masked_rgb.tif" || fail "mm_translate masked"
gdal_translate -q $OO "MM:rgb:$T/s/masked_sar.tif" "$T/masked_drv.tif" || fail "driver masked"
expect 0 "" $PY -c "
from osgeo import gdal
a, b = gdal.Open('$T/ref_masked_rgb.tif'), gdal.Open('$T/masked_drv.tif')
ma, mb = (d.GetRasterBand(1).GetMaskBand().ReadAsArray() for d in (a, b))
assert b.GetRasterBand(1).GetMaskFlags() == gdal.GMF_PER_DATASET
assert (ma == 0).sum() > 0 and (ma == mb).all() and (a.ReadAsArray() == b.ReadAsArray()).all()
print('ok')"
grep -q ok "$T/out.txt" || fail "masked source: $(cat "$T/err.txt")"

# --- the SQLite cache: a second read computes nothing; two processes at once; a changed source
C="-oo CACHE=$T/c.sqlite"
gdal_translate -q $OO $C --config CPL_DEBUG MM "MM:rgb:$S" "$T/c1.tif" 2>"$T/dbg.txt" || fail "cached read 1"
counted | grep -q "6 computed" || fail "first read: $(counted)"
gdal_translate -q $OO $C --config CPL_DEBUG MM "MM:rgb:$S" "$T/c2.tif" 2>"$T/dbg.txt" || fail "cached read 2"
counted | grep -q "0 computed in 0 processor calls, 0 from memory, 6 from the SQLite cache" ||
    fail "second read: $(counted)"
same "$T/ref_rgb.tif" "$T/c2.tif"
# two processes at once on a new cache file (the larger raster: 99 windows each)
P="-oo MODEL=$MODEL -oo PROCESSOR=negate -oo WINDOW=64 -oo CACHE=$T/p.sqlite"
gdal_translate -q $P "MM:rgb:$BS" "$T/p1.tif" 2>"$T/p1.err" & p1=$!
gdal_translate -q $P "MM:rgb:$BS" "$T/p2.tif" 2>"$T/p2.err" & p2=$!
wait $p1 || fail "process 1: $(cat "$T/p1.err")"
wait $p2 || fail "process 2: $(cat "$T/p2.err")"
same "$T/ref_big.tif" "$T/p1.tif"
same "$T/ref_big.tif" "$T/p2.tif"
gdal_translate -q $P --config CPL_DEBUG MM "MM:rgb:$BS" "$T/p3.tif" 2>"$T/dbg.txt" || fail "read 3"
counted | grep -q " 0 computed" || fail "after two processes: $(counted)"
same "$T/ref_big.tif" "$T/p3.tif"
# a source changed on disk: new pixels, equal to mm_translate's of the new file
cp "$S" "$T/s/chg_sar.tif"
gdal_translate -q $OO $C "MM:rgb:$T/s/chg_sar.tif" "$T/ch1.tif" || fail "changed: read 1"
gdal_translate -q -scale 0 1 0 3 -ot Float32 "$S" "$T/tmp_sar.tif" && cp "$T/tmp_sar.tif" "$T/s/chg_sar.tif"
gdal_translate -q $OO $C --config CPL_DEBUG MM "MM:rgb:$T/s/chg_sar.tif" "$T/ch2.tif" 2>"$T/dbg.txt" || fail "changed: read 2"
counted | grep -q "6 computed" || fail "changed source: not recomputed: $(counted)"
cmp -s "$T/ch1.tif" "$T/ch2.tif" && fail "changed source: same pixels as before"
$MT "$T/s/chg_sar.tif" "$T/ref_ch_rgb.tif" 2>/dev/null
same "$T/ref_ch_rgb.tif" "$T/ch2.tif"

# --- a .mmvrt file: two aligned sources (SAR and NIR -> RGB), relative paths, settings
cat >"$T/s/two.mmvrt" <<XEOF
<MMDataset target="rgb">
  <Source modality="sar">scene_sar.tif</Source>
  <Source modality="nir">scene_nir.tif</Source>
  <Model>$MODEL</Model>
  <Steps>1</Steps>
  <Threads>1</Threads>
</MMDataset>
XEOF
$MT -s "sar:$S" -s "nir:$T/s/scene_nir.tif" "$T/ref_two_rgb.tif" 2>/dev/null || fail "mm_translate two sources"
expect 0 "" gdalinfo "$T/s/two.mmvrt"
grep -q "MM_SOURCE=sar:$S;nir:$T/s/scene_nir.tif" "$T/out.txt" || fail ".mmvrt: MM_SOURCE"
same "$T/ref_two_rgb.tif" "$T/s/two.mmvrt"
same "$T/ref_two_rgb.tif" "$T/s/two.mmvrt" 17 3 40 45

# --- overviews: none for a model without a GSD range (the tiny model); with the range 10-40 m
# (a copy of the tiny model with a "geo" section) and the 10 m samples, factors 2 and 4; an
# overview is the translation of the source averaged by GDAL (a VRT, -r average) at that factor
gdalinfo $OO "MM:rgb:$S" | grep -q "Overviews" && fail "overviews without a GSD range"
$PY - "$MODEL" "$T/geo_model.safetensors" <<'PYEOF'
import json, struct, sys
f = open(sys.argv[1], "rb")
n = struct.unpack("<Q", f.read(8))[0]
h = json.loads(f.read(n))
rest = f.read()
c = json.loads(h["__metadata__"]["config"])
c["geo"] = {"gsd_range_m": [10, 40]}
h["__metadata__"]["config"] = json.dumps(c)
b = json.dumps(h).encode()
b += b" " * ((8 - len(b) % 8) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(b)) + b + rest)
PYEOF
G="-oo MODEL=$T/geo_model.safetensors -oo PROCESSOR=negate -oo WINDOW=64"
expect 0 "" gdalinfo $G "MM:rgb:$BS"
grep -q "Overviews: 300x260, 150x130$" "$T/out.txt" || fail "overviews: $(grep Overviews "$T/out.txt")"
gdal_translate -q -of VRT -r average -outsize 150 130 "$BS" "$T/big/red4_sar.vrt"
$B/mm_translate -q --processor negate --window 64 --model "$T/geo_model.safetensors" -t rgb \
    "$T/big/red4_sar.vrt" "$T/ref_ovr4.tif" 2>/dev/null || fail "mm_translate on the reduced source"
gdal_translate -q -of VRT $G -oo OVERVIEW_LEVEL=1 "MM:rgb:$BS" "$T/ovr4.vrt"
same "$T/ref_ovr4.tif" "$T/ovr4.vrt"
gdal_translate -q $G -outsize 150 130 --config CPL_DEBUG MM "MM:rgb:$BS" "$T/o.tif" 2>"$T/dbg.txt"
counted | grep -q " 9 computed" || fail "a 1/4 read does not run the 9 windows of the overview: $(counted)"

# --- bad input: a clear GDAL error and a non-zero exit, no crash
expect 1 "not a connection string MM:<target modality>:<source>" gdalinfo "MM:rgb"
expect 1 "not a connection string" gdalinfo "MM::$S"
expect 1 "cannot open the source '$T/none.tif'" gdalinfo $OO "MM:rgb:$T/none.tif"
expect 1 "has no modality 'dem'" gdalinfo $OO "MM:dem:$S"
expect 1 "has no modality 'lidar'" gdalinfo $OO -oo SOURCE_MODALITY=lidar "MM:rgb:$S"
expect 1 "already 'sar', the target" gdalinfo $OO "MM:sar:$S"
expect 1 "STEPS must be a decimal integer from 1 to 65535" gdalinfo -oo MODEL="$MODEL" -oo STEPS=x "MM:rgb:$S"
expect 1 "band 2 does not exist" gdalinfo $OO -oo BANDS=2 "MM:rgb:$S"
expect 1 "BANDS takes band numbers" gdalinfo $OO -oo BANDS=1,x "MM:rgb:$S"
expect 1 "no source or target is 'dem'" gdalinfo $OO -oo PROFILE=dem=byte "MM:rgb:$S"
expect 1 "unknown profile 'zz'" gdalinfo $OO -oo PROFILE=sar=zz "MM:rgb:$S"
expect 1 "OT takes a real GDAL data type" gdalinfo $OO -oo OT=Foo "MM:rgb:$S"
expect 1 "SAMPLER takes euler, heun or euler_maruyama (in any case), got 'rk4'" gdalinfo $OO -oo SAMPLER=rk4 "MM:rgb:$S"
expect 1 "MM: .*$T/none.safetensors" gdalinfo -oo MODEL="$T/none.safetensors" "MM:rgb:$S"
printf 'not a model' >"$T/bad.safetensors"
expect 1 "MM: " gdalinfo -oo MODEL="$T/bad.safetensors" "MM:rgb:$S"
cp "$S" "$T/s/noname.tif"
expect 1 "cannot tell the modality of '$T/s/noname.tif'" gdalinfo $OO "MM:rgb:$T/s/noname.tif"
echo '<MMDataset target="rgb"></MMDataset>' >"$T/s/empty.mmvrt"
expect 1 "needs a target modality" gdalinfo "$T/s/empty.mmvrt"
echo '<MMDataset target="rgb"><Source>' >"$T/s/broken.mmvrt"
expect 1 "is not well-formed XML" gdalinfo "$T/s/broken.mmvrt"
mkdir "$T/ro" && expect 1 "cannot open the cache" gdalinfo $OO -oo CACHE="$T/ro/no/such/dir/c.sqlite" "MM:rgb:$S"

[ "$fails" -eq 0 ] && echo "gdal_MM driver: all checks passed"
[ "$fails" -eq 0 ]
