#!/bin/sh
# Quality of a MetaEarth-MM model on held-out simulator scenes (docs/quality.md), in one command:
#
#   tests/bench/quality.sh BUILD_DIR N_SCENES [MODEL]
#
# For every direction the paper evaluates (SAR->RGB, RGB->SAR, NIR->RGB, RGB->NIR, PAN->RGB,
# OSM->RGB, RGB->OSM), the zero-shot pair SAR->OSM (never trained together) and joint generation:
# the model with 8 sampling steps, the model with 1 step, and the per-pixel lookup-table baseline
# (mm_baseline), scored by mm_eval against the simulator's reference: PSNR, SSIM, FSIM, land-cover
# accuracy and mIoU through a classifier fitted on real simulator images of the target modality,
# and the texture error (per-class local standard deviation against the reference's). Joint
# generation (mm_generate, no source; each pair on its own, and the four modalities together):
# class agreement between the generated modalities, against
# real pairs of the same scene (ceiling) and of unrelated scenes (floor), and texture per
# predicted class against real images.
#
# Scenes: N_SCENES scenes of 160 x 160 pixels (9 model windows of 64 with the default overlap),
# simulator seeds 700001.. (never used in training, docs/training.md), GSD 2, 2.5, 3, 3.5 m in
# turn. Classifiers: mm_eval --fit-classifier, 24 scenes, seeds 900000+. Lookup tables:
# mm_baseline --fit, 32 scenes, seeds 800000+. Both are cached in the work directory.
#
# Writes (QUALITY_OUT, default docs/quality): results.md (the tables), results.json, and a
# side-by-side picture per direction (quality/<src>2<tgt>.png: source | reference | model 8 steps
# | model 1 step | baseline, of the first scene) and of joint generation (joint.png); with the
# default QUALITY_OUT it also replaces the results section of docs/quality.md (between its
# "quality.sh results" markers). Work files in QUALITY_WORK (default /tmp/mm-quality). The report
# step runs /usr/bin/python3 (numpy, GDAL's bindings); the rest is the project's C tools.
set -eu
if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    echo "usage: $0 BUILD_DIR N_SCENES [MODEL]" >&2
    exit 2
fi
B=$1
N=$2
MODEL=${3:-}
HERE=$(cd "$(dirname "$0")" && pwd)
W=${QUALITY_WORK:-/tmp/mm-quality}
OUT=${QUALITY_OUT:-$HERE/../../docs/quality}
STEPS_MANY=${QUALITY_STEPS:-8}
SIZE=160
for t in mm_simulate mm_translate mm_generate mm_eval mm_baseline; do
    [ -x "$B/$t" ] || { echo "$0: $B/$t not built" >&2; exit 1; }
done
case $N in '' | *[!0-9]* | 0) echo "$0: N_SCENES must be a positive integer" >&2; exit 2 ;; esac
mkdir -p "$W/cache" "$OUT"
R="$W/run"
rm -rf "$R"
mkdir -p "$R"
start=$(date +%s)
log() { echo "quality: [$(($(date +%s) - start)) s] $*" >&2; }
model_opt=""
[ -n "$MODEL" ] && model_opt="--model $MODEL"

# classifiers and lookup tables, fitted once (cached); the OSM classifier is the simulator's map
# colours, nothing to fit, so it is always rewritten (an old cache's naive Bayes is not reused)
for m in rgb nir sar osm; do
    [ -s "$W/cache/$m.clf" ] && [ $m != osm ] || "$B/mm_eval" --fit-classifier $m --out "$W/cache/$m.clf" --scenes 24 >/dev/null
done
DIRECTIONS="sar:rgb rgb:sar nir:rgb rgb:nir pan:rgb osm:rgb rgb:osm sar:osm"
for d in $DIRECTIONS; do
    s=${d%%:*} t=${d##*:}
    [ -s "$W/cache/${s}2$t.lut" ] || "$B/mm_baseline" -q --fit -s "$s" -t "$t" --out "$W/cache/${s}2$t.lut" --scenes 32
done
log "classifiers and lookup tables ready"

# held-out scenes
i=0
while [ $i -lt "$N" ]; do
    "$B/mm_simulate" -q --seed $((700001 + i)) --size $SIZE --gsd "$(echo $i | awk '{ print 2 + 0.5 * ($1 % 4) }')" "$R/s$i"
    i=$((i + 1))
done

# the I/O profile of each modality, for sources and targets alike (the model's and the simulator's
# units: reflectance x 10000 as UInt16, SAR intensity in / dB out, OSM colours as bytes)
profile() {
    case $1 in
    rgb | nir | pan) echo "--profile $1=reflectance:0:10000" ;;
    sar) echo "--profile sar=intensity:-25:5" ;;
    osm) echo "--profile osm=byte" ;;
    esac
}
target_opts() { # as targets: reflectance x 10000 is written as UInt16, SAR as Float32 dB
    case $1 in
    sar) echo "--profile sar=db:-25:5" ;;
    *) profile "$1" ;;
    esac
}
record() { # direction method scene json -> one line of evals.jsonl
    printf '{"direction": "%s", "method": "%s", "scene": %s, "eval": %s}\n' "$1" "$2" "$3" "$4" >>"$R/evals.jsonl"
}

for d in $DIRECTIONS; do
    s=${d%%:*} t=${d##*:}
    i=0
    while [ $i -lt "$N" ]; do
        src="$R/s${i}_$s.tif" ref="$R/s${i}_$t.tif" lab="$R/s${i}_label.tif"
        for method in model$STEPS_MANY model1 baseline; do
            g="$R/g${i}_${s}2${t}_$method.tif"
            case $method in
            baseline)
                # shellcheck disable=SC2046
                "$B/mm_baseline" -q --lut "$W/cache/${s}2$t.lut" $(profile "$s") $(target_opts "$t") "$src" "$g" ;;
            *)
                # shellcheck disable=SC2046,SC2086
                "$B/mm_translate" -q $model_opt --steps "${method#model}" --seed 1 -s "$s" -t "$t" \
                    $(profile "$s") $(target_opts "$t") "$src" "$g" ;;
            esac
            record "$d" "$method" $i "$("$B/mm_eval" --json --labels "$lab" --classifier "$W/cache/$t.clf" "$g" "$ref")"
        done
        # the real target image scored like an output: what a perfect generator would get
        record "$d" reference $i "$("$B/mm_eval" --json --labels "$lab" --classifier "$W/cache/$t.clf" "$ref" "$ref")"
        i=$((i + 1))
    done
    log "$s -> $t done"
done

# joint generation. Each pair is generated on its own (the model trains on pairs and some
# triples: joint generation of aligned pairs, as the paper evaluates it), with 8 steps and 1; and
# the four modalities RGB, SAR, NIR, OSM together with 8 steps (more than the model ever saw at
# once, and SAR with OSM, the zero-shot pair)
JOINT="rgb sar nir osm"
PAIRS="rgb:sar rgb:nir rgb:osm sar:osm"
FOUR=four$STEPS_MANY
joint_file() { # scene method pair modality
    case $2 in
    four*) echo "$R/j${1}_${2}_$4.tif" ;;
    *) echo "$R/j${1}_${2}_${3%%:*}-${3##*:}_$4.tif" ;;
    esac
}
generate_joint() { # scene method steps pair modality... : the modalities generated together
    sc=$1 method=$2 steps=$3 pair=$4
    shift 4
    touts=""
    for m in "$@"; do touts="$touts -t $m:$(joint_file "$sc" "$method" "$pair" "$m") $(target_opts "$m")"; done
    # shellcheck disable=SC2086
    "$B/mm_generate" -q $model_opt --steps "$steps" --seed $((1 + sc)) -like "$R/s${sc}_sar.tif" $touts
}
i=0
while [ $i -lt "$N" ]; do
    for method in model$STEPS_MANY model1; do
        for p in $PAIRS; do generate_joint $i "$method" "${method#model}" "$p" "${p%%:*}" "${p##*:}"; done
    done
    # shellcheck disable=SC2086
    generate_joint $i "$FOUR" "$STEPS_MANY" - $JOINT
    i=$((i + 1))
done
i=0
while [ $i -lt "$N" ]; do
    other=$(((i + 1) % N))
    for p in $PAIRS; do
        a=${p%%:*} b=${p##*:}
        for method in model$STEPS_MANY $FOUR model1 real unrelated; do
            case $method in
            real) fa="$R/s${i}_$a.tif" fb="$R/s${i}_$b.tif" ;;
            unrelated) fa="$R/s${i}_$a.tif" fb="$R/s${other}_$b.tif" ;;
            *) fa=$(joint_file $i "$method" "$p" "$a") fb=$(joint_file $i "$method" "$p" "$b") ;;
            esac
            [ "$method" = unrelated ] && [ "$N" -lt 2 ] && continue
            record "joint:$p" "$method" $i "$("$B/mm_eval" --json --agreement "$fa" "$fb" \
                --classifier-a "$W/cache/$a.clf" --classifier-b "$W/cache/$b.clf")"
        done
    done
    i=$((i + 1))
done
log "joint generation done"

secs=$(($(date +%s) - start))
sha=$(sha256sum "${MODEL:-$HERE/../../models/sim-default.safetensors}" | cut -c1-16)
doc=""
[ -z "${QUALITY_OUT:-}" ] && doc="--doc $HERE/../../docs/quality.md" # the default place: update the page too
# shellcheck disable=SC2086
/usr/bin/python3 "$HERE/quality_report.py" --run "$R" --out "$OUT" --scenes "$N" --steps "$STEPS_MANY" \
    --model "${MODEL:-models/sim-default.safetensors}" --model-sha "$sha" --seconds "$secs" \
    --load "$(cut -d' ' -f1-3 /proc/loadavg)" --command "tests/bench/quality.sh $B $N${MODEL:+ $MODEL}" $doc
log "wrote $OUT/results.md, $OUT/results.json and the pictures in $OUT ($(($(date +%s) - start)) s in all)"
