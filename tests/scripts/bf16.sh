# bf16 mixed precision (train.precision: bf16) end to end, wherever oneDNN can run it: natively
# on a CPU with avx512_bf16 or AMX; emulated by oneDNN on AVX-512 without them
# (ENSDISTILL_BF16_EMULATED=1); or, on a CPU without AVX-512, on oneDNN's reference kernels
# through the bf16ref library (tests/tools/bf16ref.c; oneDNN 2.6 and 3.7 alike). It skips,
# saying why, where none of these can (the sanitizer build, whose runtime must come first in
# LD_PRELOAD).
# On a small cnn (Fashion-MNIST pooled to 7x7, so the reference kernels take seconds):
# - the convolutions report bf16 and match the naive kernels, and whole models in bf16 stay
#   near fp32 (test_dnnl's bf16 cases run);
# - members train to well above chance, near fp32's accuracy;
# - run.h5 and every checkpoint record train.precision bf16;
# - the teacher and every model are bitwise equal on 1 and 2 ranks;
# - a run stopped by SIGUSR1 and resumed ends bitwise equal to the uninterrupted one;
# - resuming with fp32, reusing the teacher with fp32, and eval with fp32 are refused, naming
#   train.precision;
# - a resnet-8 (batch norm, shortcuts and residual adds in bf16) trains near fp32 and is
#   bitwise equal on 1 and 2 ranks.
source "$(dirname "$0")/lib.sh"
need_h5py
scratch
cd "$ED_TMP"
export ENSDISTILL_BF16_EMULATED=1
shim="$ED_BUILD_DIR/tests/libbf16ref.so"
probe() { # OUT COMMAND-PREFIX...: bench a few conv steps in bf16
    local out=$1
    shift
    "$@" "$ED_BIN" bench cnn --precision bf16 --input 1x8x8 --batch 2 --steps 1 --warmup 0 > "$out" 2>&1
}
if probe native.txt env; then
    grep -qwE 'avx512_bf16|amx_bf16' /proc/cpuinfo && how="native" || how="emulated by oneDNN"
    pre=(env)
elif [ -e "$shim" ] && probe ref.txt env LD_PRELOAD="$shim"; then
    how="oneDNN's reference kernels (bf16ref)"
    pre=(env LD_PRELOAD="$shim")
else
    echo "SKIP: bf16 cannot run here: $(grep -m1 error native.txt)"
    [ -e ref.txt ] && echo "and not through bf16ref either: $(grep -m1 -i 'error' ref.txt || head -1 ref.txt)"
    exit 77
fi
echo "bf16 runs here: $how"

# the kernels against the naive ones
"${pre[@]}" "$ED_BUILD_DIR/tests/test_dnnl" > dnnl.txt 2>&1 || { cat dnnl.txt; fail "test_dnnl in bf16"; }
grep -q '^bf16 convolutions: ' dnnl.txt || { cat dnnl.txt; fail "test_dnnl did not run its bf16 cases"; }
grep '^bf16 ' dnnl.txt

"$ED_PYTHON" - <<'PY'
import gzip, h5py, numpy as np
src = "/usr/share/datasets/fashion-mnist"
def part(images, labels, n):
    with gzip.open(f"{src}/{images}") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)[:n]
    with gzip.open(f"{src}/{labels}") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)[:n]
    x = x.reshape(n, 7, 4, 7, 4).mean(axis=(2, 4)).round().astype(np.uint8)
    return x[:, None], y.astype(np.int32)
with h5py.File("d.h5", "w") as f:
    for p, im, lb, n in (("train", "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 512),
                         ("test", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 256)):
        f[f"{p}/images"], f[f"{p}/labels"] = part(im, lb, n)
    f.attrs["num_classes"] = 10
PY
cfg=$ED_TMP/bf16.yaml
cat > "$cfg" <<YAML
name: bf16
data: {source: hdf5, path: $ED_TMP/d.h5}
model: {arch: cnn, hidden: 32}
train: {epochs: 3, batch_size: 32, lr: 0.05, schedule: cosine, precision: bf16}
ensemble: {members: 2, seed: 3}
distill: {students: [kd], seeds: 1}
parallel: {ranks_per_model: 1, threads: 1}
YAML
args=()
ED_MPIEXEC="${pre[*]} $ED_MPIEXEC"

# 1. trains, on 2 ranks and on 1; fp32 beside it
run_named ref 2
run_named one 1
args=(--set train.precision=fp32)
run_named fp32 2
args=()
grep -q 'bf16' "$ED_TMP/ref/config.yaml" || fail "config.yaml does not say bf16"
"$ED_PYTHON" - "$ED_TMP" <<'PY'
import sys, h5py, numpy as np
d = sys.argv[1]
acc = {}
for run in ("ref", "fp32"):
    with h5py.File(f"{d}/{run}/run.h5") as f:
        r = f["results"]
        names = [n.decode() if isinstance(n, bytes) else n for n in r["name"][...]]
        acc[run] = dict(zip(names, r["test_acc"][...]))
print("test accuracy bf16:", {k: round(float(v), 4) for k, v in acc["ref"].items()})
print("test accuracy fp32:", {k: round(float(v), 4) for k, v in acc["fp32"].items()})
b, f = acc["ref"]["single"], acc["fp32"]["single"]
if not (b > 0.4 and abs(b - f) < 0.08):
    sys.exit(f"FAIL: bf16 members {b:.4f} against fp32 {f:.4f} (want > 0.4 and within 8 points)")
for path in [f"{d}/ref/run.h5"] + [f"{d}/ref/models/{m}.h5" for m in ("member-000", "member-001", "kd-000")]:
    with h5py.File(path) as f:
        text = f.attrs["config"]
        text = text.decode() if isinstance(text, bytes) else text
        if "precision: bf16" not in text:
            sys.exit(f"FAIL: {path} does not record train.precision bf16")
print("run.h5 and every checkpoint record train.precision bf16")
PY
# bitwise on 1 and 2 ranks (the teacher and every model)
"$ED_PYTHON" "$ED_SOURCE_DIR/analysis/compare_runs.py" "$ED_TMP/ref" "$ED_TMP/one" \
    || fail "bf16 on 1 rank differs from 2 ranks"

# 2. stopped by SIGUSR1 while member-000 trains its second epoch, resumed: bitwise
start_run_until cut "$ED_TMP/cut1.log" grep -q "member-00[01] *epoch *1/3" "$ED_TMP/cut1.log"
stop_run cut "$ED_TMP/cut1.log"
grep -q "phase 4" "$ED_TMP/cut1.log" && { cat "$ED_TMP/cut1.log"; fail "SIGUSR1 came too late"; }
run_named cut 2
grep -q "resuming at epoch" "$ED_TMP/cut.log" || { cat "$ED_TMP/cut.log"; fail "nothing resumed"; }
"$ED_PYTHON" "$ED_SOURCE_DIR/analysis/compare_runs.py" "$ED_TMP/ref" "$ED_TMP/cut" \
    || fail "bf16 stopped and resumed differs from the uninterrupted run"
echo "bf16: 1 and 2 ranks bitwise equal; stopped and resumed bitwise the uninterrupted run"

# 3. what differs in precision is refused, naming it
expect_refused "resume in fp32" "train.precision" \
    $ED_MPIEXEC -n 2 "$ED_BIN" run "$cfg" --set checkpoint.dir="$ED_TMP/ref" --set train.precision=fp32
expect_refused "teacher reuse in fp32" "train.precision" \
    $ED_MPIEXEC -n 2 "$ED_BIN" run "$cfg" --set checkpoint.dir="$ED_TMP/new" \
    --set train.precision=fp32 --set distill.teacher="$ED_TMP/ref"
expect_refused "eval in fp32" "train.precision bf16" \
    "${pre[@]}" "$ED_BIN" eval "$ED_TMP/ref/models/member-000.h5" --set train.precision=fp32
"${pre[@]}" "$ED_BIN" eval "$ED_TMP/ref/models/member-000.h5" > eval.txt 2>&1 \
    || { cat eval.txt; fail "eval of a bf16 checkpoint"; }
echo "ok   eval of a bf16 checkpoint in bf16: $(grep -m1 -i 'acc' eval.txt)"

# 4. a resnet: batch norm, the shortcuts and the residual adds in bf16 too; trains, bitwise on 1
#    and 2 ranks
args=(--set model.arch=resnet-8 --set train.epochs=2 --set "distill.students=[]")
run_named res 2
run_named res1 1
run_named res32 2 -- --set train.precision=fp32
"$ED_PYTHON" "$ED_SOURCE_DIR/analysis/compare_runs.py" "$ED_TMP/res" "$ED_TMP/res1" \
    || fail "bf16 resnet-8 on 1 rank differs from 2 ranks"
"$ED_PYTHON" - "$ED_TMP" <<'PY'
import sys, h5py
acc = {}
for run in ("res", "res32"):
    with h5py.File(f"{sys.argv[1]}/{run}/run.h5") as f:
        r = f["results"]
        names = [n.decode() if isinstance(n, bytes) else n for n in r["name"][...]]
        acc[run] = dict(zip(names, r["test_acc"][...]))["single"]
print(f"resnet-8 single test accuracy: bf16 {acc['res']:.4f}, fp32 {acc['res32']:.4f}")
if not (acc["res"] > 0.3 and abs(acc["res"] - acc["res32"]) < 0.1):
    sys.exit("FAIL: bf16 resnet-8 not near fp32 (want > 0.3 and within 10 points)")
PY
echo "bf16 resnet-8: bitwise equal on 1 and 2 ranks"
