#!/usr/bin/env bash
# End-to-end checks of `lorahub run` on the toy world (tests/app/make_toy_world.cpp), driven by ctest.
#   e2e.sh serial  LORAHUB TOY              the job serially: 10 runs complete, the 5 of the broken task failed
#   e2e.sh mpi     LORAHUB TOY N COMPARE    the same job under mpiexec -n N equals the serial result
#   e2e.sh resume  LORAHUB TOY COMPARE      a bigger job killed mid-way and resumed equals an uninterrupted one
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
    "$lorahub" --threads 1 run --config job.toml --out serial.h5 2> serial.log || { cat serial.log; fail "run failed"; }
    "$lorahub" inspect serial.h5 > serial.txt
    grep -q "15 runs, 10 complete" serial.txt || { cat serial.txt; fail "expected 15 runs, 10 complete"; }
    [ "$(grep -c '^  broken/.* failed .*test_bad.jsonl: line 2: missing field "target"' serial.txt)" = 5 ] ||
      { cat serial.txt; fail "the broken task's 5 runs must fail, naming the file, line and field"; }
    grep -q "15 runs written to serial.h5 (5 failed" serial.log || true
    ;;
  mpi)
    n=$4 compare=$5
    [ -f serial.h5 ] || fail "serial.h5 missing (run the serial test first)"
    rm -f "mpi$n.h5" "mpi$n.h5-journal"
    mpiexec -n "$n" --oversubscribe "$lorahub" --threads 1 run --config job.toml --out "mpi$n.h5" 2> "mpi$n.log" ||
      { cat "mpi$n.log"; fail "mpiexec -n $n failed"; }
    "$compare" serial.h5 "mpi$n.h5"
    ;;
  resume)
    compare=$4
    big=(--set 'run.seeds=[1,2,3,4,5,6]' --set lorahub.budget=25)
    rm -f ref.h5* killed.h5* killed.log
    "$lorahub" --threads 1 run --config job.toml "${big[@]}" --out ref.h5 2> ref.log || { cat ref.log; fail "reference run failed"; }
    total=$(grep -c "^run .* complete" ref.log)
    # Kill (SIGKILL: no clean-up at all) once a few runs are in the file, then resume.
    "$lorahub" --threads 1 run --config job.toml "${big[@]}" --out killed.h5 2> killed.log &
    pid=$!
    for _ in $(seq 600); do
      [ "$(grep -c '^run .* complete' killed.log || true)" -ge 4 ] && break
      kill -0 $pid 2>/dev/null || break
      sleep 0.02
    done
    kill -9 $pid 2>/dev/null || fail "the job ended before it could be killed; make the job bigger"
    wait $pid 2>/dev/null || true
    done_before=$(grep -c "^run .* complete" killed.log || true)
    [ "$done_before" -lt "$total" ] || fail "nothing left to resume"
    echo "killed after $done_before of $total complete runs"
    # Resume under MPI: ranks and interruption change nothing in the results.
    mpiexec -n 3 --oversubscribe "$lorahub" --threads 1 run --config job.toml "${big[@]}" --out killed.h5 --resume \
      2> resumed.log || { cat resumed.log; fail "resume failed"; }
    grep -q "already complete" resumed.log || fail "resume did not skip completed runs"
    "$compare" ref.h5 killed.h5
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
