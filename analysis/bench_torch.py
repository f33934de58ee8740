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
import resource
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
    """The CPU line `ensdistill bench` prints (threads.c's threads_cpu_describe), read the same
    way: model name, x86 family / model / stepping (-1 when absent), CPUs, widest ISA."""
    model, isa = "unknown", "other"
    numbers = {"cpu family": -1, "model": -1, "stepping": -1}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key in numbers and numbers[key] < 0:
                    numbers[key] = int(value) if value.isdigit() else -1
                elif key == "model name" and model == "unknown":
                    model = value
                elif key == "flags" and isa == "other":
                    flags = set(value.split())
                    isa = next((n for f_, n in (("avx512f", "avx512f"), ("avx2", "avx2"),
                                               ("sse4_2", "sse4.2")) if f_ in flags), "other")
    except OSError:
        pass
    return (f"cpu: {model} (family {numbers['cpu family']} model {numbers['model']} stepping "
            f"{numbers['stepping']}), {os.cpu_count()} CPUs online, widest ISA {isa}")


def rss_mib():
    """Resident set size of this process now, MiB (/proc/self/status VmRSS)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def load_average():
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except OSError:
        return float("nan")


def bench_torch(arch, shape, classes, batch, threads, steps, warmup, hidden):
    """Wall and CPU seconds per timed step, the RSS before the model was built (torch
    imported, threads set) and the peak RSS after the steps (MiB)."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    rss_before = rss_mib()
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
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return times, cpu, rss_before, peak


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
    wall, cpu, rss_before, peak = out.stdout.strip().splitlines()[-1].split("|")
    return ([float(v) for v in wall.split()], [float(v) for v in cpu.split()], float(rss_before),
            float(peak))


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
        t, tc, rss_before, peak = bench_torch(arch, tuple(int(v) for v in shape.split("x")), *rest)
        print(" ".join(map(str, t)) + "|" + " ".join(map(str, tc)) + f"|{rss_before}|{peak}")
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
          f"threads), steadier than wall time on a shared machine; GFLOP/s = ours, 3 x forward "
          f"conv + linear FLOPs per image at the median step, and its share of the FMA peak "
          f"that bench measured (per core x threads); memory in MiB: ours = arenas (every "
          f"tensor, gradient, optimizer state and scratch of the step) / peak RSS, torch = peak "
          f"RSS minus the RSS before the model was built (torch imported) / peak RSS; load = "
          f"1-min load average before the pair of runs")
    header = (f"{'arch':<10} {'input':<8} {'thr':>3} {'isa':<23}  {'ensdistill img/s':>24}  "
              f"{'pytorch img/s':>24}  {'ratio':>5}  {'img/cpu-s ours':>14} {'torch':>7} "
              f"{'ratio':>5}  {'GFLOP/s':>7} {'%peak':>5}  {'mem ours':>13} {'mem torch':>13}"
              f"  load")
    print(header)
    print("-" * len(header))
    for arch in args.arch:
        shape = default_input(arch)
        for threads in args.threads:
            load = load_average()
            ours = bench_ours(args.binary, arch, shape, args.classes, args.batch, threads,
                              args.steps, args.warmup, args.hidden, args.backend)
            t, tc, t_rss0, t_peak = bench_torch_subprocess(arch, shape, args.classes, args.batch,
                                                           threads, args.steps, args.warmup,
                                                           args.hidden)
            tmed = args.batch / statistics.median(t)
            tmin, tmax = args.batch / max(t), args.batch / min(t)
            omed = float(ours["images_per_s_median"])
            omin, omax = float(ours["images_per_s_min"]), float(ours["images_per_s_max"])
            ocpu = float(ours["images_per_cpu_s"])
            tcpu = args.batch / statistics.median(tc)
            gflops, peak = float(ours["gflops_median"]), float(ours["fma_peak_gflops"])
            isa = f"{ours['backend']}:{ours['kernels_isa']}"
            mem_ours = f"{float(ours['arenas_mib']):.0f}/{float(ours['peak_rss_mib']):.0f}"
            mem_torch = f"{t_peak - t_rss0:.0f}/{t_peak:.0f}"
            busy = " busy" if load >= 0.5 else ""
            print(f"{arch:<10} {'x'.join(map(str, shape)):<8} {threads:>3} {isa:<23}  "
                  f"{omed:>7.1f} [{omin:>6.1f}-{omax:>6.1f}]  "
                  f"{tmed:>7.1f} [{tmin:>6.1f}-{tmax:>6.1f}]  {omed / tmed:>5.2f}  "
                  f"{ocpu:>14.1f} {tcpu:>7.1f} {ocpu / tcpu:>5.2f}  "
                  f"{gflops:>7.1f} {100 * gflops / (peak * threads):>4.0f}%  "
                  f"{mem_ours:>13} {mem_torch:>13}  {load:.2f}{busy}", flush=True)
    print(f"ensdistill's FMA peak per core, measured by bench: {peak:.1f} GFLOP/s (12 "
          f"independent chains of the widest fp32 FMA the build has, 0.3 s)")

if __name__ == "__main__":
    main()
