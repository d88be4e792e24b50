"""Sphere: cross-checks against pymanopt and closed forms, accuracy at tiny and near-π angles."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch
from riemlearn.manifolds.sphere import Sphere

pymanopt = pytest.importorskip("pymanopt")

DT = torch.float64


def _setup(gen, n=5, b=6):
    m = Sphere(n)
    x = m.random_point(b, generator=gen, dtype=DT)
    u = m.random_tangent(x, generator=gen)
    y = m.random_point(b, generator=gen, dtype=DT)
    return m, x, u, y


def test_against_pymanopt(gen):
    m, x, u, y = _setup(gen)
    pm = pymanopt.manifolds.Sphere(5)
    eg = torch.randn(x.shape, generator=gen, dtype=DT)
    eh = torch.randn(x.shape, generator=gen, dtype=DT)
    for i in range(x.shape[0]):
        xi, ui, yi = x[i].numpy(), u[i].numpy(), y[i].numpy()
        np.testing.assert_allclose(m.exp(x[i], u[i]).numpy(), pm.exp(xi, ui), atol=1e-12)
        np.testing.assert_allclose(m.log(x[i], y[i]).numpy(), pm.log(xi, yi), atol=1e-10)
        assert abs(float(m.dist(x[i], y[i])) - pm.dist(xi, yi)) < 1e-10
        np.testing.assert_allclose(m.retract(x[i], u[i]).numpy(), pm.retraction(xi, ui), atol=1e-12)
        np.testing.assert_allclose(
            m.egrad_to_rgrad(x[i], eg[i]).numpy(), pm.euclidean_to_riemannian_gradient(xi, eg[i].numpy()),
            atol=1e-12)
        np.testing.assert_allclose(
            m.ehess_to_rhess(x[i], eg[i], eh[i], u[i]).numpy(),
            pm.euclidean_to_riemannian_hessian(xi, eg[i].numpy(), eh[i].numpy(), ui), atol=1e-12)


def test_dist_arccos_and_extreme_angles():
    m = Sphere(3)
    x = torch.tensor([1.0, 0.0, 0.0], dtype=DT)
    for t in [1e-14, 1e-9, 1e-4, 0.3, 1.0, 2.0, math.pi - 1e-4, math.pi - 1e-7]:
        y = torch.tensor([math.cos(t), math.sin(t), 0.0], dtype=DT)
        d = float(m.dist(x, y))
        assert abs(d - t) <= 1e-15 * max(t, 1), (t, d)
        if 0.1 < t < 3.0:
            assert abs(d - math.acos(float(x @ y))) < 1e-12
        lg = m.log(x, y)
        assert torch.isfinite(lg).all()
        assert abs(float(lg.norm()) - t) <= 1e-13 * max(t, 1), (t, float(lg.norm()))
        assert abs(float(x @ lg)) < 1e-14


def test_antipode_log_finite():
    m = Sphere(4)
    x = torch.tensor([0.6, 0.8, 0.0, 0.0], dtype=DT)
    lg = m.log(x, -x)
    assert torch.isfinite(lg).all()
    assert abs(float(lg.norm()) - math.pi) < 1e-12 and abs(float(x @ lg)) < 1e-14
    assert torch.allclose(m.exp(x, lg), -x, atol=1e-12)


def test_gradients_finite_at_equal_points(gen):
    m = Sphere(4)
    x = m.random_point(generator=gen, dtype=DT)
    y = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(m.dist(x, y), y)
    assert torch.isfinite(g).all()
    # log is smooth at y = x: its Jacobian there is the tangent projection.
    jac = torch.autograd.functional.jacobian(lambda yy: m.log(x, yy), x.clone())
    proj = torch.eye(4, dtype=DT) - torch.outer(x, x)
    assert torch.allclose(jac, proj, atol=1e-12)
    assert torch.autograd.gradcheck(lambda yy: m.log(x, m.project_point(yy)), (x.clone().requires_grad_(),))


def test_parallel_transport(gen):
    m, x, u, y = _setup(gen)
    v = m.random_tangent(x, generator=gen)
    tv = m.transport(x, y, v)
    assert torch.allclose(m.inner(y, tv, tv), m.inner(x, v, v), atol=1e-12)
    # The geodesic's velocity is parallel: P(log_x y) = −log_y x.
    assert torch.allclose(m.transport(x, y, m.log(x, y)), -m.log(y, x), atol=1e-10)
    # Transport along the geodesic splits into two halves.
    mid = m.geodesic(x, y, 0.5)
    assert torch.allclose(m.transport(mid, y, m.transport(x, mid, v)), tv, atol=1e-10)


def test_geodesic_and_uniform_points(gen):
    m = Sphere(3)
    x = m.random_point(4000, generator=gen, dtype=DT)
    assert float(x.mean(0).norm()) < 0.05
    assert torch.allclose((x * x).sum(-1), torch.ones(4000, dtype=DT))
    a, b = x[:5], x[5:10]
    t = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0], dtype=DT)
    g = m.geodesic(a, b, t)
    assert torch.allclose(m.dist(a, g), t * m.dist(a, b), atol=1e-12)


def test_validation_and_identity():
    m = Sphere(3)
    with pytest.raises(ValueError, match="off"):
        m.check_point(torch.tensor([1.0, 1.0, 0.0], dtype=DT))
    with pytest.raises(ValueError, match="n must be"):
        Sphere(0)
    with pytest.raises(NotImplementedError):
        m.identity()
    assert not m.has_gyro
    assert pickle.loads(pickle.dumps(m)) == m and hash(Sphere(3)) == hash(m) and m != Sphere(4)
