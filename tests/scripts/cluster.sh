# Two nodes on one machine (cluster_lib.sh): each a network namespace with its own hostname
# (node1, node2) and CPU, linked by veth to a bridge in a head-node namespace (ctl) that runs
# slurmctld; munged's socket, Slurm's state and every run directory live on a tmpfs that all
# of them see (the "shared file system"). Checks, against runs on one node of this machine:
#   1. Slurm: `sbatch -N 2 --ntasks-per-node=1 jobs/slurm/ensemble.sbatch` (srun --mpi=pmix
#      across the nodes): every model and the teacher bitwise equal to 1 rank
#      (analysis/compare_runs.py); the start-up print names node1 and node2 with their rank and
#      CPU, and the data is loaded once per node: 2 windows, one line per node;
#   2. Open MPI's own launcher: mpirun on node1 with a hostfile (node1 slots=2, node2 slots=2)
#      and an rsh agent that enters the nodes' namespaces, 4 ranks mapped by node,
#      ranks_per_model 2: every model's two ranks are on different nodes and sum their
#      gradients over TCP; bitwise equal to ranks_per_model 2 on one node; 2 windows, each
#      mapped by 2 ranks;
#   3. a node crash: every process of node2 (slurmd, slurmstepd, its rank) gets SIGKILL while
#      the job of 1. trains (FAIL if the run had already finished); Slurm ends or requeues the
#      job; every model file left is intact (inspect); node2 "reboots" (its slurmd starts again);
#      the rerun resumes and ends bitwise equal to the uninterrupted run.
# Skips (77) only where network namespaces cannot be made (or iproute2 cannot be installed). Every
# namespace, link, daemon and mount it made is removed on exit, also on failure.
# The cost of the gradient sum across a shaped link between such nodes is measured by
# analysis/cluster_gradsum.sh, not here (timings are no test on a shared machine).
source "$(dirname "$0")/lib.sh"
source "$ED_SOURCE_DIR/jobs/common.sh"
source "$ED_SOURCE_DIR/tests/scripts/cluster_lib.sh"
need_h5py
ed_install_packages iproute2 || skip "iproute2 is not installed and apt-get could not install it"
why=$(cl_can_run) || skip "$why"
ed_install_packages slurm-wlm munge || fail "slurm-wlm and munge are not installed and apt-get could not install them"
[ -r /etc/munge/munge.key ] || fail "/etc/munge/munge.key missing (the munge package creates it)"
export PATH=$PATH:/usr/sbin

# Not under /tmp: each node has its own /tmp, the run directories are on the shared mount.
ED_TMP=$(mktemp -d /var/tmp/ensdistill-cluster.XXXXXX)
chmod 755 "$ED_TMP" # munged (user munge) reaches its socket below it
SH=$ED_TMP/shared
cluster_up "$SH" 2 || { cluster_down; rm -rf "$ED_TMP"; fail "cluster_up could not make the nodes"; }
# On failure the daemons' logs are shown (they go with the tmpfs).
trap 'status=$?; set +e; [ "$status" = 0 ] || [ "$status" = 77 ] || tail -n 15 "$SH"/.cluster/log/*;
      cluster_down; [ -n "${ED_KEEP_TMP:-}" ] || rm -rf "$ED_TMP"; exit $status' EXIT
t=$SECONDS
cl_slurm_up || fail "the Slurm cluster did not come up (logs above)"
echo "cluster: ctl + node1, node2 ($CL_ID), Slurm idle in $((SECONDS - t)) s"

# lib.sh's wait_job and ended, with scontrol on the head node.
job_field() { cl_slurm scontrol -o show job "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k {print $2; exit}'; }

cfg=$ED_SOURCE_DIR/tests/configs/tiny.yaml
# Long enough (about 5 s on two idle cores) for a node to die while it trains.
args=(--set model.hidden=128 --set data.train_limit=3000 --set train.epochs=3
      --set "distill.students=[kd,self]")
compare() { "$ED_PYTHON" "$ED_SOURCE_DIR/analysis/compare_runs.py" "$1" "$2" > "$ED_TMP/cmp.txt" 2>&1 \
                || { cat "$ED_TMP/cmp.txt"; fail "$3: differs from $1"; }
            echo "$3: bitwise equal to $(basename "$1") (compare_runs.py)"; }
# The references, on this machine's own network namespace: 1 rank, and ranks_per_model 2.
run_named ref1 1
# ranks_per_model 2 on 4 ranks, two of them on each node's one CPU: less data.
dp_args=(--set data.train_limit=1000 --set parallel.ranks_per_model=2)
run_named ref_dp 2 -- "${dp_args[@]}"

# ---- 1. sbatch -N 2 --ntasks-per-node=1 jobs/slurm/ensemble.sbatch ----
export CONFIG=$cfg BIN=$ED_BIN ED_ROOT=$ED_SOURCE_DIR
sbatch_args=(--parsable -N 2 --ntasks-per-node=1 --cpus-per-task=1)
script=$ED_SOURCE_DIR/jobs/slurm/ensemble.sbatch
cd "$SH"
t=$SECONDS
job=$(cl_slurm sbatch "${sbatch_args[@]}" --time=10 -o "$SH/slurm2.out" "$script" \
      --set checkpoint.dir="$SH/slurm2" "${args[@]}") || fail "sbatch refused the job"
state=$(wait_job "$job" 240)
[ "$state" = COMPLETED ] || { cat slurm2.out; fail "2-node job $job ended $state"; }
echo "1. sbatch -N 2: job $job COMPLETED in $((SECONDS - t)) s on $(job_field "$job" NodeList)"
out=$(cat slurm2.out)
grep -q -- "srun --mpi=pmix" <<< "$out" || { echo "$out"; fail "the job did not launch with srun --mpi=pmix"; }
for k in 1 2; do
    grep -q "^node node$k: 1 rank(s); rank $((k - 1)): CPUs $((k - 1)) (1)" <<< "$out" \
        || { echo "$out"; fail "no start-up line for node$k with rank $((k - 1)) on CPU $((k - 1))"; }
    grep -q "^data on node$k: loaded once by rank $((k - 1)), mapped by the node's 1 rank(s)" <<< "$out" \
        || { echo "$out"; fail "no data line for node$k"; }
done
grep -q "^data: .* once per node in shared memory, 2 window(s) on 2 node(s)" <<< "$out" \
    || { echo "$out"; fail "the run does not say 2 windows on 2 nodes"; }
compare "$ED_TMP/ref1" "$SH/slurm2" "1. 2-node Slurm job"

# ---- 2. Open MPI's mpirun, its rsh agent through the namespaces, a user's hostfile ----
printf 'node1 slots=2\nnode2 slots=2\n' > "$SH/hostfile"
t=$SECONDS
cl_on 1 mpirun --allow-run-as-root --mca plm_rsh_agent "$(cl_agent)" --hostfile "$SH/hostfile" \
    -n 4 --map-by node --bind-to none --mca btl self,vader,tcp --mca mpi_yield_when_idle 1 \
    "$ED_BIN" run "$cfg" --set checkpoint.dir="$SH/ompi4" "${args[@]}" "${dp_args[@]}" > "$SH/ompi4.out" 2>&1 \
    || { cat "$SH/ompi4.out"; fail "mpirun over the hostfile (rsh agent) failed"; }
out=$(cat "$SH/ompi4.out")
for k in 1 2; do
    grep -q "^node node$k: 2 rank(s); rank $((k - 1)): CPUs $((k - 1)) (1), 1 thread; rank $((k + 1)): CPUs $((k - 1)) (1)" <<< "$out" \
        || { echo "$out"; fail "no start-up line for node$k with ranks $((k - 1)) and $((k + 1)) on CPU $((k - 1))"; }
    grep -q "^data on node$k: loaded once by rank $((k - 1)), mapped by the node's 2 rank(s)" <<< "$out" \
        || { echo "$out"; fail "no data line for node$k mapped by 2 ranks"; }
done
grep -q "^data: .* 2 window(s) on 2 node(s)" <<< "$out" || { echo "$out"; fail "not 2 windows on 2 nodes"; }
compare "$ED_TMP/ref_dp" "$SH/ompi4" "2. mpirun -n 4 over node1,node2, ranks_per_model 2 across the nodes ($((SECONDS - t)) s)"

# ---- 3. node2 crashes while the job trains ----
t=$SECONDS
job=$(cl_slurm sbatch "${sbatch_args[@]}" --time=10 -o "$SH/crash.out" "$script" \
      --set checkpoint.dir="$SH/crash" "${args[@]}") || fail "sbatch refused the job"
for _ in $(seq 1 600); do
    grep -q "^member-00[0-9] *epoch    1/" crash.out 2>/dev/null && break
    sleep 0.2
done
grep -q "epoch    1/" crash.out || { cat crash.out; fail "job $job did not start training"; }
killed=$(cl_kill_node 2)
echo "3. node2 crashed (SIGKILL to its $killed processes) $((SECONDS - t)) s after the submission"
# The run cannot finish without node2's rank (the teacher needs every group).
[ ! -e "$SH/crash/run.h5" ] && ! grep -q "^done in" crash.out \
    || { cat crash.out; fail "the crash landed after the run finished: make the run longer"; }
# Slurm notices (node2's slurmd no longer answers: SlurmdTimeout 10 s) and ends or requeues it.
deadline=$((SECONDS + 120))
while :; do
    state=$(job_field "$job" JobState)
    ended "$state" && break
    [ "$state" = PENDING ] && [ "$(job_field "$job" Restarts)" -ge 1 ] && break
    [ "$SECONDS" -lt "$deadline" ] || { cat crash.out; fail "job $job still $state 120 s after the crash"; }
    sleep 0.5
done
[ "$state" != COMPLETED ] || { cat crash.out; fail "job $job COMPLETED although node2 died"; }
echo "   Slurm: job $job $state (restarts $(job_field "$job" Restarts), reason $(job_field "$job" Reason)); node2 $(cl_slurm sinfo -h -n node2 -o %t)"
"$ED_BIN" inspect "$SH/crash" > inspect.txt 2>&1 || { cat inspect.txt; fail "a model file is damaged after the crash"; }
grep -q "no run.h5 yet" inspect.txt || { cat inspect.txt; fail "run.h5 written after the crash"; }
echo "   after the crash: $(grep "model file(s)" inspect.txt | sed 's/^ *//'), every checksum ok"
# node2 reboots; the job runs again (released from its requeue hold, or submitted again).
cl_reboot_node 2
for _ in $(seq 1 120); do
    [ "$(cl_slurm sinfo -h -n node2 -o %t)" = idle ] && break
    [ "$state" = PENDING ] && [ "$(cl_slurm sinfo -h -n node2 -o %t)" = alloc ] && break
    sleep 0.5
done
if [ "$state" = PENDING ]; then
    cl_slurm scontrol update JobId="$job" StartTime=now
    rerun=$job
else
    rerun=$(cl_slurm sbatch "${sbatch_args[@]}" --time=10 -o "$SH/crash.out" "$script" \
            --set checkpoint.dir="$SH/crash" "${args[@]}") || fail "sbatch refused the rerun"
fi
state=$(wait_job "$rerun" 240)
[ "$state" = COMPLETED ] || { cat crash.out; fail "the rerun (job $rerun) ended $state"; }
grep -q "resuming\|complete: skipped" crash.out || { cat crash.out; fail "the rerun did not resume"; }
compare "$ED_TMP/ref1" "$SH/crash" "3. crash of node2 and rerun (job $rerun, $((SECONDS - t)) s)"
