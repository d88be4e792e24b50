"""Optimizers and solvers on every axiom-suite case: iterates stay on the manifold, costs drop."""

from __future__ import annotations

import pytest
import torch
from axioms.cases import CASES
from riemlearn.optim import (
    LBFGS,
    ConjugateGradient,
    ManifoldParameter,
    Problem,
    RiemannianAdam,
    RiemannianSGD,
    SteepestDescent,
    TrustRegions,
)

D = torch.float64
params = pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])


def _setup(case, seed=0):
    m = case.make()
    g = torch.Generator().manual_seed(seed)
    x = m.random_point(3, generator=g, dtype=D)
    y = m.random_point(3, generator=g, dtype=D)
    w = torch.randn(x.shape, generator=g, dtype=D)

    def cost(z):
        # a smooth ambient cost with per-problem values (*batch,)
        dims = tuple(range(1, z.dim()))
        return ((z - y) ** 2).sum(dims) + 0.1 * (w * z).sum(dims) ** 2

    return m, x, cost


@params
@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_stochastic_optimizers_stay_on_manifold(case, opt):
    m, x, cost = _setup(case)
    p = ManifoldParameter(x.clone(), manifold=m)
    o = (RiemannianSGD([p], lr=0.02, momentum=0.9, nesterov=True, stabilize=10) if opt == "sgd"
         else RiemannianAdam([p], lr=0.02, amsgrad=True, weight_decay=1e-3))
    f0 = float(cost(x).sum())
    for _ in range(25):
        o.zero_grad()
        cost(p).sum().backward()
        o.step()
    z = p.detach()
    assert bool(m.belongs(z).all())
    assert float(cost(z).sum()) < f0
    buf = o.state[p]["momentum_buffer" if opt == "sgd" else "exp_avg"]
    assert bool(m.is_tangent(z, buf, atol=1e-6).all())


@params
@pytest.mark.parametrize("solver", [SteepestDescent(max_iterations=15),
                                    ConjugateGradient(max_iterations=15),
                                    TrustRegions(max_iterations=6), LBFGS(max_iterations=15)],
                         ids=["sd", "cg", "tr", "lbfgs"])
def test_solvers_stay_on_manifold(case, solver):
    m, x, cost = _setup(case)
    res = solver.solve(Problem(m, cost), x)
    assert bool(m.belongs(res.point).all())
    assert bool((res.cost <= cost(x) + 1e-12).all()) and bool((res.cost < cost(x)).any())
    assert bool(torch.isfinite(res.grad_norm).all())


@pytest.mark.parametrize("opt_cls,kw", [(RiemannianSGD, dict(lr=0.05, momentum=0.9)),
                                        (RiemannianAdam, dict(lr=0.01, amsgrad=True))])
def test_riemannian_state_dict_round_trip_and_stacking(opt_cls, kw):
    import io

    from riemlearn.manifolds import Stiefel

    m = Stiefel(5, 2)
    g = torch.Generator().manual_seed(0)
    xs = [m.random_point(generator=g, dtype=D) for _ in range(3)]
    target = m.random_point(generator=g, dtype=D)

    def run(stacked, state=None, steps=4):
        ps = [ManifoldParameter(x.clone(), manifold=m) for x in xs]
        o = opt_cls(ps, stacked=stacked, **kw)
        if state is not None:
            o.load_state_dict(state)
        for _ in range(steps):
            o.zero_grad()
            sum(((p - target) ** 2).sum() for p in ps).backward()
            o.step()
        return ps, o

    ps_a, o_a = run(True)
    ps_b, _ = run(False)
    for p, q in zip(ps_a, ps_b, strict=True):   # stacked fast path == one by one
        torch.testing.assert_close(p.detach(), q.detach(), atol=1e-12, rtol=0)
    buf = io.BytesIO()
    torch.save(o_a.state_dict(), buf)
    buf.seek(0)
    sd = torch.load(buf, weights_only=False)
    assert sd["param_groups"][0]["manifold"] is None
    # resume: 4 steps + (state, 4 more) == 8 steps straight
    ps8, _ = run(True, steps=8)
    ps_r, o_r = run(True, steps=0)
    for p, q in zip(ps_r, ps_a, strict=True):
        p.data.copy_(q.detach())
    o_r.load_state_dict(sd)
    for _ in range(4):
        o_r.zero_grad()
        sum(((p - target) ** 2).sum() for p in ps_r).backward()
        o_r.step()
    for p, q in zip(ps_r, ps8, strict=True):
        torch.testing.assert_close(p.detach(), q.detach(), atol=1e-12, rtol=0)
