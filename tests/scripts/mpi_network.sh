# The transport used between nodes, and more ranks than cores: with one rank per model every
# model's weights and the teacher are bitwise equal to one rank's when the ranks talk over TCP
# only (lib.sh's ED_MPI_TCP: ob1 over the self and tcp BTLs, as between nodes) on 2 and 4 ranks,
# and on 4 and 6 ranks over shared memory (--oversubscribe on this machine's cores). With
# ranks_per_model 2 the gradient sums go over TCP too: bitwise equal to the same layout over
# shared memory.
source "$(dirname "$0")/lib.sh"
need_h5py
scratch
cfg=$ED_SOURCE_DIR/tests/configs/tiny.yaml
args=(--set train.epochs=2 --set "distill.students=[kd,self,sum]")
run_named r1 1
run_named tcp2 2 "${ED_MPI_TCP[@]}"
run_named tcp4 4 "${ED_MPI_TCP[@]}"
run_named shm4 4
run_named shm6 6
for name in tcp2 tcp4 shm4 shm6; do same_weights "$ED_TMP/r1" "$ED_TMP/$name" "$name"; done
run_named dp_shm 2 -- --set parallel.ranks_per_model=2
run_named dp_tcp 2 "${ED_MPI_TCP[@]}" -- --set parallel.ranks_per_model=2
same_weights "$ED_TMP/dp_shm" "$ED_TMP/dp_tcp" "ranks_per_model 2 over TCP vs shared memory"
