"""Fréchet means: peers (pyriemann), closed forms, first-order conditions, spread data, gradients."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from riemlearn.manifolds import (
    SPD,
    AffineInvariant,
    BuresWasserstein,
    Grassmann,
    LogCholesky,
    LogEuclidean,
    Lorentz,
    PoincareBall,
    Sphere,
)
from riemlearn.manifolds.spectral import expm, logm, sqrtm, sqrtm_invsqrtm, sym
from riemlearn.stats.frechet_mean import frechet_mean

D = torch.float64

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from pyriemann.utils.mean import mean_logchol, mean_logeuclid, mean_riemann, mean_wasserstein


def _spd(gen, *batch, n=4, cond=50.0):
    return SPD(n).random_point(*batch, generator=gen, dtype=D, cond=cond)


def spread_set(gen, n_pts, n, radius=6.4):
    """SPD matrices exp(Z) with ‖Z‖ = radius: pairwise AI distances ≈ 9."""
    z = sym(torch.randn(n_pts, n, n, generator=gen, dtype=D))
    z = z / z.norm(dim=(-2, -1), keepdim=True) * radius
    return expm(z)


def _first_order(m, mean, x, w=None):
    """Metric norm of Σ wᵢ log_M Xᵢ computed with the manifold's own log."""
    nd = m.ndim
    mb = mean.unsqueeze(-nd - 1).expand_as(x)
    logs = m.log(mb, x)
    if w is None:
        w = torch.full(x.shape[: x.dim() - nd], 1.0 / x.shape[-nd - 1], dtype=x.dtype)
    g = (w.reshape(w.shape + (1,) * nd) * logs).sum(-nd - 1)
    return m.norm(mean, g)


@pytest.mark.parametrize(
    "metric, peer",
    [("affine_invariant", mean_riemann), ("log_euclidean", mean_logeuclid),
     ("log_cholesky", mean_logchol), ("bures_wasserstein", mean_wasserstein)],
)
def test_agrees_with_pyriemann_weighted_and_grouped(gen, metric, peer):
    x = _spd(gen, 3, 12)
    w = torch.rand(3, 12, generator=gen, dtype=D) + 0.1
    m = SPD(metric=metric)
    mean, info = frechet_mean(x, m, w, return_info=True)
    kw = {"tol": 1e-14, "maxiter": 1000} if metric in ("affine_invariant", "bures_wasserstein") else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = np.stack([peer(x[i].numpy(), sample_weight=w[i].numpy() / w[i].sum().item(), **kw)
                        for i in range(3)])
    scale = np.abs(ref).max()
    assert np.abs(mean.numpy() - ref).max() <= 1e-9 * scale
    assert bool(info.converged.all()) and float(info.grad_norm.max()) <= 1e-9
    # batched over groups == one call per group
    for i in range(3):
        torch.testing.assert_close(frechet_mean(x[i], m, w[i]), mean[i], rtol=1e-11, atol=1e-11)
    # the reported gradient norm is the metric norm of Σ w log_M X (checked with the metric)
    if metric in ("affine_invariant", "bures_wasserstein"):
        fo = _first_order(m, mean, x, w / w.sum(-1, keepdim=True))
        assert float(fo.max()) <= 1e-9
        torch.testing.assert_close(fo, info.grad_norm, rtol=0.05, atol=2e-11)


@pytest.mark.parametrize(
    "metric",
    [AffineInvariant(theta=0.5), AffineInvariant(alpha=2.0, beta=-0.3), LogEuclidean(theta=0.7),
     LogEuclidean(alpha=1.5, beta=0.2), LogCholesky(theta=-0.5), BuresWasserstein(theta=0.5)],
    ids=repr,
)
def test_deformed_metrics_satisfy_first_order_condition(gen, metric):
    x = _spd(gen, 2, 8, n=3, cond=20.0)
    m = SPD(3, metric=metric)
    mean, info = frechet_mean(x, m, return_info=True)
    assert bool(m.belongs(mean).all())
    assert float(_first_order(m, mean, x).max()) <= 1e-9
    assert float(info.grad_norm.max()) <= 1e-9


@pytest.mark.parametrize("kind", ["cond", "spread"])
def test_affine_invariant_converges_where_unit_step_fails(gen, kind):
    n = 6
    if kind == "cond":  # condition number 1e6 (affine image of well-conditioned data)
        q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=D))
        a = q * torch.logspace(0, 3, n, dtype=D)
        s = _spd(gen, 40, n=n, cond=5.0)
        x = a @ s @ a.mT
    else:
        x = spread_set(gen, 40, n)
        d = SPD(metric="affine_invariant").dist(x[:-1], x[1:])
        assert 7.0 < float(d.mean()) < 11.0
    m = SPD(metric="affine_invariant")
    mean, info = frechet_mean(x, m, return_info=True)
    assert bool(info.converged) and float(info.grad_norm) <= 1e-9
    assert float(_first_order(m, mean, x)) <= 1e-9
    if kind == "cond":  # affine equivariance: mean(A S Aᵀ) = A mean(S) Aᵀ
        ref = a @ frechet_mean(s, m) @ a.mT
        assert float((mean - ref).norm() / ref.norm()) <= 1e-10
    else:  # the textbook unit-step fixed point does not converge on this set
        c = x.mean(0)
        for _ in range(30):
            h, hi = sqrtm_invsqrtm(c)
            grad = logm(hi @ x @ hi).mean(0)
            c = h @ expm(grad) @ h
        assert float(grad.norm()) > 1e-3


def test_karcher_on_sphere_grassmann_hyperbolic(gen):
    for m in (Sphere(4), Grassmann(5, 2), Lorentz(1.0, n=3), PoincareBall(0.5, n=3)):
        c = m.random_point(2, generator=gen, dtype=D)
        base = c.unsqueeze(-m.ndim - 1).expand((2, 9) + c.shape[1:]).contiguous()
        x = m.exp(base, 0.6 * m.random_tangent(base, generator=gen))
        mean, info = frechet_mean(x, m, return_info=True)
        assert bool(m.belongs(mean).all()), m
        assert bool(info.converged.all()) and float(info.grad_norm.max()) <= 1e-9, m
        assert float(_first_order(m, mean, x).max()) <= 1e-9, m
        if isinstance(m, PoincareBall):  # isometric models give the same mean
            from riemlearn.manifolds.hyperbolic_conversions import ball_to_lorentz, lorentz_to_ball

            ml = frechet_mean(ball_to_lorentz(x, 0.5), Lorentz(0.5))
            torch.testing.assert_close(lorentz_to_ball(ml, 0.5), mean, rtol=1e-9, atol=1e-9)


def test_euclidean_closed_form(gen):
    from riemlearn.manifolds import Euclidean

    x = torch.randn(2, 5, 3, generator=gen, dtype=D)
    w = torch.rand(5, generator=gen, dtype=D)
    mean = frechet_mean(x, Euclidean(3), w)
    torch.testing.assert_close(mean, (w[:, None] * x).sum(1) / w.sum())


# -- gradients: implicit backward vs unrolled autograd through the iteration -----------------------
def _unrolled_aim(x, w, iters=60):
    c = (w[:, None, None] * x).sum(0)
    for _ in range(iters):
        h, hi = sqrtm_invsqrtm(c)
        c = h @ expm((w[:, None, None] * logm(hi @ x @ hi)).sum(0)) @ h
    return c


def _unrolled_bw(x, w, iters=80):
    s = (w[:, None, None] * x).sum(0)
    for _ in range(iters):
        a, ai = sqrtm_invsqrtm(s)
        r = (w[:, None, None] * sqrtm(a @ x @ a)).sum(0)
        s = ai @ r @ r @ ai
    return s


def _unrolled_sphere(m, x, w, iters=80):
    c = (w[:, None] * x).sum(0)
    c = c / c.norm()
    for _ in range(iters):
        c = m.exp(c, (w[:, None] * m.log(c.expand_as(x), x)).sum(0))
    return c


@pytest.mark.parametrize("case", ["ai", "bw", "sphere"])
def test_implicit_gradient_matches_unrolled(gen, case):
    if case == "sphere":
        m = Sphere(3)
        c = m.random_point(generator=gen, dtype=D)
        x0 = m.exp(c.expand(5, 3), 0.3 * m.random_tangent(c.expand(5, 3).contiguous(), generator=gen))
        unrolled = lambda x, w: _unrolled_sphere(m, x, w)
    else:
        m = SPD(metric="affine_invariant" if case == "ai" else "bures_wasserstein")
        x0 = _spd(gen, 5, n=3, cond=4.0)
        unrolled = _unrolled_aim if case == "ai" else _unrolled_bw
    w0 = torch.rand(5, generator=gen, dtype=D) + 0.5
    w0 = w0 / w0.sum()
    probe = torch.randn(x0.shape[1:], generator=gen, dtype=D)

    x1, w1 = x0.clone().requires_grad_(), w0.clone().requires_grad_()
    mean = frechet_mean(x1, m, w1, tol=1e-13)
    (mean * probe).sum().backward()
    x2, w2 = x0.clone().requires_grad_(), w0.clone().requires_grad_()
    ref = unrolled(x2, w2)
    (ref * probe).sum().backward()
    torch.testing.assert_close(mean.detach(), ref.detach(), rtol=1e-10, atol=1e-10)
    gx1, gx2 = x1.grad, x2.grad
    if case != "sphere":  # only the symmetric part of a gradient w.r.t. SPD points is defined
        gx1, gx2 = sym(gx1), sym(gx2)
    else:  # and only the tangent part on the sphere
        gx1 = m.project_tangent(x0, gx1)
        gx2 = m.project_tangent(x0, gx2)
    assert float((gx1 - gx2).abs().max()) <= 1e-8
    # weights enter normalized: compare the gradients' tangent (sum-zero) parts
    gw1, gw2 = w1.grad - w1.grad.mean(), w2.grad - w2.grad.mean()
    assert float((gw1 - gw2).abs().max()) <= 1e-8


def test_closed_form_gradients_and_float32(gen):
    x = _spd(gen, 6, n=3).requires_grad_()
    mean = frechet_mean(x, SPD(metric="log_euclidean"))
    mean.sum().backward()
    assert x.grad is not None and bool(torch.isfinite(x.grad).all())
    x32 = _spd(gen, 6, n=3).float()
    m32 = frechet_mean(x32, SPD(metric="affine_invariant"))
    assert m32.dtype == torch.float32
    torch.testing.assert_close(m32.double(), frechet_mean(x32.double(), SPD()), rtol=1e-5, atol=1e-6)


def test_non_convergence_warns_and_reports(gen):
    x = spread_set(gen, 20, 4)
    with pytest.warns(RuntimeWarning, match="did not converge"):
        _, info = frechet_mean(x, SPD(), max_iter=1, return_info=True)
    assert not bool(info.converged) and int(info.iterations) == 1


def test_bad_input(gen):
    x = _spd(gen, 5, n=3)
    m = SPD()
    with pytest.raises(ValueError, match="NaN"):
        frechet_mean(torch.full_like(x, float("nan")), m)
    with pytest.raises(ValueError, match="non-negative"):
        frechet_mean(x, m, -torch.ones(5, dtype=D))
    with pytest.raises(ValueError, match="weights must have shape"):
        frechet_mean(x, m, torch.ones(4, dtype=D))
    with pytest.raises(ValueError, match="N = 0"):
        frechet_mean(x[:0], m)
    with pytest.raises(ValueError, match="points"):
        frechet_mean(x[0, 0], m)


@pytest.mark.parametrize("metric", ["affine_invariant", "bures_wasserstein"])
def test_tiny_scale_data_still_iterates(gen, metric):
    # EEG covariances are ~1e-10 V²: a scale-blind absolute tolerance would stop at the start
    x = _spd(gen, 8, n=3)
    m = SPD(metric=metric)
    ref = frechet_mean(x, m)
    small, info = frechet_mean(1e-10 * x, m, return_info=True)
    assert int(info.iterations) > 0
    torch.testing.assert_close(small, 1e-10 * ref, rtol=1e-9, atol=0.0)


def test_sphere_mean_of_a_spread_great_subsphere_stays_on_the_sphere():
    """Regression: long Barzilai–Borwein steps used to drift the iterate off the sphere."""
    from riemlearn.manifolds import Sphere

    g = torch.Generator().manual_seed(3)
    d = torch.float64
    q, _ = torch.linalg.qr(torch.randn(5, 3, generator=g, dtype=d))
    z = torch.randn(60, 3, generator=g, dtype=d)
    x = (z / z.norm(dim=-1, keepdim=True)) @ q.T
    x = x + 0.01 * torch.randn(60, 5, generator=g, dtype=d)
    x = x / x.norm(dim=-1, keepdim=True)
    mean, info = frechet_mean(x, Sphere(5), return_info=True)
    assert abs(float(mean.norm()) - 1.0) < 1e-12
    assert bool(info.converged) and float(info.grad_norm) <= 1e-9


def test_ah_start_is_the_geometric_mean_of_arithmetic_and_harmonic(gen):
    """The affine-invariant start ``A # H`` from its Cholesky/eigh frame equals the textbook
    ``A^{1/2} (A^{-1/2} H A^{-1/2})^{1/2} A^{1/2}`` (numpy/scipy, independent of riemlearn), and
    for two commuting points it is their geometric mean."""
    from riemlearn.stats import _mean_spd as S
    from scipy.linalg import sqrtm as sp_sqrtm

    x = _spd(gen, 2, 7, n=5, cond=1e3)
    w = torch.rand(2, 7, generator=gen, dtype=D) + 0.1
    w = w / w.sum(-1, keepdim=True)
    c, ci = S.ah_frame(x, w)
    eye = torch.eye(5, dtype=D).expand(2, 5, 5)
    torch.testing.assert_close(c @ ci, eye, rtol=0, atol=1e-12)
    for g in range(2):
        xs, ws = x[g].numpy(), w[g].numpy()
        a = np.einsum("i,ijk->jk", ws, xs)
        h = np.linalg.inv(np.einsum("i,ijk->jk", ws, np.linalg.inv(xs)))
        ra = np.real(sp_sqrtm(a))
        ria = np.linalg.inv(ra)
        ref = ra @ np.real(sp_sqrtm(ria @ h @ ria)) @ ra
        got = (c[g] @ c[g].mT).numpy()
        assert np.abs(got - ref).max() <= 1e-11 * np.abs(ref).max()
    d1, d2 = torch.tensor([1.0, 4.0, 9.0], dtype=D), torch.tensor([4.0, 1.0, 0.25], dtype=D)
    pair = torch.stack((torch.diag(d1), torch.diag(d2)))[None]
    got = S.ah_init(pair, torch.full((1, 2), 0.5, dtype=D))[0]
    torch.testing.assert_close(got, torch.diag((d1 * d2).sqrt()), rtol=1e-13, atol=0)
    with pytest.raises(ValueError, match="not positive definite"):
        S.ah_frame(-x, w)


def test_grouped_spread_means_equal_single_means(gen):
    """Batched groups (per-group masks in the Newton/CG loops) and single groups (no masks)
    reach the same affine-invariant means on widely spread, weighted data, within tolerance."""
    m = SPD(5)
    x = torch.stack([spread_set(gen, 12, 5, radius=r) for r in (0.3, 3.0, 6.4)])
    w = torch.rand(3, 12, generator=gen, dtype=D) + 0.05
    mean, info = frechet_mean(x, m, w, return_info=True)
    assert bool(info.converged.all()) and float(info.grad_norm.max()) <= 1e-9
    for g in range(3):
        alone, ia = frechet_mean(x[g], m, w[g], return_info=True)
        assert float(ia.grad_norm) <= 1e-9
        torch.testing.assert_close(alone, mean[g], rtol=1e-10, atol=1e-12)
        assert float(_first_order(m, alone, x[g], w[g] / w[g].sum()).max()) <= 1e-9
