# One run at a time in a RUN_DIR (issue 20, point 5): rank 0 holds RUN_DIR/run.lock with flock
# for its life. A second run on the same directory refuses at once (exit 2), naming the holder's
# host and PID, while the first is still training (checked: else the test proves nothing); a
# SIGKILLed holder leaves no stale lock (the kernel releases it); with two ranks only rank 0
# holds it. Where flock is unsupported (faultfs fails it with ENOLCK, as NFS without a lock
# manager does) the O_EXCL marker run.lock.excl stands in: a second run is refused, a marker of
# a dead process of this host is taken over, one of another host is refused saying to remove it.
source "$(dirname "$0")/lib.sh"
scratch
cd "$ED_TMP"
cfg=$ED_SOURCE_DIR/tests/configs/tiny.yaml
shim=$(ls "$ED_BUILD_DIR"/tests/libfaultfs.so 2>/dev/null || true)
[ -n "$shim" ] || fail "libfaultfs.so not built"
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0
# A run slow enough to be hit: it trains until this test kills it (by PID).
slow=(--set ensemble.members=1 --set distill.students=[] --set train.epochs=100000
      --set checkpoint.every_epochs=1000)
small=(--set ensemble.members=1 --set distill.students=[] --set train.epochs=1)
holder=
cleanup() { [ -n "$holder" ] && kill -9 "$holder" 2>/dev/null; rm -rf "$ED_TMP"; }
trap cleanup EXIT

# start_slow DIR [env...]: the slow run in the background; waits until it holds DIR's lock
start_slow() {
    local dir=$1; shift
    env "$@" "$ED_BIN" run "$cfg" --set checkpoint.dir="$dir" "${slow[@]}" > "$dir.slow.log" 2>&1 &
    holder=$!
    for _ in $(seq 1 200); do
        grep -qE "epoch +[0-9]+/" "$dir.slow.log" 2>/dev/null && return 0
        kill -0 $holder 2>/dev/null || { cat "$dir.slow.log"; fail "the slow run ended early"; }
        sleep 0.05
    done
    cat "$dir.slow.log"; fail "the slow run did not start training in 10 s"
}
# refused DIR WANT [env...]: a second run on DIR exits 2 within 5 s with WANT on stderr while
# the holder still runs
refused() {
    local dir=$1 want=$2; shift 2
    local t0=$SECONDS rc
    set +e
    env "$@" timeout 20 "$ED_BIN" run "$cfg" --set checkpoint.dir="$dir" "${small[@]}" > "$dir.second.log" 2>&1
    rc=$?
    set -e
    kill -0 $holder 2>/dev/null || fail "the first run had finished: the refusal proves nothing"
    [ $rc -eq 2 ] || { cat "$dir.second.log"; fail "a second run on $dir exited $rc, expected 2"; }
    [ $((SECONDS - t0)) -le 5 ] || fail "the second run took $((SECONDS - t0)) s to refuse"
    grep -qF -- "$want" "$dir.second.log" || { cat "$dir.second.log"; fail "expected '$want'"; }
}

host=$(hostname)
start_slow a
refused a "a is in use by another ensdistill run (host $host pid $holder since "
grep -q "^host $host pid $holder since " a/run.lock || fail "run.lock: $(cat a/run.lock)"
kill -9 $holder; wait $holder 2>/dev/null || true; holder=
"$ED_BIN" run "$cfg" --set checkpoint.dir=a "${small[@]}" > a.after.log 2>&1 \
    || { cat a.after.log; fail "after the holder was SIGKILLed the directory stayed locked"; }
echo "ok   a second run refuses at once naming host and PID; a SIGKILLed holder leaves no lock"

# two ranks: one lock, held by rank 0 (the PID in the file is one of the two ranks)
$ED_MPIEXEC -n 2 "$ED_BIN" run "$cfg" --set checkpoint.dir=m "${slow[@]}" > m.slow.log 2>&1 &
holder=$!
for _ in $(seq 1 400); do grep -qE "epoch +[0-9]+/" m.slow.log 2>/dev/null && break; sleep 0.05; done
grep -qE "epoch +[0-9]+/" m.slow.log || { cat m.slow.log; fail "the 2-rank run did not start"; }
pid=$(awk '{print $4}' m/run.lock)
ranks=$(pgrep -P "$(pgrep -d, -P $holder)" -f "ensdistill" 2>/dev/null || true)
ranks="$ranks $(pgrep -P $holder 2>/dev/null || true)"
grep -qw "$pid" <<< "$ranks" || fail "run.lock names PID $pid, not a rank of the job ($ranks)"
inode=$(stat -c %i m/run.lock)
n_locks=$(grep -c ":$inode " /proc/locks || true)
[ "$n_locks" = 1 ] || fail "$n_locks locks on m/run.lock, expected 1 (rank 0's)"
refused m "m is in use by another ensdistill run (host $host pid $pid since "
# SIGTERM: mpiexec forwards it, both ranks checkpoint and exit
kill -TERM $holder; wait $holder 2>/dev/null || true; holder=
for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
! kill -0 "$pid" 2>/dev/null || fail "rank 0 (PID $pid) still runs 10 s after SIGTERM"
echo "ok   two ranks: rank 0 (PID $pid) holds the one lock; a second run is refused"

# no flock (ENOLCK): the O_EXCL marker
nolock=(LD_PRELOAD=$shim ED_FAULT_FLOCK=ENOLCK)
start_slow x "${nolock[@]}"
[ -e x/run.lock.excl ] || fail "without flock no run.lock.excl was made"
refused x "x is in use by another ensdistill run (host $host pid $holder since " "${nolock[@]}"
grep -qF "this file system has no flock, so the lock is the file x/run.lock.excl" x.second.log \
    || fail "the refusal does not name the marker: $(cat x.second.log)"
kill -9 $holder; wait $holder 2>/dev/null || true; holder=
[ -e x/run.lock.excl ] || fail "the SIGKILLed run's marker is gone (then the next check is empty)"
env "${nolock[@]}" "$ED_BIN" run "$cfg" --set checkpoint.dir=x "${small[@]}" > x.after.log 2>&1 \
    || { cat x.after.log; fail "a marker of a dead process of this host was not taken over"; }
[ ! -e x/run.lock.excl ] || fail "a finished run left its marker"
printf 'host other-node pid 4242 since 2026-01-01T00:00:00Z\n' > x/run.lock.excl
set +e
env "${nolock[@]}" "$ED_BIN" run "$cfg" --set checkpoint.dir=x "${small[@]}" > x.other.log 2>&1
rc=$?
set -e
[ $rc -eq 2 ] && grep -qF "(host other-node pid 4242 since 2026-01-01T00:00:00Z; this file system has no flock, so the lock is the file x/run.lock.excl: if that run is dead, remove the file)" x.other.log \
    || { cat x.other.log; fail "a marker of another host: exit $rc"; }
echo "ok   without flock (ENOLCK): run.lock.excl refuses a second run, a dead local holder's"
echo "     marker is taken over, another host's is refused with how to remove it"
echo "run_lock: all passed"
