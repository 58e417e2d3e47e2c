#!/usr/bin/env bash
# End-to-end checks of `lorahub run` on the toy world (tests/app/make_toy_world.cpp), driven by ctest.
#   e2e.sh serial  LORAHUB TOY              the job serially: 10 runs complete, the 5 of the broken task failed
#   e2e.sh mpi     LORAHUB TOY N COMPARE    the same job under mpiexec -n N equals the serial result
#   e2e.sh resume  LORAHUB TOY COMPARE      a bigger job killed mid-way and resumed equals an uninterrupted one
#   e2e.sh search  LORAHUB TOY COMPARE      adam / lbfgsb with loss-ranked selection: serial = MPI = killed + resumed
#   e2e.sh diskfull LORAHUB TOY N COMPARE   the job (N ranks; 1: no launcher) runs out of disk space (the io
#                                           layer's ENOSPC hook): one clear error, every rank exits non-zero,
#                                           earlier runs readable; --resume then equals the serial result
#   e2e.sh tmpfs   LORAHUB TOY COMPARE      the same on a real full disk, a small tmpfs (skipped, 77, when
#                                           mounting is not permitted)
#   e2e.sh damaged LORAHUB TOY              report, inspect, merge and export on damaged copies of serial.h5:
#                                           one damaged run is shown or skipped with a warning (or, for
#                                           export, one error naming it); seeded mutants never crash a command
#   e2e.sh bbh     LORAHUB OUTDIR SOURCE BBH_DIR   all 27 BBH tasks x every method on the demo model, 3 ranks,
#                                           then the report (checked by check_bbh_report.py)
#   e2e.sh hubcache LORAHUB OUTDIR SOURCE BBH_DIR  configs/flan-t5-large.toml + jobs/bbh-all.toml as shipped, with
#                                           every id (the model, the 196 modules) in a fake Hugging Face cache
set -euo pipefail
mode=$1 lorahub=$2 toy=$3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
cd "$toy"
fail() { echo "e2e $mode: $*" >&2; exit 1; }

case $mode in
  serial)
    rm -f serial.h5 serial.h5-journal
    "$lorahub" --threads 1 run --config job.toml --out serial.h5 > serial.out 2> serial.log ||
      { cat serial.log; fail "run failed"; }
    "$lorahub" inspect serial.h5 > serial.txt
    grep -q "15 runs, 10 complete" serial.txt || { cat serial.txt; fail "expected 15 runs, 10 complete"; }
    [ "$(grep -c '^  broken/.* failed .*test_bad.jsonl: line 2: missing field "target"' serial.txt)" = 5 ] ||
      { cat serial.txt; fail "the broken task's 5 runs must fail, naming the file, line and field"; }
    grep -qx "15 runs written to serial.h5 (5 failed, 0 already complete)" serial.out ||
      { cat serial.out; fail "the closing line must count 15 runs, 5 failed, 0 already complete"; }
    ;;
  mpi)
    n=$4 compare=$5
    [ -f serial.h5 ] || fail "serial.h5 missing (run the serial test first)"
    rm -f "mpi$n.h5" "mpi$n.h5-journal"
    mpiexec -n "$n" --oversubscribe "$lorahub" --threads 1 run --config job.toml --out "mpi$n.h5" 2> "mpi$n.log" ||
      { cat "mpi$n.log"; fail "mpiexec -n $n failed"; }
    "$compare" serial.h5 "mpi$n.h5"
    ;;
  search)
    # The gradient methods and loss-ranked module selection: the same results serially and under MPI, and after a
    # kill and a resume.
    compare=$4
    for opt in adam lbfgsb; do
      grad=(--set "lorahub.optimizer=$opt" --set lorahub.budget=8 --set library.select=loss --set library.modules=2)
      rm -f "$opt"-*.h5*
      "$lorahub" --threads 1 run --config job.toml "${grad[@]}" --out "$opt-serial.h5" > /dev/null 2> "$opt-serial.log" ||
        { cat "$opt-serial.log"; fail "$opt: the serial run failed"; }
      mpiexec -n 3 --oversubscribe "$lorahub" --threads 1 run --config job.toml "${grad[@]}" --out "$opt-mpi.h5" \
        > /dev/null 2> "$opt-mpi.log" || { cat "$opt-mpi.log"; fail "$opt: the MPI run failed"; }
      "$compare" "$opt-serial.h5" "$opt-mpi.h5"
      status=0
      LORAHUB_TEST_CRASH_AT=4:8 "$lorahub" --threads 1 run --config job.toml "${grad[@]}" --out "$opt-killed.h5" \
        > /dev/null 2> "$opt-killed.log" || status=$?
      [ "$status" = 137 ] || { cat "$opt-killed.log"; fail "$opt: expected the job SIGKILLed (status 137), got $status"; }
      "$lorahub" --threads 1 run --config job.toml "${grad[@]}" --out "$opt-killed.h5" --resume > /dev/null \
        2> "$opt-resumed.log" || { cat "$opt-resumed.log"; fail "$opt: resume failed"; }
      grep -q "(3 already complete in $opt-killed.h5)" "$opt-resumed.log" ||
        { cat "$opt-resumed.log"; fail "$opt: resume must find the 3 runs written before the kill"; }
      "$compare" "$opt-serial.h5" "$opt-killed.h5"
    done
    ;;
  resume)
    compare=$4
    big=(--set 'run.seeds=[1,2,3,4,5,6]' --set lorahub.budget=25)
    rm -f ref.h5* killed.h5* killed.log
    "$lorahub" --threads 1 run --config job.toml "${big[@]}" --out ref.h5 2> ref.log || { cat ref.log; fail "reference run failed"; }
    total=$(grep -c "^run .* complete" ref.log)
    # SIGKILL (no clean-up at all) at crash point 8 of the 5th run written: inside its journaled metadata
    # update, the same step on every machine (the io layer's test hook; see docs/results-schema.md).
    status=0
    LORAHUB_TEST_CRASH_AT=5:8 "$lorahub" --threads 1 run --config job.toml "${big[@]}" --out killed.h5 2> killed.log ||
      status=$?
    [ "$status" = 137 ] || { cat killed.log; fail "expected the job SIGKILLed (status 137), got $status"; }
    [ -f killed.h5-journal ] || fail "no journal left: the kill was not inside the 5th write"
    [ "$(grep -c '^run .* complete' killed.log)" -lt "$total" ] || fail "nothing left to resume"
    # Resume under MPI: ranks and interruption change nothing in the results.
    mpiexec -n 3 --oversubscribe "$lorahub" --threads 1 run --config job.toml "${big[@]}" --out killed.h5 --resume \
      2> resumed.log || { cat resumed.log; fail "resume failed"; }
    grep -q "(4 already complete in killed.h5)" resumed.log ||
      { cat resumed.log; fail "resume must find the 4 runs written before the kill, and only those"; }
    "$compare" ref.h5 killed.h5
    ;;
  diskfull)
    n=$4 compare=$5 out=full$4.h5
    [ -f serial.h5 ] || fail "serial.h5 missing (run the serial test first)"
    rm -f "$out" "$out-journal" full$n.rank*.rc
    # Each rank's own exit status goes to a file (mpiexec itself reports only the first failure).
    launch=(sh -c '"$0" "$@"; echo $? > full'"$n"'.rank0.rc')
    [ "$n" = 1 ] || launch=(timeout 300 mpiexec -n "$n" --oversubscribe sh -c \
      '"$0" "$@"; echo $? > full'"$n"'.rank$OMPI_COMM_WORLD_RANK.rc')
    LORAHUB_TEST_DISK_FULL_AFTER=150000 "${launch[@]}" "$lorahub" --threads 1 run --config job.toml --out "$out" \
      > "full$n.out" 2> "full$n.log" || fail "the launcher failed or timed out (status $?)"
    for r in $(seq 0 $((n - 1))); do
      [ -f "full$n.rank$r.rc" ] || { cat "full$n.log"; fail "rank $r did not exit"; }
      [ "$(cat "full$n.rank$r.rc")" = 1 ] || { cat "full$n.log"; fail "rank $r exited with $(cat "full$n.rank$r.rc"), not 1"; }
    done
    [ "$(grep -c '^lorahub: error: ' "full$n.log")" = 1 ] || { cat "full$n.log"; fail "expected exactly one error line"; }
    grep -q "^lorahub: error: writing run .* in $out failed: writing $out: No space left on device (errno 28); the file is as it was before this write$" "full$n.log" ||
      { cat "full$n.log"; fail "the error must name the run, the file and the reason"; }
    ! grep -qE "Segmentation fault|core dumped|free\(\)|Aborted|signal [0-9]" "full$n.log" || { cat "full$n.log"; fail "a crash"; }
    # The runs written before the failure are readable, and --resume (with space) completes the job.
    "$lorahub" inspect "$out" > "full$n.txt"
    before=$(sed -n 's/^  [0-9]* runs, \([0-9]*\) complete$/\1/p' "full$n.txt")
    [ -n "$before" ] && [ "$before" -ge 1 ] && [ "$before" -lt 10 ] ||
      { cat "full$n.txt"; fail "expected some but not all runs written before the disk filled"; }
    relaunch=()
    [ "$n" = 1 ] || relaunch=(mpiexec -n "$n" --oversubscribe)
    "${relaunch[@]}" "$lorahub" --threads 1 run --config job.toml --out "$out" --resume 2> "full$n.resumed.log" ||
      { cat "full$n.resumed.log"; fail "resume failed"; }
    grep -q "($before already complete in $out)" "full$n.resumed.log" || { cat "full$n.resumed.log"; fail "resume skipped other runs"; }
    "$compare" serial.h5 "$out"
    echo "disk full after $before runs; resumed"
    ;;
  tmpfs)
    compare=$4
    [ -f serial.h5 ] || fail "serial.h5 missing (run the serial test first)"
    dir=$(mktemp -d)
    if ! mount -t tmpfs -o size=200k tmpfs "$dir" 2> /dev/null; then
      rmdir "$dir"
      echo "cannot mount a tmpfs here (needs root): skipped"
      exit 77
    fi
    trap 'umount "$dir"; rmdir "$dir"' EXIT
    status=0
    "$lorahub" --threads 1 run --config job.toml --out "$dir/r.h5" 2> tmpfs.log || status=$?
    [ "$status" = 1 ] || { cat tmpfs.log; fail "expected exit status 1 on a full disk, got $status"; }
    [ "$(grep -c '^lorahub: error: ' tmpfs.log)" = 1 ] || { cat tmpfs.log; fail "expected exactly one error line"; }
    grep -q "^lorahub: error: .*$dir/r.h5.*No space left on device" tmpfs.log || { cat tmpfs.log; fail "unclear error"; }
    "$lorahub" inspect "$dir/r.h5" > tmpfs.txt || { cat tmpfs.txt; fail "the file is not readable after the failure"; }
    mount -o remount,size=16m "$dir"
    "$lorahub" --threads 1 run --config job.toml --out "$dir/r.h5" --resume 2> tmpfs.resumed.log ||
      { cat tmpfs.resumed.log; fail "resume failed"; }
    "$compare" serial.h5 "$dir/r.h5"
    head -2 tmpfs.txt
    ;;
  damaged)
    [ -f serial.h5 ] || fail "serial.h5 missing (run the serial test first)"
    rm -rf damaged* merged*.h5 export-*
    # One byte inside the checksummed object header of run last_a/seed_1.
    /usr/bin/python3 - <<'PY'
import h5py
with h5py.File("serial.h5", "r") as f:
    addr = h5py.h5o.get_info(f["runs/last_a/seed_1"].id).addr
data = bytearray(open("serial.h5", "rb").read())
data[addr + 12] ^= 0x5A
open("damaged.h5", "wb").write(data)
PY
    "$lorahub" report damaged.h5 > damaged.md 2> damaged.err || { cat damaged.err; fail "report failed on one damaged run"; }
    grep -q "Damaged runs" damaged.md && grep -q "last_a / LoraHub: seed 1" damaged.md || { cat damaged.md; fail "report must list the damaged run"; }
    grep -q "damaged.h5: 1 damaged run group(s) cannot be read" damaged.err || { cat damaged.err; fail "report must warn"; }
    "$lorahub" report damaged.h5 --format json > damaged.json 2> /dev/null || fail "report --format json failed"
    /usr/bin/python3 -c 'import json,sys; d=json.load(open("damaged.json")); k=[i for i in d["issues"] if i["kind"]=="damaged"]; sys.exit(not (len(k)==1 and k[0]["task"]=="last_a" and k[0]["seed"]==1))' ||
      fail "the JSON report must have one damaged issue"
    "$lorahub" inspect damaged.h5 > damaged.txt 2> damaged.err || fail "inspect failed on one damaged run"
    grep -q "^  last_a/seed_1  *damaged .*damaged.h5" damaged.txt || { cat damaged.txt; fail "inspect must show the damaged run and why"; }
    "$lorahub" merge merged.h5 damaged.h5 2> merge.err || { cat merge.err; fail "merge failed on one damaged run"; }
    grep -q "merge: skipped damaged.h5: group /runs/last_a/seed_1 is damaged" merge.err || { cat merge.err; fail "merge must say what it skipped"; }
    grep -q "merged 14 runs from 1 files" merge.err || { cat merge.err; fail "merge must copy the 14 other runs"; }
    status=0
    "$lorahub" export damaged.h5 --run last_a/1 --out export-damaged 2> export.err || status=$?
    [ "$status" = 1 ] && [ "$(grep -c '^lorahub: error: .*damaged.h5.*/runs/last_a/seed_1' export.err)" = 1 ] ||
      { cat export.err; fail "export of the damaged run must fail with one error naming file and group (status $status)"; }
    "$lorahub" export damaged.h5 --run last_a/2 --out export-other 2> export.err || { cat export.err; fail "export of another run failed"; }
    # Seeded mutants (bit flips, overwritten and zeroed bytes, truncations): every command ends with 0 or
    # 1, and an error names the file. (tests/report/mutation_test.cpp runs 1,185 of them in process.)
    for i in $(seq 0 7); do
      /usr/bin/python3 - "$i" <<'PY'
import random, sys
i = int(sys.argv[1]); rng = random.Random(1000 + i)
data = bytearray(open("serial.h5", "rb").read())
off = rng.randrange(len(data))
kind = i % 4
if kind == 0: data[off] ^= 1 << rng.randrange(8)
elif kind == 1: data[off:off + 32] = bytes(rng.randrange(256) for _ in range(len(data[off:off + 32])))
elif kind == 2: del data[off:]
else: data[off:off + 1024] = bytes(len(data[off:off + 1024]))
open("damaged-mutant.h5", "wb").write(data)
PY
      for cmd in "report damaged-mutant.h5" "report damaged-mutant.h5 --format json" "inspect damaged-mutant.h5" \
                 "merge merged-mutant.h5 damaged-mutant.h5" "export damaged-mutant.h5 --run last_b/2 --out export-mutant"; do
        rm -rf merged-mutant.h5 export-mutant
        status=0
        # shellcheck disable=SC2086
        "$lorahub" $cmd > mutant.out 2> mutant.err || status=$?
        [ "$status" -le 1 ] || { cat mutant.err; fail "mutant $i: '$cmd' ended with status $status"; }
        [ "$status" = 0 ] || grep -q "^lorahub: error: .*damaged-mutant.h5" mutant.err ||
          { cat mutant.err; fail "mutant $i: '$cmd' failed without naming the file"; }
      done
    done
    ;;
  bbh)
    src=$4 bbh=$5
    [ -f "$bbh/boolean_expressions.json" ] || { echo "BBH data not found at $bbh: skipped"; exit 77; }
    rm -f bbh.h5 bbh.h5-journal
    mpiexec -n 3 --oversubscribe "$lorahub" --threads 1 run \
      --config "$src/configs/demo-model.toml" "$src/jobs/bbh-all.toml" --set "data.bbh_dir=$bbh" \
      --max-test 3 --set 'run.seeds=[1,2]' --set run.icl_shots=3 --set lorahub.budget=8 --set eval.max_new_tokens=8 \
      --set lora_ft.epochs=4 --out bbh.h5 2> bbh.log || { tail -30 bbh.log; fail "the BBH job failed"; }
    "$lorahub" report bbh.h5 --format json --out bbh.json --plot bbh.svg
    "$lorahub" report bbh.h5 > bbh.md
    /usr/bin/python3 "$src/tests/app/check_bbh_report.py" bbh.json "$src/jobs/bbh-all.txt" bbh.svg
    head -40 bbh.md
    ;;
  hubcache)
    src=$4 bbh=$5
    [ -f "$bbh/boolean_expressions.json" ] || { echo "BBH data not found at $bbh: skipped"; exit 77; }
    # The cache as huggingface_hub lays it out: blobs/<hash>, snapshots/<commit>/<file> -> ../../blobs/<hash>,
    # refs/main holding the commit. The demo model stands in for google/flan-t5-large and the demo modules, in
    # turn, for the 196 published ones.
    rm -rf cache && mkdir cache
    add_repo() {  # add_repo ORG/NAME FOLDER
      local repo="cache/models--${1%%/*}--${1#*/}" commit
      commit=$(printf '%s' "$1" | sha1sum | cut -c1-40)
      mkdir -p "$repo/blobs" "$repo/snapshots/$commit" "$repo/refs"
      for f in "$2"/*; do
        local blob
        blob=$(sha256sum "$f" | cut -c1-64)
        cp "$f" "$repo/blobs/$blob"
        ln -s "../../blobs/$blob" "$repo/snapshots/$commit/$(basename "$f")"
      done
      printf '%s' "$commit" > "$repo/refs/main"
    }
    add_repo google/flan-t5-large "$src/demo/model"
    mapfile -t demo_modules < <(ls "$src/demo/library")
    i=0
    for id in $(grep -v '^#' "$src/configs/lorahub-flan-t5-large-modules.txt"); do
      add_repo "$id" "$src/demo/library/${demo_modules[$((i % ${#demo_modules[@]}))]}"
      i=$((i + 1))
    done
    [ "$i" = 196 ] || fail "expected 196 module ids, found $i"
    # The shipped files, unedited; only what this machine lacks (a GPU, time) is overridden.
    rm -f hub.h5 hub.h5-journal
    HF_HUB_CACHE="$PWD/cache" "$lorahub" --threads 1 run \
      --config "$src/configs/flan-t5-large.toml" "$src/jobs/bbh-all.toml" --set model.device=cpu --set model.dtype=f32 \
      --set "data.bbh_dir=$bbh" --set 'data.tasks=["boolean_expressions","snarks"]' --set 'run.methods=["lorahub"]' \
      --set 'run.seeds=[1]' --set lorahub.budget=3 --set eval.max_new_tokens=4 --max-test 2 --out hub.h5 2> hub.log ||
      { tail -20 hub.log; fail "the job by hub id failed"; }
    grep -q "model.path: google/flan-t5-large@main -> $PWD/cache/models--google--flan-t5-large/snapshots/" hub.log ||
      { cat hub.log; fail "the log does not say what google/flan-t5-large resolved to"; }
    "$lorahub" inspect hub.h5 > hub.txt
    grep -q "2 runs, 2 complete" hub.txt || { cat hub.txt; fail "expected 2 complete runs"; }
    # Without the cache, the error names the id, the folder searched and the download command.
    if HF_HUB_CACHE="$PWD/no-cache" "$lorahub" run --config "$src/configs/flan-t5-large.toml" "$src/jobs/bbh-all.toml" \
         --set "data.bbh_dir=$bbh" --out never.h5 2> missing.log; then fail "a job with no cache succeeded"; fi
    grep -q "huggingface-cli download google/flan-t5-large" missing.log || { cat missing.log; fail "no download hint"; }
    grep -q "$PWD/no-cache" missing.log || { cat missing.log; fail "the cache folder searched is not named"; }
    ;;
  *) fail "unknown mode" ;;
esac
echo "e2e $mode: ok"
