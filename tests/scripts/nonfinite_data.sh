# Data that is not finite is refused before anything trains: float images holding NaN or Inf
# in an HDF5 data file (train or test, first sample index named), and non-finite view vectors.
# `datagen` and `run` both stop with exit 2 naming the file, the dataset and the sample, and
# the run directory is left without a config.yaml that would refuse the corrected command.
source "$(dirname "$0")/lib.sh"
need_h5py
scratch
cd "$ED_TMP"
"$ED_PYTHON" - <<'PY'
import h5py, numpy as np
rng = np.random.default_rng(1)
def write(path, part=None, sample=None, value=None, views=None):
    with h5py.File(path, "w") as f:
        for p, n in (("train", 40), ("test", 16)):
            x = rng.standard_normal((n, 1, 4, 4)).astype(np.float32)
            if p == part:
                x[sample, 0, 2, 1] = value
            f[f"{p}/images"] = x
            f[f"{p}/labels"] = (np.arange(n) % 3).astype(np.int32)
        f.attrs["num_classes"] = 3
write("good.h5")
write("nan_train.h5", "train", 7, np.nan)
write("inf_test.h5", "test", 3, -np.inf)
write("nan_late.h5", "train", 39, np.nan)
PY
cfg() { printf 'name: nf\ndata: {source: hdf5, path: %s}\nmodel: {arch: mlp, hidden: 8}\ntrain: {epochs: 1, batch_size: 8}\nensemble: {members: 1}\ndistill: {students: []}\n' "$1"; }
cfg good.h5 > good.yaml
"$ED_BIN" run good.yaml --set checkpoint.dir=good_run > good.log 2>&1 || { cat good.log; fail "a finite file does not train"; }

# expect_refused CONFIG WANT: run and datagen exit 2 with WANT (fixed string) on stderr
expect_refused() {
    local file=$1 want=$2 rc
    cfg "$file" > bad.yaml
    for cmd in "run bad.yaml --set checkpoint.dir=bad_run" "datagen bad.yaml out.h5"; do
        set +e
        "$ED_BIN" $cmd > out.txt 2> err.txt
        rc=$?
        set -e
        [ $rc -eq 2 ] || { cat out.txt err.txt; fail "$cmd on $file exited $rc, expected 2"; }
        grep -qF -- "$want" err.txt || fail "$cmd on $file: expected '$want' in: $(cat err.txt)"
    done
    [ ! -e bad_run/config.yaml ] || fail "a run refused for its data left bad_run/config.yaml"
    [ ! -e out.h5 ] || fail "datagen wrote out.h5 from non-finite data"
}
expect_refused nan_train.h5 "nan_train.h5: /train/images: sample 7 holds a value that is not finite (nan at [0, 2, 1])"
expect_refused inf_test.h5 "inf_test.h5: /test/images: sample 3 holds a value that is not finite (-inf at [0, 2, 1])"
expect_refused nan_late.h5 "nan_late.h5: /train/images: sample 39 holds a value that is not finite"
# a limit that leaves the bad sample out trains
cfg nan_late.h5 > late.yaml
"$ED_BIN" run late.yaml --set checkpoint.dir=late_run --set data.train_limit=39 > late.log 2>&1 \
    || { cat late.log; fail "the sample beyond data.train_limit was checked"; }
echo "ok   NaN / Inf images refused naming file, dataset and sample; unused samples are not"

# view vectors of multi-view data
printf 'name: mvnf\ndata:\n  source: multiview\n  multiview: {k: 3, d: 8, patches: 4, n_train: 30, n_test: 10}\n' > mv.yaml
"$ED_BIN" datagen mv.yaml mv.h5 > /dev/null
"$ED_PYTHON" -c "
import h5py, numpy as np
with h5py.File('mv.h5', 'r+') as f:
    v = f['views'][()]; v[1, 0, 3] = np.nan; f['views'][...] = v
"
printf 'name: mvnf\ndata: {source: hdf5, path: mv.h5}\nmodel: {arch: mvconv}\n' > mvbad.yaml
set +e
"$ED_BIN" datagen mvbad.yaml out.h5 > out.txt 2> err.txt; rc=$?
set -e
[ $rc -eq 2 ] && grep -qF "mv.h5: /views: class 1 holds a value that is not finite" err.txt \
    || fail "non-finite views: exit $rc: $(cat err.txt)"
echo "ok   non-finite view vectors refused"
echo "nonfinite_data: all passed"
