# The transport used between nodes, and more ranks than cores: with one rank per model every
# model's weights and the teacher are bitwise equal to one rank's when the ranks talk over TCP
# (--mca btl self,tcp, as between nodes) on 2 and 4 ranks, and on 4 and 6 ranks over shared
# memory (--oversubscribe on this machine's cores). With ranks_per_model 2 the gradient sums
# go over TCP too: bitwise equal to the same layout over shared memory.
source "$(dirname "$0")/lib.sh"
need_h5py
scratch
cfg=$ED_SOURCE_DIR/tests/configs/tiny.yaml
args=(--set train.epochs=2 --set "distill.students=[kd,self,sum]")
run() { # run NAME RANKS [mpiexec flags...] -- [extra run args...]
    local name=$1 n=$2
    shift 2
    local flags=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do flags+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    $ED_MPIEXEC "${flags[@]}" -n "$n" "$ED_BIN" run "$cfg" --set checkpoint.dir="$ED_TMP/$name" \
        "${args[@]}" "$@" > "$ED_TMP/$name.log" 2>&1 || { cat "$ED_TMP/$name.log"; fail "run $name"; }
}
tcp=(--mca btl self,tcp)
run r1 1
run tcp2 2 "${tcp[@]}"
run tcp4 4 "${tcp[@]}"
run shm4 4
run shm6 6
for name in tcp2 tcp4 shm4 shm6; do same_weights "$ED_TMP/r1" "$ED_TMP/$name" "$name"; done
run dp_shm 2 -- --set parallel.ranks_per_model=2
run dp_tcp 2 "${tcp[@]}" -- --set parallel.ranks_per_model=2
same_weights "$ED_TMP/dp_shm" "$ED_TMP/dp_tcp" "ranks_per_model 2 over TCP vs shared memory"
