#!/usr/bin/env bash
# The run command: installs and builds like tests/run.sh, then runs CONFIG (default
# configs/quickstart.yaml) with one rank per local core.
#   jobs/local.sh [CONFIG] [--set key=value ...]
# RANKS overrides the number of ranks.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$here/jobs/common.sh"
config=${1:-$here/configs/quickstart.yaml}
[ $# -gt 0 ] && shift
ed_install_deps
ed_build
ranks=${RANKS:-$(nproc)}
cd "$here"
exec_args=("$ED_BIN" run "$config" "$@")
ed_mpirun -n "$ranks" "${exec_args[@]}"
