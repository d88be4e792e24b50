"""Grassmann: pymanopt and scipy cross-checks, EAS parallel transport, stability at zero angle."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.linalg
import torch
from riemlearn.manifolds.grassmann import Grassmann

pymanopt = pytest.importorskip("pymanopt")

DT = torch.float64


def _pts(gen, n=6, p=3, b=4, scale=1.0):
    m = Grassmann(n, p)
    x = m.random_point(b, generator=gen, dtype=DT)
    u = m.random_tangent(x, generator=gen)
    u = scale * u / m.norm(x, u)[:, None, None]
    y = m.random_point(b, generator=gen, dtype=DT)
    return m, x, u, y


def _proj(a):
    return a @ a.mT


def test_against_pymanopt_and_scipy(gen):
    m, x, u, y = _pts(gen)
    pm = pymanopt.manifolds.Grassmann(6, 3)
    eg = torch.randn(x.shape, generator=gen, dtype=DT)
    eh = torch.randn(x.shape, generator=gen, dtype=DT)
    for i in range(x.shape[0]):
        xi, ui, yi, egi, ehi = x[i].numpy(), u[i].numpy(), y[i].numpy(), eg[i].numpy(), eh[i].numpy()
        ref = _proj(torch.from_numpy(pm.exp(xi, ui))).numpy()
        np.testing.assert_allclose(_proj(m.exp(x[i], u[i])).numpy(), ref, atol=1e-12)
        np.testing.assert_allclose(m.log(x[i], y[i]).numpy(), pm.log(xi, yi), atol=1e-10)
        d = float(m.dist(x[i], y[i]))
        assert abs(d - pm.dist(xi, yi)) < 1e-10
        assert abs(d - np.linalg.norm(scipy.linalg.subspace_angles(xi, yi))) < 1e-10
        np.testing.assert_allclose(_proj(m.retract(x[i], u[i])).numpy(),
                                   _proj(torch.from_numpy(pm.retraction(xi, ui))).numpy(), atol=1e-12)
        np.testing.assert_allclose(m.egrad_to_rgrad(x[i], eg[i]).numpy(),
                                   pm.euclidean_to_riemannian_gradient(xi, egi), atol=1e-12)
        np.testing.assert_allclose(m.ehess_to_rhess(x[i], eg[i], eh[i], u[i]).numpy(),
                                   pm.euclidean_to_riemannian_hessian(xi, egi, ehi, ui), atol=1e-12)


def test_exp_log_subspaces(gen):
    m, x, u, y = _pts(gen)
    lg = m.log(x, y)
    assert bool(m.is_tangent(x, lg).all())
    assert torch.allclose(_proj(m.exp(x, lg)), _proj(y), atol=1e-10)
    # Basis independence: log(x, yQ) = log(x, y).
    q = torch.linalg.qr(torch.randn(4, 3, 3, generator=gen, dtype=DT))[0]
    assert torch.allclose(m.log(x, y @ q), lg, atol=1e-10)
    assert torch.allclose(m.dist(x, y @ q), m.dist(x, y), atol=1e-12)
    # Inside the injectivity radius (π/2 on the largest angle) log inverts exp exactly.
    u2 = 1.4 * u
    assert torch.allclose(m.log(x, m.exp(x, u2)), u2, atol=1e-10)


def test_parallel_transport_eas(gen):
    m, x, u, y = _pts(gen, scale=1.2)
    v = m.random_tangent(x, generator=gen)
    yy = m.exp(x, u)
    tv = m.transport(x, yy, v)
    for i in range(x.shape[0]):
        xi, ui, vi = x[i].numpy(), u[i].numpy(), v[i].numpy()
        pu, s, vt = np.linalg.svd(ui, full_matrices=False)
        ref = (-xi @ vt.T @ np.diag(np.sin(s)) @ pu.T + pu @ np.diag(np.cos(s)) @ pu.T
               + np.eye(6) - pu @ pu.T) @ vi
        np.testing.assert_allclose(tv[i].numpy(), ref, atol=1e-12)
    # Any basis of the target: the result is the horizontal lift at that basis.
    q = torch.linalg.qr(torch.randn(4, 3, 3, generator=gen, dtype=DT))[0]
    assert torch.allclose(m.transport(x, yy @ q, v), tv @ q, atol=1e-10)
    assert torch.allclose(m.transport(x, y, m.log(x, y)), -m.log(y, x), atol=1e-10)
    tv, tu = m.transport(x, y, v), m.transport(x, y, u)
    assert torch.allclose(m.inner(y, tv, tu), m.inner(x, v, u), atol=1e-10)


def test_zero_angle_values_and_gradients(gen):
    m = Grassmann(5, 2)
    x = m.random_point(generator=gen, dtype=DT)
    q = torch.linalg.qr(torch.randn(2, 2, generator=gen, dtype=DT))[0]
    y = x @ q  # same subspace, other basis
    assert float(m.dist(x, y)) < 1e-7
    assert float(m.log(x, y).abs().max()) < 1e-12
    yy = y.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(m.dist(x, m.project_point(yy)), yy)
    assert torch.isfinite(g).all()
    # log and exp are smooth at zero: gradcheck there (SVD backward would give NaN/inf).
    assert torch.autograd.gradcheck(lambda a: m.log(x, m.project_point(a)), (y.clone().requires_grad_(),))
    assert torch.autograd.gradcheck(lambda a: m.exp(x, a), (torch.zeros_like(x).requires_grad_(),))
    # dist² is smooth at 0 and its gradient there vanishes.
    (g2,) = torch.autograd.grad(m.dist(x, yy) ** 2, yy)
    assert float(g2.abs().max()) < 1e-10


def test_small_and_near_right_angle_accuracy():
    m = Grassmann(4, 2)
    x = torch.eye(4, 2, dtype=DT)
    for t in (1e-12, 1e-8, 1e-3, 1.0, 1.5, np.pi / 2 - 1e-6, np.pi / 2 - 1e-9):
        y = torch.zeros(4, 2, dtype=DT)
        y[0, 0], y[2, 0], y[1, 1] = np.cos(t), np.sin(t), 1.0
        assert abs(float(m.dist(x, y)) - t) <= 2e-15 * t, t
        assert abs(float(m.norm(x, m.log(x, y))) - t) <= 1e-13 * t, t


def test_retractions_and_identity(gen):
    m, x, u, y = _pts(gen)
    mq = Grassmann(6, 3, retraction="qr")
    assert torch.allclose(_proj(m.retract(x, u)), _proj(mq.retract(x, u)), atol=1e-12)
    e = m.identity(2, dtype=DT)
    assert e.shape == (2, 6, 3) and bool(m.belongs(e).all())
    assert m.has_gyro  # gyro structure: manifolds/grassmann_gyro.py, tested in test_grassmann_gyro.py
    assert torch.allclose(m.gyro_add(e, e), e, atol=1e-14)
    with pytest.raises(ValueError, match="retraction"):
        Grassmann(4, 2, retraction="cayley")
    assert pickle.loads(pickle.dumps(mq)) == mq and mq != m


def test_right_angle_cut_locus():
    m = Grassmann(4, 2)
    x = torch.eye(4, 2, dtype=DT)
    y = torch.tensor([[1.0, 0], [0, 0], [0, 1], [0, 0]], dtype=DT)  # angles 0 and π/2
    yy = y.clone().requires_grad_(True)
    d = m.dist(x, yy)
    assert abs(float(d.detach()) - np.pi / 2) < 1e-15
    (g,) = torch.autograd.grad(d, yy)
    assert torch.isfinite(g).all()
    with pytest.raises(ValueError, match="cut locus"):
        m.log(x, y)
