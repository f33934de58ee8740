# Two ranks per model: one data-parallel step equals the single-rank step on the whole batch
# (within float tolerance), and both ranks of the group end with bitwise equal weights (the run
# checks that itself and says so).
source "$(dirname "$0")/lib.sh"
need_h5py
scratch
cfg=$ED_SOURCE_DIR/tests/configs/tiny.yaml
common=(--set train.epochs=1 --set data.train_limit=64 --set train.batch_size=64
        --set ensemble.members=1 --set distill.students=[] --set model.arch=cnn)
edrun 1 run "$cfg" --set checkpoint.dir="$ED_TMP/g1" "${common[@]}" > "$ED_TMP/log1" 2>&1 \
    || { cat "$ED_TMP/log1"; fail "single-rank run"; }
edrun 2 run "$cfg" --set checkpoint.dir="$ED_TMP/g2" --set parallel.ranks_per_model=2 "${common[@]}" \
    > "$ED_TMP/log2" 2>&1 || { cat "$ED_TMP/log2"; fail "two-rank data-parallel run"; }
grep -q "bitwise identical on the 2 ranks" "$ED_TMP/log2" || { cat "$ED_TMP/log2"; fail "no weight check on the group"; }
"$ED_PYTHON" - "$ED_TMP" <<'PY'
import sys, h5py, numpy as np
d = sys.argv[1]
a = h5py.File(f"{d}/g1/models/member-000.h5")
b = h5py.File(f"{d}/g2/models/member-000.h5")
assert a.attrs["step"] == b.attrs["step"] == 1, (a.attrs["step"], b.attrs["step"])
worst = 0
for k in a["params"]:
    x, y = a["params"][k][...], b["params"][k][...]
    init_move = np.abs(x).max()
    err = np.abs(x - y).max()
    worst = max(worst, err)
    if err > 1e-5 + 1e-4 * init_move:
        sys.exit(f"FAIL: {k}: data-parallel step differs from single-rank step by {err:g}")
print(f"one data-parallel step on 2 ranks = single-rank step (max |diff| {worst:.2e})")
PY
