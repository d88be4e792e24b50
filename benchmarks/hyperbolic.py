"""Poincaré ball and Lorentz operations: riemlearn vs geoopt 0.5.1, speed and near-boundary error.

Workload: N = 100 000 points of dimension 16 (float32 and float64) drawn at distance ~1 from the
origin, plus the same count at ‖x‖ = 1 − 1e-7 (float64) for the accuracy column. Timed: Möbius
addition, distance, exp and log (forward only), as the median of paired ratios
``time(riemlearn) / time(geoopt)`` on the same inputs in the same process. riemlearn evaluates
``1 − c‖x‖²`` nearly exactly (fixed-grid split of the sum of squares), which is the main cost
difference; geoopt clamps instead (its distances are up to 49 % short at ‖x‖ = 1 − 1e-7).

Error column: relative error of ``dist(x, y)`` for a random pair at ‖x‖ = ‖y‖ = 1 − 1e-7 against
the same formula evaluated in mpmath (60 digits) on the stored coordinates (max over 200 pairs).

Run: ``python benchmarks/hyperbolic.py --threads 1`` (see ``benchmarks/run.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Table, parse_args, time_ratio  # noqa: E402
from riemlearn.manifolds import lorentz as L  # noqa: E402
from riemlearn.manifolds import mobius as M  # noqa: E402
from riemlearn.manifolds import poincare as P  # noqa: E402


def _mp_dist(x, y) -> float:
    import mpmath

    mpmath.mp.dps = 60
    X = [mpmath.mpf(float(t)) for t in x]
    Y = [mpmath.mpf(float(t)) for t in y]
    nx, ny = sum(t * t for t in X), sum(t * t for t in Y)
    d2 = sum((a - b) ** 2 for a, b in zip(X, Y, strict=True))
    return float(mpmath.acosh(1 + 2 * d2 / ((1 - nx) * (1 - ny))))


def _boundary_error(fn) -> float:
    g = torch.Generator().manual_seed(1)
    x = torch.nn.functional.normalize(torch.randn(200, 16, generator=g, dtype=torch.float64), dim=-1)
    y = torch.nn.functional.normalize(torch.randn(200, 16, generator=g, dtype=torch.float64), dim=-1)
    x, y = x * (1 - 1e-7), y * (1 - 1e-7)
    d = fn(x, y)
    return max(abs(float(d[i]) - _mp_dist(x[i], y[i])) / _mp_dist(x[i], y[i]) for i in range(200))


def _cases(geoopt, dt: torch.dtype, n_pts: int, g: torch.Generator) -> list:
    x = M.expmap0(0.3 * torch.randn(n_pts, 16, generator=g, dtype=dt), 1.0)
    y = M.expmap0(0.3 * torch.randn(n_pts, 16, generator=g, dtype=dt), 1.0)
    u = 0.3 * torch.randn(n_pts, 16, generator=g, dtype=dt)
    gb = geoopt.PoincareBall(c=torch.tensor(1.0, dtype=dt))
    gl = geoopt.Lorentz(k=torch.tensor(1.0, dtype=dt))
    lx = L.project_point(torch.cat((x[:, :1], 3 * x), -1), 1.0)
    ly = L.project_point(torch.cat((y[:, :1], 3 * y), -1), 1.0)
    return [
        ("ball gyro_add", lambda: M.gyro_add(x, y, 1.0), lambda: gb.mobius_add(x, y)),
        ("ball dist", lambda: P.dist(x, y, 1.0), lambda: gb.dist(x, y)),
        ("ball exp", lambda: P.exp(x, u, 1.0), lambda: gb.expmap(x, u)),
        ("ball log", lambda: P.log(x, y, 1.0), lambda: gb.logmap(x, y)),
        ("lorentz dist", lambda: L.dist(lx, ly, 1.0), lambda: gl.dist(lx, ly)),
    ]


def main(argv: list[str] | None = None) -> list[Table]:
    import geoopt

    args = parse_args(__doc__.splitlines()[0], argv)
    n_pts = 10_000 if args.quick else 100_000
    table = Table(f"Poincaré ball / Lorentz, N={n_pts}, dim 16: riemlearn time / geoopt time",
                  ["op", "dtype", "ratio", "riemlearn ms"])
    g = torch.Generator().manual_seed(0)
    for dt in (torch.float32, torch.float64):
        for name, ours, theirs in _cases(geoopt, dt, n_pts, g):
            ratio, t = time_ratio(ours, theirs, repeat=args.repeat)
            table.add(name, str(dt).replace("torch.", ""), ratio, 1e3 * t)
    acc = Table("dist(x, y) at ‖x‖ = ‖y‖ = 1 − 1e-7 (float64), max relative error vs mpmath",
                ["library", "max rel error"])
    gb = geoopt.PoincareBall(c=torch.tensor(1.0, dtype=torch.float64))
    acc.add("riemlearn", _boundary_error(lambda a, b: P.dist(a, b, 1.0)))
    acc.add("geoopt", _boundary_error(lambda a, b: gb.dist(a, b)))
    return [table, acc]


if __name__ == "__main__":
    main()
