"""SPD layers: shapes, dtypes, SPD outputs, gradients (incl. ties), Stiefel weights, errors."""

from __future__ import annotations

import pytest
import torch
from riemlearn.layers import BiMap, CovariancePool, ExpEig, LogEig, PowEig, ReEig, Vech, vech
from riemlearn.manifolds import SPD, Stiefel
from riemlearn.optim import RiemannianSGD


def _spd(gen, *batch, n=5, dtype=torch.float64):
    return SPD(n).random_point(*batch, generator=gen, dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_bimap_output_is_spd_and_weight_on_stiefel(gen, dtype):
    layer = BiMap(6, 3, dtype=dtype, generator=gen)
    assert bool(Stiefel(6, 3).belongs(layer.weight.data).all())
    assert layer.weight.manifold == Stiefel(6, 3)
    x = _spd(gen, 4, n=6, dtype=dtype)
    y = layer(x)
    assert y.shape == (4, 3, 3) and y.dtype == dtype
    assert bool(SPD(3).belongs(y).all())
    w = layer.weight.data[0, 0]
    torch.testing.assert_close(y, w.T @ x @ w)


def test_bimap_channels_sum(gen):
    layer = BiMap(5, 2, in_channels=3, out_channels=2, generator=gen, dtype=torch.float64)
    x = _spd(gen, 4, 3, n=5)
    y = layer(x)
    assert y.shape == (4, 2, 2, 2)
    w = layer.weight.data
    ref = sum(w[1, c].T @ x[:, c] @ w[1, c] for c in range(3))
    torch.testing.assert_close(y[:, 1], ref)


def test_bimap_errors():
    with pytest.raises(ValueError, match="out_features"):
        BiMap(3, 4)
    layer = BiMap(4, 2, in_channels=2)
    with pytest.raises(ValueError, match="channels"):
        layer(torch.eye(4).expand(3, 3, 4, 4))
    with pytest.raises(ValueError, match="size"):
        BiMap(4, 2)(torch.eye(5))


def test_reeig_logeig_expeig_poweig(gen):
    x = _spd(gen, 3, n=4)
    w, v = torch.linalg.eigh(x)
    eps = float(w.median())
    torch.testing.assert_close(ReEig(eps)(x), v @ torch.diag_embed(w.clamp_min(eps)) @ v.mT)
    torch.testing.assert_close(ExpEig()(LogEig()(x)), x)
    torch.testing.assert_close(PowEig(0.5)(x) @ PowEig(0.5)(x), x)
    assert LogEig(vectorize=True)(x).shape == (3, 10)


def test_vech_is_isometry(gen):
    s = torch.randn(3, 4, 4, generator=gen, dtype=torch.float64)
    s = s + s.mT
    torch.testing.assert_close(vech(s).norm(dim=-1), torch.linalg.matrix_norm(s))
    torch.testing.assert_close(Vech()(s), vech(s))


def test_gradients_finite_at_ties_and_gradcheck(gen):
    x = torch.eye(4, dtype=torch.float64).repeat(2, 1, 1).requires_grad_(True)
    net = torch.nn.Sequential(BiMap(4, 3, dtype=torch.float64, generator=gen), ReEig(0.5), LogEig())
    net(x).pow(2).sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(net[0].weight.grad).all()
    xs = _spd(gen, 2, n=4).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: net(a), (xs,))


def test_covariance_pool(gen):
    x = torch.randn(2, 3, 4, 50, generator=gen, dtype=torch.float64)
    c = CovariancePool(shrinkage=0.1)(x)
    assert c.shape == (2, 3, 4, 4) and bool(SPD(4).belongs(c).all())
    xc = x - x.mean(-1, keepdim=True)
    s = xc @ xc.mT / 49
    tr = s.diagonal(dim1=-2, dim2=-1).sum(-1)[..., None, None] / 4
    torch.testing.assert_close(c, 0.9 * s + 0.1 * tr * torch.eye(4, dtype=torch.float64))
    with pytest.raises(ValueError):
        CovariancePool(shrinkage=2.0)


def test_bimap_trains_and_stays_on_stiefel(gen):
    layer = BiMap(6, 2, dtype=torch.float64, generator=gen)
    opt = RiemannianSGD(layer.parameters(), lr=0.05)
    x = _spd(gen, 8, n=6)
    target = torch.eye(2, dtype=torch.float64)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = (LogEig()(layer(x)) - target).pow(2).sum()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]
    assert bool(Stiefel(6, 2).belongs(layer.weight.data).all())
