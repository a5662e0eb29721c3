#!/bin/sh
# Quality of SAR -> RGB on real Sentinel-1 VH / Sentinel-2 RGB pairs (docs/quality.md, "Real
# data"), in one command:
#
#   tests/bench/real_quality.sh BUILD_DIR [N]
#
# Test scenes: the first N volkov_* scenes of the test split (all 31 without N; 1024 x 1024),
# any other volkov scene with at least 2 % water by the mask rule below (so that the water AUC
# has scenes to average over), and the sen12mscr_* ones (256 x 256). Methods, each writing RGB reflectance x 10000 (UInt16) on the
# SAR grid:
#   model       mm_translate with MODEL (default models/default.safetensors), --steps STEPS
#               (default 8), --seed 1
#   model-mean  with SAMPLES=K (K >= 2): the same model with --samples K, the per-pixel mean of K
#               samples (the posterior-mean estimate; K times the model's time)
#   sim-only    the same with SIM_MODEL, the simulator-only model (models/sim-default.safetensors,
#               else /work/data/models/sim-default.safetensors)
#   regression  mm_baseline: the mean RGB per SAR bin (256 bins over [-25, 5] dB of the 5 x 5 box
#               mean), fitted on every (sar, rgb) pair of the training split (mm_baseline --pairs)
# Water mask of each scene from its REFERENCE RGB (mm_eval --make-water-mask: max band < 0.07,
# B >= 0.5 R, 5 x 5 std of the luminance < 0.01), as <id>_water.tif in the work directory.
# Scores (mm_eval --json against the reference, with the real-data classifier fitted on the
# training split's reference RGB, mm_eval --fit-classifier real-rgb): PSNR, SSIM, FSIM, W1 per
# band, texture, class agreement and mIoU, water AUC; and the water AUC of the SAR input itself
# (mm_eval --auc-only). The report (real_quality_report.py) leaves out scenes with less than 2 %
# water from the AUC means.
#
# Environment: MODEL, SIM_MODEL, STEPS, SAMPLES, REAL_CROP (pixels: score only the central REAL_CROP x
# REAL_CROP window of the larger scenes, e.g. 512 for a quarter of the time), REAL_DATA (default /work/data/real), REAL_WORK (work
# files, default /tmp/mm-real-quality; the classifier and the table are cached there),
# REAL_OUT (default docs/quality: real_results.md, real_results.jsonl, real_sar2rgb.png).
# The report step runs /usr/bin/python3 (numpy, GDAL's bindings); the rest is the project's tools.
set -eu
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 BUILD_DIR [N]" >&2
    exit 2
fi
B=$1
N=${2:-all}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
D=${REAL_DATA:-/work/data/real}
W=${REAL_WORK:-/tmp/mm-real-quality}
OUT=${REAL_OUT:-$ROOT/docs/quality}
MODEL=${MODEL:-$ROOT/models/default.safetensors}
if [ -z "${SIM_MODEL:-}" ]; then
    SIM_MODEL=$ROOT/models/sim-default.safetensors
    [ -f "$SIM_MODEL" ] || SIM_MODEL=/work/data/models/sim-default.safetensors
fi
STEPS=${STEPS:-8}
SAMPLES=${SAMPLES:-1}
case $SAMPLES in '' | *[!0-9]* | 0) echo "$0: SAMPLES must be a positive integer" >&2; exit 2 ;; esac
CROP=${REAL_CROP:-}
case $CROP in '' | *[!0-9]*) CROP="" ;; esac
for t in mm_translate mm_eval mm_baseline; do
    [ -x "$B/$t" ] || { echo "$0: $B/$t not built" >&2; exit 1; }
done
case $N in all) ;; '' | *[!0-9]* | 0) echo "$0: N must be a positive integer" >&2; exit 2 ;; esac
for f in "$MODEL" "$SIM_MODEL" "$D/train" "$D/test"; do
    [ -e "$f" ] || { echo "$0: $f not found" >&2; exit 1; }
done
mkdir -p "$W/cache" "$OUT"
R="$W/run"
rm -rf "$R"
mkdir -p "$R"
start=$(date +%s)
log() { echo "real_quality: [$(($(date +%s) - start)) s] $*" >&2; }

# the real-data classifier and the regression table, fitted once on the training split (cached,
# and fitted again when the training files or the tools change)
stamp=$( (ls -l --time-style=full-iso "$D"/train; sha256sum "$B/mm_eval" "$B/mm_baseline") | sha256sum | cut -c1-16)
if [ "$(cat "$W/cache/stamp" 2>/dev/null)" != "$stamp" ]; then
    rm -f "$W/cache/real_rgb.clf" "$W/cache/sar2rgb_real.lut"
    echo "$stamp" >"$W/cache/stamp"
fi
if [ ! -s "$W/cache/real_rgb.clf" ]; then
    # shellcheck disable=SC2046
    "$B/mm_eval" --fit-classifier real-rgb --out "$W/cache/real_rgb.clf" $(ls "$D"/train/*_rgb.tif) >&2
fi
if [ ! -s "$W/cache/sar2rgb_real.lut" ]; then
    for s in "$D"/train/*_sar.tif; do
        [ -f "${s%_sar.tif}_rgb.tif" ] && echo "$s ${s%_sar.tif}_rgb.tif"
    done >"$W/cache/train_pairs.txt"
    "$B/mm_baseline" --fit -s sar -t rgb --pairs "$W/cache/train_pairs.txt" --out "$W/cache/sar2rgb_real.lut" >&2
fi
log "classifier and regression table ready"

# the test scenes: the first N volkov, then the sen12mscr ones
ids() { # PREFIX: the test scenes with that prefix, in order
    for f in "$D"/test/"$1"_*_sar.tif; do
        [ -f "$f" ] && basename "$f" _sar.tif
    done
}
scenes=$(ids volkov)
if [ "$N" != all ]; then
    first=$(echo "$scenes" | head -n "$N")
    wet=""
    for id in $(echo "$scenes" | tail -n +"$((N + 1))"); do
        f=$("$B/mm_eval" --make-water-mask "$D/test/${id}_rgb.tif" --out "$R/wet_probe.tif" | sed 's/.*: \([0-9.]*\) water.*/\1/')
        awk -v f="$f" 'BEGIN { exit !(f >= 0.02) }' && wet="$wet $id"
    done
    rm -f "$R/wet_probe.tif"
    [ -z "$wet" ] || log "added for the water AUC (>= 2 % water):$wet"
    scenes="$first$wet"
fi
scenes="$scenes $(ids sen12mscr)"

# SAR input: dB (the files say so: unit type dB, SAR_UNITS=db); with --sar-units the model's
# own dB window is used, else (an older mm_translate) the window given as a profile
sar_opts() { # MODEL
    if "$B/mm_translate" --help 2>&1 | grep -q -- --sar-units; then
        echo "--sar-units db"
    else
        win=$("$B/mm_info" "$1" 2>/dev/null | sed -n 's/.*"sar":"[a-z]*:\(-\{0,1\}[0-9.]*\):\(-\{0,1\}[0-9.]*\)".*/\1:\2/p' | head -1)
        echo "--profile sar=db:${win:--25:5}"
    fi
}
MODEL_SAR=$(sar_opts "$MODEL")
SIM_SAR=$(sar_opts "$SIM_MODEL")
same_model=0
cmp -s "$MODEL" "$SIM_MODEL" && same_model=1
translate() { # MODEL SAR_OPTS SRC DST [more options]
    m=$1 o=$2 src=$3 dst=$4
    shift 4
    # shellcheck disable=SC2086
    "$B/mm_translate" -q --model "$m" --steps "$STEPS" --seed 1 -s sar -t rgb $o \
        --profile rgb=reflectance:0:10000 "$@" "$src" "$dst"
}
record() { # scene method water_fraction json
    src=${1%%_*}
    printf '{"scene": "%s", "source": "%s", "method": "%s", "water_fraction": %s, "eval": %s}\n' \
        "$1" "$src" "$2" "$3" "$4" >>"$R/evals.jsonl"
}

for id in $scenes; do
    # the scene's SAR and RGB in the run directory (VRT), the central CROP x CROP window with
    # REAL_CROP when the scene is larger
    sar="$R/${id}_sar.vrt" ref="$R/${id}_rgb.vrt" mask="$R/${id}_water.tif"
    win=""
    if [ -n "$CROP" ]; then
        size=$(gdalinfo "$D/test/${id}_sar.tif" | sed -n 's/^Size is \([0-9]*\), \([0-9]*\)/\1 \2/p')
        w=${size% *} h=${size#* }
        [ "$w" -gt "$CROP" ] && [ "$h" -gt "$CROP" ] && win="-srcwin $(((w - CROP) / 2)) $(((h - CROP) / 2)) $CROP $CROP"
    fi
    for k in sar rgb; do
        # shellcheck disable=SC2086
        gdal_translate -q -of VRT $win "$D/test/${id}_$k.tif" "$R/${id}_$k.vrt"
    done
    wf=$("$B/mm_eval" --make-water-mask "$ref" --out "$mask" | sed 's/.*: \([0-9.]*\) water.*/\1/')
    record "$id" sar-input "$wf" "$("$B/mm_eval" --json --auc-only "$sar" --water "$mask")"
    translate "$MODEL" "$MODEL_SAR" "$sar" "$R/${id}_model.tif"
    methods="model sim-only regression"
    if [ "$SAMPLES" -gt 1 ]; then
        translate "$MODEL" "$MODEL_SAR" "$sar" "$R/${id}_model-mean.tif" --samples "$SAMPLES"
        methods="model model-mean sim-only regression"
    fi
    if [ $same_model = 1 ]; then
        cp "$R/${id}_model.tif" "$R/${id}_sim-only.tif"
    else
        translate "$SIM_MODEL" "$SIM_SAR" "$sar" "$R/${id}_sim-only.tif"
    fi
    "$B/mm_baseline" -q --lut "$W/cache/sar2rgb_real.lut" --profile sar=db:-25:5 \
        --profile rgb=reflectance:0:10000 "$sar" "$R/${id}_regression.tif"
    for m in $methods; do
        record "$id" "$m" "$wf" "$("$B/mm_eval" --json --modality rgb --classifier "$W/cache/real_rgb.clf" \
            --water "$mask" "$R/${id}_$m.tif" "$ref")"
    done
    log "$id done (water $wf)"
done

secs=$(($(date +%s) - start))
/usr/bin/python3 "$HERE/real_quality_report.py" --run "$R" --out "$OUT" --crop "${CROP:-0}" \
    --model "$MODEL" --model-sha "$(sha256sum "$MODEL" | cut -c1-16)" \
    --sim-model "$SIM_MODEL" --sim-model-sha "$(sha256sum "$SIM_MODEL" | cut -c1-16)" \
    --steps "$STEPS" --samples "$SAMPLES" --seconds "$secs" --load "$(cut -d' ' -f1-3 /proc/loadavg)" \
    --command "${CROP:+REAL_CROP=$CROP }$([ "$SAMPLES" -gt 1 ] && echo "SAMPLES=$SAMPLES ")tests/bench/real_quality.sh $B${2:+ $2}"
log "wrote $OUT/real_results.md, $OUT/real_results.jsonl and $OUT/real_sar2rgb.png"
