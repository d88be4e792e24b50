"""Near-boundary numerics of the hyperbolic models against an mpmath (80-digit) reference.

References are computed from the *stored* float coordinates, so they measure the error of our
arithmetic, not the rounding of the inputs. ``1 − c‖x‖²`` is evaluated (nearly) exactly
(``mobius.one_minus_cnorm2``), so distances are within 1e-14 relative up to distance 24 and
~1e-9 at 35; with the textbook sum of squares the error would be ~n·ε/A absolute (2.6e-7
relative at distance 26 from the origin, 1e-3 at 35).
"""

from __future__ import annotations

import math

import mpmath
import pytest
import torch
from riemlearn.manifolds import lorentz as L
from riemlearn.manifolds import mobius as M
from riemlearn.manifolds import poincare as P
from riemlearn.manifolds.poincare import PoincareBall

D = torch.float64
mpmath.mp.dps = 80
EPS64 = torch.finfo(D).eps


def _mp_ball_dist(x, y, c=1.0):
    X = [mpmath.mpf(float(t)) for t in x]
    Y = [mpmath.mpf(float(t)) for t in y]
    C = mpmath.mpf(c)
    nx, ny = sum(t * t for t in X), sum(t * t for t in Y)
    dxy = sum((a - b) ** 2 for a, b in zip(X, Y, strict=True))
    return float(mpmath.acosh(1 + 2 * C * dxy / ((1 - C * nx) * (1 - C * ny))) / mpmath.sqrt(C))


def _dirs(k, n, gen):
    return torch.nn.functional.normalize(torch.randn(k, n, generator=gen, dtype=D), dim=-1)


def test_poincare_capacity_per_dtype():
    """Farthest representable point and farthest exp output, float64 and float32."""
    measured = {}
    for dt in (torch.float64, torch.float32):
        eps = torch.finfo(dt).eps
        r = torch.nextafter(torch.tensor(1.0, dtype=dt), torch.tensor(0.0, dtype=dt))
        x = torch.stack([r, torch.zeros((), dtype=dt)])
        d_repr = float(P.dist(torch.zeros(2, dtype=dt), x, 1.0))
        d_exp = float(P.dist0(M.expmap0(torch.tensor([1e6, 0.0], dtype=dt), 1.0), 1.0))
        assert math.isclose(d_repr, math.log(4 / eps - 1), rel_tol=1e-6)
        assert math.isclose(d_exp, math.log(1 / (2 * eps) - 1), rel_tol=1e-6)
        # the float64 value is exact against mpmath on the stored point
        if dt == torch.float64:
            assert math.isclose(d_repr, _mp_ball_dist([0.0, 0.0], x.tolist()), rel_tol=1e-14)
        measured[dt] = (d_repr, d_exp)
    assert abs(measured[torch.float64][0] - 37.43) < 0.01 and abs(measured[torch.float32][0] - 17.33) < 0.01
    assert abs(measured[torch.float64][1] - 35.35) < 0.01 and abs(measured[torch.float32][1] - 15.25) < 0.01


def test_lorentz_capacity_per_dtype(gen):
    """The constraint −x₀² + ‖x_s‖² = −1/c is resolvable up to cosh²(d) = 1/ε: 18.71 / 8.66."""
    for dt, cap in ((torch.float64, 18.71), (torch.float32, 8.66)):
        eps = torch.finfo(dt).eps
        assert abs(math.acosh(eps**-0.5) - cap) < 0.01
        dirs = _dirs(200, 2, gen).to(dt)
        for d, resolvable in ((0.9 * cap, True), (1.25 * cap, False)):
            x = L.expmap0(torch.cat((torch.zeros(200, 1, dtype=dt), d * dirs), -1), 1.0)
            res = (x[:, 0] * x[:, 0] - (x[:, 1:] ** 2).sum(-1) - 1).abs()
            if resolvable:
                assert float(res.max()) < 0.5
            else:
                assert float(res.max()) > 0.5
            # distances stay exact from the spatial coordinates either way (no blow-up)
            dd = L.dist(x[:1] * 0 + torch.tensor([1.0, 0, 0], dtype=dt), x, 1.0)
            assert torch.isfinite(dd).all() and float((dd - d).abs().max()) < 1e-4 * d


@pytest.mark.parametrize("k", [3, 5, 7, 9, 10, 11, 12, 13, 14, 15])
def test_poincare_distances_vs_mpmath(k, gen):
    """d(0,x), d(x,y) far apart and d(x, exp_x(u)) with ‖u‖_x = 1, at ‖x‖ = ‖y‖ = 1 − 10^-k."""
    r = 1 - 10.0**-k
    x, y = _dirs(8, 3, gen) * r, _dirs(8, 3, gen) * r
    u = _dirs(8, 3, gen) / P.conformal_factor(x, 1.0)
    z = P.exp(x, u, 1.0)
    zero = torch.zeros_like(x)
    for a, b in ((zero, x), (x, y), (x, z)):
        ours = P.dist(a, b, 1.0)
        assert torch.isfinite(ours).all()
        ref = torch.tensor([_mp_ball_dist(p, q) for p, q in zip(a, b, strict=True)], dtype=D)
        rel = float(((ours - ref).abs() / ref).max())
        # measured: ≤ 1e-14 up to k = 10 (distance 24), 2e-9 at k = 15 (distance 35); the issue
        # asks for 1e-6 up to distance ~25
        assert rel <= (1e-14 if k <= 10 else 1e-8), (k, rel)
    # symmetric and consistent with dist0/log
    torch.testing.assert_close(P.dist(y, x, 1.0), P.dist(x, y, 1.0), rtol=1e-12, atol=0)
    torch.testing.assert_close(P.dist0(x, 1.0), P.dist(zero, x, 1.0), rtol=1e-9, atol=0)
    nlog = PoincareBall(1.0).norm(x, P.log(x, y, 1.0))
    torch.testing.assert_close(nlog, P.dist(x, y, 1.0), rtol=1e-12, atol=0)


def test_poincare_round_trips_near_boundary(gen):
    for k in (7, 9):
        x = _dirs(8, 3, gen) * (1 - 10.0**-k)
        for length in (0.5, 1.0, 4.0):  # shorter steps are dominated by the rounding of y
            u = _dirs(8, 3, gen) * length / P.conformal_factor(x, 1.0)
            y = P.exp(x, u, 1.0)
            back = P.log(x, y, 1.0)
            assert torch.isfinite(back).all()
            rel = ((back - u).norm(dim=-1) / u.norm(dim=-1)).max()
            assert float(rel) < 1e-6, (k, length, float(rel))
    # log0/exp0 up to distance 25 from the origin, any direction
    v = _dirs(20, 4, gen) * torch.linspace(0.01, 12.5, 20, dtype=D).unsqueeze(-1)
    back = M.logmap0(M.expmap0(v, 1.0), 1.0)
    assert float(((back - v).norm(dim=-1) / v.norm(dim=-1)).max()) < 1e-6


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("c", [1.0, 0.5, 2.0, 0.7])
def test_exp_of_long_vectors_stays_inside(c, dtype, gen):
    m = PoincareBall(c, n=3)
    eps = torch.finfo(dtype).eps
    cap = math.log(1 / (2 * eps) - 1) / c**0.5  # farthest exp output
    t = torch.logspace(-3, 7, 400, dtype=dtype)
    # along an axis: dist to the origin is 2‖u‖ up to rounding, monotone, then the cap
    u = torch.zeros(400, 3, dtype=dtype)
    u[:, 0] = t
    y = m.expmap0(u)
    assert bool(m.belongs(y).all()) and torch.isfinite(y).all()
    d = m.dist0(y).double()
    assert bool((d[1:] >= d[:-1]).all())
    want = 2 * t.double()
    tol = 4 * eps * torch.exp(c**0.5 * want) + 1e-6 * want
    ok = ((d - want).abs() <= tol) | (want >= cap - 1)
    assert bool(ok.all())
    # the capped radius (1 − 4ε)/√c is itself rounded, so the last distance is cap ± 1/√c
    assert cap - 1 / c**0.5 <= float(d.max()) <= (math.log(4 / eps) + 1) / c**0.5
    # random directions, from points near the boundary too: strictly inside, finite
    x = m.random_point(400, generator=gen, dtype=dtype)
    x[:200] = torch.nn.functional.normalize(x[:200], dim=-1) * (1 - 1e-7 if dtype == D else 1 - 1e-4) / c**0.5
    v = torch.nn.functional.normalize(torch.randn(400, 3, generator=gen, dtype=dtype), dim=-1)
    v = v * t.unsqueeze(-1)
    big = t[-1] * torch.eye(3, dtype=dtype)
    for out in (m.exp(x, v), m.expmap0(v), m.gyro_scalar(t, x), m.mobius_matvec(big, x)):
        assert bool(m.belongs(out).all()) and torch.isfinite(out).all()
        assert torch.isfinite(m.dist(x, out)).all()
        # strictly inside even for naive float checks
        assert bool((c * (out * out).sum(-1) < 1).all()) and bool((out.norm(dim=-1) * c**0.5 < 1).all())
        assert bool((out.norm(dim=-1) < 1 / c**0.5).all())


def test_no_nan_in_gradients_at_the_boundary(gen):
    x = (_dirs(4, 3, gen) * (1 - 1e-15)).requires_grad_(True)
    y = (_dirs(4, 3, gen) * (1 - 1e-12)).requires_grad_(True)
    for out in (P.dist(x, y, 1.0), P.log(x, y, 1.0), P.exp(x, 1e3 * y, 1.0), M.gyro_add(x, y, 1.0),
                P.transport(x, y, y, 1.0), M.logmap0(x, 1.0), P.dist0(y, 1.0)):
        gx, gy = torch.autograd.grad(out.sum(), (x, y), allow_unused=True)
        for g in (gx, gy):
            assert g is None or torch.isfinite(g).all()


def test_lorentz_far_points_vs_mpmath(gen):
    """Distances between far points (radius up to 18) against mpmath on the stored spatial
    coordinates (x₀ re-derived exactly from the constraint), and the origin out to d = 350."""
    o = torch.tensor([1.0, 0.0, 0.0], dtype=D)
    radii = torch.tensor([1.0, 5.0, 10.0, 15.0, 18.0, 100.0, 350.0], dtype=D)
    x = L.expmap0(torch.cat((torch.zeros(7, 1, dtype=D), radii.unsqueeze(-1) * _dirs(7, 2, gen)), -1), 1.0)
    d0 = L.dist(o, x, 1.0)
    assert torch.isfinite(d0).all() and float(((d0 - radii) / radii).abs().max()) < 1e-12
    for radius, sep in ((5.0, 1.0), (10.0, 0.5), (15.0, 2.0), (18.0, 1.0)):
        a = L.expmap0(torch.cat((torch.zeros(5, 1, dtype=D), radius * _dirs(5, 2, gen)), -1), 1.0)
        w = torch.cat((torch.zeros(5, 1, dtype=D), sep * _dirs(5, 2, gen)), -1)
        b = L.exp(a, L.transport(o.expand_as(a), a, w, 1.0), 1.0)
        ours = L.dist(a, b, 1.0)
        for p, q, val in zip(a, b, ours, strict=True):
            P_ = [mpmath.mpf(float(t)) for t in p[1:]]
            Q_ = [mpmath.mpf(float(t)) for t in q[1:]]
            p0 = mpmath.sqrt(1 + sum(t * t for t in P_))
            q0 = mpmath.sqrt(1 + sum(t * t for t in Q_))
            ref = float(mpmath.acosh(p0 * q0 - sum(s * t for s, t in zip(P_, Q_, strict=True))))
            assert abs(float(val) - ref) <= 1e-6 * ref, (radius, float(val), ref)
    # exp of a huge tangent vector stays finite: t is capped at ½ log(max float) − 1 = 353.9
    big = L.exp(o, torch.tensor([[0.0, 1e6, 0.0], [0.0, 700.0, 0.0]], dtype=D), 1.0)
    assert torch.isfinite(big).all()
    tmax = 0.5 * math.log(torch.finfo(D).max) - 1
    torch.testing.assert_close(L.dist(o, big, 1.0), torch.full((2,), tmax, dtype=D))


def test_poincare_float32_distances_vs_mpmath(gen):
    """float32 points at ‖x‖ = 1 − 10^-k up to the float32 capacity: a few ulps of float32."""
    for k in (2, 4, 6, 7):
        x = (_dirs(10, 3, gen) * (1 - 10.0**-k)).float()
        y = (_dirs(10, 3, gen) * (1 - 10.0**-k)).float()
        keep = (x.double() ** 2).sum(-1) < 1  # rounding to float32 may land on/outside the ball
        x, y = x[keep], y[keep]
        for a, b in ((torch.zeros_like(x), x), (x, y)):
            ours = P.dist(a, b, 1.0)
            assert ours.dtype == torch.float32 and torch.isfinite(ours).all()
            ref = torch.tensor([_mp_ball_dist(p, q) for p, q in zip(a, b, strict=True)], dtype=D)
            assert float(((ours.double() - ref).abs() / ref).max()) <= 3e-7, k


def test_perpendicular_pair_at_one_minus_1e7():
    """The configuration where geoopt's clamp reads 16.81 instead of 32.93 (48.9 % short)."""
    r = 1 - 1e-7
    x, y = torch.tensor([r, 0.0], dtype=D), torch.tensor([0.0, r], dtype=D)
    ref = _mp_ball_dist(x.tolist(), y.tolist())
    assert abs(ref - 32.929338) < 1e-5
    assert abs(float(P.dist(x, y, 1.0)) - ref) <= 1e-14 * ref
    assert abs(float(PoincareBall(1.0).norm(x, P.log(x, y, 1.0))) - ref) <= 1e-13 * ref
