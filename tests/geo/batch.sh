#!/bin/sh
# mm_batch (issue 18, item 1) with the bundled test model (1 step) on the samples: a manifest of 5
# items, 3 of them bad (a missing input, a bad option, a band the source lacks) -> exit 1, the two
# good outputs, a report naming the bad ones and why; a rerun skips the good ones (outputs
# untouched) and fails the bad ones again; a changed option, input or model redoes only the items
# it touches; the outputs are byte-identical to mm_translate's with the same options; -j 2 gives
# the same files as -j 1 (JSON Lines); bad manifests and usage exit 2.
# Usage: batch.sh BUILD_DIR MODEL
set -u
TEST_NAME=mm_batch_test
. "$(dirname "$0")/../lib/geo.sh" # $B $MODEL $PLUGIN $HERE $PY $SAME need_python; $T fail expect no_file
OPTS="--threads 1 --steps 1 --guidance 1"
MB="$B/mm_batch --model $MODEL $OPTS"
MT="$B/mm_translate -q --model $MODEL $OPTS"
make_samples 72 54
mkdir "$T/b"
cp "$T/scene_sar.tif" "$T/b/a_sar.tif"
cp "$T/scene_sar.tif" "$T/b/c_sar.tif"
mtime() { stat -c %y "$1"; }
# the status and error of the item whose output ends with $2 in report $1 ("status|error")
item() {
    python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))
for i in r["items"]:
    if i["output"].endswith("/" + sys.argv[2]): print("%s|%s" % (i["status"], i["error"] or ""))' "$1" "$2"
}
have_py=1
command -v python3 >/dev/null 2>&1 || { have_py=0; echo "NOTE: python3 not found: the report's items are checked with grep only"; }
check() { # report output status [error pattern]
    if [ $have_py -eq 1 ]; then
        got=$(item "$1" "$2")
        case "$got" in "$3|"*) ;; *) fail "$2: expected status $3 in $(basename "$1"), got '$got'" ;; esac
        [ -z "${4:-}" ] || echo "$got" | grep -q -- "$4" || fail "$2: no '$4' in the error '$got'"
    else
        grep -q "\"status\":.*\"$3\"" "$1" || fail "$2: no status $3 in $1"
    fi
}

cat >"$T/b/m.csv" <<'CSV'
input,output,task,options
a_sar.tif,a_rgb.tif,sar:rgb,--seed 1
missing_sar.tif,m_rgb.tif,sar:rgb,
c_sar.tif,c_rgb.tif,sar:rgb,"--seed 2 -co COMPRESS=LZW"
# a comment line
a_sar.tif,o_rgb.tif,sar:rgb,--steps many
a_sar.tif,w_rgb.tif,sar:rgb,-b 3
CSV

# --- 1. the first run: two outputs, three failures, exit 1, the report says which and why
expect 1 "failed: .*m_rgb.tif" $MB --report "$T/r1.json" "$T/b/m.csv"
grep -q "5 items: 2 done, 0 skipped (up to date), 3 failed" "$T/err.txt" || fail "summary line: $(tail -3 "$T/err.txt")"
grep -q "^failed .*o_rgb.tif (.*--steps" "$T/err.txt" || fail "summary table: $(cat "$T/err.txt")"
grep -q "\[5/5\]" "$T/err.txt" || fail "progress: no [5/5]"
for f in a c; do
    [ -s "$T/b/${f}_rgb.tif" ] || fail "no output ${f}_rgb.tif"
    [ -s "$T/b/${f}_rgb.tif.mmstamp.json" ] || fail "no stamp ${f}_rgb.tif.mmstamp.json"
done
for f in m o w; do no_file "$T/b/${f}_rgb.tif"; no_file "$T/b/${f}_rgb.tif.mmstamp.json"; done
check "$T/r1.json" a_rgb.tif ok
check "$T/r1.json" c_rgb.tif ok
check "$T/r1.json" m_rgb.tif failed "cannot open '.*missing_sar.tif': No such file"
check "$T/r1.json" o_rgb.tif failed "steps"
check "$T/r1.json" w_rgb.tif failed "band"
grep -q '"failed":	3' "$T/r1.json" || fail "report: failed count"
s=$T/b/a_rgb.tif.mmstamp.json
grep -q "\"input_sha256\":.*\"$(sha256sum "$T/b/a_sar.tif" | cut -c1-64)\"" "$s" || fail "stamp: input SHA-256"
grep -q "\"model_sha256\":.*\"$(sha256sum "$MODEL" | cut -c1-64)\"" "$s" || fail "stamp: model SHA-256"
grep -q '"version":.*"0\.' "$s" || fail "stamp: version"
grep -q '"seed":.*"1"' "$s" || fail "stamp: options"

# --- 2. byte-identical to mm_translate with the same options
$MT --seed 1 "$T/b/a_sar.tif" "$T/ref_a_rgb.tif" 2>/dev/null || fail "mm_translate a"
$MT --seed 2 -co COMPRESS=LZW "$T/b/c_sar.tif" "$T/ref_c_rgb.tif" 2>/dev/null || fail "mm_translate c"
cmp -s "$T/ref_a_rgb.tif" "$T/b/a_rgb.tif" || fail "a_rgb.tif differs from mm_translate's"
cmp -s "$T/ref_c_rgb.tif" "$T/b/c_rgb.tif" || fail "c_rgb.tif differs from mm_translate's"

# --- 3. a rerun: the two skipped, outputs untouched, the bad ones fail again
ta=$(mtime "$T/b/a_rgb.tif") tc=$(mtime "$T/b/c_rgb.tif")
t0=$(date +%s)
expect 1 "" $MB --report "$T/r2.json" "$T/b/m.csv"
[ $(($(date +%s) - t0)) -le 20 ] || fail "the rerun took $(($(date +%s) - t0)) s"
grep -q "5 items: 0 done, 2 skipped (up to date), 3 failed" "$T/err.txt" || fail "rerun summary: $(tail -2 "$T/err.txt")"
check "$T/r2.json" a_rgb.tif skipped
check "$T/r2.json" c_rgb.tif skipped
check "$T/r2.json" m_rgb.tif failed "No such file"
[ "$(mtime "$T/b/a_rgb.tif")" = "$ta" ] || fail "a_rgb.tif rewritten by the rerun"
[ "$(mtime "$T/b/c_rgb.tif")" = "$tc" ] || fail "c_rgb.tif rewritten by the rerun"
# -q: no progress, no table; the failures still said
expect 1 "failed:" $MB -q "$T/b/m.csv"
grep -q "skipped\|\[" "$T/err.txt" && fail "-q: progress printed: $(cat "$T/err.txt")"
# the same options spelt otherwise (and other --threads) are the same stamp
sed 's/--seed 1/--seed=1 --threads 2/' "$T/b/m.csv" >"$T/b/m2.csv"
expect 1 "" $MB --report "$T/r3.json" "$T/b/m2.csv"
check "$T/r3.json" a_rgb.tif skipped

# --- 4. one item's option changed: only it is redone
sed 's/--seed 2/--seed 3/' "$T/b/m.csv" >"$T/b/m3.csv"
expect 1 "" $MB --report "$T/r4.json" "$T/b/m3.csv"
check "$T/r4.json" a_rgb.tif skipped
check "$T/r4.json" c_rgb.tif ok
[ "$(mtime "$T/b/a_rgb.tif")" = "$ta" ] || fail "a_rgb.tif redone for c's option"
$MT --seed 3 -co COMPRESS=LZW "$T/b/c_sar.tif" "$T/ref_c3_rgb.tif" 2>/dev/null || fail "mm_translate c3"
cmp -s "$T/ref_c3_rgb.tif" "$T/b/c_rgb.tif" || fail "c_rgb.tif (seed 3) differs from mm_translate's"
# a default on the command line is an option of every item; an item's own wins
expect 1 "" $MB --seed 3 --report "$T/r5.json" "$T/b/m3.csv"
check "$T/r5.json" a_rgb.tif skipped # its own --seed 1
check "$T/r5.json" c_rgb.tif skipped # its own --seed 3
expect 1 "" $MB -co COMPRESS=DEFLATE --report "$T/r6.json" "$T/b/m3.csv"
check "$T/r6.json" a_rgb.tif ok      # -co COMPRESS=DEFLATE is new to a
check "$T/r6.json" c_rgb.tif skipped # its own COMPRESS=LZW replaces the default's

# --- 5. a changed input, a replaced output, a changed model: redone
gdal_translate -q -scale 0 1 0 2 "$T/scene_sar.tif" "$T/b/c_sar.tif" || fail "gdal_translate"
expect 1 "" $MB --report "$T/r7.json" "$T/b/m3.csv"
check "$T/r7.json" c_rgb.tif ok
check "$T/r7.json" a_rgb.tif ok # its last run had -co COMPRESS=DEFLATE
cp "$T/ref_a_rgb.tif" "$T/b/a_rgb.tif.tmp" && mv "$T/b/a_rgb.tif.tmp" "$T/b/a_rgb.tif"
touch -d "2020-01-01" "$T/b/a_rgb.tif"
expect 1 "" $MB --report "$T/r8.json" "$T/b/m3.csv"
check "$T/r8.json" a_rgb.tif ok # the output is not the one its stamp describes
if [ $have_py -eq 1 ]; then
    python3 "$HERE/blow_model.py" "$MODEL" "$T/model2.safetensors" 1.001 || fail "blow_model.py"
    expect 1 "" $B/mm_batch --model "$T/model2.safetensors" $OPTS --report "$T/r9.json" "$T/b/m3.csv"
    check "$T/r9.json" a_rgb.tif ok
    check "$T/r9.json" c_rgb.tif ok
    cp "$MODEL" "$T/same.safetensors" # the same model under another name: the same stamp
    expect 1 "" $B/mm_batch --model "$T/model2.safetensors" $OPTS --report "$T/r10.json" "$T/b/m3.csv"
    check "$T/r10.json" a_rgb.tif skipped
fi

# --- 6. -j 2 (JSON Lines, absolute paths) gives the same files as -j 1
mkdir "$T/j1" "$T/j2"
for j in 1 2; do
    : >"$T/j$j/m.jsonl"
    for k in 1 2 3 4; do
        printf '{"input": "%s", "output": "%s/o%d_rgb.tif", "task": "sar:rgb", "options": ["--seed", "%d"]}\n' \
            "$T/scene_sar.tif" "$T/j$j" $k $k >>"$T/j$j/m.jsonl"
    done
    printf '\n{"input": "%s", "output": "%s/x_rgb.tif", "task": "sar:rgb", "options": "-srcwin 8 8 40 30 --seed 5"}\n' \
        "$T/scene_sar.tif" "$T/j$j" >>"$T/j$j/m.jsonl"
    expect 0 "" $B/mm_batch -j $j --model $MODEL --steps 1 --guidance 1 --report "$T/j$j.json" "$T/j$j/m.jsonl"
done
for f in o1 o2 o3 o4 x; do
    cmp -s "$T/j1/${f}_rgb.tif" "$T/j2/${f}_rgb.tif" || fail "-j 2: ${f}_rgb.tif differs from -j 1's"
done
gdalinfo "$T/j2/x_rgb.tif" | grep -q "Size is 40, 30" || fail "-srcwin in JSON Lines options"
expect 0 "" $B/mm_batch -j 2 --model $MODEL --steps 1 --guidance 1 "$T/j2/m.jsonl"
grep -q "0 done, 5 skipped" "$T/err.txt" || fail "-j 2 rerun: $(tail -1 "$T/err.txt")"

# --- 7. bad manifests and usage: exit 2, nothing run
printf 'input,output\na_sar.tif,z_rgb.tif\n' >"$T/b/bad1.csv"
expect 2 "must name input, output and task" $MB "$T/b/bad1.csv"
printf 'input,output,task,colour\n' >"$T/b/bad2.csv"
expect 2 "unknown column 'colour'" $MB "$T/b/bad2.csv"
printf '{"input": "a_sar.tif", "output": "z_rgb.tif", "task": "sar:rgb"}\n{"input": \n' >"$T/b/bad3.jsonl"
expect 2 "line 2: not a JSON object" $MB "$T/b/bad3.jsonl"
printf 'input,output,task\na_sar.tif,z_rgb.tif,sar:rgb\nc_sar.tif,z_rgb.tif,sar:rgb\n' >"$T/b/bad4.csv"
expect 2 "write the same output" $MB "$T/b/bad4.csv"
printf 'input,output,task\n' >"$T/b/bad5.csv"
expect 2 "no items" $MB "$T/b/bad5.csv"
no_file "$T/b/z_rgb.tif"
expect 2 "cannot open" $MB "$T/b/nothing.csv"
expect 2 "expected one MANIFEST" $MB
expect 2 "MANIFEST comes last" $MB "$T/b/m.csv" --seed 3
expect 2 "come from the task" $MB -t rgb "$T/b/m.csv"
expect 2 "" $MB -j 0 "$T/b/m.csv"
# an item's bad task, -j among its options, an unterminated quote: that item fails
printf 'input,output,task,options\na_sar.tif,t_rgb.tif,sar-rgb,\na_sar.tif,u_rgb.tif,sar:rgb,-j 2\na_sar.tif,v_rgb.tif,sar:rgb,"--seed '"'"'1"\n' >"$T/b/items.csv"
expect 1 "" $MB --report "$T/r11.json" "$T/b/items.csv"
check "$T/r11.json" t_rgb.tif failed "expected SOURCE:TARGET"
check "$T/r11.json" u_rgb.tif failed "not of an item"
check "$T/r11.json" v_rgb.tif failed "unterminated quote"
[ "$fails" -eq 0 ] && echo "PASS" || { echo "$fails failure(s)"; exit 1; }
