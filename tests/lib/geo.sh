# Shared by the command-line tests of the georeferenced tools whose arguments are
# BUILD_DIR MODEL [PLUGIN_DIR] (tests/geo/*.sh), sourced after setting TEST_NAME, in place of
# cli.sh (which it sources):
#   TEST_NAME=mm_batch_test; . "$(dirname "$0")/../lib/geo.sh"
# POSIX `.` passes no arguments: it reads the script's own $1, $2, $3, and $0 is the script's.
# Sets, besides cli.sh's $T and checks:
#   B       BUILD_DIR, absolute
#   MODEL   MODEL, absolute
#   PLUGIN  PLUGIN_DIR (the folder of the GDAL plugin gdal_MM), empty when not given
#   HERE    the test script's folder, absolute
#   PY      the Python 3 of the tests (MM_TEST_PYTHON, else Debian's, which has python3-gdal)
#   SAME    same_raster.py under $PY: two rasters the same (size, georeferencing, nodata, mask,
#           metadata, every pixel)
#   need_python CODE WHAT   stop (FAIL, exit 1) unless $PY runs CODE; WHAT names what is missing
#   make_samples W H        the synthetic scenes of mm_make_samples, W x H, in $T (scene_sar.tif,
#                           scene_rgb.tif, ...); stop (FAIL) when they cannot be made
set -u
B=$(cd "$1" && pwd)
MODEL=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
PLUGIN=${3:-}
. "$(dirname "$0")/../lib/cli.sh" # $T, fail, expect, no_file
HERE=$(cd "$(dirname "$0")" && pwd)
PY=${MM_TEST_PYTHON:-/usr/bin/python3}
SAME="$PY $HERE/same_raster.py"
need_python() { $PY -c "$1" 2>/dev/null || { echo "FAIL: $PY with $2 is needed"; exit 1; }; }
make_samples() { "$B/mm_make_samples" "$T" "$1" "$2" >/dev/null || { echo "FAIL: mm_make_samples"; exit 1; }; }
