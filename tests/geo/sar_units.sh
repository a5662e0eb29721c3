#!/bin/sh
# SAR sources as users hold them (issue 16 part 3): one scene as sigma0 dB, linear power and
# UInt16 GRD amplitude (mm_make_sar_units) gives the same translation (identity processor, Float32
# output on the model's [-1, 1] scale times 127.5: 1 unit = 30 dB / 255 = 0.118 dB) with
# --sar-units or the file's metadata; a dB file without either is refused (message naming
# --sar-units, nothing written); the VH band of a multi-band file; mm_embed; the GDAL driver's
# SAR_UNITS / SAR_BAND; SAR outputs carry their units and read back without an option.
# Usage: sar_units.sh BUILD_DIR MODEL MAKE_SAR_UNITS [PLUGIN_DIR]
set -u
B=$1
MODEL=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
MK=$3
PLUGIN=${4:-}
TEST_NAME=mm_sar_units_test
. "$(dirname "$0")/../lib/cli.sh" # $T, fail, expect, no_file
MTI="$B/mm_translate -q --processor identity --model $MODEL -t rgb -ot Float32"
"$MK" "$T" >/dev/null || { echo "FAIL: mm_make_sar_units"; exit 1; }
# same A B: the two rasters have the same bytes
same() {
    rm -f "$T/s1.img" "$T/s2.img"
    gdal_translate -q -of ENVI "$1" "$T/s1.img" && gdal_translate -q -of ENVI "$2" "$T/s2.img" ||
        { fail "cannot read $1 / $2"; return; }
    cmp -s "$T/s1.img" "$T/s2.img" || fail "$1 and $2 differ"
}
# near A B TOL: max |a - b| <= TOL
near() {
    d=$("$MK" --maxdiff "$1" "$2") || { fail "cannot compare $1 and $2"; return; }
    awk -v d="$d" -v t="$3" 'BEGIN { exit !(d <= t) }' || fail "$1 and $2 differ by $d (> $3)"
}

# --- (a) the same scene in three units: the same output
expect 0 "" $MTI --sar-units db "$T/sar_db.tif" "$T/o_db.tif"
expect 0 "" $MTI "$T/sar_linear.tif" "$T/o_lin.tif"              # detected: linear
expect 0 "" $MTI --sar-units linear "$T/sar_linear.tif" "$T/o_lin2.tif"
same "$T/o_lin.tif" "$T/o_lin2.tif"
near "$T/o_db.tif" "$T/o_lin.tif" 0.0001 # Float32 rounding of 10^(dB/10) only
expect 0 "" $MTI --sar-units amplitude "$T/sar_amp.tif" "$T/o_amp.tif"
expect 0 "" $MTI "$T/sar_amp.tif" "$T/o_amp2.tif"                # UInt16: amplitude
same "$T/o_amp.tif" "$T/o_amp2.tif"
# DN rounded to integers, DN >= 30 here: at most 20 log10(30.5 / 30) = 0.144 dB = 1.23 units
near "$T/o_db.tif" "$T/o_amp.tif" 1.25

# --- (b) dB without option or metadata: refused, nothing written; so are DN stored as float
expect 1 "give --sar-units db" $MTI "$T/sar_db.tif" "$T/x_rgb.tif"
no_file "$T/x_rgb.tif"
expect 1 "look like sigma0 in dB" $MTI "$T/sar_db.tif" "$T/x_rgb.tif"
expect 1 "--sar-units db|linear|amplitude" $MTI "$T/sar_ampf.tif" "$T/x_rgb.tif"
no_file "$T/x_rgb.tif"
expect 0 "" $MTI --sar-units amplitude "$T/sar_ampf.tif" "$T/o_ampf.tif"
same "$T/o_amp.tif" "$T/o_ampf.tif"
expect 2 "db, linear or amplitude" $MTI --sar-units decibel "$T/sar_db.tif" "$T/x_rgb.tif"
no_file "$T/x_rgb.tif"

# --- (c) the file's metadata: the band unit type dB, or a SAR_UNITS=db item; the option wins
expect 0 "" $MTI "$T/sar_dbunit.tif" "$T/o_dbunit.tif"
same "$T/o_db.tif" "$T/o_dbunit.tif"
expect 0 "" $MTI "$T/sar_dbmeta.tif" "$T/o_dbmeta.tif"
same "$T/o_db.tif" "$T/o_dbmeta.tif"
expect 0 "" $MTI --sar-units linear "$T/sar_dbunit.tif" "$T/o_wrong.tif" # as told (negatives: nodata)
# --profile sar=KIND says the units too; against --sar-units it must agree
expect 0 "" $MTI --profile sar=db "$T/sar_db.tif" "$T/o_dbp.tif"
same "$T/o_db.tif" "$T/o_dbp.tif"
expect 0 "" $MTI --profile sar=db --sar-units db "$T/sar_db.tif" "$T/o_dbp2.tif"
same "$T/o_db.tif" "$T/o_dbp2.tif"
expect 1 "agree" $MTI --profile sar=intensity --sar-units db "$T/sar_db.tif" "$T/x_rgb.tif"
no_file "$T/x_rgb.tif"

# --- (e) bands: VH by description or POLARISATION item; unlabelled: refused naming --sar-band
expect 0 "" $MTI "$T/sar_vvvh.tif" "$T/o_vvvh.tif"
same "$T/o_lin.tif" "$T/o_vvvh.tif"
expect 0 "" $MTI "$T/sar_pol.tif" "$T/o_pol.tif"
same "$T/o_lin.tif" "$T/o_pol.tif"
expect 1 "none is labelled VH.*--sar-band N" $MTI "$T/sar_two.tif" "$T/x_rgb.tif"
no_file "$T/x_rgb.tif"
expect 0 "" $MTI --sar-band 2 "$T/sar_two.tif" "$T/o_two.tif"
same "$T/o_lin.tif" "$T/o_two.tif"
expect 0 "" $MTI -b 2 "$T/sar_two.tif" "$T/o_two_b.tif"
same "$T/o_lin.tif" "$T/o_two_b.tif"
expect 1 "does not exist" $MTI --sar-band 3 "$T/sar_two.tif" "$T/x_rgb.tif"
expect 2 "--sar-band / SAR_BAND must be a decimal integer" $MTI --sar-band 0 "$T/sar_two.tif" "$T/x_rgb.tif"

# --- SAR outputs say they are dB (unit type and SAR_UNITS=db) and read back without an option
S="$B/mm_translate -q --threads 1 --steps 1 --guidance 1 --model $MODEL"
expect 0 "" $S -s rgb:"$T/o_db.tif" -t sar -ot Byte "$T/gen8_sar.tif" # Byte is not dB
gdalinfo "$T/gen8_sar.tif" | grep -q "SAR_UNITS" && fail "a Byte SAR output claims dB"
expect 0 "" $S -s rgb:"$T/o_db.tif" -t sar "$T/gen_sar.tif"
gdalinfo "$T/gen_sar.tif" >"$T/gi.txt"
grep -q "SAR_UNITS=db" "$T/gi.txt" || fail "mm_translate's SAR output has no SAR_UNITS=db"
grep -q "Unit Type: dB" "$T/gi.txt" || fail "mm_translate's SAR output has no unit type dB"
expect 0 "" $MTI "$T/gen_sar.tif" "$T/o_back.tif"
expect 0 "" $MTI --sar-units db "$T/gen_sar.tif" "$T/o_back2.tif"
same "$T/o_back.tif" "$T/o_back2.tif"
G="$B/mm_generate -q --threads 1 --steps 1 --model $MODEL"
expect 0 "" $G -te 500000 4999680 500320 5000000 -tr 10 10 -t_srs EPSG:32632 -t sar:"$T/g_sar.tif"
gdalinfo "$T/g_sar.tif" | grep -q "Unit Type: dB" || fail "mm_generate's SAR output has no unit type dB"

# --- (f) mm_embed: the same option and rules
E="$B/mm_embed -q --threads 1 --model $MODEL"
expect 1 "give --sar-units db" $E "$T/sar_db.tif" "$T/x_emb.tif"
no_file "$T/x_emb.tif"
expect 0 "" $E --sar-units db "$T/sar_db.tif" "$T/e_db.tif"
expect 0 "" $E "$T/sar_linear.tif" "$T/e_lin.tif"
near "$T/e_db.tif" "$T/e_lin.tif" 0.001
expect 0 "" $E --sar-units amplitude "$T/sar_amp.tif" "$T/e_amp.tif"
expect 0 "" $E "$T/sar_vvvh.tif" "$T/e_vvvh.tif"
same "$T/e_lin.tif" "$T/e_vvvh.tif"
expect 1 "--sar-band" $E "$T/sar_two.tif" "$T/x_emb.tif"

# --- (d) the GDAL driver: SAR_UNITS and SAR_BAND, the same checksums as mm_translate
if [ -n "$PLUGIN" ]; then
    export GDAL_DRIVER_PATH=$PLUGIN
    OO="-oo MODEL=$MODEL -oo PROCESSOR=identity"
    sum() { gdalinfo -checksum "$@" 2>"$T/sum_err.txt" | grep "Checksum=" | tr -d ' '; }
    expect 0 "" $MTI --sar-units db -ot Byte "$T/sar_db.tif" "$T/ref_rgb.tif"
    REF=$(sum "$T/ref_rgb.tif")
    [ -n "$REF" ] || fail "no checksum of mm_translate's output"
    expect 1 "SAR_UNITS=db" gdalinfo -checksum $OO "MM:rgb:$T/sar_db.tif"
    grep -q -- "-oo SAR_UNITS=db" "$T/err.txt" || fail "the driver's message names no -oo SAR_UNITS=db"
    [ "$(sum $OO -oo SAR_UNITS=db "MM:rgb:$T/sar_db.tif")" = "$REF" ] ||
        fail "driver SAR_UNITS=db: checksum differs from mm_translate's: $(cat "$T/sum_err.txt")"
    [ "$(sum $OO "MM:rgb:$T/sar_dbunit.tif")" = "$REF" ] || fail "driver: the unit type dB"
    [ "$(sum $OO "MM:rgb:$T/sar_linear.tif")" = "$(sum $OO "MM:rgb:$T/sar_vvvh.tif")" ] ||
        fail "driver: the VH band"
    expect 1 "SAR_BAND=N" gdalinfo -checksum $OO "MM:rgb:$T/sar_two.tif"
    [ "$(sum $OO -oo SAR_BAND=2 "MM:rgb:$T/sar_two.tif")" = "$(sum $OO "MM:rgb:$T/sar_linear.tif")" ] ||
        fail "driver SAR_BAND=2"
    expect 1 "db, linear or amplitude" gdalinfo $OO -oo SAR_UNITS=dbm "MM:rgb:$T/sar_db.tif"
    expect 0 "" gdalinfo $OO -oo SOURCE_MODALITY=rgb "MM:sar:$T/o_db.tif"
    grep -q "Unit Type: dB" "$T/out.txt" || fail "the driver's SAR band has no unit type dB"
    grep -q "SAR_UNITS=db" "$T/out.txt" || fail "the driver's SAR dataset has no SAR_UNITS=db"
fi

[ "$fails" -eq 0 ] && echo "sar_units.sh: all passed" || { echo "sar_units.sh: $fails failure(s)"; exit 1; }
