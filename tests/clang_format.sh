#!/bin/sh
# The C/C++/CUDA sources are formatted as .clang-format says (issue 17: clang-format enforced).
# usage: clang_format.sh CLANG_FORMAT SOURCE_DIR DIR...
# Runs `clang-format --dry-run -Werror` over every .c .h .cpp .cu .cuh file under SOURCE_DIR/DIR.
# Fails (never skips) when clang-format is missing, when a directory has no sources, or when any
# file is not formatted; the unformatted files are listed with clang-format's own warnings.
# The tree was formatted with clang-format 14 (Debian 12's; bootstrap.sh installs it); another
# major version may format some constructs differently.
set -u
cf=$1
src=$2
shift 2
if ! command -v "$cf" >/dev/null 2>&1; then
    echo "clang_format: FAIL: '$cf' not found (install the Debian package clang-format)" >&2
    exit 1
fi
echo "clang_format: $("$cf" --version)"
cd "$src" || exit 1
list=$(mktemp) || exit 1
trap 'rm -f "$list"' EXIT
for d in "$@"; do
    if [ ! -d "$d" ]; then
        echo "clang_format: FAIL: no directory $src/$d" >&2
        exit 1
    fi
    n0=$(wc -l <"$list")
    find "$d" -type f \( -name '*.c' -o -name '*.h' -o -name '*.cpp' -o -name '*.cu' \
        -o -name '*.cuh' \) | LC_ALL=C sort >>"$list"
    if [ "$(wc -l <"$list")" -eq "$n0" ]; then
        echo "clang_format: FAIL: no sources under $src/$d" >&2
        exit 1
    fi
done
bad=0
while IFS= read -r f; do
    if ! out=$("$cf" --dry-run -Werror "$f" 2>&1); then
        printf '%s\n' "$out" | head -20 >&2
        echo "clang_format: not formatted: $f (clang-format -i $f)" >&2
        bad=$((bad + 1))
    fi
done <"$list"
total=$(wc -l <"$list")
if [ "$bad" -ne 0 ]; then
    echo "clang_format: FAIL: $bad of $total files not formatted ($*)" >&2
    exit 1
fi
echo "clang_format: $total files formatted ($*)"
