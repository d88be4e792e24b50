"""Gyrogroup structures of the SPD metrics (Nguyen & Yang 2023): gyroassociativity and more."""

from __future__ import annotations

import pytest
import torch
from riemlearn.manifolds.spd import SPD
from riemlearn.manifolds.spd_affine_invariant import AffineInvariant
from riemlearn.manifolds.spd_log_cholesky import LogCholesky
from riemlearn.manifolds.spd_log_euclidean import LogEuclidean
from riemlearn.manifolds.spectral import logm, sqrtm

F64 = torch.float64
METRICS = [
    AffineInvariant(),
    LogEuclidean(),
    LogCholesky(),
    AffineInvariant(theta=0.5),
    LogCholesky(theta=0.5),
    LogEuclidean(alpha=2.0, beta=0.3),
]


def _gyr(m, a, b, c):
    """gyr[a, b] c = ⊖(a ⊕ b) ⊕ (a ⊕ (b ⊕ c))."""
    return m.gyro_add(m.gyro_inv(m.gyro_add(a, b)), m.gyro_add(a, m.gyro_add(b, c)))


@pytest.mark.parametrize("metric", METRICS, ids=repr)
def test_gyrogroup_axioms(metric, gen):
    m = SPD(3, metric)
    a, b, c = (m.random_point(4, generator=gen, dtype=F64) for _ in range(3))
    e = m.identity(4, dtype=F64)
    tol = dict(rtol=1e-9, atol=1e-9)
    assert torch.allclose(m.gyro_add(e, a), a, **tol)  # left identity
    assert torch.allclose(m.gyro_add(m.gyro_inv(a), a), e, **tol)  # left inverse
    assert torch.allclose(m.gyro_add(m.gyro_inv(a), m.gyro_add(a, b)), b, **tol)  # left cancellation
    # gyroassociativity: a ⊕ (b ⊕ c) = (a ⊕ b) ⊕ gyr[a, b] c
    assert torch.allclose(
        m.gyro_add(a, m.gyro_add(b, c)), m.gyro_add(m.gyro_add(a, b), _gyr(m, a, b, c)), **tol
    )
    # the gyration is an automorphism: gyr[a, b](c ⊕ d) = gyr[a, b]c ⊕ gyr[a, b]d
    d = m.random_point(4, generator=gen, dtype=F64)
    lhs = _gyr(m, a, b, m.gyro_add(c, d))
    rhs = m.gyro_add(_gyr(m, a, b, c), _gyr(m, a, b, d))
    assert torch.allclose(lhs, rhs, rtol=1e-8, atol=1e-8)
    # scalar multiplication: 1 ⊙ a = a, 2 ⊙ a = a ⊕ a, (r + s) ⊙ a = r ⊙ a ⊕ s ⊙ a
    assert torch.allclose(m.gyro_scalar(1.0, a), a, **tol)
    assert torch.allclose(m.gyro_scalar(2.0, a), m.gyro_add(a, a), **tol)
    r = torch.tensor([0.3, -1.2, 2.0, 0.5], dtype=F64)
    assert torch.allclose(
        m.gyro_scalar(r + 0.7, a), m.gyro_add(m.gyro_scalar(r, a), m.gyro_scalar(0.7, a)), **tol
    )
    # gyro inner product and distance
    assert torch.allclose(m.gyro_inner(a, a), m.dist(e, a) ** 2, **tol)
    assert torch.allclose(m.metric.gyro_norm(a) ** 2, m.gyro_inner(a, a), **tol)
    assert torch.allclose(m.gyro_dist(a, b), m.metric.gyro_norm(m.gyro_add(m.gyro_inv(a), b)), **tol)
    # left gyrotranslation invariance of the gyro distance
    assert torch.allclose(m.gyro_dist(m.gyro_add(c, a), m.gyro_add(c, b)), m.gyro_dist(a, b), rtol=1e-8)


@pytest.mark.parametrize("metric", [AffineInvariant(), LogEuclidean(), LogCholesky()], ids=repr)
def test_gyro_distance_equals_geodesic_distance(metric, gen):
    """For AI, LE and LC, ‖⊖P ⊕ Q‖ is the Riemannian distance (Nguyen & Yang 2023)."""
    m = SPD(3, metric)
    a, b = (m.random_point(5, generator=gen, dtype=F64) for _ in range(2))
    assert torch.allclose(m.gyro_dist(a, b), m.dist(a, b), rtol=1e-9)


def test_gyro_closed_forms(gen):
    m = SPD(3)
    a, b = (m.random_point(2, generator=gen, dtype=F64) for _ in range(2))
    s = sqrtm(a)
    assert torch.allclose(SPD(3, AffineInvariant()).gyro_add(a, b), s @ b @ s, atol=1e-12)
    assert torch.allclose(SPD(3, AffineInvariant()).gyro_inv(a), torch.linalg.inv(a), atol=1e-12)
    le = SPD(3, LogEuclidean())
    assert torch.allclose(logm(le.gyro_add(a, b)), logm(a) + logm(b), atol=1e-12)
    lc = SPD(3, LogCholesky())
    la, lb = torch.linalg.cholesky(a), torch.linalg.cholesky(b)
    k = (
        torch.tril(la, -1)
        + torch.tril(lb, -1)
        + torch.diag_embed(la.diagonal(dim1=-2, dim2=-1) * lb.diagonal(dim1=-2, dim2=-1))
    )
    assert torch.allclose(lc.gyro_add(a, b), k @ k.mT, atol=1e-12)
    assert torch.allclose(SPD(3, AffineInvariant()).gyro_scalar(0.5, a), s, atol=1e-12)
