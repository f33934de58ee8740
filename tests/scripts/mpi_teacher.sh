# With one rank per model, the teacher logits are bitwise the same on 1, 2 and 3 ranks, and
# 3 members on 2 groups (L not a multiple of the group count) work.
source "$(dirname "$0")/lib.sh"
need_h5py
scratch
cfg=$ED_SOURCE_DIR/tests/configs/tiny.yaml
for n in 1 2 3; do
    edrun "$n" run "$cfg" --set checkpoint.dir="$ED_TMP/r$n" --set train.epochs=1 \
        --set distill.students=[kd] > "$ED_TMP/log$n" 2>&1 || { cat "$ED_TMP/log$n"; fail "run on $n ranks"; }
done
"$ED_PYTHON" - "$ED_TMP" <<'PY'
import sys, h5py, numpy as np
d = sys.argv[1]
ref = {}
for n in (1, 2, 3):
    with h5py.File(f"{d}/r{n}/run.h5") as f:
        for k in ("train_logits", "test_logits"):
            a = f["teacher"][k][...]
            assert np.isfinite(a).all(), f"{n} ranks: non-finite teacher {k}"
            if n == 1:
                ref[k] = a
            elif a.tobytes() != ref[k].tobytes():
                i = np.argmax(np.abs(a - ref[k]))
                sys.exit(f"FAIL: teacher {k} on {n} ranks differs from 1 rank: max |diff| "
                         f"{np.abs(a - ref[k]).max():g} at flat index {i}")
        names = sorted(f["models"].keys())
        assert names == ["kd-000", "member-000", "member-001", "member-002"], names
print("teacher logits bitwise equal on 1, 2 and 3 ranks")
PY
