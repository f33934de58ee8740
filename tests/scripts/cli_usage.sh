# The command line as a new user meets it: every subcommand takes --help (usage on stdout, exit
# 0); a directory, an empty file or a config without a name given as CONFIG is refused naming
# it; absurd counts (ensemble.members: 1000000000) are refused by `config check`, not by an
# out-of-memory stop after the data has loaded.
source "$(dirname "$0")/lib.sh"
scratch
cd "$ED_TMP"

for cmd in run eval inspect datagen upgrade bench config; do
    for flag in --help -h; do
        set +e
        "$ED_BIN" $cmd $flag > out.txt 2> err.txt
        rc=$?
        set -e
        [ $rc -eq 0 ] || fail "$cmd $flag exited $rc: $(cat err.txt)"
        grep -q "^usage: ensdistill $cmd" out.txt || fail "$cmd $flag: no usage on stdout: $(cat out.txt)"
        [ ! -s err.txt ] || fail "$cmd $flag wrote to stderr: $(cat err.txt)"
    done
done
echo "ok   every subcommand: --help and -h print usage on stdout, exit 0"

# expect_user_error WANT ARGS...: exit 2 and WANT (a fixed string) on stderr
expect_user_error() {
    local want=$1; shift
    set +e
    "$ED_BIN" "$@" > out.txt 2> err.txt
    local rc=$?
    set -e
    [ $rc -eq 2 ] || fail "'$*' exited $rc, expected 2: $(cat err.txt)"
    grep -qF -- "$want" err.txt || fail "'$*': expected '$want' in: $(cat err.txt)"
}

mkdir adir
expect_user_error "adir: is a directory, not a config file" run adir
expect_user_error "adir: is a directory, not a config file" config check adir
: > empty.yaml
expect_user_error "empty.yaml: the file sets no key: a config needs at least 'name:'" run empty.yaml
expect_user_error "empty.yaml: the file sets no key" config check empty.yaml
printf '# only a comment\n' > comment.yaml
expect_user_error "comment.yaml: the file sets no key" config check comment.yaml
printf 'train:\n  epochs: 2\n' > noname.yaml
expect_user_error "noname.yaml: name: is required" config check noname.yaml
"$ED_BIN" config check noname.yaml --set name=given > /dev/null || fail "--set name= does not satisfy the name rule"
"$ED_BIN" config check empty.yaml --set name=given > /dev/null || fail "empty file with --set name"
echo "ok   a directory, an empty file and a config without a name are refused naming the file"

printf 'name: big\nensemble:\n  members: 1000000000\n' > big.yaml
expect_user_error "big.yaml:3: ensemble.members: must be in [1, 10000]" config check big.yaml
for kv in distill.seeds=100000000 train.epochs=2000000000 train.batch_size=2000000000 \
          model.hidden=100000000 data.multiview.n_train=2000000000 data.multiview.d=100000000 \
          data.multiview.patches=100000000 data.multiview.k=100000000 eval.batch_size=1000000000; do
    expect_user_error "--set $kv: must be in [" config check empty.yaml --set name=x --set "$kv"
done
expect_user_error "model.arch: " config check empty.yaml --set name=x --set model.arch=wrn-100000-10000
printf 'name: mv\ndata:\n  source: multiview\n  multiview:\n    n_train: 10000000\n    d: 4096\n    patches: 512\nmodel:\n  arch: mvconv\n' > mvbig.yaml
expect_user_error "data.multiview: the generated data would take" config check mvbig.yaml
echo "ok   absurd counts are refused by config check with the key and its bounds"
# A launcher of another MPI starts singletons: each would run the whole job. srun says how many
# tasks it started; a world of one among them is refused before anything is read or written.
export SLURM_STEP_NUM_TASKS=2
expect_user_error "the launcher started 2 tasks (SLURM_STEP_NUM_TASKS=2), but this one is an MPI world of 1" \
    run comment.yaml
unset SLURM_STEP_NUM_TASKS
echo "ok   a singleton among several launched tasks is refused, naming the launcher's count"
echo "cli_usage: all passed"
