"""Poincaré ball: Möbius gyrogroup axioms, gyro operations, Hessian, learnable curvature, geoopt."""

from __future__ import annotations

import pickle

import pytest
import torch
from riemlearn.manifolds import mobius as M
from riemlearn.manifolds import poincare as P
from riemlearn.manifolds.poincare import PoincareBall

D = torch.float64
CURVATURES = [1.0, 0.5, 2.0]


def _pts(c, k, gen, n=4, std=0.6, batch=(6,)):
    m = PoincareBall(c, n=n)
    return [m.wrapped_normal(m.origin(dtype=D), std, *batch, generator=gen) for _ in range(k)]


@pytest.mark.parametrize("c", CURVATURES)
def test_gyrogroup_axioms(c, gen):
    a, b, v = _pts(c, 3, gen)
    e = torch.zeros_like(a)
    add = lambda x, y: M.gyro_add(x, y, c)  # noqa: E731
    torch.testing.assert_close(add(e, a), a, rtol=0, atol=1e-15)  # left identity
    torch.testing.assert_close(add(M.gyro_inv(a), a), e, rtol=0, atol=1e-14)  # left inverse
    # gyroassociativity a ⊕ (b ⊕ v) = (a ⊕ b) ⊕ gyr[a, b] v
    torch.testing.assert_close(add(a, add(b, v)), add(add(a, b), M.gyration(a, b, v, c)), rtol=0, atol=1e-13)
    # left cancellation ⊖a ⊕ (a ⊕ b) = b
    torch.testing.assert_close(add(M.gyro_inv(a), add(a, b)), b, rtol=0, atol=1e-13)
    # gyration: closed form equals its definition ⊖(a⊕b) ⊕ (a ⊕ (b ⊕ v))
    torch.testing.assert_close(M.gyration(a, b, v, c), add(-add(a, b), add(a, add(b, v))), rtol=0, atol=1e-13)
    # gyration is a linear isometry and a gyro-automorphism
    g = M.gyration(a, b, v, c)
    torch.testing.assert_close(g.norm(dim=-1), v.norm(dim=-1), rtol=1e-13, atol=0)
    torch.testing.assert_close(M.gyration(a, b, 2.5 * v - a, c), 2.5 * g - M.gyration(a, b, a, c))
    gb = M.gyration(a, b, b, c)
    torch.testing.assert_close(M.gyration(a, b, add(v, b), c), add(g, gb), rtol=0, atol=1e-13)
    # loop property gyr[a ⊕ b, b] = gyr[a, b]
    torch.testing.assert_close(M.gyration(add(a, b), b, v, c), g, rtol=0, atol=1e-13)


@pytest.mark.parametrize("c", CURVATURES)
def test_scalar_and_matvec(c, gen):
    (x,) = _pts(c, 1, gen)
    torch.testing.assert_close(M.gyro_scalar(2.0, x, c), M.gyro_add(x, x, c))
    torch.testing.assert_close(M.gyro_scalar(3.0, x, c), M.gyro_add(x, M.gyro_add(x, x, c), c))
    torch.testing.assert_close(M.gyro_scalar(-1.0, x, c), -x)
    # scalar associativity and distributivity r1⊙x ⊕ r2⊙x = (r1 + r2)⊙x
    torch.testing.assert_close(M.gyro_scalar(0.3, M.gyro_scalar(2.0, x, c), c), M.gyro_scalar(0.6, x, c))
    torch.testing.assert_close(
        M.gyro_add(M.gyro_scalar(0.4, x, c), M.gyro_scalar(1.3, x, c), c), M.gyro_scalar(1.7, x, c)
    )
    # d(0, r ⊙ x) = |r| d(0, x)
    torch.testing.assert_close(P.dist0(M.gyro_scalar(1.7, x, c), c), 1.7 * P.dist0(x, c))
    # matvec: identity, scalar matrix = gyro_scalar, (AB) ⊗ x = A ⊗ (B ⊗ x), exp/log form
    eye = torch.eye(4, dtype=D)
    torch.testing.assert_close(M.mobius_matvec(eye, x, c), x)
    torch.testing.assert_close(M.mobius_matvec(1.7 * eye, x, c), M.gyro_scalar(1.7, x, c))
    A = torch.randn(3, 4, generator=gen, dtype=D)
    B = torch.randn(4, 4, generator=gen, dtype=D)
    torch.testing.assert_close(M.mobius_matvec(A @ B, x, c), M.mobius_matvec(A, M.mobius_matvec(B, x, c), c))
    ref = M.expmap0(M.logmap0(x, c) @ A.T, c)
    torch.testing.assert_close(M.mobius_matvec(A, x, c), ref)
    assert M.mobius_matvec(torch.zeros(3, 4, dtype=D), x, c).abs().max() == 0


@pytest.mark.parametrize("c", [1.0, 2.0])
def test_midpoint_and_gyroplane(c, gen):
    x = _pts(c, 1, gen, batch=(2, 5))[0]  # (2, 5, 4): two sets of 5 points
    w = torch.rand(2, 5, generator=gen, dtype=D) + 0.1
    m = M.gyro_midpoint(x, c, w)
    assert m.shape == (2, 4)
    # Einstein midpoint in the Klein model is the same point
    from riemlearn.manifolds import hyperbolic_conversions as C

    k = C.ball_to_klein(x, c)
    gam = 1 / torch.sqrt(1 - c * (k * k).sum(-1, keepdim=True))
    km = (w.unsqueeze(-1) * gam * k).sum(-2) / (w.unsqueeze(-1) * gam).sum(-2)
    torch.testing.assert_close(C.klein_to_ball(km, c), m)
    # a pair's unweighted midpoint is the geodesic midpoint
    pm = M.gyro_midpoint(x[0, :2], c)
    torch.testing.assert_close(pm, PoincareBall(c).geodesic(x[0, 0], x[0, 1], 0.5))
    # gyroplane through p with normal a: points on it are at distance 0; |d| = dist to the
    # plane's closest point (checked by a dense sample of the plane for the 2-D ball)
    p, a = x[0, 0, :2].clone(), torch.tensor([0.6, -0.8], dtype=D)
    t = torch.linspace(-6, 6, 20001, dtype=D).unsqueeze(-1)
    tang = torch.tensor([0.8, 0.6], dtype=D)
    plane = M.gyro_add(p, M.expmap0(t * tang / c**0.5, c), c)
    assert M.dist_to_gyroplane(plane[::1000], p, a, c).abs().max() < 1e-10
    q = torch.tensor([0.3, -0.2], dtype=D) / c**0.5
    brute = P.dist(q, plane, c).min()
    assert abs(float(M.dist_to_gyroplane(q, p, a, c, signed=False)) - float(brute)) < 1e-6
    assert float(M.dist_to_gyroplane(q, p, a, c)) * float(M.dist_to_gyroplane(q, p, -a, c)) <= 0


def _fd_quadratic(m, x, f, w, h=1e-4):
    return (f(m.exp(x, h * w)) - 2 * f(x) + f(m.exp(x, -h * w))) / h**2


@pytest.mark.parametrize("c", [1.0, 2.0])
def test_ehess_finite_differences(c, gen):
    m = PoincareBall(c, n=3)
    x = m.random_point(generator=gen, dtype=D)
    u, v = m.random_tangent(x, gen), m.random_tangent(x, gen)
    a = torch.randn(3, generator=gen, dtype=D)
    f = lambda z: (a * z).sum() + 0.25 * (z * z).sum() ** 2 + (z**3).sum()  # noqa: E731
    eg = a + (x * x).sum() * x + 3 * x**2
    eh = lambda w: 2 * (x * w).sum() * x + (x * x).sum() * w + 6 * x * w  # noqa: E731
    H = lambda w: m.ehess_to_rhess(x, eg, eh(w), w)  # noqa: E731
    # ⟨Hess f[u], u⟩ = d²/dt² f(exp_x(tu)); polarization gives the off-diagonal terms
    q = lambda w: _fd_quadratic(m, x, f, w)  # noqa: E731
    scale = max(1.0, abs(float(q(u))))
    assert abs(float(m.inner(x, H(u), u) - q(u))) < 1e-5 * scale
    assert abs(float(m.inner(x, H(u), v) - (q(u + v) - q(u - v)) / 4)) < 1e-5 * scale
    assert abs(float(m.inner(x, H(u), v) - m.inner(x, H(v), u))) < 1e-12 * scale
    # gradient: d/dt f(exp(tu)) = ⟨grad, u⟩
    g = m.egrad_to_rgrad(x, eg)
    h = 1e-6
    assert abs(float((f(m.exp(x, h * u)) - f(m.exp(x, -h * u))) / (2 * h) - m.inner(x, g, u))) < 1e-6


def test_learnable_curvature_tensor(gen):
    """The functional core takes c as a tensor (shape () or (*batch,)) and differentiates it."""
    m = PoincareBall(0.8, n=3)
    x = m.random_point(4, generator=gen, dtype=D)
    y = m.random_point(4, generator=gen, dtype=D)
    c = torch.tensor(0.8, dtype=D, requires_grad=True)
    torch.testing.assert_close(P.dist(x, y, c), m.dist(x, y))
    torch.testing.assert_close(M.gyro_add(x, y, c), m.gyro_add(x, y))
    assert torch.autograd.gradcheck(lambda cc: P.dist(x, y, cc), (c,))
    assert torch.autograd.gradcheck(lambda cc: M.gyro_add(x, y, cc), (c,))
    assert torch.autograd.gradcheck(lambda cc: P.log(x, y, cc), (c,))
    assert torch.autograd.gradcheck(lambda cc: P.exp(x, 0.3 * y, cc), (c,))
    # per-point curvatures (*batch,)
    cb = torch.tensor([0.8, 0.5, 1.0, 0.3], dtype=D)
    out = P.dist(x, y, cb)
    for i in range(4):
        torch.testing.assert_close(out[i], PoincareBall(float(cb[i])).dist(x[i], y[i]))


def test_gradients_finite_at_coincident_points(gen):
    m = PoincareBall(1.0, n=3)
    x = m.random_point(generator=gen, dtype=D).requires_grad_(True)
    for fn in (
        lambda z: m.dist(z, z.detach()),
        lambda z: m.log(z.detach(), z).sum(),
        lambda z: m.exp(z.detach(), z - z.detach()).sum(),
        lambda z: m.logmap0(z * 0).sum(),
    ):
        (g,) = torch.autograd.grad(fn(x), x)
        assert torch.isfinite(g).all()


def test_check_point_message_and_wrapped_normal(gen):
    m = PoincareBall(2.0, n=2)
    bad = torch.tensor([[0.0, 0.1], [0.0, 1.0414 / 2**0.5]], dtype=D)
    with pytest.raises(ValueError, match=r"off PoincareBall.*√c‖x‖ − 1 = 0.0414 at batch index \(1,\)"):
        m.check_point(bad)
    with pytest.raises(ValueError, match="off"):  # on the boundary is not in the open ball
        m.check_point(torch.tensor([2**-0.5, 0.0], dtype=D))
    assert not bool(m.belongs(torch.tensor([2**-0.5, 0.0], dtype=D)))
    mean = m.random_point(generator=gen, dtype=D)
    s = m.wrapped_normal(mean, 0.3, 4000, generator=gen)
    assert s.shape == (4000, 2) and bool(m.belongs(s).all())
    # wrapped normal: log at the mean, rescaled to the origin frame, is N(0, σ²I) (Riemannian)
    v = m.log(mean.expand_as(s), s) * P.conformal_factor(mean, 2.0)
    cov = v.T @ v / len(v)
    torch.testing.assert_close(cov, 0.09 * torch.eye(2, dtype=D), atol=0.01, rtol=0)


def test_value_semantics():
    m = PoincareBall(0.5, n=3)
    assert m == PoincareBall(0.5, n=3) and m != PoincareBall(0.5, n=4) and m != PoincareBall(1.0, n=3)
    assert hash(m) == hash(pickle.loads(pickle.dumps(m)))
    assert "c=0.5" in repr(m)
    with pytest.raises(ValueError, match="c must be"):
        PoincareBall(-1.0)


@pytest.mark.parametrize("c", [1.0, 0.5, 2.0])
def test_against_geoopt(c, gen):
    geoopt = pytest.importorskip("geoopt")
    gb = geoopt.PoincareBall(c=torch.tensor(c, dtype=D))  # float64 curvature (its default is float32)
    m = PoincareBall(c, n=4)
    x, y = m.random_point(8, generator=gen, dtype=D), m.random_point(8, generator=gen, dtype=D)
    u = m.random_tangent(x, gen)
    # interior only: geoopt projects every result to √c‖y‖ ≤ 1 − 1e-5 (float64), which moves
    # points farther out (ours agree with an mpmath evaluation there, not with geoopt)
    u = 2.0 * u / m.norm(x, u).unsqueeze(-1)
    A = torch.randn(3, 4, generator=gen, dtype=D)
    pairs = [
        (gb.dist(x, y), m.dist(x, y)),
        (gb.expmap(x, u), m.exp(x, u)),
        (gb.logmap(x, y), m.log(x, y)),
        (gb.mobius_add(x, y), m.gyro_add(x, y)),
        (gb.transp(x, y, u), m.transport(x, y, u)),
        (gb.expmap0(u), m.expmap0(u)),
        (gb.logmap0(y), m.logmap0(y)),
        (gb.mobius_scalar_mul(torch.tensor(-0.7, dtype=D), x), m.gyro_scalar(-0.7, x)),
        (gb.mobius_matvec(A, x), m.mobius_matvec(A, x)),
        (gb.egrad2rgrad(x, u.clone()), m.egrad_to_rgrad(x, u)),
        (gb.inner(x, u, y, keepdim=True).squeeze(-1), m.inner(x, u, y)),  # keepdim=False broadcasts wrongly
        (gb.geodesic(torch.tensor(0.3, dtype=D), x, y), m.geodesic(x, y, 0.3)),
    ]
    for i, (theirs, ours) in enumerate(pairs):
        assert float((theirs - ours).abs().max()) <= 1e-10, (i, float((theirs - ours).abs().max()))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("c", [1.0, 0.3])
@pytest.mark.parametrize("where", ["interior", "boundary"])
def test_exp_transport_matches_exp_then_transport(dtype, c, where, gen):
    """The optimizers' fused step equals ``exp`` then ``transport`` (to rounding), for steps from
    0 (u = 0 rows) through tiny (tanh(t)/t without a series) to large, inside and near the
    boundary; in the interior the transported vector keeps its Riemannian norm."""
    n = 6
    d = torch.nn.functional.normalize(torch.randn(40, n, generator=gen, dtype=torch.float64), dim=-1)
    if where == "interior":
        r = 0.6 * torch.rand(40, 1, generator=gen, dtype=torch.float64)
    else:
        r = 1 - torch.logspace(-2, -3 if dtype == torch.float32 else -5, 40, dtype=torch.float64)[:, None]
    x = (d * r / c**0.5).to(dtype)
    # Riemannian step lengths from 1e-12 to 10 (u is scaled by A(x)/2 = 1/λ_x)
    scales = (
        torch.logspace(-12, 1, 40, dtype=torch.float64)[:, None]
        * (1 - c * (x.double() ** 2).sum(-1, keepdim=True))
        / 2
    )
    u = (
        torch.nn.functional.normalize(torch.randn(40, n, generator=gen, dtype=torch.float64), dim=-1) * scales
    ).to(dtype)
    u[0] = 0
    m = torch.randn(40, n, generator=gen, dtype=torch.float64).to(dtype)
    y, mt = P.exp_transport(x, u, m, c)
    y_ref = P.exp(x, u, c)
    mt_ref = P.transport(x, y_ref, m, c)
    e = torch.finfo(dtype).eps
    torch.testing.assert_close(y, y_ref, rtol=0, atol=50 * e / c**0.5)
    ball = PoincareBall(c)
    assert bool(ball.belongs(y).all())
    torch.testing.assert_close(y[0], x[0], rtol=4 * e, atol=0)
    if where == "interior":
        torch.testing.assert_close(mt, mt_ref, rtol=1e3 * e, atol=1e3 * e)
        n0 = ball.norm(x, m)
        tol = 1e3 * e if dtype == torch.float32 else 1e-12
        assert float((ball.norm(y, mt) / n0 - 1).abs().max()) < tol
        assert float((ball.norm(y_ref, mt_ref) / n0 - 1).abs().max()) < tol
    # near the boundary the gyration cancels and the transported norm is ill-conditioned for
    # the fused step and exp + transport alike (~1e-6 float64 at A(x) = 1e-5, up to 20 % in
    # float32 at A(x) = 1e-3); only the points are compared there


def test_exp_transport_empty_batch():
    x = torch.empty(0, 3, dtype=torch.float64)
    y, mt = P.exp_transport(x, x, x, 1.0, scale=-0.1)
    assert y.shape == (0, 3) and mt.shape == (0, 3)
