"""SPD metrics: Hessians, finite gradients at ties, deformation limits, compute dtype."""

from __future__ import annotations

import pytest
import torch
from riemlearn.manifolds.spd import SPD
from riemlearn.manifolds.spd_affine_invariant import AffineInvariant
from riemlearn.manifolds.spd_log_cholesky import LogCholesky
from riemlearn.manifolds.spd_log_euclidean import LogEuclidean

F64 = torch.float64

METRICS = [
    AffineInvariant(),
    LogEuclidean(),
    LogCholesky(),
    AffineInvariant(theta=0.5),
    LogEuclidean(theta=0.5),
    LogCholesky(theta=0.5),
    AffineInvariant(alpha=2.0, beta=-0.4),
    LogEuclidean(alpha=0.5, beta=0.7),
    AffineInvariant(theta=-1.5, alpha=1.5, beta=0.2),
]
ids = [repr(m) for m in METRICS]


def _cost(x, a, b):
    # A cost with a non-trivial Euclidean Hessian; b makes it depend on x⁻¹ as well.
    return (a * x).sum() + 0.25 * ((x * x).sum((-2, -1)) ** 2).sum() + (b * torch.linalg.inv(x)).sum()


def _egrad(x, a, b):
    return torch.func.grad(_cost)(x, a, b)


def _ehess(x, a, b, u):
    return torch.func.jvp(lambda y: _egrad(y, a, b), (x,), (u,))[1]


@pytest.mark.parametrize("metric", METRICS, ids=ids)
def test_ehess_to_rhess_matches_finite_differences(metric, gen):
    """Hess f(x)[u] = d/dt Γ_{γ(t)→x} grad f(γ(t)) at t = 0, γ the geodesic with γ'(0) = u."""
    m = SPD(3, metric)
    x = m.random_point(2, generator=gen, dtype=F64)
    u = m.random_tangent(x, generator=gen)
    v = m.random_tangent(x, generator=gen)
    a = m.random_tangent(x, generator=gen)
    b = m.random_tangent(x, generator=gen) * 0.1
    g = _egrad(x, a, b)
    hess = m.ehess_to_rhess(x, g, _ehess(x, a, b, u), u)
    assert m.is_tangent(x, hess).all()
    t = 1e-4

    def back(s):
        y = m.exp(x, s * u)
        return m.transport(y, x, m.egrad_to_rgrad(y, _egrad(y, a, b)))

    fd = (back(t) - back(-t)) / (2 * t)
    err = float((fd - hess).abs().max() / hess.abs().max())
    assert err < 1e-6, err
    # The Riemannian Hessian is self-adjoint for the metric.
    hv = m.ehess_to_rhess(x, g, _ehess(x, a, b, v), v)
    assert torch.allclose(m.inner(x, hess, v), m.inner(x, u, hv), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("metric", METRICS, ids=ids)
def test_dist_exp_equals_norm(metric, gen):
    m = SPD(4, metric)
    x = m.random_point(3, generator=gen, dtype=F64, cond=50.0)
    u = m.random_tangent(x, generator=gen)
    u = u / m.norm(x, u)[:, None, None] * torch.tensor([0.1, 1.0, 2.5], dtype=F64)[:, None, None]
    assert torch.allclose(m.dist(x, m.exp(x, u)), m.norm(x, u), rtol=1e-9)


def _tied_points():
    e = torch.eye(3, dtype=F64)
    q, _ = torch.linalg.qr(torch.tensor([[1.0, 2, 0], [0, 1, 3], [1, 0, 1]], dtype=F64))
    rep = q @ torch.diag(torch.tensor([2.0, 2.0, 0.5], dtype=F64)) @ q.T  # repeated eigenvalue
    return [("identity", e), ("repeated", rep), ("scalar", 3.0 * e)]


@pytest.mark.parametrize("metric", METRICS[:6] + METRICS[6:7], ids=ids[:7])
def test_finite_gradients_at_ties(metric):
    m = SPD(3, metric)
    pts = _tied_points()
    for (_, x0), (_, y0) in zip(pts, pts[1:] + pts[:1], strict=True):
        for fn in (
            lambda x, y: m.dist(x, y),
            lambda x, y: (m.log(x, y) ** 2).sum(),
            lambda x, y: (m.exp(x, y - x) ** 2).sum(),
            lambda x, y: m.inner(x, y, y),
            lambda x, y: m.dist(x, x + 0 * y),  # at x == y
        ):
            x = x0.clone().requires_grad_(True)
            y = y0.clone().requires_grad_(True)
            gx, gy = torch.autograd.grad(fn(x, y), (x, y))
            assert torch.isfinite(gx).all() and torch.isfinite(gy).all()
    # gradcheck (finite differences) exactly at the identity and at a repeated eigenvalue
    e = pts[0][1]
    rep = pts[1][1]
    for x0, y0 in ((e, rep), (rep, e)):
        x = x0.clone().requires_grad_(True)
        y = y0.clone().requires_grad_(True)
        assert torch.autograd.gradcheck(lambda x, y: m.dist(x, y), (x, y), atol=1e-6)
        assert torch.autograd.gradcheck(lambda x, y: m.log(x, y), (x, y), atol=1e-6)
        assert torch.autograd.gradcheck(lambda x, y: m.exp(x, 0.3 * (y - x)), (x, y), atol=1e-6)


@pytest.mark.parametrize("metric", METRICS[:6], ids=ids[:6])
def test_double_backward_at_ties(metric):
    """Hessian-vector products of d²(x, y) by double backward: finite and equal to finite
    differences of the gradient, at the identity and at repeated eigenvalues."""
    m = SPD(3, metric)
    pts = _tied_points()
    u = torch.eye(3, dtype=F64) + 0.1
    for (_, x0), (_, y0) in zip(pts, pts[1:] + pts[:1], strict=True):

        def grad(x, y0=y0):
            x = x.clone().requires_grad_(True)
            (gx,) = torch.autograd.grad(m.dist(x, y0) ** 2, x, create_graph=True)
            return x, gx

        x, gx = grad(x0)
        (hv,) = torch.autograd.grad((gx * u).sum(), x)
        assert torch.isfinite(hv).all()
        e = 1e-5
        fd = (grad(x0 + e * u)[1] - grad(x0 - e * u)[1]) / (2 * e)
        assert torch.allclose(hv, fd, atol=1e-6), float((hv - fd).abs().max())


def test_power_deformation_limits(gen):
    m = SPD(3)
    x = m.random_point(4, generator=gen, dtype=F64)
    y = m.random_point(4, generator=gen, dtype=F64)
    u = m.random_tangent(x, generator=gen)
    le = LogEuclidean()
    # θ → 0: the power-affine-invariant metric tends to the log-Euclidean one (error O(θ²)).
    errs = [float((AffineInvariant(theta=t).dist(x, y) - le.dist(x, y)).abs().max()) for t in (1e-1, 1e-2)]
    assert errs[1] < errs[0] / 50 and errs[1] < 1e-3, errs
    ai = AffineInvariant(theta=1e-3)
    assert torch.allclose(ai.inner(x, u, u), le.inner(x, u, u), rtol=1e-5)
    # log P^θ = θ log P: power deformation leaves the log-Euclidean metric unchanged.
    le2 = LogEuclidean(theta=0.5)
    assert torch.allclose(le2.dist(x, y), le.dist(x, y), rtol=1e-10)
    assert torch.allclose(le2.log(x, y), le.log(x, y), rtol=1e-9, atol=1e-10)
    # θ = −1 (inversion) is an isometry of the affine-invariant metric.
    assert torch.allclose(AffineInvariant(theta=-1.0).dist(x, y), AffineInvariant().dist(x, y), rtol=1e-9)
    # θ scales like a pullback: d_θ(x, y) = d_1(x^θ, y^θ)/θ.
    lc = LogCholesky(theta=0.5)
    from riemlearn.manifolds.spectral import powm

    assert torch.allclose(lc.dist(x, y), LogCholesky().dist(powm(x, 0.5), powm(y, 0.5)) / 0.5)


def test_alpha_beta_weighting(gen):
    m = SPD(3)
    x = m.random_point(3, generator=gen, dtype=F64)
    y = m.random_point(3, generator=gen, dtype=F64)
    for base, cls in ((AffineInvariant(), AffineInvariant), (LogEuclidean(), LogEuclidean)):
        ab = cls(alpha=2.0, beta=0.25)
        u = base.log(x, y)
        assert torch.allclose(ab.log(x, y), u, atol=1e-10)  # same connection, same geodesics
        trace = torch.linalg.solve(x, u).diagonal(dim1=-2, dim2=-1).sum(-1)
        if cls is LogEuclidean:
            from riemlearn.manifolds.spectral import logm

            d = logm(y) - logm(x)
            trace = d.diagonal(dim1=-2, dim2=-1).sum(-1)
        want = (2.0 * base.dist(x, y) ** 2 + 0.25 * trace**2).sqrt()
        assert torch.allclose(ab.dist(x, y), want, rtol=1e-10)


def test_ai_retraction_second_order(gen):
    m = SPD(3)
    x = m.random_point(2, generator=gen, dtype=F64)
    u = m.random_tangent(x, generator=gen)
    errs = [float((m.retract(x, t * u) - m.exp(x, t * u)).abs().max()) for t in (1e-2, 1e-3)]
    assert errs[1] < errs[0] / 500, errs  # error O(t³)


def test_compute_dtype_policy(gen):
    """float32 is computed in float64 by default; compute_dtype=None keeps float32."""
    m = SPD(4)
    r = m.random_point(2, generator=gen, dtype=F64, cond=4.0)
    d = torch.exp(torch.linspace(0.0, 7.0, 4, dtype=F64))
    x = (d[:, None] * r * d).float()  # graded, condition ~1e6–1e7, exactly float32
    y = m.random_point(2, generator=gen, dtype=torch.float32, cond=10.0)
    for cls in (AffineInvariant, LogEuclidean, LogCholesky):
        ref = cls().dist(x.double(), y.double())
        auto = cls().dist(x, y)
        assert auto.dtype == torch.float32
        assert float(((auto.double() - ref) / ref).abs().max()) < 1e-6
    plain = LogEuclidean(compute_dtype=None).dist(x, y)
    assert plain.dtype == torch.float32
    ref = LogEuclidean().dist(x.double(), y.double())
    assert float(((plain.double() - ref) / ref).abs().max()) > 1e-6  # the reason for the default
    with pytest.raises(ValueError, match="compute_dtype"):
        AffineInvariant(compute_dtype="float64")


@pytest.mark.cuda
@pytest.mark.parametrize(
    "metric", [AffineInvariant(), LogEuclidean(), LogCholesky(), AffineInvariant(theta=0.5)], ids=repr
)
def test_cuda_matches_cpu(metric, gen):
    m = SPD(5, metric)
    x = m.random_point(8, generator=gen, dtype=F64)
    y = m.random_point(8, generator=gen, dtype=F64)
    u = m.random_tangent(x, generator=gen)
    xc, yc, uc = x.cuda(), y.cuda(), u.cuda()
    for name, cpu, gpu in (
        ("dist", m.dist(x, y), m.dist(xc, yc)),
        ("log", m.log(x, y), m.log(xc, yc)),
        ("exp", m.exp(x, u), m.exp(xc, uc)),
        ("transport", m.transport(x, y, u), m.transport(xc, yc, uc)),
    ):
        assert gpu.device.type == "cuda", name
        assert torch.allclose(gpu.cpu(), cpu, rtol=1e-9, atol=1e-9), name
    d32 = m.dist(xc.float(), yc.float())
    assert d32.dtype == torch.float32 and d32.device.type == "cuda"
    assert m.random_point(2, dtype=torch.float32, device="cuda").device.type == "cuda"
