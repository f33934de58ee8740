# Co-distilled members resume together: a run killed with SIGKILL (one rank; mpirun stops the
# other) while they train, then stopped by SIGUSR1 inside an epoch, then run again, ends with
# every model and run.h5 bitwise equal to an uninterrupted run. The kill must land in the
# co-distillation phase: the test fails when it came after the members completed. Both modes.
# In mode checkpoints the weights are exchanged every 7 steps from the first distilling step
# (burn-in 1 epoch); an epoch is 64 steps, so the checkpoint of the end of epoch e lies
# 64 (e - 1) steps past that step: for e = 2 to 7 never a multiple of 7, between two exchanges.
# The kill comes once epoch 3 is logged; its checkpoint may not be committed yet, epoch 2's is.
# (Where the SIGUSR1 stop lands is left to timing: on an exchange 1 time in 7.)
source "$(dirname "$0")/lib.sh"
need_h5py
scratch
cfg=$ED_SOURCE_DIR/tests/configs/tiny.yaml
for mode in logits checkpoints; do
args=(--set train.epochs=8 --set data.train_limit=4096 --set distill.students=[codistill]
      --set distill.codistill.burn_in=1 --set distill.codistill.temperature=2
      --set distill.codistill.mode=$mode --set distill.codistill.period=7)
rm -rf "${ED_TMP:?}"/*
run_named ref 2

# 1. SIGKILL one rank once the co-distilled members have logged their third epoch.
start_run_until cut "$ED_TMP/cut1.log" grep -q "codistill-002 epoch    3/8" "$ED_TMP/cut1.log"
kill_one_rank cut "$ED_TMP/cut1.log"
grep -q "codistill-002 epoch    3/8" "$ED_TMP/cut1.log" || { cat "$ED_TMP/cut1.log"; fail "killed before co-distillation"; }
if grep -q "codistill-00[0-2] epoch    8/8\|phase 4" "$ED_TMP/cut1.log"; then
    cat "$ED_TMP/cut1.log"
    fail "the kill came after the co-distilled members completed: it proves nothing"
fi
echo "killed rank pid $victim during co-distillation ($(grep -c 'codistill-00. epoch' "$ED_TMP/cut1.log") member-epochs logged)"

# 2. Resume; SIGUSR1 to every rank once they train the co-distilled members again: they stop
#    together (a checkpoint inside an epoch) and exit 0.
start_run_until cut "$ED_TMP/cut2.log" grep -q "co-distillation: 3 members" "$ED_TMP/cut2.log"
stop_run cut "$ED_TMP/cut2.log"
grep -q "codistill-000 *resuming at epoch" "$ED_TMP/cut2.log" \
    || { cat "$ED_TMP/cut2.log"; fail "the co-distilled members did not resume"; }
grep -q "phase 4" "$ED_TMP/cut2.log" && { cat "$ED_TMP/cut2.log"; fail "SIGUSR1 came too late"; }

# 3. Finish, and compare.
run_named cut 2
"$ED_PYTHON" "$ED_SOURCE_DIR/analysis/compare_runs.py" "$ED_TMP/ref" "$ED_TMP/cut" \
    || fail "killed, stopped and resumed co-distillation differs from the uninterrupted run"
left=$(ls "$ED_TMP/cut/models")
grep -q next <<< "$left" && fail "a .next checkpoint was left behind: $left"
if [ "$mode" = checkpoints ]; then
    grep -q "weights of the last exchange read" "$ED_TMP/cut2.log" \
        || { cat "$ED_TMP/cut2.log"; fail "the resume after the kill did not restore the last exchange"; }
fi
echo "co-distillation ($mode) killed, stopped and resumed: bitwise the uninterrupted run"
done
