#!/usr/bin/env python3
"""Compare two run directories value for value: run.h5 and every model file it links to.

    /usr/bin/python3 analysis/compare_runs.py RUN_A RUN_B [--ignore-results]

Every dataset must be bitwise equal (same dtype, shape and bytes) and every attribute equal,
except what records when, where or by which build a file was written: the attributes
code_revision, compiler, written_at, config and the CRC over the stored strings (the config's
checkpoint.dir differs between two run directories), the config text stored as a dataset, and
the per-epoch wall time /history/seconds. Exit status 0 when the runs are the same, 1 when
anything differs (each difference is printed), 2 on bad arguments.
"""
import argparse
import os
import sys

import h5py
import numpy as np

IGNORED_ATTRS = {"code_revision", "compiler", "written_at", "config", "strings_crc32"}
IGNORED_DATASETS = {"history/seconds", "config"}


def walk(f):
    """name -> object for every group and dataset under f, not following external links."""
    out = {}

    def visit(group, prefix):
        for key in group:
            link = group.get(key, getlink=True)
            if isinstance(link, (h5py.ExternalLink, h5py.SoftLink)):
                continue
            obj = group[key]
            out[prefix + key] = obj
            if isinstance(obj, h5py.Group):
                visit(obj, prefix + key + "/")

    visit(f, "")
    return out


def attrs_of(obj):
    return {k: v for k, v in obj.attrs.items() if k not in IGNORED_ATTRS}


def same_value(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype == object or b.dtype == object:  # variable-length strings
        return a.shape == b.shape and a.tolist() == b.tolist()
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def compare_files(path_a, path_b, skip=lambda name: False):
    diffs = []
    with h5py.File(path_a, "r") as fa, h5py.File(path_b, "r") as fb:
        oa, ob = walk(fa), walk(fb)
        oa[""], ob[""] = fa, fb
        for name in sorted(set(oa) | set(ob)):
            if skip(name):
                continue
            if name not in ob or name not in oa:
                diffs.append(f"{name}: only in {'A' if name in oa else 'B'}")
                continue
            a, b = oa[name], ob[name]
            if isinstance(a, h5py.Dataset) != isinstance(b, h5py.Dataset):
                diffs.append(f"{name}: group in one file, dataset in the other")
                continue
            if isinstance(a, h5py.Dataset) and name not in IGNORED_DATASETS:
                if not same_value(a[()], b[()]):
                    diffs.append(f"{name}: values differ")
            aa, ab = attrs_of(a), attrs_of(b)
            for k in sorted(set(aa) | set(ab)):
                if k not in aa or k not in ab or not same_value(aa[k], ab[k]):
                    diffs.append(f"{name or '/'}: attribute {k} differs")
    return diffs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run_a")
    ap.add_argument("run_b")
    ap.add_argument("--ignore-results", action="store_true",
                    help="skip run.h5's /results (e.g. when the ensemble row is meant to change)")
    args = ap.parse_args()
    for d in (args.run_a, args.run_b):
        if not os.path.isfile(os.path.join(d, "run.h5")):
            print(f"compare_runs: {d}: no run.h5", file=sys.stderr)
            return 2
    skip = (lambda n: n.startswith("results")) if args.ignore_results else (lambda n: False)
    diffs = [f"run.h5 {d}" for d in
             compare_files(os.path.join(args.run_a, "run.h5"), os.path.join(args.run_b, "run.h5"), skip)]
    models_a = sorted(os.listdir(os.path.join(args.run_a, "models")))
    models_b = sorted(os.listdir(os.path.join(args.run_b, "models")))
    if models_a != models_b:
        diffs.append(f"model files differ: {models_a} vs {models_b}")
    n = 0
    for m in models_a:
        if m in models_b and m.endswith(".h5"):
            n += 1
            diffs += [f"{m} {d}" for d in compare_files(os.path.join(args.run_a, "models", m),
                                                        os.path.join(args.run_b, "models", m))]
    for d in diffs:
        print(d)
    print(f"compared run.h5 and {n} model files: "
          f"{'the same' if not diffs else f'{len(diffs)} differences'}")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
