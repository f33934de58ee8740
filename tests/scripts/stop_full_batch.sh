# A stop request is honoured within one step whatever the batch size: with batch_size full an
# epoch is one step, and SIGUSR1 used to be ignored until the model had trained every epoch.
# The stopped run checkpoints and exits 0; resuming finishes bitwise like an uninterrupted run.
source "$(dirname "$0")/lib.sh"
need_h5py
scratch
cd "$ED_TMP"
cat > mv.yaml <<'YAML'
name: stopfull
data:
  source: multiview
  multiview: {k: 3, d: 16, patches: 4, n_train: 60, n_test: 30}
model: {arch: mvconv, filters: 2}
train: {epochs: 20000, batch_size: full, lr: 1.0, momentum: 0, nesterov: false, eval_every: 0}
ensemble: {members: 2}
distill: {students: []}
parallel: {threads: 1}
checkpoint: {every_epochs: 0}
YAML
# start_and_stop DIR ARGS...: starts a run, sends SIGUSR1 once it trains; fails unless the run
# exits 0 within 10 s having checkpointed
start_and_stop() {
    local dir=$1; shift
    "$ED_BIN" run mv.yaml --set checkpoint.dir=$dir "$@" > $dir.log 2>&1 &
    local pid=$!
    for _ in $(seq 1 400); do
        [ -e $dir/config.yaml ] && break
        sleep 0.02
    done
    sleep 0.3
    kill -USR1 $pid
    for _ in $(seq 1 100); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
    if kill -0 $pid 2>/dev/null; then
        kill -9 $pid
        fail "SIGUSR1 was not honoured within 10 s (batch_size full: one step per epoch)"
    fi
    wait $pid || { cat $dir.log; fail "the stopped run did not exit 0"; }
    grep -q "checkpointed; run again" $dir.log || { cat $dir.log; fail "no checkpoint message"; }
}
start_and_stop long --set train.epochs=1000000
epoch=$("$ED_PYTHON" -c "import h5py; print(h5py.File('long/models/member-000.h5')['state/cursor'][0])")
[ "$epoch" -lt 1000000 ] || fail "member-000 trained all its epochs before stopping"
echo "ok   SIGUSR1 honoured after epoch $epoch of 1000000 (one step each), exit 0"

start_and_stop cut
"$ED_BIN" run mv.yaml --set checkpoint.dir=cut > cut2.log 2>&1 || { cat cut2.log; fail "resume"; }
grep -q "resuming at epoch\|complete: skipped" cut2.log || { cat cut2.log; fail "did not resume"; }
"$ED_BIN" run mv.yaml --set checkpoint.dir=ref > ref.log 2>&1 || { cat ref.log; fail "reference run"; }
"$ED_PYTHON" - <<'PY' || fail "resumed weights differ from the uninterrupted run"
import h5py, numpy as np
for m in ("member-000", "member-001"):
    a, b = h5py.File(f"cut/models/{m}.h5"), h5py.File(f"ref/models/{m}.h5")
    for k in a["params"]:
        assert np.array_equal(a["params"][k][()], b["params"][k][()]), (m, k)
print("ok   resumed run bitwise equal to the uninterrupted one")
PY
echo "stop_full_batch: all passed"
