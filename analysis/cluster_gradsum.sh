#!/bin/bash
# The gradient sum of ranks_per_model 2 across two nodes joined by a slow link: two namespace
# nodes (tests/scripts/cluster_lib.sh, each its own CPU), every node's link shaped with tc netem
# (RATE and DELAY on the node's sending side, so each direction between the nodes has them
# once), and one rank per node started by Open MPI's mpirun through the namespace rsh agent:
#   mpirun --host node1,node2 -n 2 ensdistill bench ARCH --batch B/2 --grad-sum [--no-overlap]
# (the TCP BTL between the nodes). The overlapped and the after-backward sum alternate REPS
# times; prints, per ARCH and variant, the median over reps of the per-rep median step
# (global images/s), the time a rank spent in the sum per step and its share of the step.
#
#   bash analysis/cluster_gradsum.sh [--bin build/ensdistill] [--rate 1gbit] [--delay 100us]
#        [--batch 128] [--bucket-mb 1] [--reps 3] [--steps 10] [ARCH...]   (default: wrn-16-4 resnet-20)
# --rate none: no shaping (the veth links as they are). Root; needs iproute2 and Open MPI.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=$here/build/ensdistill rate=1gbit delay=100us batch=128 bucket=1 reps=3 steps=10
archs=()
while [ $# -gt 0 ]; do
    case $1 in
        --bin) bin=$(realpath "$2"); shift 2 ;;
        --rate) rate=$2; shift 2 ;;
        --delay) delay=$2; shift 2 ;;
        --batch) batch=$2; shift 2 ;;
        --bucket-mb) bucket=$2; shift 2 ;;
        --reps) reps=$2; shift 2 ;;
        --steps) steps=$2; shift 2 ;;
        -h | --help) sed -n '2,14p' "$0"; exit 0 ;;
        -*) echo "unknown option $1" >&2; exit 2 ;;
        *) archs+=("$1"); shift ;;
    esac
done
[ ${#archs[@]} -gt 0 ] || archs=(wrn-16-4 resnet-20)
[ -x "$bin" ] || { echo "no $bin: build first (cmake -S . -B build && cmake --build build)" >&2; exit 2; }
source "$here/tests/scripts/cluster_lib.sh"
why=$(cl_can_run) || { echo "cannot make the nodes here: $why" >&2; exit 2; }

work=$(mktemp -d /var/tmp/ensdistill-gradsum.XXXXXX)
cluster_up "$work/shared" 2
trap 'status=$?; set +e; cluster_down; rm -rf "$work"; exit $status' EXIT
link="unshaped veth"
if [ "$rate" != none ]; then
    cl_shape 1 "$rate" "$delay"
    cl_shape 2 "$rate" "$delay"
    link="$CL_SHAPED on each node's sending side"
fi
load() { cut -d' ' -f1 /proc/loadavg; }
echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(getconf _NPROCESSORS_ONLN) CPUs; load average $(load) before"
echo "2 nodes (one CPU each), one rank per node, $link; global batch $batch, $bucket MiB buckets, $reps alternating reps of $steps steps"

bench() { # ARCH OVERLAP(1/0): prints "images/s sum_ms sum_share" of one 2-rank run
    local extra=()
    [ "$2" = 1 ] || extra=(--no-overlap)
    local out
    out=$(cl_on 1 mpirun --allow-run-as-root --mca plm_rsh_agent "$(cl_agent)" --host node1,node2 \
              -n 2 --map-by node --bind-to none --mca btl self,tcp \
              "$bin" bench "$1" --batch $((batch / 2)) --threads 1 --steps "$steps" --grad-sum \
              --bucket-mb "$bucket" "${extra[@]}" 2>&1) || { echo "$out" >&2; return 1; }
    grep '^RESULT' <<< "$out" | tr ' ' '\n' | awk -F= '
        $1 == "images_per_s_median" { ips = 2 * $2 } $1 == "grad_sum_ms" { ms = $2 }
        $1 == "grad_sum_fraction" { f = $2 } END { print ips, ms, f }'
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "| arch | sum | images/s | sum ms/step | sum share of the step | reps (images/s) |"
echo "|------|-----|----------|-------------|-----------------------|-----------------|"
for arch in "${archs[@]}"; do
    declare -A res=()
    for _ in $(seq 1 "$reps"); do
        for ov in 1 0; do res[$ov]+="$(bench "$arch" "$ov")"$'\n'; done
    done
    for ov in 1 0; do
        rows=${res[$ov]%$'\n'}
        name=$([ "$ov" = 1 ] && echo overlapped || echo "after backward")
        printf '| %s | %s | %.0f | %.2f | %.1f%% | %s |\n' "$arch" "$name" \
            "$(cut -d' ' -f1 <<< "$rows" | median)" "$(cut -d' ' -f2 <<< "$rows" | median)" \
            "$(cut -d' ' -f3 <<< "$rows" | median | awk '{ print 100 * $1 }')" \
            "$(cut -d' ' -f1 <<< "$rows" | awk '{ printf "%s%.0f", (NR > 1 ? ", " : ""), $1 }')"
    done
    unset res
done
echo "load average $(load) after"
