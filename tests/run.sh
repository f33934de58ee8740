#!/usr/bin/env bash
# The test command: installs what a fresh Debian 12 machine lacks, builds, runs every test.
#   tests/run.sh [extra ctest args]     e.g. tests/run.sh -R gradcheck
# BUILD_DIR (default build), SANITIZE=1 (AddressSanitizer + UBSan) and CMAKE_ARGS (more cmake
# arguments, e.g. -DENSDISTILL_ONEDNN=OFF) are honoured.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$here/jobs/common.sh"
ed_install_deps
ed_install_test_deps   # python3-torch for the PyTorch comparisons; Slurm, munge, MPICH
ed_build
# Open MPI's start-up allocations are never freed: LeakSanitizer would fail every MPI program.
[ "${SANITIZE:-0}" = 1 ] && export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
cd "$ED_BUILD_DIR"
ctest --output-on-failure "$@"
