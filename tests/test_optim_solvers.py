"""Deterministic solvers: convergence to known optima, batched problems, stopping, display."""

from __future__ import annotations

import pytest
import torch
from riemlearn.manifolds import Euclidean
from riemlearn.optim import LBFGS, ConjugateGradient, Problem, SteepestDescent, TrustRegions

D = torch.float64


def _quadratic(gen, batch=(), n=5):
    q = torch.randn(*batch, n, n, generator=gen, dtype=D)
    a = q @ q.transpose(-1, -2) + n * torch.eye(n, dtype=D)
    b = torch.randn(*batch, n, generator=gen, dtype=D)

    def cost(x):
        return 0.5 * (x.unsqueeze(-2) @ a @ x.unsqueeze(-1))[..., 0, 0] - (b * x).sum(-1)

    return a, b, cost


SOLVERS = [
    SteepestDescent(),
    SteepestDescent(line_search="adaptive"),
    *[ConjugateGradient(beta_rule=r) for r in ("FR", "PR+", "HS", "HZ", "DY", "LS")],
    ConjugateGradient(beta_rule="PR+", restart_every=3, orth_value=0.5),
    TrustRegions(),
    LBFGS(),
    LBFGS(memory=2, transport="projection"),
]
IDS = ["sd", "sd-adaptive", "cg-fr", "cg-pr", "cg-hs", "cg-hz", "cg-dy", "cg-ls", "cg-restart", "tr",
       "lbfgs", "lbfgs-m2"]


@pytest.mark.parametrize("solver", SOLVERS, ids=IDS)
def test_euclidean_quadratic(solver, gen):
    a, b, cost = _quadratic(gen)
    res = solver.solve(Problem(Euclidean(5), cost), torch.zeros(5, dtype=D))
    assert res.stop_reason == "gradient norm", res.stop_reason
    torch.testing.assert_close(res.point, torch.linalg.solve(a, b), atol=1e-6, rtol=0)
    assert res.grad_norm <= 1e-6 and len(res.log) == int(res.iterations) + 1


@pytest.mark.parametrize("solver", [SOLVERS[0], SOLVERS[4], SOLVERS[9], SOLVERS[10]],
                         ids=["sd", "cg", "tr", "lbfgs"])
def test_batched_problems_match_individual_solves(solver, gen):
    a, b, cost = _quadratic(gen, batch=(6,))
    res = solver.solve(Problem(Euclidean(5), cost), torch.zeros(6, 5, dtype=D))
    assert res.cost.shape == (6,) and res.iterations.shape == (6,)
    assert all(r == "gradient norm" for r in res.stop_reason)
    torch.testing.assert_close(res.point, torch.linalg.solve(a, b.unsqueeze(-1))[..., 0],
                               atol=1e-6, rtol=0)
    # each problem stops on its own: converged problems are frozen while others go on
    its = res.iterations
    assert int(its.min()) < int(its.max()) or isinstance(solver, TrustRegions)
    k = int(its.argmin())
    tail = torch.stack([e["cost"][k] for e in res.log[int(its[k]):]])
    assert bool((tail == tail[0]).all())
    # and agrees with the same problem solved alone
    def one(x, i=k):
        return 0.5 * x @ a[i] @ x - b[i] @ x
    r1 = solver.solve(Problem(Euclidean(5), one), torch.zeros(5, dtype=D))
    assert abs(int(r1.iterations) - int(its[k])) <= 3
    torch.testing.assert_close(r1.point, res.point[k], atol=1e-6, rtol=0)


def test_stopping_rules_and_display(gen, capsys):
    a, b, cost = _quadratic(gen)
    pb = Problem(Euclidean(5), cost)
    x0 = torch.zeros(5, dtype=D)
    assert SteepestDescent(max_iterations=2).solve(pb, x0).stop_reason == "max iterations"
    assert SteepestDescent(max_time=0.0).solve(pb, x0).stop_reason == "max time"
    r = ConjugateGradient(min_cost_change=1e-3, min_grad_norm=0).solve(pb, x0)
    assert r.stop_reason == "cost change"
    TrustRegions(verbosity=2).solve(pb, x0)
    out = capsys.readouterr().out
    assert out.count("TrustRegions") >= 2 and "radius" in out
    with pytest.raises(ValueError, match="beta_rule"):
        ConjugateGradient(beta_rule="XX")
    with pytest.raises(ValueError, match="x0"):
        SteepestDescent().solve(pb, torch.full((5,), float("nan"), dtype=D))


def test_explicit_gradient_and_hessian(gen):
    a, b, cost = _quadratic(gen)
    pb = Problem(Euclidean(5), cost, egrad=lambda x: a @ x - b, ehess=lambda x, u: a @ u)
    res = TrustRegions().solve(pb, torch.zeros(5, dtype=D))
    torch.testing.assert_close(res.point, torch.linalg.solve(a, b), atol=1e-6, rtol=0)


@pytest.mark.parametrize("solver", [SteepestDescent(), ConjugateGradient(), TrustRegions(), LBFGS()],
                         ids=["sd", "cg", "tr", "lbfgs"])
def test_non_finite_start_is_an_error(solver):
    """A NaN cost (or gradient) at the start raises instead of iterating on NaN."""
    pb = Problem(Euclidean(2), lambda x: (x ** 2).sum() * float("nan"))
    with pytest.raises(ValueError, match="not finite at the starting point"):
        solver.solve(pb, torch.zeros(2, dtype=D))
    nan_1 = 0 * torch.tensor([1.0, 0.0, 1.0], dtype=D).reciprocal()  # [0, NaN, 0]
    batched = Problem(Euclidean(2), lambda x: ((x - 1) ** 2).sum(-1) + nan_1)
    with pytest.raises(ValueError, match=r"problem \(1,\)"):
        solver.solve(batched, torch.zeros(3, 2, dtype=D))
