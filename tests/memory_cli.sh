#!/bin/sh
# mm_bench's working-memory options on the device the test runs on (the CPU here): --batch 0
# chooses the largest batch whose working memory fits the budget and the timed translation
# allocates nothing; a budget too small for the batch asked for is a clear error (exit 1, the
# bytes named), not a crash.
set -eu
bench=$1
model=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
common="--model $model --threads 2 --reps 1 --no-matmul --precision fp32"

# the need of one tile and of four (the JSON's arena), then a budget between 4 and 5 tiles
# shellcheck disable=SC2086
"$bench" $common --batch 4 --steps 0 >"$dir/b4.json" || fail "batch 4"
# shellcheck disable=SC2086
"$bench" $common --batch 5 --steps 0 >"$dir/b5.json" || fail "batch 5"
arena() { sed 's/.*"arena_bytes": \([0-9]*\).*/\1/' "$1"; }
a4=$(arena "$dir/b4.json")
a5=$(arena "$dir/b5.json")
[ "$a4" -gt 0 ] && [ "$a5" -gt "$a4" ] || fail "arena sizes $a4, $a5"
# whole MiB between the two needs (the tiny model's grow by ~2 MiB a tile)
mib=$(( (a4 + (a5 - a4) / 2) / 1048576 ))
[ $(( mib * 1048576 )) -ge "$a4" ] && [ $(( mib * 1048576 )) -lt "$a5" ] ||
    fail "no whole MiB between $a4 and $a5 bytes"
# shellcheck disable=SC2086
"$bench" $common --batch 0 --memory-budget "$mib" --steps 2 >"$dir/auto.json" || fail "batch 0"
grep -q '"batch": 4,' "$dir/auto.json" || fail "batch 0 chose $(grep -o '"batch": [0-9]*' "$dir/auto.json")"
grep -q '"batch_auto": true' "$dir/auto.json" || fail "batch_auto"
grep -q '"translate_allocations": 0}' "$dir/auto.json" || fail "the translation allocated"

# too small a budget: exit 1 and the figures
set +e
# shellcheck disable=SC2086
"$bench" $common --batch 8 --memory-budget 1 --steps 0 >"$dir/small.json" 2>"$dir/small.err"
rc=$?
set -e
[ $rc = 1 ] || fail "too small a budget: exit $rc"
grep -q "needs [0-9]* MiB" "$dir/small.err" || fail "message: $(cat "$dir/small.err")"
[ ! -s "$dir/small.json" ] || fail "printed a result"
echo "ok: batch 0 chose 4 tiles for a budget of $mib MiB (4 tiles need $a4 B, 5 need $a5 B)"
