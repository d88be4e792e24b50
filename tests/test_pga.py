"""PGA: exact on the sphere / hyperbolic space (closed-form projections), linearized elsewhere."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from riemlearn.manifolds import SPD, Euclidean, Lorentz, PoincareBall, Sphere
from riemlearn.manifolds.hyperbolic_conversions import lorentz_to_ball
from riemlearn.stats.pga import PGA, ConstantCurvatureFrame
from riemlearn.stats.tangent_pca import TangentPCA

F64 = torch.float64


def _spread_sphere(gen):
    """Three clusters 1.3-1.6 rad from the pole of S^2 (where the linearization is poor)."""
    s = Sphere(3)
    centres = torch.tensor([(1.3, 0.9), (-1.3, -0.2), (0.2, -0.8)], dtype=F64)
    p = centres.repeat_interleave(10, 0) + 0.05 * torch.randn(30, 2, generator=gen, dtype=F64)
    u = torch.cat([torch.zeros(30, 1, dtype=F64), p], 1)
    return s, s.exp(torch.tensor([1.0, 0, 0], dtype=F64).expand(30, 3), u)


def test_great_circle_first_component_zero_residual(gen):
    m = Sphere(4)
    q, _ = torch.linalg.qr(torch.randn(4, 4, generator=gen, dtype=F64))
    ang = torch.rand(40, generator=gen, dtype=F64) * 3 - 1.5
    X = torch.stack([torch.cos(ang), torch.sin(ang)], -1) @ q[:, :2].mT
    pga = PGA(2, m).fit(X)
    assert pga.method_ == "exact"
    assert float(pga.residual_variance_[0]) < 1e-24
    v = pga.components_[0]
    # the first direction lies in the plane of the circle and is tangent at the mean
    assert float((v - q[:, :2] @ (q[:, :2].mT @ v)).norm()) < 1e-10
    assert abs(float(v @ pga.mean_)) < 1e-12 and abs(float(v.norm()) - 1) < 1e-12
    torch.testing.assert_close(pga.projected_variance_[0], torch.tensor(pga.total_variance_, dtype=F64))
    # exact scores are the arc-length coordinates: round trip is exact
    torch.testing.assert_close(pga.inverse_transform(pga.transform(X)), X, atol=1e-12, rtol=0)


def test_exact_vs_linearized_on_spread_sphere_data(gen):
    m, X = _spread_sphere(gen)
    lin = PGA(1, m, method="linearized").fit(X)
    var = PGA(1, m, criterion="variance").fit(X)
    res = PGA(1, m, criterion="residual").fit(X)
    angle = math.degrees(math.acos(min(1.0, abs(float(var.components_[0] @ lin.components_[0])))))
    assert angle > 10.0  # the exact direction differs from tangent PCA's
    assert float(var.projected_variance_[0]) > float(lin.projected_variance_[0]) * (1 + 1e-2)
    assert float(res.residual_variance_[0]) < float(lin.residual_variance_[0]) * (1 - 1e-3)
    # global optimality over the circle of tangent directions (S^2: a 1-parameter family)
    frame = ConstantCurvatureFrame(m, var.mean_)
    t, z = frame.coords(X)
    phi = torch.linspace(0, math.pi, 2001, dtype=F64)
    best_var, best_res = -1.0, 1e9
    for p in phi:
        v = torch.stack([torch.cos(p), torch.sin(p)])[:, None]
        dp, dr, _ = frame.subspace(t, z, v)
        best_var = max(best_var, float((dp * dp).mean()))
        best_res = min(best_res, float((dr * dr).mean()))
    assert float(var.projected_variance_[0]) >= best_var - 1e-9
    assert float(res.residual_variance_[0]) <= best_res + 1e-9
    # linearized PGA is tangent PCA: same scores
    tp = TangentPCA(1, m).fit(X)
    torch.testing.assert_close(lin.transform(X).abs(), tp.transform(X).abs(), atol=1e-9, rtol=0)


def test_hyperbolic_exact_lorentz_and_ball_agree(gen):
    m = Lorentz(0.7, n=3)
    X = m.random_point(40, generator=gen, dtype=F64)
    e = PGA(2, m).fit(X)
    lin = PGA(2, m, method="linearized").fit(X)
    assert float(e.projected_variance_[0]) >= float(lin.projected_variance_[0]) - 1e-12
    # exact projection: scores reproduce the residual distances
    proj = e.inverse_transform(e.transform(X))
    d = m.dist(proj, X)
    torch.testing.assert_close((d * d).mean(), e.residual_variance_[1], rtol=1e-9, atol=1e-12)
    # projected points are closest points: moving along the subspace does not get closer
    assert bool(m.belongs(proj).all())
    b = PoincareBall(0.7, n=3)
    eb = PGA(2, b).fit(lorentz_to_ball(X, 0.7))
    torch.testing.assert_close(eb.projected_variance_, e.projected_variance_, rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(eb.residual_variance_, e.residual_variance_, rtol=1e-7, atol=1e-9)
    # components are unit tangent vectors at the mean (metric of each model)
    for mm, est in ((m, e), (b, eb)):
        nrm = mm.norm(est.mean_.expand_as(est.components_), est.components_)
        torch.testing.assert_close(nrm, torch.ones(2, dtype=F64), atol=1e-9, rtol=0)


def test_linearized_elsewhere_numpy_io(gen):
    m = SPD(3)
    X = m.random_point(15, generator=gen, dtype=F64).numpy()
    p = PGA(2, m).fit(X)
    assert p.method_ == "linearized"
    assert isinstance(p.transform(X), np.ndarray) and p.transform(X).shape == (15, 2)
    tp = TangentPCA(2, m).fit(X)
    np.testing.assert_allclose(p.explained_variance_, tp.explained_variance_, rtol=1e-12)
    assert p.residual_variance_[1] < p.residual_variance_[0] < p.total_variance_
    with pytest.raises(ValueError, match="method='exact'"):
        PGA(2, m, method="exact").fit(X)
    e = PGA(2, Euclidean(3)).fit(np.random.default_rng(0).normal(size=(10, 3)))
    assert e.method_ == "linearized"


def test_bad_input(gen):
    m = Sphere(3)
    X = m.project_point(torch.tensor([1.0, 0, 0], dtype=F64)
                        + 0.3 * torch.randn(10, 3, generator=gen, dtype=F64))
    with pytest.raises(ValueError, match="method"):
        PGA(1, m, method="nope").fit(X)
    with pytest.raises(ValueError, match="criterion"):
        PGA(1, m, criterion="nope").fit(X)
    with pytest.raises(ValueError, match="n_components"):
        PGA(3, m).fit(X)
    with pytest.raises(ValueError, match=r"X\[0\]"):
        PGA(1, m).fit(2 * X)
    with pytest.raises(ValueError, match="NaN"):
        PGA(1, m).fit(X * float("nan"))
