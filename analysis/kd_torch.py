#!/usr/bin/env python3
"""Train a KD student in PyTorch on the teacher of an ensdistill run: a reference for what the
C program's KD students do (same data, teacher, loss, optimiser and schedule; PyTorch's own
initialisation and batch order).

    /usr/bin/python3 analysis/kd_torch.py runs/quickstart --seeds 1 2
    /usr/bin/python3 analysis/kd_torch.py runs/quickstart --seeds 1 --clip 0   # no clipping

The teacher is the one the run stored (RUN_DIR/run.h5 /teacher/train_logits, as its KD
students saw it); the architecture is read from a member checkpoint; T, alpha, lr (distill.lr or train.lr), epochs, batch, momentum,
Nesterov, weight decay, the cosine schedule (per step) and train.clip_norm come from
RUN_DIR/config.yaml unless given. Fashion-MNIST / MNIST runs only. Prints each epoch's
training loss and the test accuracy; one thread (torch.set_num_threads(1)).
"""

import argparse
import math
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import load_torch  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run_dir")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1])
    ap.add_argument("--lr", type=float, help="peak lr (default: distill.lr or train.lr)")
    ap.add_argument("--clip", type=float, help="gradient norm bound; 0 = off (default: train.clip_norm)")
    ap.add_argument("--epochs", type=int)
    args = ap.parse_args()
    torch.set_num_threads(1)

    with open(os.path.join(args.run_dir, "config.yaml")) as fh:
        cfg = yaml.safe_load(fh)
    d, tr_cfg, dist = cfg["data"], cfg["train"], cfg["distill"]
    if d["source"] not in ("fashion-mnist", "mnist"):
        sys.exit(f"{args.run_dir}: data.source {d['source']}: kd_torch reads IDX data only")
    root = d.get("path") or load_torch.FASHION_MNIST_DEFAULT_DIR
    train_images, test_images, test_labels, _, _ = load_torch.load_data(cfg)
    n = len(train_images)
    train_labels = load_torch._idx(os.path.join(root, "train-labels-idx1-ubyte"))[:n].astype(np.int64)
    mean = std = None
    if d.get("normalize", True):
        mean, std = load_torch.normalisation(train_images)
    x_train = torch.from_numpy(load_torch.make_inputs(train_images, mean, std))
    x_test = torch.from_numpy(load_torch.make_inputs(test_images, mean, std))
    y_train, y_test = torch.from_numpy(train_labels), torch.from_numpy(test_labels)

    member = os.path.join(args.run_dir, "models", "member-000.h5")
    with h5py.File(os.path.join(args.run_dir, "run.h5"), "r") as f:
        teacher = torch.from_numpy(f["teacher/train_logits"][()])
    if teacher.shape[0] != n:
        sys.exit(f"{args.run_dir}/run.h5: teacher has {teacher.shape[0]} rows, the data {n}")
    _, attrs = load_torch.load_checkpoint(member)

    T, alpha = float(dist["temperature"]), float(dist["alpha"])
    lr0 = args.lr or float(dist.get("lr") or 0) or float(tr_cfg["lr"])
    epochs = args.epochs or int(dist.get("epochs") or 0) or int(tr_cfg["epochs"])
    clip = float(tr_cfg.get("clip_norm", 0)) if args.clip is None else args.clip
    batch = int(tr_cfg["batch_size"])
    if tr_cfg.get("schedule", "cosine") != "cosine" or float(tr_cfg.get("warmup_epochs", 0)):
        sys.exit("kd_torch follows the cosine schedule without warm-up only")
    steps = math.ceil(n / batch)
    print(f"teacher of {args.run_dir}, {n} training images; T={T} alpha={alpha} lr={lr0} "
          f"epochs={epochs} clip={clip}")
    for seed in args.seeds:
        torch.manual_seed(seed)
        net = load_torch.build_module(attrs)
        opt = torch.optim.SGD(net.parameters(), lr=lr0, momentum=float(tr_cfg["momentum"]),
                              nesterov=bool(tr_cfg["nesterov"]),
                              weight_decay=float(tr_cfg["weight_decay"]))
        order = torch.Generator().manual_seed(seed)
        t = 0
        for epoch in range(epochs):
            net.train()
            perm = torch.randperm(n, generator=order)
            total = 0.0
            for i in range(steps):
                b = perm[i * batch:(i + 1) * batch]
                for group in opt.param_groups:
                    group["lr"] = lr0 * (1 + math.cos(math.pi * t / (epochs * steps))) / 2
                z = net(x_train[b])
                soft = F.kl_div(F.log_softmax(z / T, 1), F.softmax(teacher[b] / T, 1),
                                reduction="batchmean")
                loss = alpha * T * T * soft + (1 - alpha) * F.cross_entropy(z, y_train[b])
                opt.zero_grad()
                loss.backward()
                if clip > 0:
                    torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
                opt.step()
                t += 1
                total += loss.item() * len(b)
            print(f"seed {seed} epoch {epoch + 1}/{epochs} loss {total / n:.4f}", flush=True)
        net.eval()
        with torch.no_grad():
            acc = (net(x_test).argmax(1) == y_test).float().mean().item()
        print(f"seed {seed}: test accuracy {100 * acc:.2f}% ({len(y_test)} images)")


if __name__ == "__main__":
    main()
