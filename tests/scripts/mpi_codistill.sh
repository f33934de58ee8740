# Co-distilled members (distill.students: [codistill]): with one rank per model, every model and
# run.h5 are bitwise the same on 1, 2 and 4 ranks (3 members: one group holds 3, 2 groups hold
# 2 + 1, 4 groups leave one idle), in mode checkpoints on 1 and 2; with the peers' term off (burn_in = epochs) codistill-000 is
# bitwise member-000 (same init, same order, the lock-step changes nothing); ranks_per_model 2
# trains them data-parallel; a run whose members cannot all be held at once is refused before
# training, with the numbers; `bench --codistill 2` reports the exchange and refuses L != ranks.
source "$(dirname "$0")/lib.sh"
need_h5py
scratch
cfg=$ED_SOURCE_DIR/tests/configs/tiny.yaml
args=(--set distill.students=[kd,codistill] --set distill.codistill.burn_in=1
      --set distill.codistill.temperature=2)
for n in 1 2 4; do run_named "r$n" "$n"; done
for n in 2 4; do
    "$ED_PYTHON" "$ED_SOURCE_DIR/analysis/compare_runs.py" "$ED_TMP/r1" "$ED_TMP/r$n" \
        || fail "co-distillation on $n ranks differs from 1 rank"
done
grep -q "codistill ensemble" "$ED_TMP/r1.log" || { cat "$ED_TMP/r1.log"; fail "no codistill rows"; }
# seeds.py pairs every co-distilled member with its independent twin (codistill-l - member-l)
"$ED_PYTHON" "$ED_SOURCE_DIR/analysis/seeds.py" "$ED_TMP/r1" "$ED_TMP/r2" > "$ED_TMP/seeds.out" 2>&1 \
    || { cat "$ED_TMP/seeds.out"; fail "seeds.py on co-distillation runs"; }
"$ED_PYTHON" - "$ED_TMP/seeds.out" "$ED_TMP/r1" "$ED_TMP/r2" <<'PY' \
    || { cat "$ED_TMP/seeds.out"; fail "seeds.py's paired margins differ from run.h5 (above)"; }
import sys, h5py, numpy as np
d = []
for run in sys.argv[2:]:
    rows = {r["name"].decode(): r["test_acc"] for r in h5py.File(f"{run}/run.h5")["results/table"][()]}
    d += [100 * (rows[f"codistill-{l:03d}"] - rows[f"member-{l:03d}"]) for l in range(3)]
want = f"all: 6 pairs, mean {np.mean(d):+.2f} ± {np.std(d, ddof=1):.2f}"
if want not in open(sys.argv[1]).read():
    sys.exit(f"expected '{want}' in seeds.py's output")
print("seeds.py paired:", want)
PY

# mode checkpoints: weights exchanged every 5 steps, each member its own order; 1 and 2 ranks
for n in 1 2; do
    run_named "k$n" "$n" -- --set distill.students=[codistill] --set distill.codistill.mode=checkpoints \
        --set distill.codistill.period=5
done
"$ED_PYTHON" "$ED_SOURCE_DIR/analysis/compare_runs.py" "$ED_TMP/k1" "$ED_TMP/k2" \
    || fail "mode checkpoints on 2 ranks differs from 1 rank"
grep -q "a peer's forward pass" "$ED_TMP/k1.log" || { cat "$ED_TMP/k1.log"; fail "no peer cost"; }

run_named off 2 -- --set distill.codistill.burn_in=3
"$ED_PYTHON" - "$ED_TMP" <<'PY'
import sys, h5py
d = sys.argv[1]
def params(run, name):
    with h5py.File(f"{d}/{run}/models/{name}.h5") as f:
        return {k: v[...].tobytes() for k, v in f["params"].items()}
assert params("off", "codistill-000") == params("off", "member-000"), \
    "FAIL: without the peers' term codistill-000 differs from member-000"
assert params("r1", "codistill-000") != params("r1", "member-000"), \
    "FAIL: the peers' term changed nothing"
print("burn_in = epochs: codistill-000 bitwise member-000; with the term on it differs")
PY

run_named dp 4 -- --set parallel.ranks_per_model=2
grep -q "codistill-00[0-2] *weights bitwise identical on the 2 ranks" "$ED_TMP/dp.log" \
    || { cat "$ED_TMP/dp.log"; fail "ranks_per_model 2: no weight check of a co-distilled member"; }

# 2000 members of 270 MiB each cannot be held by 2 groups: refused before phase 1.
if edrun 2 run "$cfg" --set checkpoint.dir="$ED_TMP/big" --set distill.students=[codistill] \
    --set model.hidden=4096 --set ensemble.members=2000 > "$ED_TMP/big.log" 2>&1; then
    fail "a run too large to hold its co-distilled members was not refused"
fi
grep -q "1000 on each of the 2 group(s); a rank would hold 1000 x .* MiB" "$ED_TMP/big.log" \
    || { cat "$ED_TMP/big.log"; fail "the refusal does not give the numbers"; }
! grep -q "epoch " "$ED_TMP/big.log" || fail "the refused run trained"
[ ! -e "$ED_TMP/big/models" ] || [ -z "$(ls "$ED_TMP/big/models")" ] || fail "the refused run wrote models"
# bench --codistill L: the exchange's share of the step, one member per rank
edrun 2 bench mlp --codistill 2 --steps 3 --warmup 1 > "$ED_TMP/bench.log" 2>&1 \
    || { cat "$ED_TMP/bench.log"; fail "bench --codistill 2 on 2 ranks"; }
grep -Eq "^codistill +2 ranks, one member each: the logit exchange .* [0-9.]+% of the step" \
    "$ED_TMP/bench.log" || { cat "$ED_TMP/bench.log"; fail "bench --codistill: no exchange share"; }
if edrun 2 bench mlp --codistill 3 --steps 1 > "$ED_TMP/bench3.log" 2>&1; then
    fail "bench --codistill 3 on 2 ranks was not refused"
fi
grep -q "one member per rank: start it with mpirun -n L" "$ED_TMP/bench3.log" \
    || { cat "$ED_TMP/bench3.log"; fail "bench --codistill 3 on 2 ranks: no reason given"; }

echo "co-distillation: bitwise on 1, 2 and 4 ranks; ranks_per_model 2 trains; too large refused; bench --codistill"
