# A layout that cannot work is refused before any work, with a message that says why.
source "$(dirname "$0")/lib.sh"
scratch
cfg=$ED_SOURCE_DIR/tests/configs/tiny.yaml
set +e
out=$(edrun 3 run "$cfg" --set checkpoint.dir="$ED_TMP/bad" --set parallel.ranks_per_model=2 2>&1)
rc=$?
set -e
[ $rc -ne 0 ] || fail "3 ranks with ranks_per_model=2 ran (exit 0)"
grep -q "ranks_per_model = 2 does not divide the 3 ranks" <<< "$out" || { echo "$out"; fail "message"; }
[ ! -e "$ED_TMP/bad/models" ] || fail "work was done before the layout was checked"
echo "refused: $(echo "$out" | grep error | head -1)"
