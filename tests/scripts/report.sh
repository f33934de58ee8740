# analysis/report.py on real runs: the tiny Fashion-MNIST config and a tiny multi-view config
# (two KD students, so every table row exists). report.md must carry the table rows with the
# numbers of run.h5, the claims and the plots; the PNGs must be PNGs; the optional inputs
# (/data/test_labels, /probe/views) switch their plots on and, when absent, leave a note; a
# directory that is not a run exits 2.
source "$(dirname "$0")/lib.sh"
need_h5py
"$ED_PYTHON" -c 'import matplotlib' 2>/dev/null || { echo "SKIP: python3-matplotlib missing"; exit 77; }
scratch
report=$ED_SOURCE_DIR/analysis/report.py

cat > "$ED_TMP/mv.yaml" <<'EOF'
name: report_mv
data:
  source: multiview
  multiview: {k: 4, d: 16, patches: 6, n_train: 200, n_test: 200, mu: 0.3, noise: orth, sigma: 1.0}
model: {arch: mvconv, filters: 2, init_std: 0.05}
train: {epochs: 4, batch_size: 50, lr: 1.0, schedule: constant}
ensemble: {members: 3, seed: 3}
distill: {students: [kd, self, sum], seeds: 2}
parallel: {threads: 1}
checkpoint: {dir: unused}
EOF

run() { # run NAME CONFIG [ARGS...]
    local name=$1 config=$2; shift 2
    "$ED_BIN" run "$config" --set checkpoint.dir="$ED_TMP/$name" "$@" > "$ED_TMP/$name.log" 2>&1 \
        || { cat "$ED_TMP/$name.log"; fail "$name: ensdistill run failed"; }
}
make_report() { # make_report RUN_DIR: runs report.py, which must succeed
    "$ED_PYTHON" "$report" "$1" > "$ED_TMP/report.log" 2>&1 \
        || { cat "$ED_TMP/report.log"; fail "report.py $1 failed"; }
    [ -s "$1/report/report.md" ] || fail "$1/report/report.md was not written"
}
is_png() { # is_png FILE: the 8 magic bytes of PNG
    [ -s "$1" ] || fail "$1 is missing"
    [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] \
        || fail "$1 is not a PNG"
}
has() { # has RUN_DIR TEXT: report.md contains TEXT
    grep -qF -- "$2" "$1/report/report.md" || fail "$1/report/report.md lacks: $2"
}
# check_rows RUN_DIR NAME...: each summary row of report.md shows the accuracy run.h5 holds
check_rows() {
    local dir=$1; shift
    "$ED_PYTHON" - "$dir" "$@" <<'EOF' || fail "report.md does not match $dir/run.h5 (above)"
import sys, h5py
d, names = sys.argv[1], sys.argv[2:]
md = open(f"{d}/report/report.md").read().splitlines()
rows = {r["name"].decode(): r for r in h5py.File(f"{d}/run.h5", "r")["results/table"][()]}
bad = 0
for n in names:
    line = next((l for l in md if l.startswith("| ") and f"(`{n}`)" in l), None)
    want = f"{100 * rows[n]['test_acc']:.2f}" if n in rows else "(no row in run.h5)"
    if line is None or want not in line:
        print(f"row {n}: expected test accuracy {want}%, report.md has {line!r}")
        bad += 1
    else:
        print(f"ok   row {n}: {want}%")
sys.exit(bad)
EOF
}
# add_labels RUN_DIR CONFIG: writes the config's test labels (and tags) into run.h5 when the
# run has none (runs from before /data/test_labels existed)
add_labels() {
    "$ED_BIN" datagen "$2" "$ED_TMP/data.h5" > "$ED_TMP/datagen.log" 2>&1 \
        || { cat "$ED_TMP/datagen.log"; fail "datagen $2"; }
    "$ED_PYTHON" - "$1/run.h5" "$ED_TMP/data.h5" <<'EOF'
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f, h5py.File(sys.argv[2], "r") as d:
    for k in ("labels", "tags"):
        if f"data/test_{k}" not in f and f"test/{k}" in d:
            f[f"data/test_{k}"] = d[f"test/{k}"][()]
EOF
}

# 1. The tiny config as the run wrote it.
run tiny "$ED_SOURCE_DIR/tests/configs/tiny.yaml"
make_report "$ED_TMP/tiny"
check_rows "$ED_TMP/tiny" single ensemble kd self sum
has "$ED_TMP/tiny" "| single model (mean ± std) (\`single\`) | 3 |"
has "$ED_TMP/tiny" "## The paper's claims, checked"
has "$ED_TMP/tiny" "| The ensemble beats a single model | test accuracy: ensemble"
has "$ED_TMP/tiny" "Mean pairwise disagreement of members"
grep -q "multi-view acc" "$ED_TMP/tiny/report/report.md" && fail "multi-view columns on Fashion-MNIST"
for p in ensemble_size learning_curves; do is_png "$ED_TMP/tiny/report/$p.png"; done
if "$ED_PYTHON" -c 'import h5py, sys; sys.exit("data/test_labels" not in h5py.File(sys.argv[1]))' \
    "$ED_TMP/tiny/run.h5"; then
    is_png "$ED_TMP/tiny/report/reliability.png"
else
    has "$ED_TMP/tiny" "reliability diagram skipped: run.h5 has no /data/test_labels"
    [ ! -e "$ED_TMP/tiny/report/reliability.png" ] || fail "reliability.png without labels"
    # With the labels the diagram is drawn, and the accuracies recomputed from every model's
    # /logits/test agree with the table (report.md lists any that differ under Notes).
    add_labels "$ED_TMP/tiny" "$ED_SOURCE_DIR/tests/configs/tiny.yaml"
    make_report "$ED_TMP/tiny"
    is_png "$ED_TMP/tiny/report/reliability.png"
fi
grep -q "the table says" "$ED_TMP/tiny/report/report.md" \
    && { grep "the table says" "$ED_TMP/tiny/report/report.md"; fail "logits disagree with the table"; }
echo "ok   tiny: table rows, claims, plots"

# 2. A multi-view run: multi-view / single-view columns, claims, ensemble of KD, views learned.
run mv "$ED_TMP/mv.yaml"
add_labels "$ED_TMP/mv" "$ED_TMP/mv.yaml"
probe=$("$ED_PYTHON" -c 'import h5py, sys; print(int("probe/views" in h5py.File(sys.argv[1])))' \
    "$ED_TMP/mv/models/member-000.h5")
if [ "$probe" = 0 ]; then
    # No probe yet: the report says so; then a known probe (classes 0: 2 views, 1: 1, 2-3: 0)
    # must come out as 1 / 1 / 2 classes with both / one / no view learned.
    make_report "$ED_TMP/mv"
    has "$ED_TMP/mv" "no model file has /probe/views"
    "$ED_PYTHON" - "$ED_TMP/mv/models" <<'EOF'
import glob, sys, h5py, numpy as np
for p in glob.glob(sys.argv[1] + "/*.h5"):
    with h5py.File(p, "r+") as f:
        if f.attrs["arch"] == b"mvconv" or f.attrs["arch"] == "mvconv":
            d = f.create_dataset("probe/views", data=np.array(
                [[0.9, 0.7], [0.8, 0.1], [0.2, 0.3], [0.0, 0.4]], np.float32))
            d.attrs["threshold"] = 0.5
EOF
    make_report "$ED_TMP/mv"
    has "$ED_TMP/mv" "| member-000 | member | 1 | 1 | 2 |"
    has "$ED_TMP/mv" "| kd-001 | kd | 1 | 1 | 2 |"
else
    make_report "$ED_TMP/mv"
    has "$ED_TMP/mv" "| member-000 | member |"
fi
check_rows "$ED_TMP/mv" single ensemble kd self sum ensemble-of-kd
has "$ED_TMP/mv" "| model | n | test accuracy | NLL | ECE | multi-view acc | single-view acc |"
has "$ED_TMP/mv" "| knowledge distillation (\`kd\`) | 2 |"
has "$ED_TMP/mv" "| Single models fail on single-view samples |"
has "$ED_TMP/mv" "| Self-distillation lies between single and KD |"
has "$ED_TMP/mv" "| single-view accuracy |"
grep -E "^\| Ensembling KD students adds little .*\*\*(PASS|FAIL|n\.a\.)\*\*" \
    "$ED_TMP/mv/report/report.md" > /dev/null || fail "no ensemble-of-KD claim"
for p in ensemble_size learning_curves reliability views_learned; do
    is_png "$ED_TMP/mv/report/$p.png"
done
echo "ok   multi-view: columns, claims, views learned, four plots"

# 3. Random features (claim 7): its two rows with a result and the note; absent elsewhere.
run rf "$ED_SOURCE_DIR/tests/configs/tiny.yaml" --set model.random_features=true
make_report "$ED_TMP/rf"
for c in "training the sum matches the ensemble" "KD does not transfer the ensemble's gain"; do
    grep -E "^\| Random features: $c \|.*\*\*(PASS|FAIL|n\.a\.)\*\*" \
        "$ED_TMP/rf/report/report.md" > /dev/null || fail "no claim-7 row: $c"
done
has "$ED_TMP/rf" "A random-feature run"
grep -q "Random features:" "$ED_TMP/tiny/report/report.md" && fail "claim 7 in a trained-features run"
echo "ok   random features: claim 7 checked"

# 4. analysis/seeds.py over runs: each margin per run, and its mean +- std, from run.h5.
"$ED_PYTHON" "$ED_SOURCE_DIR/analysis/seeds.py" "$ED_TMP/tiny" "$ED_TMP/rf" "$ED_TMP/mv" \
    > "$ED_TMP/seeds.out" 2>&1 || { cat "$ED_TMP/seeds.out"; fail "seeds.py failed"; }
"$ED_PYTHON" - "$ED_TMP/seeds.out" "$ED_TMP/tiny" "$ED_TMP/rf" "$ED_TMP/mv" <<'EOF' \
    || { cat "$ED_TMP/seeds.out"; fail "seeds.py's margins differ from run.h5 (above)"; }
import sys, h5py, numpy as np
out = open(sys.argv[1]).read()
acc = []
for d in sys.argv[2:]:
    rows = {r["name"].decode(): r["test_acc"] for r in h5py.File(f"{d}/run.h5")["results/table"][()]}
    acc.append(rows)
for label, a, b in (("ensemble - single", "ensemble", "single"), ("KD - single", "kd", "single"),
                    ("ensemble - sum", "ensemble", "sum")):
    m = [100 * (r[a] - r[b]) for r in acc]
    want = f"{np.mean(m):+.2f} ± {np.std(m, ddof=1):.2f}"
    line = next((l for l in out.splitlines() if l.startswith(label)), "")
    if want not in line:
        sys.exit(f"{label}: expected {want}, seeds.py printed {line!r}")
    print(f"ok   seeds.py {label}: {want}")
if "single-view test accuracy" not in out:
    sys.exit("no single-view table although one run is multi-view")
EOF
echo "ok   seeds.py: margins, mean +- std"
# --against: the same rows of other runs, paired in order (here tiny, rf against rf, tiny)
"$ED_PYTHON" "$ED_SOURCE_DIR/analysis/seeds.py" "$ED_TMP/tiny" "$ED_TMP/rf" \
    --against "$ED_TMP/rf" "$ED_TMP/tiny" > "$ED_TMP/against.out" 2>&1 \
    || { cat "$ED_TMP/against.out"; fail "seeds.py --against failed"; }
"$ED_PYTHON" - "$ED_TMP/against.out" "$ED_TMP/tiny" "$ED_TMP/rf" <<'EOF' \
    || { cat "$ED_TMP/against.out"; fail "seeds.py --against differs from run.h5 (above)"; }
import sys, h5py
out = open(sys.argv[1]).read().split("row by row")[1]
a, b = ({r["name"].decode(): r["test_acc"] for r in h5py.File(f"{d}/run.h5")["results/table"][()]}
        for d in sys.argv[2:])
d = [100 * (b["single"] - a["single"]), 100 * (a["single"] - b["single"])]
want = f"{d[0]:+.2f}, {d[1]:+.2f}"
line = next((l for l in out.splitlines() if l.startswith("single")), "")
if want not in line:
    sys.exit(f"single: expected the paired differences {want}, seeds.py printed {line!r}")
print(f"ok   seeds.py --against single: {want}")
EOF
set +e
"$ED_PYTHON" "$ED_SOURCE_DIR/analysis/seeds.py" "$ED_TMP/tiny" "$ED_TMP/rf" --against "$ED_TMP/rf" \
    > "$ED_TMP/against.out" 2>&1; rc=$?
set -e
[ $rc -eq 2 ] && grep -q "one run per RUN_DIR" "$ED_TMP/against.out" \
    || { cat "$ED_TMP/against.out"; fail "--against with a run missing: exit $rc, expected 2"; }
echo "ok   seeds.py --against: paired rows; a missing run refused"

# 5. Not a run: exit 2 with a message.
mkdir -p "$ED_TMP/empty"
set +e
"$ED_PYTHON" "$report" "$ED_TMP/empty" > "$ED_TMP/out" 2>&1; rc=$?
cp "$ED_TMP/mv/models/member-000.h5" "$ED_TMP/empty/run.h5"
"$ED_PYTHON" "$report" "$ED_TMP/empty" > "$ED_TMP/out2" 2>&1; rc2=$?
"$ED_PYTHON" "$report" "$ED_TMP/missing-dir" --out "$ED_TMP/o" > /dev/null 2>&1; rc3=$?
set -e
[ $rc -eq 2 ] || { cat "$ED_TMP/out"; fail "a directory without run.h5: exit $rc, expected 2"; }
grep -q "run.h5 does not exist" "$ED_TMP/out" || { cat "$ED_TMP/out"; fail "message"; }
[ $rc2 -eq 2 ] || { cat "$ED_TMP/out2"; fail "a model file as run.h5: exit $rc2, expected 2"; }
grep -q "expected 'ensdistill-run'" "$ED_TMP/out2" || { cat "$ED_TMP/out2"; fail "message"; }
[ $rc3 -eq 2 ] || fail "a missing directory: exit $rc3, expected 2"
echo "ok   not a run: exit 2 ($(cat "$ED_TMP/out"))"
echo "report: all passed"
