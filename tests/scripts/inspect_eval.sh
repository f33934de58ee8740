# `ensdistill inspect` and `ensdistill eval` on a real run: summaries of the run directory, a
# checkpoint and run.h5; eval reproduces the accuracy recorded in the file; h5py reaches model
# tensors through run.h5's external links; a damaged file makes inspect and eval exit 2 naming it.
source "$(dirname "$0")/lib.sh"
need_h5py
scratch
cfg=$ED_SOURCE_DIR/tests/configs/tiny.yaml
run=$ED_TMP/run
"$ED_BIN" run "$cfg" --set checkpoint.dir="$run" > "$ED_TMP/run.log" 2>&1 \
    || { cat "$ED_TMP/run.log"; fail "ensdistill run"; }

# 1. the run directory
out=$("$ED_BIN" inspect "$run" 2>&1) || { echo "$out"; fail "inspect RUN_DIR exited $?"; }
echo "$out"
for m in member-000 member-001 member-002 kd-000 self-000 sum-000; do
    grep -E "^  $m .* complete .* ok \([0-9]+ datasets\)" <<< "$out" > /dev/null \
        || fail "inspect RUN_DIR: no complete, verified line for $m"
done
grep -q "6 model file(s), 6 complete" <<< "$out" || fail "inspect RUN_DIR: model count"
grep -qE "^  ensemble +member +3 " <<< "$out" || fail "inspect RUN_DIR: no results table"
grep -q "checksums     ok" <<< "$out" || fail "inspect RUN_DIR: run.h5 not verified"

# 2. one checkpoint, and run.h5 alone
out=$("$ED_BIN" inspect "$run/models/sum-000.h5" 2>&1) || { echo "$out"; fail "inspect FILE"; }
for want in "format        ensdistill-model, format_version 2" "sum of 3 nets" \
            "nets.2.fc3.weight .*\[10, 32\] .*float32" "3/3 epochs" "history" "logits        train \[768, 10\]"; do
    grep -qE "$want" <<< "$out" || { echo "$out"; fail "inspect FILE: no '$want'"; }
done
"$ED_BIN" inspect "$run/run.h5" > "$ED_TMP/runh5.txt" 2>&1 || { cat "$ED_TMP/runh5.txt"; fail "inspect run.h5"; }
grep -q "6 external links under /models" "$ED_TMP/runh5.txt" || fail "inspect run.h5: links"
echo "ok   inspect: run directory, checkpoint, run.h5"

# 3. eval reproduces the recorded accuracy, with the stored config and with --config
for args in "" "--config $cfg"; do
    out=$("$ED_BIN" eval "$run/models/member-001.h5" $args 2>&1) || { echo "$out"; fail "eval $args"; }
    got=$(echo "$out" | sed -n 's/^test accuracy \([0-9.]*\)%.*/\1/p')
    rec=$(echo "$out" | sed -n 's/^in the file   test accuracy \([0-9.]*\)%.*/\1/p')
    [ -n "$got" ] && [ "$got" = "$rec" ] || { echo "$out"; fail "eval $args: $got% vs recorded $rec%"; }
    grep -q "^NLL  " <<< "$out" && grep -q "^ECE  " <<< "$out" || fail "eval: no NLL/ECE"
done
echo "ok   eval: test accuracy $got% equals the recorded one"
out=$("$ED_BIN" eval "$run/models/member-001.h5" --set data.test_limit=100 2>&1) || fail "eval --set"
grep -q "100 samples" <<< "$out" || { echo "$out"; fail "eval --set data.test_limit=100 ignored"; }

# 4. h5py through the external links (the README's session)
"$ED_PYTHON" - "$run" <<'EOF' || fail "h5py session"
import sys, h5py, numpy as np
run = sys.argv[1]
with h5py.File(f"{run}/run.h5", "r") as f:
    w = f["models/member-002/params/fc1.weight"]
    assert w.shape == (32, 784) and w.dtype == np.float32, (w.shape, w.dtype)
    names = [n.decode() if isinstance(n, bytes) else n for n in f["results/name"][()]]
    assert "ensemble" in names, names
    t = f["teacher/test_logits"]
    assert t.shape == (256, 10), t.shape
    m = f["models/member-000"]
    assert m.attrs["format"] == "ensdistill-model" and m.attrs["complete"] == 1
print("ok   h5py: run.h5 -> models/<name>/params/..., results, teacher logits")
EOF

# 5. damage: flip bytes inside a parameter chunk of member-001
"$ED_PYTHON" - "$run/models/member-001.h5" <<'EOF' || fail "could not damage the file"
import sys, h5py
path = sys.argv[1]
with h5py.File(path, "r") as f:
    info = f["params/fc1.weight"].id.get_chunk_info(0)
with open(path, "r+b") as fh:
    fh.seek(info.byte_offset + info.size // 2)
    b = bytearray(fh.read(8))
    fh.seek(info.byte_offset + info.size // 2)
    fh.write(bytes(x ^ 0x5A for x in b))
EOF
set +e
out=$("$ED_BIN" inspect "$run" 2>&1); rc=$?
set -e
[ $rc -eq 2 ] || { echo "$out"; fail "inspect of a damaged run exited $rc, expected 2"; }
grep -qE "member-001 .*FAILED: damaged: its whole-file CRC32 does not match" <<< "$out" || { echo "$out"; fail "inspect: damage not named"; }
grep -q "error: 1 file(s) in .* are damaged" <<< "$out" || { echo "$out"; fail "inspect: no error line"; }
set +e
out=$("$ED_BIN" eval "$run/models/member-001.h5" 2>&1); rc=$?
set -e
[ $rc -eq 2 ] || { echo "$out"; fail "eval of a damaged file exited $rc, expected 2"; }
grep -q "member-001.h5: damaged: its whole-file CRC32 does not match" <<< "$out" || { echo "$out"; fail "eval: damage not named"; }
set +e
out=$("$ED_BIN" inspect "$ED_TMP/nope.h5" 2>&1); rc=$?
set -e
[ $rc -eq 2 ] && grep -q "no such file" <<< "$out" || { echo "$out"; fail "inspect of a missing file: $rc"; }
head -c 3000 "$run/models/kd-000.h5" > "$ED_TMP/trunc.h5"
set +e
out=$("$ED_BIN" inspect "$ED_TMP/trunc.h5" 2>&1); rc=$?
set -e
[ $rc -eq 2 ] && grep -q "truncated" <<< "$out" || { echo "$out"; fail "inspect of a truncated file: $rc"; }
echo "ok   damaged, truncated and missing files: exit 2 naming the file"
echo "inspect_eval: all passed"
