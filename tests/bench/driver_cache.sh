#!/bin/sh
# Time of a second, cached full read through the GDAL driver gdal_MM against reading a plain
# GeoTIFF of the same size, back to back in one run (docs/performance.md, "GDAL driver").
#
# Usage: tests/bench/driver_cache.sh BUILD_DIR [SIZE] [REPEATS]   (defaults: 2048 pixels, 5)
# The scene: a SIZE x SIZE Float32 SAR GeoTIFF made by mm_make_samples, read as MM:rgb (3 bands,
# Byte). The first read fills the SQLite window cache; its windows are computed by the negate
# test processor with the default model's window (256, overlap 64), so that the first read takes
# seconds instead of hours: the cached reads that are timed do the same work whatever filled the
# cache (read and checksum each window's source pixels, fetch its stored results, blend).
# The plain GeoTIFF: the driver's output written as mm_translate writes (tiled, DEFLATE).
# Both are read by gdal_translate -of MEM (a full read, nothing written), in a fresh process
# each time; the figures are the medians of REPEATS runs of each, alternating: wall time, and CPU
# time (user + system, GNU time), which a loaded machine disturbs less. Needs /usr/bin/time.
set -eu
[ -x /usr/bin/time ] || { echo "needs GNU time (/usr/bin/time)" >&2; exit 1; }
B=${1:?usage: driver_cache.sh BUILD_DIR [SIZE] [REPEATS]}
SIZE=${2:-2048}
REPEATS=${3:-5}
export GDAL_DRIVER_PATH=$B/gdal_driver
MODEL=$(cd "$(dirname "$0")/../golden" && pwd)/tiny_model.safetensors
T=$(mktemp -d "${TMPDIR:-/tmp}/mm_driver_bench.XXXXXX")
trap 'rm -rf "$T"' EXIT
"$B/mm_make_samples" "$T" "$SIZE" "$SIZE" >/dev/null
OO="-oo MODEL=$MODEL -oo PROCESSOR=negate -oo WINDOW=256 -oo CACHE=$T/cache.sqlite"
SRC="MM:rgb:$T/scene_sar.tif"

now() { date +%s.%N; }
t0=$(now)
gdal_translate -q $OO -co TILED=YES -co COMPRESS=DEFLATE -co PHOTOMETRIC=RGB "$SRC" "$T/plain.tif"
t1=$(now)
echo "first read (windows computed by the test processor, stored): $(awk "BEGIN {print $t1 - $t0}") s"

# wall seconds and CPU seconds (user + system, from GNU time) of one full read
timed() {
    /usr/bin/time -f "%e %U %S" -o "$T/time.txt" gdal_translate -q -of MEM "$@" "$T/x" || exit 1
    awk '{print $1 >> "'"$T"'/wall_'"$k"'.txt"; print $2 + $3 >> "'"$T"'/cpu_'"$k"'.txt"}' "$T/time.txt"
}
i=0
while [ "$i" -lt "$REPEATS" ]; do
    k=drv timed $OO "$SRC"
    k=tif timed "$T/plain.tif"
    i=$((i + 1))
done
median() { sort -n "$1" | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
d=$(median "$T/wall_drv.txt")
p=$(median "$T/wall_tif.txt")
dc=$(median "$T/cpu_drv.txt")
pc=$(median "$T/cpu_tif.txt")
# the cached reads computed nothing
gdal_translate -q -of MEM $OO --config CPL_DEBUG MM "$SRC" "$T/x" 2>&1 | grep "MM: MM:" | sed 's/^/check: /'
echo "cache file: $(du -m "$T/cache.sqlite" | cut -f1) MB"
echo "size ${SIZE}x${SIZE}, median of $REPEATS: wall: cached driver read $d s, plain GeoTIFF read $p s, ratio $(awk "BEGIN {printf \"%.1f\", $d / $p}")"
echo "size ${SIZE}x${SIZE}, median of $REPEATS: CPU (user + system): cached driver read $dc s, plain GeoTIFF read $pc s, ratio $(awk "BEGIN {printf \"%.1f\", $dc / $pc}")"
