# Which file of src/ calls which, read from the built objects (nm: a file's undefined symbols
# against the symbols another file defines). Fails on a circle of files that call each other
# and on any call that runs up the folder order, which it reads from README's line
# "Layers, top to bottom: cli > pipeline > (data, io) > config > nn > core" (folders in
# parentheses share a level: they may call each other's files, but not in a circle). Also
# fails when README's code map lacks a file of src/.
#   ED_BUILD_DIR=build ED_SOURCE_DIR=. bash tests/scripts/layering.sh   (also run by ctest)
set -euo pipefail
: "${ED_SOURCE_DIR:?set ED_SOURCE_DIR (ctest does)}" "${ED_BUILD_DIR:?set ED_BUILD_DIR}"
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v nm >/dev/null || fail "nm not found (Debian: binutils)"
order=$(grep -m1 '^Layers, top to bottom' "$ED_SOURCE_DIR/README.md" | sed 's/^[^:]*: *//') \
    || fail "README.md has no line 'Layers, top to bottom: a > b > ...'"
# The objects of today's sources (an object whose source is gone is stale, not a caller).
objects=$(find "$ED_BUILD_DIR/CMakeFiles" -path '*/src/*' -name '*.c.o' | sort | while read -r o; do
    src=${o#*/src/}
    if [ -f "$ED_SOURCE_DIR/src/${src%.o}" ]; then echo "$o"; fi
done)
[ -n "$objects" ] || fail "no objects of src/ under $ED_BUILD_DIR/CMakeFiles: build first"
missing=$(cd "$ED_SOURCE_DIR" && find src -type f \( -name '*.c' -o -name '*.h' \) | sort | while read -r f; do
    if ! grep -q "^$f " README.md; then echo "$f"; fi
done)
[ -z "$missing" ] || fail "README's code map (## Code) has no line for: $missing"

# One line per symbol: "D|U <object> <symbol>" (global symbols only; static ones are private).
table=$(mktemp "${TMPDIR:-/tmp}/layering.XXXXXX")
trap 'rm -f "$table"' EXIT
for o in $objects; do
    nm -P --defined-only --extern-only "$o" | awk -v o="$o" '{print "D", o, $1}'
    nm -P --undefined-only "$o" | awk -v o="$o" '{print "U", o, $1}'
done >"$table"

"${ED_PYTHON:-python3}" - "$order" "$table" <<'PY'
import re
import sys

order_line, table = sys.argv[1], sys.argv[2]
level = {}  # folder -> level, 0 at the top
for depth, part in enumerate(p.strip() for p in order_line.split(">")):
    for folder in re.split(r"[(),\s]+", part):
        if folder:
            level[folder] = depth


def name(obj):  # .../ensdistill_lib.dir/src/nn/model.c.o -> nn/model.c
    return obj.split("/src/", 1)[1][: -len(".o")]


defined, undefined = {}, []
for line in open(table):
    kind, obj, sym = line.split()
    if kind == "D":
        defined.setdefault(sym, name(obj))
    else:
        undefined.append((name(obj), sym))

calls = {}  # caller file -> {callee file: [symbols]}
for caller, sym in undefined:
    callee = defined.get(sym)
    if callee and callee != caller:
        calls.setdefault(caller, {}).setdefault(callee, []).append(sym)

problems = []
folders = {f.split("/")[0] for f in list(calls) + list(defined.values())}
for f in sorted(folders - set(level)):
    problems.append(f"src/{f}/ is not in README's order: {order_line}")
for caller in sorted(calls):
    for callee, syms in sorted(calls[caller].items()):
        a, b = caller.split("/")[0], callee.split("/")[0]
        if a in level and b in level and level[b] < level[a]:
            problems.append(f"upward call: {caller} ({a}) calls {callee} ({b}): "
                            + ", ".join(sorted(syms)[:4]))

# Circles: the strongly connected components of more than one file (Tarjan's algorithm).
index, low, stack, on_stack, components = {}, {}, [], set(), []


def visit(v):
    index[v] = low[v] = len(index)
    stack.append(v)
    on_stack.add(v)
    for w in calls.get(v, {}):
        if w not in index:
            visit(w)
            low[v] = min(low[v], low[w])
        elif w in on_stack:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop()
            on_stack.discard(w)
            comp.append(w)
            if w == v:
                break
        if len(comp) > 1:
            components.append(sorted(comp))


sys.setrecursionlimit(10000)
for v in sorted(calls):
    if v not in index:
        visit(v)
for comp in components:
    inside = [f"{a} -> {b} ({', '.join(sorted(calls[a][b])[:3])})"
              for a in comp for b in sorted(calls.get(a, {})) if b in comp]
    problems.append("circle of files: " + " <-> ".join(comp) + "\n    " + "\n    ".join(inside))

n_files = len(set(defined.values()) | set(calls))
n_edges = sum(len(c) for c in calls.values())
if problems:
    print("\n".join("FAIL: " + p for p in problems), file=sys.stderr)
    sys.exit(1)
print(f"layering: ok ({n_files} files, {n_edges} caller -> callee pairs, order {order_line})")
PY
