#!/usr/bin/env python3
"""Write the paper-style report of an ensdistill run: RUN_DIR/report/report.md and PNG plots.

    /usr/bin/python3 analysis/report.py RUN_DIR [--out DIR]

Reads RUN_DIR/run.h5 (the results table, the accuracy against ensemble size, the teacher's test
logits, /data/test_labels and /data/test_tags when present) and every model file it links
(history, /logits/test, /probe/views for mvconv). Writes report.md (the table, the ensemble-size
curve, disagreement, views learned, the paper's claims checked against the numbers) and
ensemble_size.png, learning_curves.png, reliability.png, views_learned.png; a plot whose inputs
the run does not hold is skipped with a note in report.md. Exit 2 when RUN_DIR is not a run.
Needs h5py, numpy and matplotlib (no torch).
"""

import argparse
import math
import os
import re
import sys

import h5py
import numpy as np

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the Agg backend)

RUN_FORMAT = "ensdistill-run"
ROLE_ORDER = ["member", "kd", "self", "sum", "codistill"]
ROLE_COLOR = {"member": "tab:blue", "kd": "tab:red", "self": "tab:green", "sum": "tab:purple",
              "codistill": "tab:orange"}
ROLE_LABEL = {"member": "single models", "kd": "KD students", "self": "self-distilled",
              "sum": "train-the-sum", "codistill": "co-distilled members"}
# (row of /results/table, what the report calls it)
SUMMARY = [("single", "single model (mean ± std)"), ("ensemble", "ensemble"),
           ("sum", "train the sum"), ("kd", "knowledge distillation"),
           ("self", "self-distillation"), ("ensemble-of-kd", "ensemble of KD students"),
           ("codistill", "co-distilled member (mean ± std)"),
           ("codistill ensemble", "ensemble of co-distilled members")]
RELIABILITY_BINS = 15
WELL_BELOW = 0.10   # "well below": at least 10 accuracy points
SMALL_GAIN = 0.5    # "small": less than half of what ensembling the members gained
SUM_MATCHES = 0.25  # random features: the sum "matches" the ensemble when it is at most a
                    # quarter of the ensemble's gain over a single model below it


class NotARun(Exception):
    pass


def _str(v):
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    return v.rstrip("\0") if isinstance(v, str) else v


def _finite(x):
    return x is not None and isinstance(x, (int, float, np.floating)) and math.isfinite(x)


def pts(x):
    return f"{100 * x:+.2f} points" if _finite(x) else "n.a."


def pct(x, std=None):
    if not _finite(x):
        return "n.a."
    return f"{100 * x:.2f} ± {100 * std:.2f}%" if _finite(std) else f"{100 * x:.2f}%"


# ---------------------------------------------------------------- loading

def load_model(path, name):
    """One model file -> dict: name, role, index, history, test logits, probe (or None)."""
    m = {"name": name, "path": path, "role": name.rsplit("-", 1)[0], "history": {},
         "logits": None, "views": None, "threshold": None}
    with h5py.File(path, "r") as f:
        m["role"] = _str(f.attrs.get("role", m["role"]))
        m["index"] = int(f.attrs.get("index", 0))
        m["complete"] = int(f.attrs.get("complete", 1))
        for k in ("epoch", "lr", "train_loss", "train_acc", "test_acc"):
            if f"history/{k}" in f:
                m["history"][k] = np.asarray(f[f"history/{k}"][()], dtype=float)
        if "logits/test" in f:
            m["logits"] = np.asarray(f["logits/test"][()], dtype=np.float64)
        if "probe/views" in f:
            m["views"] = np.asarray(f["probe/views"][()], dtype=float)
            t = f["probe/views"].attrs.get("threshold", f["probe"].attrs.get("threshold"))
            m["threshold"] = float(t) if t is not None else None
    return m


def load_run(run_dir):
    """RUN_DIR/run.h5 and its models -> dict. Raises NotARun when it is not a run file."""
    path = os.path.join(run_dir, "run.h5")
    if not os.path.isfile(path):
        raise NotARun(f"{path} does not exist (is {run_dir} an ensdistill run directory?)")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise NotARun(f"{path} is not a readable HDF5 file ({e})")
    with f:
        if _str(f.attrs.get("format")) != RUN_FORMAT:
            raise NotARun(f"{path}: attribute format is {_str(f.attrs.get('format'))!r}, "
                          f"expected {RUN_FORMAT!r}")
        if "results/table" not in f:
            raise NotARun(f"{path} has no /results/table (was the run interrupted?)")
        run = {"dir": run_dir, "notes": [], "config": _str(f.attrs.get("config", "")),
               "attrs": {k: _str(f.attrs[k]) for k in ("code_revision", "written_at",
                                                       "compiler") if k in f.attrs}}
        run["rows"] = {}
        for r in f["results/table"][()]:
            row = {k: (_str(r[k]) if isinstance(r[k], bytes) else r[k].item())
                   for k in r.dtype.names}
            run["rows"][row["name"]] = row
        get = lambda p: np.asarray(f[p][()]) if p in f else None  # noqa: E731
        run["size_acc"] = get("results/ensemble_size_acc")
        run["teacher"] = get("teacher/test_logits")
        run["labels"] = get("data/test_labels")
        run["tags"] = get("data/test_tags")
        d = f["results"].attrs.get("disagreement")
        run["disagreement"] = float(d) if d is not None else None
        links = []
        for name in f["models"] if "models" in f else []:
            link = f["models"].get(name, getlink=True)
            rel = link.filename if isinstance(link, h5py.ExternalLink) else f"models/{name}.h5"
            links.append((name, os.path.join(run_dir, rel)))
    run["models"] = []
    for name, p in links:
        try:
            run["models"].append(load_model(p, name))
        except OSError as e:
            run["notes"].append(f"model file {p} is unreadable ({e}): left out")
    run["models"].sort(key=lambda m: (ROLE_ORDER.index(m["role"]) if m["role"] in ROLE_ORDER
                                      else 99, m["index"]))
    run["random_features"] = bool(re.search(r"^\s*random_features:\s*true\b", run["config"],
                                            re.M))
    run["multiview"] = run["tags"] is not None or any(
        _finite(r["acc_single"]) for r in run["rows"].values())
    return run


def by_role(run, role):
    return [m for m in run["models"] if m["role"] == role]


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def member_disagreement(run, role="member"):
    """Mean over pairs of models of `role` of the fraction of test samples whose predictions
    differ."""
    preds = [m["logits"].argmax(1) for m in by_role(run, role) if m["logits"] is not None]
    pairs = [(a != b).mean() for i, a in enumerate(preds) for b in preds[i + 1:]]
    return float(np.mean(pairs)) if pairs else None


def combine_probs(run):
    return re.search(r"^\s*combine:\s*probs\b", run["config"], re.M) is not None


def size_curve_single_view(run):
    """Accuracy on single-view test samples of the ensemble of the first n members, or None."""
    logits = [m["logits"] for m in by_role(run, "member") if m["logits"] is not None]
    if run["labels"] is None or run["tags"] is None or not logits:
        return None
    sv = run["tags"] == 0
    if not sv.any():
        return None
    probs = combine_probs(run)
    out, acc = [], np.zeros_like(logits[0])
    for n, z in enumerate(logits, 1):
        acc += softmax(z) if probs else z
        out.append(float((acc[sv].argmax(1) == run["labels"][sv]).mean()))
    return np.array(out)


def views_count(m):
    """Per class: 0, 1 or 2 views whose correlation reaches the probe's threshold."""
    if m["views"] is None or m["threshold"] is None:
        return None
    return (m["views"] >= m["threshold"]).sum(axis=1)


# ---------------------------------------------------------------- tables

def md_table(head, rows):
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + \
        ["| " + " | ".join(r) + " |" for r in rows]


def metric_cells(r, mv, std=False):
    if r is None:
        return ["n.a."] * (5 if mv else 3)
    cells = [pct(r["test_acc"], r["acc_std"] if std else None), f"{r['nll']:.4f}",
             f"{r['ece']:.4f}"]
    return cells + ([pct(r["acc_multi"]), pct(r["acc_single"])] if mv else [])


def results_table(run):
    mv, rows = run["multiview"], []
    head = ["model", "n", "test accuracy", "NLL", "ECE"] + \
        (["multi-view acc", "single-view acc"] if mv else [])
    for key, label in SUMMARY:
        if key in run["rows"]:
            r = run["rows"][key]
            rows.append([f"{label} (`{key}`)", str(r["n_models"])] + metric_cells(r, mv, True))
    return md_table(head, rows)


def models_table(run):
    mv, rows = run["multiview"], []
    head = ["model", "role", "epochs", "final train loss", "final train acc", "test acc", "NLL",
            "ECE"] + (["multi-view", "single-view"] if mv else [])
    for m in run["models"]:
        h = m["history"]
        last = lambda k: h[k][-1] if len(h.get(k, [])) else float("nan")  # noqa: E731
        epochs = f"{len(h.get('epoch', []))}" + ("" if m["complete"] else " (incomplete)")
        rows.append([m["name"], m["role"], epochs, f"{last('train_loss'):.4g}",
                     pct(last("train_acc"))] + metric_cells(run["rows"].get(m["name"]), mv))
    return md_table(head, rows)


def consistency(run):
    """Notes where accuracies recomputed from the stored logits and labels differ from the table."""
    labels, out = run["labels"], []
    if labels is None:
        return out
    pairs = [(m["name"], m["logits"]) for m in run["models"]] + [("ensemble", run["teacher"])]
    for name, z in pairs:
        r = run["rows"].get(name)
        if r is None or z is None or len(z) != len(labels):
            continue
        acc = float((z.argmax(1) == labels).mean())
        if abs(acc - r["test_acc"]) > 1e-6:
            out.append(f"{name}: accuracy from its test logits and /data/test_labels is "
                       f"{pct(acc)}, the table says {pct(r['test_acc'])}")
    return out


def size_table(run, sv_curve):
    acc = run["size_acc"]
    if acc is None or len(acc) == 0:
        return ["(no /results/ensemble_size_acc in run.h5)"]
    rows = [["test accuracy"] + [pct(float(a)) for a in acc]]
    if sv_curve is not None:
        rows.append(["single-view accuracy"] + [pct(a) for a in sv_curve])
    return md_table(["members n"] + [str(i + 1) for i in range(len(acc))], rows)


def views_table(run):
    probed = [(m, views_count(m)) for m in run["models"] if views_count(m) is not None]
    if not probed:
        return None, []
    K = len(probed[0][1])
    thresholds = ", ".join(sorted({f"{m['threshold']:g}" for m, _ in probed}))
    lines = [f"A view of class j counts as learned when the largest correlation of a class-j "
             f"filter with it (/probe/views) reaches the probe's threshold ({thresholds}).", ""]
    lines += md_table(["model", "role", f"classes with both views (of {K})", "one view", "none"],
                      [[m["name"], m["role"]] + [str((c == k).sum()) for k in (2, 1, 0)]
                       for m, c in probed])
    means = []
    for role in ROLE_ORDER:
        both = [(c == 2).sum() for m, c in probed if m["role"] == role]
        if both:
            means.append(f"{ROLE_LABEL[role]} {np.mean(both):.1f}")
    lines += ["", "Mean number of classes with both views learned, per role: "
              + "; ".join(means) + "."]
    return probed, lines


def claims(run, probed):
    """[(claim, what it compares with the numbers, PASS/FAIL/n.a.)] from the results table."""
    R = run["rows"]
    v = lambda name, col="test_acc": R[name][col] if name in R else None  # noqa: E731
    n_of = lambda name, what: (f"{what} (mean of {R[name]['n_models']})"  # noqa: E731
                               if name in R and R[name]["n_models"] > 1 else what)
    label = {"single": n_of("single", "single model"), "ensemble": "ensemble",
             "kd": n_of("kd", "KD"), "self": n_of("self", "self-distillation"),
             "sum": "train-the-sum", "ensemble-of-kd": "ensemble of KD students"}
    out = []

    def check(claim, text, ok, *values):
        result = "n.a." if not all(_finite(x) for x in values) else \
            "PASS" if ok(*values) else "FAIL"
        out.append((claim, text, result))

    def above(claim, a, b, col="test_acc", what="test accuracy"):
        check(claim, f"{what}: {label[a]} {pct(v(a, col))} > {label[b]} {pct(v(b, col))}",
              lambda x, y: x > y, v(a, col), v(b, col))

    if run.get("random_features"):
        # Claim 7: with random features (only the last layer trained) the ensemble's gain is
        # what a larger model gives: the sum of the nets, trained jointly, matches it; and KD
        # does not transfer it. (Claims 2-4 below are the deep-network claims: expected to fail.)
        g_ens = v("ensemble") - v("single") if "ensemble" in R and "single" in R else None
        g_ens = g_ens if _finite(g_ens) and g_ens > 0 else None
        check("Random features: training the sum matches the ensemble",
              f"test accuracy: train-the-sum {pct(v('sum'))} >= ensemble {pct(v('ensemble'))} "
              f"- {SUM_MATCHES:g} x the ensemble's gain over {label['single']} ({pts(g_ens)}); "
              "n.a. when the ensemble gains nothing",
              lambda s_, e, g: s_ >= e - SUM_MATCHES * g, v("sum"), v("ensemble"), g_ens)
        g_kd = v("kd") - v("single") if "kd" in R and "single" in R else None
        check("Random features: KD does not transfer the ensemble's gain",
              f"test accuracy gained by {label['kd']} over {label['single']} ({pts(g_kd)}) < "
              f"{SMALL_GAIN:g} x the ensemble's gain ({pts(g_ens)}); n.a. when the ensemble "
              "gains nothing",
              lambda k, g: k < SMALL_GAIN * g, g_kd, g_ens)
    above("The ensemble beats a single model", "ensemble", "single")
    above("KD beats a single model", "kd", "single")
    above("Self-distillation beats a single model", "self", "single")
    above("Training the sum does not match the ensemble", "ensemble", "sum")
    g_kd = v("ensemble-of-kd") - v("kd") if "ensemble-of-kd" in R and "kd" in R else None
    g_ens = v("ensemble") - v("single") if "ensemble" in R and "single" in R else None
    check("Ensembling KD students adds little",
          f"test accuracy gained by the ensemble of KD students over {label['kd']} "
          f"({pts(g_kd)}) < {SMALL_GAIN:g} x the gain of the ensemble over {label['single']} "
          f"({pts(g_ens)}); n.a. with one KD student or when the ensemble gains nothing",
          lambda x, y: x < SMALL_GAIN * y, g_kd, g_ens if _finite(g_ens) and g_ens > 0 else None)
    if not run["multiview"]:
        return out
    check("Single models fail on single-view samples",
          f"{label['single']}: single-view accuracy {pct(v('single', 'acc_single'))} at least "
          f"{100 * WELL_BELOW:.0f} points below its multi-view accuracy "
          f"{pct(v('single', 'acc_multi'))}",
          lambda s, m: s <= m - WELL_BELOW, v("single", "acc_single"), v("single", "acc_multi"))
    above("The ensemble recovers single-view samples", "ensemble", "single", "acc_single",
          "single-view accuracy")
    above("KD recovers single-view samples", "kd", "single", "acc_single",
          "single-view accuracy")
    check("Self-distillation lies between single and KD",
          f"single-view accuracy: {label['single']} {pct(v('single', 'acc_single'))} < "
          f"{label['self']} {pct(v('self', 'acc_single'))} < {label['kd']} "
          f"{pct(v('kd', 'acc_single'))}",
          lambda s, x, k: s < x < k, v("single", "acc_single"), v("self", "acc_single"),
          v("kd", "acc_single"))
    both = {role: [int((c == 2).sum()) for m, c in probed if m["role"] == role]
            for role in ("member", "kd")}
    mean = {r: float(np.mean(x)) if x else None for r, x in both.items()}
    fmt = {r: "n.a." if x is None else f"{x:.1f}" for r, x in mean.items()}
    check("KD learns more views than a single model",
          f"classes with both views learned (/probe/views), mean per model: KD students "
          f"{fmt['kd']} > single models {fmt['member']}",
          lambda k, s: k > s, mean["kd"], mean["member"])
    return out


# ---------------------------------------------------------------- plots

def finish(fig, path, dpi):
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return True


def plot_ensemble_size(run, sv_curve, path):
    acc = run["size_acc"]
    if acc is None or len(acc) == 0:
        return False
    n = np.arange(1, len(acc) + 1)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(n, 100 * acc, "o-", color="black", label="ensemble of the first n members")
    if sv_curve is not None:
        ax.plot(n, 100 * sv_curve, "s--", color="gray", label="same, single-view samples")
    for key, color, style, label in (("single", ROLE_COLOR["member"], "-", "mean single model"),
                                     ("kd", ROLE_COLOR["kd"], "--", "KD (mean)"),
                                     ("self", ROLE_COLOR["self"], ":", "self-distillation")):
        r = run["rows"].get(key)
        if r and _finite(r["test_acc"]):
            ax.axhline(100 * r["test_acc"], color=color, ls=style, label=label)
            if key == "single" and _finite(r["acc_std"]):
                ax.axhspan(100 * (r["test_acc"] - r["acc_std"]),
                           100 * (r["test_acc"] + r["acc_std"]), color=color, alpha=0.12)
    ax.set(xlabel="ensemble size n", ylabel="test accuracy (%)", xticks=n,
           title="Test accuracy against ensemble size")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return finish(fig, path, 120)


def plot_learning_curves(run, path):
    models = [m for m in run["models"] if "epoch" in m["history"]]
    if not models:
        return False
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    seen = set()
    for m in models:
        h, color = m["history"], ROLE_COLOR.get(m["role"], "gray")
        label = ROLE_LABEL.get(m["role"], m["role"]) if m["role"] not in seen else None
        seen.add(m["role"])
        loss = np.where(h["train_loss"] > 0, h["train_loss"], np.nan)
        axes[0].plot(h["epoch"], loss, color=color, lw=1, alpha=0.8, label=label)
        axes[1].plot(h["epoch"], 100 * h["train_acc"], color=color, lw=1, alpha=0.8)
        ok = np.isfinite(h["test_acc"])
        axes[2].plot(h["epoch"][ok], 100 * h["test_acc"][ok], ".-", color=color, lw=1,
                     alpha=0.8, ms=4)
    axes[0].set_yscale("log")
    top = max(np.nanmax(m["history"]["train_loss"]) for m in models)
    floor = max(min(np.nanmin(np.where(m["history"]["train_loss"] > 0, m["history"]["train_loss"],
                                       np.inf)) for m in models), 1e-6 * top)
    if np.isfinite(floor) and floor > 0:
        axes[0].set_ylim(floor / 2, top * 2)  # losses under 1e-6 of the largest run off
        below = [m["name"] for m in models if np.nanmin(m["history"]["train_loss"]) < floor / 2]
        if below:
            axes[0].text(0.02, 0.02, "below the axis (loss ~ 0): " + ", ".join(below),
                         transform=axes[0].transAxes, fontsize=7)
    titles = ["training loss (students: distillation loss)", "training accuracy (%)",
              "test accuracy (%)"]
    for ax, t in zip(axes, titles):
        ax.set(title=t, xlabel="epoch")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Learning curves of every model")
    return finish(fig, path, 110)


def plot_codistill(run, path):
    """Test accuracy per epoch: the co-distilled members beside the independent members."""
    groups = [(role, [m for m in by_role(run, role) if "epoch" in m["history"]])
              for role in ("member", "codistill")]
    if not all(models for _, models in groups):
        return False
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for role, models in groups:
        for i, m in enumerate(models):
            h = m["history"]
            ok = np.isfinite(h["test_acc"])
            ax.plot(h["epoch"][ok], 100 * h["test_acc"][ok], ".-", color=ROLE_COLOR[role],
                    lw=1, ms=4, alpha=0.8, label=ROLE_LABEL[role] if i == 0 else None)
    burn = re.findall(r"^\s*burn_in:\s*(\d+)", run["config"], re.M)
    if burn and int(burn[0]) > 0:
        ax.axvline(int(burn[0]), color="gray", ls=":", label="burn-in ends")
    ax.set(xlabel="epoch", ylabel="test accuracy (%)",
           title="Co-distilled members against independent members")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return finish(fig, path, 110)


def reliability(logits, labels, bins=RELIABILITY_BINS):
    """Per confidence bin: mean confidence, accuracy, count; and the ECE."""
    p = softmax(logits.astype(np.float64))
    conf, ok = p.max(1), (p.argmax(1) == labels)
    b = np.minimum((conf * bins).astype(int), bins - 1)
    n = np.bincount(b, minlength=bins)
    with np.errstate(invalid="ignore"):
        c = np.bincount(b, conf, bins) / n
        a = np.bincount(b, ok, bins) / n
    ece = float(np.nansum(np.abs(a - c) * n) / len(labels))
    return c, a, n, ece


def plot_reliability(run, path):
    labels = run["labels"]
    members, kds = by_role(run, "member"), by_role(run, "kd")
    panels = [(f"single ({members[0]['name']})", members[0]["logits"] if members else None),
              ("ensemble (/teacher/test_logits)", run["teacher"]),
              (f"KD ({kds[0]['name']})" if kds else "KD", kds[0]["logits"] if kds else None)]
    panels = [(t, z) for t, z in panels if z is not None and len(z) == len(labels)]
    if not panels:
        return False
    fig, axes = plt.subplots(2, len(panels), figsize=(4.2 * len(panels), 5.4), squeeze=False,
                             sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    edges, w = np.linspace(0, 1, RELIABILITY_BINS + 1), 1 / RELIABILITY_BINS
    for ax, hist, (title, z) in zip(axes[0], axes[1], panels):
        c, a, n, ece = reliability(z, labels)
        has = n > 0
        ax.bar(edges[:-1][has], a[has], width=w, align="edge", color="tab:blue",
               edgecolor="black", alpha=0.7, label="accuracy")
        ax.bar(edges[:-1][has], np.abs(c - a)[has], bottom=np.minimum(a, c)[has], width=w,
               align="edge", color="none", edgecolor="tab:red", hatch="//",
               label="gap to mean confidence")
        ax.plot([0, 1], [0, 1], "k--", lw=1)
        ax.set(xlim=(0, 1), ylim=(0, 1))
        ax.set_title(f"{title}\nECE {ece:.4f} ({RELIABILITY_BINS} bins)", fontsize=10)
        hist.bar(edges[:-1], n, width=w, align="edge", color="gray", edgecolor="black")
        hist.set(yscale="log", xlabel="confidence (max softmax)")
    axes[0][0].set_ylabel("accuracy")
    axes[1][0].set_ylabel("samples")
    axes[0][0].legend(fontsize=8, loc="upper left")
    return finish(fig, path, 110)


def plot_views(probed, path):
    counts = np.array([c for _, c in probed])
    names = [m["name"] for m, _ in probed]
    fig, ax = plt.subplots(figsize=(1.0 + 0.45 * counts.shape[1], 1.2 + 0.32 * len(names)))
    cmap = matplotlib.colors.ListedColormap(["#f0f0f0", "#fdae6b", "#2ca25f"])
    im = ax.imshow(counts, cmap=cmap, vmin=-0.5, vmax=2.5, aspect="auto")
    for (i, j), c in np.ndenumerate(counts):
        ax.text(j, i, str(c), ha="center", va="center", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xticks(range(counts.shape[1]))
    ax.set_xlabel("class j")
    ax.set_title("Views learned per class (0, 1 or 2)")
    fig.colorbar(im, ticks=[0, 1, 2], fraction=0.04)
    return finish(fig, path, 120)


SWEEP_ROW = re.compile(r"^(kd|self) T=(\S+) alpha=(\S+) lr=(\S+)$")


def sweep_rows(run):
    """[(role, T, alpha, lr, row)] of a distillation sweep's rows ("kd T=2 alpha=0.5 lr=0.05"),
    sorted; empty when the run has no sweep."""
    out = []
    for name, r in run["rows"].items():
        m = SWEEP_ROW.match(name)
        if m:
            out.append((m.group(1), float(m.group(2)), float(m.group(3)), float(m.group(4)), r))
    return sorted(out, key=lambda x: x[:4])


def sweep_table(run):
    rows = sweep_rows(run)
    if not rows:
        return []
    single = run["rows"].get("single", {}).get("test_acc")
    head = ["students", "T", "alpha", "lr", "n", "test accuracy", "vs single model"]
    body = [[ROLE_LABEL.get(role, role), f"{T:g}", f"{a:g}", f"{lr:g}", str(r["n_models"]),
             pct(r["test_acc"], r["acc_std"] if r["n_models"] > 1 else None),
             pts(r["test_acc"] - single) if _finite(single) else "n.a."]
            for role, T, a, lr, r in rows]
    return md_table(head, body)


def plot_sweep(run, path):
    rows = sweep_rows(run)
    if not rows:
        return False
    fig, ax = plt.subplots(figsize=(6, 4))
    for key in sorted({(role, a, lr) for role, _, a, lr, _ in rows}):
        pts_ = [(T, r) for role, T, a, lr, r in rows if (role, a, lr) == key]
        Ts = [T for T, _ in pts_]
        acc = [100 * r["test_acc"] for _, r in pts_]
        err = [100 * r["acc_std"] if r["n_models"] > 1 and _finite(r["acc_std"]) else 0
               for _, r in pts_]
        lrs = {lr for _, _, _, lr, _ in rows}
        label = f"{ROLE_LABEL.get(key[0], key[0])}, alpha {key[1]:g}" + \
            (f", lr {key[2]:g}" if len(lrs) > 1 else "")
        ax.errorbar(Ts, acc, yerr=err, marker="o", capsize=3, label=label)
    for name, style in (("single", ":"), ("ensemble", "--")):
        if name in run["rows"]:
            ax.axhline(100 * run["rows"][name]["test_acc"], color="gray", ls=style,
                       label="single model (mean)" if name == "single" else "ensemble")
    ax.set_xscale("log", base=2)
    Ts = sorted({T for _, T, _, _, _ in rows})
    ax.set_xticks(Ts)
    ax.set_xticklabels([f"{T:g}" for T in Ts])
    ax.minorticks_off()
    ax.set_xlabel("temperature T")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Distillation sweep: accuracy against T")
    ax.legend(fontsize=8)
    finish(fig, path, 120)
    return True


# ---------------------------------------------------------------- report

def write_report(run, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    notes, png = run["notes"], lambda n: os.path.join(out_dir, n)  # noqa: E731
    sv_curve = size_curve_single_view(run)
    probed, views_lines = views_table(run)
    cfg = lambda key: (re.findall(rf"^\s*{key}:\s*(\S+)", run["config"], re.M) or ["?"])[0]  # noqa
    md = [f"# ensdistill run `{cfg('name')}`", "",
          f"Data `{cfg('source')}`, model `{cfg('arch')}`; run directory "
          f"`{os.path.abspath(run['dir'])}`; " + ", ".join(
              f"{k} {v}" for k, v in run["attrs"].items()) + ".", "",
          "## Results", ""] + results_table(run)
    if run["multiview"]:
        md += ["", "Multi-view / single-view accuracy: on the test samples that carry both "
               "views of their class / only one (plus a weak trace of the other)."]
    md += ["", "## Accuracy against ensemble size", ""] + size_table(run, sv_curve)
    dis, src = run["disagreement"], "/results attribute `disagreement`"
    if dis is None:
        dis, src = member_disagreement(run), "recomputed from the members' /logits/test"
    md += ["", f"Mean pairwise disagreement of members (fraction of test samples on which two "
           f"members predict differently): {pct(dis)} ({src})."]
    if len(by_role(run, "codistill")) > 1:
        md += ["", "Mean pairwise disagreement of the co-distilled members: "
               f"{pct(member_disagreement(run, 'codistill'))} (from their /logits/test)."]
    if run["multiview"]:
        md += ["", "## Views learned (the paper's mechanism)", ""]
        md += views_lines or ["n.a.: no model file has /probe/views (a run from before the "
                              "probe existed)."]
    sweep = sweep_table(run)
    if sweep:
        md += ["", "## Distillation sweep", "", "One row per (T, alpha, lr) combination: the "
               "mean over its students (`distill.seeds`). The claims below need the plain "
               "`kd` / `self` rows, which a sweep does not have.", ""] + sweep
    md += ["", "## The paper's claims, checked", "", "| claim | compares | result |",
           "|---|---|---|"]
    md += [f"| {c} | {t} | **{r}** |" for c, t, r in claims(run, probed or [])]
    if run["random_features"]:
        md += ["", "A random-feature run (`model.random_features: true`, only the last layer "
               "trained): the paper expects its seventh claim (the first two rows) to hold and "
               "the deep-network claims on KD, self-distillation and the sum to fail."]
    md += ["", "## Every model", ""] + models_table(run)

    plots = [("ensemble_size.png", "Test accuracy against ensemble size",
              lambda p: plot_ensemble_size(run, sv_curve, p), "no /results/ensemble_size_acc"),
             ("learning_curves.png", "Learning curves", lambda p: plot_learning_curves(run, p),
              "no model file has a /history")]
    if run["labels"] is not None:
        plots.append(("reliability.png", "Reliability diagram",
                      lambda p: plot_reliability(run, p), "no test logits of matching length"))
    else:
        notes.append("reliability diagram skipped" + (" (and the single-view ensemble-size "
                     "curve)" if run["multiview"] else "") + ": run.h5 has no /data/test_labels")
    if by_role(run, "codistill"):
        plots.append(("codistill.png", "Co-distilled against independent members",
                      lambda p: plot_codistill(run, p), "no /history of both kinds"))
    if sweep:
        plots.append(("kd_sweep.png", "Accuracy against T for each alpha",
                      lambda p: plot_sweep(run, p), ""))
    if probed:
        plots.append(("views_learned.png", "Views learned", lambda p: plot_views(probed, p), ""))
    elif run["multiview"]:
        notes.append("views-learned heat map skipped: no model file has /probe/views with a "
                     "threshold attribute")
    md += ["", "## Plots", ""]
    for fname, title, draw, why in plots:
        if draw(png(fname)):
            md.append(f"![{title}]({fname})")
        else:
            notes.append(f"{fname} skipped: {why}")
    notes += consistency(run)
    if notes:
        md += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    md += ["", "<details><summary>Configuration of the run</summary>", "", "```yaml",
           run["config"].rstrip(), "```", "</details>", ""]
    with open(png("report.md"), "w") as f:
        f.write("\n".join(md))
    return png("report.md")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", metavar="RUN_DIR", help="directory holding run.h5")
    ap.add_argument("--out", metavar="DIR", help="output directory (default RUN_DIR/report)")
    args = ap.parse_args()
    try:
        run = load_run(args.run_dir)
    except NotARun as e:
        print(f"report.py: {e}", file=sys.stderr)
        return 2
    path = write_report(run, args.out or os.path.join(args.run_dir, "report"))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
