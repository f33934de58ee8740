# jobs/slurm/ensemble.sbatch under a real Slurm: munged, slurmctld and slurmd started here on
# localhost (slurm.conf in a scratch directory, SLURM_CONF, Slurm's default MpiDefault=none),
# then three jobs on 2 ranks:
#   1. a normal run completes (the reference);
#   2. with a one-minute time limit and --signal=B:USR1@50 the job checkpoints, requeues itself
#      and resumes until done, with every tensor bitwise equal to the reference;
#   3. scancel ends a running job: CANCELLED, not requeued, no rank left.
# Installs slurm-wlm and munge when missing. When the daemons cannot run here the test says
# why and is skipped (exit 77). The daemons it started are stopped by PID.
source "$(dirname "$0")/lib.sh"
source "$ED_SOURCE_DIR/jobs/common.sh"
need_h5py
slurm_up
# Sleeps until slurmctld's next time-limit check is about $1 seconds away.
before_tick() {
    local wait
    wait=$(awk -v t0="$ctld_start" -v now="$(date +%s.%N)" -v ahead="$1" \
        'BEGIN { w = (30 - ahead) - (now - t0) % 30; if (w < 0) w += 30; print w }')
    sleep "$wait"
}

cd "$ED_TMP"
export CONFIG=$ED_SOURCE_DIR/tests/configs/tiny.yaml BIN=$ED_BIN ED_ROOT=$ED_SOURCE_DIR
# About 23 s on two idle cores: long enough for the time limit to interrupt it.
args=(--set model.hidden=512 --set data.train_limit=40000 --set data.test_limit=1000
      --set train.epochs=5 --set "distill.students=[kd,self]")
sbatch_args=(--parsable --nodes=1 --ntasks-per-node=2 --cpus-per-task=1)
script=$ED_SOURCE_DIR/jobs/slurm/ensemble.sbatch

# 1. Normal completion.
t=$SECONDS
job=$(sbatch "${sbatch_args[@]}" --time=10 -o "$ED_TMP/ref.out" "$script" \
    --set checkpoint.dir="$ED_TMP/ref" "${args[@]}") || fail "sbatch refused the job"
state=$(wait_job "$job" 240)
[ "$state" = COMPLETED ] && [ "$(job_field "$job" ExitCode)" = 0:0 ] \
    || { cat ref.out; fail "normal job $job ended $state, exit $(job_field "$job" ExitCode)"; }
[ -f ref/run.h5 ] || { cat ref.out; fail "normal job completed without run.h5"; }
grep -q -- "--mpi=pmix" ref.out || { cat ref.out; fail "the job did not launch with --mpi=pmix"; }
echo "1. normal job $job: COMPLETED in $((SECONDS - t)) s"
# The time-limit job gets USR1 about half-way through a run as long as this one (3 to 14 s
# after its start: a faster machine is still interrupted); the script holds the signal 2 s.
run_s=$(awk '/^done in/ {print int($3)}' ref.out)
lead=$((run_s / 2))
[ "$lead" -le 14 ] || lead=14
[ "$lead" -ge 3 ] || lead=3
export STOP_HOLD=2

# 2. A one-minute time limit with USR1 at slurmctld's first check after the start, which each
#    start is timed to come $lead s before: checkpoint, requeue, resume.
t=$SECONDS
before_tick "$lead"
job=$(sbatch "${sbatch_args[@]}" --time=1 --signal=B:USR1@50 -o "$ED_TMP/limit.out" "$script" \
    --set checkpoint.dir="$ED_TMP/limit" "${args[@]}") || fail "sbatch refused the job"
deadline=$((SECONDS + 400))
while :; do
    state=$(job_field "$job" JobState)
    case $state in
        PENDING)
            if [ "$(job_field "$job" Reason)" = BeginTime ]; then
                # Requeued: Slurm holds it for about 2 minutes; start it $lead s before a check.
                before_tick "$lead"
                scontrol update JobId="$job" StartTime=now
                sleep 2
            fi ;;
        *) ended "$state" && break ;;
    esac
    [ "$SECONDS" -lt "$deadline" ] || { cat limit.out; fail "time-limited job $job still $state after 400 s"; }
    sleep 0.5
done
restarts=$(job_field "$job" Restarts)
[ "$state" = COMPLETED ] || { cat limit.out; fail "time-limited job $job ended $state after $restarts requeues"; }
[ "$restarts" -ge 1 ] || { cat limit.out; fail "the time limit never interrupted job $job: make the run longer"; }
grep -q "checkpointed; requeueing" limit.out || { cat limit.out; fail "no requeue in the job's output"; }
grep -q "resuming\|complete: skipped" limit.out || { cat limit.out; fail "the requeued job did not resume"; }
same_weights ref limit "2. time-limited job $job ($restarts requeues, $((SECONDS - t)) s)"

unset STOP_HOLD
# 3. scancel ends the job: the ranks checkpoint, nothing is requeued.
job=$(sbatch "${sbatch_args[@]}" --time=10 -o "$ED_TMP/cancel.out" "$script" \
    --set checkpoint.dir="$ED_TMP/cancel" "${args[@]}") || fail "sbatch refused the job"
for _ in $(seq 1 240); do
    grep -q "epoch    1/" cancel.out 2>/dev/null && break
    sleep 0.5
done
grep -q "epoch    1/" cancel.out || { cat cancel.out; fail "job $job did not start training"; }
scancel "$job"
state=$(wait_job "$job" 60)
sleep 5
[ "$state" = CANCELLED ] && [ "$(job_field "$job" JobState)" = CANCELLED ] \
    && [ "$(job_field "$job" Restarts)" = 0 ] \
    || { cat cancel.out; fail "after scancel job $job is $(job_field "$job" JobState), restarts $(job_field "$job" Restarts)"; }
! pgrep -f -- "checkpoint.dir=$ED_TMP/cancel" > /dev/null || fail "ranks of the cancelled job still run"
grep -q "checkpointed; run again" cancel.out || { cat cancel.out; fail "the cancelled ranks did not checkpoint"; }
! grep -q requeueing cancel.out || { cat cancel.out; fail "scancel requeued the job"; }
echo "3. scancel: job $job CANCELLED, not requeued, ranks checkpointed and gone"
