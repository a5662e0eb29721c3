#!/bin/sh
# mm_batch with a STAC manifest (issue 18, item 1), with the bundled test model (1 step): a STAC
# Catalog with a child catalog and 4 items (relative hrefs throughout: items under the catalogs,
# assets beside and above them), one whose asset file is missing and one whose input asset is
# ambiguous -> exit 1, the two good outputs, a report naming the bad items and why; the outputs'
# STAC items link the source Item (rel derived_from) and take its datetime; --stac-asset picks an
# asset; a rerun skips the done items. An ItemCollection (named without .json: the kind is read
# from the content) gives the same bytes as the equivalent CSV manifest. A cycle in the links is
# an error (exit 2), not a hang; a missing --output-dir or --task, or a STAC option with a CSV
# manifest, is a usage error. The progress lines count pixels and estimate the time left; -q
# silences them.
# Usage: batch_stac.sh BUILD_DIR MODEL
set -u
TEST_NAME=mm_batch_stac_test
. "$(dirname "$0")/../lib/geo.sh" # $B $MODEL $PLUGIN $HERE $PY $SAME need_python; $T fail expect no_file
need_python 'import json' 'json'
OPTS="--threads 1 --steps 1 --guidance 1"
MB="$B/mm_batch --model $MODEL $OPTS"
make_samples 72 54
cd "$T" || exit 1
mkdir -p data s/items s/sub cyc/a cyc/b
cp scene_sar.tif data/a_sar.tif
cp scene_sar.tif data/c_sar.tif
cp scene_sar.tif s/sub/e_sar.tif
# item FILE ID ASSETS_JSON
item() {
    cat >"$1" <<EOF
{"type": "Feature", "stac_version": "1.0.0", "id": "$2", "geometry": null,
 "properties": {"datetime": "2024-05-0${4:-1}T10:00:00Z"}, "links": [], "assets": {$3}}
EOF
}
TIF='"type": "image/tiff; application=geotiff"'
item s/items/a.json scene-a "\"vv\": {\"href\": \"../../data/a_sar.tif\", $TIF, \"roles\": [\"data\"]},
  \"thumb\": {\"href\": \"a.png\", \"type\": \"image/png\", \"roles\": [\"thumbnail\"]}"
# no role data: the only GeoTIFF; an href with ./
item s/sub/c.json scene-c "\"vv\": {\"href\": \"./../../data/c_sar.tif\", \"type\": \"image/tiff; application=geotiff; profile=cloud-optimized\"},
  \"meta\": {\"href\": \"c.xml\", \"type\": \"application/xml\", \"roles\": [\"metadata\"]}" 3
item s/sub/d.json scene-d "\"vv\": {\"href\": \"d_missing_sar.tif\", $TIF, \"roles\": [\"data\"]}"
item s/sub/e.json scene-e "\"vv\": {\"href\": \"e_sar.tif\", $TIF, \"roles\": [\"data\"]},
  \"vh\": {\"href\": \"e_sar.tif\", $TIF, \"roles\": [\"data\"]}"
cat >s/catalog.json <<'EOF'
{"type": "Catalog", "stac_version": "1.0.0", "id": "flood", "description": "test",
 "links": [{"rel": "self", "href": "./catalog.json"},
           {"rel": "item", "href": "./items/a.json", "type": "application/geo+json"},
           {"rel": "child", "href": "sub/catalog.json", "type": "application/json"}]}
EOF
cat >s/sub/catalog.json <<'EOF'
{"type": "Catalog", "stac_version": "1.0.0", "id": "flood-sub", "description": "test",
 "links": [{"rel": "parent", "href": "../catalog.json"}, {"rel": "root", "href": "../catalog.json"},
           {"rel": "item", "href": "c.json"}, {"rel": "item", "href": "./d.json"},
           {"rel": "item", "href": "e.json"}, {"rel": "item", "href": "../sub/c.json"}]}
EOF
# the status and error of the item whose output ends with $2 in report $1 ("status|error")
st() {
    $PY -c 'import json, sys
r = json.load(open(sys.argv[1]))
for i in r["items"]:
    if i["output"].endswith("/" + sys.argv[2]): print("%s|%s" % (i["status"], i["error"] or ""))' "$1" "$2"
}
check() { # report output status [error pattern]
    got=$(st "$1" "$2")
    case "$got" in "$3|"*) ;; *) fail "$2: expected status $3 in $(basename "$1"), got '$got'" ;; esac
    [ -z "${4:-}" ] || echo "$got" | grep -q -- "$4" || fail "$2: no '$4' in the error '$got'"
}

# --- 1. the catalog: 2 good outputs, the missing asset and the ambiguous item failed, exit 1
expect 1 "failed: .*scene-d.tif (STAC item scene-d)" $MB --output-dir out --task sar:rgb --report r1.json s/catalog.json
grep -q "4 items: 2 done, 0 skipped (up to date), 2 failed" err.txt || fail "summary: $(tail -3 err.txt)"
# the progress counts pixels (72 x 54 per readable input: 2 of them) with a time-left estimate
grep -q "\[1/4\] ok .*scene-a.tif .*; 0.00389 of 0.00778 Mpx (50 %); about .* left" err.txt ||
    fail "progress: no pixels and time left in the first line: $(grep '\[1/4\]' err.txt)"
grep -q "\[4/4\] failed .*; 0.00778 of 0.00778 Mpx (100 %)" err.txt ||
    fail "progress: the last line: $(grep '\[4/4\]' err.txt)"
for f in scene-a scene-c; do
    [ -s "out/$f.tif" ] || fail "no output out/$f.tif"
    [ -s "out/$f.tif.mmstamp.json" ] || fail "no stamp out/$f.tif.mmstamp.json"
    [ -s "out/$f.tif.stac.json" ] || fail "no STAC item out/$f.tif.stac.json"
done
for f in scene-d scene-e; do no_file "out/$f.tif"; no_file "out/$f.tif.mmstamp.json"; done
check r1.json scene-a.tif ok
check r1.json scene-c.tif ok
check r1.json scene-d.tif failed "d_missing_sar.tif"
check r1.json scene-e.tif failed "ambiguous.*--stac-asset"
$PY - r1.json "$T" <<'PY' || fail "the report's STAC fields"
import json, os, sys
r = json.load(open(sys.argv[1])); T = os.path.realpath(sys.argv[2])
it = {i["stac_item"]: i for i in r["items"]}
assert sorted(it) == ["scene-a", "scene-c", "scene-d", "scene-e"], sorted(it)
assert it["scene-a"]["asset"] == "vv" and it["scene-c"]["asset"] == "vv", it
assert it["scene-e"]["asset"] is None, it["scene-e"]
assert it["scene-a"]["stac_href"] == T + "/s/items/a.json", it["scene-a"]["stac_href"]
assert os.path.realpath(it["scene-c"]["input"]) == T + "/data/c_sar.tif", it["scene-c"]["input"]
PY
# the outputs' STAC items: derived_from the source Item (its file), its datetime; the catalog
$PY - "$T" <<'PY' || fail "the outputs' STAC items do not link the source Items"
import json, os, sys
T = os.path.realpath(sys.argv[1])
for name, src, day in (("scene-a", "s/items/a.json", 1), ("scene-c", "s/sub/c.json", 3)):
    j = json.load(open("out/%s.tif.stac.json" % name))
    hrefs = [l["href"] for l in j["links"] if l["rel"] == "derived_from"]
    assert T + "/" + src in hrefs, (name, hrefs)
    assert j["properties"]["datetime"] == "2024-05-0%dT10:00:00Z" % day, j["properties"]["datetime"]
c = json.load(open("out/catalog.json"))
items = sorted(l["href"] for l in c["links"] if l["rel"] == "item")
assert items == ["./scene-a.tif.stac.json", "./scene-c.tif.stac.json"], items
PY
# the input catalog is untouched
grep -q '"id": "flood"' s/catalog.json || fail "the input catalog was changed"

# --- 2. a rerun skips the done items; --stac-asset picks the ambiguous item's asset
expect 1 "" $MB --output-dir out --task sar:rgb --report r2.json s/catalog.json
grep -q "4 items: 0 done, 2 skipped (up to date), 2 failed" err.txt || fail "rerun: $(tail -3 err.txt)"
expect 1 "failed: .*scene-d.tif" $MB -q --output-dir out --task sar:rgb s/catalog.json
grep -q "Mpx\|\[4/4\]\|items:" err.txt && fail "-q: progress or summary on stderr: $(cat err.txt)"
expect 1 "" $MB --output-dir out --task sar:rgb --stac-asset vh --report r3.json s/catalog.json
check r3.json scene-e.tif ok
check r3.json scene-a.tif failed "no asset 'vh' (its assets: 'vv', 'thumb')"
[ -s out/scene-e.tif ] || fail "--stac-asset vh: no out/scene-e.tif"

# --- 3. an ItemCollection (no .json in its name) gives the bytes of the equivalent CSV manifest
cat >s/flood.collection <<EOF
{"type": "FeatureCollection", "features": [
 {"type": "Feature", "stac_version": "1.0.0", "id": "ic-a", "geometry": null,
  "properties": {"datetime": "2024-05-01T10:00:00Z"},
  "links": [{"rel": "self", "href": "items/a.json"}],
  "assets": {"vv": {"href": "../data/a_sar.tif", $TIF, "roles": ["data"]}}},
 {"type": "Feature", "stac_version": "1.0.0", "id": "ic-c", "geometry": null,
  "properties": {"datetime": "2024-05-03T10:00:00Z"}, "links": [],
  "assets": {"vv": {"href": "../data/c_sar.tif", $TIF, "roles": ["data"]}}}]}
EOF
cat >s/flood.csv <<'EOF'
input,output,task
../data/a_sar.tif,../csv/ic-a.tif,sar:rgb
../data/c_sar.tif,../csv/ic-c.tif,sar:rgb
EOF
mkdir csv
expect 0 "" $MB --output-dir ic --task sar:rgb --seed 7 -co COMPRESS=LZW s/flood.collection
expect 0 "" $MB --seed 7 -co COMPRESS=LZW s/flood.csv
for f in ic-a ic-c; do
    [ -s "ic/$f.tif" ] || fail "ItemCollection: no ic/$f.tif"
    cmp -s "ic/$f.tif" "csv/$f.tif" || fail "ItemCollection: ic/$f.tif differs from the CSV manifest's"
done
$PY - "$T" <<'PY' || fail "ItemCollection: the derived_from links"
import json, os, sys
T = os.path.realpath(sys.argv[1])
a = json.load(open("ic/ic-a.tif.stac.json")); c = json.load(open("ic/ic-c.tif.stac.json"))
da = [l["href"] for l in a["links"] if l["rel"] == "derived_from"]
dc = [l["href"] for l in c["links"] if l["rel"] == "derived_from"]
assert T + "/s/items/a.json" in da, da            # its self link
assert T + "/s/flood.collection" in dc, dc       # no self link: the ItemCollection
PY

# --- 4. a cycle in the links is an error, not a hang; bad usage
cat >cyc/a/catalog.json <<'EOF'
{"type": "Catalog", "stac_version": "1.0.0", "id": "a", "description": "x",
 "links": [{"rel": "child", "href": "../b/catalog.json"}]}
EOF
cat >cyc/b/catalog.json <<'EOF'
{"type": "Catalog", "stac_version": "1.0.0", "id": "b", "description": "x",
 "links": [{"rel": "child", "href": "../a/./catalog.json"}]}
EOF
expect 2 "a cycle in the catalog's links" timeout 60 $MB --output-dir cout --task sar:rgb cyc/a/catalog.json
[ -e cout ] && fail "the cycle: the output folder was made"
expect 2 "needs --output-dir DIR" $MB --task sar:rgb s/catalog.json
expect 2 "needs --task SOURCE:TARGET" $MB --output-dir out s/catalog.json
expect 2 "--stac-asset is for a STAC manifest" $MB --stac-asset vv s/flood.csv
expect 2 "bad --task" $MB --output-dir out --task sar s/catalog.json
echo '{"type": "Catalog", "links": [{"rel": "child", "href": "nowhere/catalog.json"}]}' >cyc/m.json
expect 2 "cannot read the child catalog 'nowhere/catalog.json'" $MB --output-dir out --task sar:rgb cyc/m.json
ls -R | grep -q '\.part' && fail "a .part file left: $(ls -R | grep '\.part')"

[ "$fails" -eq 0 ] && echo "PASS: mm_batch STAC manifests" || { echo "$fails failure(s)"; exit 1; }
