"""Affine-invariant Fréchet mean: riemlearn ``frechet_mean`` vs pyriemann ``mean_riemann``.

Same process, same float64 inputs, N = 1000 matrices, n = 22 and 64, three data sets:

* ``well``: sample covariances of 10n Gaussian samples (condition number ~3),
* ``cond1e6``: ``A Sᵢ Aᵀ`` with ``Sᵢ`` as above and ``A`` of condition 1e3 (matrices of
  condition ~1e6),
* ``spread``: ``exp(Zᵢ)`` with ``‖Zᵢ‖_F = 6.4`` (mean pairwise distance ~9).

Both stop on the Frobenius norm of the whitened gradient ``Σ wᵢ log(M^{-1/2} Xᵢ M^{-1/2})`` at
``tol = 1e-9`` (pyriemann measures it *before* its last update, riemlearn at the returned mean).
Reported: time (median of paired runs), iterations (pyriemann's counted by wrapping its ``expm``),
the gradient norm at each returned mean recomputed independently, and the relative difference
between the two means. geomstats is not installed here, so its ``FrechetMean`` is not compared.

Run: ``python benchmarks/run.py stats_mean --repeat 3`` (or this file directly).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Table, parse_args, time_ratio  # noqa: E402
from riemlearn.manifolds import SPD  # noqa: E402
from riemlearn.manifolds.spectral import expm, invsqrtm, logm, sym  # noqa: E402
from riemlearn.stats.frechet_mean import frechet_mean  # noqa: E402

D = torch.float64
TOL = 1e-9


def make(kind: str, n_pts: int, n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if kind == "spread":
        z = sym(torch.randn(n_pts, n, n, generator=g, dtype=D))
        return expm(z / z.norm(dim=(-2, -1), keepdim=True) * 6.4)
    w = torch.randn(n_pts, n, 10 * n, generator=g, dtype=D)
    s = w @ w.mT / (10 * n)
    if kind == "well":
        return s
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=D))
    a = q * torch.logspace(0, 3, n, dtype=D)
    return sym(a @ s @ a.mT)


def grad_norm(mean: torch.Tensor, x: torch.Tensor) -> float:
    h = invsqrtm(mean)
    return float(logm(h @ x @ h).mean(0).norm())


def main(argv: list[str] | None = None) -> list[Table]:
    args = parse_args(__doc__.splitlines()[0], argv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pyriemann.geometry.mean as pgm
        import pyriemann.utils.mean as pm
    sizes = (22,) if args.quick else (22, 64)
    n_pts = 200 if args.quick else 1000
    table = Table(
        f"Affine-invariant Fréchet mean, N={n_pts}, float64, tol {TOL:g} "
        "(riemlearn frechet_mean vs pyriemann mean_riemann)",
        ["n", "data", "riemlearn s", "pyriemann s", "speed-up", "iters rl/pr", "grad rl", "grad pr",
         "rel diff"],
    )
    counter = {"k": 0}
    real_expm = pgm.expm

    def counting_expm(*a, **k):
        counter["k"] += 1
        return real_expm(*a, **k)

    m = SPD(metric="affine_invariant")
    for n in sizes:
        for kind in ("well", "cond1e6", "spread"):
            x = make(kind, n_pts, n)
            xn = x.numpy()

            def ours(x=x):
                return frechet_mean(x, m, tol=TOL, return_info=True)

            def peer(xn=xn):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    return pm.mean_riemann(xn, tol=TOL, maxiter=100)

            mean, info = ours()
            pgm.expm = counting_expm
            counter["k"] = 0
            try:
                ref = peer()
                iters_pr = counter["k"]
            finally:
                pgm.expm = real_expm
            ratio, t_ours = time_ratio(ours, peer, repeat=args.repeat, warmup=0)
            t_peer = t_ours / ratio
            ref_t = torch.from_numpy(ref)
            gr, gp = grad_norm(mean, x), grad_norm(ref_t, x)
            rel = float((mean - ref_t).norm() / ref_t.norm())
            table.add(n, kind, t_ours, t_peer, f"{1 / ratio:.1f}x", f"{int(info.iterations)}/{iters_pr}",
                      f"{gr:.1e}", f"{gp:.1e}", f"{rel:.1e}")
    return [table]


if __name__ == "__main__":
    for t in main():
        print(t.markdown())
