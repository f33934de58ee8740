# distill.teacher: a new run directory takes the members and teacher of a finished run (read
# and verified, nothing copied) and trains only its students, on 2 ranks; its run.h5 records
# the teacher run and the data fingerprint and links the members' files. Refused, naming what
# differs: another config section, other data under the same config (a label changed in the
# HDF5 file), a teacher whose stored logits were changed, a missing member, its own directory;
# a teacher whose data.path was relative serves the same file named by its absolute path.
source "$(dirname "$0")/lib.sh"
need_h5py
scratch
cfg=$ED_SOURCE_DIR/tests/configs/tiny.yaml
A=$ED_TMP/A
out=$(edrun 1 run "$cfg" --set checkpoint.dir="$A" --set distill.students=[kd] 2>&1) ||
    { echo "$out"; fail "the teacher run failed"; }

# 1. New students from A: members read, not trained; the teacher bitwise A's.
B=$ED_TMP/B
out=$(edrun 2 run "$cfg" --set checkpoint.dir="$B" --set distill.teacher="$A" \
    --set distill.students=[kd,self] --set distill.temperature=2 2>&1) ||
    { echo "$out"; fail "the run from a finished teacher failed"; }
[ "$(grep -c 'read from the teacher run' <<< "$out")" -eq 3 ] || { echo "$out"; fail "members not read"; }
grep -q "bitwise the teacher .*A/run.h5 stored" <<< "$out" || { echo "$out"; fail "teacher not verified"; }
grep -qE "^member-[0-9]+ +epoch" <<< "$out" && { echo "$out"; fail "a member trained"; }
compgen -G "$B/models/member-*" > /dev/null && fail "member files in the new run directory"
"$ED_PYTHON" - "$A" "$B" <<'PY' || fail "run.h5 of the new run (above)"
import os, sys, h5py, numpy as np
a, b = (h5py.File(os.path.join(d, "run.h5"), "r") for d in sys.argv[1:])
rows = lambda f: {r["name"].decode(): r for r in f["results/table"][()]}
ra, rb = rows(a), rows(b)
assert b.attrs["teacher_run"] == os.path.realpath(sys.argv[1]), b.attrs["teacher_run"]
assert b.attrs["teacher_run_revision"] == a.attrs["code_revision"]
assert b.attrs["data_fingerprint"] == a.attrs["data_fingerprint"]
assert "train_hash=" in a.attrs["data_fingerprint"], a.attrs["data_fingerprint"]
for k in ("train_logits", "test_logits"):
    assert np.array_equal(a["teacher/" + k][()], b["teacher/" + k][()]), k
for n in ("single", "ensemble"):
    assert ra[n]["test_acc"] == rb[n]["test_acc"], n
assert "self" in rb and "kd" in rb
link = b["models"].get("member-001", getlink=True)
assert link.filename == os.path.realpath(sys.argv[1]) + "/models/member-001.h5", link.filename
assert b["models/member-001"].attrs["complete"] == 1
print("ok   run.h5: teacher_run, fingerprint, teacher logits and member rows equal A's")
PY

expect_refusal() { # expect_refusal WHAT PATTERN ARGS...: exit 2 with PATTERN in the message
    local what=$1 pattern=$2; shift 2
    set +e
    out=$(edrun 1 run "$@" 2>&1)
    local rc=$?
    set -e
    [ $rc -eq 2 ] || { echo "$out"; fail "$what: exit $rc, expected 2"; }
    grep -q -- "$pattern" <<< "$out" || { echo "$out"; fail "$what: message lacks '$pattern'"; }
    echo "ok   refused, $what: $(grep -m1 'error' <<< "$out")"
}
# 2. Another config section.
expect_refusal "another train_limit" "data.train_limit: 700 here, 768 there" "$cfg" \
    --set checkpoint.dir="$ED_TMP/C" --set distill.teacher="$A" --set data.train_limit=700
# 3. Other data under the same config: one training label changed in the data file.
"$ED_BIN" datagen "$cfg" "$ED_TMP/data.h5" > /dev/null
D=$ED_TMP/D
edrun 1 run "$cfg" --set checkpoint.dir="$D" --set data.source=hdf5 --set data.path="$ED_TMP/data.h5" \
    --set distill.students=[] > "$ED_TMP/D.log" 2>&1 || { cat "$ED_TMP/D.log"; fail "run D"; }
"$ED_PYTHON" -c 'import h5py, sys
with h5py.File(sys.argv[1], "r+") as f:
    y = f["train/labels"]; y[5] = (y[5] + 1) % 10' "$ED_TMP/data.h5"
expect_refusal "a changed label" "the training labels differ (train_labels: " "$cfg" \
    --set checkpoint.dir="$ED_TMP/E" --set data.source=hdf5 --set data.path="$ED_TMP/data.h5" \
    --set distill.teacher="$D" --set distill.students=[kd]
# 4. The teacher's stored logits changed after the run.
cp -r "$A" "$ED_TMP/A2"
"$ED_PYTHON" -c 'import h5py, sys
with h5py.File(sys.argv[1], "r+") as f:
    t = f["teacher/test_logits"]; row = t[3]; row[1] += 0.5; t[3] = row' "$ED_TMP/A2/run.h5"
reseal "$ED_TMP/A2/run.h5" # else its seal refuses it before the logits are compared
expect_refusal "changed teacher logits" "is not its stored /teacher/test_logits" "$cfg" \
    --set checkpoint.dir="$ED_TMP/F" --set distill.teacher="$ED_TMP/A2" --set distill.students=[kd]
# 5. A member file missing; the run's own directory.
cp -r "$A" "$ED_TMP/A3"
rm "$ED_TMP/A3/models/member-002.h5"
expect_refusal "a missing member" "A3/models/member-002.h5 is missing: finish that run first" "$cfg" \
    --set checkpoint.dir="$ED_TMP/G" --set distill.teacher="$ED_TMP/A3" --set distill.students=[kd]
expect_refusal "its own directory" "distill.teacher is this run's own checkpoint.dir" "$cfg" \
    --set checkpoint.dir="$ED_TMP/A4" --set distill.teacher="$ED_TMP/A4" --set distill.students=[kd]
# 6. A teacher whose data.path was relative (to where it was started) serves a run that names
#    the same file by its absolute path: the data are compared by fingerprint, not path text.
"$ED_BIN" datagen "$cfg" "$ED_TMP/rel.h5" > /dev/null
rel=(--set data.source=hdf5 --set ensemble.members=2 --set train.epochs=1 --set data.train_limit=128)
(cd "$ED_TMP" && "$ED_BIN" run "$cfg" --set checkpoint.dir=R --set data.path=rel.h5 "${rel[@]}" \
    --set distill.students=[] > R.log 2>&1) || { cat "$ED_TMP/R.log"; fail "the relative-path teacher run"; }
out=$(cd / && edrun 1 run "$cfg" --set checkpoint.dir="$ED_TMP/RS" --set data.path="$ED_TMP/rel.h5" \
    "${rel[@]}" --set distill.students=[kd] --set distill.teacher="$ED_TMP/R" 2>&1) ||
    { echo "$out"; fail "a teacher with a relative data.path was refused for the same file"; }
grep -q "bitwise the teacher" <<< "$out" || { echo "$out"; fail "teacher not verified"; }
echo "ok   a teacher made with a relative data.path serves the same file named absolutely"
echo "teacher_reuse: all passed"
