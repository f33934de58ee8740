#!/usr/bin/env python3
"""Load an ensdistill checkpoint into the equivalent PyTorch module, and evaluate it.

The module is built from the file's attributes (arch, input_shape, num_classes, hidden, sum_of,
random_features, mv_* and the init key for mvconv's fixed noise weights) with the shared
definitions in analysis/torch_models.py, and /params + /buffers are loaded with
load_state_dict(strict=True): every name and shape must match.

    python3 analysis/load_torch.py RUN_DIR/models/member-000.h5            # load, summarise
    python3 analysis/load_torch.py RUN_DIR/models/*.h5 --eval              # + test accuracy
    python3 analysis/load_torch.py CKPT.h5 --eval --config CONFIG.yaml --data DIR

--eval reads the test set the checkpoint's config names (data.source fashion-mnist / mnist IDX
files, or an HDF5 data file from `ensdistill datagen`), with its train_limit / test_limit and
the same normalisation as the C program (per-channel mean and std of the training set), runs
the module in eval mode, and compares with the test accuracy recorded in the file (and with
the stored /logits/test when present). Exit status 1 when any file disagrees.

From Python:
    import load_torch
    net, attrs = load_torch.load_checkpoint("runs/q/models/member-000.h5")
"""

import argparse
import gzip
import os
import struct
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_models  # noqa: E402  (analysis/torch_models.py: the shared architectures)

FORMAT, FORMAT_VERSION = "ensdistill-model", 2  # 2: a whole-file CRC32 in a user block h5py skips
FASHION_MNIST_DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"


def _attr(f, name, default=None):
    if name not in f.attrs:
        return default
    v = f.attrs[name]
    if isinstance(v, bytes):
        v = v.decode()
    if isinstance(v, np.generic):
        v = v.item()
    return v


def _u64(v):
    """int64 attribute holding a uint64 bit pattern -> Python int."""
    return int(v) & 0xFFFFFFFFFFFFFFFF


def read_attrs(path):
    """The checkpoint's attributes as a dict (strings decoded), after checking the format."""
    with h5py.File(path, "r") as f:
        fmt = _attr(f, "format")
        if fmt != FORMAT:
            raise ValueError(f"{path}: attribute format is {fmt!r}, expected {FORMAT!r}")
        ver = _attr(f, "format_version")
        if ver != FORMAT_VERSION:
            raise ValueError(f"{path}: format_version {ver}, this loader reads {FORMAT_VERSION}")
        return {k: _attr(f, k) for k in f.attrs}


def build_module(attrs):
    """The torch module of a checkpoint's ModelSpec (torch's own initialisation)."""
    shape = tuple(int(v) for v in np.asarray(attrs["input_shape"]).ravel())
    opts = dict(hidden=int(attrs.get("hidden") or 0) or None,
                sum_of=int(attrs.get("sum_of") or 1),
                random_features=bool(attrs.get("random_features")))
    if attrs["arch"] == "mvconv":
        opts.update(mv_filters=int(attrs["mv_filters"]), srelu_q=float(attrs["srelu_q"]),
                    srelu_rho=float(attrs["srelu_rho"]), init_std=float(attrs["init_std"]),
                    mv_noise_coords=int(attrs.get("mv_noise_coords") or 0),
                    mv_noise_sigma=float(attrs.get("mv_noise_sigma") or 0.0),
                    init_seed=_u64(attrs.get("init_seed", 0)),
                    init_stream=_u64(attrs.get("init_stream", 0)))
    return torch_models.build(attrs["arch"], shape, int(attrs["num_classes"]), **opts)


def read_state_dict(path):
    """/params and /buffers as a state_dict of torch tensors (num_batches_tracked int64)."""
    sd = {}
    with h5py.File(path, "r") as f:
        for group in ("params", "buffers"):
            if group not in f:
                continue
            for name, ds in f[group].items():
                sd[name] = torch.from_numpy(np.array(ds[()]))
    return sd


def load_checkpoint(path):
    """(module in eval mode with the checkpoint's weights, attrs). Raises on any mismatch."""
    attrs = read_attrs(path)
    net = build_module(attrs)
    net.load_state_dict(read_state_dict(path), strict=True)
    net.eval()
    return net, attrs


# ---- data, as the C program reads and normalises it (src/data) -----------------------------

def _idx(path):
    for p in (path + ".gz", path):
        if os.path.exists(p):
            opener = gzip.open if p.endswith(".gz") else open
            with opener(p, "rb") as fh:
                raw = fh.read()
            ndim = raw[3]
            dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
            return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)
    raise FileNotFoundError(f"{path}(.gz): missing")


def _limit(arrays, n):
    return [a[:n] for a in arrays] if n and n > 0 else arrays


def load_data(cfg, data_dir=None):
    """(train_images, test_images, test_labels, test_tags) as stored: uint8 or float32
    [N, C, H, W]; the limits of the config applied."""
    d = cfg["data"]
    src = d["source"]
    if src in ("fashion-mnist", "mnist"):
        root = data_dir or d.get("path") or (FASHION_MNIST_DEFAULT_DIR if src == "fashion-mnist" else "")
        if not root:
            raise ValueError("data.path: source mnist needs the directory of the IDX files")
        tr = _idx(os.path.join(root, "train-images-idx3-ubyte"))[:, None]
        te = _idx(os.path.join(root, "t10k-images-idx3-ubyte"))[:, None]
        te_y = _idx(os.path.join(root, "t10k-labels-idx1-ubyte")).astype(np.int64)
        te_tags = None
    elif src == "hdf5":
        path = data_dir or d["path"]
        with h5py.File(path, "r") as f:
            def images(part):
                ds = f[part]["images"]
                x = ds[()]
                layout = ds.attrs.get("layout", b"NCHW")
                layout = layout.decode() if isinstance(layout, bytes) else layout
                if x.ndim == 3:
                    x = x[:, None]
                elif layout == "NHWC":
                    x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
                return x
            tr, te = images("train"), images("test")
            te_y = f["test"]["labels"][()].astype(np.int64)
            te_tags = f["test"]["tags"][()] if "tags" in f["test"] else None
    else:
        raise ValueError(f"data.source {src!r}: load_torch reads fashion-mnist, mnist and hdf5 "
                         "files (write generated data with `ensdistill datagen CONFIG OUT.h5`)")
    (tr,) = _limit([tr], d.get("train_limit", 0))
    te, te_y = _limit([te, te_y], d.get("test_limit", 0))
    if te_tags is not None:
        (te_tags,) = _limit([te_tags], d.get("test_limit", 0))
    return tr, te, te_y, te_tags, src


def normalisation(train):
    """Per-channel mean and std of the training set as src/data/data.c computes them
    (double, population std, pixels / 255 for uint8), rounded to float32."""
    scale = 1.0 / 255.0 if train.dtype == np.uint8 else 1.0
    mean, std = [], []
    for c in range(train.shape[1]):
        x = train[:, c].astype(np.float64) * scale
        m = x.sum() / x.size
        sd = np.sqrt(((x - m) ** 2).sum() / x.size)
        mean.append(np.float32(m))
        std.append(np.float32(sd) if sd > 1e-8 else np.float32(1.0))
    return mean, std


def make_inputs(images, mean, std):
    """x = pixel * (base / std) + (-mean / std) in float32, as dataset_make_batch does."""
    base = np.float32(1.0 / 255.0) if images.dtype == np.uint8 else np.float32(1.0)
    x = images.astype(np.float32)
    if mean is None:
        return x * base if base != 1 else x
    out = np.empty_like(x)
    for c in range(x.shape[1]):
        scale = np.float32(base / std[c])
        shift = np.float32(-mean[c] / std[c])
        out[:, c] = x[:, c] * scale + shift
    return out


@torch.no_grad()
def logits_of(net, x, attrs, id_base, batch=500):
    """Logits of x[N, C, H, W] (eval mode); mvconv with noise gets sample ids id_base + i."""
    out = []
    needs_ids = attrs["arch"] == "mvconv" and int(attrs.get("mv_noise_coords") or 0) > 0
    for i in range(0, len(x), batch):
        xb = torch.from_numpy(x[i:i + batch])
        if needs_ids:
            ids = torch.arange(id_base + i, id_base + i + len(xb), dtype=torch.int64)
            out.append(net(xb, ids))
        else:
            out.append(net(xb))
    return torch.cat(out).numpy()


def evaluate(path, config_path=None, data_dir=None, batch=500):
    """Returns a dict: acc, n, logits, labels, stored_acc, stored_logits (or None)."""
    import yaml
    net, attrs = load_checkpoint(path)
    if config_path:
        with open(config_path) as fh:
            cfg = yaml.safe_load(fh)
    else:
        cfg = yaml.safe_load(attrs.get("config") or "")
        if not cfg:
            raise ValueError(f"{path} stores no config: give one with --config")
    tr, te, te_y, te_tags, src = load_data(cfg, data_dir)
    generated = src == "hdf5" and attrs["arch"] == "mvconv"
    mean = std = None
    if cfg["data"].get("normalize", True) and not generated:
        mean, std = normalisation(tr)
    x = make_inputs(te, mean, std)
    logits = logits_of(net, x, attrs, id_base=len(tr), batch=batch)
    pred = logits.argmax(1)
    res = dict(acc=float((pred == te_y).mean()), n=len(te_y), logits=logits, labels=te_y,
               stored_acc=None, stored_logits=None, attrs=attrs)
    with h5py.File(path, "r") as f:
        if "history/test_acc" in f:
            accs = [a for a in f["history/test_acc"][()] if np.isfinite(a)]
            res["stored_acc"] = float(accs[-1]) if accs else None
        if "logits/test" in f and f["logits/test"].shape == logits.shape:
            res["stored_logits"] = f["logits/test"][()]
    return res


def report(path, args):
    """Loads (and with --eval evaluates) one checkpoint; prints; returns 0 or 1 (disagreement)."""
    net, attrs = load_checkpoint(path)
    n = sum(p.numel() for p in net.parameters())
    print(f"{path}: {attrs['role']}-{int(attrs['index']):03d}, {attrs['arch']}, "
          f"epoch {attrs['epoch']}/{attrs['epochs_total']}, "
          f"{'complete' if attrs['complete'] else 'incomplete'}; "
          f"{type(net).__name__} with {n:,d} parameters loaded (strict)")
    if not args.eval:
        return 0
    r = evaluate(path, args.config, args.data, args.batch)
    correct = int(round(r["acc"] * r["n"]))
    print(f"  torch test accuracy {100 * r['acc']:.2f}% ({correct}/{r['n']})")
    status = 0
    if r["stored_acc"] is not None:
        same = correct == int(round(r["stored_acc"] * r["n"]))
        print(f"  file test accuracy  {100 * r['stored_acc']:.2f}% "
              f"({'equal' if same else 'DIFFERENT'})")
        if not same:
            status = 1
    if r["stored_logits"] is not None:
        diff = float(np.abs(r["stored_logits"] - r["logits"]).max())
        agree = float((r["stored_logits"].argmax(1) == r["logits"].argmax(1)).mean())
        print(f"  stored /logits/test: max |difference| {diff:.3g}, predictions agree on "
              f"{100 * agree:.2f}%")
        if diff > args.tolerance:
            status = 1
    return status


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", nargs="+")
    ap.add_argument("--eval", action="store_true", help="evaluate on the config's test set")
    ap.add_argument("--config", help="YAML config (default: the one stored in the checkpoint)")
    ap.add_argument("--data", help="data directory / file (default: the config's data.path)")
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--tolerance", type=float, default=1e-3,
                    help="largest |logit difference| from /logits/test accepted (default 1e-3)")
    args = ap.parse_args()
    status = 0
    for path in args.checkpoint:
        status |= report(path, args)
    return status


if __name__ == "__main__":
    sys.exit(main())
