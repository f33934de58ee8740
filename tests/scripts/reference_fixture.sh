#!/usr/bin/env bash
# The committed PyTorch fixture is what tests/reference/make_reference.py writes, and
# analysis/torch_models.py has the parameter counts of issue 2. Needs Debian's python3 with
# torch (tests/run.sh installs it; lib.sh's need_torch skips only where it cannot).
source "$(dirname "$0")/lib.sh"
src=$ED_SOURCE_DIR
py=$ED_PYTHON
need_torch
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== analysis/torch_models.py self-check (parameter counts, forward of every arch)"
(cd "$src/analysis" && "$py" torch_models.py)

echo "== regenerate the fixture and compare with the committed one"
"$py" "$src/tests/reference/make_reference.py" "$tmp/reference.h5"
"$py" - "$src/tests/reference/reference.h5" "$tmp/reference.h5" <<'EOF'
import sys
import h5py
import numpy as np

committed, fresh = (h5py.File(p, "r") for p in sys.argv[1:3])
problems = []


def items(f):
    out = {}
    f.visititems(lambda name, obj: out.__setitem__(name, obj))
    return out


a, b = items(committed), items(fresh)
for name in sorted(set(a) | set(b)):
    if name not in a or name not in b:
        problems.append(f"{name}: only in the {'fresh' if name in b else 'committed'} file")
        continue
    x, y = a[name], b[name]
    for k in set(x.attrs) | set(y.attrs):
        if k not in x.attrs or k not in y.attrs or np.any(x.attrs[k] != y.attrs[k]):
            problems.append(f"{name}: attribute {k} differs")
    if isinstance(x, h5py.Dataset):
        u, v = x[()], y[()]
        if u.shape != v.shape or u.dtype != v.dtype:
            problems.append(f"{name}: {u.shape} {u.dtype} vs {v.shape} {v.dtype}")
        elif u.dtype.kind == "f":
            # float64 arithmetic rounded to float32: another torch build may move a last bit
            if not np.allclose(u, v, rtol=1e-6, atol=1e-7):
                i = np.unravel_index(np.argmax(np.abs(u - v)), u.shape) if u.ndim else ()
                problems.append(f"{name}: max difference {np.max(np.abs(u - v)):.3g} at {i}")
        elif not np.array_equal(u, v):
            problems.append(f"{name}: values differ")
# which torch and numpy wrote the file is provenance, not content (Debian 12: torch 1.13 and
# numpy 1.24; Debian 13: torch 2.6 and numpy 2.2, the same fixture)
for k in set(committed.attrs) | set(fresh.attrs):
    if k not in ("torch_version", "numpy_version") and np.any(committed.attrs.get(k) != fresh.attrs.get(k)):
        problems.append(f"/: attribute {k} differs")
print(f"{len(a)} objects compared (committed with torch {committed.attrs['torch_version']}, "
      f"numpy {committed.attrs['numpy_version']}; fresh with torch {fresh.attrs['torch_version']}, "
      f"numpy {fresh.attrs['numpy_version']})")
for p in problems:
    print("  DIFFERS", p)
sys.exit(1 if problems else 0)
EOF
echo "reference_fixture: OK"
