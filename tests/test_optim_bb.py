"""Steepest descent with Barzilai–Borwein steps and a nonmonotone Armijo search."""

from __future__ import annotations

import pytest
import torch
from riemlearn.manifolds import SPD, Euclidean, Grassmann, Stiefel
from riemlearn.optim import BarzilaiBorweinLineSearch, ConjugateGradient, Problem, SteepestDescent

D = torch.float64


def _sym(gen, n, batch=()):
    a = torch.randn(*batch, n, n, generator=gen, dtype=D)
    return (a + a.transpose(-1, -2)) / 2


@pytest.mark.parametrize("metric", ["embedded", "canonical"])
def test_stiefel_brockett_reaches_the_eigenvectors(gen, metric):
    n, p = 20, 4
    a = _sym(gen, n)
    w = torch.arange(p, 0, -1, dtype=D)
    m = Stiefel(n, p, metric=metric)
    pb = Problem(m, lambda x: ((x.T @ a @ x).diagonal() * w).sum())
    # near the optimum BB steps are ~‖grad‖/λ: no stop on step size
    res = SteepestDescent(line_search="bb", max_iterations=5000, min_grad_norm=1e-8,
                          min_step_size=0.0).solve(pb, m.random_point(generator=gen, dtype=D))
    assert res.stop_reason == "gradient norm" and float(res.grad_norm) <= 1e-8
    evals, vecs = torch.linalg.eigh(a)
    torch.testing.assert_close(res.cost, (evals[:p] * w).sum(), atol=1e-10, rtol=0)
    torch.testing.assert_close((res.point.T @ vecs[:, :p]).abs(), torch.eye(p, dtype=D), atol=1e-6, rtol=0)


def test_fewer_iterations_than_backtracking_on_an_ill_conditioned_quadratic(gen):
    d = torch.logspace(0, 3, 40, dtype=D)
    b = torch.randn(40, generator=gen, dtype=D)
    pb = Problem(Euclidean(40), lambda x: 0.5 * (d * x * x).sum() - (b * x).sum())
    kw = dict(max_iterations=20000, min_grad_norm=1e-7, min_step_size=0.0, log=False)
    bb = SteepestDescent(line_search="bb", **kw).solve(pb, torch.zeros(40, dtype=D))
    bt = SteepestDescent(line_search="backtracking", **kw).solve(pb, torch.zeros(40, dtype=D))
    assert bb.stop_reason == "gradient norm"
    torch.testing.assert_close(bb.point, b / d, atol=1e-7, rtol=0)
    assert int(bb.iterations) * 5 < int(bt.iterations)


def test_batched_equals_single_problems(gen):
    """Per-problem step sizes and reference costs: one batched solve gives each problem's
    own single solve (the same iterations up to round-off in the Armijo tests, same subspace)."""
    n, p, b = 25, 3, 4
    a = _sym(gen, n, batch=(b,))
    m = Grassmann(n, p)
    x0 = m.random_point(b, generator=gen, dtype=D)
    solver = SteepestDescent(line_search="bb", max_iterations=3000, min_grad_norm=1e-8)
    res = solver.solve(Problem(m, lambda x: -(x * (a @ x)).sum((-1, -2))), x0)
    assert all(r == "gradient norm" for r in res.stop_reason)
    for i in range(b):
        one = solver.solve(Problem(m, lambda x, i=i: -(x * (a[i] @ x)).sum()), x0[i])
        assert abs(int(one.iterations) - int(res.iterations[i])) <= max(3, int(one.iterations) // 10)
        proj = res.point[i] @ res.point[i].T
        torch.testing.assert_close(proj, one.point @ one.point.T, atol=1e-9, rtol=0)
        v = torch.linalg.eigh(a[i]).eigenvectors[:, -p:]
        torch.testing.assert_close(proj, v @ v.T, atol=1e-6, rtol=0)


def test_spd_karcher_mean_with_metric_transport(gen):
    from riemlearn.stats import frechet_mean

    m = SPD(4)
    c = m.random_point(12, generator=gen, dtype=D, cond=30.0)

    def cost(x):
        return 0.5 * (m.dist(x.unsqueeze(-3), c) ** 2).sum(-1)

    res = SteepestDescent(line_search="bb", min_grad_norm=1e-9, max_iterations=500).solve(
        Problem(m, cost), c.mean(0))
    assert res.stop_reason == "gradient norm"
    torch.testing.assert_close(res.point, frechet_mean(c, m, tol=1e-12), atol=1e-8, rtol=0)


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="contraction"):
        BarzilaiBorweinLineSearch(contraction=1.5)
    with pytest.raises(ValueError, match="eta"):
        BarzilaiBorweinLineSearch(eta=1.0)
    with pytest.raises(ValueError, match="min_step"):
        BarzilaiBorweinLineSearch(min_step=0.0)
    with pytest.raises(ValueError, match="transport"):
        BarzilaiBorweinLineSearch(transport="parallel")
    with pytest.raises(ValueError, match="steepest descent"):
        ConjugateGradient(line_search="bb")
    with pytest.raises(ValueError, match="'bb'"):
        SteepestDescent(line_search="bbb")


def test_nonmonotone_option_of_the_armijo_searches(gen):
    """``nonmonotone=0`` is the plain search (same iterates); with ``η > 0`` a batched solve
    reaches each problem's own single-solve subspace (the dominant eigenvectors)."""
    from riemlearn.optim import AdaptiveLineSearch

    n, p, b = 40, 3, 3
    a = _sym(gen, n, batch=(b,))
    m = Grassmann(n, p)
    x0 = m.random_point(b, generator=gen, dtype=D)

    def cg(eta=None):
        ls = "adaptive" if eta is None else AdaptiveLineSearch(nonmonotone=eta)
        return ConjugateGradient(line_search=ls, transport="projection", max_iterations=3000,
                                 min_grad_norm=1e-7)

    pb0 = Problem(m, lambda x: -(x * (a[0] @ x)).sum())
    plain, default = cg(0.0).solve(pb0, x0[0]), cg().solve(pb0, x0[0])
    assert int(plain.iterations) == int(default.iterations) and torch.equal(plain.point, default.point)
    res = cg(0.85).solve(Problem(m, lambda x: -(x * (a @ x)).sum((-1, -2))), x0)
    one = cg(0.85).solve(pb0, x0[0])
    torch.testing.assert_close(one.point @ one.point.T, res.point[0] @ res.point[0].T, atol=1e-6, rtol=0)
    for i in range(b):
        assert float(res.cost[i]) < float(-(x0[i] * (a[i] @ x0[i])).sum())
        v = torch.linalg.eigh(a[i]).eigenvectors[:, -p:]
        torch.testing.assert_close(res.point[i] @ res.point[i].T, v @ v.T, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="nonmonotone"):
        AdaptiveLineSearch(nonmonotone=1.0)
