# A file system that fails (full, quota, I/O error, read-only) never crashes the program and
# never loses a finished checkpoint: tests/tools/faultfs.c (LD_PRELOAD) fails the writes of
# chosen files; the run stops with exit 2 naming the file and errno (it used to SIGSEGV inside
# HDF5's clean-up at exit after a failed flush), removes the half-written file, leaves the
# previous checkpoint verified, and the same command without the fault resumes and finishes.
source "$(dirname "$0")/lib.sh"
scratch
cd "$ED_TMP"
shim=$(ls "$ED_BUILD_DIR"/tests/libfaultfs.so 2>/dev/null || true)
[ -n "$shim" ] || fail "libfaultfs.so not built"
# a sanitizer build's runtime must come first; a preloaded library comes before it
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0
cfg=$ED_SOURCE_DIR/tests/configs/tiny.yaml

# faulty NAME ERRNO PATTERN AFTER WANT: a run under the fault exits 2 with WANT on stderr
faulty() {
    local dir=$1 errno=$2 pattern=$3 after=$4 want=$5 rc
    set +e
    LD_PRELOAD=$shim ED_FAULT_ERRNO=$errno ED_FAULT_PATH="$pattern" ED_FAULT_AFTER=$after \
        "$ED_BIN" run "$cfg" --set checkpoint.dir="$dir" > "$dir.log" 2>&1
    rc=$?
    set -e
    [ $rc -eq 2 ] || { tail -5 "$dir.log"; fail "$errno on $pattern: exit $rc, expected 2 (139 = SIGSEGV)"; }
    grep -qF -- "$want" "$dir.log" || { tail -3 "$dir.log"; fail "$errno: expected '$want'"; }
    ! ls "$dir"/models/*.tmp > /dev/null 2>&1 || fail "$errno: a half-written .tmp file was left"
}
# finishes DIR: every model file verifies, and the run without the fault finishes
finishes() {
    local dir=$1
    for f in "$dir"/models/*.h5; do
        [ -e "$f" ] || continue
        "$ED_BIN" inspect "$f" > /dev/null 2>&1 || fail "$f does not verify after the fault"
    done
    "$ED_BIN" run "$cfg" --set checkpoint.dir="$dir" > "$dir.resume.log" 2>&1 \
        || { tail -5 "$dir.resume.log"; fail "$dir: the run without the fault did not finish"; }
    "$ED_BIN" inspect "$dir" > /dev/null 2>&1 || fail "$dir: inspect after finishing"
}

faulty full ENOSPC full/models/ 300000 "models/member-000.h5.tmp: flush 'file' failed (No space left on device"
[ -e full/models/member-000.h5 ] || fail "ENOSPC: the previous checkpoint of member-000 is gone"
finishes full
grep -q "resuming at epoch 2" full.resume.log || fail "ENOSPC: did not resume from the kept checkpoint"
echo "ok   disk full mid-checkpoint: exit 2 naming the file, previous checkpoint kept, resumed"

faulty quota EDQUOT quota/models/ 500000 "(Disk quota exceeded"
finishes quota
faulty eio EIO eio/models/ 200000 "(Input/output error"
finishes eio
echo "ok   quota and I/O errors: exit 2 naming the file, resumed"

mkdir -p ro/models
faulty ro EROFS ro/models/ 0 "ro/models/member-000.h5.tmp: cannot create the file: Read-only file system"
finishes ro
echo "ok   a read-only models/ directory: exit 2 naming the file"

# the disk already full when a checkpoint file is created: nothing left behind (issue 20, 9)
faulty create ENOSPC create/models/member-001.h5.tmp 0 "create/models/member-001.h5.tmp: cannot create the file: No space left on device"
finishes create
echo "ok   a disk full at a checkpoint's creation: no empty NAME.h5.tmp is left"

faulty results ENOSPC results/run.h5 0 "run.h5.tmp: "
[ ! -e results/run.h5 ] || fail "a run.h5 was written on a full disk"
finishes results
grep -q "complete: skipped" results.resume.log || fail "the finished models were not kept"
echo "ok   disk full writing run.h5: the finished models are kept and skipped on resume"
echo "io_faults: all passed"
