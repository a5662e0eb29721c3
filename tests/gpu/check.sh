#!/usr/bin/env bash
# The CUDA backend on a GPU machine, in one run (docs/cuda.md): builds the project in build-gpu
# (no GDAL needed), runs the CUDA tests (backend parity with the CPU backend, golden tensors on
# the device), then benchmarks the paper's configuration (models/metaearth-mm-600m.json) with
# random weights: seconds per guided step at batch 1 and 4, tiles per second at 50 and 250
# guided steps, achieved TFLOP/s against the H200's ~790 TFLOP/s dense bf16 peak, and the
# PyTorch reference (tools/reference/bench_ref.py --device cuda) on the same weights and GPU.
# Memory (docs/cuda.md "Memory"): the memory_cuda test (arena: no allocation while sampling,
# automatic batch, budget errors, mosaic kernels bit-identical to the host blending), then the
# paper configuration with the batch chosen from the free device memory (mm_bench --batch 0):
# the batch and the memory figures go to the results file, and the translation must have
# allocated nothing; and a budget too small must end in a clear error, not a crash.
#
#   tests/gpu/check.sh [RESULTS_FILE]
#
# Everything goes to one results file: RESULTS_FILE, else $OUT/gpu_results.txt when OUT is set,
# else build-gpu/gpu_results.txt. Needs: cmake, the CUDA toolkit (nvcc), a C compiler, oneDNN,
# cJSON and cmocka (libdnnl-dev libcjson-dev libcmocka-dev; installed with apt-get when apt is
# usable, otherwise the script stops and says what is missing); PyTorch with CUDA for the
# reference (skipped with a note without it). Every step has a timeout; the whole run is meant
# to stay under 8 minutes. Exit status: 0 when the build and the CUDA tests passed.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
build="$root/build-gpu"
mkdir -p "$build"
if [ $# -ge 1 ]; then results=$1
elif [ -n "${OUT:-}" ]; then mkdir -p "$OUT" && results="$OUT/gpu_results.txt"
else results="$build/gpu_results.txt"; fi
: >"$results"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
jobs=$(nproc 2>/dev/null || echo 4)
start=$SECONDS
status=0

log() { printf '%s\n' "$*" | tee -a "$results"; }
section() { log ""; log "==== $* (t=$((SECONDS - start)) s)"; }
# runs SECONDS OUTFILE ERRFILE COMMAND...: logs the command, runs it with a timeout, stdout to
# OUTFILE and stderr to ERRFILE (the same file is fine); returns its status
run() {
    local t=$1 o=$2 e=$3
    shift 3
    log "\$ $*"
    if [ "$o" = "$e" ]; then timeout --kill-after=10 "$t" "$@" >"$o" 2>&1
    else timeout --kill-after=10 "$t" "$@" >"$o" 2>"$e"; fi
    local rc=$?
    [ "$rc" = 124 ] && log "(timed out after $t s)"
    return "$rc"
}
elapsed() { echo $((SECONDS - start)); }

section "machine"
log "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)  host: $(uname -n)  commit: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$root" status --porcelain 2>/dev/null | grep -q . && echo ' (with local changes)')"
log "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $jobs threads"
if command -v nvidia-smi >/dev/null; then
    timeout 30 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv 2>&1 | tee -a "$results"
else
    log "nvidia-smi: not found"
fi
nvcc=$(command -v nvcc || true)
[ -z "$nvcc" ] && [ -x /usr/local/cuda/bin/nvcc ] && nvcc=/usr/local/cuda/bin/nvcc
log "nvcc: ${nvcc:-not found} $([ -n "$nvcc" ] && "$nvcc" --version | tail -2 | head -1)"
log "cmake: $(cmake --version 2>/dev/null | head -1 || echo 'not found')"

section "build dependencies"
missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v cc >/dev/null || missing+=(gcc)
command -v pkg-config >/dev/null || missing+=(pkg-config)
[ -z "$nvcc" ] && missing+=("CUDA toolkit (nvcc)")
probe() { # probe NAME HEADER-LINES LIB: compiles and links a one-liner
    printf '%b\nint main(void) { return 0; }\n' "$2" >"$tmp/probe.c"
    cc "$tmp/probe.c" -o "$tmp/probe" "$3" >/dev/null 2>&1
}
probe oneDNN '#include <dnnl.h>' -ldnnl || missing+=(libdnnl-dev)
{ pkg-config --exists libcjson 2>/dev/null && probe cJSON '#include <cjson/cJSON.h>' -lcjson; } || missing+=(libcjson-dev)
probe cmocka '#include <stdarg.h>\n#include <stddef.h>\n#include <setjmp.h>\n#include <stdint.h>\n#include <cmocka.h>' -lcmocka || missing+=(libcmocka-dev)
if [ ${#missing[@]} -gt 0 ]; then
    log "missing: ${missing[*]}"
    apt_ok=0
    if command -v apt-get >/dev/null; then
        if [ "$(id -u)" = 0 ]; then apt_ok=1; elif sudo -n true 2>/dev/null; then apt_ok=2; fi
    fi
    pkgs=()
    for m in "${missing[@]}"; do case $m in libdnnl-dev | libcjson-dev | libcmocka-dev | cmake | pkg-config) pkgs+=("$m") ;; esac; done
    if [ "$apt_ok" != 0 ] && [ ${#pkgs[@]} -gt 0 ]; then
        log "trying: apt-get install -y ${pkgs[*]}"
        sudo_cmd=(); [ "$apt_ok" = 2 ] && sudo_cmd=(sudo -n)
        timeout 150 "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "${pkgs[@]}" >"$tmp/apt.log" 2>&1 ||
            { tail -5 "$tmp/apt.log" | tee -a "$results"; log "apt-get install failed"; }
    fi
    still=()
    command -v cmake >/dev/null || still+=(cmake)
    command -v pkg-config >/dev/null || still+=(pkg-config)
    [ -z "$nvcc" ] && still+=("CUDA toolkit (nvcc)")
    probe oneDNN '#include <dnnl.h>' -ldnnl || still+=(libdnnl-dev)
    { pkg-config --exists libcjson 2>/dev/null && probe cJSON '#include <cjson/cJSON.h>' -lcjson; } || still+=(libcjson-dev)
    probe cmocka '#include <stdarg.h>\n#include <stddef.h>\n#include <setjmp.h>\n#include <stdint.h>\n#include <cmocka.h>' -lcmocka || still+=(libcmocka-dev)
    if [ ${#still[@]} -gt 0 ]; then
        log "FAILED: cannot build here: missing ${still[*]}."
        log "libmm's CPU backend (the reference of the parity tests) needs oneDNN; the library needs"
        log "cJSON, the tests cmocka. Install them (Debian/Ubuntu: apt-get install libdnnl-dev"
        log "libcjson-dev libcmocka-dev) or point CMAKE_PREFIX_PATH / PKG_CONFIG_PATH at them, then rerun."
        exit 2
    fi
fi
log "all found"

cfg_mem="$root/models/metaearth-mm-600m.json"

section "configure and build (build-gpu, Release)"
extra=()
# no GDAL on the GPU machine: whatever uses it must not be looked for
if ! command -v gdal-config >/dev/null && ! pkg-config --exists gdal 2>/dev/null; then
    extra+=(-DCMAKE_DISABLE_FIND_PACKAGE_GDAL=ON)
    log "GDAL not found: configuring without it"
fi
# nvcc: the top-level CMakeLists.txt finds it (PATH, CUDACXX, /usr/local/cuda/bin)
run 180 "$tmp/configure.log" "$tmp/configure.log" cmake -S "$root" -B "$build" \
    -DCMAKE_BUILD_TYPE=Release -DMM_CUDA=ON "${extra[@]}"
crc=$?
grep -E "CUDA backend|Error|error" "$tmp/configure.log" | tee -a "$results"
if [ $crc != 0 ]; then
    tail -30 "$tmp/configure.log" | tee -a "$results"
    log "FAILED: configure"
    exit 1
fi
if ! grep -q "CUDA backend: built" "$tmp/configure.log"; then
    log "FAILED: the CUDA backend was not built (see above)"
    exit 1
fi
# only what this check needs (the GDAL tools, if any, are not)
run 300 "$tmp/build.log" "$tmp/build.log" cmake --build "$build" -j "$jobs" \
    --target mm_bench test_backend_parity test_golden test_memory
brc=$?
grep -E -i "warning|error" "$tmp/build.log" | head -40 | tee -a "$results"
if [ $brc != 0 ]; then
    tail -30 "$tmp/build.log" | tee -a "$results"
    log "FAILED: build"
    exit 1
fi
log "built in $(elapsed) s"

section "CUDA tests: backend parity, golden tensors, memory and mosaic on the device"
run 240 "$tmp/ctest.log" "$tmp/ctest.log" ctest --test-dir "$build" -L cuda --output-on-failure -V
trc=$?
grep -E "rel\. error|differ|SKIPPED|Skipped|Passed|Failed|FAILED|\[  (PASSED|FAILED)|not checked|tests passed|backends:|golden parity on|need \(cuda\)|allocations during|too small a budget|auto batch" "$tmp/ctest.log" | tee -a "$results"
nodev=0
if grep -q "SKIPPED: no CUDA device" "$tmp/ctest.log"; then
    log "FAILED: the tests found no CUDA device (the benchmarks are skipped)"
    status=1
    nodev=1
elif [ $trc != 0 ]; then
    tail -40 "$tmp/ctest.log" | tee -a "$results"
    log "FAILED: CUDA tests (exit $trc)"
    status=1
else
    log "CUDA tests passed"
fi

section "python for the reference"
py=""
for cand in ${PYTHON:-} python3 /usr/bin/python3; do
    if command -v "$cand" >/dev/null &&
        timeout 60 "$cand" -c 'import torch, numpy; assert torch.cuda.is_available()' >/dev/null 2>&1; then
        py=$cand
        break
    fi
done
if [ -z "$py" ]; then
    log "no python with a CUDA-enabled torch: the PyTorch reference is skipped"
    for cand in python3 /usr/bin/python3; do command -v "$cand" >/dev/null && { jpy=$cand; break; }; done
else
    jpy=$py
    log "$py: torch $("$py" -c 'import torch; print(torch.__version__, "cuda", torch.version.cuda)')"
fi

section "memory: the batch from the free device memory (paper configuration, random weights)"
if [ $nodev = 0 ] && [ "$(elapsed)" -lt 300 ]; then
    # --config: the engine's own random weights (no export needed); kept short (one timed step,
    # a one-step translation) so that the benchmarks below keep their time
    run 100 "$tmp/auto.json" "$tmp/auto.err" "$build/mm_bench" --device cuda --config \
        "$cfg_mem" --batch 0 --reps 1 --steps 1 --guidance 1.2
    rc=$?
    cat "$tmp/auto.json" "$tmp/auto.err" | tee -a "$results"
    if [ $rc != 0 ]; then
        log "FAILED: mm_bench --batch 0 (exit $rc)"
        status=1
    elif [ -n "${jpy:-}" ]; then
        "$jpy" - "$tmp/auto.json" <<'EOF' 2>&1 | tee -a "$results"
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
m, M = r["memory"], 1 << 20
print(f"auto batch: {r['batch']} tiles (guided: {2 * r['batch']} in the model); arena "
      f"{m['arena_bytes'] / M:.0f} MiB = workspace {m['workspace_bytes'] / M:.0f} MiB + backend "
      f"scratch {m['scratch_bytes'] / M:.0f} MiB; free before the arena {m['free_bytes'] / M:.0f} "
      f"MiB of {m['device_bytes'] / M:.0f} MiB (weights resident); allocations during the "
      f"translation: {m['translate_allocations']}; {r['step_seconds']:.4f} s per guided step, "
      f"{r['step_gflop'] / r['step_seconds'] / 1e3:.1f} TFLOP/s")
sys.exit(0 if m["translate_allocations"] == 0 else 3)
EOF
        [ "${PIPESTATUS[0]}" = 0 ] || { log "FAILED: the translation allocated device memory"; status=1; }
    else
        grep -o '"batch": [0-9]*\|"memory": {[^}]*}' "$tmp/auto.json" | tee -a "$results"
        grep -q '"translate_allocations": 0}' "$tmp/auto.json" ||
            { log "FAILED: the translation allocated device memory"; status=1; }
    fi
    # a budget smaller than one batch needs: a clear error (exit 1, the bytes named), no crash
    # (the tiny model: nothing is computed, the weights load in no time)
    run 45 "$tmp/small.json" "$tmp/small.err" "$build/mm_bench" --device cuda --model \
        "$root/tests/golden/tiny_model.safetensors" --batch 8 --memory-budget 1 --reps 1 --steps 0
    rc=$?
    tee -a "$results" <"$tmp/small.err"
    if [ $rc = 1 ] && grep -q "needs .* MiB" "$tmp/small.err"; then
        log "too small a budget: clear error (exit 1)"
    else
        log "FAILED: too small a budget ended with exit $rc"
        status=1
    fi
else
    log "skipped (no device, or the time budget)"
fi

section "benchmark: paper configuration, random weights"
cfg="$root/models/metaearth-mm-600m.json"
model="$cfg"
model_opt=(--config "$cfg")
if [ -n "$py" ] && [ $nodev = 0 ]; then # one weights file for both engines
    if run 150 "$tmp/export.log" "$tmp/export.log" "$py" "$root/tools/reference/export.py" "$cfg" \
        "$tmp/model.safetensors" --dtype BF16; then
        tee -a "$results" <"$tmp/export.log"
        model_opt=(--model "$tmp/model.safetensors")
        model="$tmp/model.safetensors (export.py, seed 0, BF16)"
    else
        tail -5 "$tmp/export.log" | tee -a "$results"
        log "export failed: the engine runs on its own random weights (--config), the reference is skipped"
    fi
fi
log "weights: $model"
declare -A eng
for b in 1 4; do
    [ $nodev = 1 ] && break
    if [ "$(elapsed)" -gt 390 ]; then log "batch $b skipped: time budget"; continue; fi
    out="$tmp/eng$b.json"
    run 150 "$out" "$tmp/eng$b.err" "$build/mm_bench" --device cuda "${model_opt[@]}" --batch "$b" \
        --reps 10 --steps 50 --guidance 1.2
    rc=$?
    cat "$out" "$tmp/eng$b.err" | tee -a "$results"
    if [ $rc = 0 ]; then eng[$b]=$out; else
        log "mm_bench batch $b failed (exit $rc)"
        status=1
    fi
done
if [ "$(elapsed)" -lt 400 ] && [ -n "${eng[4]:-}" ]; then
    log "-- where the time goes (batch 4, MM_PROFILE=1: synchronises around every operation)"
    MM_PROFILE=1 run 120 "$tmp/prof.out" "$tmp/prof.err" "$build/mm_bench" --device cuda \
        "${model_opt[@]}" --batch 4 --reps 3 --steps 0 --guidance 1.2
    tee -a "$results" <"$tmp/prof.err"
fi

declare -A ref
if [ -n "$py" ] && [ "${model_opt[0]}" = "--model" ]; then
    section "PyTorch reference on the same GPU (bench_ref.py --device cuda)"
    for b in 1 4; do
        if [ "$(elapsed)" -gt 430 ]; then log "reference batch $b skipped: time budget"; continue; fi
        out="$tmp/ref$b.json"
        run 150 "$out" "$tmp/ref$b.err" "$py" "$root/tools/reference/bench_ref.py" \
            --model "$tmp/model.safetensors" --device cuda --batch "$b" --iters 5 --warmup 2 \
            --guidance 1.2 --modes fp32,bf16
        rc=$?
        tee -a "$results" <"$out"
        tail -5 "$tmp/ref$b.err" | tee -a "$results"
        if [ $rc = 0 ]; then ref[$b]=$out; else log "bench_ref batch $b failed (exit $rc)"; fi
    done
fi

section "summary"
if [ -n "${jpy:-}" ]; then
    "$jpy" - "${eng[1]:-}" "${eng[4]:-}" "${ref[1]:-}" "${ref[4]:-}" <<'EOF' 2>&1 | tee -a "$results"
import json, sys
PEAK = 790.0  # TFLOP/s, H200 dense bf16 (tensor cores)
def load(p):
    try:
        with open(p) as f:
            return json.loads(f.read().strip().splitlines()[-1])
    except Exception:
        return None
eng = {1: load(sys.argv[1]), 4: load(sys.argv[2])}
ref = {1: load(sys.argv[3]), 4: load(sys.argv[4])}
print("one guided step = scene module over [source; target] + generator, conditional and")
print("unconditional branches; tiles/s at N steps = batch / (N x step time), sampling only;")
print("'measured 50' = a whole translation (VAE encode + 50 steps + decode) timed end to end.")
print()
print(f"{'batch':>5} {'s/step':>9} {'GFLOP/step':>10} {'TFLOP/s':>8} {'of peak':>8} "
      f"{'tiles/s@50':>10} {'tiles/s@250':>11} {'measured@50':>11} {'torch bf16 s/step':>17} "
      f"{'torch fp32 s/step':>17} {'speed-up vs torch bf16':>22}")
for b in (1, 4):
    e, r = eng[b], ref[b]
    if not e:
        print(f"{b:>5} (no engine result)")
        continue
    s = e["step_seconds"]
    tf = e["step_gflop"] / s / 1e3
    meas = b / e["translate_seconds"] if e.get("translate_seconds") else float("nan")
    rb = r.get("bf16_s_per_step") if r else None
    rf = r.get("fp32_s_per_step") if r else None
    print(f"{b:>5} {s:>9.5f} {e['step_gflop']:>10.1f} {tf:>8.1f} {100 * tf / PEAK:>7.1f}% "
          f"{b / (50 * s):>10.3f} {b / (250 * s):>11.3f} {meas:>11.3f} "
          f"{(f'{rb:.5f}' if rb else '-'):>17} {(f'{rf:.5f}' if rf else '-'):>17} "
          f"{(f'{rb / s:.2f}x' if rb else '-'):>22}")
EOF
fi
log ""
log "total time: $(elapsed) s; results: $results"
if [ $status = 0 ]; then log "RESULT: build and CUDA tests passed"; else log "RESULT: FAILED (see above)"; fi
exit $status
