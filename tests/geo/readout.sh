#!/bin/sh
# mm_embed --readout scene (the zero-shot scene readout, paper V-C, Eq. 22) and mm_generate
# --joint-guidance from the command line, on the bundled samples with the test model: the readout
# raster's grid (size, geotransform, CRS), bands and provenance, its pixels against the default
# embedding, -srcwin against the same cells of the full run, seeds and --readout-t; joint
# guidance at scale 1 the same bits as without it, above 1 different; bad input.
# Usage: readout.sh BUILD_DIR MODEL SAMPLES_DIR
set -u
B=$1
MODEL=$2
SAMPLES=$3
TEST_NAME=mm_readout_test
. "$(dirname "$0")/../lib/cli.sh" # $T, fail, expect, no_file
E="$B/mm_embed -q --threads 1 --model $MODEL"
G="$B/mm_generate -q --threads 1 --steps 2 --model $MODEL"
SAR=$SAMPLES/scene_sar.tif # 100 x 70 at 10 m, EPSG:32632
RGB=$SAMPLES/scene_rgb.tif
envi() { gdal_translate -q -of ENVI "$@"; }

# --- the readout raster: the grid and bands of the default embedding (token cell 4 px)
expect 0 "" $E "$SAR" "$T/emb.tif"
expect 0 "" $E --readout scene --readout-modality rgb "$SAR" "$T/ro.tif"
gdalinfo "$T/emb.tif" >"$T/ie.txt"
gdalinfo "$T/ro.tif" >"$T/ir.txt"
grep -q "Size is 25, 18" "$T/ir.txt" || fail "readout: size (ceil(100/4), ceil(70/4))"
grep -q "Origin = (500000.000000000000000,5000000.000000000000000)" "$T/ir.txt" || fail "readout: origin"
grep -q "Pixel Size = (40.000000000000000,-40.000000000000000)" "$T/ir.txt" || fail "readout: pixel size"
grep -q 'ID\["EPSG",32632\]' "$T/ir.txt" || fail "readout: CRS"
[ "$(grep -c '^Band [0-9]* .*Type=Float32' "$T/ir.txt")" -eq 64 ] || fail "readout: 64 Float32 bands"
grep -q "Band 65" "$T/ir.txt" && fail "readout: more than 64 bands"
for k in "MM_EMBEDDING=scene readout" MM_READOUT_MODALITY=rgb MM_READOUT_T=0 MM_SEED=0 MM_TOKEN_CELL=4 \
         MM_TOOL=mm_embed; do
    grep -q "$k" "$T/ir.txt" || fail "readout: $k"
done
grep -q "MM_EMBEDDING=scene tokens" "$T/ie.txt" || fail "default embedding: MM_EMBEDDING"
grep -q "MM_READOUT" "$T/ie.txt" && fail "default embedding: MM_READOUT items"
# the same grid, the same georeferencing lines, other values
for k in "Size is" "Origin =" "Pixel Size ="; do
    [ "$(grep "$k" "$T/ie.txt")" = "$(grep "$k" "$T/ir.txt")" ] || fail "readout: '$k' differs from the embedding's"
done
envi "$T/emb.tif" "$T/emb.img" && envi "$T/ro.tif" "$T/ro.img"
cmp -s "$T/emb.img" "$T/ro.img" && fail "readout: the same pixels as the default embedding"
# --readout source is the default, byte for byte
expect 0 "" $E --readout source "$SAR" "$T/emb2.tif"
envi "$T/emb2.tif" "$T/emb2.img"
cmp -s "$T/emb.img" "$T/emb2.img" || fail "--readout source differs from the default"
# deterministic; -srcwin (pixels 13..43 x 6..26) bit-identical to the same cells of the full run
expect 0 "" $E --readout scene --readout-modality rgb "$SAR" "$T/ro2.tif"
envi "$T/ro2.tif" "$T/ro2.img"
cmp -s "$T/ro.img" "$T/ro2.img" || fail "readout: two runs differ"
expect 0 "" $E --readout scene --readout-modality rgb -srcwin 13 6 30 20 "$SAR" "$T/ro_w.tif"
gdalinfo "$T/ro_w.tif" | grep -q "Size is 8, 6" || fail "readout -srcwin: size"
envi -srcwin 3 1 8 6 "$T/ro.tif" "$T/r1.img" && envi "$T/ro_w.tif" "$T/r2.img"
cmp -s "$T/r1.img" "$T/r2.img" || fail "readout -srcwin differs from the same cells of the full run"
# the seed addresses the readout branch's noise; --readout-t noises the source
expect 0 "" $E --readout scene --readout-modality rgb --seed 5 "$SAR" "$T/ro_s.tif"
envi "$T/ro_s.tif" "$T/ro_s.img"
cmp -s "$T/ro.img" "$T/ro_s.img" && fail "readout: --seed 5 gives the pixels of seed 0"
gdalinfo "$T/ro_s.tif" | grep -q "MM_SEED=5" || fail "readout: MM_SEED=5"
expect 0 "" $E --readout scene --readout-modality rgb --readout-t 0.25 "$SAR" "$T/ro_t.tif"
envi "$T/ro_t.tif" "$T/ro_t.img"
cmp -s "$T/ro.img" "$T/ro_t.img" && fail "readout: --readout-t 0.25 gives the pixels of t = 0"
gdalinfo "$T/ro_t.tif" | grep -q "MM_READOUT_T=0.25" || fail "readout: MM_READOUT_T=0.25"
# another branch (sar) from another source (rgb): 64 bands on the rgb sample's grid
expect 0 "" $E --readout scene --readout-modality sar "$RGB" "$T/ro_rs.tif"
gdalinfo "$T/ro_rs.tif" | grep -q "Band 64 .*Type=Float32" || fail "readout rgb -> sar: bands"
# bad input: nothing written
expect 2 "needs --readout-modality" $E --readout scene "$SAR" "$T/x.tif"
expect 2 "takes source or scene" $E --readout tokens "$SAR" "$T/x.tif"
expect 2 "go with --readout scene" $E --readout-modality rgb "$SAR" "$T/x.tif"
expect 2 "go with --readout scene" $E --seed 3 "$SAR" "$T/x.tif"
expect 2 "must be below 1" $E --readout scene --readout-modality rgb --readout-t 1 "$SAR" "$T/x.tif"
expect 1 "is the source's modality" $E --readout scene --readout-modality sar "$SAR" "$T/x.tif"
expect 1 "rgb" $E --readout scene --readout-modality lidar "$SAR" "$T/x.tif"
no_file "$T/x.tif"

# --- mm_generate --joint-guidance
expect 0 "" $G -like "$SAR" "$T/g0_rgb.tif" "$T/g0_sar.tif"
expect 0 "" $G --joint-guidance --guidance 1 -like "$SAR" "$T/g1_rgb.tif" "$T/g1_sar.tif"
expect 0 "" $G --joint-guidance --guidance 2 -like "$SAR" "$T/g2_rgb.tif" "$T/g2_sar.tif"
expect 0 "" $G --guidance 2 -like "$SAR" "$T/g3_rgb.tif" "$T/g3_sar.tif"
for f in g0_rgb g0_sar g1_rgb g1_sar g2_rgb g2_sar g3_rgb; do envi "$T/$f.tif" "$T/$f.img"; done
cmp -s "$T/g0_rgb.img" "$T/g1_rgb.img" && cmp -s "$T/g0_sar.img" "$T/g1_sar.img" ||
    fail "joint guidance 1 differs from plain joint generation"
cmp -s "$T/g0_rgb.img" "$T/g3_rgb.img" || fail "guidance 2 without --joint-guidance changed the output"
cmp -s "$T/g0_rgb.img" "$T/g2_rgb.img" && fail "joint guidance 2: rgb the same as without guidance"
cmp -s "$T/g0_sar.img" "$T/g2_sar.img" && fail "joint guidance 2: sar the same as without guidance"
gdalinfo "$T/g2_rgb.tif" | grep -q "MM_JOINT_GUIDANCE=YES" || fail "joint guidance: MM_JOINT_GUIDANCE"
gdalinfo "$T/g0_rgb.tif" | grep -q "MM_JOINT_GUIDANCE" && fail "no joint guidance: MM_JOINT_GUIDANCE"
gdalinfo "$T/g2_rgb.tif" | grep -q "Size is 100, 70" || fail "joint guidance: size"
expect 0 "no effect" $B/mm_generate --threads 1 --steps 1 --model "$MODEL" --joint-guidance --guidance 2 -like "$SAR" "$T/g4_rgb.tif"
expect 2 "not available with --seamless" $G --joint-guidance --seamless -like "$SAR" "$T/x_rgb.tif" "$T/x_sar.tif"
no_file "$T/x_rgb.tif"

[ "$fails" -eq 0 ] && echo "all readout / joint guidance command-line checks passed"
