# Overlapped, bucketed gradient sums (ranks_per_model > 1): the buckets are fixed pieces of the
# gradient, so a run is bitwise the same with the overlap on or off, over shared memory or TCP,
# at 2 ranks per model (where any bucket size gives the same sums: a + b is b + a) and at 3
# (where the order of a three-way sum could differ and does not). The run log names the
# buckets and the method.
source "$(dirname "$0")/lib.sh"
need_h5py
scratch
cfg=$ED_SOURCE_DIR/tests/configs/tiny.yaml
args=(--set model.arch=cnn --set train.epochs=1 --set data.train_limit=384
      --set ensemble.members=2 --set "distill.students=[kd]" --set parallel.grad_bucket_mb=0.01)
run_named g2_overlap 2 -- --set parallel.ranks_per_model=2
grep -q "gradient sum: [0-9]* buckets of up to 0.01 MiB.*overlapped" "$ED_TMP/g2_overlap.log" \
    || { cat "$ED_TMP/g2_overlap.log"; fail "the run does not say how it sums the gradient"; }
run_named g2_after 2 -- --set parallel.ranks_per_model=2 --set parallel.grad_overlap=false
run_named g2_one 2 -- --set parallel.ranks_per_model=2 --set parallel.grad_bucket_mb=0
same_weights "$ED_TMP/g2_overlap" "$ED_TMP/g2_after" "2 ranks per model, overlap off"
same_weights "$ED_TMP/g2_overlap" "$ED_TMP/g2_one" "2 ranks per model, one bucket"
run_named g3_overlap 3 -- --set parallel.ranks_per_model=3
run_named g3_after 3 -- --set parallel.ranks_per_model=3 --set parallel.grad_overlap=false
run_named g3_tcp 3 "${ED_MPI_TCP[@]}" -- --set parallel.ranks_per_model=3
same_weights "$ED_TMP/g3_overlap" "$ED_TMP/g3_after" "3 ranks per model, overlap off"
same_weights "$ED_TMP/g3_overlap" "$ED_TMP/g3_tcp" "3 ranks per model over TCP"
