# The run directory refuses a different experiment, and only that: the same directory spelt
# DIR, DIR/, ./DIR or by its absolute path, a data.path spelt differently, or a changed
# parallel / checkpoint section resume; a different train.lr is refused naming the key and both
# values; a start that fails before training (a bad data.path) leaves no config.yaml behind, so
# the corrected command runs.
source "$(dirname "$0")/lib.sh"
scratch
cd "$ED_TMP"
cfg=$ED_SOURCE_DIR/tests/configs/tiny.yaml
fm=/usr/share/datasets/fashion-mnist
small=(--set ensemble.members=1 --set distill.students=[] --set train.epochs=1)

# 1. a first start that fails on its data leaves nothing that refuses the corrected command
set +e
"$ED_BIN" run "$cfg" "${small[@]}" --set checkpoint.dir=r --set data.path="$ED_TMP/nowhere" \
    > bad.log 2>&1
rc=$?
set -e
[ $rc -eq 2 ] || { cat bad.log; fail "a bad data.path exited $rc, expected 2"; }
[ ! -e r/config.yaml ] || fail "a start that failed on its data left r/config.yaml"
"$ED_BIN" run "$cfg" "${small[@]}" --set checkpoint.dir=r --set data.path=$fm > first.log 2>&1 \
    || { cat first.log; fail "the corrected command was refused"; }
echo "ok   a start that failed on its data leaves no config.yaml; the corrected command runs"

# 2. the same experiment, spelt differently: resumes (the model is complete: skipped)
for spelling in "r/" "./r" "$ED_TMP/r" "$ED_TMP//r/"; do
    for data in "$fm/" "/usr/share/datasets/../datasets/fashion-mnist"; do
        "$ED_BIN" run "$cfg" "${small[@]}" --set checkpoint.dir="$spelling" --set data.path="$data" \
            --set checkpoint.every_epochs=3 > again.log 2>&1 \
            || { cat again.log; fail "checkpoint.dir=$spelling data.path=$data was refused"; }
        grep -q "complete: skipped" again.log || { cat again.log; fail "$spelling: not skipped"; }
    done
done
echo "ok   the same directory and data spelt four and two ways, every_epochs changed: resumed"

# 3. a different experiment: refused, naming the key and both values
set +e
"$ED_BIN" run "$cfg" "${small[@]}" --set checkpoint.dir=r/ --set data.path=$fm --set train.lr=0.1 \
    > lr.log 2>&1
rc=$?
set -e
[ $rc -eq 2 ] || { cat lr.log; fail "a different train.lr exited $rc, expected 2"; }
grep -qF "r/ holds a run of another config: train.lr is 0.05 there (config.yaml) but 0.1 here" lr.log \
    || fail "the refusal does not name the key: $(cat lr.log)"
echo "ok   a different train.lr is refused naming the key and both values"

# 4. a directory with a config.yaml but no model yet takes the new config
mkdir -p empty_run/models
printf 'name: other\n' > empty_run/config.yaml
"$ED_BIN" run "$cfg" "${small[@]}" --set checkpoint.dir=empty_run > empty.log 2>&1 \
    || { cat empty.log; fail "a run directory without models refused a config"; }
grep -q "^name: tiny" empty_run/config.yaml || fail "config.yaml was not replaced"
echo "ok   a directory that holds no model yet takes the new config"
# 5. config.yaml deleted, another train.lr: each model file's own config refuses it
rm r/config.yaml
set +e
"$ED_BIN" run "$cfg" "${small[@]}" --set checkpoint.dir=r --set data.path=$fm --set train.lr=0.1 \
    > lr2.log 2>&1
rc=$?
set -e
[ $rc -eq 2 ] || { cat lr2.log; fail "a finished model was reused under another train.lr (exit $rc)"; }
grep -qF "r/models/member-000.h5 was trained with train.lr = 0.05, but the config says 0.1" lr2.log \
    || fail "the refusal does not name the key: $(cat lr2.log)"
! grep -q "complete: skipped" lr2.log || fail "the old model was skipped as complete"
mkdir -p reuse/models && cp r/models/member-000.h5 reuse/models/
"$ED_BIN" run "$cfg" "${small[@]}" --set checkpoint.dir=reuse --set data.path=$fm --set distill.lr=0.02 \
    > reuse.log 2>&1 || { cat reuse.log; fail "a member was refused under another distill.lr"; }
grep -q "complete: skipped" reuse.log || { cat reuse.log; fail "the copied member was not reused"; }
echo "ok   without config.yaml, a model file refuses another train.lr naming the key; a member"
echo "     copied into a new directory serves another distill.lr (distillation did not shape it)"
echo "run_dir: all passed"
