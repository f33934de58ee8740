# The paper's mechanism end to end on a small multi-view problem (fixed seed): the ensemble and
# the KD student are more accurate on single-view test samples than the mean single model.
source "$(dirname "$0")/lib.sh"
need_h5py
scratch
edrun 2 run "$ED_SOURCE_DIR/configs/multiview.yaml" --set checkpoint.dir="$ED_TMP/mv" \
    --set ensemble.members=4 --set train.epochs=300 --set distill.epochs=400 \
    --set distill.students=[kd] --set data.multiview.n_test=1000 --set train.eval_every=0 \
    --set parallel.threads=1 > "$ED_TMP/log" 2>&1 || { cat "$ED_TMP/log"; fail "multiview run"; }
sed -n '/^results/,$p' "$ED_TMP/log"
"$ED_PYTHON" - "$ED_TMP/mv/run.h5" <<'PY'
import sys, h5py
t = h5py.File(sys.argv[1])["results/table"][...]
row = {r["name"].decode(): r for r in t}
single, ens, kd = row["single"], row["ensemble"], row["kd"]
print(f"single-view accuracy: single {single['acc_single']:.3f}, ensemble {ens['acc_single']:.3f}, "
      f"kd {kd['acc_single']:.3f}; multi-view: single {single['acc_multi']:.3f}")
assert single["acc_single"] < single["acc_multi"] - 0.1, "single models do not fail on single-view samples"
assert ens["acc_single"] > single["acc_single"] + 0.05, "ensemble not above the mean single model"
assert kd["acc_single"] > single["acc_single"] + 0.05, "KD not above the mean single model"
PY
