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
# Every tensor of every model, and the teacher, bitwise equal in two run directories:
# same_weights REF_DIR OTHER_DIR WHAT (WHAT names OTHER_DIR in the message).
same_weights() {
    "$ED_PYTHON" - "$1" "$2" "$3" <<'PY'
import sys, h5py, numpy as np
ref, other, what = h5py.File(f"{sys.argv[1]}/run.h5"), h5py.File(f"{sys.argv[2]}/run.h5"), sys.argv[3]
names = sorted(ref["models"].keys())
if names != sorted(other["models"].keys()):
    sys.exit(f"FAIL: {what}: models {sorted(other['models'].keys())}, reference {names}")
n = 0
for name in names:
    a, b = ref["models"][name], other["models"][name]
    if b.attrs["complete"] != 1:
        sys.exit(f"FAIL: {what}: {name} is not complete")
    for group in ("params", "buffers"):
        for k in a[group] if group in a else []:
            x, y = a[group][k][...], b[group][k][...]
            if x.tobytes() != y.tobytes():
                sys.exit(f"FAIL: {what}: {name}/{group}/{k} differs: max |diff| {np.abs(x - y).max():g}")
            n += 1
for k in ("train_logits", "test_logits"):
    if ref["teacher"][k][...].tobytes() != other["teacher"][k][...].tobytes():
        sys.exit(f"FAIL: {what}: teacher {k} differs")
print(f"{what}: {len(names)} models, {n} tensors and the teacher bitwise equal to the reference")
PY
}
