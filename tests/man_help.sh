#!/bin/sh
# The man pages against the tools: `groff -ww -z -man` is silent on every page of man/, and for
# each tool the options its --help names (tokens -x / --xyz) are exactly those of its man page's
# SYNOPSIS and OPTIONS sections (the page rendered by groff, so roff's \- and fonts do not matter).
# Every tool also answers --version, --help and --help-general with status 0 on stdout.
# Usage: man_help.sh BUILD_DIR MAN_DIR
set -u
B=$(cd "$1" && pwd)
M=$2
TEST_NAME=mm_man_help_test
. "$(dirname "$0")/lib/cli.sh" # $T, fail
command -v groff >/dev/null || { echo "SKIPPED: groff not found (groff-base)"; exit 77; }

for page in "$M"/*.[1-9]; do
    groff -ww -z -man "$page" >"$T/groff.txt" 2>&1
    [ -s "$T/groff.txt" ] && fail "groff -ww -z -man $(basename "$page"): $(head -5 "$T/groff.txt")"
done

# option tokens: a '-' or '--' and a small letter, after the start of a line, a blank or one of
# [ ( | , / (not the options of another program named just before: "gdalinfo --format")
tokens() {
    sed -E 's/(gdal[a-z_]*|ogr[a-z0-9_]*) +--?[a-z][a-z0-9_-]*//g' |
        grep -oE '(^|[][[:space:](|,/])--?[a-z][a-z0-9_-]*' | sed -E 's/^[][[:space:](|,/]//; s/-+$//' |
        sort -u
}
tools=""
for page in "$M"/*.1; do tools="$tools $(basename "$page" .1)"; done
[ -n "$tools" ] || { echo "FAIL: no man pages in $M"; exit 1; }
for t in $tools; do
    [ -x "$B/$t" ] || { fail "$t has a man page but no executable in $B"; continue; }
    for o in --version --help --help-general; do
        "$B/$t" $o >"$T/out.txt" 2>"$T/err.txt" || fail "$t $o: exit $?: $(head -3 "$T/err.txt")"
        [ -s "$T/out.txt" ] || fail "$t $o: nothing on stdout"
        [ "$o" = --help ] && cp "$T/out.txt" "$T/help_raw.txt"
    done
    tokens <"$T/help_raw.txt" >"$T/help.txt"
    # the rendered page, one very long line per paragraph, no hyphenation, no overstriking
    groff -man -Tascii -rLL=1000n -rHY=0 -P-c -P-b -P-o -P-u "$M/$t.1" 2>/dev/null |
        awk '/^[A-Z][A-Z ]*$/ { keep = ($0 == "SYNOPSIS" || $0 == "OPTIONS"); next } keep' |
        tokens >"$T/man.txt"
    comm -23 "$T/help.txt" "$T/man.txt" >"$T/only_help.txt"
    comm -13 "$T/help.txt" "$T/man.txt" >"$T/only_man.txt"
    [ -s "$T/only_help.txt" ] &&
        fail "$t: in --help, not in the SYNOPSIS/OPTIONS of $t.1: $(tr '\n' ' ' <"$T/only_help.txt")"
    [ -s "$T/only_man.txt" ] &&
        fail "$t: in the SYNOPSIS/OPTIONS of $t.1, not in --help: $(tr '\n' ' ' <"$T/only_man.txt")"
    [ "$(wc -l <"$T/help.txt")" -ge 3 ] || fail "$t: too few options found in --help"
done
# mm_make_samples (not installed, no page): the same three options, and never a folder named after
# one of them
if [ -x "$B/mm_make_samples" ]; then
    mkdir "$T/cwd"
    for o in --version --help --help-general; do
        (cd "$T/cwd" && "$B/mm_make_samples" $o >"$T/out.txt" 2>"$T/err.txt") ||
            fail "mm_make_samples $o: exit $?: $(head -3 "$T/err.txt")"
        [ -s "$T/out.txt" ] || fail "mm_make_samples $o: nothing on stdout"
    done
    (cd "$T/cwd" && "$B/mm_make_samples" -x >/dev/null 2>&1)
    [ $? -eq 2 ] || fail "mm_make_samples -x: not a usage error"
    [ -z "$(ls -A "$T/cwd")" ] || fail "mm_make_samples wrote into the current directory: $(ls -A "$T/cwd")"
fi
[ "$fails" -eq 0 ] && echo "PASS" || { echo "$fails failure(s)"; exit 1; }
