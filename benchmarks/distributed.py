"""Throughput of riemlearn.distributed.frechet_mean: 2 gloo processes vs 1 process, same data.

Run: ``python benchmarks/distributed.py [--repeat R] [--quick] [--markdown PATH]``.

For every workload the same points are averaged

* in one process, 1 thread: ``riemlearn.stats.frechet_mean`` and the distributed function
  (no process group: the same loops without communication);
* in one process, 2 threads (torch intra-op parallelism: the fair single-process baseline on a
  2-core machine);
* in 2 gloo processes (loopback), 1 thread each, each rank holding half of the points: the
  time between two barriers on rank 0 (process start-up and data generation not counted).

Each process is pinned to 1 thread (``--threads`` is ignored). The speed-up is
``time(1 process, 1 thread) / time(2 processes)``.
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


def _time(fn, repeat: int, sync=None) -> tuple[float, torch.Tensor]:
    out = fn()  # warm-up
    samples = []
    for _ in range(repeat):
        if sync:
            sync()
        t0 = time.perf_counter()
        out = fn()
        if sync:
            sync()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples), out


def worker(rank: int, world: int, outdir: str, quick: bool, repeat: int) -> None:
    torch.set_num_threads(1)
    warnings.simplefilter("ignore", RuntimeWarning)
    res = []
    for _, m, n_pts, dim in workloads(quick):
        x = data(m, n_pts, dim)
        half = n_pts // world
        xl = x[rank * half:(rank + 1) * half if rank < world - 1 else n_pts].clone()
        with torch.no_grad():
            t, mean = _time(partial(dmean, xl, m), repeat, dist.barrier)
        res.append((t, mean))
    if rank == 0:
        torch.save(res, os.path.join(outdir, "dist.pt"))


def main(argv=None) -> None:
    args = parse_args(__doc__.splitlines()[0], argv)
    warnings.simplefilter("ignore", RuntimeWarning)
    out = tempfile.mkdtemp()
    spawn_local(worker, 2, (out, args.quick, args.repeat), timeout=1800)
    dist_res = torch.load(os.path.join(out, "dist.pt"), weights_only=False)
    load = os.getloadavg()[0]
    table = Table("Fréchet mean of N points (float64): median seconds; speed-up = 1 proc 1 thread / 2 procs",
                  ["workload", "N", "stats 1 thr", "distributed API 1 proc 1 thr", "1 proc 2 thr",
                   "2 procs (1 thr each)", "speed-up vs 1 thr", "speed-up vs 2 thr", "max |diff|"])
    for (name, m, n_pts, dim), (t2p, mean2p) in zip(workloads(args.quick), dist_res, strict=True):
        x = data(m, n_pts, dim)
        with torch.no_grad():
            torch.set_num_threads(1)
            ts, ref = _time(partial(smean, x, m), args.repeat)
            td, _ = _time(partial(dmean, x, m), args.repeat)
            torch.set_num_threads(2)
            t2t, _ = _time(partial(smean, x, m), args.repeat)
            torch.set_num_threads(1)
        diff = float((mean2p - ref).abs().max())
        table.add(name, n_pts, ts, td, t2t, t2p, td / t2p, t2t / t2p, f"{diff:.1e}")
    md = (f"Machine: {machine_description()}. Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
          f"load average {load:.1f} at the end (shared box: other jobs ran at the same time). "
          f"gloo on loopback, no GPU/NCCL in this run.\n\n" + table.markdown())
    print(md)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(md)


if __name__ == "__main__":
    main()
