"""Barycentric subspace analysis: PCA's flag on Euclidean data, a planted great subsphere on the
sphere, closed-form projections checked by brute force, hyperbolic models agree, generic
projection by optimization (SPD) checked against flat geometry and the EBS equation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from riemlearn.manifolds import SPD, Euclidean, Lorentz, PoincareBall, Sphere
from riemlearn.manifolds.hyperbolic_conversions import lorentz_to_ball
from riemlearn.stats.bsa import (
    BSA,
    _ebs_field,
    _project_generic,
    accumulated_unexplained_variance,
    ebs_project,
    exponential_barycenter,
)
from riemlearn.stats.tangent_pca import TangentPCA

F64 = torch.float64


def _projector(a: np.ndarray) -> np.ndarray:
    q, _ = np.linalg.qr(a)
    return q @ q.T


@pytest.mark.parametrize("method", ["forward", "joint"])
def test_euclidean_reproduces_pca_flag(method):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5)) @ np.diag([3.0, 2.0, 1.2, 0.5, 0.2]) + 1.0
    k = 3
    bsa = BSA(k, Euclidean(5), method=method).fit(X)
    refs = bsa.references_
    assert isinstance(refs, np.ndarray) and refs.shape == (k + 1, 5)
    np.testing.assert_allclose(refs[0], X.mean(0), atol=1e-9)
    xc = X - X.mean(0)
    lam, vecs = np.linalg.eigh(xc.T @ xc / len(X))
    lam, vecs = lam[::-1], vecs[:, ::-1]
    for level in range(1, k + 1):
        p_bsa = _projector((refs[1:level + 1] - refs[0]).T)
        p_pca = vecs[:, :level] @ vecs[:, :level].T
        assert np.abs(p_bsa - p_pca).max() < 1e-7, level
    tails = np.array([lam[level:].sum() for level in range(k + 1)])
    np.testing.assert_allclose(bsa.unexplained_variance_, tails, rtol=1e-10)
    assert abs(bsa.auv_ - tails.sum()) < 1e-10 * tails.sum()
    auv = accumulated_unexplained_variance(torch.from_numpy(X), torch.from_numpy(refs), Euclidean(5))
    assert abs(float(auv) - tails.sum()) < 1e-10 * tails.sum()


def _planted(gen, noise):
    m = Sphere(5)
    q, _ = torch.linalg.qr(torch.randn(5, 3, generator=gen, dtype=F64))
    c = torch.randn(60, 3, generator=gen, dtype=F64) * torch.tensor([0.6, 0.6, 0.4], dtype=F64)
    x = m.project_point((c + torch.tensor([1.0, 0, 0], dtype=F64)) @ q.mT)
    x = m.project_point(x + noise * torch.randn(60, 5, generator=gen, dtype=F64))
    return m, x, q @ q.mT


def test_sphere_recovers_planted_great_subsphere(gen):
    m, X, P = _planted(gen, 0.0)
    bsa = BSA(2, m).fit(X)
    q, _ = torch.linalg.qr(bsa.references_.mT)
    assert float((q @ q.mT - P).abs().max()) < 1e-8
    assert float(bsa.unexplained_variance_[2]) < 1e-20
    assert bsa.unexplained_variance_[0] > bsa.unexplained_variance_[1] > bsa.unexplained_variance_[2]
    # level 0 is the point x0 = Fréchet mean: its unexplained variance is the Fréchet variance
    d = m.dist(bsa.references_[0].expand_as(X), X)
    torch.testing.assert_close(bsa.unexplained_variance_[0], (d * d).mean())
    assert float(bsa.unexplained_variance_[0]) > 0.8  # data reach past π/2 from the mean


def test_sphere_noisy_planted_forward_joint_and_coordinates(gen):
    m, X, P = _planted(gen, 0.01)
    fwd = BSA(2, m).fit(X)
    joint = BSA(2, m, method="joint").fit(X)
    for est in (fwd, joint):
        q, _ = torch.linalg.qr(est.references_.mT)
        assert float((q @ q.mT - P).norm()) < 0.05  # noise level 0.01 per coordinate
        assert float(est.unexplained_variance_[2]) < 3e-4
    assert joint.auv_ <= fwd.auv_ + 1e-12
    # barycentric coordinates: sum to one, solve the EBS equation, and map back to the projection
    proj = fwd.project(X)
    lam = fwd.transform(X)
    torch.testing.assert_close(lam.sum(-1), torch.ones(60, dtype=F64))
    assert float(_ebs_field(m, proj, fwd.references_, lam).norm(dim=-1).max()) < 1e-10
    assert float(m.dist(fwd.inverse_transform(lam), proj).max()) < 1e-9
    assert fwd.score(X) == pytest.approx(-float(fwd.unexplained_variance_[2]), rel=1e-9)


@pytest.mark.parametrize("m", [Sphere(4), Lorentz(0.6, n=3), PoincareBall(0.6, n=3), Euclidean(4)],
                         ids=lambda m: type(m).__name__)
def test_closed_form_projection_is_closest_point(m, gen):
    X = m.random_point(20, generator=gen, dtype=F64)
    refs = m.random_point(3, generator=gen, dtype=F64)
    proj = ebs_project(X, refs, m)
    d = m.dist(proj, X)
    # brute force over points of EBS(refs): exponential barycentres on a grid of weights
    a = torch.linspace(-1.5, 2.5, 41, dtype=F64)
    lam = torch.stack(torch.meshgrid(a, a, indexing="ij"), -1).reshape(-1, 2)
    lam = torch.cat((1 - lam.sum(-1, keepdim=True), lam), -1)
    pts = exponential_barycenter(refs, lam, m, n_iter=60)
    ok = _ebs_field(m, pts, refs, lam).norm(dim=-1) < 1e-8  # keep converged barycentres only
    pts = pts[ok]
    assert pts.shape[0] > 200
    dmin = m.dist(X[:, None].expand((20, pts.shape[0]) + X.shape[1:]),
                  pts[None].expand((20,) + pts.shape)).min(1).values
    assert float((d - dmin).max()) < 1e-9


def test_hyperbolic_models_agree(gen):
    lo = Lorentz(0.6, n=3)
    X = lo.random_point(30, generator=gen, dtype=F64)
    a = BSA(2, lo).fit(X)
    b = BSA(2, PoincareBall(0.6, n=3)).fit(lorentz_to_ball(X, 0.6))
    torch.testing.assert_close(a.unexplained_variance_, b.unexplained_variance_, rtol=1e-7, atol=1e-10)
    lam = a.transform(X)
    assert float(lo.dist(a.inverse_transform(lam), a.project(X)).max()) < 1e-9


def test_generic_projection_spd(gen):
    # log-Euclidean SPD is flat: BSA's unexplained variances are tangent PCA's
    le = SPD(3, metric="log_euclidean")
    X = le.random_point(12, generator=gen, dtype=F64)
    bsa = BSA(1, le).fit(X)
    ev = TangentPCA(manifold=le).fit(X).explained_variance_
    torch.testing.assert_close(bsa.unexplained_variance_, torch.stack([ev.sum(), ev[1:].sum()]),
                               rtol=1e-8, atol=1e-12)
    # affine-invariant: projections solve the EBS equation and beat a grid of barycentres
    ai = SPD(3)
    refs = torch.stack([X[0], X[1]])
    proj, lam = _project_generic(X, refs, ai)
    assert float(_ebs_field(ai, proj, refs, lam).norm(dim=-1).max()) < 1e-8
    grid = torch.linspace(-2.0, 3.0, 201, dtype=F64)
    pts = exponential_barycenter(refs, torch.stack([1 - grid, grid], -1), ai, n_iter=40)
    dmin = ai.dist(X[:, None].expand(12, 201, 3, 3), pts[None].expand(12, 201, 3, 3)).min(1).values
    assert float((ai.dist(proj, X) - dmin).max()) < 1e-6


def test_bad_input(gen):
    m = Sphere(3)
    X = m.project_point(torch.tensor([1.0, 0, 0], dtype=F64)
                        + 0.3 * torch.randn(10, 3, generator=gen, dtype=F64))
    with pytest.raises(ValueError, match="method"):
        BSA(1, m, method="backward").fit(X)
    with pytest.raises(ValueError, match="n_components"):
        BSA(3, m).fit(X)
    with pytest.raises(ValueError, match="NaN"):
        BSA(1, m).fit(X * float("nan"))
    with pytest.raises(ValueError, match=r"X\[0\]"):
        BSA(1, m).fit(3 * X)
    with pytest.raises(ValueError, match="joint"):
        BSA(1, SPD(2), method="joint").fit(SPD(2).random_point(5, generator=gen, dtype=F64))
    bsa = BSA(1, m).fit(X)
    with pytest.raises(ValueError, match="shape"):
        bsa.inverse_transform(torch.ones(4, 3, dtype=F64))


def test_forward_bsa_equals_residual_pga_on_sphere(gen):
    # with x0 the Fréchet mean, the forward flag is greedy geodesic-subspace fitting through the
    # mean: the same problem as exact PGA with criterion="residual" (solved differently: CG over
    # reference points vs trust regions over unit directions)
    from riemlearn.stats.pga import PGA

    m = Sphere(4)
    X = m.project_point(torch.tensor([1.0, 0, 0, 0], dtype=F64)
                        + torch.randn(40, 4, generator=gen, dtype=F64) * torch.tensor([0, 0.9, 0.5, 0.3],
                                                                                       dtype=F64))
    bsa = BSA(2, m).fit(X)
    pga = PGA(2, m, criterion="residual").fit(X)
    torch.testing.assert_close(bsa.unexplained_variance_[1:], pga.residual_variance_, rtol=1e-7, atol=1e-12)
    torch.testing.assert_close(bsa.references_[0], pga.mean_)
