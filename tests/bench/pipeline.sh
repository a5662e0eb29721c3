#!/bin/sh
# Wall time of mm_translate with the run's I/O pipeline (libmmgeo/src/pipeline.c: windows read
# ahead, finished strips written behind, in two threads) against the same run without it
# (MMGEO_PIPELINE=0), in the same run of this script, alternating, REPS times each (median).
# Two cases: the identity processor (I/O and GeoTIFF DEFLATE compression only: the most the
# overlap can hide) and the tiny model (the computation dominates on a CPU). Also checks that
# both outputs are byte-identical pixel for pixel (gdalinfo -checksum of every band).
# Not part of ctest: it takes a few minutes. Needs gdal-bin.
#
# Usage: tests/bench/pipeline.sh BUILD_DIR      Environment: WIDTH (6000), HEIGHT (2000),
#        REPS (3), THREADS (threads of the model case, 2), TMPDIR.
set -eu
B=${1:?usage: pipeline.sh BUILD_DIR}
WIDTH=${WIDTH:-6000}
HEIGHT=${HEIGHT:-2000}
REPS=${REPS:-3}
THREADS=${THREADS:-2}
command -v gdalinfo >/dev/null || { echo "needs gdalinfo (gdal-bin)" >&2; exit 1; }
MODEL=$(dirname "$0")/../golden/tiny_model.safetensors
T=$(mktemp -d "${TMPDIR:-/tmp}/mm_pipeline_bench.XXXXXX")
trap 'rm -rf "$T"' EXIT
"$B/mm_make_samples" "$T" "$WIDTH" "$HEIGHT" >/dev/null
SRC="$T/scene_sar.tif"

now() { date +%s.%N; }
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# case NAME ARGS...: REPS alternating runs with the pipeline off and on
bench() {
    name=$1
    shift
    : >"$T/off.txt"
    : >"$T/on.txt"
    r=0
    while [ $r -lt "$REPS" ]; do
        for p in 0 1; do
            rm -f "$T/out_$p"_rgb.tif
            t0=$(now)
            MMGEO_PIPELINE=$p "$B/mm_translate" -q "$@" "$SRC" "$T/out_$p"_rgb.tif 2>"$T/err.txt" ||
                { cat "$T/err.txt" >&2; exit 1; }
            t1=$(now)
            if [ $p = 0 ]; then f=off; else f=on; fi
            awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }' >>"$T/$f.txt"
        done
        r=$((r + 1))
    done
    a=$(gdalinfo -checksum "$T/out_0_rgb.tif" | grep Checksum | tr '\n' ' ')
    b=$(gdalinfo -checksum "$T/out_1_rgb.tif" | grep Checksum | tr '\n' ' ')
    [ "$a" = "$b" ] && same=yes || same=NO
    off=$(median <"$T/off.txt")
    on=$(median <"$T/on.txt")
    printf "%-34s %10s %10s %8s %10s\n" "$name" "$off" "$on" \
        "$(awk -v a="$off" -v b="$on" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }')" "$same"
}

echo "scene: ${WIDTH} x ${HEIGHT} Float32 SAR (mm_make_samples) -> RGB Byte GeoTIFF (DEFLATE);"
echo "median of $REPS alternating runs each; $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ)"
printf "%-34s %10s %10s %8s %10s\n" case "off (s)" "on (s)" "off/on" identical
bench "identity, window 256, overlap 32" --processor identity --window 256 --overlap 32 \
    --model "$MODEL" -s sar -t rgb
bench "tiny model, 1 step, -srcwin 1024" --threads "$THREADS" --steps 1 --guidance 1 \
    --model "$MODEL" -s sar -t rgb -srcwin 0 0 1024 512
