"""Hyperbolic layers: Poincaré linear/MLR (HNN++, Ganea), Lorentz linear, Poincaré GyroBN, classifier."""

from __future__ import annotations

import math

import pytest
import torch
from riemlearn.layers import (
    HyperbolicClassifier,
    LorentzLinear,
    PoincareGyroBN,
    PoincareLinear,
    PoincareMLR,
)
from riemlearn.layers.hyperbolic import hnnpp_logits
from riemlearn.manifolds import Lorentz, PoincareBall, mobius, poincare
from riemlearn.optim import ManifoldParameter, RiemannianAdam
from riemlearn.stats import frechet_mean

F64 = torch.float64


def _ball(gen, *batch, n=3, c=1.0, scale=0.6, dtype=F64):
    return PoincareBall(c, n=n).random_point(*batch, generator=gen, dtype=dtype) * scale


def _mean(x, c):
    """Fréchet mean at curvature c (independent route: the PoincareBall(c) manifold itself)."""
    return frechet_mean(x, PoincareBall(float(c)), tol=1e-13, max_iter=500)


def test_hnnpp_logit_is_scaled_signed_distance(gen):
    # v_k(x) = ‖z‖ · (signed distance to the gyroplane) · 2: compare with the Ganea form at the
    # gyroplane's closest point p = tanh(√c r) z/‖z‖ /√c with normal z (Shimizu et al. eq. 6-9).
    c = 0.8
    x = _ball(gen, 7, c=c)
    z = torch.randn(3, 2, generator=gen, dtype=F64)
    r = torch.tensor([0.3, -0.5], dtype=F64)
    v = hnnpp_logits(x, z, r, c)
    zn = z.norm(dim=0)
    p = (torch.tanh(math.sqrt(c) * r) / math.sqrt(c) * (z / zn)).T  # (K, n)
    d = mobius.dist_to_gyroplane(x.unsqueeze(-2), p, z.T, c)
    torch.testing.assert_close(v, 2 * zn * d)


@pytest.mark.parametrize("dtype", [F64, torch.float32])
@pytest.mark.parametrize("learn", [False, True])
def test_poincare_linear_and_mlr_shapes(gen, dtype, learn):
    x = _ball(gen, 5, n=4, dtype=dtype)
    lin = PoincareLinear(4, 3, c=0.5, learn_curvature=learn, dtype=dtype, generator=gen)
    y = lin(x)
    assert y.shape == (5, 3) and y.dtype == dtype
    assert bool((0.5 * (y * y).sum(-1) < 1).all())
    for form in ("hnn++", "ganea"):
        mlr = PoincareMLR(3, 2, c=0.5, learn_curvature=learn, form=form, dtype=dtype, generator=gen)
        out = mlr(y)
        assert out.shape == (5, 2) and out.dtype == dtype and bool(torch.isfinite(out).all())
    if not learn:
        assert isinstance(mlr.p, ManifoldParameter) and mlr.p.manifold == PoincareBall(0.5, n=3)


def test_poincare_linear_output_distances_equal_logits(gen):
    # HNN++ FC: the output's signed distance to the k-th coordinate gyroplane through the origin
    # is v_k(x); the unit-normal logit of y against it is twice that distance.
    c = 1.3
    lin = PoincareLinear(3, 2, c=c, dtype=F64, generator=gen)
    with torch.no_grad():
        lin.r.copy_(torch.tensor([0.2, -0.1]))
    x = _ball(gen, 6, c=c)
    v = hnnpp_logits(x, lin.z, lin.r, c)
    y = lin(x)
    vy = hnnpp_logits(y, torch.eye(2, dtype=F64), torch.zeros(2, dtype=F64), c)
    torch.testing.assert_close(vy, 2 * v)


def test_gradcheck_hyperbolic_layers(gen):
    x = _ball(gen, 3, n=3, scale=0.5).requires_grad_(True)
    for mod in (PoincareLinear(3, 2, c=0.7, learn_curvature=True, dtype=F64, generator=gen),
                PoincareMLR(3, 2, c=0.7, learn_curvature=True, dtype=F64, generator=gen),
                PoincareMLR(3, 2, c=0.7, form="ganea", dtype=F64, generator=gen)):
        assert torch.autograd.gradcheck(lambda a, m=mod: m(a), (x,))
    lor = LorentzLinear(3, 2, c=0.7, learn_curvature=True, dtype=F64, generator=gen)
    xl = Lorentz(0.7, n=3).random_point(3, generator=gen, dtype=F64).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: lor(a), (xl,))


@pytest.mark.parametrize("normalize", [True, False])
def test_lorentz_linear_on_hyperboloid(gen, normalize):
    c = 0.6
    layer = LorentzLinear(4, 3, c=c, normalize=normalize, dtype=F64, generator=gen)
    x = Lorentz(c, n=4).random_point(8, generator=gen, dtype=F64)
    y = layer(x)
    assert y.shape == (8, 4)
    torch.testing.assert_close(-y[:, 0] ** 2 + (y[:, 1:] ** 2).sum(-1), torch.full((8,), -1 / c, dtype=F64))
    assert bool(Lorentz(c, n=3).belongs(y).all())
    with pytest.raises(ValueError, match="shape"):
        layer(torch.zeros(2, 4, dtype=F64))


def test_learnable_curvature_value_is_used_and_gets_finite_grad(gen):
    c0 = 0.37
    mlr = PoincareMLR(3, 2, c=c0, learn_curvature=True, dtype=F64, generator=gen)
    assert mlr.c.item() == c0  # exact initial value, no transform
    x = _ball(gen, 4, c=c0)
    torch.testing.assert_close(mlr(x), hnnpp_logits(x, mlr.z, mlr.r, c0))
    with torch.no_grad():
        mlr.c.fill_(0.9)
    torch.testing.assert_close(mlr(x), hnnpp_logits(x, mlr.z, mlr.r, 0.9))
    net = HyperbolicClassifier(3, 2, hidden=(4,), c=c0, learn_curvature=True, dtype=F64, generator=gen)
    assert net.c is net.mlr.c and net.c is net.body[0].c  # one shared curvature
    loss = net(torch.randn(6, 3, generator=gen, dtype=F64)).logsumexp(-1).sum()
    loss.backward()
    assert net.c.grad is not None and bool(torch.isfinite(net.c.grad)) and float(net.c.grad) != 0.0
    lor = LorentzLinear(3, 2, c=c0, learn_curvature=True, dtype=F64, generator=gen)
    with torch.no_grad():
        lor.c.fill_(0.9)
    yl = lor(Lorentz(0.9, n=3).random_point(5, generator=gen, dtype=F64))
    minkowski_sq = -yl[:, 0] ** 2 + (yl[:, 1:] ** 2).sum(-1)
    torch.testing.assert_close(minkowski_sq, torch.full((5,), -1 / 0.9, dtype=F64))
    lin = PoincareLinear(3, 2, c=c0, learn_curvature=True, dtype=F64, generator=gen)
    for mod, y_out in ((lor, yl), (lin, lin(x))):
        y_out.pow(2).sum().backward()
        assert bool(torch.isfinite(mod.c.grad)) and float(mod.c.grad) != 0.0
    with torch.no_grad():
        mlr.c.fill_(-0.1)
    with pytest.raises(ValueError, match="positive"):
        mlr(x)
    with pytest.raises(ValueError, match="positive"):
        PoincareLinear(3, 2, c=0.0)


@pytest.mark.parametrize("learn", [False, True])
def test_gyrobn_statistics(gen, learn):
    c = 0.7
    bn = PoincareGyroBN(3, c=c, learn_curvature=learn, dtype=F64)
    b_target = torch.tensor([0.3, -0.2, 0.4], dtype=F64)
    with torch.no_grad():
        bn.bias.copy_(mobius.logmap0(b_target, c) if learn else b_target)
        bn.scale.fill_(0.8)
    centre = torch.tensor([0.4, 0.1, -0.3], dtype=F64)
    x = poincare.exp(centre, 0.3 * torch.randn(16, 3, generator=gen, dtype=F64), c)
    y = bn(x)
    # Output Fréchet mean = bias (1e-8), dispersion = scale² σ²/(σ² + eps).
    torch.testing.assert_close(_mean(y, c), b_target, atol=1e-8, rtol=0)
    mu = _mean(x, c)
    var = (poincare.dist(mu, x, c) ** 2).mean()
    disp = (poincare.dist(b_target, y, c) ** 2).mean()
    torch.testing.assert_close(disp, 0.64 * var / (var + bn.eps), atol=1e-8, rtol=0)
    # centring alone sends the batch mean to the origin
    centred = mobius.gyro_add(-mu, x, c)
    assert float(_mean(centred, c).abs().max()) < 1e-8
    # running statistics: one step of momentum from the origin along the geodesic
    o = torch.zeros(3, dtype=F64)
    torch.testing.assert_close(bn.running_mean, poincare.exp(o, 0.1 * poincare.log(o, mu, c), c))
    torch.testing.assert_close(bn.running_var, 0.9 + 0.1 * var)
    # eval mode uses the running statistics
    bn.eval()
    ye = bn(x)
    fac = 0.8 / torch.sqrt(bn.running_var + bn.eps)
    ref = mobius.gyro_add(b_target, mobius.gyro_scalar(fac, mobius.gyro_add(-bn.running_mean, x, c), c), c)
    torch.testing.assert_close(ye, ref)


def test_gyrobn_gradients_and_state_dict(gen):
    bn = PoincareGyroBN(2, c=1.0, learn_curvature=True, tol=1e-14, max_iter=200, dtype=F64)
    x = _ball(gen, 8, n=2, scale=0.5).requires_grad_(True)
    bn(x).pow(2).sum().backward()
    for t in (x.grad, bn.bias.grad, bn.scale.grad, bn.c.grad):
        assert t is not None and bool(torch.isfinite(t).all())
    sd = bn.state_dict()
    assert set(sd) == {"c", "bias", "scale", "running_mean", "running_var"}
    bn2 = PoincareGyroBN(2, c=0.3, learn_curvature=True, dtype=F64)
    bn2.load_state_dict(sd)
    bn.eval()
    bn2.eval()
    torch.testing.assert_close(bn2(x.detach()), bn(x.detach()))
    xs = _ball(gen, 4, n=2, scale=0.4).requires_grad_(True)
    bn.train()
    assert torch.autograd.gradcheck(lambda a: bn(a), (xs,), atol=1e-6)


def test_classifier_state_dict_round_trip(gen):
    net = HyperbolicClassifier(3, 2, hidden=(4,), learn_curvature=True, dtype=F64, generator=gen)
    net2 = HyperbolicClassifier(3, 2, hidden=(4,), c=2.0, learn_curvature=True, dtype=F64)
    net2.load_state_dict(net.state_dict())
    x = torch.randn(5, 3, generator=gen, dtype=F64)
    net.eval()
    net2.eval()
    torch.testing.assert_close(net2(x), net(x))
    assert net2.c.item() == 1.0 and net2.mlr.c is net2.c


def _two_class_ball(gen, n_per, dtype):
    ball = PoincareBall(1.0, n=3)
    centres = torch.tensor([[0.6, 0.0, 0.0], [-0.1, 0.6, 0.0]], dtype=dtype)
    y = torch.arange(2 * n_per) % 2
    return ball.wrapped_normal(centres[y], 0.5, generator=gen), y


@pytest.mark.parametrize(("dtype", "learn"), [(F64, True), (torch.float32, False)])
def test_classifier_learns(dtype, learn):
    gen = torch.Generator().manual_seed(0)
    x, y = _two_class_ball(gen, 32, dtype)
    xt, yt = _two_class_ball(gen, 32, dtype)
    net = HyperbolicClassifier(3, 2, hidden=(4,), learn_curvature=learn, euclidean_input=False,
                               dtype=dtype, generator=gen)
    if not learn:  # ball-valued biases are ManifoldParameters found by the optimizer
        assert isinstance(net.body[1].bias, ManifoldParameter)
    opt = RiemannianAdam(net.parameters(), lr=0.05)
    for _ in range(30):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        assert bool(torch.isfinite(loss))
    net.eval()
    with torch.no_grad():
        acc = (net(xt).argmax(-1) == yt).double().mean().item()
    assert acc >= 0.85, acc
    assert all(bool(torch.isfinite(p).all()) for p in net.parameters())


@pytest.mark.cuda
def test_hyperbolic_cuda():
    gen = torch.Generator().manual_seed(0)
    net = HyperbolicClassifier(3, 2, hidden=(4,), learn_curvature=True, dtype=F64, generator=gen).cuda()
    x = torch.randn(8, 3, generator=gen, dtype=F64).cuda()
    out = net(x)
    out.sum().backward()
    assert out.device.type == "cuda" and bool(torch.isfinite(net.c.grad))
    lor = LorentzLinear(3, 2, dtype=torch.float32).cuda()
    y = lor(Lorentz(1.0, n=3).origin(4, dtype=torch.float32).cuda())
    assert y.device.type == "cuda"
