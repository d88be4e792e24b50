"""SPD manifold: metric resolution, validation messages, random points, projections."""

from __future__ import annotations

import math
import pickle

import pytest
import torch
from riemlearn.manifolds.spd import SPD, resolve_spd_metric
from riemlearn.manifolds.spd_affine_invariant import AffineInvariant
from riemlearn.manifolds.spd_log_cholesky import LogCholesky
from riemlearn.manifolds.spd_log_euclidean import LogEuclidean

F64 = torch.float64


@pytest.mark.parametrize(
    "name,cls",
    [("affine_invariant", AffineInvariant), ("log_euclidean", LogEuclidean), ("log_cholesky", LogCholesky)],
)
def test_metric_names_resolve(name, cls):
    m = SPD(3, metric=name)
    assert type(m.metric) is cls and m.metric.ndim == 2
    assert SPD(3, cls()) == m
    assert hash(SPD(3, cls())) == hash(m)


def test_bures_wasserstein_resolved_lazily():
    bw = pytest.importorskip("riemlearn.manifolds.spd_bures_wasserstein")
    assert isinstance(resolve_spd_metric("bures_wasserstein"), bw.BuresWasserstein)


def test_bad_metric_and_parameters():
    with pytest.raises(ValueError, match="unknown SPD metric"):
        SPD(3, metric="riemann")
    with pytest.raises(ValueError, match="theta"):
        AffineInvariant(theta=0.0)
    with pytest.raises(ValueError, match="alpha"):
        LogEuclidean(alpha=-1.0)
    with pytest.raises(ValueError, match="beta"):
        AffineInvariant(beta=-1.0)  # beta <= -alpha is invalid for every n
    with pytest.raises(ValueError, match="beta must be > -alpha/n"):
        SPD(4, AffineInvariant(alpha=1.0, beta=-0.3))  # -0.3 <= -1/4
    SPD(3, AffineInvariant(alpha=1.0, beta=-0.3))  # fine for n = 3
    m = SPD(metric=LogEuclidean(beta=-0.3))
    x = m.identity(n=4, dtype=F64)
    with pytest.raises(ValueError, match="beta"):
        m.inner(x, x, x)
    with pytest.raises(ValueError, match="alpha, beta"):
        LogCholesky.__mro__[1].__init__(LogCholesky(), alpha=2.0)  # LC has no (alpha, beta) family


def test_metrics_are_value_objects():
    a = AffineInvariant(theta=0.5, alpha=2.0, beta=0.1)
    assert a == AffineInvariant(theta=0.5, alpha=2.0, beta=0.1) and a != AffineInvariant()
    assert pickle.loads(pickle.dumps(a)) == a
    m = SPD(3, LogCholesky(theta=0.5))
    assert pickle.loads(pickle.dumps(m)) == m
    assert "theta=0.5" in repr(m)


def test_check_point_messages(gen):
    m = SPD(3)
    x = m.random_point(2, generator=gen, dtype=F64)
    m.check_point(x)
    asym = x.clone()
    asym[1, 0, 2] += 0.5
    with pytest.raises(ValueError, match=r"not symmetric.*= 0\.\d+.*batch index \(1,\)"):
        m.check_point(asym)
    indef = x.clone()
    indef[0] = torch.diag(torch.tensor([1.0, -0.25, 2.0], dtype=F64))
    with pytest.raises(ValueError, match=r"not positive definite, smallest eigenvalue = -0\.25"):
        m.check_point(indef)
    semidef = torch.diag(torch.tensor([1.0, 0.0, 2.0], dtype=F64))
    with pytest.raises(ValueError, match="smallest eigenvalue = 0"):
        m.check_point(semidef)
    bad = x.clone()
    bad[0, 1, 1] = math.inf
    with pytest.raises(ValueError, match="NaN/inf"):
        m.check_point(bad)
    with pytest.raises(ValueError, match="not square"):
        SPD().check_point(torch.ones(2, 3, dtype=F64))
    with pytest.raises(ValueError, match="shape"):
        m.check_point(torch.eye(4, dtype=F64))
    with pytest.raises(ValueError, match="dimensions"):
        m.check_point(torch.ones(3, dtype=F64))
    assert m.belongs(x).all()
    assert m.belongs(indef).tolist() == [False, True]


def test_random_point_condition_number(gen):
    m = SPD(5)
    for cond in (1.0, 1e3, 1e12):
        x = m.random_point(3, generator=gen, dtype=F64, cond=cond)
        w = torch.linalg.eigvalsh(x)
        assert torch.allclose(w[..., -1] / w[..., 0], torch.full((3,), cond, dtype=F64), rtol=1e-3)
        assert torch.allclose(x, x.mT)
    x = m.random_point(2, 3, generator=gen, dtype=torch.float32)
    assert x.shape == (2, 3, 5, 5) and x.dtype == torch.float32 and m.belongs(x).all()
    a = SPD(3).random_point(generator=torch.Generator().manual_seed(3), dtype=F64)
    b = SPD(3).random_point(generator=torch.Generator().manual_seed(3), dtype=F64)
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="n="):
        SPD().random_point(2)
    assert SPD().random_point(2, n=4, generator=gen).shape == (2, 4, 4)


def test_identity_and_projections(gen):
    m = SPD(3)
    e = m.identity(2, dtype=F64)
    assert e.shape == (2, 3, 3) and torch.equal(e[1], torch.eye(3, dtype=F64))
    assert torch.equal(m.metric.identity(n=3, dtype=F64), torch.eye(3, dtype=F64))
    a = torch.randn(4, 3, 3, generator=gen, dtype=F64)
    p = m.project_point(a)
    assert m.belongs(p).all()
    assert torch.linalg.eigvalsh(p).min() >= math.sqrt(torch.finfo(F64).eps) - 1e-14
    assert torch.allclose(m.project_point(p), p, atol=1e-12)
    u = m.project_tangent(p, a)
    assert torch.allclose(u, (a + a.mT) / 2) and m.is_tangent(p, u).all()
    assert not m.is_tangent(p, a).any()
