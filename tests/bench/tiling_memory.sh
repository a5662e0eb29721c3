#!/bin/sh
# Peak RSS and wall time of mm_translate with the identity processor (window 256, overlap 32) on a
# scene 20,000 pixels wide, against gdal_translate of the same file in the same run, for several
# heights (docs/tools.md, "Memory and speed"). Not part of ctest: it writes ~1 GB per 8,000 rows
# and takes minutes. Needs /usr/bin/time (GNU time) and gdal-bin.
#
# Usage: tests/bench/tiling_memory.sh BUILD_DIR [HEIGHT]...   (default heights: 2000 8000)
#   e.g. tests/bench/tiling_memory.sh build 2000 8000 20000
# The scene: one 20,000 x 2,000 Float32 SAR intensity GeoTIFF (DEFLATE) made by mm_make_samples,
# stacked HEIGHT / 2000 times in a VRT; converted to RGB Byte (the identity processor repeats the
# SAR channel), GDAL_CACHEMAX 256 MB for both tools. Environment: WIDTH (20000), TMPDIR.
set -eu
B=${1:?usage: tiling_memory.sh BUILD_DIR [HEIGHT]...}
shift
HEIGHTS=${*:-2000 8000}
WIDTH=${WIDTH:-20000}
TILE_H=2000
[ -x /usr/bin/time ] || { echo "needs GNU time (/usr/bin/time)" >&2; exit 1; }
command -v gdal_translate >/dev/null || { echo "needs gdal_translate (gdal-bin)" >&2; exit 1; }
MODEL=$(dirname "$0")/../golden/tiny_model.safetensors
T=$(mktemp -d "${TMPDIR:-/tmp}/mm_tiling_bench.XXXXXX")
trap 'rm -rf "$T"' EXIT

mkdir -p "$T/tile"
"$B/mm_make_samples" "$T/tile" "$WIDTH" "$TILE_H" >/dev/null
TILE="$T/tile/scene_sar.tif"

# peak RSS (MB) and wall time (s) of a command, from GNU time -v
measure() {
    /usr/bin/time -v "$@" >/dev/null 2>"$T/time.txt" || { cat "$T/time.txt" >&2; exit 1; }
    rss=$(awk -F: '/Maximum resident set size/ {print int($2 / 1024)}' "$T/time.txt")
    wall=$(awk '/Elapsed \(wall clock\)/ {n = split($NF, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s}' "$T/time.txt")
}

printf "%-8s %-8s %14s %14s %14s %14s %8s\n" width height "mm RSS (MB)" "mm time (s)" "gdal RSS (MB)" "gdal time (s)" ratio
for H in $HEIGHTS; do
    n=$(( (H + TILE_H - 1) / TILE_H ))
    VRT="$T/scene_${H}_sar.vrt"
    {
        echo "<VRTDataset rasterXSize=\"$WIDTH\" rasterYSize=\"$H\">"
        gdalsrsinfo -o wkt1 "$TILE" 2>/dev/null | sed 's/&/\&amp;/g; s/</\&lt;/g; s/>/\&gt;/g; s/^/<SRS>/; s/$/<\/SRS>/'
        echo "<GeoTransform>500000, 10, 0, 5000000, 0, -10</GeoTransform>"
        echo "<VRTRasterBand dataType=\"Float32\" band=\"1\">"
        i=0
        while [ $i -lt $n ]; do
            h=$TILE_H
            [ $(( (i + 1) * TILE_H )) -le "$H" ] || h=$(( H - i * TILE_H ))
            echo "<SimpleSource><SourceFilename relativeToVRT=\"0\">$TILE</SourceFilename><SourceBand>1</SourceBand>"
            echo "<SrcRect xOff=\"0\" yOff=\"0\" xSize=\"$WIDTH\" ySize=\"$h\"/><DstRect xOff=\"0\" yOff=\"$((i * TILE_H))\" xSize=\"$WIDTH\" ySize=\"$h\"/></SimpleSource>"
            i=$((i + 1))
        done
        echo "</VRTRasterBand></VRTDataset>"
    } >"$VRT"
    measure "$B/mm_translate" -q --processor identity --window 256 --overlap 32 --model "$MODEL" \
        --config GDAL_CACHEMAX 256 -s sar -t rgb "$VRT" "$T/out_rgb.tif"
    mm_rss=$rss mm_wall=$wall
    rm -f "$T/out_rgb.tif"
    measure gdal_translate -q --config GDAL_CACHEMAX 256 -ot Byte -scale 0 1 0 255 -b 1 -b 1 -b 1 \
        -co TILED=YES -co COMPRESS=DEFLATE -co BIGTIFF=IF_SAFER -co PHOTOMETRIC=RGB "$VRT" "$T/gdal.tif"
    rm -f "$T/gdal.tif"
    ratio=$(awk -v a="$mm_wall" -v b="$wall" 'BEGIN { printf "%.1f", (b > 0) ? a / b : 0 }')
    printf "%-8s %-8s %14s %14s %14s %14s %8s\n" "$WIDTH" "$H" "$mm_rss" "$mm_wall" "$rss" "$wall" "$ratio"
done
