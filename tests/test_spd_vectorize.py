"""vech/unvech and the tangent-space mapping of SPD data."""

from __future__ import annotations

import warnings

import pytest
import torch
from riemlearn.manifolds.spd import SPD
from riemlearn.manifolds.spd_affine_invariant import AffineInvariant
from riemlearn.manifolds.spd_log_cholesky import LogCholesky
from riemlearn.manifolds.spd_log_euclidean import LogEuclidean
from riemlearn.manifolds.spd_vectorize import tangent_space, untangent_space, unvech, vech

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from pyriemann.geometry.tangentspace import tangent_space as pr_tangent_space
    from pyriemann.geometry.tangentspace import upper as pr_upper

METRICS = [
    AffineInvariant(),
    LogEuclidean(),
    LogCholesky(),
    AffineInvariant(theta=0.5),
    LogEuclidean(alpha=2.0, beta=0.3),
    AffineInvariant(alpha=0.5, beta=-0.1),
    LogCholesky(theta=0.5),
]


def _sym(gen, *shape):
    a = torch.randn(*shape, generator=gen, dtype=torch.float64)
    return (a + a.mT) / 2


def test_vech_isometry_and_inverse(gen):
    a, b = _sym(gen, 5, 4, 4), _sym(gen, 5, 4, 4)
    va, vb = vech(a), vech(b)
    assert va.shape == (5, 10)
    assert torch.allclose((va * vb).sum(-1), (a * b).sum((-2, -1)), atol=1e-12)
    assert torch.allclose(unvech(va), a, atol=1e-14)
    t = torch.randn(3, 10, generator=gen, dtype=torch.float64)
    assert torch.allclose(vech(unvech(t)), t, atol=1e-14)


def test_vech_matches_pyriemann_upper(gen):
    a = _sym(gen, 3, 5, 5)
    assert torch.allclose(vech(a), torch.from_numpy(pr_upper(a.numpy())), atol=1e-14)


def test_vech_bad_input():
    with pytest.raises(ValueError, match="n, n"):
        vech(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="n\\(n\\+1\\)/2"):
        unvech(torch.zeros(4))


@pytest.mark.parametrize("metric", METRICS, ids=repr)
def test_tangent_space_isometric_roundtrip(metric, gen):
    m = SPD(3, metric)
    x = m.random_point(4, generator=gen, dtype=torch.float64)
    ref = m.random_point(generator=gen, dtype=torch.float64)
    t = tangent_space(x, ref, metric)
    assert t.shape == (4, 6)
    # isometry: Euclidean norm of the coordinates = geodesic distance from ref
    assert torch.allclose(t.norm(dim=-1), m.dist(ref.expand_as(x), x), atol=1e-10)
    assert torch.allclose(untangent_space(t, ref, metric), x, atol=1e-10)


@pytest.mark.parametrize("name,pr", [("affine_invariant", "riemann"), ("log_euclidean", "logeuclid")])
def test_tangent_space_matches_pyriemann(name, pr, gen):
    m = SPD(4)
    x = m.random_point(5, generator=gen, dtype=torch.float64)
    ref = m.random_point(generator=gen, dtype=torch.float64)
    ours = tangent_space(x, ref, name)
    if pr == "riemann":
        theirs = pr_tangent_space(x.numpy(), ref.numpy(), metric="riemann")
    else:  # pyriemann's LE log map at ref is not whitened: compare log x − log ref
        from riemlearn.manifolds.spectral import logm

        theirs = pr_upper((logm(x) - logm(ref)).numpy())
    assert torch.allclose(ours, torch.as_tensor(theirs), atol=1e-10)
