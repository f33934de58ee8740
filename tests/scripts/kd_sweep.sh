# A KD sweep in one command: distill.temperature 4 values x distill.alpha 2 values on the
# members of a finished run (distill.teacher), 2 ranks: one student per combination, each its
# own file and result row in the order T (outer), alpha (inner); a sweep student keyed by its
# seed starts like the plain run's student (the T=2, alpha=0.5 one equals it bitwise); report.py
# tabulates the sweep and plots accuracy against T per alpha; list keys round-trip and refuse
# bad items; values are compared after defaults apply (distill.lr 0 is train.lr) and row names
# carry the digits that tell the values apart.
source "$(dirname "$0")/lib.sh"
need_h5py
scratch
cfg=$ED_SOURCE_DIR/tests/configs/tiny.yaml
A=$ED_TMP/A
edrun 1 run "$cfg" --set checkpoint.dir="$A" --set distill.students=[] > "$ED_TMP/A.log" 2>&1 ||
    { cat "$ED_TMP/A.log"; fail "the teacher run failed"; }
S=$ED_TMP/S
out=$(edrun 2 run "$cfg" --set checkpoint.dir="$S" --set distill.teacher="$A" \
    --set distill.students=[kd] --set distill.temperature=1,2,4,8 --set 'distill.alpha=[0.5, 1]' 2>&1) ||
    { echo "$out"; fail "the sweep failed"; }
grep -q "phase 3: 8 student(s)" <<< "$out" || { echo "$out"; fail "not 8 students"; }
P=$ED_TMP/P
edrun 1 run "$cfg" --set checkpoint.dir="$P" --set distill.teacher="$A" --set distill.students=[kd] \
    --set distill.temperature=2 --set distill.alpha=0.5 > "$ED_TMP/P.log" 2>&1 ||
    { cat "$ED_TMP/P.log"; fail "the plain run failed"; }
"$ED_PYTHON" - "$S" "$P" <<'PY' || fail "sweep rows or files (above)"
import sys, h5py, numpy as np
S, P = sys.argv[1:]
f = h5py.File(f"{S}/run.h5", "r")
names = [n.decode() for n in f["results/table"]["name"]]
want = [f"kd T={T} alpha={a} lr=0.05" for T in (1, 2, 4, 8) for a in (0.5, 1)]
got = [n for n in names if n.startswith("kd T=")]
assert got == want, (got, want)
assert "kd" not in names and "ensemble-of-kd" not in names, names
for i in range(8):
    assert f"kd-00{i}" in names and f["models"][f"kd-00{i}"].attrs["complete"] == 1, i
a, b = h5py.File(f"{S}/models/kd-002.h5", "r"), h5py.File(f"{P}/models/kd-000.h5", "r")
for k in a["params"]:
    assert np.array_equal(a["params"][k][()], b["params"][k][()]), f"kd-002 {k} differs from the plain run's kd-000"
print("ok   8 rows in order, 8 files; T=2 alpha=0.5 equals the plain run's student bitwise")
PY
"$ED_PYTHON" "$ED_SOURCE_DIR/analysis/report.py" "$S" > "$ED_TMP/report.log" 2>&1 ||
    { cat "$ED_TMP/report.log"; fail "report.py on the sweep"; }
grep -q "^| KD students | 8 | 1 | 0.05 | 1 |" "$S/report/report.md" || fail "no sweep table in report.md"
[ "$(head -c 4 "$S/report/kd_sweep.png" | od -An -tx1 | tr -d ' \n')" = "89504e47" ] || fail "kd_sweep.png"
echo "ok   report.py: sweep table and kd_sweep.png"
out=$("$ED_BIN" config check "$cfg" --set distill.lr=0.01,0.02 --set distill.alpha=1) ||
    fail "config check of a list"
grep -q "^  lr: \[0.01, 0.02\]$" <<< "$out" || { echo "$out"; fail "lr list not dumped as a list"; }
grep -q "^  alpha: 1.0$" <<< "$out" || { echo "$out"; fail "one alpha not dumped as a scalar"; }
for bad in "distill.temperature=2,2:listed twice" "distill.alpha=0.5,1.5:must be in [0, 1], got 1.5" \
           "distill.lr=[]:needs a number"; do
    set +e
    msg=$("$ED_BIN" config check "$cfg" --set "${bad%%:*}" 2>&1)
    rc=$?
    set -e
    [ $rc -eq 2 ] && grep -qF -- "${bad#*:}" <<< "$msg" || { echo "$msg"; fail "--set ${bad%%:*}: exit $rc"; }
done
# Sweep values compared as they apply (issue 20, point 6): distill.lr 0 is train.lr (0.05 here)
set +e
msg=$("$ED_BIN" config check "$cfg" --set 'distill.lr=[0, 0.05]' 2>&1)
rc=$?
set -e
[ $rc -eq 2 ] && grep -qF -- "--set distill.lr: 0 and 0.05 are the same learning rate once 0 means train.lr (0.05)" <<< "$msg" \
    || { echo "$msg"; fail "distill.lr [0, 0.05] with train.lr 0.05: exit $rc"; }
# ... and row names tell apart values that print alike under %g
U=$ED_TMP/U
edrun 1 run "$cfg" --set checkpoint.dir="$U" --set distill.teacher="$A" --set distill.students=[kd] \
    --set 'distill.temperature=[4.0000001, 4.0000002]' --set distill.epochs=1 > "$ED_TMP/U.log" 2>&1 ||
    { cat "$ED_TMP/U.log"; fail "the sweep of close temperatures failed"; }
"$ED_PYTHON" - "$U" <<'PY' || fail "row names of close temperatures (above)"
import sys, h5py
names = [n.decode() for n in h5py.File(f"{sys.argv[1]}/run.h5", "r")["results/table"]["name"]]
want = ["kd T=4.0000001 alpha=0.9 lr=0.05", "kd T=4.0000002 alpha=0.9 lr=0.05"]
assert [n for n in names if n.startswith("kd T=")] == want, names
print("ok   distill.lr [0, 0.05] is refused with train.lr 0.05; close temperatures get unique rows")
PY
echo "kd_sweep: all passed"
