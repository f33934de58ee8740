#!/usr/bin/env bash
# `ensdistill config`: check of a bad file exits 2 with FILE:LINE on stderr; check of a good
# file prints the resolved YAML (--set applied) that checks again to the same text and that
# PyYAML reads with the right types; docs list every section's keys.
source "$ED_SOURCE_DIR/tests/scripts/lib.sh"
scratch
cd "$ED_TMP"

# a bad file: exit status 2, the message on stderr, nothing on stdout
printf 'name: t\ntrain:\n  epochs: 3\n  lrr: 0.1\n' > bad.yaml
set +e
"$ED_BIN" config check bad.yaml > out.txt 2> err.txt
rc=$?
set -e
[ "$rc" -eq 2 ] || fail "config check of a bad file exited $rc, expected 2"
grep -qF "bad.yaml:4: unknown key 'train.lrr' (did you mean 'train.lr'?)" err.txt ||
    fail "unexpected message: $(cat err.txt)"
[ ! -s out.txt ] || fail "a bad config printed to stdout: $(cat out.txt)"

# a bad --set
set +e
"$ED_BIN" config check bad.yaml --set train.lrr=1 > /dev/null 2> err.txt; rc=$?
"$ED_BIN" config check /dev/null --set train.epochs=ten > /dev/null 2> err2.txt; rc2=$?
set -e
[ "$rc" -eq 2 ] && [ "$rc2" -eq 2 ] || fail "bad --set exited $rc / $rc2, expected 2"
grep -qF "bad.yaml:4: unknown key 'train.lrr'" err.txt || fail "the file's error comes first: $(cat err.txt)"
grep -qF -- "--set train.epochs=ten: expected an integer, got 'ten'" err2.txt || fail "bad --set: $(cat err2.txt)"

# a good file with overrides: resolved YAML; checking that output gives the same text
printf 'name: good\ntrain:\n  epochs: 3\n' > good.yaml
"$ED_BIN" config check good.yaml --set train.batch_size=full --set distill.students=kd,self \
    --set train.lr=0.2 > resolved.yaml
grep -qx '  batch_size: full' resolved.yaml || fail "batch_size not full: $(grep batch_size resolved.yaml)"
grep -qx '  dir: runs/good' resolved.yaml || fail "checkpoint.dir not runs/good"
"$ED_BIN" config check resolved.yaml > again.yaml
cmp -s resolved.yaml again.yaml || fail "checking the resolved config changed it: $(diff resolved.yaml again.yaml)"

if "$ED_PYTHON" -c 'import yaml' 2>/dev/null; then
    "$ED_PYTHON" - resolved.yaml <<'PY' || fail "PyYAML reads the resolved config differently"
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
checks = [(c["name"], "good"), (c["train"]["epochs"], 3), (c["train"]["lr"], 0.2),
          (c["train"]["batch_size"], "full"), (c["distill"]["students"], ["kd", "self"]),
          (c["data"]["multiview"]["mu"], 0.05), (c["train"]["weight_decay"], 5e-4),
          (c["model"]["init_std"], 2e-4), (c["train"]["nesterov"], True), (c["data"]["path"], ""),
          (c["parallel"]["threads"], "auto")]
bad = [(got, want) for got, want in checks if got != want or type(got) != type(want)]
if bad:
    print("PyYAML differs (got, want):", bad, file=sys.stderr)
    sys.exit(1)
PY
fi

# docs: the header and every section
"$ED_BIN" config docs > docs.md
head -1 docs.md | grep -qx '| key | type | default | meaning |' || fail "docs header: $(head -1 docs.md)"
for key in name data.source data.multiview.k model.arch train.lr ensemble.members distill.students \
           parallel.threads checkpoint.dir eval.ece_bins; do
    grep -qF "| \`$key\` |" docs.md || fail "docs lack $key"
done
echo "config_cli: ok"
