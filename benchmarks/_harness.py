"""Tiny timing harness shared by the benchmark scripts (not part of the package).

``timeit(fn)`` runs warm-up calls, then ``repeat`` timed calls, and returns the median in
seconds. ``Table`` collects rows, prints them, and returns them as markdown. ``parse_args``
gives every script the same ``--threads`` / ``--repeat`` / ``--quick`` options and applies the
thread count to torch and to the BLAS pools of numpy/scipy (:func:`limit_threads`; scripts only,
library code never does).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

__all__ = ["timeit", "time_ratio", "Table", "parse_args", "machine_description"]


def timeit(fn: Callable[[], Any], *, repeat: int = 7, warmup: int = 2, min_time: float = 0.0) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeat`` runs after ``warmup`` runs.

    With ``min_time`` > 0 each timed sample loops ``fn`` until at least that long has passed
    and reports the per-call mean of that sample (for very fast calls).
    """
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        calls = 0
        t0 = time.perf_counter()
        while True:
            fn()
            calls += 1
            elapsed = time.perf_counter() - t0
            if elapsed >= min_time:
                break
        samples.append(elapsed / calls)
    return statistics.median(samples)


class Table:
    """Rows of results; ``print`` as they come, ``markdown()`` at the end."""

    def __init__(self, title: str, columns: Sequence[str]) -> None:
        self.title = title
        self.columns = list(columns)
        self.rows: list[list[str]] = []

    def add(self, *values: Any, echo: bool = True) -> list[str]:
        if len(values) != len(self.columns):
            raise ValueError(f"expected {len(self.columns)} values, got {len(values)}")
        row = [_fmt(v) for v in values]
        self.rows.append(row)
        if echo:
            print(" | ".join(row), flush=True)
        return row

    def markdown(self) -> str:
        lines = [f"#### {self.title}", ""]
        lines.append("| " + " | ".join(self.columns) + " |")
        lines.append("|" + "|".join("---" for _ in self.columns) + "|")
        lines += ["| " + " | ".join(r) + " |" for r in self.rows]
        return "\n".join(lines) + "\n"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if v != v:
            return "nan"
        if abs(v) >= 100 or v == int(v):
            return f"{v:.0f}"
        return f"{v:.3g}" if abs(v) < 0.01 else f"{v:.2f}"
    return str(v)


_BLAS_LIMITS: list = []


def limit_threads(n: int) -> None:
    """Give every library ``n`` threads: torch's pool, and the BLAS/OpenMP pools of numpy and
    scipy (the peers' backends). Before 2026-11-23 only torch was limited: numpy's OpenBLAS
    kept a second thread, which sped the peers' large products a little and doubled their
    CPU time (pymanopt-numpy on Grassmann(1000, 10): 11.0 s CPU for 5.5 s wall)."""
    torch.set_num_threads(n)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)  # for libraries loaded from now on (pymanopt pulls in scipy)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # scikit-learn brings it; without it only the variables apply
        return
    _BLAS_LIMITS.append(threadpool_limits(limits=n))  # for those already loaded


def parse_args(description: str, argv: Sequence[str] | None = None,
               device_help: str | None = None) -> argparse.Namespace:
    """Common CLI: ``--threads N`` (applied here), ``--repeat R``, ``--quick``, ``--markdown PATH``;
    with ``device_help``, also ``--device {cpu,cuda}`` (exits if CUDA is asked for and absent)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--threads", type=int, default=1,
                   help="threads of torch and of the numpy/scipy BLAS (default 1)")
    p.add_argument("--repeat", type=int, default=7, help="timed repeats; the median is reported")
    p.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats (smoke test)")
    p.add_argument("--markdown", default=None, help="also write the markdown tables to this file")
    if device_help is not None:
        p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help=device_help)
    args = p.parse_args(argv)
    if device_help is not None and args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda requested but CUDA is not available (torch "
                         f"{torch.__version__}); run on a GPU machine or use --device cpu")
    limit_threads(args.threads)
    if args.quick:
        args.repeat = min(args.repeat, 3)
    return args


def machine_description() -> str:
    """CPU model, core count, torch version: one line."""
    import os
    import platform

    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, torch {torch.__version__}, Python {platform.python_version()}"


def default_settle() -> float:
    """Untimed pause before a timed call: 0.15 s with more than one thread, else none (see
    :func:`time_ratio`)."""
    return 0.15 if torch.get_num_threads() > 1 else 0.0


def time_ratio(
    fn: Callable[[], Any], ref: Callable[[], Any], *, repeat: int = 7, warmup: int = 2,
    settle: float | None = None,
) -> tuple[float, float]:
    """Median of paired ratios ``time(fn) / time(ref)``, and the median ``fn`` time in seconds.

    ``ref`` and ``fn`` are timed one after the other in every repeat, so a load spike from other
    processes hits both and largely cancels in the ratio. With more than one thread, each side
    is preceded by a pause of ``settle`` seconds (default 0.15) and one untimed call of its own:
    thread pools busy-wait after they finish (numpy's OpenBLAS for ~0.1 s, torch's OpenMP for
    milliseconds) and would otherwise hold a core while the other side runs — measured: a
    riemlearn Fréchet mean timed right after pyriemann's took 142 ms instead of 82 ms — and
    the untimed call takes the cost of waking sleeping threads after the pause (measured: a
    Bures–Wasserstein exp of 1024×22×22 took 9.1 ms right after a pause, 7.5 ms warm).
    """
    if settle is None:
        settle = default_settle()
    for _ in range(warmup):
        ref()
        fn()
    ratios, times = [], []
    for _ in range(repeat):
        if settle:
            time.sleep(settle)
            ref()
        t0 = time.perf_counter()
        ref()
        t_ref = time.perf_counter() - t0
        if settle:
            time.sleep(settle)
            fn()
        t1 = time.perf_counter()
        fn()
        t2 = time.perf_counter()
        ratios.append((t2 - t1) / t_ref)
        times.append(t2 - t1)
    return statistics.median(ratios), statistics.median(times)


def device_label(device: str) -> str:
    """``"GPU (<name>)"`` for CUDA, else ``"CPU"`` (table titles)."""
    return f"GPU ({torch.cuda.get_device_name()})" if device == "cuda" else "CPU"
