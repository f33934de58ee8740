# A resume continues only on the data its models were trained on (issue 20, point 4). An HDF5
# data file edited between a stop and the rerun (one label, one pixel, one sample fewer) used to
# be trained on without a word, and run.h5 recorded the new data's fingerprint. Now
# RUN_DIR/data.fingerprint, written at the first start, is compared once the data loads: the
# rerun exits 2 naming the RUN_DIR, the data file and what changed; --set cannot bring other
# data into the RUN_DIR either; with the data restored the same command resumes.
source "$(dirname "$0")/lib.sh"
need_h5py
scratch
cd "$ED_TMP"
cfg=$ED_SOURCE_DIR/tests/configs/tiny.yaml
"$ED_BIN" datagen "$cfg" data.h5 > /dev/null
cp data.h5 data.orig.h5
args=(--set data.source=hdf5 --set data.path="$ED_TMP/data.h5" --set ensemble.members=2
      --set distill.students=[] --set train.epochs=2 --set checkpoint.dir=r)
"$ED_BIN" run "$cfg" "${args[@]}" > first.log 2>&1 || { cat first.log; fail "first run"; }
rm r/models/member-001.h5 # as if stopped before member-001 was trained

# refused_with WHAT WANT [args...]: the rerun exits 2 naming the data and WANT
refused_with() {
    local what=$1 want=$2 rc; shift 2
    set +e
    "$ED_BIN" run "$cfg" "${args[@]}" "$@" > rerun.log 2>&1
    rc=$?
    set -e
    [ $rc -eq 2 ] || { tail -3 rerun.log; fail "$what: the resume exited $rc, expected 2"; }
    grep -qF -- "$want" rerun.log || { cat rerun.log; fail "$what: expected '$want'"; }
    ! grep -qE "^member-001 +epoch" rerun.log || fail "$what: member-001 trained on the changed data"
    echo "ok   $what: $(grep -m1 error rerun.log | cut -c1-220)..."
}
edit() { "$ED_PYTHON" -c "import h5py, sys
with h5py.File('data.h5', 'r+') as f:
    $1" ; }
prefix="r holds models trained on other data than data.path $ED_TMP/data.h5 (hdf5) gives now:"
edit 'y = f["train/labels"]; y[5] = (y[5] + 1) % 10'
refused_with "one training label changed" "$prefix the training labels differ (train_labels: "
cp data.orig.h5 data.h5
edit 'x = f["train/images"]; v = x[7]; v.flat[100] ^= 1; x[7] = v'
refused_with "one training pixel changed" "$prefix the training samples differ (their labels do not) (train_samples: "
cp data.orig.h5 data.h5
edit 'y = f["test/labels"]; y[0] = (y[0] + 1) % 10'
refused_with "one test label changed" "$prefix the test labels differ (test_labels: "
"$ED_PYTHON" -c "import h5py
with h5py.File('data.orig.h5', 'r') as a, h5py.File('data.h5', 'w') as b:
    for k, v in a.attrs.items(): b.attrs[k] = v
    for p in ('train', 'test'):
        n = len(a[p + '/labels']) - (p == 'train')
        b[p + '/images'] = a[p + '/images'][:n]
        b[p + '/labels'] = a[p + '/labels'][:n]"
refused_with "one training sample fewer" "$prefix the number of training samples differs (train: 767 here, 768 there)"
cp data.orig.h5 other.h5
"$ED_PYTHON" -c "import h5py
with h5py.File('other.h5', 'r+') as f:
    y = f['train/labels']; y[5] = (y[5] + 1) % 10"
cp data.orig.h5 data.h5
refused_with "--set data.path=other.h5" "data.path is" --set data.path="$ED_TMP/other.h5"

"$ED_BIN" run "$cfg" "${args[@]}" > resumed.log 2>&1 || { cat resumed.log; fail "the resume on the restored data"; }
grep -qE "^member-001 +epoch +2/2" resumed.log || { cat resumed.log; fail "member-001 did not train on the restored data"; }
grep -q "train_labels=" r/data.fingerprint || fail "no data.fingerprint: $(ls r)"
echo "ok   the restored data resumes"
echo "data_changed: all passed"
