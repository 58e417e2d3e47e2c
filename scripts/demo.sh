#!/usr/bin/env bash
# The main job on the bundled demo world (demo/): installs what is missing, builds lorahub, runs LoraHub and
# the baselines on the held-out demo tasks under MPI (3 ranks: a coordinator and 2 workers), writes
# out/demo.h5 and prints the comparison table.
#   scripts/demo.sh [extra `lorahub run` options, e.g. --set run.seeds=[1,2]]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)" --target lorahub
mkdir -p out
rm -f out/demo.h5
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpirun -n 3 --oversubscribe build/src/app/lorahub --threads 1 run --config configs/demo.toml --out out/demo.h5 "$@"
build/src/app/lorahub report out/demo.h5
