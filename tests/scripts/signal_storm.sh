# Stop signals that land while a computing thread is inside oneDNN's JIT gemm (the linear layers'
# dnnl_sgemm). oneDNN 2.6 and 3.7 point rsp into a heap buffer inside those kernels; a signal
# handler's frame written there corrupted the heap (glibc "free(): invalid pointer" at the next
# free: 1 of 5 runs stopped by one SIGUSR1 in the KD phase of an mlp). main blocks SIGTERM and
# SIGUSR1 before any thread starts and the steps take them as pending signals (signals.c), so no
# handler ever runs on a computing thread.
# An mlp (nearly all of its step is sgemm) on 2 ranks gets a storm of SIGUSR1 (every rank, as
# fast as bash sends them, until it exits) twice: while the members train and while the KD
# student trains. Each time the run must stop cleanly (exit 0) and the resumed run must end
# bitwise equal to an uninterrupted one.
source "$(dirname "$0")/lib.sh"
need_h5py
scratch
cfg="$ED_SOURCE_DIR/tests/configs/tiny.yaml"
args=(--set model.hidden=2048 --set data.train_limit=2000 --set train.epochs=2
      --set ensemble.members=2 --set "distill.students=[kd]")

# SIGUSR1 to every rank of run NAME, as fast as bash sends them, until they have all exited;
# prints how many rounds were sent
storm() {
    local pids sent=0
    pids=$(run_ranks "$1")
    [ -n "$pids" ] || { echo 0; return; }
    while kill -USR1 $pids 2> /dev/null; do sent=$((sent + 1)); done
    echo "$sent"
}

run_named ref 2
for at in "members:member-00[01] *epoch *1/2" "kd:kd-000 *epoch *1/2"; do
    name=cut-${at%%:*} phase=${at#*:}
    start_run_until "$name" "$ED_TMP/$name.log" grep -q "$phase" "$ED_TMP/$name.log"
    sent=$(storm "$name")
    wait "$launcher" || {
        cat "$ED_TMP/$name.log"
        fail "a run under a SIGUSR1 storm ($sent rounds, at '$phase') did not exit 0"
    }
    [ "$sent" -ge 1 ] || fail "no signal was sent (the run ended first)"
    run_named "$name" 2
    grep -q "resuming" "$ED_TMP/$name.log" \
        || { cat "$ED_TMP/$name.log"; fail "nothing resumed after the storm at '$phase'"; }
    "$ED_PYTHON" "$ED_SOURCE_DIR/analysis/compare_runs.py" "$ED_TMP/ref" "$ED_TMP/$name" \
        || fail "stopped by a storm at '$phase' and resumed: differs from the uninterrupted run"
    echo "ok   a storm of $sent rounds of SIGUSR1 at '$phase': clean stop, bitwise resume"
done
