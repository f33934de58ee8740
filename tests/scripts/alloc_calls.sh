# No allocation in the training loop, counted in calls: tests/tools/malloccount.c (LD_PRELOAD)
# counts every malloc/calloc/realloc/memalign call of `bench` at M and at N steps; the calls
# outside oneDNN's dnnl_primitive_execute must not grow with the steps. oneDNN's own per-call
# argument map (inside dnnl_primitive_execute) is counted apart and reported, not failed.
source "$(dirname "$0")/lib.sh"
scratch
shim="$ED_BUILD_DIR/tests/libmalloccount.so"
[ -f "$shim" ] || fail "libmalloccount.so not built"
# AddressSanitizer replaces malloc itself (and must come first among the libraries): counting
# under it would count its allocator, not the program's
libs=$(ldd "$ED_BIN")
if grep -q 'libasan' <<< "$libs"; then
    echo "SKIP: a sanitizer build (AddressSanitizer owns malloc); the plain build runs this test"
    exit 77
fi
M=2 N=8

# counts ARCH THREADS STEPS [bench args]: prints "outside inside executes" of the bench process
counts() {
    local arch=$1 threads=$2 steps=$3
    shift 3
    local out="$ED_TMP/count.$arch.$threads.$steps"
    rm -f "$out"
    ED_MALLOC_COUNT_FILE="$out" LD_PRELOAD="$shim" "$ED_BIN" bench "$arch" --threads "$threads" \
        --steps "$steps" --warmup 1 "$@" > "$ED_TMP/bench.log" 2>&1 \
        || { cat "$ED_TMP/bench.log"; fail "bench $arch --steps $steps"; }
    grep -q "^malloccount ensdistill " "$out" || fail "no count from ensdistill: $(cat "$out")"
    awk '$2 == "ensdistill" {print $6, $8, $10}' "$out"
}

check() {
    local arch=$1 threads=$2
    shift 2
    read -r out_m in_m ex_m <<< "$(counts "$arch" "$threads" $M "$@")"
    read -r out_n in_n ex_n <<< "$(counts "$arch" "$threads" $N "$@")"
    local grow=$((out_n - out_m)) steps=$((N - M))
    # a call per step would grow by `steps`; the step's threads are counted alone (Open MPI's
    # progress threads allocate with time, not with steps), and their start-up may still differ
    # by a call or two between runs, so anything under one call per step is no growth
    [ "$grow" -lt "$steps" ] || fail "$arch, $threads threads: $grow more allocation calls outside" \
        "oneDNN at $N steps than at $M ($((grow / steps)) per step): something allocates in the step"
    local per_step=$(((in_n - in_m) / steps)) ex_step=$(((ex_n - ex_m) / steps))
    echo "ok   $arch $* at $threads threads: outside oneDNN $out_m calls at $M steps, $out_n at $N;" \
         "inside dnnl_primitive_execute $per_step calls per step ($ex_step executions)"
}

check cnn 1 --batch 32
check resnet-8 1 --batch 16
check resnet-8 2 --batch 16
check resnet-8 1 --batch 16 --backend blas
