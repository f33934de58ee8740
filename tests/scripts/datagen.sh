#!/usr/bin/env bash
# `ensdistill datagen`: writes a multi-view data set (with --set overrides) in the generic HDF5
# layout with views, tags and generator attributes, through OUT.h5.tmp; reading that file back
# with source hdf5 and writing it again gives the same data; the same seed gives the same bytes;
# bad arguments and bad configs exit 2.
source "$ED_SOURCE_DIR/tests/scripts/lib.sh"
scratch
cd "$ED_TMP"

cat > mv.yaml <<'EOF'
name: datagen-test
data:
  source: multiview
  multiview: {k: 4, d: 12, patches: 5, n_train: 300, n_test: 80, mu: 0.2, noise: orth, sigma: 0.7, seed: 5}
EOF
"$ED_BIN" datagen mv.yaml a.h5 --set data.multiview.n_train=200 > out.txt
grep -q "multiview/train: 200 x 5 x 1 x 12 float32, 4 classes" out.txt || fail "summary: $(cat out.txt)"
[ -f a.h5 ] && [ ! -e a.h5.tmp ] || fail "a.h5 missing or a.h5.tmp left behind"
"$ED_BIN" datagen mv.yaml b.h5 --set data.multiview.n_train=200 > /dev/null

# the file read back (source hdf5) and written again
cat > back.yaml <<EOF
name: datagen-back
data: {source: hdf5, path: $ED_TMP/a.h5}
EOF
"$ED_BIN" datagen back.yaml c.h5 > /dev/null

need_h5py
"$ED_PYTHON" - <<'EOF' || fail "HDF5 contents differ (see above)"
import h5py, numpy as np, sys
a, b, c = (h5py.File(n, "r") for n in ("a.h5", "b.h5", "c.h5"))
def check(cond, msg):
    if not cond:
        print("FAIL:", msg); sys.exit(1)
check(a["train/images"].shape == (200, 5, 1, 12) and a["train/images"].dtype == np.float32, "images")
check(a["test/images"].shape == (80, 5, 1, 12), "test images")
check(a["views"].shape == (4, 2, 12), "views shape")
v = a["views"][:].reshape(8, 12)
check(np.abs(v @ v.T - np.eye(8)).max() < 1e-5, "views orthonormal")
check(a.attrs["source"] == "multiview" and a.attrs["noise"] == "orth", "source/noise attrs")
check(a.attrs["num_classes"] == 4 and a.attrs["orth_noise"] == 1 and a.attrs["seed"] == 5, "attrs")
check(abs(a.attrs["sigma"] - 0.7) < 1e-12 and abs(a.attrs["noise_sigma"] - 0.7) < 1e-6, "sigma")
check("n_train: 200" in a.attrs["config"], "resolved config stored")
tags = a["train/tags"][:]
check(set(np.unique(tags)) <= {0, 1} and 0.05 < 1 - tags.mean() < 0.35, "tags %s" % tags.mean())
labels = a["train/labels"][:]
check(labels.min() >= 0 and labels.max() < 4, "labels")
for part in ("train", "test"):
    for key in ("images", "labels", "tags"):
        check(np.array_equal(a[part][key][:], b[part][key][:]), "same seed, %s/%s differ" % (part, key))
        check(np.array_equal(a[part][key][:], c[part][key][:]), "read back, %s/%s differ" % (part, key))
check(np.array_equal(a["views"][:], c["views"][:]), "views read back differ")
check(c.attrs["orth_noise"] == 1 and abs(c.attrs["noise_sigma"] - 0.7) < 1e-6, "orth noise kept")
print("ok   datagen file contents, determinism and read-back")
EOF

# bad input: exit status 2 with a message
set +e
"$ED_BIN" datagen mv.yaml > /dev/null 2> err1.txt; rc1=$?
"$ED_BIN" datagen mv.yaml x.h5 --set data.multiview.d=6 > /dev/null 2> err2.txt; rc2=$?
"$ED_BIN" datagen missing.yaml x.h5 > /dev/null 2> err3.txt; rc3=$?
"$ED_BIN" datagen mv.yaml /nonexistent-dir/x.h5 > /dev/null 2> err4.txt; rc4=$?
set -e
[ "$rc1" -eq 2 ] && grep -q "datagen needs CONFIG and OUT.h5" err1.txt || fail "missing OUT: rc $rc1: $(cat err1.txt)"
[ "$rc2" -eq 2 ] && grep -q "data.multiview.d" err2.txt || fail "d < 2k: rc $rc2: $(cat err2.txt)"
[ "$rc3" -eq 2 ] && grep -q "missing.yaml" err3.txt || fail "missing config: rc $rc3: $(cat err3.txt)"
[ "$rc4" -eq 2 ] && grep -q "/nonexistent-dir/x.h5.tmp: cannot create" err4.txt || fail "unwritable OUT: rc $rc4: $(cat err4.txt)"
[ ! -e x.h5 ] || fail "a failed datagen left x.h5"
echo "ok   datagen bad arguments exit 2"
