# train.precision: fp32 is the default and is written into the resolved config that every
# checkpoint carries; fp16 is refused by the config. bf16 is refused at start, before anything
# is read or written, with exit 2 and a message naming what is missing: for a model without
# convolutions (mlp: bf16 runs the convolutions), and, on a CPU without avx512_bf16 and AMX,
# the instruction set (whether oneDNN has no bf16 kernels there or would emulate them).
# `bench --precision bf16` the same. ENSDISTILL_BF16_EMULATED=round runs bf16 anywhere, saying
# so, and trains. (bf16.sh trains in bf16 where it can run.)
source "$(dirname "$0")/lib.sh"
scratch
cd "$ED_TMP"
cfg="$ED_SOURCE_DIR/tests/configs/tiny.yaml"
unset ENSDISTILL_BF16_EMULATED

# refused with the way out named: expect_refusal WHAT WANT COMMAND...
expect_refusal() {
    expect_refused "$@"
    grep -qF "use train.precision: fp32" "$ED_TMP/refused.txt" \
        || fail "$1: no way out named: $(cat "$ED_TMP/refused.txt")"
}

expect_refusal "run mlp in bf16" "model.arch mlp has none" \
    $ED_MPIEXEC -n 2 "$ED_BIN" run "$cfg" --set train.precision=bf16 --set checkpoint.dir="$ED_TMP/run"
[ ! -e "$ED_TMP/run" ] || fail "a refused bf16 run wrote $(ls -R "$ED_TMP/run")"
expect_refusal "bench mlp --precision bf16" "model.arch mlp has none" \
    "$ED_BIN" bench mlp --precision bf16 --steps 1 --warmup 0

if grep -qwE 'avx512_bf16|amx_bf16' /proc/cpuinfo; then
    echo "this CPU has avx512_bf16: bf16 runs here (bf16.sh), no CPU refusal to test"
else
    expect_refusal "run cnn in bf16" "avx512_bf16" \
        $ED_MPIEXEC -n 2 "$ED_BIN" run "$cfg" --set model.arch=cnn --set train.precision=bf16 \
        --set checkpoint.dir="$ED_TMP/run"
    [ ! -e "$ED_TMP/run" ] || fail "a refused bf16 run wrote $(ls -R "$ED_TMP/run")"
    expect_refusal "bench cnn --precision bf16" "avx512_bf16" \
        "$ED_BIN" bench cnn --precision bf16 --steps 1 --warmup 0
fi

# bf16 by rounding (ENSDISTILL_BF16_EMULATED=round) runs on any CPU oneDNN runs on, says so,
# and trains (test_dnnl checks its numbers against the bf16 kernels)
kernels=$("$ED_BIN" bench cnn --steps 1 --warmup 0 --batch 2 2>&1)
if grep -q 'onednn kernels' <<< "$kernels"; then
    ENSDISTILL_BF16_EMULATED=round $ED_MPIEXEC -n 2 "$ED_BIN" run "$cfg" --set model.arch=cnn \
        --set train.precision=bf16 --set ensemble.members=2 --set "distill.students=[kd]" \
        --set checkpoint.dir="$ED_TMP/round" > round.log 2>&1 \
        || { cat round.log; fail "bf16 by rounding did not run"; }
    grep -qF "train.precision: bf16 mixed precision, emulated by rounding" round.log \
        || { cat round.log; fail "the run does not say it emulates bf16 by rounding"; }
    single=$(awk '$1 == "single" && $2 == "member" { sub("%", "", $4); print $4 }' round.log)
    awk -v a="$single" 'BEGIN { exit !(a > 50) }' \
        || { cat round.log; fail "bf16 by rounding trained the cnn to '$single'%"; }
    echo "ok   bf16 by rounding runs on this CPU and says so; the cnn members: $single%"
else
    echo "this build has no oneDNN: bf16 by rounding not tested"
fi

"$ED_BIN" config check "$cfg" > resolved.yaml
grep -qE '^  precision: fp32$' resolved.yaml || fail "train.precision fp32 not in the resolved config"
set +e
"$ED_BIN" config check "$cfg" --set train.precision=fp16 > /dev/null 2> err.txt; rc=$?
set -e
[ $rc -eq 2 ] && grep -qF "train.precision" err.txt || fail "precision fp16 accepted ($rc): $(cat err.txt)"
echo "ok   config: precision fp32 by default, in the resolved config; fp16 refused"
