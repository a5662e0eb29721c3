#!/bin/sh
# One settings parser for mm_translate and the GDAL driver (libmmgeo/src/settings.c): the same
# settings given to both (seed, device, steps, guidance, sampler, overlap, batch, threads,
# precision, SAR units, bands, profiles, output type; the test processors' window) give the same
# pixels byte for byte, words in any case and MM_DEVICE read by both; refused values (SEED=1e3,
# SEED=010, STEPS=0, DEVICE=gpu, trailing junk, ...) refused by both with the same message.
# Usage: settings.sh BUILD_DIR PLUGIN_DIR MODEL
set -u
B=$1
export GDAL_DRIVER_PATH=$2
MODEL=$(cd "$(dirname "$3")" && pwd)/$(basename "$3")
TEST_NAME=mm_settings_test
. "$(dirname "$0")/../lib/cli.sh" # $T, fail, expect
unset MM_DEVICE MM_MODEL

# same A B: the two rasters have the same pixels (raw bytes of every band)
same() {
    rm -f "$T/s1.img" "$T/s2.img"
    gdal_translate -q -of ENVI "$1" "$T/s1.img" 2>"$T/s_err.txt" &&
        gdal_translate -q -of ENVI "$2" "$T/s2.img" 2>>"$T/s_err.txt" ||
        { fail "cannot read $1 / $2: $(cat "$T/s_err.txt")"; return 1; }
    cmp -s "$T/s1.img" "$T/s2.img"
}

mkdir "$T/s"
"$B/mm_make_samples" "$T/s" 72 54 >/dev/null || { echo "FAIL: mm_make_samples"; exit 1; }
S=$T/s/scene_sar.tif
MT="$B/mm_translate -q -t rgb --model $MODEL"
n=0
# both NAME CLI_OPTIONS -- OPEN_OPTIONS: mm_translate with the options and gdal_translate of
# MM:rgb:$S with the open options write the same pixels ($T/cli_NAME.tif, $T/drv_NAME.tif)
both() {
    name=$1
    shift
    cli=
    while [ "$1" != "--" ]; do cli="$cli $1"; shift; done
    shift
    oo=
    for o in "$@"; do oo="$oo -oo $o"; done
    # shellcheck disable=SC2086
    $MT $cli "$S" "$T/cli_$name.tif" 2>"$T/cli_err.txt" ||
        { fail "mm_translate$cli: $(cat "$T/cli_err.txt")"; return 1; }
    # shellcheck disable=SC2086
    gdal_translate -q -oo MODEL="$MODEL" $oo "MM:rgb:$S" "$T/drv_$name.tif" 2>"$T/drv_err.txt" ||
        { fail "gdal_translate$oo: $(cat "$T/drv_err.txt")"; return 1; }
    same "$T/cli_$name.tif" "$T/drv_$name.tif" || fail "$name: mm_translate$cli and the driver ($oo) differ"
    n=$((n + 1))
}

# --- the same settings, the same pixels
both base --steps 1 --threads 1 -- STEPS=1 THREADS=1
both seed --steps 1 --seed 1000 --threads 1 -- STEPS=1 SEED=1000 THREADS=1
same "$T/cli_base.tif" "$T/cli_seed.tif" && fail "--seed 1000 gives the default seed's pixels (the test would not see a seed misread)"
both steps --steps 2 --seed 7 --guidance 1.5 --sampler heun -- STEPS=2 SEED=7 GUIDANCE=1.5 SAMPLER=heun
same "$T/cli_seed.tif" "$T/cli_steps.tif" && fail "--steps 2 --sampler heun change nothing"
# words in any case, each front end its own spelling
both words --steps 1 --seed 7 --device CPU --precision FP32 --sampler EULER_MARUYAMA --sar-units DB \
    -- STEPS=1 SEED=7 DEVICE=cpu PRECISION=fp32 SAMPLER=Euler_Maruyama SAR_UNITS=db
both tiling --steps 1 --seed 5 --overlap 4 --batch 3 --threads 2 -b 1 --profile sar=db:-30:10 -ot UInt16 \
    -- STEPS=1 SEED=5 OVERLAP=4 BATCH=3 THREADS=2 BANDS=1 PROFILE=sar=db:-30:10 OT=UInt16
same "$T/cli_seed.tif" "$T/cli_tiling.tif" 2>/dev/null && fail "--overlap 4 --profile -ot change nothing"
# the test processor's window (the model refuses it: a test hook)
both window --processor negate --window 24 --overlap 6 -- PROCESSOR=NEGATE WINDOW=24 OVERLAP=6
# MM_DEVICE is read by both: cpu in any case
export MM_DEVICE=CPU
both env_cpu --steps 1 --seed 1000 --threads 1 -- STEPS=1 SEED=1000 THREADS=1
same "$T/cli_seed.tif" "$T/cli_env_cpu.tif" || fail "MM_DEVICE=CPU changes the pixels"
# MM_DEVICE=cuda: both run on CUDA (the same pixels), or both fail with the same message (a build or
# a machine without CUDA)
export MM_DEVICE=cuda
if $MT --steps 1 "$S" "$T/cuda_cli.tif" 2>"$T/cuda_cli.txt"; then
    both env_cuda --steps 1 --seed 1000 -- STEPS=1 SEED=1000
else
    gdalinfo -oo MODEL="$MODEL" -oo STEPS=1 "MM:rgb:$S" >/dev/null 2>"$T/cuda_drv.txt" &&
        fail "MM_DEVICE=cuda: mm_translate failed but the driver opened (MM_DEVICE not read by the driver)"
    a=$(sed -n 's/^mm_translate: //p' "$T/cuda_cli.txt" | head -1)
    d=$(sed -n 's/^ERROR [0-9]*: MM: //p' "$T/cuda_drv.txt" | head -1)
    [ -n "$a" ] && [ "$a" = "$d" ] || fail "MM_DEVICE=cuda: different messages: '$a' / '$d'"
fi
unset MM_DEVICE
# DEVICE given wins over MM_DEVICE in both
export MM_DEVICE=cuda
both env_given --steps 1 --seed 1000 --threads 1 --device cpu -- STEPS=1 SEED=1000 THREADS=1 DEVICE=cpu
same "$T/cli_seed.tif" "$T/cli_env_given.tif" || fail "--device cpu with MM_DEVICE=cuda changes the pixels"
unset MM_DEVICE

# --- refused by both, with the same message
# refused CLI_OPTION VALUE OPEN_OPTION WANT: mm_translate --CLI_OPTION VALUE exits with 2 and
# gdalinfo -oo OPEN_OPTION=VALUE fails, both with the same message, which holds WANT
refused() {
    "$B/mm_translate" --model "$MODEL" "$1" "$2" "$S" "$T/x_rgb.tif" >/dev/null 2>"$T/r_cli.txt"
    rc=$?
    [ "$rc" -eq 2 ] || fail "mm_translate $1 '$2': exit $rc (expected 2)"
    gdalinfo -oo MODEL="$MODEL" -oo "$3=$2" "MM:rgb:$S" >/dev/null 2>"$T/r_drv.txt" &&
        fail "the driver opened with $3=$2"
    a=$(sed -n 's/^mm_translate: //p' "$T/r_cli.txt" | head -1)
    d=$(sed -n 's/^ERROR [0-9]*: MM: //p' "$T/r_drv.txt" | head -1)
    [ "$a" = "$d" ] || fail "$1 '$2' / $3=$2: different messages: '$a' / '$d'"
    case $a in *"$4"*) ;; *) fail "$1 '$2': no '$4' in '$a'" ;; esac
    n=$((n + 1))
}
INT="must be a decimal integer"
refused --seed 1e3 SEED "--seed / SEED $INT from 0 to 18446744073709551615"
refused --seed 010 SEED "got '010'"
refused --seed 0x10 SEED "$INT"
refused --seed -1 SEED "$INT"
refused --seed 7x SEED "got '7x'"
refused --seed 18446744073709551616 SEED "$INT"
refused --steps 0 STEPS "--steps / STEPS $INT from 1 to 65535"
refused --steps 2.0 STEPS "$INT"
refused --steps "3 " STEPS "$INT"
refused --threads 1e1 THREADS "--threads / THREADS $INT"
refused --overlap 08 OVERLAP "--overlap / OVERLAP $INT"
refused --guidance 1.5x GUIDANCE "--guidance / GUIDANCE must be a decimal number from 0 to 100"
refused --guidance nan GUIDANCE "decimal number"
refused --device gpu DEVICE "--device / DEVICE takes cpu or cuda (in any case), got 'gpu'"
refused --precision fp16 PRECISION "--precision / PRECISION takes bf16 or fp32"
refused --sampler rk4 SAMPLER "--sampler / SAMPLER takes euler, heun or euler_maruyama"
refused --sar-units decibel SAR_UNITS "--sar-units / SAR_UNITS takes db, linear or amplitude"
refused --sar-band 0 SAR_BAND "--sar-band / SAR_BAND $INT"
refused --nonfinite maybe NONFINITE "--nonfinite / NONFINITE takes error or nodata"
refused --samples 0 SAMPLES "--samples / SAMPLES $INT from 1 to 1000"
refused -b x BANDS "-b / BANDS takes band numbers"
refused -ot Foo OT "-ot / OT takes a real GDAL data type"
refused --profile sar PROFILE "--profile / PROFILE takes MODALITY=SPEC"
# (--batch is not among them: 0 is a batch "from the free memory" in mm_translate, the driver's
# BATCH starts at 1, so the ranges in the two messages differ)
refused --window 0 WINDOW "--window / WINDOW $INT from 1 to 8192"
refused --processor blur PROCESSOR "--processor / PROCESSOR takes model"
# MM_DEVICE with a bad value: the same message from both
export MM_DEVICE=gpu
"$B/mm_translate" --model "$MODEL" "$S" "$T/x_rgb.tif" >/dev/null 2>"$T/r_cli.txt" && fail "MM_DEVICE=gpu accepted by mm_translate"
gdalinfo -oo MODEL="$MODEL" "MM:rgb:$S" >/dev/null 2>"$T/r_drv.txt" && fail "MM_DEVICE=gpu accepted by the driver"
a=$(sed -n 's/^mm_translate: //p' "$T/r_cli.txt" | head -1)
d=$(sed -n 's/^ERROR [0-9]*: MM: //p' "$T/r_drv.txt" | head -1)
[ "$a" = "MM_DEVICE takes cpu or cuda (in any case), got 'gpu'" ] && [ "$a" = "$d" ] ||
    fail "MM_DEVICE=gpu: '$a' / '$d'"
unset MM_DEVICE

[ "$fails" -eq 0 ] && echo "settings: $n checks of mm_translate against the driver passed"
[ "$fails" -eq 0 ]
