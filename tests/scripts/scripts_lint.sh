# The test scripts themselves: no `... | grep -q` (grep -q exits at the first match, the writer
# of the pipe then dies of SIGPIPE and pipefail fails the test although the line was there: how
# inspect_eval failed once under SANITIZE=1). Match captured output with grep -q ... <<< "$out".
source "$(dirname "$0")/lib.sh"
bad=$(grep -nE '\|[[:space:]]*grep[[:space:]]+(-[a-zA-Z]*q|--quiet)' "$ED_SOURCE_DIR"/tests/scripts/*.sh \
      | grep -v '^[^:]*scripts_lint\.sh:' | grep -vE ':[[:space:]]*#' | grep -v '^[^:]*:[0-9]*:head -1 ' || true)
[ -z "$bad" ] || fail "a pipe into grep -q (use grep -q PATTERN <<< \"\$out\"):
$bad"
echo "scripts_lint: ok"
