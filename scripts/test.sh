#!/usr/bin/env bash
# Builds lorahub-hpc and runs every test (unit, MPI end-to-end, crash and slow tests) with ctest.
# On a fresh Debian 12 machine (as root) this is all the set-up there is.
#   scripts/test.sh [extra ctest arguments, e.g. -L unit]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
jobs=$(nproc)
# BIG-Bench Hard stays outside the repository: LORAHUB_BBH_DIR (default ../shared/data/bbh) is where the BBH
# end-to-end test finds it; without the data that test is skipped.
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release ${LORAHUB_BBH_DIR:+-DLORAHUB_BBH_DIR="$LORAHUB_BBH_DIR"}
cmake --build build -j"$jobs"
# MPI tests run as root on CI machines; Open MPI refuses that unless told.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ctest --test-dir build --output-on-failure -j"$jobs" "$@"
