# The C tensor table of every architecture (names, param/buffer, shapes, trainable) equals the
# state_dict of the PyTorch module analysis/torch_models.py builds for it, including sum_of
# (nets.<i>.) and random_features (requires_grad only on the last layer).
source "$(dirname "$0")/lib.sh"
need_torch
dump=$ED_BUILD_DIR/tests/test_param_counts
[ -x "$dump" ] || fail "$dump is not built"
"$ED_PYTHON" - "$dump" "$ED_SOURCE_DIR/analysis" <<'PY'
import subprocess, sys
dump, analysis = sys.argv[1], sys.argv[2]
sys.path.insert(0, analysis)
import torch_models as tm

cases = [("resnet-20", (3, 32, 32), 10, 1, 0), ("resnet-32-proj", (3, 32, 32), 100, 1, 0),
         ("resnet-8", (1, 28, 28), 10, 3, 1), ("wrn-16-4", (3, 32, 32), 10, 1, 0),
         ("wrn-10-1", (3, 32, 32), 10, 2, 1), ("cnn", (1, 28, 28), 10, 1, 1),
         ("mlp", (1, 28, 28), 10, 2, 0), ("mvconv", (9, 1, 50), 10, 2, 0)]
bad = 0
for arch, shape, k, sum_of, rf in cases:
    out = subprocess.run([dump, arch, *map(str, shape), str(k), str(sum_of), str(rf)],
                         capture_output=True, text=True, check=True).stdout
    ours = {}
    for line in out.splitlines():
        name, kind, rest = line.split(" ", 2)
        shp, trainable = rest.rsplit(" ", 1)
        ours[name] = (kind, shp, int(trainable))
    net = tm.build(arch, shape, k, sum_of=sum_of, random_features=bool(rf), mv_filters=4)
    params = dict(net.named_parameters())
    theirs = {n: ("param" if n in params else "buffer", "[" + ", ".join(map(str, t.shape)) + "]",
                  int(params[n].requires_grad) if n in params else 0)
              for n, t in net.state_dict().items()}
    same = ours == theirs
    print(f"{arch:<15} {'x'.join(map(str, shape)):<8} K={k:<3} sum_of={sum_of} rf={rf}: "
          f"{len(ours)} tensors, torch {len(theirs)}: {'same' if same else 'DIFFERENT'}")
    if not same:
        bad += 1
        for n in sorted(set(ours) | set(theirs)):
            if ours.get(n) != theirs.get(n):
                print(f"   {n}: C {ours.get(n)}  torch {theirs.get(n)}")
sys.exit(1 if bad else 0)
PY
