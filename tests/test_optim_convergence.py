"""Solvers reach known optima: Grassmann dominant subspace, Stiefel Brockett, batched
Procrustes, sphere Rayleigh quotient, SPD Karcher mean (pyriemann reference)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from riemlearn.manifolds import SPD, Grassmann, Sphere, Stiefel
from riemlearn.optim import (
    LBFGS,
    ConjugateGradient,
    ManifoldParameter,
    Problem,
    RiemannianAdam,
    SteepestDescent,
    TrustRegions,
)

D = torch.float64


def _sym(gen, n, batch=()):
    a = torch.randn(*batch, n, n, generator=gen, dtype=D)
    return (a + a.transpose(-1, -2)) / 2


@pytest.mark.parametrize("solver", [TrustRegions(), ConjugateGradient(max_iterations=3000),
                                    ConjugateGradient(transport="projection", max_iterations=3000),
                                    LBFGS(transport="projection", max_iterations=3000)],
                         ids=["tr", "cg", "cg-projection", "lbfgs-projection"])
def test_grassmann_dominant_subspace(solver, gen):
    n, p = 30, 3
    a = _sym(gen, n)
    m = Grassmann(n, p)
    res = solver.solve(Problem(m, lambda x: -torch.trace(x.T @ a @ x)),
                       m.random_point(generator=gen, dtype=D))
    assert res.stop_reason == "gradient norm"
    v = torch.linalg.eigh(a).eigenvectors[:, -p:]
    torch.testing.assert_close(res.point @ res.point.T, v @ v.T, atol=1e-6, rtol=0)


@pytest.mark.parametrize("solver", [TrustRegions(), ConjugateGradient(beta_rule="PR+", max_iterations=3000),
                                    LBFGS(max_iterations=3000)],
                         ids=["tr", "cg", "lbfgs"])
def test_stiefel_brockett(solver, gen):
    n, p = 12, 4
    a = _sym(gen, n)
    w = torch.arange(p, 0, -1, dtype=D)
    for metric in ("canonical", "embedded"):
        m = Stiefel(n, p, metric=metric)
        res = solver.solve(Problem(m, lambda x: ((x.T @ a @ x).diagonal() * w).sum()),
                           m.random_point(generator=gen, dtype=D))
        assert res.stop_reason == "gradient norm"
        vecs = torch.linalg.eigh(a).eigenvectors[:, :p]   # ascending eigenvalues
        torch.testing.assert_close((res.point.T @ vecs).abs(), torch.eye(p, dtype=D),
                                   atol=1e-5, rtol=0)


@pytest.mark.parametrize("solver,tol", [(TrustRegions(min_grad_norm=1e-10), 1e-9),
                                        (ConjugateGradient(), 1e-4), (SteepestDescent(), 1e-4),
                                        (LBFGS(), 1e-4)],
                         ids=["tr", "cg", "sd", "lbfgs"])
def test_batched_procrustes(solver, tol, gen):
    b, n, p = 200, 5, 3
    c = torch.randn(b, n, p, generator=gen, dtype=D)
    m = Stiefel(n, p)
    res = solver.solve(Problem(m, lambda x: ((x - c) ** 2).sum((-1, -2))),
                       m.random_point(b, generator=gen, dtype=D))
    assert res.cost.shape == (b,) and all(r == "gradient norm" for r in res.stop_reason)
    u, _, vh = torch.linalg.svd(c, full_matrices=False)
    torch.testing.assert_close(res.point, u @ vh, atol=tol, rtol=0)


def test_batched_rayleigh_on_sphere(gen):
    a = _sym(gen, 8, batch=(50,))
    m = Sphere(8)
    res = TrustRegions().solve(Problem(m, lambda x: (x * (a @ x.unsqueeze(-1))[..., 0]).sum(-1)),
                               m.random_point(50, generator=gen, dtype=D))
    torch.testing.assert_close(res.cost, torch.linalg.eigvalsh(a)[:, 0], atol=1e-10, rtol=0)
    assert int(res.iterations.min()) < int(res.iterations.max())


@pytest.mark.parametrize("how", ["cg", "adam"])
def test_spd_karcher_mean_matches_pyriemann(how, gen):
    mean_riemann = pytest.importorskip("pyriemann.utils.mean").mean_riemann
    m = SPD(4)
    c = m.random_point(10, generator=gen, dtype=D)
    ref = torch.from_numpy(mean_riemann(c.numpy(), tol=1e-12, maxiter=200))

    def cost(x):
        return 0.5 * (m.dist(x.unsqueeze(-3), c) ** 2).sum(-1)

    x0 = c.mean(0)
    if how == "cg":
        res = ConjugateGradient().solve(Problem(m, cost), x0)
        assert res.stop_reason == "gradient norm"
        x = res.point
    else:
        p = ManifoldParameter(x0.clone(), manifold=m)
        opt = RiemannianAdam([p], lr=0.05)
        for _ in range(300):
            opt.zero_grad()
            cost(p).backward()
            opt.step()
        x = p.detach()
    tol = 1e-6 if how == "cg" else 1e-3
    torch.testing.assert_close(x, ref, atol=tol, rtol=0)
    assert np.isfinite(x.numpy()).all()
