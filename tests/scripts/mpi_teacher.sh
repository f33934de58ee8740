# With one rank per model, the teacher logits are bitwise the same on 1, 2 and 3 ranks, and
# 3 members on 2 groups (L not a multiple of the group count) work. So is every model's final
# weights: the self student's teacher comes from whichever rank trained member 0 (on 2 ranks
# the sum control takes group 0 and the members go to group 1).
source "$(dirname "$0")/lib.sh"
need_h5py
scratch
cfg=$ED_SOURCE_DIR/tests/configs/tiny.yaml
for n in 1 2 3; do
    edrun "$n" run "$cfg" --set checkpoint.dir="$ED_TMP/r$n" --set train.epochs=1 \
        --set distill.students=[kd,self,sum] > "$ED_TMP/log$n" 2>&1 || { cat "$ED_TMP/log$n"; fail "run on $n ranks"; }
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
        assert names == ["kd-000", "member-000", "member-001", "member-002", "self-000",
                         "sum-000"], names
    for name in names:
        with h5py.File(f"{d}/r{n}/models/{name}.h5") as m:
            for k, ds in m["params"].items():
                a = ds[...]
                key = (name, k)
                if n == 1:
                    ref[key] = a
                elif a.tobytes() != ref[key].tobytes():
                    sys.exit(f"FAIL: {name} {k} on {n} ranks differs from 1 rank")
print("teacher logits and the weights of all 6 models bitwise equal on 1, 2 and 3 ranks")
PY
