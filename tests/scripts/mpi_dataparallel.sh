# Two ranks per model: one data-parallel step equals the single-rank step on the whole batch
# (within float tolerance), and both ranks of the group end with bitwise equal weights (the run
# checks that itself and says so). Again with gradient clipping on (train.clip_norm far below
# the gradient's norm): the clip sees the summed gradient, so it is the same on every rank.
source "$(dirname "$0")/lib.sh"
need_h5py
scratch
cfg=$ED_SOURCE_DIR/tests/configs/tiny.yaml
common=(--set train.epochs=1 --set data.train_limit=64 --set train.batch_size=64
        --set ensemble.members=1 --set distill.students=[] --set model.arch=cnn)
for clip in 0 0.01; do
    d=$ED_TMP/clip$clip
    edrun 1 run "$cfg" --set checkpoint.dir="$d/g1" --set train.clip_norm=$clip "${common[@]}" \
        > "$d.log1" 2>&1 || { cat "$d.log1"; fail "single-rank run (clip $clip)"; }
    edrun 2 run "$cfg" --set checkpoint.dir="$d/g2" --set train.clip_norm=$clip \
        --set parallel.ranks_per_model=2 "${common[@]}" > "$d.log2" 2>&1 \
        || { cat "$d.log2"; fail "two-rank data-parallel run (clip $clip)"; }
    grep -q "bitwise identical on the 2 ranks" "$d.log2" \
        || { cat "$d.log2"; fail "no weight check on the group"; }
done
"$ED_PYTHON" - "$ED_TMP" <<'PY'
import sys, h5py, numpy as np
d = sys.argv[1]
def params(path):
    f = h5py.File(path)
    assert f.attrs["step"] == 1, (path, f.attrs["step"])
    return {k: f["params"][k][...] for k in f["params"]}
init = None
for clip in ("0", "0.01"):
    a = params(f"{d}/clip{clip}/g1/models/member-000.h5")
    b = params(f"{d}/clip{clip}/g2/models/member-000.h5")
    worst = 0
    for k in a:
        err = np.abs(a[k] - b[k]).max()
        worst = max(worst, err)
        if err > 1e-5 + 1e-4 * np.abs(a[k]).max():
            sys.exit(f"FAIL: clip {clip}: {k}: data-parallel step differs from single-rank step by {err:g}")
    print(f"clip_norm {clip}: one data-parallel step on 2 ranks = single-rank step (max |diff| {worst:.2e})")
    if init is None:
        init = a
    else:
        # the clip did something: the clipped step differs from the free one
        moved = max(np.abs(a[k] - init[k]).max() for k in a)
        if moved == 0:
            sys.exit("FAIL: clip_norm 0.01 left the weights equal to the unclipped step's")
PY
