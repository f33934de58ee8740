#!/usr/bin/python3
"""ranks_per_model 2 against 1 rank, with the gradient sum overlapped with backward or not.

One global batch B per step. "1 rank": `ensdistill bench ARCH --batch B` pinned to CPU 0.
"2 ranks": `mpirun --bind-to core -n 2 ensdistill bench ARCH --batch B/2 --grad-sum` (each
rank steps on its half, the gradient is summed in buckets of --bucket-mb MiB), with the
overlap on and with --no-overlap, over shared memory and over TCP (`--mca pml ob1 --mca btl
self,tcp --mca btl_tcp_if_include lo`, the transport between nodes). The variants alternate, --reps times, so that a change in the
machine's load hits them all. Prints, per variant, the global images/s (median step over the
reps' medians), the speed-up over one rank, and the time a rank spent in the gradient sum per
step (starting, advancing and waiting for it) with its share of the step.

    /usr/bin/python3 analysis/bench_dataparallel.py build/ensdistill --arch resnet-20
    /usr/bin/python3 analysis/bench_dataparallel.py build/ensdistill --arch wrn-16-4 \\
        --batch 128 --bucket-mb 1 4 --reps 3 --steps 10

Needs 2 free cores: the script prints the load average before and after. To see a slower
link than this machine's loopback, shape it for the TCP runs (root; `tc qdisc del dev lo root`
undoes it):

    tc qdisc add dev lo root tbf rate 1gbit burst 256kb latency 50ms
    /usr/bin/python3 analysis/bench_dataparallel.py build/ensdistill --nets tcp
"""

import argparse
import os
import re
import statistics
import subprocess
import sys


def load():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def result(out):
    m = re.search(r"^RESULT (.*)$", out, re.M)
    if not m:
        sys.exit("no RESULT line in:\n" + out)
    return {k: v for k, v in (kv.split("=", 1) for kv in m.group(1).split())}


def run(cmd, env):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{p.stdout}\n{p.stderr}")
    return p.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("binary")
    ap.add_argument("--arch", default="resnet-20")
    ap.add_argument("--batch", type=int, default=128, help="global batch")
    ap.add_argument("--bucket-mb", type=float, nargs="+", default=[0.25, 1.0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--nets", nargs="+", choices=["shm", "tcp"], default=["shm", "tcp"],
                    help="transports of the 2-rank runs")
    a = ap.parse_args()
    env = dict(os.environ)
    mpirun = ["mpirun", "--bind-to", "core", "-n", "2"]
    if os.geteuid() == 0:
        mpirun += ["--allow-run-as-root"]
    common = ["--threads", "1", "--steps", str(a.steps)]
    variants = [("1 rank", ["taskset", "-c", "0", a.binary, "bench", a.arch,
                            "--batch", str(a.batch)] + common)]
    # TCP only, on lo: tests/scripts/lib.sh's ED_MPI_TCP says why lo (Open MPI 5.0 on a NIC
    # with a global IPv6 address does not pair two ranks of one host)
    flags_of = {"shm": [], "tcp": ["--mca", "pml", "ob1", "--mca", "btl", "self,tcp",
                                   "--mca", "btl_tcp_if_include", "lo"]}
    nets = [(net, flags_of[net]) for net in a.nets]
    for net, flags in nets:
        for mb in a.bucket_mb:
            for overlap in (True, False):
                name = f"2 ranks {net}, {mb:g} MiB buckets, {'overlap' if overlap else 'after backward'}"
                cmd = mpirun + flags + [a.binary, "bench", a.arch, "--batch", str(a.batch // 2),
                                        "--grad-sum", "--bucket-mb", str(mb)] + common
                if not overlap:
                    cmd.append("--no-overlap")
                variants.append((name, cmd))
    print(f"load average {load():.2f} before; {a.arch}, global batch {a.batch}, "
          f"{a.reps} alternating reps of {a.steps} timed steps")
    seen = {name: [] for name, _ in variants}
    first = None
    for _ in range(a.reps):
        for name, cmd in variants:
            out = run(cmd, env)
            if first is None:
                first = out.splitlines()[0]
            r = result(out)
            ranks = 1 if name == "1 rank" else 2
            seen[name].append((ranks * float(r["images_per_s_median"]),
                               float(r["grad_sum_ms"]), float(r["grad_sum_fraction"])))
    print(first)
    base = statistics.median(x[0] for x in seen["1 rank"])
    print(f"| {'variant':<46} | images/s | speed-up | sum ms/step | sum share |")
    print(f"|{'-' * 48}|----------|----------|-------------|-----------|")
    for name, _ in variants:
        ips = statistics.median(x[0] for x in seen[name])
        ms = statistics.median(x[1] for x in seen[name])
        share = statistics.median(x[2] for x in seen[name])
        reps = ", ".join(f"{x[0]:.0f}" for x in seen[name])
        print(f"| {name:<46} | {ips:8.0f} | {ips / base:7.2f}x | {ms:11.2f} | {100 * share:8.1f}% |"
              f"  ({reps})")
    print(f"load average {load():.2f} after")


if __name__ == "__main__":
    main()
