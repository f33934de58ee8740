# Helpers for the script tests (sourced). ctest sets ED_BIN, ED_MPIEXEC, ED_PYTHON,
# ED_SOURCE_DIR, ED_BUILD_DIR.
set -euo pipefail
# Match a command's output with `grep -q PATTERN <<< "$out"`, never `echo "$out" | grep -q`:
# grep -q exits at the first match, echo (which writes line by line) then dies of SIGPIPE, and
# pipefail fails the test although the line was there (inspect_eval failed so, rarely).
: "${ED_BIN:?run through ctest}"
fail() { echo "FAIL: $*" >&2; exit 1; }
need_h5py() {
    "$ED_PYTHON" -c 'import h5py, numpy' 2>/dev/null || { echo "SKIP: python3-h5py missing"; exit 77; }
}
# PyTorch tests: tests/run.sh installs python3-torch. They skip only where it could not be
# installed (ED_TORCH_UNAVAILABLE says why); a machine that merely lacks it fails, saying how.
need_torch() {
    "$ED_PYTHON" -c 'import torch, h5py, numpy' 2>/dev/null && return 0
    if [ -n "${ED_TORCH_UNAVAILABLE:-}" ]; then
        echo "SKIP: $ED_PYTHON cannot import torch: $ED_TORCH_UNAVAILABLE"
        exit 77
    fi
    fail "$ED_PYTHON cannot import torch, h5py and numpy: tests/run.sh installs python3-torch" \
         "(or apt-get install python3-torch python3-h5py python3-numpy)"
}
# A fresh scratch directory, removed on exit.
scratch() {
    ED_TMP=$(mktemp -d "${TMPDIR:-/tmp}/ensdistill-test.XXXXXX")
    trap 'rm -rf "$ED_TMP"' EXIT
}
# Runs ensdistill on N ranks: edrun N ARGS...
edrun() {
    local n=$1; shift
    $ED_MPIEXEC -n "$n" "$ED_BIN" "$@"
}
# Open MPI's TCP transport alone, as between nodes, for two ranks on this host: the ob1 PML (no
# other PML's transports), the self and tcp BTLs, on the loopback interface. Named because
# Open MPI 5.0.7 (Debian 13) publishes one address per interface, the first it lists, which on
# a NIC with a global IPv6 address is that one; its netlink reachability test takes two equal
# IPv6 addresses for different (it compares their pointers) and asks the kernel for a route out
# of that NIC to its own address, which leaves through lo: "no connection", and MPI_Init fails
# ("Unable to find reachable pairing between local and remote interfaces"). 127.0.0.1 is IPv4,
# where equal addresses pair. Open MPI 4.1 pairs either way.
ED_MPI_TCP=(--mca pml ob1 --mca btl self,tcp --mca btl_tcp_if_include lo)
# `ensdistill run "$cfg" "${args[@]}"` (the caller's cfg and args) into RUN_DIR $ED_TMP/NAME,
# its output in $ED_TMP/NAME.log: run_named NAME RANKS [mpiexec flags...] -- [more run args...]
run_named() {
    local name=$1 n=$2
    shift 2
    local flags=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do flags+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    $ED_MPIEXEC "${flags[@]}" -n "$n" "$ED_BIN" run "$cfg" --set checkpoint.dir="$ED_TMP/$name" \
        "${args[@]}" "$@" > "$ED_TMP/$name.log" 2>&1 || { cat "$ED_TMP/$name.log"; fail "run $name"; }
}
# Interrupted runs (the resume tests). start_run_until NAME LOG CMD...: starts `ensdistill run
# "$cfg" "${args[@]}"` on 2 ranks into RUN_DIR $ED_TMP/NAME in the background, output in LOG,
# sets $launcher (mpirun's pid), and returns once CMD... succeeds (polled every 20 ms, for at
# most about 2 minutes).
start_run_until() {
    local name=$1 log=$2
    shift 2
    $ED_MPIEXEC -n 2 "$ED_BIN" run "$cfg" --set checkpoint.dir="$ED_TMP/$name" "${args[@]}" \
        > "$log" 2>&1 &
    launcher=$!
    for _ in $(seq 1 6000); do
        "$@" 2> /dev/null && break
        sleep 0.02
    done
}
# The pids of the ranks running into $ED_TMP/NAME: run_ranks NAME
run_ranks() { pgrep -f "^$ED_BIN run $cfg --set checkpoint.dir=$ED_TMP/$1" || true; }
# SIGKILL to one rank of the run start_run_until started; mpirun must then exit non-zero. Sets
# $victim: kill_one_rank NAME LOG
kill_one_rank() {
    victim=$(run_ranks "$1" | tail -1)
    [ -n "$victim" ] || { cat "$2"; fail "no rank to kill (did the run finish too fast?)"; }
    kill -9 "$victim"
    wait "$launcher" && fail "mpirun exited 0 after a rank was killed" || true
}
# SIGUSR1 to every rank of that run: each checkpoints and the run exits 0. stop_run NAME LOG
stop_run() {
    pkill -USR1 -f "^$ED_BIN run $cfg --set checkpoint.dir=$ED_TMP/$1" || true
    wait "$launcher" || { cat "$2"; fail "a run stopped by SIGUSR1 did not exit 0"; }
}
# Every tensor of every model, and the teacher, bitwise equal in two run directories:
# same_weights REF_DIR OTHER_DIR WHAT (WHAT names OTHER_DIR in the message).
same_weights() {
    "$ED_PYTHON" - "$1" "$2" "$3" <<'PY'
import sys, h5py, numpy as np
ref, other, what = h5py.File(f"{sys.argv[1]}/run.h5"), h5py.File(f"{sys.argv[2]}/run.h5"), sys.argv[3]
names = sorted(ref["models"].keys())
if names != sorted(other["models"].keys()):
    sys.exit(f"FAIL: {what}: models {sorted(other['models'].keys())}, reference {names}")
n = 0
for name in names:
    a, b = ref["models"][name], other["models"][name]
    if b.attrs["complete"] != 1:
        sys.exit(f"FAIL: {what}: {name} is not complete")
    for group in ("params", "buffers"):
        for k in a[group] if group in a else []:
            x, y = a[group][k][...], b[group][k][...]
            if x.tobytes() != y.tobytes():
                sys.exit(f"FAIL: {what}: {name}/{group}/{k} differs: max |diff| {np.abs(x - y).max():g}")
            n += 1
for k in ("train_logits", "test_logits"):
    if ref["teacher"][k][...].tobytes() != other["teacher"][k][...].tobytes():
        sys.exit(f"FAIL: {what}: teacher {k} differs")
print(f"{what}: {len(names)} models, {n} tensors and the teacher bitwise equal to the reference")
PY
}
skip() { echo "SKIP: $*"; exit 77; }
# A user error: COMMAND... must exit 2 with WANT (a fixed string) in its output, which is left
# in $ED_TMP/refused.txt: expect_refused WHAT WANT COMMAND...
expect_refused() {
    local what=$1 want=$2 rc
    shift 2
    set +e
    "$@" > "$ED_TMP/refused.txt" 2>&1
    rc=$?
    set -e
    [ $rc -eq 2 ] || { cat "$ED_TMP/refused.txt"; fail "$what exited $rc, expected 2"; }
    grep -qF -- "$want" "$ED_TMP/refused.txt" \
        || fail "$what: expected '$want' in: $(cat "$ED_TMP/refused.txt")"
    echo "ok   $what refused: $(grep -m1 -F -- "$want" "$ED_TMP/refused.txt" | cut -c1-200)"
}
# A file this program wrote and a test then edited with h5py fails its seal (the whole-file
# CRC32 in the 512-byte user block, h5file.c): reseal FILE writes the seal again, as the
# program would (magic, version 1, CRC32 with its own field read as zero, size).
reseal() {
    "$ED_PYTHON" - "$1" <<'PY'
import struct, sys, zlib
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
assert b[:16] == b"ensdistill-crc32", f"{p} has no seal to rewrite"
b[16:20] = struct.pack("<I", 1)
b[20:24] = b"\0\0\0\0"
b[24:32] = struct.pack("<Q", len(b))
b[20:24] = struct.pack("<I", zlib.crc32(bytes(b)) & 0xFFFFFFFF)
open(p, "wb").write(b)
PY
}
# flip_byte FILE OFFSET MASK: XORs one byte of FILE (a negative OFFSET counts from the end).
flip_byte() {
    "$ED_PYTHON" -c 'import sys
p, at, mask = sys.argv[1], int(sys.argv[2]), int(sys.argv[3], 0)
b = bytearray(open(p, "rb").read()); b[at] ^= mask; open(p, "wb").write(b)' "$@"
}

# A real single-node Slurm for the job-script tests (slurm, launch_lines): installs slurm-wlm and
# munge when missing (ed_install_packages: source jobs/common.sh first), makes the scratch
# directory ED_TMP, starts munged (its own socket), slurmctld and slurmd on localhost with a
# slurm.conf there (SLURM_CONF, free ports, Slurm's default MpiDefault=none), and waits until
# the node is idle. Skips (exit 77), saying why, when they cannot run here. On exit the jobs
# and then the daemons it started are stopped by PID, and ED_TMP is removed (unless
# ED_KEEP_TMP is set). Sets ctld_start (when slurmctld started) and daemon_pids.
slurm_up() {
    [ "$(id -u)" -eq 0 ] || skip "slurmd must run as root to start jobs (uid $(id -u))"
    ed_install_packages slurm-wlm munge || skip "slurm-wlm and munge are not installed and apt-get could not install them"
    for b in munged slurmctld slurmd sbatch scontrol; do
        command -v "$b" > /dev/null || [ -x "/usr/sbin/$b" ] || skip "$b not found after installing slurm-wlm and munge"
    done
    export PATH=$PATH:/usr/sbin
    [ -r /etc/munge/munge.key ] || skip "/etc/munge/munge.key missing (the munge package creates it)"

    [ -n "${ED_TMP:-}" ] || scratch
    : "${ED_TMP:?scratch made no directory}"
    daemon_pids=()
    stop_daemons() {
        # Jobs first (their ranks are children of slurmd's steps), then the daemons, by PID.
        if [ -n "${SLURM_CONF:-}" ] && [ -n "$(squeue -h 2>/dev/null)" ]; then
            scancel --quiet --user=root 2>/dev/null
            for _ in $(seq 1 40); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.5; done
        fi
        local pid
        for pid in "${daemon_pids[@]}"; do kill "$pid" 2>/dev/null; done
        for pid in "${daemon_pids[@]}"; do
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null
        done
        return 0
    }
    # set +e: a daemon already gone must not turn a passed test into a failure (errexit in a trap).
    trap 'status=$?; set +e; stop_daemons; [ -n "${ED_KEEP_TMP:-}" ] || rm -rf "$ED_TMP"; exit $status' EXIT
    chmod 755 "$ED_TMP"
    mkdir -p "$ED_TMP/munge" "$ED_TMP/state" "$ED_TMP/spool"
    chown munge:munge "$ED_TMP/munge"

    # munged as the munge user, on a socket of its own (another munged may run on this machine).
    sock=$ED_TMP/munge/socket
    runuser -u munge -- munged --socket="$sock" --pid-file="$ED_TMP/munge/pid" \
        --log-file="$ED_TMP/munge/log" --seed-file="$ED_TMP/munge/seed" \
        || skip "munged did not start: $(tail -2 "$ED_TMP/munge/log" 2>/dev/null)"
    daemon_pids+=("$(cat "$ED_TMP/munge/pid")")
    munge -n -S "$sock" | unmunge -S "$sock" > /dev/null || skip "munge -n | unmunge fails on $sock"

    # Two free TCP ports (other copies of this test may run at the same time).
    port_in_use() { (exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null; }
    for _ in $(seq 1 50); do
        ctld_port=$((20000 + RANDOM % 30000))
        port_in_use "$ctld_port" || port_in_use $((ctld_port + 1)) || break
    done
    cat > "$ED_TMP/slurm.conf" <<EOF
ClusterName=edtest
SlurmctldHost=localhost
SlurmctldPort=$ctld_port
SlurmdPort=$((ctld_port + 1))
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$sock
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MailProg=/bin/true
JobRequeue=1
ReturnToService=2
MpiDefault=none
MinJobAge=3600
KillWait=15
FirstJobId=$((1000 + RANDOM % 90000))
StateSaveLocation=$ED_TMP/state
SlurmdSpoolDir=$ED_TMP/spool
SlurmctldPidFile=$ED_TMP/slurmctld.pid
SlurmdPidFile=$ED_TMP/slurmd.pid
SlurmctldLogFile=$ED_TMP/slurmctld.log
SlurmdLogFile=$ED_TMP/slurmd.log
SlurmdParameters=config_overrides
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
    # Slurm 24.11 (Debian 13) starts its cgroup plugin in slurmd even with proctrack/linuxproc
    # and task/affinity, and exits where no cgroup file system is mounted (a chroot) or where
    # systemd does not own it (a slurmd started by hand). These tests need no cgroup: turn it
    # off where Slurm knows the setting (24.05 and later; 22.05 never starts the plugin here).
    local slurm_version
    slurm_version=$(slurmd -V 2>/dev/null | awk '{print $2}')
    if [ "$(printf '%s\n' 24.05 "$slurm_version" | sort -V | head -n 1)" = 24.05 ]; then
        echo "CgroupPlugin=disabled" > "$ED_TMP/cgroup.conf"
    fi
    export SLURM_CONF=$ED_TMP/slurm.conf
    # slurmctld signals jobs near their time limit every 30 s from its start: remember when.
    ctld_start=$(date +%s.%N)
    slurmctld -D -i > "$ED_TMP/slurmctld.out" 2>&1 &
    daemon_pids+=($!)
    slurmd -D -N localhost > "$ED_TMP/slurmd.out" 2>&1 &
    daemon_pids+=($!)
    daemon_log() { tail -n 5 "$ED_TMP"/slurmctld.out "$ED_TMP"/slurmd.out "$ED_TMP"/*.log 2>/dev/null; }
    for i in $(seq 1 60); do
        [ "$(sinfo -h -n localhost -o %t 2>/dev/null)" = idle ] && break
        for pid in "${daemon_pids[@]:1}"; do
            kill -0 "$pid" 2>/dev/null || { daemon_log; skip "a Slurm daemon (pid $pid) exited at start (logs above)"; }
        done
        [ "$i" = 60 ] && { daemon_log; skip "the node did not become idle in 30 s (logs above)"; }
        sleep 0.5
    done
    echo "Slurm up: slurmctld port $ctld_port, $(nproc) CPUs, MpiDefault=none"
}

# scontrol show job's KEY=value (values without spaces).
job_field() { scontrol -o show job "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k {print $2; exit}'; }
ended() {
    case $1 in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | PREEMPTED | OUT_OF_MEMORY \
        | BOOT_FAIL | DEADLINE) return 0 ;; *) return 1 ;; esac
}
# wait_job JOB SECONDS: until the job is no longer pending, running or completing; prints its state.
wait_job() {
    local state
    for _ in $(seq 1 $(($2 * 2))); do
        state=$(job_field "$1" JobState)
        ended "$state" && break
        sleep 0.5
    done
    echo "$state"
}
