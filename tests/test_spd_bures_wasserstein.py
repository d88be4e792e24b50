"""Bures–Wasserstein and generalized BW on SPD: cross-checks, closed forms, stability, transport."""

from __future__ import annotations

import pickle
import warnings

import mpmath
import pytest
import torch
from riemlearn.manifolds.spd import SPD
from riemlearn.manifolds.spd_bures_wasserstein import (
    BuresWasserstein,
    GeneralizedBuresWasserstein,
    bw_dist,
    bw_transport,
    gbw_dist,
)
from riemlearn.manifolds.spectral import sym

F64 = torch.float64

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from pyriemann.utils.distance import distance_wasserstein
    from pyriemann.utils.geodesic import geodesic_wasserstein
    from pyriemann.utils.tangentspace import exp_map_wasserstein, log_map_wasserstein


def _spd(gen, *batch, n=4, floor=0.2):
    a = torch.randn(*batch, n, n, generator=gen, dtype=F64)
    return a @ a.mT / n + floor * torch.eye(n, dtype=F64)


def _symm(gen, *batch, n=4):
    return sym(torch.randn(*batch, n, n, generator=gen, dtype=F64))


def _commuting_pair(gen, batch=3, n=4):
    q = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=F64))[0]
    lam = torch.rand(batch, n, generator=gen, dtype=F64) + 0.1
    mu = torch.rand(batch, n, generator=gen, dtype=F64) + 0.1
    return q @ torch.diag_embed(lam) @ q.T, q @ torch.diag_embed(mu) @ q.T, lam, mu, q


BW = BuresWasserstein()


# -- cross-checks against pyriemann -------------------------------------------------------------
def test_matches_pyriemann(gen):
    x, y = _spd(gen, 6), _spd(gen, 6)
    u = 0.3 * _symm(gen, 6)
    d_ref = torch.as_tensor(distance_wasserstein(x.numpy(), y.numpy()))
    assert torch.allclose(BW.dist(x, y), d_ref, atol=1e-10, rtol=0)
    geo = torch.as_tensor(geodesic_wasserstein(x.numpy(), y.numpy(), 0.3))
    assert torch.allclose(BW.geodesic(x, y, 0.3), geo, atol=1e-10, rtol=0)
    for i in range(6):  # pyriemann's maps take one reference matrix
        lg = torch.as_tensor(log_map_wasserstein(y[i].numpy(), x[i].numpy()))
        ex = torch.as_tensor(exp_map_wasserstein(u[i].numpy(), x[i].numpy()))
        assert torch.allclose(BW.log(x[i], y[i]), lg, atol=1e-10, rtol=0)
        assert torch.allclose(BW.exp(x[i], u[i]), ex, atol=1e-10, rtol=0)


# -- closed forms -------------------------------------------------------------------------------
def test_commuting_closed_forms(gen):
    x, y, lam, mu, q = _commuting_pair(gen)
    hellinger = (lam.sqrt() - mu.sqrt()).norm(dim=-1)
    assert torch.allclose(BW.dist(x, y), hellinger, atol=1e-12, rtol=0)
    # log_x y = 2 (√(λμ) − λ) in the common eigenbasis
    log_ref = q @ torch.diag_embed(2 * ((lam * mu).sqrt() - lam)) @ q.T
    assert torch.allclose(BW.log(x, y), log_ref, atol=1e-12, rtol=0)
    # transport: v_ij ↦ v_ij √((μi + μj) / (λi + λj))
    v = _symm(gen, 3)
    vh = q.T @ v @ q
    ratio = ((mu[:, :, None] + mu[:, None, :]) / (lam[:, :, None] + lam[:, None, :])).sqrt()
    ref = q @ (ratio * vh) @ q.T
    assert torch.allclose(BW.transport(x, y, v), ref, atol=1e-12, rtol=0)
    # the numerical ODE path (forced by a gradient requirement) converges to the closed form
    xg = x.clone().requires_grad_(True)
    ode = bw_transport(xg, y, v, steps=8)
    assert torch.allclose(ode.detach(), ref, atol=1e-8, rtol=0)


def test_one_by_one(gen):
    a = torch.tensor([[[2.0]], [[0.5]]], dtype=F64)
    b = torch.tensor([[[8.0]], [[0.5]]], dtype=F64)
    u = torch.tensor([[[0.7]], [[-0.3]]], dtype=F64)
    assert torch.allclose(BW.dist(a, b), (a.sqrt() - b.sqrt()).abs().flatten(), atol=1e-14, rtol=0)
    assert torch.allclose(BW.log(a, b), 2 * ((a * b).sqrt() - a), atol=1e-14, rtol=0)
    assert torch.allclose(BW.exp(a, u), a + u + u * u / (4 * a), atol=1e-14, rtol=0)
    assert torch.allclose(BW.inner(a, u, u), (u * u / (4 * a)).flatten(), atol=1e-14, rtol=0)


# -- consistency and stability -------------------------------------------------------------------
def test_dist_exp_equals_norm_near_domain_boundary(gen):
    x = _spd(gen, 5)
    # u = L x + x L with I + L positive definite but λmin(I + L) = 0.1: far, still a geodesic.
    lmat = _symm(gen, 5)
    w = torch.linalg.eigvalsh(lmat)[..., :1]
    lmat = lmat - (w + 0.9)[..., None] * torch.eye(4, dtype=F64)
    u = lmat @ x + x @ lmat
    y = BW.exp(x, u)
    assert torch.allclose(BW.dist(x, y), BW.norm(x, u), rtol=1e-10, atol=0)
    assert torch.allclose(BW.log(x, y), u, rtol=0, atol=1e-9 * float(u.abs().max()))


def test_dist_of_close_points_is_accurate(gen):
    x = _spd(gen, 4)
    u = _symm(gen, 4)
    u = u / BW.norm(x, u)[:, None, None]
    for eps_ in (1e-4, 1e-7, 1e-10):
        y = BW.exp(x, eps_ * u)
        rel = (BW.dist(x, y) / eps_ - 1).abs().max()
        assert rel < 1e-5, (eps_, float(rel))  # the trace formula alone loses all digits at 1e-10
    assert float(BW.dist(x, x).abs().max()) < 1e-13  # O(eps), not O(√eps)


def _f32_exact_spd(gen, batch, cond, n=4):
    """SPD with condition ``cond`` exactly representable in float32: the smallest eigenvalue
    sits on e1 (no rounding can perturb it), the others are rotated among themselves."""
    q = torch.linalg.qr(torch.randn(batch, n - 1, n - 1, generator=gen, dtype=F64))[0]
    lam = torch.exp(torch.rand(batch, n - 1, generator=gen, dtype=F64) * torch.log(torch.tensor(cond)))
    lam[:, -1] = cond
    x = torch.zeros(batch, n, n, dtype=F64)
    x[:, 0, 0] = 1.0
    x[:, 1:, 1:] = q @ torch.diag_embed(lam) @ q.mT
    return sym(x).float()


def test_float32_and_float64_at_high_condition(gen):
    m = SPD(4, metric=BW)
    x32, y32 = _f32_exact_spd(gen, 3, 1e8), _f32_exact_spd(gen, 3, 1e8)
    x12 = m.random_point(3, generator=gen, dtype=F64, cond=1e12)
    y12 = m.random_point(3, generator=gen, dtype=F64, cond=1e12)

    def msqrt(a):
        e, q = mpmath.eigsy(a)
        return q * mpmath.diag([mpmath.sqrt(max(ei, 0)) for ei in e]) * q.T

    def ref(x, y):
        mpmath.mp.dps = 50
        out = []
        for xi, yi in zip(x, y, strict=True):
            xm, ym = mpmath.matrix(xi.tolist()), mpmath.matrix(yi.tolist())
            a = msqrt(xm)
            s = msqrt(a * ym * a)
            d2 = sum(xm[i, i] + ym[i, i] - 2 * s[i, i] for i in range(4))
            out.append(float(mpmath.sqrt(d2)))
        return torch.tensor(out, dtype=F64)

    d8 = ref(x32.double(), y32.double())
    got32 = BW.dist(x32, y32)
    assert got32.dtype == torch.float32
    assert ((got32.double() - d8).abs() / d8).max() < 1e-3
    d12 = ref(x12, y12)
    assert ((BW.dist(x12, y12) - d12).abs() / d12).max() < 1e-6


def test_finite_gradients_at_identity_and_ties(gen):
    eye = torch.eye(4, dtype=F64).expand(2, 4, 4).clone()
    tied = torch.diag(torch.tensor([2.0, 2.0, 0.5, 0.5], dtype=F64)).expand(2, 4, 4).clone()
    y = _spd(gen, 2)
    u = 0.2 * _symm(gen, 2)
    for base in (eye, tied):
        fns = (lambda a: BW.dist(a, y).sum(), lambda a: BW.dist(y, a).sum(),
               lambda a: BW.log(a, y).square().sum(), lambda a: BW.exp(a, u).square().sum(),
               lambda a, b=base: BW.dist(a, b).sum(), lambda a, b=base: BW.log(b, a).sum())
        for fn in fns:
            xg = base.clone().requires_grad_(True)
            (g,) = torch.autograd.grad(fn(xg), xg)
            assert torch.isfinite(g).all()
    # gradient at a tie is the limit of gradients near it (not just finite)
    xg = tied.clone().requires_grad_(True)
    (g0,) = torch.autograd.grad(BW.dist(xg, y).sum(), xg)
    near = tied + torch.diag(torch.tensor([1e-7, -1e-7, 1e-7, -1e-7], dtype=F64))
    xn = near.clone().requires_grad_(True)
    (g1,) = torch.autograd.grad(BW.dist(xn, y).sum(), xn)
    assert torch.allclose(g0, g1, atol=1e-5)
    assert torch.autograd.gradcheck(lambda a: BW.log(sym(a), y[0]), (tied[0].clone().requires_grad_(),))


# -- transport ------------------------------------------------------------------------------------
def test_transport_isometry_and_velocity(gen):
    x, y = _spd(gen, 4), _spd(gen, 4)
    assert float(BW.dist(x, y).min()) > 0.5  # genuinely far pairs
    v, w = _symm(gen, 4), _symm(gen, 4)
    tv, tw = BW.transport(x, y, v), BW.transport(x, y, w)
    rel = (BW.inner(y, tv, tw) - BW.inner(x, v, w)).abs() / (BW.norm(x, v) * BW.norm(x, w))
    assert rel.max() < 1e-6  # stated tolerance (default steps)
    fine = BuresWasserstein(transport_steps=16)
    tv16 = fine.transport(x, y, v)
    assert ((fine.norm(y, tv16) - BW.norm(x, v)).abs() / BW.norm(x, v)).max() < 1e-9
    # the geodesic velocity is transported to minus the velocity seen from y
    lg = BW.log(x, y)
    assert torch.allclose(BW.transport(x, y, lg), -BW.log(y, x), atol=1e-10)
    # linear in v; identity when y = x
    assert torch.allclose(BW.transport(x, y, 2 * v - w), 2 * tv - tw, atol=1e-12)
    assert torch.allclose(BW.transport(x, x, v), v, atol=1e-10)


def test_transport_differentiable_path_matches(gen):
    x, y, v = _spd(gen, 2), _spd(gen, 2), _symm(gen, 2)
    plain = BW.transport(x, y, v)
    xg = x.clone().requires_grad_(True)
    out = BW.transport(xg, y, v)
    assert torch.allclose(out.detach(), plain, atol=1e-12)
    (g,) = torch.autograd.grad(out.square().sum(), xg)
    assert torch.isfinite(g).all()


# -- Riemannian Hessian ---------------------------------------------------------------------------
def _cost(x, a):
    return (a * x).sum((-2, -1)) + 0.25 * (x @ x).diagonal(dim1=-2, dim2=-1).sum(-1) ** 2 \
        + torch.logdet(x)


_GBW4 = GeneralizedBuresWasserstein(torch.diag(torch.tensor([0.5, 1.0, 2.0, 1.5])))


@pytest.mark.parametrize("metric", [BW, _GBW4, BuresWasserstein(theta=0.5)], ids=["bw", "gbw", "bw-theta"])
def test_ehess_to_rhess(gen, metric):
    x = _spd(gen, 2)
    a = _symm(gen, 2)
    u, v = 0.3 * _symm(gen, 2), 0.3 * _symm(gen, 2)

    def egrad(p):
        pg = p.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            (g,) = torch.autograd.grad(_cost(pg, a).sum(), pg, create_graph=True)
        return pg, g

    def hvp(w):
        pg, g = egrad(x)
        (h,) = torch.autograd.grad(g, pg, grad_outputs=w)
        return metric.ehess_to_rhess(x, g.detach(), h, w)

    hu, hv = hvp(u), hvp(v)
    # self-adjoint for the metric
    assert torch.allclose(metric.inner(x, hu, v), metric.inner(x, u, hv), rtol=1e-9, atol=1e-9)
    # second derivative of f along the geodesic t ↦ exp_x(t u)
    h = 1e-4
    f = [_cost(metric.exp(x, t * u), a) for t in (-h, 0.0, h)]
    second = (f[0] - 2 * f[1] + f[2]) / h**2
    assert torch.allclose(metric.inner(x, hu, u), second, rtol=1e-5, atol=1e-5)
    # and the Hessian is the derivative of the Riemannian gradient along the geodesic,
    # compared after parallel transport back to x
    pg, g = egrad(x)
    rg0 = metric.egrad_to_rgrad(x, g.detach())
    xt = metric.exp(x, h * u)
    _, gt = egrad(xt)
    rgt = metric.transport(xt, x, metric.egrad_to_rgrad(xt, gt.detach()))
    fd = (rgt - rg0) / h
    assert torch.allclose(fd, hu, atol=1e-3 * float(hu.abs().max()))


# -- generalized BW -------------------------------------------------------------------------------
def _mref():
    q = torch.linalg.qr(torch.arange(16, dtype=F64).reshape(4, 4).sin())[0]
    return q @ torch.diag(torch.tensor([0.5, 1.0, 2.0, 3.0], dtype=F64)) @ q.T


def test_gbw_formula_and_identity_parameter(gen):
    x, y = _spd(gen, 3), _spd(gen, 3)
    m = _mref()
    g = GeneralizedBuresWasserstein(m)
    mi = torch.linalg.inv(m)
    # Han et al. (2021): tr(M⁻¹x) + tr(M⁻¹y) − 2 tr (x^{1/2} M⁻¹ y M⁻¹ x^{1/2})^{1/2}
    wx, vx = torch.linalg.eigh(x)
    xs = vx @ torch.diag_embed(wx.sqrt()) @ vx.mT
    inner = xs @ mi @ y @ mi @ xs
    ev = torch.linalg.eigvalsh(sym(inner))
    d2 = (mi @ x).diagonal(dim1=-2, dim2=-1).sum(-1) + (mi @ y).diagonal(dim1=-2, dim2=-1).sum(-1) \
        - 2 * ev.sqrt().sum(-1)
    assert torch.allclose(g.dist(x, y), d2.sqrt(), atol=1e-10, rtol=0)
    # inner: ½ tr(L v) with x L M + M L x = u
    u, v = _symm(gen, 3), _symm(gen, 3)
    lg = g.log(x, y)
    assert torch.allclose(g.exp(x, lg), y, atol=1e-10)
    r = g.egrad_to_rgrad(x, v)
    mv = m @ v @ x
    assert torch.allclose(r, 2 * (mv + mv.mT), atol=1e-12)
    assert torch.allclose(g.inner(x, r, u), (v * u).sum((-2, -1)), atol=1e-10)  # gradient identity
    ident = GeneralizedBuresWasserstein(torch.eye(4))
    assert torch.allclose(ident.dist(x, y), BW.dist(x, y), atol=1e-12)
    assert torch.allclose(ident.transport(x, y, u), BW.transport(x, y, u), atol=1e-12)


def test_gbw_learnable_parameter_gradcheck(gen):
    x, y = _spd(gen, 2, n=3), _spd(gen, 2, n=3)
    m = _spd(gen, n=3, floor=0.5).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda mm: gbw_dist(x, y, sym(mm)), (m,))
    (gm,) = torch.autograd.grad(gbw_dist(x, x, m).sum(), m)
    assert torch.isfinite(gm).all()


def test_metric_objects_and_errors():
    m = torch.diag(torch.tensor([1.0, 2.0]))
    g1, g2 = GeneralizedBuresWasserstein(m), GeneralizedBuresWasserstein(m.clone())
    assert g1 == g2 and hash(g1) == hash(g2)
    assert g1 != GeneralizedBuresWasserstein(2 * m)
    assert pickle.loads(pickle.dumps(g1)) == g1
    assert not any(isinstance(v, torch.Tensor) for v in vars(g1).values())
    assert pickle.loads(pickle.dumps(BW)) == BW
    assert BuresWasserstein(theta=0.5) != BW
    assert SPD(3, metric="bures_wasserstein").metric == BuresWasserstein()
    with pytest.raises(ValueError, match="positive definite"):
        GeneralizedBuresWasserstein(-m)
    with pytest.raises(ValueError, match="symmetric"):
        GeneralizedBuresWasserstein(torch.tensor([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="shape"):
        GeneralizedBuresWasserstein(torch.ones(2, 3))
    with pytest.raises(ValueError, match="2×2"):
        SPD(3, metric=g1)
    with pytest.raises(ValueError, match="transport_steps"):
        BuresWasserstein(transport_steps=0)


def test_batched_bw_dist_broadcasts(gen):
    x = _spd(gen, 3)
    y = _spd(gen)
    assert torch.allclose(bw_dist(x, y), torch.stack([bw_dist(xi, y) for xi in x]), atol=1e-12)


def test_transport_broadcasts_one_pair_over_many_vectors(gen):
    x, y, v = _spd(gen), _spd(gen), _symm(gen, 5)
    many = BW.transport(x, y, v)
    assert many.shape == (5, 4, 4)
    expanded = BW.transport(x.expand(5, 4, 4), y.expand(5, 4, 4), v)
    assert torch.allclose(many, expanded, atol=1e-12)
    assert torch.allclose(BW.transport(x, y, v[2]), many[2], atol=1e-12)
