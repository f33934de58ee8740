# The job scripts' launch lines for MPICH and for the paths the ensdistill tests (slurm, pbs)
# do not take: the ranks must start as one world of N. A launcher that does not speak the
# program's MPI starts N singletons (N copies of rank 0 of 1) that all exit 0, so only the world
# size tells. A small C program, built with Debian's mpicc.mpich and with Open MPI's mpicc,
# prints each rank's rank, the world size and an MPI_Allreduce sum; it is run as BIN through
#   1. jobs/pbs/ensemble.pbs (PBS_NODEFILE with 2 slots, as in pbs.sh): the script picks
#      mpirun.mpich (Hydra) for the MPICH program; MPIRUN=mpirun (Open MPI's here) stops the job
#      before it starts;
#   2. jobs/slurm/ensemble.sbatch under a real Slurm (slurm_up: MpiDefault=none) on 2 ranks:
#      MPICH with srun --mpi=pmi2, with LAUNCHER=mpirun (Hydra inside the allocation), and
#      under a stand-in srun whose --mpi=list offers neither pmi2 nor pmix (a Slurm without
#      the plugins): Hydra; Open MPI under that srun: its mpirun inside the allocation; and, to
#      show that the check sees singletons, MPICH with SLURM_MPI_TYPE=none: 2 x rank 0 of 1.
# Installs mpich and libmpich-dev when missing (they sit beside Open MPI: mpicc.mpich,
# mpirun.mpich; the default mpicc and mpirun stay Open MPI's). Skips, saying why, when they
# cannot be installed, or (after part 1) when Slurm cannot run here.
source "$(dirname "$0")/lib.sh"
source "$ED_SOURCE_DIR/jobs/common.sh"
ed_install_packages mpich libmpich-dev || skip "mpich and libmpich-dev are not installed and apt-get could not install them"
command -v mpicc.mpich > /dev/null || skip "mpicc.mpich not found after installing mpich and libmpich-dev"
scratch
cd "$ED_TMP"

cat > world.c <<'EOF'
/* One world or singletons? Every rank prints its rank, the world size and an Allreduce sum. */
#include <mpi.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "run") != 0) return 0; /* the job scripts' other calls */
    MPI_Init(&argc, &argv);
    int rank, size, sum = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int mine = rank + 1;
    MPI_Allreduce(&mine, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD); /* sum = size(size+1)/2 */
    printf("mpi_world rank %d of %d allreduce %d\n", rank, size, sum);
    MPI_Finalize();
    return sum == size * (size + 1) / 2 ? 0 : 1;
}
EOF
mpicc.mpich -O1 -o world world.c || fail "mpicc.mpich cannot build a 15-line MPI program"
mpicc.openmpi -O1 -o world-ompi world.c || fail "mpicc.openmpi cannot build a 15-line MPI program"
# Open MPI's mpirun as root (the scripts' launch lines have no --allow-run-as-root).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
[ "$(ed_mpi_of_binary "$ED_TMP/world")" = mpich ] \
    || fail "ed_mpi_of_binary calls the mpicc.mpich program '$(ed_mpi_of_binary "$ED_TMP/world")', not mpich: $(ldd world)"
export BIN=$ED_TMP/world CONFIG=unused ED_ROOT=$ED_SOURCE_DIR

# one_world OUTPUT N WHAT: OUTPUT holds exactly ranks 0..N-1 of one world of N.
one_world() {
    local got want="" r
    got=$(grep '^mpi_world ' "$1" | sort || true)
    for r in $(seq 0 $(($2 - 1))); do
        want+="mpi_world rank $r of $2 allreduce $(($2 * ($2 + 1) / 2))"$'\n'
    done
    [ "$got" = "${want%$'\n'}" ] || { cat "$1"; fail "$3: not one world of $2 ranks"; }
}

# 1. PBS: the mpirun of the binary's MPI; Open MPI's mpirun is refused.
printf 'localhost\nlocalhost\n' > nodefile
pbs() { env PBS_O_WORKDIR="$ED_TMP" PBS_NODEFILE="$ED_TMP/nodefile" PBS_JOBID=1 THREADS=1 "$@" \
            bash "$ED_SOURCE_DIR/jobs/pbs/ensemble.pbs"; }
t=$SECONDS
pbs > pbs.out 2>&1 || { cat pbs.out; fail "PBS job with the MPICH program exited non-zero"; }
grep -q "mpirun.mpich -n 2 -f $ED_TMP/nodefile -bind-to core:1 " pbs.out \
    || { cat pbs.out; fail "PBS: the launch line is not mpirun.mpich's over the node file"; }
one_world pbs.out 2 "PBS, mpirun.mpich"
status=0
pbs MPIRUN=mpirun > pbs-ompi.out 2>&1 || status=$?
[ "$status" = 2 ] && grep -q "would start as singletons" pbs-ompi.out && ! grep -q '^mpi_world' pbs-ompi.out \
    || { cat pbs-ompi.out; fail "PBS with MPIRUN=mpirun (Open MPI) and an MPICH program: exit $status, not 2 before the launch"; }
echo "1. PBS: mpirun.mpich starts one world of 2 ranks; Open MPI's mpirun is refused ($((SECONDS - t)) s)"

# 2. Slurm.
slurm_up
t=$SECONDS
real_srun=$(command -v srun)
mkdir -p noplugin
cat > noplugin/srun <<EOF
#!/bin/bash
# Stand-in for a Slurm built without the pmi2 and pmix plugins: srun --mpi=list offers neither.
if [ "\$*" = --mpi=list ]; then "$real_srun" --mpi=list 2>&1 | grep -vEx '[[:space:]]*pmi(2|x)'; exit 0; fi
exec "$real_srun" "\$@"
EOF
chmod +x noplugin/srun
script=$ED_SOURCE_DIR/jobs/slurm/ensemble.sbatch
sbatch_args=(--parsable --nodes=1 --ntasks-per-node=2 --cpus-per-task=1 --time=2)
# Submitted together; Slurm runs them one after another on the 2 CPUs.
declare -A jobs
jobs[pmi2]=$(sbatch "${sbatch_args[@]}" -o pmi2.out "$script") || fail "sbatch refused the job"
jobs[hydra]=$(env LAUNCHER=mpirun sbatch "${sbatch_args[@]}" -o hydra.out "$script") || fail "sbatch refused the job"
jobs[nopmi2]=$(env PATH="$ED_TMP/noplugin:$PATH" sbatch "${sbatch_args[@]}" -o nopmi2.out "$script") \
    || fail "sbatch refused the job"
jobs[nopmix]=$(env PATH="$ED_TMP/noplugin:$PATH" BIN="$ED_TMP/world-ompi" sbatch "${sbatch_args[@]}" -o nopmix.out "$script") \
    || fail "sbatch refused the job"
jobs[none]=$(env SLURM_MPI_TYPE=none sbatch "${sbatch_args[@]}" -o none.out "$script") || fail "sbatch refused the job"
for k in pmi2 hydra nopmi2 nopmix none; do
    state=$(wait_job "${jobs[$k]}" 60)
    [ "$state" = COMPLETED ] || { cat "$k.out"; fail "Slurm job $k (${jobs[$k]}) ended $state"; }
done
grep -q "srun --mpi=pmi2 --cpu-bind=cores $BIN run" pmi2.out \
    || { cat pmi2.out; fail "Slurm: the MPICH program was not launched with srun --mpi=pmi2"; }
one_world pmi2.out 2 "Slurm, srun --mpi=pmi2"
grep -q "mpirun.mpich -bind-to core:1 $BIN run" hydra.out \
    || { cat hydra.out; fail "Slurm, LAUNCHER=mpirun: the launch line is not mpirun.mpich's"; }
one_world hydra.out 2 "Slurm, LAUNCHER=mpirun (Hydra)"
grep -q "srun --mpi=list offers no pmi2" nopmi2.out && grep -q "mpirun.mpich -bind-to core:1 $BIN run" nopmi2.out \
    || { cat nopmi2.out; fail "Slurm without pmi2: the script did not fall back to mpirun.mpich"; }
one_world nopmi2.out 2 "Slurm without pmi2 (Hydra)"
grep -q "srun --mpi=list offers no pmix" nopmix.out \
    && grep -q "mpirun --map-by slot:PE=1 --bind-to core -x OPENBLAS_NUM_THREADS -x OMP_NUM_THREADS $ED_TMP/world-ompi run" nopmix.out \
    || { cat nopmix.out; fail "Slurm without pmix: the script did not fall back to Open MPI's mpirun"; }
one_world nopmix.out 2 "Slurm without pmix (Open MPI's mpirun)"
[ "$(grep -c '^mpi_world rank 0 of 1 allreduce 1$' none.out)" = 2 ] \
    || { cat none.out; fail "SLURM_MPI_TYPE=none should start 2 singletons (the control of this test)"; }
echo "2. Slurm: MPICH through srun --mpi=pmi2, LAUNCHER=mpirun and a Slurm without pmi2 (mpirun.mpich), Open MPI through a Slurm without pmix (mpirun): one world of 2 ranks each; SLURM_MPI_TYPE=none starts 2 MPICH singletons, as expected ($((SECONDS - t)) s)"
