#!/usr/bin/env bash
# Builds lorahub-hpc with AddressSanitizer + UndefinedBehaviorSanitizer (in build-asan/, apart from build/) and runs
# every test under them. Fails when a test fails, and also when any process wrote a sanitizer report: the
# end-to-end tests start `lorahub` runs that are meant to fail, whose exit status alone would hide a report.
#   scripts/sanitize.sh [extra ctest arguments, e.g. -LE bbh]
# The instrumented build takes about 40 minutes on 2 cores (the libtorch translation units), the tests about 11.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${LORAHUB_SANITIZE_BUILD:-build-asan}
jobs=$(nproc)
cmake -S . -B "$build" -DLORAHUB_SANITIZE=ON -DLORAHUB_BUILD_BENCH=OFF \
  ${LORAHUB_BBH_DIR:+-DLORAHUB_BBH_DIR="$LORAHUB_BBH_DIR"}
cmake --build "$build" -j"$jobs"
reports="$PWD/$build/sanitizer-reports"
rm -rf "$reports"
mkdir -p "$reports"
# Leak checking stays off: libtorch, Open MPI and HDF5 keep process-lifetime allocations that LeakSanitizer
# reports at exit. Every other AddressSanitizer check, and UBSan (built with -fno-sanitize-recover), is on.
export ASAN_OPTIONS="detect_leaks=0:log_path=$reports/asan"
export UBSAN_OPTIONS="print_stacktrace=1:log_path=$reports/ubsan"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
status=0
ctest --test-dir "$build" --output-on-failure -j"$jobs" "$@" || status=$?
if compgen -G "$reports/*" > /dev/null; then
  echo "sanitize: sanitizer reports in $reports:" >&2
  for f in "$reports"/*; do
    echo "== $f" >&2
    head -n 30 "$f" >&2
  done
  exit 1
fi
[ "$status" -eq 0 ] && echo "sanitize: every test passed; no sanitizer report"
exit "$status"
