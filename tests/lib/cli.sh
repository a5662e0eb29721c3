# Shared by the command-line test scripts (sourced after setting TEST_NAME:
#   TEST_NAME=mm_tools_test; . "$(dirname "$0")/../lib/cli.sh"
# POSIX `.` passes no arguments): a temporary directory $T (removed on exit; the script stops if
# it cannot be made, so nothing is ever written outside it), a failure counter and the checks.
#   fail MSG               count a failure and say what it was
#   expect RC PATTERN CMD  run CMD: exit status RC, and stderr matching PATTERN (empty: any)
#   no_file PATH           PATH does not exist, and no temporary file is left beside it
T=$(mktemp -d "${TMPDIR:-/tmp}/${TEST_NAME:-mm_test}.XXXXXX") && [ -d "$T" ] ||
    { echo "FAIL: cannot make a temporary directory"; exit 1; }
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
expect() {
    want=$1 pat=$2
    shift 2
    "$@" >"$T/out.txt" 2>"$T/err.txt"
    rc=$?
    [ "$rc" -eq "$want" ] || fail "exit $rc (expected $want): $*: $(cat "$T/err.txt")"
    [ -z "$pat" ] || grep -q -- "$pat" "$T/err.txt" || fail "no '$pat' in the message of: $*: $(cat "$T/err.txt")"
}
no_file() { [ ! -e "$1" ] || fail "$1 exists"; ls -a "$(dirname "$1")" | grep -q mmtmp && fail "a temporary file is left in $(dirname "$1")"; true; }
