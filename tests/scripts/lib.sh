# Helpers for the script tests (sourced). ctest sets ED_BIN, ED_MPIEXEC, ED_PYTHON,
# ED_SOURCE_DIR, ED_BUILD_DIR.
set -euo pipefail
# Match a command's output with `grep -q PATTERN <<< "$out"`, never `echo "$out" | grep -q`:
# grep -q exits at the first match, echo (which writes line by line) then dies of SIGPIPE, and
# pipefail fails the test although the line was there (inspect_eval failed so, rarely).
: "${ED_BIN:?run through ctest}"
fail() { echo "FAIL: $*" >&2; exit 1; }
need_h5py() {
    "$ED_PYTHON" -c 'import h5py, numpy' 2>/dev/null || { echo "SKIP: python3-h5py missing"; exit 77; }
}
# PyTorch tests: tests/run.sh installs python3-torch. They skip only where it could not be
# installed (ED_TORCH_UNAVAILABLE says why); a machine that merely lacks it fails, saying how.
need_torch() {
    "$ED_PYTHON" -c 'import torch, h5py, numpy' 2>/dev/null && return 0
    if [ -n "${ED_TORCH_UNAVAILABLE:-}" ]; then
        echo "SKIP: $ED_PYTHON cannot import torch: $ED_TORCH_UNAVAILABLE"
        exit 77
    fi
    fail "$ED_PYTHON cannot import torch, h5py and numpy: tests/run.sh installs python3-torch" \
         "(or apt-get install python3-torch python3-h5py python3-numpy)"
}
# A fresh scratch directory, removed on exit.
scratch() {
    ED_TMP=$(mktemp -d "${TMPDIR:-/tmp}/ensdistill-test.XXXXXX")
    trap 'rm -rf "$ED_TMP"' EXIT
}
# Runs ensdistill on N ranks: edrun N ARGS...
edrun() {
    local n=$1; shift
    $ED_MPIEXEC -n "$n" "$ED_BIN" "$@"
}
