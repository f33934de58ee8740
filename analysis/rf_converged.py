#!/usr/bin/env python3
"""Did the last layer of each random-feature model converge? (the paper's claim 7 needs it)

With model.random_features every layer but the last is frozen, so training is a convex problem
in the last layer's weights theta (strongly convex with weight decay wd):

    J(theta) = mean over the training set of the model's loss + wd / 2 * ||theta||^2

where the loss is cross-entropy for members and the sum control, and for KD / self students
alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE, with the teacher the run stored
(run.h5 /teacher/train_logits for kd, member-000's /logits/train for self). For every model of
a finished run this prints J at the trained weights, the norm of its gradient there (and
relative to the gradient at theta = 0), and J* from L-BFGS started at the trained weights and
run to a gradient norm below 1e-6: J - J* is how far SGD stopped from the optimum.

    /usr/bin/python3 analysis/rf_converged.py RUN_DIR [--models member-000 kd-000 ...]
"""

import argparse
import glob
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import load_torch  # noqa: E402
import torch_models  # noqa: E402


def head_modules(net, arch):
    """The trained linear layer of each copy (one, or one per net of a sum)."""
    last = torch_models.last_layer_prefix(arch).rstrip(".")
    return [m for name, m in net.named_modules()
            if name == last or name.endswith("." + last)]


@torch.no_grad()
def features(net, heads, x, batch=1000):
    """Inputs of every head on x: a list (per copy) of [N, F] float64 tensors."""
    feats = [[] for _ in heads]
    hooks = [h.register_forward_hook(lambda mod, inp, out, i=i: feats[i].append(inp[0].double()))
             for i, h in enumerate(heads)]
    for i in range(0, len(x), batch):
        net(torch.from_numpy(x[i:i + batch]))
    for h in hooks:
        h.remove()
    return [torch.cat(f) for f in feats]


def objective(thetas, feats, labels, teacher, alpha, T, wd):
    """J(theta) (float64); thetas: list of (W [K, F], b [K]) per copy, logits summed over copies."""
    z = sum(f @ W.T + b for f, (W, b) in zip(feats, thetas))
    ce = F.cross_entropy(z, labels)
    loss = ce
    if teacher is not None:
        kl = F.kl_div(F.log_softmax(z / T, 1), F.log_softmax(teacher / T, 1), log_target=True,
                      reduction="batchmean")
        loss = alpha * T * T * kl + (1 - alpha) * ce
    reg = sum((W * W).sum() + (b * b).sum() for W, b in thetas)
    return loss + 0.5 * wd * reg


def grad_norm(thetas, *args):
    ps = [p.detach().clone().requires_grad_(True) for W, b in thetas for p in (W, b)]
    J = objective([(ps[2 * i], ps[2 * i + 1]) for i in range(len(thetas))], *args)
    gs = torch.autograd.grad(J, ps)
    return float(J), float(torch.sqrt(sum((g * g).sum() for g in gs)))


def optimum(thetas, *args, tol=1e-6, rounds=40):
    ps = [p.detach().clone().requires_grad_(True) for W, b in thetas for p in (W, b)]
    opt = torch.optim.LBFGS(ps, lr=1, max_iter=200, tolerance_grad=tol, tolerance_change=0,
                            history_size=50, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        J = objective([(ps[2 * i], ps[2 * i + 1]) for i in range(len(thetas))], *args)
        J.backward()
        return J

    for _ in range(rounds):
        opt.step(closure)
        if float(torch.sqrt(sum((p.grad * p.grad).sum() for p in ps))) < tol:
            break
    return grad_norm([(ps[2 * i], ps[2 * i + 1]) for i in range(len(thetas))], *args)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir")
    ap.add_argument("--models", nargs="*", help="model names (default: every complete model)")
    ap.add_argument("--no-optimum", action="store_true", help="skip the L-BFGS reference")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = yaml.safe_load(open(os.path.join(args.run_dir, "config.yaml")))
    if not cfg.get("model", {}).get("random_features"):
        sys.exit(f"{args.run_dir}: model.random_features is not set: nothing convex to check")
    tr, _, _, _, src = load_torch.load_data(cfg)
    generated = src == "hdf5" and cfg["model"]["arch"] == "mvconv"
    mean = std = None
    if cfg["data"].get("normalize", True) and not generated:
        mean, std = load_torch.normalisation(tr)
    x = load_torch.make_inputs(tr, mean, std)
    with h5py.File(os.path.join(args.run_dir, "run.h5"), "r") as f:
        ens_teacher = torch.from_numpy(f["teacher/train_logits"][()]).double() \
            if "teacher/train_logits" in f else None
    names = args.models or sorted(os.path.basename(p)[:-3] for p in
                                  glob.glob(os.path.join(args.run_dir, "models", "*.h5"))
                                  if not p.endswith(".prev.h5"))
    d = cfg.get("distill", {})
    wd = float(cfg["train"].get("weight_decay", 5e-4))
    print(f"{'model':12s} {'J':>10s} {'|grad J|':>10s} {'rel. to 0':>10s} {'J - J*':>10s} "
          f"{'|grad| at J*':>12s}")
    labels = None
    for name in names:
        path = os.path.join(args.run_dir, "models", name + ".h5")
        with h5py.File(path, "r") as f:
            if not int(f.attrs.get("complete", 0)):
                print(f"{name:12s} not complete")
                continue
            role = f.attrs["role"].decode() if isinstance(f.attrs["role"], bytes) \
                else str(f.attrs["role"])
        net, attrs = load_torch.load_checkpoint(path)
        heads = head_modules(net, attrs["arch"])
        feats = features(net, heads, x)
        if labels is None:
            labels = torch.from_numpy(train_labels(cfg, len(x)))
        teacher, alpha, T = None, 0.0, 1.0
        if role in ("kd", "self"):
            if role == "kd":
                teacher = ens_teacher
            else:
                with h5py.File(os.path.join(args.run_dir, "models", "member-000.h5"), "r") as f:
                    teacher = torch.from_numpy(f["logits/train"][()]).double()
            alpha, T = float(d.get("alpha", 0.9)), float(d.get("temperature", 4.0))
        thetas = [(h.weight.detach().double(), h.bias.detach().double()) for h in heads]
        a = (feats, labels, teacher, alpha, T, wd)
        J, g = grad_norm(thetas, *a)
        _, g0 = grad_norm([(torch.zeros_like(W), torch.zeros_like(b)) for W, b in thetas], *a)
        if args.no_optimum:
            print(f"{name:12s} {J:10.6f} {g:10.2e} {g / g0:10.2e}")
            continue
        Js, gs = optimum(thetas, *a)
        print(f"{name:12s} {J:10.6f} {g:10.2e} {g / g0:10.2e} {J - Js:10.2e} {gs:12.2e}")


def train_labels(cfg, n):
    d = cfg["data"]
    if d["source"] in ("fashion-mnist", "mnist"):
        root = d.get("path") or load_torch.FASHION_MNIST_DEFAULT_DIR
        y = load_torch._idx(os.path.join(root, "train-labels-idx1-ubyte")).astype(np.int64)
    else:
        with h5py.File(d["path"], "r") as f:
            y = f["train"]["labels"][()].astype(np.int64)
    return y[:n]


if __name__ == "__main__":
    main()
