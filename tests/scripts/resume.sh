# A run killed with SIGKILL in the middle of training (mpirun then stops the other rank) and
# run again ends with bitwise the same weights, for every model, as an uninterrupted run.
# Also: SIGUSR1 makes the run checkpoint and exit 0, and a second resume finishes it. Each
# signal must land while the run still trains: the test fails when it came too late (the
# SIGKILL after run.h5 was written, the SIGUSR1 after the run finished).
source "$(dirname "$0")/lib.sh"
need_h5py
scratch
cfg=$ED_SOURCE_DIR/tests/configs/tiny.yaml
args=(--set train.epochs=4 --set data.train_limit=2048)
edrun 2 run "$cfg" --set checkpoint.dir="$ED_TMP/ref" "${args[@]}" > "$ED_TMP/ref.log" 2>&1 \
    || { cat "$ED_TMP/ref.log"; fail "uninterrupted run"; }

# 1. SIGKILL one rank once the second epoch of some member has been checkpointed.
start_run_until cut "$ED_TMP/cut1.log" grep -q "epoch    2/4" "$ED_TMP/cut1.log"
kill_one_rank cut "$ED_TMP/cut1.log"
ls "$ED_TMP/cut/models/" > /dev/null
complete=$(grep -c "epoch    4/4" "$ED_TMP/cut1.log" || true)
# A kill that lands after the run finished proves nothing: 6 models (3 members, kd, self, sum)
[ ! -e "$ED_TMP/cut/run.h5" ] && [ "$complete" -lt 6 ] \
    || { cat "$ED_TMP/cut1.log"; fail "the SIGKILL came after the run had finished ($complete models complete)"; }
echo "killed rank pid $victim; models finished before the kill: $complete of 6"

# 2. Resume with SIGUSR1 to every rank as soon as they run (rank 0 rewrites config.yaml after
#    every rank has installed its handlers): each stops after its next step, checkpoints and
#    exits 0.
before=$(stat -c %i "$ED_TMP/cut/config.yaml")
config_rewritten() { [ "$(stat -c %i "$ED_TMP/cut/config.yaml")" != "$before" ]; }
start_run_until cut "$ED_TMP/cut2.log" config_rewritten
stop_run cut "$ED_TMP/cut2.log"

# 3. Finish.
edrun 2 run "$cfg" --set checkpoint.dir="$ED_TMP/cut" "${args[@]}" > "$ED_TMP/cut3.log" 2>&1 \
    || { cat "$ED_TMP/cut3.log"; fail "final resume"; }
# The SIGUSR1 can land before the second run has taken its first model (then that run only
# checkpoints and exits): the resume shows in the second run's log or in the third's.
grep -q "resuming\|complete: skipped" "$ED_TMP/cut2.log" "$ED_TMP/cut3.log" \
    || { cat "$ED_TMP/cut2.log" "$ED_TMP/cut3.log"; fail "neither later run resumed"; }
grep -q "checkpointed; run again" "$ED_TMP/cut2.log" || { cat "$ED_TMP/cut2.log"; fail "SIGUSR1 did not checkpoint and stop the run"; }
echo "SIGUSR1: checkpointed and exited 0"

"$ED_PYTHON" - "$ED_TMP" <<'PY'
import sys, h5py, numpy as np
d = sys.argv[1]
ref = h5py.File(f"{d}/ref/run.h5")
cut = h5py.File(f"{d}/cut/run.h5")
names = sorted(ref["models"].keys())
assert names == sorted(cut["models"].keys()), (names, sorted(cut["models"].keys()))
n = 0
for name in names:
    a, b = ref["models"][name], cut["models"][name]
    assert b.attrs["complete"] == 1, name
    for group in ("params", "buffers"):
        if group not in a:
            continue
        for k in a[group]:
            x, y = a[group][k][...], b[group][k][...]
            if x.tobytes() != y.tobytes():
                sys.exit(f"FAIL: {name}/{group}/{k} differs after resume: max |diff| {np.abs(x - y).max():g}")
            n += 1
for k in ("train_logits", "test_logits"):
    assert ref["teacher"][k][...].tobytes() == cut["teacher"][k][...].tobytes(), k
print(f"{len(names)} models, {n} tensors bitwise equal to the uninterrupted run")
PY
