"""Wolfe / approximate-Wolfe line search: the conditions hold, CG and L-BFGS converge past the
point where Armijo searches stall on the cost's round-off, batched searches match single ones."""

from __future__ import annotations

import pytest
import torch
from riemlearn.manifolds import SPD, Euclidean, Grassmann, Stiefel
from riemlearn.optim import LBFGS, ConjugateGradient, Problem, SteepestDescent, WolfeLineSearch
from riemlearn.optim.problem import Geometry

D = torch.float64


def _sym(gen, n, batch=()):
    a = torch.randn(*batch, n, n, generator=gen, dtype=D)
    return (a + a.transpose(-1, -2)) / 2


def _phi(pb, x, d, alpha):
    """φ(α) = f(R_x(α d)) and its exact derivative by autograd through the retraction."""
    a = torch.tensor(alpha, dtype=D, requires_grad=True)
    f = pb._cost(pb.manifold.retract(x, a * d))
    (df,) = torch.autograd.grad(f, a)
    return float(f.detach()), float(df)


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
def test_accepted_step_satisfies_the_wolfe_conditions(gen, scale):
    """Euclidean line: φ' is exact, so the Wolfe (or approximate-Wolfe) test can be checked."""
    d = torch.logspace(0, 2, 10, dtype=D)
    b = torch.randn(10, generator=gen, dtype=D)
    pb = Problem(Euclidean(10), lambda x: 0.5 * (d * x * x).sum() - (b * x).sum() + torch.exp(x).sum())
    x = torch.randn(10, generator=gen, dtype=D)
    f0, g0 = pb.cost_grad(x)
    direction = -scale * g0
    ls = WolfeLineSearch()
    geom = Geometry(pb.manifold, x, ())
    df0 = float(geom.inner(x, g0, direction))
    step, newx, newf = ls.search(pb, geom, x, direction, f0, torch.tensor(df0, dtype=D),
                                 torch.ones((), dtype=torch.bool))
    alpha = float(step) / float(direction.norm())
    f, df = _phi(pb, x, direction, alpha)
    assert f <= float(f0) + ls.delta * alpha * df0
    assert df >= ls.sigma * df0
    torch.testing.assert_close(newx, x + alpha * direction)
    torch.testing.assert_close(ls.new_grad, pb.cost_grad(newx)[1])


def _stalling_brockett(gen, n=40, p=4):
    """Brockett cost with |f| ~ 1e4: an Armijo test cannot see decreases once ‖grad‖² α falls
    below the cost's round-off (here at ‖grad‖ ~ 1e-4)."""
    a = 100 * _sym(gen, n)
    w = torch.arange(p, 0, -1, dtype=D)
    m = Stiefel(n, p)
    return m, a, w, Problem(m, lambda x: ((x.T @ a @ x).diagonal(dim1=-2, dim2=-1) * w).sum(-1))


@pytest.mark.parametrize("solver", [ConjugateGradient(), ConjugateGradient(beta_rule="HZ"),
                                    ConjugateGradient(transport="projection"), LBFGS()],
                         ids=["cg-hs", "cg-hz", "cg-projection", "lbfgs"])
def test_converges_where_armijo_stalls(gen, solver):
    m, a, w, pb = _stalling_brockett(gen)
    x0 = m.random_point(generator=gen, dtype=D)
    kw = dict(min_grad_norm=1e-9, min_step_size=0.0, max_iterations=5000, log=False)
    armijo = ConjugateGradient(line_search="adaptive", **kw).solve(pb, x0)
    assert armijo.stop_reason == "step size" and float(armijo.grad_norm) > 1e-6
    for k, v in kw.items():
        setattr(solver, {"log": "record"}.get(k, k), v)
    res = solver.solve(pb, x0)
    assert res.stop_reason == "gradient norm" and float(res.grad_norm) <= 1e-9
    evals, vecs = torch.linalg.eigh(a)
    torch.testing.assert_close(res.cost, (evals[:4] * w).sum(), atol=1e-9, rtol=1e-14)
    torch.testing.assert_close((res.point.T @ vecs[:, :4]).abs(), torch.eye(4, dtype=D), atol=1e-7, rtol=0)


def test_lbfgs_takes_the_unit_step(gen):
    """After the first iteration L-BFGS's first trial is α = 1 and is nearly always accepted:
    about one cost evaluation per iteration."""
    n, p = 30, 3
    a = _sym(gen, n)
    calls = [0]

    def cost(x):
        calls[0] += 1
        return -(x * (a @ x)).sum()

    m = Grassmann(n, p)
    res = LBFGS(min_grad_norm=1e-8, log=False).solve(Problem(m, cost), m.random_point(generator=gen, dtype=D))
    assert res.stop_reason == "gradient norm"
    assert calls[0] <= 1.3 * int(res.iterations) + 3
    v = torch.linalg.eigh(a).eigenvectors[:, -p:]
    torch.testing.assert_close(res.point @ res.point.T, v @ v.T, atol=1e-7, rtol=0)


@pytest.mark.parametrize("solver", [ConjugateGradient(min_grad_norm=1e-9, min_step_size=0.0),
                                    LBFGS(min_grad_norm=1e-9, min_step_size=0.0)], ids=["cg", "lbfgs"])
def test_batched_searches_match_single_ones(gen, solver):
    n, p, b = 25, 3, 4
    a = _sym(gen, n, batch=(b,)) * torch.tensor([1.0, 10.0, 100.0, 0.1], dtype=D)[:, None, None]
    m = Grassmann(n, p)
    x0 = m.random_point(b, generator=gen, dtype=D)
    res = solver.solve(Problem(m, lambda x: -(x * (a @ x)).sum((-1, -2))), x0)
    assert all(r == "gradient norm" for r in res.stop_reason)
    for i in range(b):
        one = solver.solve(Problem(m, lambda x, i=i: -(x * (a[i] @ x)).sum()), x0[i])
        assert one.stop_reason == "gradient norm"
        # the same trial steps (CG's later iterates drift apart by round-off: both converge)
        steps_one = torch.stack([e["step_size"] for e in one.log[1:11]])
        steps_batch = torch.stack([e["step_size"][i] for e in res.log[1:11]])
        torch.testing.assert_close(steps_batch, steps_one, rtol=1e-6, atol=0)
        v = torch.linalg.eigh(a[i]).eigenvectors[:, -p:]
        torch.testing.assert_close(res.point[i] @ res.point[i].T, v @ v.T, atol=1e-7, rtol=0)


def test_spd_karcher_mean_float32_and_float64(gen):
    from riemlearn.stats import frechet_mean

    m = SPD(4)
    c = m.random_point(12, generator=gen, dtype=D, cond=30.0)
    ref = frechet_mean(c, m, tol=1e-12)
    for dtype, tol in ((D, 1e-10), (torch.float32, 1e-3)):
        cd = c.to(dtype)
        pb = Problem(m, lambda x, cd=cd: (m.dist(x.unsqueeze(-3), cd) ** 2).sum() / 2)
        res = ConjugateGradient(min_grad_norm=tol, min_step_size=0.0, max_iterations=500).solve(pb, cd[0])
        assert res.point.dtype == dtype and bool(torch.isfinite(res.point).all())
        assert res.stop_reason == "gradient norm", (dtype, res.stop_reason, float(res.grad_norm))
        torch.testing.assert_close(res.point.double(), ref, atol=1e-8 if dtype == D else 1e-4, rtol=1e-4)


def test_steepest_descent_accepts_the_wolfe_search(gen):
    d = torch.logspace(0, 1, 8, dtype=D)
    b = torch.randn(8, generator=gen, dtype=D)
    pb = Problem(Euclidean(8), lambda x: 0.5 * (d * x * x).sum() - (b * x).sum())
    res = SteepestDescent(line_search="wolfe", max_iterations=2000, min_grad_norm=1e-9).solve(
        pb, torch.zeros(8, dtype=D))
    assert res.stop_reason == "gradient norm"
    torch.testing.assert_close(res.point, b / d, atol=1e-9, rtol=0)


def test_arguments_are_checked():
    for kw in (dict(sufficient_decrease=0.5, curvature=0.4), dict(curvature=1.0),
               dict(epsilon=-1.0), dict(max_iterations=0), dict(expansion=1.0),
               dict(initial="newton"), dict(transport="parallel")):
        with pytest.raises(ValueError):
            WolfeLineSearch(**kw)


@pytest.mark.parametrize("solver", [ConjugateGradient(max_iterations=500, min_grad_norm=1e-7),
                                    LBFGS(max_iterations=500, min_grad_norm=1e-7),
                                    SteepestDescent(max_iterations=500, min_grad_norm=1e-7)],
                         ids=["cg", "lbfgs", "sd-bb"])
def test_every_axiom_case_converges(solver):
    """Three problems per axiom-suite case, solved batched. Guards two failure modes seen while
    building the search: a flat φ far out on a compact manifold (the sphere's retraction
    saturates; the approximate-Wolfe test alone accepted a step of 1e13) and HS directions
    nearly orthogonal to the gradient (a 3-D quadratic stopped on the step size at ‖grad‖ 4e-5)."""
    from axioms.cases import CASES

    failed = []
    for case in CASES:
        m = case.make()
        g = torch.Generator().manual_seed(0)
        x = m.random_point(3, generator=g, dtype=D)
        y = m.random_point(3, generator=g, dtype=D)
        w = torch.randn(x.shape, generator=g, dtype=D)

        def cost(z, y=y, w=w):
            dims = tuple(range(1, z.dim()))
            return ((z - y) ** 2).sum(dims) + 0.1 * (w * z).sum(dims) ** 2

        res = solver.solve(Problem(m, cost), x)
        steps = torch.stack([e["step_size"] for e in res.log[1:]])
        if not all(r == "gradient norm" for r in res.stop_reason) or float(steps.max()) > 1e3:
            failed.append((case.id, res.stop_reason, res.grad_norm.tolist(), float(steps.max())))
    assert not failed, failed


@pytest.mark.parametrize("batch", [(), (4,)], ids=["single", "batched"])
def test_nan_beyond_the_domain_is_bracketed(batch):
    """A cost that is NaN past x = 1 (a log barrier): trials there count as 'too far' and the
    bracket shrinks; CG and L-BFGS reach the interior optimum with finite iterates."""
    b = torch.tensor([3.0, -1.0, 5.0], dtype=D)
    pb = Problem(Euclidean(3), lambda x: ((x - b) ** 2).sum(-1) - 5 * torch.log(1 - x).sum(-1))
    # stationarity: 2 (x - b) + 5 / (1 - x) = 0, the root below 1
    ref = ((1 + b) - torch.sqrt((1 - b) ** 2 + 10)) / 2
    for solver in (ConjugateGradient(min_grad_norm=1e-9, min_step_size=0.0),
                   LBFGS(min_grad_norm=1e-9, min_step_size=0.0)):
        res = solver.solve(pb, torch.zeros(*batch, 3, dtype=D))
        assert bool(torch.isfinite(res.point).all())
        assert bool(res.converged.all()), res.stop_reason
        torch.testing.assert_close(res.point, ref.expand(*batch, 3), atol=1e-9, rtol=0)
