# Names and paths that would put a run where it does not belong: a name of '.' or with '..' (or
# '/'), a checkpoint.dir ending in .h5 (taken for run.h5 by inspect and eval) are refused by
# config check; `inspect` of a run whose run.h5 links to a model file that is gone names it and
# exits 2.
source "$(dirname "$0")/lib.sh"
scratch
cd "$ED_TMP"
cfg=$ED_SOURCE_DIR/tests/configs/tiny.yaml

for bad in ".." "." "a/../b" "x..y" "a/b"; do
    printf 'name: "%s"\n' "$bad" > n.yaml
    set +e
    "$ED_BIN" config check n.yaml > out.txt 2> err.txt; rc=$?
    set -e
    [ $rc -eq 2 ] && grep -qF "n.yaml:1: name:" err.txt || fail "name '$bad': exit $rc: $(cat err.txt)"
done
for dir in out.h5 out.h5/ runs/x.h5; do
    set +e
    "$ED_BIN" run "$cfg" --set checkpoint.dir=$dir > out.txt 2> err.txt; rc=$?
    set -e
    [ $rc -eq 2 ] && grep -qF -- "--set checkpoint.dir: '$dir' is the run directory, but a name ending in .h5" err.txt \
        || fail "checkpoint.dir=$dir: exit $rc: $(cat err.txt)"
    [ ! -e "$dir" ] || fail "checkpoint.dir=$dir was created"
done
echo "ok   names with '.', '..' or '/' and a checkpoint.dir ending in .h5 are refused"

"$ED_BIN" run "$cfg" --set checkpoint.dir=run --set ensemble.members=2 --set train.epochs=1 \
    --set distill.students=[kd] > run.log 2>&1 || { cat run.log; fail "run"; }
"$ED_BIN" inspect run > out.txt 2>&1 || { cat out.txt; fail "inspect of an intact run"; }
rm run/models/kd-000.h5
set +e
"$ED_BIN" inspect run > out.txt 2> err.txt; rc=$?
"$ED_BIN" inspect run/run.h5 > out2.txt 2> err2.txt; rc2=$?
set -e
[ $rc -eq 2 ] || { cat out.txt err.txt; fail "inspect of a run missing a model file exited $rc"; }
grep -qF "MISSING: /models/kd-000 links to run/models/kd-000.h5, which does not exist" out.txt \
    || fail "inspect does not name the missing file: $(cat out.txt)"
grep -qF "are damaged, unreadable or missing" err.txt || fail "no error line: $(cat err.txt)"
[ $rc2 -eq 2 ] && grep -qF "MISSING: /models/kd-000" out2.txt || fail "inspect run.h5: exit $rc2: $(cat out2.txt)"
echo "ok   inspect names a model file that run.h5 links to and that is gone, and exits 2"
echo "names_paths: all passed"
