#!/usr/bin/python3
"""Speed of one training step, ensdistill against PyTorch on the same machine.

For each architecture and thread count, `ensdistill bench` runs the training step with T threads
(--backend picks its conv kernels); then PyTorch builds the same module (analysis/torch_models.py,
same state_dict as the C model) and times forward + cross-entropy + backward + SGD step
(momentum 0.9, Nesterov, weight decay 5e-4) on random data of the same batch in four
configurations: fp32 and bf16 autocast, each in NCHW and in channels_last (the layout PyTorch
advises for oneDNN on CPU). Each PyTorch configuration runs in a fresh interpreter with every
thread pool pinned to T and checked: torch's intra-op pool (torch.set_num_threads), its inter-op
pool (1: eager training does not use it), OpenMP (OMP_NUM_THREADS) and OpenBLAS, which Debian's
torch calls for Linear (OPENBLAS_NUM_THREADS, and openblas_get_num_threads read back through
ctypes). Prints every PyTorch row, ours against each and against the fastest.
bf16 autocast rows, and ours in bf16 (bench --precision bf16, with its share of the bf16 peak
bench measures), run only where the CPU has bf16 instructions (avx512_bf16 or amx_bf16):
elsewhere oneDNN emulates them (or refuses) and the rows are skipped, saying why.

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


CONFIGS = [("fp32", "nchw"), ("fp32", "channels_last"), ("bf16", "nchw"),
           ("bf16", "channels_last")]


def cpu_bf16():
    """None when the CPU has bf16 instructions, else the reason a bf16 row is skipped."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f
                          if line.startswith("flags")), [])
    except OSError:
        return "no /proc/cpuinfo to tell whether the CPU has bf16 instructions"
    if "avx512_bf16" in flags or "amx_bf16" in flags:
        return None
    return ("the CPU lacks avx512_bf16 (and amx_bf16): oneDNN would emulate bf16 or fall back, "
            "which is no comparison")


def pin_pools(threads):
    """Pins torch's pools to `threads` (intra-op) and 1 (inter-op) and checks OpenBLAS's and
    OpenMP's; returns a description. Raises when a pool is not at `threads`."""
    import ctypes
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    blas = "not loaded"
    with open("/proc/self/maps") as f:
        libs = sorted({line.split()[-1] for line in f if "libopenblas" in line})
    for lib in libs:
        handle = ctypes.CDLL(lib)
        if hasattr(handle, "openblas_get_num_threads"):
            n = handle.openblas_get_num_threads()
            if n != threads:
                handle.openblas_set_num_threads(threads)
                n = handle.openblas_get_num_threads()
            if n != threads:
                raise RuntimeError(f"{lib}: {n} OpenBLAS threads, wanted {threads}")
            blas = str(n)
    if torch.get_num_threads() != threads:
        raise RuntimeError(f"torch intra-op threads {torch.get_num_threads()}, wanted {threads}")
    omp = os.environ.get("OMP_NUM_THREADS")
    if omp != str(threads):
        raise RuntimeError(f"OMP_NUM_THREADS={omp}, wanted {threads}")
    return (f"intra-op {torch.get_num_threads()} inter-op {torch.get_num_interop_threads()} "
            f"OMP {omp} OpenBLAS {blas}")


def bench_torch(arch, shape, classes, batch, threads, steps, warmup, hidden, precision, layout):
    """Wall and CPU seconds per timed step, the RSS before the model was built (torch
    imported, threads set), the peak RSS after the steps (MiB) and the pools' threads."""
    pools = pin_pools(threads)
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
    if layout == "channels_last":
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    times, cpu = [], []
    for s in range(warmup + steps):
        c0, t0 = time.process_time(), time.perf_counter()
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        if s >= warmup:
            times.append(dt)
            cpu.append(dc)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return times, cpu, rss_before, peak, pools


def bench_torch_subprocess(arch, shape, classes, batch, threads, steps, warmup, hidden,
                           precision, layout):
    """bench_torch in a fresh interpreter whose every pool has T threads (the environment is
    read when the libraries load; torch.set_num_threads does not reach OpenBLAS)."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               GOTO_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    cmd = [sys.executable, os.path.abspath(__file__), "--torch-only", arch,
           "x".join(map(str, shape)), str(classes), str(batch), str(threads), str(steps),
           str(warmup), str(hidden), precision, layout]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"torch benchmark failed ({out.returncode}):\n{out.stderr}")
    wall, cpu, rss_before, peak, pools = out.stdout.strip().splitlines()[-1].split("|")
    return ([float(v) for v in wall.split()], [float(v) for v in cpu.split()], float(rss_before),
            float(peak), pools)


def bench_ours(binary, arch, shape, classes, batch, threads, steps, warmup, hidden,
               backend="auto", precision="fp32"):
    cmd = [binary, "bench", arch, "--batch", str(batch), "--threads", str(threads),
           "--steps", str(steps), "--warmup", str(warmup), "--classes", str(classes),
           "--input", "x".join(map(str, shape)), "--backend", backend, "--precision", precision]
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
        arch, shape, rest = sys.argv[2], sys.argv[3], [int(v) for v in sys.argv[4:10]]
        t, tc, rss_before, peak, pools = bench_torch(
            arch, tuple(int(v) for v in shape.split("x")), *rest, sys.argv[10], sys.argv[11])
        print(" ".join(map(str, t)) + "|" + " ".join(map(str, tc)) +
              f"|{rss_before}|{peak}|{pools}")
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
    bf16_skip = cpu_bf16()
    print(f"torch {torch.__version__}, mkldnn (oneDNN) enabled: "
          f"{torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled}; "
          f"ensdistill --backend {args.backend}; batch {args.batch}, {args.steps} timed steps "
          f"after {args.warmup} warm-up")
    print("images/s: wall-clock median [min-max] over the timed steps; img/cpu-s: images per "
          "CPU-second of the process (all threads), steadier on a shared machine; ours/row = "
          "our fp32 images/s over the row's; GFLOP/s = ours, 3 x forward conv + linear FLOPs "
          "per image, and its share of bench's measured FMA peak (per core x threads); memory "
          "MiB: ours = arenas / peak RSS, torch = peak RSS minus the RSS before the model / "
          "peak RSS; load = 1-min load average before the runs ('busy' from 0.5)")
    if bf16_skip:
        print(f"bf16 autocast rows skipped: {bf16_skip}")
    peak = float("nan")
    for arch in args.arch:
        shape = default_input(arch)
        for threads in args.threads:
            load = load_average()
            ours = bench_ours(args.binary, arch, shape, args.classes, args.batch, threads,
                              args.steps, args.warmup, args.hidden, args.backend)
            omed = float(ours["images_per_s_median"])
            omin, omax = float(ours["images_per_s_min"]), float(ours["images_per_s_max"])
            gflops, peak = float(ours["gflops_median"]), float(ours["fma_peak_gflops"])
            busy = " busy" if load >= 0.5 else ""
            print(f"\n{arch} ({'x'.join(map(str, shape))}), {threads} thread(s), load "
                  f"{load:.2f}{busy}")
            print(f"  {'ensdistill fp32':<34} {omed:>8.1f} [{omin:.1f}-{omax:.1f}] img/s, "
                  f"{float(ours['images_per_cpu_s']):.1f} img/cpu-s, "
                  f"{ours['backend']}:{ours['kernels_isa']}, {gflops:.1f} GFLOP/s "
                  f"({100 * gflops / (peak * threads):.0f}% of peak), memory "
                  f"{float(ours['arenas_mib']):.0f}/{float(ours['peak_rss_mib']):.0f}")
            bmed = None
            if not bf16_skip:  # ours in bf16 (train.precision: bf16) beside it
                ob = bench_ours(args.binary, arch, shape, args.classes, args.batch, threads,
                                args.steps, args.warmup, args.hidden, args.backend, "bf16")
                bmed, bg = float(ob["images_per_s_median"]), float(ob["gflops_median"])
                bpeak = float(ob["bf16_peak_gflops"])
                print(f"  {'ensdistill bf16':<34} {bmed:>8.1f} [{float(ob['images_per_s_min']):.1f}-"
                      f"{float(ob['images_per_s_max']):.1f}] img/s, "
                      f"{float(ob['images_per_cpu_s']):.1f} img/cpu-s, {bg:.1f} GFLOP/s "
                      f"({100 * bg / (bpeak * threads):.0f}% of the bf16 peak {bpeak:.1f}), "
                      f"bf16/fp32 {bmed / omed:.2f}, memory "
                      f"{float(ob['arenas_mib']):.0f}/{float(ob['peak_rss_mib']):.0f}")
            rows = []
            for precision, layout in CONFIGS:
                name = f"torch {precision}{' autocast' if precision == 'bf16' else ''} {layout}"
                if precision == "bf16" and bf16_skip:
                    print(f"  {name:<34} skipped: no bf16 instructions")
                    continue
                t, tc, t_rss0, t_peak, pools = bench_torch_subprocess(
                    arch, shape, args.classes, args.batch, threads, args.steps, args.warmup,
                    args.hidden, precision, layout)
                tmed = args.batch / statistics.median(t)
                rows.append((tmed, name))
                print(f"  {name:<34} {tmed:>8.1f} [{args.batch / max(t):.1f}-"
                      f"{args.batch / min(t):.1f}] img/s, "
                      f"{args.batch / statistics.median(tc):.1f} img/cpu-s, ours/row "
                      f"{omed / tmed:.2f}, memory {t_peak - t_rss0:.0f}/{t_peak:.0f}; pools: "
                      f"{pools}", flush=True)
            if rows:
                best, best_name = max(rows)
                print(f"  fastest PyTorch row: {best_name}, {best:.1f} img/s; every row against "
                      f"it: " + ", ".join(f"{n.removeprefix('torch ')} {v / best:.2f}"
                                           for v, n in rows) +
                      f"; ours fp32 against it: {omed / best:.2f}" +
                      (f", ours bf16 against it: {bmed / best:.2f}" if bmed else ""))
    print(f"\nensdistill's FMA peak per core, measured by bench: {peak:.1f} GFLOP/s (12 "
          f"independent chains of the widest fp32 FMA the build has, 0.3 s)")


if __name__ == "__main__":
    main()
