"""Lorentz model: model conversions (isometries), gyro structure, Hessian, float64 upcast, geoopt."""

from __future__ import annotations

import pickle

import pytest
import torch
from riemlearn.manifolds import hyperbolic_conversions as C
from riemlearn.manifolds import lorentz as L
from riemlearn.manifolds.lorentz import Lorentz
from riemlearn.manifolds.poincare import PoincareBall

D = torch.float64


@pytest.mark.parametrize("c", [1.0, 0.7, 2.5])
def test_conversions_are_isometries(c, gen):
    m, b = Lorentz(c, n=3), PoincareBall(c, n=3)
    x, y = m.random_point(10, generator=gen, dtype=D), m.random_point(10, generator=gen, dtype=D)
    d = m.dist(x, y)
    p, q = C.lorentz_to_ball(x, c), C.lorentz_to_ball(y, c)
    assert bool(b.belongs(p).all())
    torch.testing.assert_close(b.dist(p, q), d)
    torch.testing.assert_close(C.ball_to_lorentz(p, c), x)
    k, kk = C.lorentz_to_klein(x, c), C.lorentz_to_klein(y, c)
    torch.testing.assert_close(C.klein_to_lorentz(k, c), x)
    torch.testing.assert_close(C.ball_to_klein(p, c), k)
    torch.testing.assert_close(C.klein_to_ball(k, c), p)
    # Klein distance: arcosh((1 − c⟨k,k'⟩)/√((1 − c‖k‖²)(1 − c‖k'‖²)))/√c
    ak, akk = 1 - c * (k * k).sum(-1), 1 - c * (kk * kk).sum(-1)
    kd = torch.acosh((1 - c * (k * kk).sum(-1)) / torch.sqrt(ak * akk))
    torch.testing.assert_close(kd / c**0.5, d)
    h, hy = C.lorentz_to_halfspace(x, c), C.lorentz_to_halfspace(y, c)
    assert bool((h[..., -1] > 0).all())
    torch.testing.assert_close(C.halfspace_to_lorentz(h, c), x)
    torch.testing.assert_close(C.halfspace_dist(h, hy, c), d)
    torch.testing.assert_close(C.ball_to_halfspace(p, c), h)
    torch.testing.assert_close(C.halfspace_to_ball(h, c), p)
    # the exp maps correspond: pushforward of exp_0 by the isometry
    v = torch.randn(10, 3, generator=gen, dtype=D)
    lv = m.expmap0(torch.cat((torch.zeros(10, 1, dtype=D), 2 * v), -1))
    torch.testing.assert_close(C.lorentz_to_ball(lv, c), b.expmap0(v))


@pytest.mark.parametrize("c", [1.0, 0.7])
def test_lorentz_gyro_structure(c, gen):
    m = Lorentz(c, n=3)
    a, b_, v = (m.random_point(6, generator=gen, dtype=D) for _ in range(3))
    o = m.origin(6, dtype=D)
    torch.testing.assert_close(m.gyro_add(o, a), a)
    torch.testing.assert_close(m.gyro_add(m.gyro_inv(a), a), o)
    torch.testing.assert_close(m.gyro_add(m.gyro_inv(a), m.gyro_add(a, b_)), b_)
    # gyroassociativity through the ball's gyration (carried over by the isometry)
    from riemlearn.manifolds import mobius

    pa, pb, pv = (C.lorentz_to_ball(t, c) for t in (a, b_, v))
    gyr = C.ball_to_lorentz(mobius.gyration(pa, pb, pv, c), c)
    torch.testing.assert_close(m.gyro_add(a, m.gyro_add(b_, v)), m.gyro_add(m.gyro_add(a, b_), gyr))
    # left gyrotranslation is an isometry: d(a ⊕ x, a ⊕ y) = d(x, y)
    torch.testing.assert_close(m.dist(m.gyro_add(a, b_), m.gyro_add(a, v)), m.dist(b_, v))
    torch.testing.assert_close(m.gyro_scalar(2.0, a), m.gyro_add(a, a))
    torch.testing.assert_close(m.dist(o, m.gyro_scalar(0.4, a)), 0.4 * m.dist(o, a))


@pytest.mark.parametrize("c", [1.0, 0.7])
def test_ehess_finite_differences(c, gen):
    m = Lorentz(c, n=3)
    x = m.random_point(generator=gen, dtype=D)
    u, v = m.random_tangent(x, gen), m.random_tangent(x, gen)
    a = torch.randn(4, generator=gen, dtype=D)
    f = lambda z: (a * z).sum() + 0.25 * (z * z).sum() ** 2 + (z**3).sum()  # noqa: E731
    eg = a + (x * x).sum() * x + 3 * x**2
    eh = lambda w: 2 * (x * w).sum() * x + (x * x).sum() * w + 6 * x * w  # noqa: E731
    H = lambda w: m.ehess_to_rhess(x, eg, eh(w), w)  # noqa: E731
    h = 1e-4
    q = lambda w: (f(m.exp(x, h * w)) - 2 * f(x) + f(m.exp(x, -h * w))) / h**2  # noqa: E731
    scale = max(1.0, abs(float(q(u))))
    assert bool(m.is_tangent(x, H(u)))
    assert abs(float(m.inner(x, H(u), u) - q(u))) < 1e-5 * scale
    assert abs(float(m.inner(x, H(u), v) - (q(u + v) - q(u - v)) / 4)) < 1e-5 * scale
    g = m.egrad_to_rgrad(x, eg)
    hh = 1e-6
    fd = (f(m.exp(x, hh * u)) - f(m.exp(x, -hh * u))) / (2 * hh)
    assert abs(float(fd - m.inner(x, g, u))) < 1e-6 * max(1.0, abs(float(fd)))


def test_upcast_float32_far_from_origin(gen):
    """float32 inputs at distance ~7 from the origin: the float64 path keeps dist accurate."""
    m64, m32, raw = Lorentz(1.0, n=2), Lorentz(1.0, n=2), Lorentz(1.0, n=2, upcast=False)
    dirs = torch.nn.functional.normalize(torch.randn(50, 2, generator=gen, dtype=D), dim=-1)
    x = m64.expmap0(torch.cat((torch.zeros(50, 1, dtype=D), 7.0 * dirs), -1))
    v0 = torch.cat((torch.zeros(50, 1, dtype=D), torch.randn(50, 2, generator=gen, dtype=D)), -1)
    y = m64.exp(x, m64.transport(m64.origin(50, dtype=D), x, 0.5 * v0))
    x32, y32 = x.float(), y.float()
    ref = m64.dist(x32.double(), y32.double())  # exact on the stored float32 coordinates
    assert m32.dist(x32, y32).dtype == torch.float32
    err_up = float(((m32.dist(x32, y32).double() - ref) / ref).abs().max())
    err_raw = float(((raw.dist(x32, y32).double() - ref) / ref).abs().max())
    assert err_up < 1e-6 and err_raw < 1e-3  # cancellation-free formula even without upcast
    # the naive Minkowski form loses everything at this radius in float32
    naive = torch.acosh((-L.minkowski(x32, y32)).clamp_min(1)).double()
    assert float(((naive - ref) / ref).abs().max()) > 10 * err_raw, float(((naive - ref) / ref).abs().max())


def test_check_point_and_value_semantics(gen):
    m = Lorentz(0.5, n=2)
    x = m.random_point(3, generator=gen, dtype=D)
    m.check_point(x)
    with pytest.raises(ValueError, match="off Lorentz.*relative residual"):
        m.check_point(x * 1.01)
    lower = x.clone()
    lower[..., 0] *= -1
    with pytest.raises(ValueError, match="off"):
        m.check_point(lower)
    assert not bool(m.belongs(lower).any())
    assert m == Lorentz(0.5, n=2) and m != Lorentz(0.5, n=3)
    assert hash(pickle.loads(pickle.dumps(m))) == hash(m)
    w = m.wrapped_normal(x[0], 0.4, 3000, generator=gen)
    assert bool(m.belongs(w).all())
    mu = x[0].expand_as(w)
    v = m.transport(mu, m.origin(dtype=D).expand_as(w), m.log(mu, w))[:, 1:]
    torch.testing.assert_close(v.T @ v / len(v), 0.16 * torch.eye(2, dtype=D), atol=0.015, rtol=0)


@pytest.mark.parametrize("c", [1.0, 0.7])
def test_against_geoopt(c, gen):
    geoopt = pytest.importorskip("geoopt")
    gl = geoopt.Lorentz(k=torch.tensor(1 / c, dtype=D))  # geoopt: ⟨x,x⟩ = −k, curvature −1/k
    m = Lorentz(c, n=3)
    x, y = m.random_point(8, generator=gen, dtype=D), m.random_point(8, generator=gen, dtype=D)
    u = m.random_tangent(x, gen)
    u = 2.0 * u / m.norm(x, u).unsqueeze(-1)
    pairs = [
        (gl.dist(x, y), m.dist(x, y)),
        (gl.expmap(x, u), m.exp(x, u)),
        (gl.logmap(x, y), m.log(x, y)),
        (gl.transp(x, y, u), m.transport(x, y, u)),
        (gl.egrad2rgrad(x, u.clone()), m.egrad_to_rgrad(x, u)),  # geoopt mutates its argument
        (gl.inner(x, u, u), m.inner(x, u, u)),
        (gl.expmap0(u * 0 + torch.cat((torch.zeros(8, 1, dtype=D), u[:, 1:]), -1)),
         m.expmap0(torch.cat((torch.zeros(8, 1, dtype=D), u[:, 1:]), -1))),
        (gl.logmap0(y), m.logmap0(y)),
    ]
    for i, (theirs, ours) in enumerate(pairs):
        err = float((theirs - ours).abs().max()) / max(1.0, float(ours.abs().max()))
        assert err <= 1e-10, (i, err)


def test_gyro_extras_and_tensor_curvature(gen):
    from riemlearn.manifolds import mobius

    c = 0.7
    m = Lorentz(c, n=3)
    a, b_, v = (m.random_point(4, generator=gen, dtype=D) for _ in range(3))
    pa, pb, pv = (C.lorentz_to_ball(t, c) for t in (a, b_, v))
    g = L.gyration(a, b_, v, c)
    torch.testing.assert_close(C.lorentz_to_ball(g, c), mobius.gyration(pa, pb, pv, c))
    torch.testing.assert_close(m.dist(m.origin(4, dtype=D), g), m.dist(m.origin(4, dtype=D), v))  # isometry
    mat = torch.randn(3, 3, generator=gen, dtype=D)
    mv = L.mobius_matvec(mat, a, c)
    torch.testing.assert_close(C.lorentz_to_ball(mv, c), mobius.mobius_matvec(mat, pa, c))
    mid = L.gyro_midpoint(torch.stack((a, b_), -2), c)
    torch.testing.assert_close(m.dist(mid, a), m.dist(mid, b_))
    torch.testing.assert_close(m.dist(mid, a), 0.5 * m.dist(a, b_))
    normal = torch.randn(4, 3, generator=gen, dtype=D)
    dp = L.dist_to_gyroplane(v, a, normal, c)
    torch.testing.assert_close(dp, mobius.dist_to_gyroplane(pv, pa, normal, c))
    # the functional core takes a learnable tensor curvature
    ct = torch.tensor(c, dtype=D, requires_grad=True)
    torch.testing.assert_close(L.dist(a, b_, ct), m.dist(a, b_))
    assert torch.autograd.gradcheck(lambda cc: L.dist(a, L.project_point(b_, cc), cc), (ct,))
    assert torch.autograd.gradcheck(lambda cc: L.exp(a, L.project_tangent(a, v, cc), cc), (ct,))
