"""Optimization on Stiefel and Grassmann manifolds with the deterministic solvers.

Three problems with a known optimum, each solved by steepest descent, conjugate gradient and
trust regions (gradients and Hessian-vector products by autograd):

* **Brockett cost** on Stiefel(n, p): ``min tr(XᵀAXN)`` with ``N = diag(p, ..., 1)``; the optimum
  is ``Σᵢ Nᵢᵢ λᵢ(A)`` with the eigenvalues in increasing order (eigenvectors of the p smallest).
* **Dominant subspace** on Grassmann(n, p): ``min −tr(XᵀAX)``; the optimum is minus the sum of
  the p largest eigenvalues, reached at the span of their eigenvectors (we also report the
  largest principal angle to that subspace).
* **Orthogonal Procrustes** on Stiefel(n, p), a batch of independent problems solved at once:
  ``min ‖AX − B‖²`` with ``AᵀA = I``; the optimum is the polar factor ``X = UVᵀ`` of
  ``AᵀB = UΣVᵀ``. (On the square Stiefel(n, n) = O(n) a solver stays in the connected
  component of its start, det = ±1, so p < n keeps the search space connected.)

    python examples/manifold_optimization.py          # a few seconds
    python examples/manifold_optimization.py --fast   # smaller problems (tests)
"""

from __future__ import annotations

import argparse
import math

import torch
from riemlearn.manifolds import Grassmann, Stiefel
from riemlearn.optim import ConjugateGradient, Problem, SteepestDescent, TrustRegions

F64 = torch.float64


def solvers(max_iter: int) -> dict:
    return {
        "steepest descent": SteepestDescent(max_iterations=max_iter, min_grad_norm=1e-8),
        "conjugate gradient": ConjugateGradient(max_iterations=max_iter, min_grad_norm=1e-8),
        "trust regions": TrustRegions(max_iterations=200, min_grad_norm=1e-8),
    }


def spd_matrix(n: int, gen: torch.Generator) -> torch.Tensor:
    a = torch.randn(n, n, generator=gen, dtype=F64)
    return a @ a.T / n


def report(problem: str, solver: str, res, optimum, extra: str = "") -> dict:
    """One table row; for a batch of problems, costs are summed and gaps are the largest."""
    optimum = torch.as_tensor(optimum, dtype=F64)
    cost = res.cost.double()
    gap = float((cost - optimum).abs().max())
    optimum = float(optimum.sum())
    row = {"problem": problem, "solver": solver, "iters": int(res.iterations.max()),
           "cost": float(cost.sum()), "optimum": optimum, "gap": gap,
           "grad": float(res.grad_norm.max()), "time": res.time}
    print(f"{problem:<26} {solver:<19} {row['iters']:>6} {row['cost']:>14.8f} {optimum:>14.8f} "
          f"{gap:>9.1e} {row['grad']:>9.1e} {res.time:>7.2f}s {extra}")
    return row


def brockett(n: int, p: int, gen: torch.Generator, max_iter: int) -> list[dict]:
    a = spd_matrix(n, gen)
    weights = torch.arange(p, 0, -1, dtype=F64)
    optimum = float((torch.linalg.eigvalsh(a)[:p] * weights).sum())
    man = Stiefel(n, p)
    problem = Problem(man, lambda x: torch.einsum("ij,ik,kj,j->", x, a, x, weights))
    x0 = man.random_point(generator=gen, dtype=F64)
    return [report(f"Brockett Stiefel({n},{p})", name, s.solve(problem, x0), optimum)
            for name, s in solvers(max_iter).items()]


def dominant_subspace(n: int, p: int, gen: torch.Generator, max_iter: int) -> list[dict]:
    a = spd_matrix(n, gen)
    evals, evecs = torch.linalg.eigh(a)
    optimum = -float(evals[-p:].sum())
    top = evecs[:, -p:]
    man = Grassmann(n, p)
    problem = Problem(man, lambda x: -torch.einsum("ij,ik,kj->", x, a, x))
    x0 = man.random_point(generator=gen, dtype=F64)
    rows = []
    for name, s in solvers(max_iter).items():
        res = s.solve(problem, x0)
        cosines = torch.linalg.svdvals(top.T @ res.point).clamp(max=1.0)
        angle = math.degrees(float(torch.arccos(cosines.min())))
        rows.append(report(f"dominant subsp. Gr({n},{p})", name, res, optimum,
                           f"max principal angle {angle:.1e} deg"))
    return rows


def procrustes(n: int, p: int, batch: int, gen: torch.Generator, max_iter: int) -> list[dict]:
    m = n + 4
    a = torch.linalg.qr(torch.randn(batch, m, n, generator=gen, dtype=F64))[0]  # AᵀA = I
    x_true = Stiefel(n, p).random_point(batch, generator=gen, dtype=F64)
    b = a @ x_true + 0.3 * torch.randn(batch, m, p, generator=gen, dtype=F64)
    u, _, vh = torch.linalg.svd(a.mT @ b, full_matrices=False)
    best = u @ vh  # polar factor of AᵀB: the minimizer
    opt_costs = (a @ best - b).pow(2).sum((-2, -1))
    man = Stiefel(n, p)
    # cost of shape (batch,): `batch` independent problems solved together
    problem = Problem(man, lambda x: (a @ x - b).pow(2).sum((-2, -1)))
    x0 = man.random_point(batch, generator=gen, dtype=F64)
    rows = []
    for name, s in solvers(max_iter).items():
        res = s.solve(problem, x0)
        err = float((res.point - best).abs().max())
        rows.append(report(f"Procrustes St({n},{p}) x{batch}", name, res, opt_costs,
                           f"max |X - UVᵀ| {err:.1e}"))
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fast", action="store_true", help="smaller problems (tests)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(args.seed)
    max_iter = 500 if args.fast else 1000
    print(f"{'problem':<26} {'solver':<19} {'iters':>6} {'final cost':>14} {'optimum':>14} "
          f"{'|gap|':>9} {'grad':>9} {'time':>8}")
    print("-" * 112)
    rows = []
    rows += brockett(*((10, 3) if args.fast else (30, 5)), gen, max_iter)
    rows += dominant_subspace(*((12, 3) if args.fast else (50, 4)), gen, max_iter)
    rows += procrustes(*((5, 3, 4) if args.fast else (10, 6, 16)), gen, max_iter)
    print("\n|gap| = |final cost − known optimum| (max over a batch); grad = Riemannian gradient norm.")
    return rows


if __name__ == "__main__":
    main()
