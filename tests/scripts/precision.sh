# train.precision: bf16 is refused at start, before anything is read or written, with exit 2 and
# a message naming what is missing: on a CPU without avx512_bf16 (and AMX) the instruction set,
# on one with it the kernels this build lacks (they are not written yet). `bench --precision
# bf16` the same. fp32 is the default and is written into the resolved config that every
# checkpoint carries.
source "$(dirname "$0")/lib.sh"
scratch
cd "$ED_TMP"
cfg="$ED_SOURCE_DIR/tests/configs/tiny.yaml"

if grep -qwE 'avx512_bf16|amx_bf16' /proc/cpuinfo; then
    want="this CPU has avx512_bf16, but this build's layers run in fp32 only"
else
    want="this CPU lacks the avx512_bf16 instructions"
fi

expect_refusal() { # WHAT COMMAND...
    local what=$1; shift
    set +e
    "$@" > out.txt 2> err.txt
    local rc=$?
    set -e
    [ $rc -eq 2 ] || fail "$what exited $rc, expected 2: $(cat err.txt)"
    grep -qF "$want" err.txt || fail "$what: expected '$want' in: $(cat err.txt)"
    grep -qF "use train.precision: fp32" err.txt || fail "$what: no way out named: $(cat err.txt)"
}

expect_refusal "run with train.precision bf16" \
    $ED_MPIEXEC -n 2 "$ED_BIN" run "$cfg" --set train.precision=bf16 --set checkpoint.dir="$ED_TMP/run"
[ ! -e "$ED_TMP/run" ] || fail "a refused bf16 run wrote $(ls -R "$ED_TMP/run")"
echo "ok   run: bf16 refused at start ($want), nothing written"

expect_refusal "bench --precision bf16" "$ED_BIN" bench mlp --precision bf16 --steps 1 --warmup 0
echo "ok   bench --precision bf16 refused"

"$ED_BIN" config check "$cfg" > resolved.yaml
grep -qE '^  precision: fp32$' resolved.yaml || fail "train.precision fp32 not in the resolved config"
set +e
"$ED_BIN" config check "$cfg" --set train.precision=fp16 > /dev/null 2> err.txt; rc=$?
set -e
[ $rc -eq 2 ] && grep -qF "train.precision" err.txt || fail "precision fp16 accepted ($rc): $(cat err.txt)"
echo "ok   config: precision fp32 by default, in the resolved config; fp16 refused"
