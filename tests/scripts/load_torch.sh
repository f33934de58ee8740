# Checkpoints load into the equivalent PyTorch modules (analysis/load_torch.py, strict
# load_state_dict) and PyTorch's test accuracy with the loaded weights equals the accuracy
# recorded in the file (and its logits match /logits/test), for mlp, the sum-of wrapper, cnn,
# resnet-8 (BatchNorm buffers), resnet-8-proj, wrn-10-1 and mvconv with orthogonal noise.
source "$(dirname "$0")/lib.sh"
need_h5py
need_torch
"$ED_PYTHON" -c 'import yaml' 2>/dev/null || fail "python3-yaml is missing: tests/run.sh installs it"
scratch
loader=$ED_SOURCE_DIR/analysis/load_torch.py

cat > "$ED_TMP/fashion.yaml" <<'EOF'
name: load_torch
data: {source: fashion-mnist, train_limit: 128, test_limit: 100}
model: {arch: mlp, hidden: 32}
train: {epochs: 1, batch_size: 64, lr: 0.05, schedule: constant}
ensemble: {members: 1, seed: 3}
distill: {students: []}
parallel: {threads: 1}
checkpoint: {dir: unused}
EOF
cat > "$ED_TMP/mv.yaml" <<'EOF'
name: load_torch_mv
data:
  source: multiview
  multiview: {k: 4, d: 16, patches: 6, n_train: 200, n_test: 150, noise: orth, sigma: 1.0}
model: {arch: mvconv, filters: 2, init_std: 0.05}
train: {epochs: 3, batch_size: 50, lr: 1.0, schedule: constant}
ensemble: {members: 1, seed: 3}
distill: {students: []}
parallel: {threads: 1}
checkpoint: {dir: unused}
EOF

run() { # run NAME CONFIG ARGS...
    local name=$1 cfg=$2; shift 2
    "$ED_BIN" run "$cfg" --set checkpoint.dir="$ED_TMP/$name" "$@" > "$ED_TMP/$name.log" 2>&1 \
        || { cat "$ED_TMP/$name.log"; fail "$name: ensdistill run failed"; }
}

run mlp "$ED_TMP/fashion.yaml" --set 'distill.students=[sum]' --set ensemble.members=2
files=("$ED_TMP/mlp/models/member-000.h5" "$ED_TMP/mlp/models/sum-000.h5")
for arch in cnn resnet-8 resnet-8-proj wrn-10-1; do
    run "$arch" "$ED_TMP/fashion.yaml" --set model.arch=$arch
    files+=("$ED_TMP/$arch/models/member-000.h5")
done

"$ED_BIN" datagen "$ED_TMP/mv.yaml" "$ED_TMP/mv.h5" > "$ED_TMP/datagen.log" 2>&1 \
    || { cat "$ED_TMP/datagen.log"; fail "datagen"; }
run mvconv "$ED_TMP/mv.yaml" --set data.source=hdf5 --set data.path="$ED_TMP/mv.h5"
files+=("$ED_TMP/mvconv/models/member-000.h5")

# One python process for every file (importing torch is the slow part).
out=$("$ED_PYTHON" "$loader" "${files[@]}" --eval 2>&1) \
    || { echo "$out"; fail "PyTorch disagrees with a checkpoint (see DIFFERENT or the logit difference)"; }
echo "$out"
n_equal=$(grep -c "file test accuracy .*(equal)" <<< "$out" || true)
n_logits=$(grep -c "stored /logits/test: max" <<< "$out" || true)
[ "$n_equal" -eq ${#files[@]} ] || fail "$n_equal of ${#files[@]} files have an equal recorded accuracy"
[ "$n_logits" -eq ${#files[@]} ] || fail "$n_logits of ${#files[@]} files were compared with stored logits"
for arch in MLP SumOf CNN CifarResNet WideResNet MvConv; do
    grep -q "$arch with" <<< "$out" || fail "no $arch module was built"
done

# A tensor of the wrong shape is refused by strict loading.
"$ED_PYTHON" - "$ED_TMP/mlp/models/member-000.h5" "$ED_TMP/bad.h5" "$loader" <<'EOF' || fail "a wrong shape was not refused"
import shutil, sys, h5py, numpy as np
sys.path.insert(0, __import__("os").path.dirname(sys.argv[3]))
import load_torch
shutil.copy(sys.argv[1], sys.argv[2])
with h5py.File(sys.argv[2], "r+") as f:
    del f["params/fc1.bias"]
    f["params/fc1.bias"] = np.zeros(33, np.float32)
try:
    load_torch.load_checkpoint(sys.argv[2])
except RuntimeError as e:
    assert "fc1.bias" in str(e), e
    print("ok   a wrong shape is refused:", str(e).splitlines()[-1].strip())
    sys.exit(0)
sys.exit("loaded a checkpoint with a wrong shape")
EOF
echo "load_torch: all passed"
