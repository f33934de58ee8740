#!/usr/bin/env bash
# The test command: installs what a fresh Debian 12 machine lacks, builds, runs every test.
#   tests/run.sh [extra ctest args]     e.g. tests/run.sh -R gradcheck
# BUILD_DIR (default build) and SANITIZE=1 (AddressSanitizer + UBSan) are honoured.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$here/jobs/common.sh"
ed_install_deps
ed_build
cd "$ED_BUILD_DIR"
ctest --output-on-failure "$@"
