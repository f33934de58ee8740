# shellcheck shell=bash
# Several "nodes" on one machine (sourced by tests/scripts/cluster.sh and reusable by other
# scripts): each node is a network namespace with one veth link to a bridge, and every command
# run on it gets its own UTS namespace with the node's hostname; a further namespace, "ctl",
# holds the bridge (the switch) and is the head node where slurmctld and the clients run.
# Nothing is added to the machine's own network namespace: only the addresses made here carry
# traffic, and two copies of a script using this never see each other (names carry a per-run
# suffix, and each copy's subnet lives in its own namespaces).
#
#   source tests/scripts/cluster_lib.sh
#   cluster_up DIR N          N nodes node1..nodeN (10.77.0.K/24), ctl (10.77.0.254); DIR is
#                             the "shared file system" (a tmpfs mounted there, seen by all;
#                             not under /tmp: every node has a /tmp of its own)
#   cl_on K CMD...            runs CMD on node K (K = ctl: the head node)
#   cl_agent                  prints the path of an rsh agent: `AGENT nodeK CMD` runs CMD on
#                             node K, as ssh would (Open MPI: --mca plm_rsh_agent AGENT; Open
#                             MPI 5 / PRRTE: --prtemca plm_rsh_agent AGENT)
#   cl_shape K RATE DELAY     tc netem on what node K sends (e.g. 1gbit 100us); cl_unshape K
#   cl_slurm_up               munged (root namespace, socket in DIR), slurmctld on ctl, one
#                             slurmd per node; waits until every node is idle
#   cl_slurm CMD...           a Slurm client (sbatch, squeue, scontrol) on the head node
#   cl_kill_node K            SIGKILL to every process of node K (a node crash); prints count
#   cl_reboot_node K          node K back after a crash: its /tmp emptied, its slurmd started
#   cluster_down              stops every process in the namespaces, munged, deletes the
#                             namespaces and links, unmounts DIR; run by the EXIT trap that
#                             cluster_up installs (also on failure), and safe to call twice
#
# Environment: CL_WRAP (words put before every command run on a node, e.g. "chroot /root2" to
# run a node's processes in another root: mount /proc, /sys, /dev inside it yourself; the node's
# own /tmp and hostname are set outside it; an mpirun inside that root calls the agent there,
# so bind CL_DIR and /run/netns into it at the same paths, and it needs iproute2 and util-linux),
# CL_CPUS=0 (do not pin node K's processes to CPU K-1 mod nproc; by default each node has one
# CPU of its own when there are enough). Needs root, iproute2 (ip, tc), util-linux (unshare).
# Prints nothing on success except what the functions say they print.

CL_NET=10.77.0

# cl_can_run: returns 0 when namespaces and veth links can be made here, else prints why.
cl_can_run() {
    [ "$(id -u)" -eq 0 ] || { echo "network namespaces need root (uid $(id -u))"; return 1; }
    local t
    for t in ip tc unshare; do
        command -v "$t" > /dev/null || [ -x "/usr/sbin/$t" ] || { echo "$t not found (iproute2, util-linux)"; return 1; }
    done
    local probe=edprobe$$ why
    why=$(ip netns add "$probe" 2>&1) || { echo "ip netns add fails here: $why"; return 1; }
    if ! why=$(ip -n "$probe" link add name pa type veth peer name pb 2>&1) \
        || ! why=$(ip netns exec "$probe" unshare --uts true 2>&1); then
        ip netns del "$probe" 2>/dev/null
        echo "veth links or UTS namespaces cannot be made here: $why"
        return 1
    fi
    ip netns del "$probe"
}

cluster_up() {
    CL_DIR=$1
    CL_N=$2
    CL_ID=ed$$x$((RANDOM % 1000))
    CL_CTL=$CL_ID-ctl
    CL_NS=()
    CL_MOUNTED=""
    CL_PIDS=()
    CL_UP=1
    export PATH=$PATH:/usr/sbin
    trap 'cl_status=$?; set +e; cluster_down; exit $cl_status' EXIT
    case $(realpath -m "$CL_DIR")/ in
        /tmp/*) echo "cluster_up: $CL_DIR is under /tmp, which every node has its own of" >&2; return 1 ;;
    esac
    mkdir -p "$CL_DIR"
    # The "shared file system": one tmpfs that every node sees (mounted before any node starts).
    mount -t tmpfs -o size=2g,mode=755 "edshared-$CL_ID" "$CL_DIR" || return 1
    CL_MOUNTED=$CL_DIR
    local k hosts
    hosts=$(printf '127.0.0.1 localhost\n%s.254 ctl\n' "$CL_NET"; for k in $(seq 1 "$CL_N"); do printf '%s.%d node%d\n' "$CL_NET" "$k" "$k"; done)
    # ip netns exec bind-mounts /etc/netns/NAME/hosts over /etc/hosts: the nodes know each
    # other's names (srun and slurmstepd resolve them), the machine's /etc/hosts is untouched.
    local ns
    for ns in "$CL_CTL" $(for k in $(seq 1 "$CL_N"); do echo "$CL_ID-n$k"; done); do
        ip netns add "$ns" || return 1
        mkdir -p "/etc/netns/$ns"
        echo "$hosts" > "/etc/netns/$ns/hosts"
        ip -n "$ns" link set lo up
        [ "$ns" = "$CL_CTL" ] || CL_NS+=("$ns")
    done
    ip -n "$CL_CTL" link add br0 type bridge || return 1
    ip -n "$CL_CTL" addr add "$CL_NET.254/24" dev br0
    ip -n "$CL_CTL" link set br0 up
    for k in $(seq 1 "$CL_N"); do
        ns=${CL_NS[k - 1]}
        ip link add eth0 netns "$ns" type veth peer name "v$k" netns "$CL_CTL" || return 1
        ip -n "$CL_CTL" link set "v$k" master br0 up
        ip -n "$ns" addr add "$CL_NET.$k/24" dev eth0
        ip -n "$ns" link set eth0 up
    done
    for k in ctl $(seq 1 "$CL_N"); do
        [ "$k" = ctl ] || k=node$k
        mkdir -p "$CL_DIR/.cluster/$k/tmp"
        chmod 1777 "$CL_DIR/.cluster/$k/tmp"
    done
    cl_write_agent
}

# cl_ns K: the namespace of node K (or ctl).
cl_ns() { if [ "$1" = ctl ]; then echo "$CL_CTL"; else echo "${CL_NS[$1 - 1]}"; fi; }

# cl_on K CMD...: CMD on node K, in the node's network namespace, with the hostname nodeK (ctl),
# pinned to the node's CPU (CL_CPUS=0: not), under CL_WRAP.
cl_on() {
    local k=$1 name=node$1 pin=()
    shift
    [ "$k" = ctl ] && name=ctl
    if [ "$k" != ctl ] && [ "${CL_CPUS:-1}" != 0 ]; then
        pin=(taskset -c $(((k - 1) % $(getconf _NPROCESSORS_ONLN))))
    fi
    # Each node has its own /tmp (Slurm's PMIx plugin names its directory there by job and
    # step only, so two nodes sharing /tmp collide), bound in the mount namespace that ip netns
    # exec makes for the command.
    # shellcheck disable=SC2086
    ip netns exec "$(cl_ns "$k")" unshare --uts "${pin[@]}" \
        sh -c 'mount --bind "$1" /tmp && hostname "$0" && shift && exec "$@"' "$name" \
        "$CL_DIR/.cluster/$name/tmp" ${CL_WRAP:-} "$@"
}

# The rsh agent: called as `AGENT [ssh options] HOST COMMAND...` (the command words joined as
# ssh would, for a shell on the host).
cl_write_agent() {
    CL_AGENT=$CL_DIR/.cluster/rsh-agent
    mkdir -p "$CL_DIR/.cluster"
    {
        echo '#!/bin/bash'
        echo "# rsh agent of cluster $CL_ID: runs a command on node K as ssh nodeK would."
        declare -p CL_NET CL_CTL CL_NS CL_N CL_DIR
        printf 'CL_WRAP=${CL_WRAP-%q} CL_CPUS=${CL_CPUS-%q}\n' "${CL_WRAP:-}" "${CL_CPUS:-1}"
        declare -f cl_ns cl_on
        cat <<'EOF'
while [ $# -gt 0 ] && [ "${1#-}" != "$1" ]; do shift; done # ssh options (-x, -T ...)
host=$1
shift
case $host in
    ctl) k=ctl ;;
    node[0-9]*) k=${host#node} ;;
    *.*.*.*) k=${host##*.}; [ "$k" = 254 ] && k=ctl ;;
    *) echo "rsh-agent: unknown host $host" >&2; exit 255 ;;
esac
[ "$k" = ctl ] || [ "$k" -le "$CL_N" ] 2>/dev/null || { echo "rsh-agent: no node $host" >&2; exit 255; }
cl_on "$k" bash -c "$*"
EOF
    } > "$CL_AGENT"
    chmod 755 "$CL_AGENT"
}
cl_agent() { echo "$CL_AGENT"; }

# cl_shape K RATE DELAY: what node K sends leaves at RATE after DELAY (netem on its eth0). With
# every node shaped, each direction between two nodes crosses one shaped link. A kernel without
# sch_netem (as on the development machines, 6.18 with only tbf and htb) gets tbf at RATE and no
# delay. Sets CL_SHAPED to what was applied.
cl_shape() {
    local ns
    ns=$(cl_ns "$1")
    if tc -n "$ns" qdisc replace dev eth0 root netem rate "$2" delay "$3" limit 100000 2>/dev/null; then
        CL_SHAPED="tc netem rate $2 delay $3"
    else
        tc -n "$ns" qdisc replace dev eth0 root tbf rate "$2" burst 256kb latency 50ms || return 1
        CL_SHAPED="tc tbf rate $2, no delay (this kernel has no sch_netem)"
    fi
}
cl_unshape() { tc -n "$(cl_ns "$1")" qdisc del dev eth0 root 2>/dev/null; return 0; }

# cl_kill_node K: SIGKILL to every process in node K's namespace; prints how many.
cl_kill_node() {
    local pids
    pids=$(ip netns pids "$(cl_ns "$1")")
    [ -n "$pids" ] && kill -9 $pids 2>/dev/null
    wc -w <<< "$pids"
}

# ---- Slurm across the nodes ----
cl_slurm() { cl_on ctl env SLURM_CONF="$SLURM_CONF" "$@"; }

cl_slurm_up() {
    local d=$CL_DIR/.cluster k
    mkdir -p "$d/munge" "$d/state" "$d/spool" "$d/log"
    chown munge:munge "$d/munge"
    CL_MUNGE_SOCK=$d/munge/socket
    runuser -u munge -- munged --socket="$CL_MUNGE_SOCK" --pid-file="$d/munge/pid" \
        --log-file="$d/munge/log" --seed-file="$d/munge/seed" || return 1
    CL_PIDS+=("$(cat "$d/munge/pid")")
    {
        cat <<EOF
ClusterName=edcluster
SlurmctldHost=ctl($CL_NET.254)
SlurmctldPort=6817
SlurmdPort=6818
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$CL_MUNGE_SOCK
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
KillWait=10
SlurmdTimeout=10
MessageTimeout=5
StateSaveLocation=$d/state
SlurmdSpoolDir=$d/spool/%n
SlurmctldPidFile=$d/slurmctld.pid
SlurmdPidFile=$d/slurmd-%n.pid
SlurmctldLogFile=$d/log/slurmctld.log
SlurmdLogFile=$d/log/slurmd-%n.log
SlurmdParameters=config_overrides
EOF
        for k in $(seq 1 "$CL_N"); do
            echo "NodeName=node$k NodeAddr=$CL_NET.$k NodeHostname=node$k CPUs=$(getconf _NPROCESSORS_ONLN) $(cl_spec "$k") State=UNKNOWN"
        done
        echo "PartitionName=debug Nodes=node[1-$CL_N] Default=YES MaxTime=INFINITE State=UP"
    } > "$d/slurm.conf"
    export SLURM_CONF=$d/slurm.conf
    cl_on ctl slurmctld -D -i > "$d/log/slurmctld.out" 2>&1 &
    CL_PIDS+=($!)
    for k in $(seq 1 "$CL_N"); do cl_start_slurmd "$k"; done
    local idle
    for _ in $(seq 1 60); do
        idle=$(cl_slurm sinfo -h -o '%t %D' 2>/dev/null)
        [ "$idle" = "idle $CL_N" ] && return 0
        sleep 0.5
    done
    tail -n 5 "$d"/log/* >&2
    echo "the $CL_N nodes did not become idle in 30 s (sinfo: $idle)" >&2
    return 1
}

# Node K's own CPU (K-1 mod nproc): every node has the machine's CPUs, the others reserved
# for the system (CpuSpecList), so that jobs bind to the node's own one.
cl_spec() {
    local n c list=""
    n=$(getconf _NPROCESSORS_ONLN)
    [ "${CL_CPUS:-1}" = 0 ] || [ "$n" -lt 2 ] && return 0
    for c in $(seq 0 $((n - 1))); do
        [ "$c" = $((($1 - 1) % n)) ] || list+=${list:+,}$c
    done
    echo "CpuSpecList=$list"
}

# cl_reboot_node K: node K comes back after a crash: its /tmp emptied and what the killed
# steps left in its spool directory removed, then its slurmd started. A requeued job keeps its
# id, and Slurm 22.05's PMIx plugin refused its step 0 on that node while the dead step's
# /tmp/spmix_appdir_0_JOB.0, SPOOL/pmix.JOB.0/ ("File exists") or socket
# SPOOL/stepd.slurm.pmix.JOB.0 ("Address already in use") were still there.
cl_reboot_node() {
    find "$CL_DIR/.cluster/node$1/tmp" -mindepth 1 -delete
    find "$CL_DIR/.cluster/spool/node$1" -mindepth 1 -maxdepth 1 \( -type s -o -name 'pmix.*' \) \
        -exec rm -rf {} +
    cl_start_slurmd "$1"
}

cl_start_slurmd() {
    mkdir -p "$CL_DIR/.cluster/spool/node$1"
    # ip netns exec mounts a sysfs of the namespace over /sys: no /sys/fs/cgroup, and slurmd
    # 22.05 stops when its cgroup plugin finds nothing there. An empty tmpfs reads as cgroup v1,
    # which proctrack/linuxproc and task/none never use.
    cl_on "$1" sh -c 'mount -t tmpfs -o size=1m cgroup /sys/fs/cgroup && mkdir /sys/fs/cgroup/systemd && mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd && exec "$@"' sh \
        slurmd -D -N "node$1" > "$CL_DIR/.cluster/log/slurmd-node$1.out" 2>&1 &
}

# Every process in the namespaces (daemons, jobs, ranks), then munged, by PID; the namespaces
# and their links; the per-namespace hosts files; the shared mount.
cluster_down() {
    [ "${CL_UP:-0}" = 1 ] || return 0
    CL_UP=0
    local ns pids pid _
    if [ -n "${SLURM_CONF:-}" ] && [ -n "${CL_CTL:-}" ]; then
        cl_slurm scancel --quiet --user=root > /dev/null 2>&1
    fi
    for ns in "${CL_NS[@]}" "$CL_CTL"; do
        pids=$(ip netns pids "$ns" 2>/dev/null)
        [ -n "$pids" ] && kill $pids 2>/dev/null
    done
    for pid in "${CL_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    for _ in $(seq 1 30); do
        pids=$(for ns in "${CL_NS[@]}" "$CL_CTL"; do ip netns pids "$ns" 2>/dev/null; done)
        for pid in "${CL_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && pids+=" $pid"; done
        [ -z "${pids// /}" ] && break
        sleep 0.2
    done
    [ -n "${pids// /}" ] && kill -9 $pids 2>/dev/null
    for ns in "${CL_NS[@]}" "$CL_CTL"; do
        ip netns del "$ns" 2>/dev/null
        rm -rf "/etc/netns/$ns"
    done
    rmdir /etc/netns 2>/dev/null
    if [ -n "$CL_MOUNTED" ]; then
        # ranks killed by SIGKILL may hold files a moment longer
        for _ in $(seq 1 20); do umount "$CL_MOUNTED" 2>/dev/null && break; sleep 0.25; done
        mountpoint -q "$CL_MOUNTED" && umount -l "$CL_MOUNTED"
    fi
    return 0
}
