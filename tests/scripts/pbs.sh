# jobs/pbs/ensemble.pbs with a stand-in qsub that queues the job it is given, and this test
# as the scheduler (PBS_O_WORKDIR, PBS_NODEFILE with 2 slots, PBS_JOBID; qdel = TERM to every
# process of the job's session, as PBS's MOM does):
#   1. a normal run completes and resubmits nothing (the reference);
#   2. with the walltime a few seconds away the ranks get USR1, checkpoint, the script exits 0
#      and resubmits itself with the same --set overrides, until done: every tensor bitwise
#      equal to the reference;
#   3. qdel ends the job: nothing is resubmitted, no process of it is left.
source "$(dirname "$0")/lib.sh"
need_h5py
command -v timeout > /dev/null || fail "timeout (coreutils) missing"
scratch
mkdir -p "$ED_TMP/bin" "$ED_TMP/queue"
cat > "$ED_TMP/bin/qsub" <<EOF
#!/bin/bash
# Stand-in qsub: one file per submission in the queue, its arguments one per line.
n=\$(ls "$ED_TMP/queue" | wc -l)
printf '%s\n' "\$@" > "$ED_TMP/queue/\$((n + 1))"
echo "\$((n + 1)).stand-in"
EOF
chmod +x "$ED_TMP/bin/qsub"
export PATH=$ED_TMP/bin:$PATH
printf 'localhost\nlocalhost\n' > "$ED_TMP/nodefile"
# Open MPI's mpirun as root (the script's launch line has no --allow-run-as-root).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

cd "$ED_TMP"
mkdir -p jobs/pbs # PBS_O_WORKDIR: a copy of the checkout's job scripts
cp "$ED_SOURCE_DIR/jobs/common.sh" jobs/ && cp "$ED_SOURCE_DIR/jobs/pbs/ensemble.pbs" jobs/pbs/
export CONFIG=$ED_SOURCE_DIR/tests/configs/tiny.yaml BIN=$ED_BIN THREADS=1
# About 23 s on two idle cores.
SET="model.hidden=512 data.train_limit=40000 data.test_limit=1000 train.epochs=5 distill.students=[kd,self]"

# Runs one job as PBS would: pbs_job ID OUTPUT [VAR=value ...]; returns its exit status.
pbs_job() {
    local id=$1 out=$2
    shift 2
    env PBS_O_WORKDIR="$ED_TMP" PBS_NODEFILE="$ED_TMP/nodefile" PBS_JOBID="$id" "$@" \
        bash "$ED_TMP/jobs/pbs/ensemble.pbs" >> "$out" 2>&1
}
# The -v variables of queued submission N, as VAR=value words (the test's values hold no commas).
queued_vars() {
    awk 'prev == "-v" { n = split($0, kv, ","); for (i = 1; i <= n; i++) print kv[i] } { prev = $0 }' \
        "$ED_TMP/queue/$1"
}

# 1. Normal completion: exit 0, run.h5, nothing resubmitted.
pbs_job 1 ref.out SET="$SET checkpoint.dir=$ED_TMP/ref" || { cat ref.out; fail "normal job exited non-zero"; }
[ -f ref/run.h5 ] || { cat ref.out; fail "normal job ended without run.h5"; }
[ -z "$(ls queue)" ] || { cat ref.out; fail "a finished run resubmitted itself"; }
echo "1. normal job: exit 0, nothing resubmitted"
# USR1 about half-way through a run as long as this one (3 to 12 s: a faster machine is still
# interrupted).
run_s=$(awk '/^done in/ {print int($3)}' ref.out)
stop_after=$((run_s / 2))
[ "$stop_after" -le 12 ] || stop_after=12
[ "$stop_after" -ge 3 ] || stop_after=3

# 2. Walltime stop_after s after the start: USR1, checkpoint, exit 0, resubmission with the overrides.
rm -f queue/*
pbs_job 2 limit.out SET="$SET checkpoint.dir=$ED_TMP/limit" WALLTIME_SECONDS=$((stop_after + 2)) STOP_BEFORE=2 \
    || { cat limit.out; fail "job stopped by the walltime exited non-zero"; }
done_jobs=0
while [ -f "queue/$((done_jobs + 1))" ]; do
    done_jobs=$((done_jobs + 1))
    [ "$done_jobs" -le 20 ] || { cat limit.out; fail "more than 20 resubmissions"; }
    mapfile -t vars < <(queued_vars "$done_jobs")
    script=$(tail -1 "queue/$done_jobs")
    [ "$script" = "$ED_TMP/jobs/pbs/ensemble.pbs" ] || fail "resubmitted $script, not the job script"
    env -u SET "${vars[@]}" PBS_O_WORKDIR="$ED_TMP" PBS_NODEFILE="$ED_TMP/nodefile" \
        PBS_JOBID="$((done_jobs + 2))" bash "$script" >> limit.out 2>&1 \
        || { cat limit.out; fail "resubmitted job $done_jobs exited non-zero"; }
done
[ "$done_jobs" -ge 1 ] || { cat limit.out; fail "the walltime never interrupted the run: make it longer"; }
grep -q "resuming\|complete: skipped" limit.out || { cat limit.out; fail "the resubmitted job did not resume"; }
[ -f limit/run.h5 ] || { cat limit.out; fail "the resubmitted jobs did not finish the run (run dir lost?)"; }
same_weights ref limit "2. walltime: $done_jobs resubmissions"

# 3. qdel: TERM to every process in the job's session.
rm -f queue/*
setsid env PBS_O_WORKDIR="$ED_TMP" PBS_NODEFILE="$ED_TMP/nodefile" PBS_JOBID=99 \
    SET="$SET checkpoint.dir=$ED_TMP/cancel" bash "$ED_TMP/jobs/pbs/ensemble.pbs" > cancel.out 2>&1 &
job=$!
for _ in $(seq 1 600); do
    grep -q "epoch    1/" cancel.out 2>/dev/null && break
    sleep 0.2
done
grep -q "epoch    1/" cancel.out || { cat cancel.out; fail "the job did not start training"; }
sid=$(ps -o sid= -p "$job" | tr -d ' ')
pkill -TERM -s "$sid"
status=0
wait "$job" || status=$?
[ "$status" != 0 ] || { cat cancel.out; fail "the job exited 0 after qdel"; }
[ -z "$(ls queue)" ] || { cat cancel.out; fail "qdel resubmitted the job"; }
for _ in $(seq 1 100); do pgrep -s "$sid" > /dev/null || break; sleep 0.1; done
! pgrep -s "$sid" > /dev/null || { cat cancel.out; ps -f -s "$sid"; fail "processes of the cancelled job still run 10 s after the script ended"; }
# (The ranks checkpoint on TERM too, but Open MPI's mpirun exits at once on TERM, so what
# they print then may be lost.)
echo "3. qdel: exit $status, nothing resubmitted, no process of the job left"
