#!/usr/bin/python3
"""Speed of one training step, ensdistill against PyTorch on the same machine.

For each architecture and thread count: PyTorch builds the same module (analysis/torch_models.py,
same state_dict as the C model) and times forward + cross-entropy + backward + SGD step
(momentum 0.9, Nesterov, weight decay 5e-4) on random data of the same batch, with
torch.set_num_threads(T) and OMP/OPENBLAS_NUM_THREADS=T (in a child interpreter); then
`ensdistill bench` runs the same step with T threads (--backend picks its conv kernels).
Prints images/s (median, and min-max over the timed steps) for both and the ratio.

    /usr/bin/python3 analysis/bench_torch.py build/ensdistill
    /usr/bin/python3 analysis/bench_torch.py build/ensdistill --arch cnn resnet-20 wrn-16-4 \\
        --batch 128 --threads 1 2 --steps 10 --warmup 2

Timings on a shared machine are noisy: the script prints the load average before each run
and flags runs that started while other processes were busy. Needs Debian's python3-torch.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import torch_models as tm  # noqa: E402


def default_input(arch):
    kind = tm.parse_arch(arch)[0]
    if kind in ("resnet", "wrn"):
        return (3, 32, 32)
    if kind == "mvconv":
        return (10, 1, 64)
    return (1, 28, 28)


def cpu_line():
    """The CPU line `ensdistill bench` prints (threads.c's cpu_describe), read the same way."""
    model, isa = "unknown", "other"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key == "model name" and model == "unknown":
                    model = value
                elif key == "flags" and isa == "other":
                    flags = set(value.split())
                    isa = next((n for f_, n in (("avx512f", "avx512f"), ("avx2", "avx2"),
                                               ("sse4_2", "sse4.2")) if f_ in flags), "other")
    except OSError:
        pass
    return f"cpu: {model}, {os.cpu_count()} CPUs online, widest ISA {isa}"


def load_average():
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except OSError:
        return float("nan")


def bench_torch(arch, shape, classes, batch, threads, steps, warmup, hidden):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    opts = {"hidden": hidden} if hidden else {}
    if arch == "mvconv":
        opts.update(mv_filters=8, srelu_q=3.0, srelu_rho=0.1, init_std=0.05)
    net = tm.build(arch, shape, classes, **opts)
    net.train()
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.01,
                          momentum=0.9, nesterov=True, weight_decay=5e-4)
    x = torch.randn(batch, *shape)
    y = torch.randint(0, classes, (batch,))
    times, cpu = [], []
    for s in range(warmup + steps):
        c0, t0 = time.process_time(), time.perf_counter()
        opt.zero_grad()
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        if s >= warmup:
            times.append(dt)
            cpu.append(dc)
    return times, cpu


def bench_torch_subprocess(arch, shape, classes, batch, threads, steps, warmup, hidden):
    """bench_torch in a fresh interpreter whose OpenBLAS and OpenMP pools have T threads too
    (torch.set_num_threads does not reach the OpenBLAS pool Debian's torch uses for Linear)."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    cmd = [sys.executable, os.path.abspath(__file__), "--torch-only", arch,
           "x".join(map(str, shape)), str(classes), str(batch), str(threads), str(steps),
           str(warmup), str(hidden)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"torch benchmark failed ({out.returncode}):\n{out.stderr}")
    wall, cpu = out.stdout.strip().splitlines()[-1].split("|")
    return [float(v) for v in wall.split()], [float(v) for v in cpu.split()]


def bench_ours(binary, arch, shape, classes, batch, threads, steps, warmup, hidden,
               backend="auto"):
    cmd = [binary, "bench", arch, "--batch", str(batch), "--threads", str(threads),
           "--steps", str(steps), "--warmup", str(warmup), "--classes", str(classes),
           "--input", "x".join(map(str, shape)), "--backend", backend]
    if hidden:
        cmd += ["--hidden", str(hidden)]
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stderr}")
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return {k: v for k, v in (kv.split("=", 1) for kv in line.split()[1:])}
    raise RuntimeError(f"no RESULT line in the output of {' '.join(cmd)}:\n{out.stdout}")


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--torch-only":
        arch, shape, rest = sys.argv[2], sys.argv[3], [int(v) for v in sys.argv[4:]]
        t, tc = bench_torch(arch, tuple(int(v) for v in shape.split("x")), *rest)
        print(" ".join(map(str, t)) + "|" + " ".join(map(str, tc)))
        return
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binary", help="path to the ensdistill executable")
    ap.add_argument("--arch", nargs="+", default=["cnn", "resnet-20", "wrn-16-4"])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--hidden", type=int, default=0, help="mlp/cnn hidden width (0: default)")
    ap.add_argument("--backend", default="auto", choices=["auto", "onednn", "blas"],
                    help="ensdistill's conv kernels (bench --backend)")
    args = ap.parse_args()

    print(cpu_line())
    print(f"torch mkldnn (oneDNN) enabled: {torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled}; "
          f"ensdistill --backend {args.backend}")
    print(f"torch {torch.__version__}, batch {args.batch}, {args.steps} timed steps after "
          f"{args.warmup} warm-up; wall-clock images/s median [min-max]; ratio = ours / torch "
          f"(> 1: we are faster); img/cpu-s = images per CPU-second of the process (all "
          f"threads), steadier than wall time on a shared machine; load = 1-min load average "
          f"before the pair of runs")
    header = (f"{'arch':<12} {'input':<8} {'thr':>3}  {'ensdistill img/s':>26}  "
              f"{'pytorch img/s':>26}  {'ratio':>5}  {'ours':>8} {'torch':>8} {'ratio':>5}  "
              f"load")
    print(f"{'':<12} {'':<8} {'':>3}  {'':>26}  {'':>26}  {'':>5}  {'img/cpu-s':>17} {'':>5}")
    print(header)
    print("-" * len(header))
    for arch in args.arch:
        shape = default_input(arch)
        for threads in args.threads:
            load = load_average()
            ours = bench_ours(args.binary, arch, shape, args.classes, args.batch, threads,
                              args.steps, args.warmup, args.hidden, args.backend)
            t, tc = bench_torch_subprocess(arch, shape, args.classes, args.batch, threads,
                                           args.steps, args.warmup, args.hidden)
            tmed = args.batch / statistics.median(t)
            tmin, tmax = args.batch / max(t), args.batch / min(t)
            omed = float(ours["images_per_s_median"])
            omin, omax = float(ours["images_per_s_min"]), float(ours["images_per_s_max"])
            ocpu = float(ours["images_per_cpu_s"])
            tcpu = args.batch / statistics.median(tc)
            busy = " busy" if load >= 0.5 else ""
            print(f"{arch:<12} {'x'.join(map(str, shape)):<8} {threads:>3}  "
                  f"{omed:>9.1f} [{omin:>6.1f}-{omax:>6.1f}]  "
                  f"{tmed:>9.1f} [{tmin:>6.1f}-{tmax:>6.1f}]  {omed / tmed:>5.2f}  "
                  f"{ocpu:>8.1f} {tcpu:>8.1f} {ocpu / tcpu:>5.2f}  {load:.2f}{busy}", flush=True)


if __name__ == "__main__":
    main()
