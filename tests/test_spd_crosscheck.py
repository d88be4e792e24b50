"""Cross-checks of the SPD metrics against pyriemann 0.12 and closed-form identities (float64)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from riemlearn.manifolds.spd import SPD
from riemlearn.manifolds.spd_affine_invariant import AffineInvariant
from riemlearn.manifolds.spd_log_cholesky import LogCholesky, cholesky_log
from riemlearn.manifolds.spd_log_euclidean import LogEuclidean
from riemlearn.manifolds.spectral import logm

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from pyriemann.geometry import distance as prd
    from pyriemann.geometry import geodesic as prg
    from pyriemann.geometry import tangentspace as prt

F64 = torch.float64
TOL = 1e-10
N, B = 5, 4


def _np(t):
    return t.detach().numpy()


def _close(ours, theirs, tol=TOL):
    theirs = torch.as_tensor(np.asarray(theirs), dtype=F64)
    err = float((ours - theirs).abs().max())
    scale = max(1.0, float(theirs.abs().max()))
    assert err <= tol * scale, f"max error {err:.3g}"


@pytest.fixture
def data(gen):
    m = SPD(N)
    x = m.random_point(B, generator=gen, dtype=F64, cond=30.0)
    y = m.random_point(B, generator=gen, dtype=F64, cond=30.0)
    u = m.random_tangent(x, generator=gen)
    v = m.random_tangent(x, generator=gen)
    return x, y, u, v


def _loop(fn, *arrays):
    return np.stack([fn(*(a[i] for a in arrays)) for i in range(arrays[0].shape[0])])


CASES = {
    "riemann": (
        AffineInvariant(),
        prd.distance_riemann,
        prt.log_map_riemann,
        prt.exp_map_riemann,
        prt.transport_riemann,
        prg.geodesic_riemann,
        prt.innerproduct_riemann,
    ),
    "logeuclid": (
        LogEuclidean(),
        prd.distance_logeuclid,
        prt.log_map_logeuclid,
        prt.exp_map_logeuclid,
        prt.transport_logeuclid,
        prg.geodesic_logeuclid,
        prt.innerproduct_logeuclid,
    ),
    "logchol": (
        LogCholesky(),
        prd.distance_logchol,
        prt.log_map_logchol,
        prt.exp_map_logchol,
        prt.transport_logchol,
        prg.geodesic_logchol,
        prt.innerproduct_logchol,
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_against_pyriemann(name, data):
    metric, dist, log_map, exp_map, transport, geodesic, inner = CASES[name]
    x, y, u, v = data
    X, Y, U, V = map(_np, (x, y, u, v))
    _close(metric.dist(x, y), _loop(dist, X, Y))
    # pyriemann's affine-invariant log/exp work in whitened coordinates unless asked not to.
    kw_log = {"C12": True} if name == "riemann" else {}
    kw_exp = {"Cm12": True} if name == "riemann" else {}
    _close(metric.log(x, y), _loop(lambda a, b: log_map(b, a, **kw_log), X, Y))
    _close(metric.exp(x, u), _loop(lambda a, b: exp_map(b, a, **kw_exp), X, U))
    _close(metric.transport(x, y, v), _loop(lambda a, b, c: transport(c, a, b), X, Y, V))
    _close(metric.geodesic(x, y, 0.3), _loop(lambda a, b: geodesic(a, b, 0.3), X, Y))
    _close(metric.inner(x, u, v), _loop(lambda a, b, c: inner(b, c, a), X, U, V))


def test_ai_congruence_invariance(gen, data):
    x, y, u, v = data
    a = torch.randn(N, N, generator=gen, dtype=F64) + 2 * torch.eye(N, dtype=F64)
    ax, ay = a @ x @ a.T, a @ y @ a.T
    for metric in (AffineInvariant(), AffineInvariant(theta=-1.0)):
        assert torch.allclose(metric.dist(ax, ay), metric.dist(x, y), rtol=1e-9)
    # log and transport are equivariant: Log_{AxAᵀ}(AyAᵀ) = A Log_x(y) Aᵀ.
    ai = AffineInvariant()
    assert torch.allclose(ai.log(ax, ay), a @ ai.log(x, y) @ a.T, atol=1e-9)
    assert torch.allclose(ai.transport(ax, ay, a @ v @ a.T), a @ ai.transport(x, y, v) @ a.T, atol=1e-9)


def test_flat_metrics_are_euclidean_in_images(data):
    x, y, u, v = data
    d = logm(x) - logm(y)
    assert torch.allclose(LogEuclidean().dist(x, y), d.flatten(-2).norm(dim=-1), rtol=1e-12)
    c = cholesky_log(x) - cholesky_log(y)
    assert torch.allclose(LogCholesky().dist(x, y), c.flatten(-2).norm(dim=-1), rtol=1e-12)
    # the Cholesky-log image of a geodesic is a straight line
    mid = LogCholesky().geodesic(x, y, 0.25)
    assert torch.allclose(cholesky_log(mid), 0.75 * cholesky_log(x) + 0.25 * cholesky_log(y), atol=1e-12)


def test_ai_closed_forms(data):
    x, y, u, v = data
    # d² = Σ log² λ_i(x⁻¹y) (generalized eigenvalues, here via scipy)
    from scipy.linalg import eigh as geigh

    ref = [
        np.sqrt((np.log(geigh(b, a, eigvals_only=True)) ** 2).sum())
        for a, b in zip(_np(x), _np(y), strict=True)
    ]
    _close(AffineInvariant().dist(x, y), ref)
    # parallel transport E v Eᵀ with E = (y x⁻¹)^{1/2}, from scipy's general sqrtm
    from scipy.linalg import sqrtm

    e = [np.real(sqrtm(b @ np.linalg.inv(a))) for a, b in zip(_np(x), _np(y), strict=True)]
    want = np.stack([ei @ vi @ ei.T for ei, vi in zip(e, _np(v), strict=True)])
    _close(AffineInvariant().transport(x, y, v), want, tol=1e-9)
