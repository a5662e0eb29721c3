#!/bin/sh
# Sets up a fresh Debian 12 machine (as root) for MetaEarth-MM, builds it, and runs one job:
#   ./bootstrap.sh demo   build, then translate the bundled 1024 x 1024 SAR sample scene to RGB
#                         with the default model, and write a quicklook PNG beside the output
#   ./bootstrap.sh test   build with -Werror, run the tests; then again under ASan + UBSan
#   ./bootstrap.sh build  only install and build
# Every Debian package the build and the tests need is named here; nothing else is assumed.
set -eu
cd "$(dirname "$0")"
mode=${1:-build}

PACKAGES="build-essential cmake pkg-config libdnnl-dev libcjson-dev libcmocka-dev libgdal-dev gdal-bin libgeos-dev libfftw3-dev libsqlite3-dev g++ python3-gdal python3-numpy"

missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "bootstrap: installing$missing"
    if [ "$(id -u)" -ne 0 ]; then
        echo "bootstrap: missing packages:$missing; run as root or install them" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends $missing
fi

jobs=$(nproc 2>/dev/null || echo 2)
build() { # dir, extra cmake args... (MM_TARGET: build that target only)
    dir=$1
    shift
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
    cmake --build "$dir" -j "$jobs" ${MM_TARGET:+--target "$MM_TARGET"}
}

case "$mode" in
build)
    build build -DMM_WERROR=ON
    ;;
demo)
    # only what the demo runs (mm_translate): the tests and the other tools are not needed
    t0=$(date +%s)
    MM_TARGET=mm_translate build build -DMM_WERROR=ON
    mkdir -p out
    start=$(date +%s)
    build/mm_translate --steps 8 samples/demo_sar.tif out/demo_rgb.tif
    gdal_translate -q -of PNG -ot Byte -scale out/demo_rgb.tif out/demo_rgb.png
    rm -f out/demo_rgb.png.aux.xml
    echo "demo: translated samples/demo_sar.tif (simulated SAR, 1024 x 1024, UTM 33N) to RGB" \
         "with models/default.safetensors in $(($(date +%s) - start)) s" \
         "(build before it: $((start - t0)) s)"
    echo "  output:    out/demo_rgb.tif (same grid and CRS as the input)"
    echo "  quicklook: out/demo_rgb.png"
    ;;
test)
    build build -DMM_WERROR=ON
    (cd build && ctest --output-on-failure)
    echo "bootstrap: the same tests under AddressSanitizer + UndefinedBehaviorSanitizer"
    build build-asan -DMM_WERROR=ON -DMM_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
    (cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure)
    ;;
*)
    echo "usage: $0 [build|demo|test]" >&2
    exit 2
    ;;
esac
