# Shared by tests/run.sh and jobs/local.sh (install missing Debian packages, configure, build)
# and by the job scripts jobs/slurm/ensemble.sbatch and jobs/pbs/ensemble.pbs (their launch
# line). Source it; it defines functions and sets no shell options of its own.
ED_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ED_PACKAGES=(openmpi-bin libopenmpi-dev libopenblas-dev libdnnl-dev libhdf5-dev zlib1g-dev libyaml-dev
             pkg-config cmake make gcc dataset-fashion-mnist python3-h5py python3-numpy
             python3-matplotlib)

# tests/run.sh also installs these: load_torch, model_names and reference_fixture compare with
# PyTorch (load_torch.py reads the config with python3-yaml). Not every Debian architecture has
# python3-torch; where these cannot be installed the other tests still run and those three
# skip, saying why (ED_TORCH_UNAVAILABLE).
ED_TEST_PACKAGES=(python3-torch python3-yaml)
# And these, for the scheduler and launcher tests (slurm, launch_lines, cluster: iproute2 makes
# its namespace nodes): installed here so that a fresh machine runs apt-get update once; a test
# whose packages could not be installed skips, saying why.
ED_SCHEDULER_TEST_PACKAGES=(slurm-wlm munge mpich libmpich-dev iproute2)

# Installs the named packages that are missing; returns apt-get's status.
ed_install_packages() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    # exported: the tests that install their own packages run in child processes
    [ -n "${ED_APT_UPDATED:-}" ] || { $sudo apt-get update -qq && export ED_APT_UPDATED=1; }
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ed_install_deps() {
    ed_install_packages "${ED_PACKAGES[@]}"
}

# Tries ED_SCHEDULER_TEST_PACKAGES, then ED_TEST_PACKAGES; when the latter fail, exports
# ED_TORCH_UNAVAILABLE (the reason, which the PyTorch tests print when they skip) and carries on.
ed_install_test_deps() {
    unset ED_TORCH_UNAVAILABLE
    ed_install_packages "${ED_SCHEDULER_TEST_PACKAGES[@]}" \
        || echo "warning: apt-get could not install ${ED_SCHEDULER_TEST_PACKAGES[*]}: slurm and launch_lines will skip" >&2
    ed_install_packages "${ED_TEST_PACKAGES[@]}" && return 0
    local candidate
    candidate=$(apt-cache policy python3-torch 2>/dev/null | awk '/Candidate:/ {print $2}')
    if [ -z "$candidate" ] || [ "$candidate" = "(none)" ]; then
        ED_TORCH_UNAVAILABLE="Debian has no python3-torch for $(dpkg --print-architecture) here"
    else
        ED_TORCH_UNAVAILABLE="apt-get install ${ED_TEST_PACKAGES[*]} failed"
    fi
    export ED_TORCH_UNAVAILABLE
    echo "warning: $ED_TORCH_UNAVAILABLE: load_torch, model_names and reference_fixture will skip" >&2
}

ed_build() {
    ED_BUILD_DIR=${BUILD_DIR:-$ED_ROOT/build}
    local extra=() more=()
    [ "${SANITIZE:-0}" = 1 ] && extra+=(-DENSDISTILL_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo)
    # CMAKE_ARGS: more cmake arguments, split at spaces (e.g. "-DENSDISTILL_ONEDNN=OFF")
    [ -n "${CMAKE_ARGS:-}" ] && read -ra more <<< "$CMAKE_ARGS" && extra+=("${more[@]}")
    cmake -S "$ED_ROOT" -B "$ED_BUILD_DIR" -DCMAKE_BUILD_TYPE=Release "${extra[@]}" >/dev/null
    cmake --build "$ED_BUILD_DIR" -j "$(nproc)"
    ED_BIN=$ED_BUILD_DIR/ensdistill
}

# mpirun as root needs --allow-run-as-root; more ranks than cores need --oversubscribe.
ed_mpirun() {
    local flags=(--oversubscribe)
    [ "$(id -u)" -eq 0 ] && flags+=(--allow-run-as-root)
    mpirun "${flags[@]}" "$@"
}

# ---- The job scripts' launch line (jobs/slurm/ensemble.sbatch, jobs/pbs/ensemble.pbs) ----
# A launcher that does not speak the binary's MPI starts N singletons (N copies of rank 0 of 1)
# and exits 0: measured here with Debian's MPICH under `srun --mpi=none` and under Open MPI's
# mpirun. So the launcher follows the binary's MPI library, and a combination that cannot work
# stops the job before it starts.

# Prints which MPI the program $1 is linked against (ldd): openmpi (libmpi.so.40), mpich
# (libmpich.so.12, or libmpi.so.12 without Intel's banner), intel (libmpi.so.12 holding
# "Intel(R) MPI Library"), or unknown (linked statically, or ldd cannot read it).
ed_mpi_of_binary() {
    local lib path
    read -r lib path < <(ldd "$1" 2>/dev/null | awk '/libmpi(ch)?\.so/ {print $1, $3; exit}')
    case ${lib:-} in
        libmpi.so.40*) echo openmpi ;;
        libmpich.so.12*) echo mpich ;;
        libmpi.so.12*)
            if grep -qa 'Intel(R) MPI Library' "$path" 2>/dev/null; then echo intel; else echo mpich; fi ;;
        *) echo unknown ;;
    esac
}

# Prints which MPI the launcher command $1 belongs to, from its --version: openmpi, intel,
# mpich (Hydra) or unknown.
ed_mpi_of_mpirun() {
    case $("$1" --version 2>&1) in
        *"Open MPI"* | *OpenRTE*) echo openmpi ;;
        *"Intel(R) MPI"*) echo intel ;;
        *HYDRA* | *MPICH*) echo mpich ;;
        *) echo unknown ;;
    esac
}

# Prints the first mpirun on PATH that belongs to MPI $1 (mpirun, mpiexec, or the names
# Debian gives them when several MPIs are installed: mpirun.openmpi, mpirun.mpich,
# mpiexec.hydra); returns 1 when there is none.
ed_find_mpirun() {
    local c
    for c in mpirun mpiexec "mpirun.$1" mpiexec.hydra; do
        command -v "$c" > /dev/null || continue
        [ "$(ed_mpi_of_mpirun "$c")" = "$1" ] && { echo "$c"; return 0; }
    done
    return 1
}

# ed_mpirun_launch MPIRUN RANKS HOSTFILE THREADS: sets ED_LAUNCH to MPIRUN's line for RANKS
# ranks (empty: as many as the allocation has slots) over HOSTFILE (empty: the scheduler's
# hosts, or this one), each bound to THREADS cores. Open MPI: --hostfile, --map-by slot:PE;
# MPICH's Hydra: -f, -bind-to core:THREADS; Intel MPI: -f, I_MPI_PIN_DOMAIN=omp (exported).
ed_mpirun_launch() {
    local mpirun=$1 ranks=$2 hostfile=$3 threads=$4
    local n=() hosts=()
    [ -n "$ranks" ] && n=(-n "$ranks")
    case $(ed_mpi_of_mpirun "$mpirun") in
        openmpi)
            [ -n "$hostfile" ] && hosts=(--hostfile "$hostfile")
            ED_LAUNCH=("$mpirun" "${n[@]}" "${hosts[@]}" --map-by "slot:PE=$threads" --bind-to core
                       -x OPENBLAS_NUM_THREADS -x OMP_NUM_THREADS) ;;
        intel)
            [ -n "$hostfile" ] && hosts=(-f "$hostfile")
            export I_MPI_PIN_DOMAIN=omp # one domain of OMP_NUM_THREADS cores per rank
            ED_LAUNCH=("$mpirun" "${n[@]}" "${hosts[@]}") ;;
        mpich)
            [ -n "$hostfile" ] && hosts=(-f "$hostfile")
            ED_LAUNCH=("$mpirun" "${n[@]}" "${hosts[@]}" -bind-to "core:$threads") ;;
        *) ED_LAUNCH=("$mpirun" "${n[@]}") ;;
    esac
}

# ed_choose_mpirun BIN MPI: sets ED_MPIRUN to MPIRUN when set, else the mpirun of MPI (BIN's,
# ed_mpi_of_binary), and appends the choice to ED_LAUNCH_WHY. Returns 2, saying why in
# ED_LAUNCH_WHY, when MPIRUN belongs to another MPI than BIN or no mpirun of MPI is on PATH.
ed_choose_mpirun() {
    local bin=$1 mpi=$2 its
    if [ -n "${MPIRUN:-}" ]; then
        its=$(ed_mpi_of_mpirun "$MPIRUN")
        if [ "$mpi" != unknown ] && [ "$its" != unknown ] && [ "$its" != "$mpi" ]; then
            ED_LAUNCH_WHY="MPIRUN=$MPIRUN is $its's, $bin is linked against $mpi: the ranks would start as singletons"
            return 2
        fi
        ED_MPIRUN=$MPIRUN
        ED_LAUNCH_WHY="$ED_LAUNCH_WHY; MPIRUN=$MPIRUN ($its)"
    elif [ "$mpi" = unknown ]; then
        ED_MPIRUN=mpirun
        ED_LAUNCH_WHY="$ED_LAUNCH_WHY; plain mpirun (set MPIRUN if it is not $bin's MPI's)"
    else
        ED_MPIRUN=$(ed_find_mpirun "$mpi") || {
            ED_LAUNCH_WHY="$ED_LAUNCH_WHY; no mpirun of $mpi on PATH (mpirun, mpiexec, mpirun.$mpi, mpiexec.hydra): set MPIRUN"
            return 2
        }
        ED_LAUNCH_WHY="$ED_LAUNCH_WHY; $ED_MPIRUN is $mpi's"
    fi
}

# ed_pbs_launch BIN RANKS HOSTFILE THREADS: sets ED_LAUNCH to the mpirun line of BIN's MPI
# (ed_choose_mpirun, ed_mpirun_launch) and ED_LAUNCH_WHY to the reason; returns 2 when there
# is none (ED_LAUNCH_WHY says why).
ed_pbs_launch() {
    local mpi
    mpi=$(ed_mpi_of_binary "$1")
    ED_LAUNCH_WHY="$1 is linked against $mpi"
    ed_choose_mpirun "$1" "$mpi" || return 2
    ed_mpirun_launch "$ED_MPIRUN" "$2" "$3" "$4"
}

# ed_slurm_launch BIN THREADS: inside a Slurm allocation, sets ED_LAUNCH to the command that
# starts BIN's ranks and ED_LAUNCH_WHY to the reason. srun when it speaks BIN's MPI: Open MPI
# needs --mpi=pmix; MPICH --mpi=pmi2; Intel MPI --mpi=pmi2 with I_MPI_PMI_LIBRARY set (Slurm's
# libpmi2.so, as Intel documents). Else the mpirun of BIN's MPI inside the allocation (Open
# MPI's mpirun and Hydra start their daemons through Slurm and take the ranks from it).
# LAUNCHER=srun|mpirun forces one of the two; SLURM_MPI_TYPE (which srun reads itself) forces
# srun with that plugin. Returns 2, saying why in ED_LAUNCH_WHY, when nothing here can start
# the ranks as one job.
ed_slurm_launch() {
    local bin=$1 threads=$2 launcher=${LAUNCHER:-auto} mpi want="" plugins
    mpi=$(ed_mpi_of_binary "$bin")
    case $mpi in
        openmpi) want=pmix ;;
        mpich) want=pmi2 ;;
        intel) [ -n "${I_MPI_PMI_LIBRARY:-}" ] && want=pmi2 ;;
    esac
    ED_LAUNCH_WHY="$bin is linked against $mpi"
    case $launcher in
        auto)
            if [ -n "${SLURM_MPI_TYPE:-}" ]; then
                launcher=srun
                ED_LAUNCH_WHY="$ED_LAUNCH_WHY; SLURM_MPI_TYPE=$SLURM_MPI_TYPE"
            elif [ "$mpi" = unknown ]; then
                launcher=srun
                ED_LAUNCH_WHY="$ED_LAUNCH_WHY (ldd): srun with the site's MpiDefault; if the ranks start as singletons (N copies of rank 0 of 1) set SLURM_MPI_TYPE or LAUNCHER=mpirun"
            elif [ -z "$want" ]; then
                launcher=mpirun
                ED_LAUNCH_WHY="$ED_LAUNCH_WHY and I_MPI_PMI_LIBRARY is not set (srun --mpi=pmi2 needs it to name Slurm's libpmi2.so)"
            else
                plugins=$(srun --mpi=list 2>&1 | awk '/^[[:space:]]+[a-z_0-9]+$/ {print $1}')
                if grep -qx "$want" <<< "$plugins"; then
                    launcher=srun
                    ED_LAUNCH_WHY="$ED_LAUNCH_WHY, srun offers --mpi=$want"
                else
                    launcher=mpirun
                    ED_LAUNCH_WHY="$ED_LAUNCH_WHY, srun --mpi=list offers no $want"
                fi
            fi ;;
        srun | mpirun) ED_LAUNCH_WHY="$ED_LAUNCH_WHY; LAUNCHER=$launcher" ;;
        *) ED_LAUNCH_WHY="LAUNCHER must be auto, srun or mpirun, not '$launcher'"; return 2 ;;
    esac
    if [ "$launcher" = srun ]; then
        ED_LAUNCH=(srun --cpu-bind=cores)
        [ -z "${SLURM_MPI_TYPE:-}" ] && [ -n "$want" ] && ED_LAUNCH=(srun --mpi="$want" --cpu-bind=cores)
        return 0
    fi
    ed_choose_mpirun "$bin" "$mpi" || return 2
    ed_mpirun_launch "$ED_MPIRUN" "" "" "$threads"
}
