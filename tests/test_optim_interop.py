"""geoopt and pymanopt interop: wrappers run the peers' optimizers on riemlearn manifolds, our
optimizers run on geoopt parameters, and solver answers agree with pymanopt's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from riemlearn.manifolds import SPD, Euclidean, Grassmann, PoincareBall, Sphere, Stiefel
from riemlearn.optim import (
    ConjugateGradient,
    Problem,
    RiemannianAdam,
    RiemannianSGD,
    TrustRegions,
    manifold_of,
)
from riemlearn.optim.interop import GeooptAdapter, from_geoopt, to_geoopt, to_pymanopt

geoopt = pytest.importorskip("geoopt")
D = torch.float64


def _train(opt_cls, param, cost, steps=20, **kw):
    opt = opt_cls([param], **kw)
    for _ in range(steps):
        opt.zero_grad()
        cost(param).backward()
        opt.step()
    return param.detach().clone()


@pytest.mark.parametrize("make", [lambda: Stiefel(6, 3, metric="canonical"),
                                  lambda: SPD(3, metric="bures_wasserstein"),
                                  lambda: Sphere(4)], ids=["stiefel", "spd-bw", "sphere"])
def test_geoopt_optimizers_on_riemlearn_manifold_match_ours(make, gen):
    m = make()
    x0 = m.random_point(2, generator=gen, dtype=D)
    y = m.random_point(2, generator=gen, dtype=D)

    def cost(z):
        return ((z - y) ** 2).sum()

    gm = to_geoopt(m)
    theirs = _train(geoopt.optim.RiemannianAdam,
                    geoopt.ManifoldParameter(x0.clone(), manifold=gm), cost, lr=0.02)
    p = torch.nn.Parameter(x0.clone())
    ours = _train(lambda ps, **k: RiemannianAdam([{"params": ps, "manifold": m}], **k), p, cost, lr=0.02)
    assert bool(m.belongs(theirs).all())
    torch.testing.assert_close(theirs, ours, atol=1e-10, rtol=0)
    # (geoopt's SGD seeds its momentum buffer with the Euclidean gradient, torch and we with
    # the (Riemannian) gradient: compare without momentum)
    theirs = _train(geoopt.optim.RiemannianSGD,
                    geoopt.ManifoldParameter(x0.clone(), manifold=gm), cost, lr=0.02)
    ours = _train(lambda ps, **k: RiemannianSGD([{"params": ps, "manifold": m}], **k),
                  torch.nn.Parameter(x0.clone()), cost, lr=0.02)
    torch.testing.assert_close(theirs, ours, atol=1e-10, rtol=0)


def test_our_optimizers_on_geoopt_parameters(gen):
    g = torch.Generator().manual_seed(3)
    cases = [
        (geoopt.Euclidean(), torch.randn(4, 3, generator=g, dtype=D), Euclidean),
        (geoopt.Sphere(), torch.nn.functional.normalize(torch.randn(4, 3, generator=g, dtype=D), dim=-1),
         Sphere),
        (geoopt.CanonicalStiefel(), torch.linalg.qr(torch.randn(5, 2, generator=g, dtype=D))[0], Stiefel),
        (geoopt.SymmetricPositiveDefinite(), SPD(3).random_point(2, generator=g, dtype=D), SPD),
        (geoopt.PoincareBall(c=1.0), 0.3 * torch.rand(3, 2, generator=g, dtype=D), PoincareBall),
        (geoopt.Lorentz(k=torch.tensor(1.0, dtype=D)),
         geoopt.Lorentz(k=torch.tensor(1.0, dtype=D)).random_normal(3, 3, dtype=D), GeooptAdapter),
    ]
    for gm, x, kind in cases:
        p = geoopt.ManifoldParameter(x.clone(), manifold=gm)
        assert isinstance(manifold_of(p), kind), (gm, manifold_of(p))
        t = x.flip(-1) if kind is not Sphere else x.roll(1, 0)
        f0 = float(((x - t) ** 2).sum())
        _train(RiemannianAdam, p, lambda z, t=t: ((z - t) ** 2).sum(), lr=0.01, amsgrad=True)
        ok = gm.check_point_on_manifold(p.detach(), atol=1e-6)
        assert ok, gm
        assert float(((p.detach() - t) ** 2).sum()) < f0
    # Euclidean geoopt parameters keep exact torch parity
    w = torch.randn(3, 2, generator=g, dtype=D)
    a = _train(RiemannianAdam, geoopt.ManifoldParameter(w.clone(), manifold=geoopt.Euclidean()),
               lambda z: (z ** 3).sum(), lr=0.1)
    b = _train(torch.optim.Adam, torch.nn.Parameter(w.clone()), lambda z: (z ** 3).sum(), lr=0.1,
               foreach=False)
    assert torch.equal(a, b)
    assert from_geoopt(to_geoopt(Sphere(3))) == Sphere(3)


def test_to_geoopt_pickles():
    import pickle

    gm = to_geoopt(Stiefel(4, 2))
    gm2 = pickle.loads(pickle.dumps(gm))
    assert gm2.manifold == Stiefel(4, 2)


def _brockett(n, p, gen):
    a = torch.randn(n, n, generator=gen, dtype=D)
    a = (a + a.T) / 2
    w = torch.arange(p, 0, -1, dtype=D)
    return a, w


def test_solvers_agree_with_pymanopt(gen):
    pymanopt = pytest.importorskip("pymanopt")
    n, p = 10, 3
    a, w = _brockett(n, p, gen)
    an, wn = a.numpy(), w.numpy()
    pm = pymanopt.manifolds.Stiefel(n, p)

    @pymanopt.function.numpy(pm)
    def cost(x):
        return float(np.sum(np.diag(x.T @ an @ x) * wn))

    @pymanopt.function.numpy(pm)
    def egrad(x):
        return 2 * an @ x * wn

    @pymanopt.function.numpy(pm)
    def ehess(x, u):
        return 2 * an @ u * wn

    problem = pymanopt.Problem(pm, cost, euclidean_gradient=egrad, euclidean_hessian=ehess)
    x0 = Stiefel(n, p).random_point(generator=gen, dtype=D)
    theirs = pymanopt.optimizers.TrustRegions(verbosity=0).run(problem, initial_point=x0.numpy())
    ours = TrustRegions().solve(
        Problem(Stiefel(n, p, metric="embedded"), lambda x: ((x.T @ a @ x).diagonal() * w).sum()), x0)
    assert abs(float(ours.cost) - theirs.cost) <= 1e-10 * max(1, abs(theirs.cost))
    torch.testing.assert_close((ours.point.T @ torch.from_numpy(theirs.point)).abs(),
                               torch.eye(p, dtype=D), atol=1e-6, rtol=0)


@pytest.mark.parametrize("make", [lambda: Grassmann(8, 2), lambda: SPD(3, metric="bures_wasserstein")],
                         ids=["grassmann", "spd-bw"])
def test_pymanopt_solvers_on_riemlearn_manifolds(make, gen):
    pymanopt = pytest.importorskip("pymanopt")
    m = make()
    pm = to_pymanopt(m)
    if isinstance(m, Grassmann):
        a = torch.randn(8, 8, generator=gen, dtype=D)
        a = a + a.T

        def tcost(x):
            return -torch.trace(x.T @ a @ x)
    else:
        c = m.random_point(5, generator=gen, dtype=D)

        def tcost(x):
            return 0.5 * (m.dist(x.unsqueeze(-3), c) ** 2).sum()

    @pymanopt.function.pytorch(pm)
    def cost(x):
        return tcost(x)

    x0 = m.random_point(generator=gen, dtype=D)
    theirs = pymanopt.optimizers.ConjugateGradient(verbosity=0).run(
        pymanopt.Problem(pm, cost), initial_point=x0.numpy())
    ours = ConjugateGradient().solve(Problem(m, tcost), x0)
    assert bool(m.belongs(torch.from_numpy(theirs.point)))
    assert abs(float(ours.cost) - theirs.cost) <= 1e-8 * max(1, abs(theirs.cost))
    torch.testing.assert_close(m.dist(ours.point, torch.from_numpy(theirs.point)),
                               torch.tensor(0.0, dtype=D), atol=1e-5, rtol=0)
