"""GrNet layers (FRMap, ReOrth, OrthMap, ProjMap, ProjPool) and the GrNet model."""

from __future__ import annotations

import pytest
import torch
from riemlearn.layers import FRMap, GrNet, OrthMap, ProjMap, ProjPool, ReOrth
from riemlearn.layers.grassmann import top_eigenvectors
from riemlearn.manifolds import Grassmann, Stiefel
from riemlearn.optim import ManifoldParameter, RiemannianAdam

F64 = torch.float64


def _proj(x):
    return x @ x.mT


@pytest.mark.parametrize("dtype", [F64, torch.float32])
def test_frmap_reorth_projmap_shapes(gen, dtype):
    x = Grassmann(7, 2).random_point(5, generator=gen, dtype=dtype)
    fr = FRMap(7, 4, out_channels=3, dtype=dtype, generator=gen)
    assert isinstance(fr.weight, ManifoldParameter) and fr.weight.manifold == Stiefel(7, 4)
    assert bool(Stiefel(7, 4).belongs(fr.weight.data).all())
    y = fr(x)
    assert y.shape == (5, 3, 4, 2) and y.dtype == dtype
    torch.testing.assert_close(y[:, 1], fr.weight.data[1, 0].T @ x)
    q = ReOrth()(y)
    assert bool(Grassmann(4, 2).belongs(q).all())
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    torch.testing.assert_close(_proj(q), y @ torch.linalg.pinv(y), atol=tol, rtol=0)  # same span
    r = q.mT @ y
    assert bool((torch.diagonal(r, dim1=-2, dim2=-1) > 0).all())
    p = ProjMap()(q)
    assert p.shape == (5, 3, 4, 4)
    # multi-channel input: channels summed
    fr2 = FRMap(4, 3, in_channels=3, out_channels=2, dtype=dtype, generator=gen)
    z = fr2(q)
    torch.testing.assert_close(z[:, 0], sum(fr2.weight.data[0, c].T @ q[:, c] for c in range(3)))
    with pytest.raises(ValueError, match="in_features"):
        FRMap(3, 4)
    with pytest.raises(ValueError, match="rows"):
        fr(torch.zeros(2, 6, 2, dtype=dtype))


def test_projpool(gen):
    x = torch.randn(2, 4, 3, 3, generator=gen, dtype=F64)
    out = ProjPool(2)(x)
    assert out.shape == (2, 2, 3, 3)
    torch.testing.assert_close(out[:, 1], (x[:, 2] + x[:, 3]) / 2)
    with pytest.raises(ValueError, match="divide"):
        ProjPool(3)(x)


def test_orthmap_top_eigenvectors(gen):
    a = torch.randn(4, 6, 6, generator=gen, dtype=F64)
    a = a + a.mT
    u = OrthMap(2)(a)
    w, v = torch.linalg.eigh(a)
    torch.testing.assert_close(_proj(u), _proj(v[..., -2:]))
    torch.testing.assert_close(a @ u, u * w[..., [-1, -2]].unsqueeze(-2))  # descending order


def test_orthmap_backward_is_subspace_gradient(gen):
    # gradcheck through a basis-invariant loss (the GrNet head ProjMap + smooth function)
    a = torch.randn(2, 5, 5, generator=gen, dtype=F64)
    a = (a + a.mT).requires_grad_(True)
    t = torch.randn(5, 5, generator=gen, dtype=F64)
    assert torch.autograd.gradcheck(lambda s: (ProjMap()(top_eigenvectors(s, 2)) * t).sum().sin(), (a,))


def test_orthmap_finite_at_ties(gen):
    # input = average of projection matrices with tied top eigenvalues (ties inside the top block)
    x = Grassmann(6, 2).random_point(generator=gen, dtype=F64)
    a = _proj(x).requires_grad_(True)  # eigenvalues 1, 1, 0, 0, 0, 0
    loss = (ProjMap()(OrthMap(2)(a)) * torch.randn(6, 6, generator=gen, dtype=F64)).sum()
    loss.backward()
    assert bool(torch.isfinite(a.grad).all())
    # tie across the cut: not differentiable, but the backward stays finite
    b = torch.diag(torch.tensor([3.0, 2.0, 2.0, 1.0], dtype=F64)).requires_grad_(True)
    OrthMap(2)(b).sum().backward()
    assert bool(torch.isfinite(b.grad).all())


def _subspace_data(gen, centres, n_per, sigma):
    man = Grassmann(*centres.shape[-2:])
    y = torch.arange(2 * n_per) % 2
    c = centres[y]
    u = man.project_tangent(c, torch.randn(c.shape, generator=gen, dtype=c.dtype)) * sigma
    return man.exp(c, u), y


def test_grnet_shapes_state_dict_and_errors(gen):
    net = GrNet(8, 2, 3, dims=(6, 4), channels=4, pool=2, dtype=F64, generator=gen)
    x = Grassmann(8, 2).random_point(5, generator=gen, dtype=F64)
    out = net(x)
    assert out.shape == (5, 3)
    net2 = GrNet(8, 2, 3, dims=(6, 4), channels=4, pool=2, dtype=F64)
    net2.load_state_dict(net.state_dict())
    torch.testing.assert_close(net2(x), out)
    assert isinstance(net2.features[0].weight, ManifoldParameter)
    with pytest.raises(ValueError, match="dims"):
        GrNet(8, 2, 3, dims=(9,))
    with pytest.raises(ValueError, match="shape"):
        net(x[..., :1])


def test_grnet_gradcheck(gen):
    net = GrNet(5, 2, 2, dims=(4,), channels=2, pool=2, dtype=F64, generator=gen)
    x = Grassmann(5, 2).random_point(2, generator=gen, dtype=F64).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: net(a), (x,))


@pytest.mark.parametrize("dtype", [F64, torch.float32])
def test_grnet_learns(dtype):
    gen = torch.Generator().manual_seed(0)
    centres = Grassmann(10, 3).random_point(2, generator=gen, dtype=dtype)
    x, y = _subspace_data(gen, centres, 32, 0.08)
    xt, yt = _subspace_data(gen, centres, 32, 0.08)
    net = GrNet(10, 3, 2, dims=(8,), channels=4, pool=2, dtype=dtype, generator=gen)
    opt = RiemannianAdam(net.parameters(), lr=0.02)
    for _ in range(30):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        assert bool(torch.isfinite(loss))
    assert bool(Stiefel(10, 8).belongs(net.features[0].weight.data).all())
    with torch.no_grad():
        acc = (net(xt).argmax(-1) == yt).double().mean().item()
    assert acc >= 0.85, acc


@pytest.mark.cuda
def test_grnet_cuda():
    gen = torch.Generator().manual_seed(0)
    net = GrNet(8, 2, 2, dims=(6,), dtype=torch.float32, generator=gen).cuda()
    x = Grassmann(8, 2).random_point(4, generator=gen, dtype=torch.float32).cuda()
    out = net(x)
    out.sum().backward()
    assert out.device.type == "cuda" and bool(torch.isfinite(net.features[0].weight.grad).all())
