#!/usr/bin/env python3
"""Each of the paper's margins over several runs (e.g. one per ensemble.seed): mean +- std,
and whether it is distinguishable from zero.

    /usr/bin/python3 analysis/seeds.py RUN_DIR [RUN_DIR ...] [--md]

For every run it reads the results table of RUN_DIR/run.h5 (as analysis/report.py does) and
computes, in accuracy points (test accuracy; on multi-view data also single-view accuracy):

    ensemble - single     the ensemble's gain over the mean single model   (claim 1)
    KD - single           the mean KD student's gain                       (claim 2)
    self - single         the mean self-distilled student's gain           (claim 3)
    ensemble - sum        how far training the sum stays below the ensemble (claim 4)
    ens. of KD - KD       what ensembling the KD students adds             (claim 5)

and, for runs with co-distilled members (distill.students: [codistill]):

    codistill - single    a co-distilled member against an independent member
    codistill - KD        a co-distilled member against the KD student
    codist. ens. - ens.   the ensemble of co-distilled members against the ensemble

and every co-distilled member against its independent twin (codistill-l - member-l: the same
init and augmentation draw), paired over all runs, with a t-test over the pairs.

then, over the runs, mean +- std (sample std) and a two-sided one-sample t-test of mean = 0
(n - 1 degrees of freedom): "yes" when p < 0.05. With 3 runs that needs |mean| > 2.48 std.

    /usr/bin/python3 analysis/seeds.py RUN_DIR... --against OTHER_DIR... [--md]

adds the same runs made another way (e.g. train.precision bf16 against fp32, one OTHER_DIR per
RUN_DIR, in the same order: the same seeds), row by row of the results table (single, ensemble,
KD, self, sum): each group's values and mean +- std, the paired difference other - first per
seed with a paired t-test of mean 0, and whether the other group's mean is within 2 std of the
first's.
"""

import argparse
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402  (analysis/report.py: load_run)

MARGINS = [("ensemble - single", "ensemble", "single"), ("KD - single", "kd", "single"),
           ("self - single", "self", "single"), ("ensemble - sum", "ensemble", "sum"),
           ("ens. of KD - KD", "ensemble-of-kd", "kd"),
           ("codistill - single", "codistill", "single"), ("codistill - KD", "codistill", "kd"),
           ("codist. ens. - ens.", "codistill ensemble", "ensemble")]


def t_test(x):
    """(t, two-sided p) of mean(x) = 0, or (nan, nan) when undefined."""
    x = np.asarray(x, dtype=float)
    if len(x) < 2:
        return math.nan, math.nan
    sd = x.std(ddof=1)
    if sd == 0:
        return (math.inf if x.mean() != 0 else math.nan), (0.0 if x.mean() != 0 else math.nan)
    t = x.mean() / (sd / math.sqrt(len(x)))
    try:
        from scipy import stats
        p = 2 * stats.t.sf(abs(t), len(x) - 1)
    except ImportError:
        p = math.nan
    return t, p


def margins(runs, col):
    """[(label, [margin per run in points])] for the margins every run has."""
    out = []
    for label, a, b in MARGINS:
        vals = []
        for r in runs:
            R = r["rows"]
            va = R.get(a, {}).get(col)
            vb = R.get(b, {}).get(col)
            vals.append(100 * (va - vb) if report._finite(va) and report._finite(vb) else None)
        if all(v is not None for v in vals):
            out.append((label, vals))
    return out


def render(head, rows, md):
    """The lines of a table: markdown, or columns padded to their widest cell."""
    if md:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        return lines + ["| " + " | ".join(r) + " |" for r in rows]
    w = [max(len(x) for x in col_) for col_ in zip(head, *rows)]
    return ["  ".join(x.ljust(n) for x, n in zip(r, w)) for r in [head] + rows]


def table(runs, col, md):
    rows = []
    for label, vals in margins(runs, col):
        t, p = t_test(vals)
        sd = np.std(vals, ddof=1) if len(vals) > 1 else math.nan
        sig = "n.a." if not math.isfinite(p) else ("yes" if p < 0.05 else "no")
        rows.append([label, ", ".join(f"{v:+.2f}" for v in vals),
                     f"{np.mean(vals):+.2f} ± {sd:.2f}", f"{t:.2f}", f"{p:.3f}", sig])
    head = ["margin (points)", "per run", "mean ± std", "t", "p", "p < 0.05"]
    return render(head, rows, md)


def paired(runs, col):
    """Every co-distilled member against its independent twin (codistill-l - member-l: same
    init and augmentation draw), in points, over all runs: lines, or [] without such pairs."""
    per_run = []
    for r in runs:
        R = r["rows"]
        pairs = []
        for name, row in sorted(R.items()):
            if row.get("role") != "codistill" or not name.startswith("codistill-"):
                continue
            twin = R.get("member-" + name.split("-", 1)[1])
            if twin and report._finite(row.get(col)) and report._finite(twin.get(col)):
                pairs.append(100 * (row[col] - twin[col]))
        per_run.append(pairs)
    if not any(per_run):
        return []
    lines = []
    for r, d in zip(runs, per_run):
        if d:
            d = np.array(d)
            lines.append(f"  {r['dir']}: {len(d)} pairs, mean {d.mean():+.2f}, "
                         f"{(d > 0).sum()} above, {(d == 0).sum()} level, {(d < 0).sum()} below")
    d = np.concatenate([np.array(x) for x in per_run if x])
    t, p = t_test(d)
    sd = np.std(d, ddof=1) if len(d) > 1 else math.nan
    lines.append(f"  all: {len(d)} pairs, mean {d.mean():+.2f} ± {sd:.2f}, t {t:.2f}, p {p:.2g} "
                 f"({(d > 0).sum()} above, {(d == 0).sum()} level, {(d < 0).sum()} below)")
    return lines


ROWS = ["single", "ensemble", "kd", "self", "sum", "ensemble-of-kd", "codistill",
        "codistill ensemble"]


def against(first, other, col, md):
    """Each row of the results both groups have: values, mean +- std, the paired difference
    (other - first, per run) with its t-test's p, and whether other's mean is within 2 std of
    first's."""
    rows = []
    for name in ROWS:
        a = [r["rows"].get(name, {}).get(col) for r in first]
        b = [r["rows"].get(name, {}).get(col) for r in other]
        if not all(report._finite(v) for v in a + b):
            continue
        a, b = 100 * np.array(a, dtype=float), 100 * np.array(b, dtype=float)
        sa = a.std(ddof=1) if len(a) > 1 else math.nan
        sb = b.std(ddof=1) if len(b) > 1 else math.nan
        d = b - a
        within = "n.a." if not math.isfinite(sa) else (
            "yes" if abs(b.mean() - a.mean()) <= 2 * sa else "no")
        _, p = t_test(d)
        rows.append([name, ", ".join(f"{v:.2f}" for v in a), f"{a.mean():.2f} ± {sa:.2f}",
                     ", ".join(f"{v:.2f}" for v in b), f"{b.mean():.2f} ± {sb:.2f}",
                     ", ".join(f"{v:+.2f}" for v in d), f"{d.mean():+.2f}", f"{p:.2f}",
                     within])
    head = ["row", "first, per run", "mean ± std", "other, per run", "mean ± std",
            "other - first", "mean", "p (paired)", "within 2 std"]
    return render(head, rows, md)


def load_all(dirs):
    runs = []
    for d in dirs:
        try:
            runs.append(report.load_run(d))
        except report.NotARun as e:
            print(f"seeds.py: {e}", file=sys.stderr)
            sys.exit(2)
    return runs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dirs", nargs="+")
    ap.add_argument("--md", action="store_true", help="markdown tables")
    ap.add_argument("--against", nargs="+", metavar="OTHER_DIR",
                    help="the same runs made another way, one per RUN_DIR, in the same order")
    args = ap.parse_args()
    runs = load_all(args.run_dirs)
    other = load_all(args.against) if args.against else []
    if other and len(other) != len(runs):
        print(f"seeds.py: --against needs one run per RUN_DIR ({len(runs)}), got {len(other)}",
              file=sys.stderr)
        sys.exit(2)
    print(f"{len(runs)} runs: " + ", ".join(args.run_dirs))
    for r in runs + other:
        R = r["rows"]
        parts = [f"{k} {100 * R[k]['test_acc']:.2f}" for k in ROWS if k in R]
        print(f"  {r['dir']}: " + ", ".join(parts))
    cols = [("test accuracy", "test_acc")]
    if any(r["multiview"] for r in runs):
        cols.append(("single-view test accuracy", "acc_single"))
    for title, col in cols:
        print(f"\n{title}")
        print("\n".join(table(runs, col, args.md)))
        pairs = paired(runs, col)
        if pairs:
            print(f"co-distilled member - its independent twin (paired; {title}):")
            print("\n".join(pairs))
        if other:
            print(f"\n{title}, the same margins of the --against runs")
            print("\n".join(table(other, col, args.md)))
            print(f"\n{title}, row by row: the --against runs against the first")
            print("\n".join(against(runs, other, col, args.md)))


if __name__ == "__main__":
    main()
