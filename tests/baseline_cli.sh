#!/bin/sh
# mm_baseline (the lookup-table baseline of docs/quality.md): a table of an identity direction
# reproduces its source within a quantisation step; a fitted direction writes a raster on the
# source's grid in the target's profile and type, as mm_translate does; bad input fails cleanly.
set -eu
sim=$1
base=$2
eval=$3
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$sim" -q --seed 4244 --size 150x100 --gsd 2 --only nir,rgb,sar,label "$dir/a"

# identity: NIR -> NIR, 256 bins over [-1, 1] of reflectance 0..10000: every pixel within one bin
# (78 reflectance units; PSNR >= 20 log10(10000 / 78) = 42 dB), RGB -> RGB with 16 bins a channel
"$base" -q --fit -s nir -t nir --out "$dir/nn.lut" --scenes 2
"$base" -q --lut "$dir/nn.lut" -ot UInt16 --profile nir=reflectance:0:10000 "$dir/a_nir.tif" "$dir/nn.tif"
p=$("$eval" --json --modality nir "$dir/nn.tif" "$dir/a_nir.tif" | sed 's/.*"psnr": \([0-9.a-z-]*\).*/\1/')
echo "NIR -> NIR table: PSNR $p dB"
awk -v p="$p" 'BEGIN { exit !(p > 42) }' || fail "identity NIR table PSNR $p"
"$base" -q --fit -s rgb -t rgb --out "$dir/rr.lut" --scenes 2
"$base" -q --lut "$dir/rr.lut" -ot UInt16 --profile rgb=reflectance:0:10000 "$dir/a_rgb.tif" "$dir/rr.tif"
p=$("$eval" --json --modality rgb "$dir/rr.tif" "$dir/a_rgb.tif" | sed 's/.*"psnr": \([0-9.a-z-]*\).*/\1/')
echo "RGB -> RGB table: PSNR $p dB (band 1)"
awk -v p="$p" 'BEGIN { exit !(p > 25) }' || fail "identity RGB table PSNR $p"

# SAR -> RGB: same grid and CRS, the target's profile and type, provenance; far better than chance
"$base" --fit -s sar -t rgb --out "$dir/sr.lut" --scenes 4 | grep -q "fitted the sar -> rgb" || fail "fit message"
head -1 "$dir/sr.lut" | grep -q "^mm_baseline-lut 1 sar rgb 1 3 256 2 4$" || fail "header: $(head -1 "$dir/sr.lut")"
[ "$(wc -l <"$dir/sr.lut")" = 257 ] || fail "table size"
"$base" -q --lut "$dir/sr.lut" "$dir/a_sar.tif" "$dir/sr.tif"
info=$(gdalinfo "$dir/sr.tif")
echo "$info" | grep -q "Size is 150, 100" || fail "size"
echo "$info" | grep -q "UTM zone 33N" || fail "CRS"
[ "$(gdalinfo "$dir/a_sar.tif" | grep Origin)" = "$(echo "$info" | grep Origin)" ] || fail "origin"
echo "$info" | grep -q "Type=Byte" || fail "default RGB target is Byte (mm_translate's)"
echo "$info" | grep -q "MM_MODALITY=rgb" || fail "modality tag"
echo "$info" | grep -q "MM_BASELINE=per-pixel lookup table sar -> rgb" || fail "provenance"
echo "$info" | grep -q "SYNTHETIC=YES" || fail "synthetic tag"
"$base" -q --lut "$dir/sr.lut" -ot UInt16 --profile rgb=reflectance:0:10000 "$dir/a_sar.tif" "$dir/sr16.tif"
gdalinfo "$dir/sr16.tif" | grep -q "Type=UInt16" || fail "-ot UInt16"
"$base" -q --fit -s rgb -t sar --out "$dir/rs.lut" --scenes 2
"$base" -q --lut "$dir/rs.lut" "$dir/a_rgb.tif" "$dir/rs.tif"
gdalinfo "$dir/rs.tif" | grep -q "Type=Float32" || fail "SAR target is Float32 dB"

# fitted on real image pairs (--pairs): here the simulated SAR (linear intensity, converted to dB)
# and RGB of one scene, listed twice; the table written says 2 pairs, and applied to the same
# SAR it is about as good as the table fitted on simulator scenes
printf '# pairs\n%s %s\n\n%s %s\n' "$dir/a_sar.tif" "$dir/a_rgb.tif" "$dir/a_sar.tif" "$dir/a_rgb.tif" >"$dir/pairs.txt"
"$base" --fit -s sar -t rgb --pairs "$dir/pairs.txt" --out "$dir/pr.lut" | grep -q "on 2 image pairs (30000 pixels)" ||
    fail "pairs fit message"
head -1 "$dir/pr.lut" | grep -q "^mm_baseline-lut 1 sar rgb 1 3 256 2 2$" || fail "pairs header: $(head -1 "$dir/pr.lut")"
"$base" -q --lut "$dir/pr.lut" --profile sar=intensity:-25:5 --profile rgb=reflectance:0:10000 "$dir/a_sar.tif" "$dir/pr.tif"
p=$("$eval" --json --modality rgb "$dir/pr.tif" "$dir/a_rgb.tif" | sed 's/.*"psnr": \([0-9.a-z-]*\).*/\1/')
echo "SAR -> RGB table fitted on the scene's own pair: PSNR $p dB (band 1)"
awk -v p="$p" 'BEGIN { exit !(p > 15) }' || fail "pairs table PSNR $p"
gdal_translate -q -srcwin 0 0 50 50 "$dir/a_rgb.tif" "$dir/small_rgb.tif"
printf '%s %s\n' "$dir/a_sar.tif" "$dir/small_rgb.tif" >"$dir/bad_pairs.txt"

# bad input: message, non-zero exit, nothing under the output name
expect_fail() { # message-pattern, command...
    pat=$1
    shift
    if "$@" 2>"$dir/err"; then fail "accepted: $*"; fi
    grep -q "$pat" "$dir/err" || fail "message for '$*': $(cat "$dir/err")"
}
expect_fail "unknown modality 'xyz'" "$base" --fit -s xyz -t rgb --out "$dir/x.lut"
expect_fail "needs -s SRC -t TGT --out" "$base" --fit -s sar -t rgb
expect_fail "cannot open the lookup table" "$base" --lut "$dir/missing.lut" "$dir/a_sar.tif" "$dir/o.tif"
printf 'mm_baseline-lut 1 sar rgb 1 3 256 2 4\n0.5 0.5\n' >"$dir/short.lut"
expect_fail "is not a lookup table" "$base" --lut "$dir/short.lut" "$dir/a_sar.tif" "$dir/o.tif"
expect_fail "is not a lookup table" "$base" --lut "$dir/a_sar.tif" "$dir/a_sar.tif" "$dir/o.tif"
expect_fail "cannot open" "$base" --lut "$dir/sr.lut" "$dir/missing.tif" "$dir/o.tif"
expect_fail "has 3 bands; the lookup table takes sar with 1" "$base" --lut "$dir/sr.lut" "$dir/a_rgb.tif" "$dir/o.tif"
expect_fail "no source or target is" "$base" --lut "$dir/sr.lut" --profile osm=byte "$dir/a_sar.tif" "$dir/o.tif"
expect_fail "expected --fit" "$base" --lut "$dir/sr.lut" "$dir/a_sar.tif"
expect_fail "a pair must match" "$base" --fit -s sar -t rgb --pairs "$dir/bad_pairs.txt" --out "$dir/x.lut"
expect_fail "cannot open the list of pairs" "$base" --fit -s sar -t rgb --pairs "$dir/missing.txt" --out "$dir/x.lut"
printf '%s\n' "$dir/a_sar.tif" >"$dir/one.txt"
expect_fail "is not \"SRC.tif TGT.tif\"" "$base" --fit -s sar -t rgb --pairs "$dir/one.txt" --out "$dir/x.lut"
[ ! -e "$dir/x.lut" ] || fail "table written on failure"
[ ! -e "$dir/o.tif" ] || fail "output written on failure"

# Ctrl-C (sent once the run's progress bar shows): exit 130, a message, no output, no temporary
gdal_translate -q -outsize 6000 6000 "$dir/a_sar.tif" "$dir/big_sar.tif"
"$base" --lut "$dir/sr.lut" "$dir/big_sar.tif" "$dir/int.tif" >"$dir/int.err" 2>&1 & # the bar is on stdout
pid=$!
i=0
while [ $i -lt 600 ] && ! grep -q "0" "$dir/int.err" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
kill -INT $pid
rc=0
wait $pid || rc=$?
[ "$rc" -eq 130 ] || fail "Ctrl-C: exit $rc (expected 130): $(cat "$dir/int.err")"
grep -q "interrupted; .* was not written" "$dir/int.err" || fail "Ctrl-C: no message"
[ ! -e "$dir/int.tif" ] || fail "Ctrl-C: output written"
left=$(find "$dir" -name '*mmtmp*' -o -name '*.part')
[ -z "$left" ] || fail "temporary files left: $left"
echo "1 passed, 0 failed"
