#!/bin/sh
# A real install, moved: `cmake --install` into a temporary prefix, the prefix moved elsewhere, and
# then, from a directory outside the source and build trees, with nothing of theirs on any search
# path: every installed ELF's RUNPATH and ldd resolve into the moved prefix (never the build or
# source tree), every tool answers --version/--help/--help-general and runs a small real job, the
# tools and the GDAL plugin take their default model from the moved share/metaearth-mm (replaced
# there by the small test model, so the output's MM_MODEL_SHA256 says which file was opened), and
# programs built against the moved prefix with pkg-config (libmm, mmgeo; shared and static) and
# with find_package(MetaEarthMM) run.
# Usage: install.sh BUILD_DIR SOURCE_DIR TEST_MODEL HAVE_PLUGIN [CFLAGS [PRELOAD]]
#   CFLAGS: what the consumers are compiled with (the sanitizers of an instrumented build)
#   PRELOAD: LD_PRELOAD for GDAL's programs loading an instrumented plugin
set -u
B=$(cd "$1" && pwd -P)
S=$(cd "$2" && pwd -P)
TINY=$3
HAVE_PLUGIN=$4
CFLAGS_EXTRA=${5:-}
PRELOAD=${6:-}
TEST_NAME=mm_install_test
. "$S/tests/lib/cli.sh" # $T, fail, expect
T=$(cd "$T" && pwd -P)
case "$T" in "$B"/* | "$S"/*) echo "FAIL: the temporary directory is inside the trees"; exit 1 ;; esac
unset LD_LIBRARY_PATH MM_MODEL GDAL_DRIVER_PATH PKG_CONFIG_PATH CMAKE_PREFIX_PATH
CC=${CC:-cc}
t0=$(date +%s)

# --- install, then move the prefix
cmake --install "$B" --prefix "$T/stage" >"$T/install.log" 2>&1 ||
    { echo "FAIL: cmake --install: $(tail -5 "$T/install.log")"; exit 1; }
mkdir -p "$T/elsewhere"
mv "$T/stage" "$T/elsewhere/prefix" || { echo "FAIL: cannot move the prefix"; exit 1; }
P=$T/elsewhere/prefix
[ ! -e "$T/stage" ] || fail "the old prefix is still there"
mkdir "$T/work" && cd "$T/work" || exit 1
TOOLS="mm_info mm_bench mm_demo mm_translate mm_generate mm_embed mm_simulate mm_eval mm_baseline mm_convert"
for t in $TOOLS; do [ -x "$P/bin/$t" ] || fail "bin/$t not installed"; done
for f in include/mm.h include/mmgeo.h include/mmsim.h lib/libmm.a lib/libmmgeo.a lib/libmmsim.so \
         lib/pkgconfig/libmm.pc lib/pkgconfig/mmgeo.pc lib/cmake/MetaEarthMM/MetaEarthMMConfig.cmake \
         share/metaearth-mm/default.safetensors share/man/man1/mm_translate.1 share/man/man7/gdal_mm.7; do
    [ -e "$P/$f" ] || fail "$f not installed"
done
ls "$P"/lib/libmm.so.* >/dev/null 2>&1 || fail "lib/libmm.so.* not installed"
cmp -s "$P/share/metaearth-mm/default.safetensors" "$S/models/default.safetensors" ||
    fail "the installed default model is not models/default.safetensors"
[ "$HAVE_PLUGIN" = 0 ] || [ -e "$P/lib/gdalplugins/gdal_MM.so" ] || fail "lib/gdalplugins/gdal_MM.so not installed"

# --- RUNPATH and the libraries every installed ELF loads: none from the build or source tree
elfs=$(find "$P" -type f \( -path "$P/bin/*" -o -name '*.so*' \))
for f in $elfs; do
    rp=$(readelf -d "$f" 2>/dev/null | sed -n 's/.*(\(RPATH\|RUNPATH\)).*\[\(.*\)\]/\1 \2/p')
    case "$rp" in RPATH*) fail "$f has an RPATH, not a RUNPATH: $rp" ;; esac
    case "$rp" in *"$B"* | *"$S"*) fail "$f: $rp names the build or source tree" ;; esac
    ldd "$f" >"$T/ldd.txt" 2>&1
    grep -q "not found" "$T/ldd.txt" && fail "$f: $(grep 'not found' "$T/ldd.txt")"
    grep -e "$B" -e "$S" "$T/ldd.txt" && fail "$f loads a library of the build or source tree"
done
case "$(readelf -d "$P/bin/mm_translate" | grep RUNPATH)" in *'$ORIGIN/'*) ;; *) fail "mm_translate: no \$ORIGIN RUNPATH" ;; esac
ldd "$P/bin/mm_simulate" | grep -q "libmmsim.so => $P/" || fail "mm_simulate does not load the moved libmmsim.so: $(ldd "$P/bin/mm_simulate" | grep mmsim)"

# --- every tool: --version, --help, --help-general (exit 0, on stdout)
for t in $TOOLS; do
    for o in --version --help --help-general; do
        "$P/bin/$t" $o >"$T/out.txt" 2>"$T/err.txt" || fail "$t $o: exit $?: $(head -3 "$T/err.txt")"
        [ -s "$T/out.txt" ] || fail "$t $o: nothing on stdout"
    done
    "$P/bin/$t" --version | grep -q "^$t [0-9]" || fail "$t --version: $("$P/bin/$t" --version)"
done

# --- the default model from the moved share/: the small test model put in its place, so the
# outputs' MM_MODEL_SHA256 tells which file was read (the source tree's is the trained one)
for t in mm_translate mm_generate mm_embed mm_demo; do
    "$P/bin/$t" --help | grep -q "default model ($P/share/metaearth-mm/default.safetensors)" ||
        fail "$t --help: the default model is not the moved prefix's: $("$P/bin/$t" --help | grep 'default model')"
done
cp "$TINY" "$P/share/metaearth-mm/default.safetensors"
TINY_SHA=$(sha256sum "$TINY" | cut -c1-64)
mkdir -p "$T/in"; "$B/mm_make_samples" "$T/in" 72 54 >/dev/null || { echo "FAIL: mm_make_samples"; exit 1; }
Q="-q --threads 1 --steps 1"
expect 0 "" "$P/bin/mm_translate" $Q "$T/in/scene_sar.tif" "$T/work/out_rgb.tif"
gdalinfo "$T/work/out_rgb.tif" >"$T/info.txt" 2>&1
grep -q "MM_MODEL_SHA256=$TINY_SHA" "$T/info.txt" || fail "mm_translate did not use the moved prefix's default model"
grep -q "Size is 72, 54" "$T/info.txt" || fail "mm_translate: output size"
expect 0 "" "$P/bin/mm_generate" $Q -like "$T/in/scene_sar.tif" "$T/work/gen_rgb.tif"
gdalinfo "$T/work/gen_rgb.tif" | grep -q "MM_MODEL_SHA256=$TINY_SHA" || fail "mm_generate: not the moved default model"
expect 0 "" "$P/bin/mm_embed" -q --threads 1 "$T/in/scene_sar.tif" "$T/work/tokens.tif"
[ -s "$T/work/tokens.tif" ] || fail "mm_embed wrote nothing"
expect 0 "" "$P/bin/mm_demo" -q --steps 1 --threads 1 --out "$T/work"
[ -s "$T/work/demo_rgb.ppm" ] || fail "mm_demo wrote no demo_rgb.ppm"
expect 0 "" "$P/bin/mm_info" "$P/share/metaearth-mm/default.safetensors"
# mm_convert runs its Python converter and mappings from the moved share/metaearth-mm/convert
[ -f "$P/share/metaearth-mm/convert/mm_convert.py" ] || fail "share/metaearth-mm/convert/mm_convert.py not installed"
expect 0 "" "$P/bin/mm_convert" --list-mappings
grep -q "^diffusers-vae" "$T/out.txt" || fail "mm_convert --list-mappings: $(head -c 300 "$T/out.txt")"
expect 0 "" "$P/bin/mm_convert" -m metaearth-ref -c "$S/tests/golden/tiny_config.json" -o "$T/work/conv.safetensors" "$TINY"
grep -q "loads in libmm" "$T/out.txt" || fail "mm_convert: $(head -c 300 "$T/out.txt")"
expect 0 "" "$P/bin/mm_info" --config "$P/share/metaearth-mm/metaearth-mm-600m.json"
expect 0 "" "$P/bin/mm_bench" --model "$TINY" --threads 1 --reps 1 --steps 0 --no-matmul
expect 0 "" "$P/bin/mm_simulate" -q --size 64 --seed 3 "$T/work/sim"
for m in rgb sar label; do [ -s "$T/work/sim_$m.tif" ] || fail "mm_simulate wrote no sim_$m.tif"; done
expect 0 "" "$P/bin/mm_eval" "$T/work/sim_rgb.tif" "$T/work/sim_rgb.tif" --json
grep -q "psnr" "$T/out.txt" || fail "mm_eval: no scores: $(head -c 300 "$T/out.txt")"
expect 0 "" "$P/bin/mm_baseline" --fit -s sar -t rgb --out "$T/work/lut.txt" --scenes 1 -q
expect 0 "" "$P/bin/mm_baseline" --lut "$T/work/lut.txt" -q "$T/work/sim_sar.tif" "$T/work/base_rgb.tif"
[ -s "$T/work/base_rgb.tif" ] || fail "mm_baseline --lut wrote nothing"

# --- the GDAL plugin from the moved prefix, with its default model from the moved share/
if [ "$HAVE_PLUGIN" != 0 ]; then
    GDAL_DRIVER_PATH="$P/lib/gdalplugins" LD_PRELOAD="$PRELOAD" ASAN_OPTIONS=detect_leaks=0 gdalinfo --formats >"$T/formats.txt" 2>&1
    grep -q "^ *MM" "$T/formats.txt" || fail "gdalinfo --formats: no MM driver from the moved prefix"
    GDAL_DRIVER_PATH="$P/lib/gdalplugins" LD_PRELOAD="$PRELOAD" ASAN_OPTIONS=detect_leaks=0 gdal_translate -q -oo STEPS=1 \
        "MM:rgb:$T/in/scene_sar.tif" "$T/work/drv_rgb.tif" >"$T/drv.txt" 2>&1 ||
        fail "gdal_translate MM:rgb: $(tail -3 "$T/drv.txt")"
    gdalinfo "$T/work/drv_rgb.tif" 2>/dev/null | grep -q "MM_MODEL_SHA256=$TINY_SHA" ||
        fail "the GDAL plugin did not use the moved prefix's default model"
fi

# --- programs built against the moved prefix: pkg-config (shared, then static) ...
export PKG_CONFIG_PATH="$P/lib/pkgconfig"
pkg-config --exists libmm mmgeo || fail "pkg-config does not find libmm and mmgeo"
[ "$(pkg-config --variable=prefix libmm)" = "$P/lib/pkgconfig/../.." ] || [ "$(cd "$(pkg-config --variable=prefix libmm)" && pwd -P)" = "$P" ] ||
    fail "libmm.pc's prefix is not the moved prefix: $(pkg-config --variable=prefix libmm)"
case "$(pkg-config --static --libs libmm)" in *-ldnnl*-lm*) ;; *) fail "libmm.pc: no -ldnnl/-lm for a static link: $(pkg-config --static --libs libmm)" ;; esac
pkg-config --print-requires-private libmm | grep -q libcjson || fail "libmm.pc: cjson is not in Requires.private"
pkg-config --print-requires-private mmgeo | grep -q gdal || fail "mmgeo.pc: gdal is not in Requires.private"
C="$S/tests/install/consumer.c"
MODEL="$P/share/metaearth-mm/default.safetensors"
# shellcheck disable=SC2046,SC2086
$CC $CFLAGS_EXTRA -o "$T/c_mm" "$C" $(pkg-config --cflags --libs libmm) -Wl,-rpath,"$P/lib" 2>"$T/cc.txt" ||
    fail "cc with pkg-config libmm: $(head -5 "$T/cc.txt")"
expect 0 "" "$T/c_mm" "$MODEL"
grep -q "model .*modalities" "$T/out.txt" || fail "consumer (libmm): $(cat "$T/out.txt")"
ldd "$T/c_mm" | grep -q "libmm.so.* => $P/lib/" || fail "consumer does not load the moved libmm.so"
# shellcheck disable=SC2046,SC2086
$CC $CFLAGS_EXTRA -DUSE_MMGEO -o "$T/c_geo" "$C" $(pkg-config --cflags --libs mmgeo) -Wl,-rpath,"$P/lib" 2>"$T/cc.txt" ||
    fail "cc with pkg-config mmgeo: $(head -5 "$T/cc.txt")"
expect 0 "" "$T/c_geo" "$MODEL"
grep -q "mmgeo: .* windows" "$T/out.txt" || fail "consumer (mmgeo): $(cat "$T/out.txt")"
# static: libmm.a with what Libs.private and Requires.private add
static_libs=$(pkg-config --static --libs libmm | sed 's/ -lmm / /; s/^-lmm //')
# shellcheck disable=SC2046,SC2086
$CC $CFLAGS_EXTRA -o "$T/c_static" "$C" $(pkg-config --cflags libmm) "$P/lib/libmm.a" $static_libs 2>"$T/cc.txt" ||
    fail "static link with pkg-config --static libmm: $(head -5 "$T/cc.txt")"
if [ -x "$T/c_static" ]; then
    ldd "$T/c_static" | grep -q "libmm.so" && fail "the static consumer loads libmm.so"
    expect 0 "" "$T/c_static" "$MODEL"
fi

# --- ... and find_package(MetaEarthMM)
if cmake -S "$S/tests/install" -B "$T/cmk" -DCMAKE_PREFIX_PATH="$P" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_C_FLAGS="$CFLAGS_EXTRA" -DCMAKE_EXE_LINKER_FLAGS="$CFLAGS_EXTRA" >"$T/cmk.txt" 2>&1 &&
    cmake --build "$T/cmk" >>"$T/cmk.txt" 2>&1; then
    expect 0 "" "$T/cmk/consumer_cmake" "$MODEL"
    grep -q "mmgeo: .* windows" "$T/out.txt" || fail "find_package consumer: $(cat "$T/out.txt")"
    expect 0 "" "$T/cmk/consumer_sim"
    [ "$(cd "$(cat "$T/cmk/datadir.txt")" && pwd -P)" = "$P/share/metaearth-mm" ] ||
        fail "MetaEarthMM_DATADIR is $(cat "$T/cmk/datadir.txt")"
    ldd "$T/cmk/consumer_cmake" | grep -q "libmmgeo.so.* => $P/lib/" || fail "find_package consumer does not load the moved libmmgeo.so"
else
    fail "find_package(MetaEarthMM) consumer: $(grep -i -A3 error "$T/cmk.txt" | head -12)"
fi

echo "install test: $(($(date +%s) - t0)) s"
[ "$fails" -eq 0 ] && echo "PASS" || { echo "$fails failure(s)"; exit 1; }
