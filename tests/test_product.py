"""Product manifolds: layout helpers, per-factor operations, combined metric, validation."""

from __future__ import annotations

import pickle

import pytest
import torch
from riemlearn.manifolds.euclidean import Euclidean
from riemlearn.manifolds.grassmann import Grassmann
from riemlearn.manifolds.product import Product
from riemlearn.manifolds.sphere import Sphere
from riemlearn.manifolds.stiefel import Stiefel

DT = torch.float64


def _make():
    return Product(Sphere(3), Euclidean(2), Stiefel(4, 2))


def test_layout_round_trip(gen):
    m = _make()
    assert m.shape == (13,)
    x = m.random_point(2, 3, generator=gen, dtype=DT)
    assert x.shape == (2, 3, 13)
    parts = m.split(x)
    assert [tuple(p.shape) for p in parts] == [(2, 3, 3), (2, 3, 2), (2, 3, 4, 2)]
    assert torch.equal(m.combine(parts), x)
    for f, p in zip(m.factors, parts, strict=True):
        assert bool(f.belongs(p).all())
    with pytest.raises(ValueError, match="factors"):
        m.combine(parts[:2])


def test_operations_are_per_factor(gen):
    m = _make()
    x = m.random_point(4, generator=gen, dtype=DT)
    u = 0.5 * m.random_tangent(x, generator=gen)
    v = m.random_tangent(x, generator=gen)
    y = m.exp(x, u)
    xs, us, vs, ys = m.split(x), m.split(u), m.split(v), m.split(y)
    for f, xi, ui, yi in zip(m.factors, xs, us, ys, strict=True):
        assert torch.allclose(yi, f.exp(xi, ui), atol=1e-14)
    quads = zip(m.factors, xs, us, vs, strict=True)
    assert torch.allclose(m.inner(x, u, v), sum(f.inner(a, b, c) for f, a, b, c in quads))
    d = m.dist(x, y)
    ref = torch.sqrt(sum(f.dist(a, b) ** 2 for f, a, b in zip(m.factors, xs, ys, strict=True)))
    assert torch.allclose(d, ref, atol=1e-12) and torch.allclose(d, m.norm(x, u), atol=1e-10)
    assert torch.allclose(m.log(x, y), u, atol=1e-10)
    r = m.retract(x, u)
    assert torch.allclose(m.split(r)[2], m.factors[2].retract(xs[2], us[2]))
    eg = torch.randn(x.shape, generator=gen, dtype=DT)
    eh = torch.randn(x.shape, generator=gen, dtype=DT)
    rh = m.ehess_to_rhess(x, eg, eh, u)
    egs, ehs = m.split(eg), m.split(eh)
    for f, p, a, b, c, d_ in zip(m.factors, m.split(rh), xs, egs, ehs, us, strict=True):
        assert torch.allclose(p, f.ehess_to_rhess(a, b, c, d_))


def test_check_point_names_factor(gen):
    m = _make()
    x = m.random_point(3, generator=gen, dtype=DT)
    m.check_point(x)
    parts = m.split(x)
    parts[2] = 2 * parts[2]
    with pytest.raises(ValueError, match=r"off Product.*factor 2 \(Stiefel"):
        m.check_point(m.combine(parts))
    with pytest.raises(ValueError, match="shape"):
        m.check_point(torch.zeros(3, 12, dtype=DT))


def test_construction_and_unsupported():
    with pytest.raises(ValueError, match="fixed point shape"):
        Product(Sphere(3), Euclidean(ndim=1))
    with pytest.raises(ValueError, match="Manifold"):
        Product(Sphere(3), 3)
    m = _make()
    assert m == _make() and hash(m) == hash(_make()) and m != Product(Sphere(3), Euclidean(2))
    assert pickle.loads(pickle.dumps(m)) == m
    assert "Sphere(3)" in repr(m)
    emb = Product(Sphere(3), Stiefel(4, 2, "embedded"))
    x = emb.random_point(generator=torch.Generator().manual_seed(0), dtype=DT)
    with pytest.raises(NotImplementedError):
        emb.log(x, x)
    assert not m.has_gyro
    with pytest.raises(NotImplementedError):
        m.gyro_add(torch.zeros(13, dtype=DT), torch.zeros(13, dtype=DT))


def test_gyro_when_every_factor_has_one(gen):
    m = Product(Euclidean(2), Euclidean(3))
    assert m.has_gyro
    x = torch.randn(5, generator=gen, dtype=DT)
    y = torch.randn(5, generator=gen, dtype=DT)
    assert torch.allclose(m.gyro_add(x, y), x + y)
    assert torch.allclose(m.gyro_inv(x), -x)
    assert torch.equal(m.identity(dtype=DT), torch.zeros(5, dtype=DT))


def test_grassmann_factor_batches(gen):
    m = Product(Grassmann(4, 2), Sphere(2))
    x = m.random_point(3, generator=gen, dtype=DT)
    y = m.random_point(3, generator=gen, dtype=DT)
    for i in range(3):
        assert torch.allclose(m.dist(x[i], y[i]), m.dist(x, y)[i])
