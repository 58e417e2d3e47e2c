#!/usr/bin/env bash
# The single list of lorahub-hpc's system dependencies (Debian 12 packages).
# Installs whatever is missing; needs root (or sudo) and apt. Safe to run again.
#   scripts/install-deps.sh            build + test dependencies
#   scripts/install-deps.sh --slurm    also a local Slurm (for the CI submission test)
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  libtorch-dev            # libtorch 1.13 (CPU); official CUDA builds via CMAKE_PREFIX_PATH
  libopenblas0-pthread    # without it libtorch falls back to the reference BLAS (8-9x slower)
  libopenmpi-dev openmpi-bin
  libhdf5-dev
  libcli11-dev
  libgtest-dev libgmock-dev
  libbenchmark-dev
  nlohmann-json3-dev
  libtomlplusplus-dev
  libsentencepiece-dev sentencepiece   # library (behind a dlopen shim) + spm_train/spm_encode
  libnlopt-dev
  libeigen3-dev
  libre2-dev                           # linear-time regexes (PEFT target_modules patterns)
  liblbfgspp-dev                       # header-only box-constrained L-BFGS (optimizer = "lbfgsb")
  python3-h5py python3-numpy           # tests read the HDF5 results the way users do
)
if [[ "${1:-}" == "--slurm" ]]; then
  packages+=(slurmd slurmctld slurm-client munge)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
