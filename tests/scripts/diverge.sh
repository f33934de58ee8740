# A student that diverges stops the run with a message naming it and the key to lower; the
# finished members stay on disk, and copied into a new run directory they are reused by a run
# with a sane lr.
source "$(dirname "$0")/lib.sh"
scratch
cfg=$ED_SOURCE_DIR/tests/configs/tiny.yaml
dir=$ED_TMP/run
set +e
out=$(edrun 2 run "$cfg" --set checkpoint.dir="$dir" --set distill.students=[kd] \
    --set distill.lr=1.0e6 2>&1)
rc=$?
set -e
[ $rc -eq 2 ] || { echo "$out"; fail "a diverging student exited $rc, not 2"; }
grep -q "kd-000 diverged in epoch 1 (training loss .*peak lr 1e+06): lower distill.lr" <<< "$out" ||
    { echo "$out"; fail "message"; }
[ ! -e "$dir/run.h5" ] || fail "results were written for a diverged run"
for l in 0 1 2; do
    out=$("$ED_BIN" inspect "$dir/models/member-00$l.h5")
    grep -q "complete" <<< "$out" || fail "member $l is not complete after the stop"
done
echo "stopped: $(echo "$out" | grep 'error' | head -1)"
mkdir -p "$ED_TMP/retry/models"
cp "$dir"/models/member-*.h5 "$ED_TMP/retry/models/"
out=$(edrun 2 run "$cfg" --set checkpoint.dir="$ED_TMP/retry" --set distill.students=[kd] 2>&1) ||
    { echo "$out"; fail "the rerun with the default lr failed"; }
[ "$(echo "$out" | grep -c 'complete: skipped')" -eq 3 ] || { echo "$out"; fail "members retrained"; }
echo "$out" | grep -E '^  kd ' || { echo "$out"; fail "no kd row"; }
