"""Stiefel: pymanopt cross-checks (embedded metric), closed forms, Riemannian Hessians, Zimmermann log."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import scipy.linalg
import torch
from riemlearn.manifolds.stiefel import Stiefel, StiefelCanonicalMetric
from riemlearn.manifolds.stiefel_log import logm_orthogonal, stiefel_log_canonical

pymanopt = pytest.importorskip("pymanopt")

DT = torch.float64


def _pts(gen, n=6, p=3, b=4, metric="embedded", retraction="qr", scale=1.0):
    m = Stiefel(n, p, metric, retraction)
    x = m.random_point(b, generator=gen, dtype=DT)
    u = m.random_tangent(x, generator=gen)
    u = scale * u / m.norm(x, u)[:, None, None]
    return m, x, u


@pytest.mark.parametrize("retraction", ["qr", "polar"])
def test_embedded_against_pymanopt(gen, retraction):
    m, x, u = _pts(gen, retraction=retraction)
    pm = pymanopt.manifolds.Stiefel(6, 3, retraction=retraction)
    eg = torch.randn(x.shape, generator=gen, dtype=DT)
    eh = torch.randn(x.shape, generator=gen, dtype=DT)
    y = m.retract(x, u)
    for i in range(x.shape[0]):
        xi, ui, egi, ehi = x[i].numpy(), u[i].numpy(), eg[i].numpy(), eh[i].numpy()
        np.testing.assert_allclose(m.exp(x[i], u[i]).numpy(), pm.exp(xi, ui), atol=1e-10)
        np.testing.assert_allclose(y[i].numpy(), pm.retraction(xi, ui), atol=1e-10)
        np.testing.assert_allclose(m.egrad_to_rgrad(x[i], eg[i]).numpy(),
                                   pm.euclidean_to_riemannian_gradient(xi, egi), atol=1e-12)
        np.testing.assert_allclose(m.ehess_to_rhess(x[i], eg[i], eh[i], u[i]).numpy(),
                                   pm.euclidean_to_riemannian_hessian(xi, egi, ehi, ui), atol=1e-12)
        np.testing.assert_allclose(m.transport(x[i], y[i], eg[i]).numpy(),
                                   pm.transport(xi, y[i].numpy(), egi), atol=1e-12)
        assert abs(float(m.inner(x[i], u[i], eg[i])) - pm.inner_product(xi, ui, egi)) < 1e-12


def test_qr_retraction_positive_diagonal(gen):
    m, x, u = _pts(gen)
    y = m.retract(x, u)
    r = y.mT @ (x + u)
    assert torch.allclose(r, torch.triu(r), atol=1e-12)
    assert bool((torch.diagonal(r, dim1=-2, dim2=-1) > 0).all())


def test_canonical_exp_closed_forms(gen):
    m, x, u = _pts(gen, metric="canonical", scale=1.5)
    y = m.exp(x, u)
    for i in range(x.shape[0]):
        xi, ui = x[i].numpy(), u[i].numpy()
        # Edelman–Arias–Smith: QR of (I − XXᵀ)U and the 2p × 2p exponential.
        a = xi.T @ ui
        q, r = np.linalg.qr(ui - xi @ a)
        blk = scipy.linalg.expm(np.block([[a, -r.T], [r, np.zeros_like(a)]]))
        ref = xi @ blk[:3, :3] + q @ blk[3:, :3]
        np.testing.assert_allclose(y[i].numpy(), ref, atol=1e-12)
        # expm of the n × n skew generator.
        g = ui - 0.5 * xi @ a
        om = g @ xi.T - xi @ g.T
        np.testing.assert_allclose(y[i].numpy(), scipy.linalg.expm(om) @ xi, atol=1e-12)


def test_cayley_closed_form(gen):
    m, x, u = _pts(gen, metric="canonical", retraction="cayley")
    y = m.retract(x, u)
    eye = np.eye(6)
    for i in range(x.shape[0]):
        xi, ui = x[i].numpy(), u[i].numpy()
        gh = (eye - 0.5 * xi @ xi.T) @ ui
        w = gh @ xi.T - xi @ gh.T
        ref = np.linalg.solve(eye - 0.5 * w, (eye + 0.5 * w) @ xi)
        np.testing.assert_allclose(y[i].numpy(), ref, atol=1e-12)


def _cost(x, a):
    return (a * x).sum((-2, -1)) + ((x.mT @ a) ** 2).sum((-2, -1)) + 0.5 * (x[..., 0, :] ** 3).sum(-1)


@pytest.mark.parametrize("metric", ["canonical", "embedded"])
def test_gradient_and_hessian_along_geodesics(gen, metric):
    m, x, u = _pts(gen, metric=metric, b=3)
    v = m.random_tangent(x, generator=gen)
    a = torch.randn(x.shape, generator=gen, dtype=DT)

    def egrad(xx):
        xx = xx.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(_cost(xx, a).sum(), xx, create_graph=True)
        return xx, g

    xr, g = egrad(x)
    hu = torch.autograd.grad((g * u).sum(), xr, retain_graph=True)[0]
    hv = torch.autograd.grad((g * v).sum(), xr)[0]
    g = g.detach()
    rg = m.egrad_to_rgrad(x, g)
    assert torch.allclose(m.inner(x, rg, v), (g * v).sum((-2, -1)), atol=1e-12)
    rhu = m.ehess_to_rhess(x, g, hu, u)
    rhv = m.ehess_to_rhess(x, g, hv, v)
    assert bool(m.is_tangent(x, rhu).all())
    # Self-adjoint in the metric.
    assert torch.allclose(m.inner(x, rhu, v), m.inner(x, u, rhv), atol=1e-10)
    # Second derivative of f along the geodesic t ↦ exp(x, tu) is ⟨Hess f[u], u⟩.
    h = 1e-4
    f = [_cost(m.exp(x, t * u), a) for t in (-h, 0.0, h)]
    second = (f[0] - 2 * f[1] + f[2]) / h**2
    assert torch.allclose(second, m.inner(x, rhu, u), atol=1e-5, rtol=1e-5)


def test_zimmermann_log_round_trips(gen):
    m, x, u = _pts(gen, n=7, p=3, b=8, metric="canonical")
    u = u * torch.linspace(0.05, 2.5, 8, dtype=DT)[:, None, None]
    y = m.exp(x, u)
    lg = m.log(x, y)
    assert torch.allclose(lg, u, atol=1e-10)
    assert torch.allclose(m.exp(x, lg), y, atol=1e-10)
    assert torch.allclose(m.dist(x, y), m.norm(x, u), atol=1e-10)
    # Batched with per-item convergence equals item by item.
    for i in (0, 7):
        assert torch.allclose(m.log(x[i], y[i]), lg[i], atol=1e-12)
    # The 2017 iteration (no Sylvester step) gives the same logarithm.
    assert torch.allclose(stiefel_log_canonical(x, y, sylvester=False), u, atol=1e-10)


def test_zimmermann_log_float32_and_square(gen):
    m, x, u = _pts(gen, n=5, p=2, b=4, metric="canonical")
    y = m.exp(x, u)
    lg = m.log(x.float(), y.float())
    assert lg.dtype == torch.float32 and torch.allclose(lg.double(), u, atol=1e-4)
    # Square case O(n): log_X(X expm(A)) = XA for skew A (canonical metric, n = p).
    sq = Stiefel(4, 4)
    xs = sq.random_point(generator=gen, dtype=DT)
    w = torch.randn(4, 4, generator=gen, dtype=DT)
    skew = 0.4 * (w - w.T)
    ys = xs @ torch.linalg.matrix_exp(skew)
    assert torch.allclose(sq.log(xs, ys), xs @ skew, atol=1e-10)
    # Reflections are in the other component of O(4): no logarithm.
    refl = ys.clone()
    refl[:, 0] = -refl[:, 0]
    with pytest.raises(ValueError, match="cut locus|radius"):
        sq.log(xs, refl)


def test_zimmermann_reports_failure(gen):
    m, x, u = _pts(gen, n=6, p=3, b=2, metric="canonical", scale=1.0)
    y = m.exp(x, u)
    with pytest.raises(ValueError, match="did not converge"):
        stiefel_log_canonical(x, y, max_iter=1, sylvester=False)
    # Far pairs: geodesic longer than the certified injectivity radius is refused.
    far = m.exp(x, 3.05 * u)
    with pytest.raises(ValueError, match="radius|converge"):
        m.dist(x, far)


def test_logm_orthogonal(gen):
    w = torch.randn(3, 6, 6, generator=gen, dtype=DT)
    skew = 0.9 * (w - w.mT) / 2
    v = torch.linalg.matrix_exp(skew)
    for i in range(3):
        ref = scipy.linalg.logm(v[i].numpy())
        assert np.allclose(logm_orthogonal(v[i]).numpy(), ref.real, atol=1e-10)


def test_log_gradient_at_equal_points(gen):
    m = Stiefel(5, 2)
    x = m.random_point(generator=gen, dtype=DT)
    u = 0.3 * m.random_tangent(x, generator=gen)
    y = m.exp(x, u).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda yy: m.log(x, m.project_point(yy)), (y,))
    yy = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(m.dist(x, yy), yy)
    assert torch.isfinite(g).all()


def test_construction_and_identity():
    with pytest.raises(ValueError, match="retraction"):
        Stiefel(4, 2, retraction="svd")
    with pytest.raises(ValueError, match="metric"):
        Stiefel(4, 2, metric="euclid")
    with pytest.raises(ValueError, match="p <= n"):
        Stiefel(2, 3)
    m = Stiefel(4, 2, metric=StiefelCanonicalMetric("polar"))
    assert m == Stiefel(4, 2, "canonical", "polar") and m != Stiefel(4, 2, "canonical", "qr")
    assert pickle.loads(pickle.dumps(m)) == m and hash(m) == hash(Stiefel(4, 2, "canonical", "polar"))
    with pytest.raises(NotImplementedError):
        Stiefel(4, 2, "embedded").log(torch.eye(4, 2, dtype=DT), torch.eye(4, 2, dtype=DT))
    assert not m.has_gyro
    e = torch.eye(4, 2, dtype=DT)
    assert math.isclose(float(m.dist(e, e)), 0.0, abs_tol=1e-12)


def test_log_gradient_rank_deficient_qr(gen):
    # p < n < 2p: Y − XM has rank n − p < p.
    m = Stiefel(5, 3)
    x = m.random_point(generator=gen, dtype=DT)
    u = 0.5 * m.random_tangent(x, generator=gen)
    y = m.exp(x, u)
    assert torch.allclose(m.log(x, y), u, atol=1e-10)
    assert torch.autograd.gradcheck(lambda yy: m.dist(x, m.project_point(yy)), (y.clone().requires_grad_(),))


@pytest.mark.parametrize("batch", [(), (3,)])
@pytest.mark.parametrize("which", ["stiefel-embedded", "grassmann"])
def test_hessian_operator_at_a_point_matches_the_textbook_formula(which, batch):
    """``ehess_to_rhess_at(x, egrad)`` (the solvers' operator, ``Xᵀ egrad`` precomputed) against
    Absil–Mahony–Sepulchre's formulas written out here: Stiefel (embedded metric)
    ``P_X(ehess − U sym(Xᵀ G))``, Grassmann ``(I − XXᵀ) ehess − U Xᵀ G``."""
    from riemlearn.manifolds import Grassmann

    g = torch.Generator().manual_seed(3)
    m = Grassmann(7, 3) if which == "grassmann" else Stiefel(7, 3, metric="embedded")
    x = m.random_point(*batch, generator=g, dtype=torch.float64)
    eg = torch.randn(x.shape, generator=g, dtype=torch.float64)
    op = m.ehess_to_rhess_at(x, eg)
    xt = x.transpose(-1, -2)
    for _ in range(3):
        u = m.random_tangent(x, generator=g)
        eh = torch.randn(x.shape, generator=g, dtype=torch.float64)
        if which == "grassmann":
            ref = eh - x @ (xt @ eh) - u @ (xt @ eg)
        else:
            w = eh - u @ (0.5 * (xt @ eg + eg.transpose(-1, -2) @ x))
            ref = w - x @ (0.5 * (xt @ w + w.transpose(-1, -2) @ x))
        torch.testing.assert_close(op(eh, u), ref, rtol=1e-13, atol=1e-13)
        torch.testing.assert_close(m.ehess_to_rhess(x, eg, eh, u), ref, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-13), (torch.float32, 5e-6)])
def test_cholesky_qr2_is_the_householder_q(gen, dtype, tol):
    """CholeskyQR2 (the CUDA batch path of qf) gives the positive-diagonal Householder Q, from
    retraction inputs X + U with large steps too; it declines rank-deficient and NaN input."""
    from riemlearn.manifolds.stiefel import cholesky_qr2, qf

    m = Stiefel(12, 4, metric="embedded")
    x = m.random_point(50, generator=gen, dtype=torch.float64)
    u = m.project_tangent(x, torch.randn(50, 12, 4, generator=gen, dtype=torch.float64))
    z = (x + u * torch.logspace(-3, 2, 50, dtype=torch.float64)[:, None, None]).to(dtype)
    q = cholesky_qr2(z)
    ref, r = np.linalg.qr(z.double().numpy())
    ref = ref * np.sign(np.diagonal(r, axis1=-2, axis2=-1))[..., None, :]
    assert q is not None and q.dtype == dtype
    assert np.abs(q.double().numpy() - ref).max() <= tol
    torch.testing.assert_close(qf(z), q, rtol=0, atol=tol)  # CPU: Householder, same Q
    eye = torch.eye(4, dtype=dtype)
    assert (q.mT @ q - eye).abs().max() <= tol
    low_rank = z.clone()
    low_rank[3, :, 1] = low_rank[3, :, 0]
    assert cholesky_qr2(low_rank) is None
    bad = z.clone()
    bad[0, 0, 0] = float("nan")
    assert cholesky_qr2(bad) is None


@pytest.mark.cuda
def test_qr_retraction_cuda_batch_matches_cpu(gen):
    from riemlearn.manifolds.stiefel import CUDA_CHOLQR_MIN_BATCH, qr_retraction

    m = Stiefel(10, 3, metric="embedded")
    b = 4 * CUDA_CHOLQR_MIN_BATCH
    x = m.random_point(b, generator=gen, dtype=torch.float64)
    u = m.project_tangent(x, torch.randn(b, 10, 3, generator=gen, dtype=torch.float64))
    got = qr_retraction(x.cuda(), u.cuda()).cpu()
    torch.testing.assert_close(got, qr_retraction(x, u), rtol=0, atol=1e-13)
