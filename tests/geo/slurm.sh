#!/bin/sh
# One scene over a real Slurm (issue 18, item 3): the test starts its own one-node cluster in a
# temporary folder (munged with a key made there, slurmctld and slurmd with a slurm.conf written
# there: cons_tres, the machine's CPU count, its own ports), runs mm_batch plan --submit (a job
# array of 4 chunks and a stitch job with --dependency=afterok), waits for both, and checks the
# output is the same raster as mm_translate's in one process (same_raster.py: size, georeferencing,
# nodata, mask, metadata, every pixel). Then a lost chunk (its file removed, as after a failed or
# pre-empted task) is resubmitted alone with sbatch --array=2 and a new stitch: only that chunk is
# computed again (the others untouched) and the result is unchanged; a resubmission of the whole
# array skips every chunk (stamps). It stops exactly what it started (trap on EXIT).
# It fails, never skips, when Slurm cannot start; the one skip (77): not root and Slurm or munge
# not installed (bootstrap.sh installs them; CI runs as root). Every wait is bounded.
# Usage: slurm.sh BUILD_DIR MODEL
# For a timing (docs/batch.md): MM_SLURM_SCENE=RASTER (a SAR scene instead of the synthetic one),
# MM_SLURM_OPTS (mm_translate's options instead of the test's), MM_SLURM_THREADS (of the one
# process; default 1).
set -u
TEST_NAME=mm_batch_slurm_test
. "$(dirname "$0")/../lib/geo.sh" # $B $MODEL $PLUGIN $HERE $PY $SAME need_python; $T fail expect no_file
WAIT=${MM_SLURM_WAIT:-300} # seconds for the jobs of one submission at most

missing=""
for p in munged mungekey slurmctld slurmd sbatch squeue sinfo scontrol scancel; do
    command -v $p >/dev/null 2>&1 || [ -x /usr/sbin/$p ] || missing="$missing $p"
done
PATH=$PATH:/usr/sbin
if [ -n "$missing" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "SKIPPED: not root and not installed:$missing (Debian: slurmctld slurmd slurm-client munge)"
        exit 77
    fi
    echo "FAIL: not installed:$missing (bootstrap.sh installs slurmctld slurmd slurm-client munge)"
    exit 1
fi
need_python 'from osgeo import gdal' 'GDAL (python3-gdal)'

S=$T/slurm
mkdir -p "$S/munge" "$S/state" "$S/spool" "$S/log" || exit 1
chmod 755 "$T" "$S" # munged refuses folders others may write to, slurmd's steps read the scripts
stop() {
    # the jobs first (nothing of ours left running on the node), then the daemons, by their pids
    [ -f "$S/slurm.conf" ] && SLURM_CONF=$S/slurm.conf scancel --quiet --user="$(id -un)" 2>/dev/null
    pids=""
    for f in "$S/slurmd.pid" "$S/slurmctld.pid" "$S/munge/munged.pid"; do
        p=$(cat "$f" 2>/dev/null)
        [ -n "$p" ] && kill "$p" 2>/dev/null && pids="$pids $p"
    done
    for p in $pids; do # at most 5 s each, then SIGKILL
        k=0
        while kill -0 "$p" 2>/dev/null && [ $k -lt 50 ]; do
            sleep 0.1
            k=$((k + 1))
        done
        kill -0 "$p" 2>/dev/null && kill -9 "$p" 2>/dev/null
    done
    rm -rf "$T"
}
trap stop EXIT
trap 'exit 130' INT TERM
logs() { for f in "$S"/log/*.log; do echo "--- $f"; tail -15 "$f"; done; }
die() { echo "FAIL: $*"; logs; exit 1; }

# --- the cluster: munge, slurmctld, slurmd on localhost
mungekey -c -k "$S/munge/munge.key" -b 1024 >/dev/null 2>&1 || die "mungekey could not make a key"
chmod 600 "$S/munge/munge.key"
munged -f --socket="$S/munge/munge.socket" --key-file="$S/munge/munge.key" \
    --pid-file="$S/munge/munged.pid" --log-file="$S/log/munged.log" --seed-file="$S/munge/seed" ||
    die "munged did not start"
base=$((20000 + ($$ % 10000) * 2)) # ports of our own, so other clusters on the machine do not meet
cat >"$S/slurm.conf" <<EOF
ClusterName=mmtest
SlurmctldHost=localhost
SlurmUser=$(id -un)
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$S/munge/munge.socket
SlurmctldPort=$base
SlurmdPort=$((base + 1))
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/slurmctld.pid
SlurmdPidFile=$S/slurmd.pid
SlurmctldLogFile=$S/log/slurmctld.log
SlurmdLogFile=$S/log/slurmd.log
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
ReturnToService=2
NodeName=localhost CPUs=$(nproc) RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$S/slurm.conf
slurmctld -c -f "$SLURM_CONF" || die "slurmctld did not start"
slurmd -c -f "$SLURM_CONF" || die "slurmd did not start"
k=0
until sinfo -h -o %t 2>/dev/null | grep -q '^idle'; do
    k=$((k + 1))
    [ $k -le 60 ] || die "the node is not idle after 60 s: $(sinfo 2>&1)"
    sleep 1
done

# wait_jobs ID...: until squeue lists none of them (at most $WAIT s); then each must be COMPLETED
wait_jobs() {
    ids=$(echo "$*" | tr ' ' ',')
    k=0
    while [ -n "$(squeue -h -j "$ids" -o %i 2>/dev/null)" ]; do
        k=$((k + 1))
        if [ $k -gt "$WAIT" ]; then
            fail "jobs $ids not done after $WAIT s: $(squeue 2>&1)"
            logs
            return 1
        fi
        sleep 1
    done
    for id in "$@"; do
        st=$(scontrol show job "$id" 2>&1 | grep -o 'JobState=[A-Z_]*' | sort -u | tr '\n' ' ')
        [ "$st" = "JobState=COMPLETED " ] || { fail "job $id: $st"; for f in "$T"/p/logs/*.log; do echo "--- $f"; tail -5 "$f"; done; }
    done
}

# --- the scene in one process, then as 4 array tasks and a stitch
OPTS="--model $MODEL ${MM_SLURM_OPTS:---steps 1 --guidance 1 -ot Float32}"
if [ -n "${MM_SLURM_SCENE:-}" ]; then
    cp "$MM_SLURM_SCENE" "$T/scene_sar.tif" || die "cannot copy $MM_SLURM_SCENE"
else
    "$B/mm_make_samples" "$T" 150 110 >/dev/null || die "mm_make_samples"
fi
cd "$T" || exit 1
t0=$(date +%s.%N)
"$B/mm_translate" -q --threads "${MM_SLURM_THREADS:-1}" $OPTS scene_sar.tif one_rgb.tif || die "mm_translate"
t1=$(date +%s.%N)
expect 0 "submitted" "$B/mm_batch" plan --chunks 4 --dir p --cpus-per-task 1 --time 15 --submit \
    -- $OPTS scene_sar.tif out_rgb.tif
array=$(sed -n 's/^array job \([0-9]*\) (4 tasks), stitch job [0-9]*$/\1/p' out.txt)
stitch=$(sed -n 's/^array job [0-9]* (4 tasks), stitch job \([0-9]*\)$/\1/p' out.txt)
[ -n "$array" ] && [ -n "$stitch" ] || die "no job ids from mm_batch plan --submit: $(cat out.txt err.txt)"
wait_jobs "$array" "$stitch"
t2=$(date +%s.%N)
[ -s out_rgb.tif ] || die "no stitched output: $(cat p/logs/stitch.log 2>&1)"
$SAME one_rgb.tif out_rgb.tif || fail "the Slurm output differs from mm_translate's in one process"
for i in 0 1 2 3; do
    grep -q "chunk $i of 4: .*done in" p/logs/chunk-$i.log || fail "chunk $i: log $(cat p/logs/chunk-$i.log)"
done
echo "$t0 $t1 $t2" | awk -v n="$(nproc)" -v th="${MM_SLURM_THREADS:-1}" '{ printf "one process (%d threads): %.1f s; 4 array tasks (1 CPU each, %d CPUs) and the stitch, from the submission: %.1f s\n", th, $2 - $1, n, $3 - $2 }'

# --- a chunk lost (its task failed or was pre-empted): resubmitted alone, the result unchanged
c0=$(ls p/chunks/chunk-0000_*.tif) c2=$(ls p/chunks/chunk-0002_*.tif)
m0=$(stat -c %y "$c0")
rm -f "$c2" out_rgb.tif out_rgb.tif.mmstamp.json
expect 1 "missing or out of date: 2;" "$B/mm_batch" stitch p
a2=$(sbatch --parsable --array=2 p/array.sbatch) || die "sbatch --array=2"
s2=$(sbatch --parsable --dependency=afterok:"$a2" p/stitch.sbatch) || die "sbatch stitch"
wait_jobs "$a2" "$s2"
[ -s "$c2" ] || fail "chunk 2 was not made again"
[ "$(stat -c %y "$c0")" = "$m0" ] || fail "chunk 0 was written again"
grep -q "chunk 2 of 4: .*done in" p/logs/chunk-2.log || fail "chunk 2 rerun: $(cat p/logs/chunk-2.log)"
$SAME one_rgb.tif out_rgb.tif || fail "after the rerun of chunk 2: the output differs from mm_translate's"

# --- the whole array again: every chunk up to date
a3=$(sbatch --parsable p/array.sbatch) || die "sbatch (again)"
wait_jobs "$a3"
for i in 0 1 2 3; do
    grep -q "chunk $i of 4: .*up to date" p/logs/chunk-$i.log || fail "chunk $i rerun not skipped: $(cat p/logs/chunk-$i.log)"
done
[ "$(stat -c %y "$c0")" = "$m0" ] || fail "chunk 0 was written again by the rerun"

[ "$fails" -eq 0 ] && echo "PASS" || { echo "$fails failure(s)"; exit 1; }
