#!/bin/sh
# One guided sampling step: the C engine (mm_bench) against the PyTorch reference (bench_ref.py,
# fp32 eager and bf16-autocast eager) on the same weights and the same thread count, measured
# back to back in one run. Also the scene module alone and oneDNN's own matmul rate.
#   tests/bench/compare_reference.sh CONFIG.json [THREADS] [BUILD_DIR]
# Needs /usr/bin/python3 with python3-torch and python3-numpy (not needed by the build or tests).
# The model file with random weights is written to a temporary directory and removed.
set -eu
config=$1
threads=${2:-2}
build=${3:-build}
here=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
/usr/bin/python3 "$here/tools/reference/export.py" "$config" "$tmp/model.safetensors" >/dev/null
echo "config: $config, threads: $threads, host: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "--- C engine (bf16, default)"
MM_PROFILE=1 "$build/mm_bench" --model "$tmp/model.safetensors" --threads "$threads" --steps 0 --reps 5 --scene
echo "--- C engine (fp32)"
"$build/mm_bench" --model "$tmp/model.safetensors" --threads "$threads" --steps 0 --reps 3 --precision fp32 --no-matmul
echo "--- PyTorch reference (fp32 eager, bf16 autocast eager)"
/usr/bin/python3 "$here/tools/reference/bench_ref.py" --model "$tmp/model.safetensors" --threads "$threads" --iters 3 --guidance 1.2
