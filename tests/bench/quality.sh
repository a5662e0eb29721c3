#!/bin/sh
# Quality of the default model on held-out simulator scenes (docs/quality.md):
# for each direction, the model with 8 steps and with 1 step, scored by mm_eval against the
# simulator's reference: PSNR, SSIM, and land-cover accuracy / mIoU through a classifier fitted on
# real simulator images of the target modality (seeds 900000+, never used in training).
#   tests/bench/quality.sh [BUILD_DIR] [SCENES]
set -eu
B=${1:-build}
N=${2:-2}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
for m in rgb nir sar osm; do "$B/mm_eval" --fit-classifier $m --out "$T/$m.clf" --scenes 24 >/dev/null; done
i=0
while [ $i -lt "$N" ]; do
    "$B/mm_simulate" -q --seed $((700001 + i)) --size 256 --gsd 2 "$T/s$i"
    i=$((i + 1))
done
out() { # target modality -> output options in the reference's units
    case $1 in
    rgb | nir | pan) echo "-ot UInt16 --profile $1=reflectance:0:10000" ;;
    *) echo "" ;;
    esac
}
printf '%-10s %-6s %8s %7s %8s %6s\n' direction steps PSNR SSIM accuracy mIoU
for d in sar:rgb rgb:sar nir:rgb rgb:nir pan:rgb osm:rgb rgb:osm sar:osm; do
    s=${d%%:*}
    t=${d##*:}
    for steps in 8 1; do
        acc=0 miou=0 psnr=0 ssim=0 i=0
        while [ $i -lt "$N" ]; do
            # shellcheck disable=SC2046
            "$B/mm_translate" -q --steps $steps --seed 1 -s $s -t $t $(out $t) "$T/s${i}_$s.tif" "$T/g.tif"
            j=$("$B/mm_eval" --json --modality $t --labels "$T/s${i}_label.tif" --classifier "$T/$t.clf" \
                "$T/g.tif" "$T/s${i}_$t.tif")
            acc=$(echo "$j" | sed 's/.*"accuracy": \([0-9.]*\).*/\1/' | awk -v a=$acc '{print a + $1}')
            miou=$(echo "$j" | sed 's/.*"miou": \([0-9.]*\).*/\1/' | awk -v a=$miou '{print a + $1}')
            psnr=$(echo "$j" | sed 's/.*"bands": \[{"psnr": \([0-9.a-z-]*\).*/\1/' | awk -v a=$psnr '{print a + $1}')
            ssim=$(echo "$j" | sed 's/.*"bands": \[{"psnr": [0-9.a-z-]*, "ssim": \([0-9.-]*\).*/\1/' | awk -v a=$ssim '{print a + $1}')
            i=$((i + 1))
        done
        awk -v d="$s->$t" -v st=$steps -v p=$psnr -v s=$ssim -v a=$acc -v m=$miou -v n=$N \
            'BEGIN { printf "%-10s %-6s %8.2f %7.3f %8.3f %6.3f\n", d, st, p / n, s / n, a / n, m / n }'
    done
done
