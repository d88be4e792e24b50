"""Throughput of riemlearn.distributed.frechet_mean: 2 gloo processes vs 1 process, same data.

Run: ``python benchmarks/distributed.py [--repeat R] [--quick] [--markdown PATH]``.

For every workload the same points are averaged

* by ``riemlearn.stats.frechet_mean`` in one process with 1 thread (rank 0 alone, while the
  other rank waits in a barrier);
* by ``riemlearn.distributed.frechet_mean`` in 2 gloo processes (loopback), 1 thread each,
  each holding half of the points: the time between two barriers on rank 0;

back to back in every repeat (paired, so load from other jobs on a shared machine hits both);
the speed-up is the median of the per-repeat ratios. Also: CPU seconds of the one process and of
rank 0 (the work split), and one process with 2 threads (torch intra-op parallelism) timed
afterwards in the parent. Process start-up and data generation are not timed; ``--threads`` is
ignored (every process uses 1 thread).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import warnings
from functools import partial

import torch
import torch.distributed as dist

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _harness import Table, machine_description, parse_args  # noqa: E402
from riemlearn.distributed import frechet_mean as dmean  # noqa: E402
from riemlearn.distributed import spawn_local  # noqa: E402
from riemlearn.manifolds import SPD, Sphere  # noqa: E402
from riemlearn.stats import frechet_mean as smean  # noqa: E402


def workloads(quick: bool):
    k = 4 if quick else 1
    return [
        ("SPD affine-invariant (Newton-CG)", SPD(16), 4096 // k, 16),
        ("SPD Bures-Wasserstein (fixed point)", SPD(16, metric="bures_wasserstein"), 4096 // k, 16),
        ("SPD log-Euclidean (closed form)", SPD(16, metric="log_euclidean"), 4096 // k, 16),
        ("sphere S^9 (Karcher gradient descent)", Sphere(10), 400000 // k, 10),
    ]


def data(m, n_pts: int, dim: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    if isinstance(m, Sphere):
        z = 0.4 * torch.randn(n_pts, dim, generator=g, dtype=torch.float64)
        z[:, 0] += 1
        return m.project_point(z)
    return m.random_point(n_pts, generator=g, dtype=torch.float64)


def _time(fn, repeat: int, sync=None) -> tuple[float, torch.Tensor, float]:
    """Median wall seconds, the result, median CPU seconds of this process."""
    out = fn()  # warm-up
    samples, cpu = [], []
    for _ in range(repeat):
        if sync:
            sync()
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        if sync:
            sync()
        samples.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(samples), out, statistics.median(cpu)


def worker(rank: int, world: int, outdir: str, quick: bool, repeat: int) -> None:
    """Paired timings: in every repeat rank 0 first averages all points alone (the other rank
    waits in a barrier), then both ranks average their halves; medians of both and of the
    per-repeat ratio are reported (load from other jobs hits both members of a pair)."""
    torch.set_num_threads(1)
    warnings.simplefilter("ignore", RuntimeWarning)
    res = []
    for _, m, n_pts, dim in workloads(quick):
        x = data(m, n_pts, dim)
        half = n_pts // world
        xl = x[rank * half:(rank + 1) * half if rank < world - 1 else n_pts].clone()
        one, two, ratio, cpu1, cpu2 = [], [], [], [], []
        with torch.no_grad():
            dmean(xl, m)  # warm-up
            if rank == 0:
                smean(x, m)
            for _ in range(repeat):
                dist.barrier()
                if rank == 0:
                    t0, c0 = time.perf_counter(), time.process_time()
                    ref = smean(x, m)
                    one.append(time.perf_counter() - t0)
                    cpu1.append(time.process_time() - c0)
                dist.barrier()
                t0, c0 = time.perf_counter(), time.process_time()
                mean = dmean(xl, m)
                dist.barrier()
                two.append(time.perf_counter() - t0)
                cpu2.append(time.process_time() - c0)
                if rank == 0:
                    ratio.append(one[-1] / two[-1])
        if rank == 0:
            med = statistics.median
            res.append({"one": med(one), "two": med(two), "ratio": med(ratio), "cpu1": med(cpu1),
                        "cpu2": med(cpu2), "diff": float((mean - ref).abs().max())})
    if rank == 0:
        torch.save(res, os.path.join(outdir, "dist.pt"))


def main(argv=None) -> None:
    args = parse_args(__doc__.splitlines()[0], argv)
    warnings.simplefilter("ignore", RuntimeWarning)
    out = tempfile.mkdtemp()
    spawn_local(worker, 2, (out, args.quick, args.repeat), timeout=1800)
    dist_res = torch.load(os.path.join(out, "dist.pt"), weights_only=False)
    load = os.getloadavg()[0]
    table = Table("Fréchet mean of N points (float64), median seconds; paired: 1 process (1 thread) vs 2 "
                  "processes (1 thread each, half of the points each)",
                  ["workload", "N", "1 process", "2 processes", "speed-up (median of paired ratios)",
                   "CPU s: 1 process / rank 0 of 2", "1 process, 2 threads", "max |diff| to 1 process"])
    for (name, m, n_pts, dim), r in zip(workloads(args.quick), dist_res, strict=True):
        x = data(m, n_pts, dim)
        with torch.no_grad():
            torch.set_num_threads(2)
            t2t, _, _ = _time(partial(smean, x, m), args.repeat)
            torch.set_num_threads(1)
        table.add(name, n_pts, r["one"], r["two"], r["ratio"], f"{r['cpu1']:.2f} / {r['cpu2']:.2f}", t2t,
                  f"{r['diff']:.1e}")
    md = (f"Machine: {machine_description()}. Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
          f"load average {load:.1f} at the end (shared box: other jobs ran at the same time). "
          f"gloo on loopback, no GPU/NCCL in this run.\n\n" + table.markdown())
    print(md)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(md)


if __name__ == "__main__":
    main()
