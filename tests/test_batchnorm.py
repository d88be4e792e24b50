"""Riemannian batch norms: statistics properties (exact in float64), gradients, train/eval,
running statistics, refit, state_dict, domain-specific statistics, bad input."""

from __future__ import annotations

import io
import math

import pytest
import torch
from riemlearn.layers import (
    BWBatchNorm,
    DomainSpecificSPDBatchNorm,
    LieBatchNorm,
    SPDBatchNorm,
    refit_batchnorm_stats,
)
from riemlearn.manifolds import SPD
from riemlearn.optim import ManifoldParameter, manifold_param_groups
from riemlearn.stats import frechet_mean

F64 = torch.float64

LAYERS = {
    "aim": lambda n, **kw: SPDBatchNorm(n, **kw),
    "aim-nodisp": lambda n, **kw: SPDBatchNorm(n, dispersion=False, **kw),
    "liebn-aim": lambda n, **kw: LieBatchNorm(n, metric="aim", **kw),
    "liebn-aim-deformed": lambda n, **kw: LieBatchNorm(n, metric="aim", theta=0.5, alpha=2.0, beta=0.3, **kw),
    "liebn-lem": lambda n, **kw: LieBatchNorm(n, metric="lem", alpha=1.5, beta=-0.1, **kw),
    "liebn-lcm": lambda n, **kw: LieBatchNorm(n, metric="lcm", **kw),
    "liebn-lcm-deformed": lambda n, **kw: LieBatchNorm(n, metric="lcm", theta=1.5, **kw),
    "bw": lambda n, **kw: BWBatchNorm(n, **kw),
    "gbw-deformed": lambda n, **kw: BWBatchNorm(n, theta=0.5, **kw),
}


def _points(gen, *shape, n=4, cond=None):
    return SPD(n).random_point(*shape, generator=gen, dtype=F64, cond=cond)


def _randomize(bn, gen):
    """Non-trivial bias, scale and (for BW) metric parameter."""
    with torch.no_grad():
        bn.bias.copy_(SPD(bn.n).random_point(*bn.bias.shape[:-2], generator=gen, dtype=F64))
        bn.log_scale.fill_(0.3)
        if isinstance(bn, BWBatchNorm):
            bn.metric_param.copy_(SPD(bn.n).random_point(*bn.bias.shape[:-2], generator=gen, dtype=F64))


@pytest.mark.parametrize("name", list(LAYERS))
def test_train_output_mean_is_bias_and_dispersion_is_scale(name, gen):
    bn = LAYERS[name](4, eps=0.0, dtype=F64)
    _randomize(bn, gen)
    x = _points(gen, 12)
    y = bn(x).detach()
    m = bn.manifold
    mean = frechet_mean(y, m)
    assert (mean - bn.bias[0]).abs().max() < 1e-8
    disp = (m.dist(mean.expand_as(y), y) ** 2).mean()
    expected = bn.scale[0] ** 2 if bn.dispersion else _dispersion(x, m)
    assert abs(float(disp - expected.detach())) < 1e-8


def _dispersion(x, m):
    mean = frechet_mean(x, m)
    return (m.dist(mean.expand_as(x), x) ** 2).mean()


def test_dispersion_with_eps(gen):
    bn = SPDBatchNorm(3, eps=0.5, dtype=F64)
    x = _points(gen, 10, n=3)
    sigma2 = _dispersion(x, bn.manifold)
    y = bn(x).detach()
    mean = frechet_mean(y, bn.manifold)
    disp = (bn.manifold.dist(mean.expand_as(y), y) ** 2).mean()
    assert abs(float(disp - sigma2 / (sigma2 + 0.5))) < 1e-8


@pytest.mark.parametrize("name", list(LAYERS))
def test_gradients_finite_at_identity_bias_with_ties(name, gen):
    bn = LAYERS[name](3, dtype=F64)
    eye = torch.eye(3, dtype=F64)
    tied = torch.diag(torch.tensor([2.0, 2.0, 0.5], dtype=F64))
    x = torch.cat([eye[None], tied[None], eye[None] * 3.0, _points(gen, 5, n=3)]).requires_grad_(True)
    (bn(x) * _points(gen, 8, n=3)).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert torch.isfinite(bn.bias.grad).all() and bn.bias.grad.abs().sum() > 0
    if bn.dispersion:
        assert torch.isfinite(bn.log_scale.grad).all()


@pytest.mark.parametrize("name", ["aim", "liebn-aim-deformed", "liebn-lem", "liebn-lcm-deformed"])
def test_gradcheck(name, gen):
    # fixed initialisation of the iterative mean (no warm start from changing running stats),
    # so that finite differences are not polluted by the mean's stopping tolerance
    bn = LAYERS[name](3, track_running_stats=False, dtype=F64)
    _randomize(bn, gen)
    x = _points(gen, 4, n=3).requires_grad_(True)
    bias = bn.bias.detach().clone().requires_grad_(True)
    scale = bn.log_scale.detach().clone().requires_grad_(True)

    def f(x, bias, scale):  # symmetric parts: gradients are taken on Sym(n)
        sym = lambda a: (a + a.mT) / 2  # noqa: E731
        return torch.func.functional_call(bn, {"bias": sym(bias), "log_scale": scale}, (sym(x),))

    assert torch.autograd.gradcheck(f, (x, bias, scale), eps=1e-6, atol=1e-5, rtol=1e-4)


def test_gradcheck_bw(gen):
    bn = BWBatchNorm(2, theta=0.5, track_running_stats=False, dtype=F64)
    x = _points(gen, 3, n=2).requires_grad_(True)
    a = bn.metric_param.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda x, a: torch.func.functional_call(bn, {"metric_param": (a + a.mT) / 2}, ((x + x.mT) / 2,)),
        (x, a),
        eps=1e-6, atol=1e-5, rtol=1e-4)


def test_channels_match_independent_layers(gen):
    x = _points(gen, 6, 2)  # (batch, C, n, n)
    bn = LieBatchNorm(4, num_channels=2, metric="lcm", dtype=F64)
    _randomize(bn, gen)
    y = bn(x)
    assert y.shape == x.shape
    for c in range(2):
        single = LieBatchNorm(4, metric="lcm", dtype=F64)
        with torch.no_grad():
            single.bias.copy_(bn.bias[c:c + 1])
            single.log_scale.copy_(bn.log_scale[c:c + 1])
        torch.testing.assert_close(single(x[:, c]), y[:, c])
        torch.testing.assert_close(single.running_mean[0], bn.running_mean[c])


@pytest.mark.parametrize("name", ["aim", "liebn-lem", "liebn-lcm-deformed", "bw"])
def test_running_stats_warm_start_and_geodesic_momentum(name, gen):
    bn = LAYERS[name](4, momentum=0.1, dtype=F64)
    m = bn.manifold
    x1, x2 = _points(gen, 10), _points(gen, 10)
    bn(x1)
    m1, v1 = frechet_mean(x1, m), _dispersion(x1, m)
    torch.testing.assert_close(bn.running_mean[0], m1, atol=1e-8, rtol=0)  # no identity bias
    torch.testing.assert_close(bn.running_var[0], v1, atol=1e-8, rtol=0)
    bn(x2)
    m2, v2 = frechet_mean(x2, m), _dispersion(x2, m)
    # second batch: effective momentum max(0.1, 1/2) = 1/2, along the metric's geodesic
    torch.testing.assert_close(bn.running_mean[0], m.geodesic(m1, m2, 0.5), atol=1e-8, rtol=0)
    torch.testing.assert_close(bn.running_var[0], 0.5 * (v1 + v2), atol=1e-8, rtol=0)
    assert int(bn.num_batches_tracked) == 2
    for _ in range(10):
        bn(x1)
    prev = bn.running_mean.clone()
    bn(x2)
    torch.testing.assert_close(bn.running_mean[0], m.geodesic(prev[0], m2, 0.1), atol=1e-8, rtol=0)


def test_eval_uses_running_stats_and_refit_matches_train(gen):
    bn = SPDBatchNorm(4, dtype=F64)
    _randomize(bn, gen)
    x = _points(gen, 16)
    bn.eval()
    y0 = bn(x)  # identity statistics: only the dispersion scaling and bias act
    assert int(bn.num_batches_tracked) == 0
    refit_batchnorm_stats(bn, x)
    assert not bn.training
    torch.testing.assert_close(bn(x), bn.train()(x).detach(), atol=1e-9, rtol=0)
    assert not torch.allclose(y0, bn.eval()(x))
    bn2 = SPDBatchNorm(4, track_running_stats=False, dtype=F64).eval()
    torch.testing.assert_close(bn2(x), SPDBatchNorm(4, dtype=F64)(x))


def test_refit_over_batches_sequential_layers(gen):
    net = torch.nn.Sequential(SPDBatchNorm(4, dtype=F64), LieBatchNorm(4, metric="lcm", dtype=F64))
    x = _points(gen, 20)
    loader = [(x[:7], None), (x[7:],)]
    refit_batchnorm_stats(net, loader)
    net.eval()
    torch.testing.assert_close(net(x), net.train()(x).detach(), atol=1e-9, rtol=0)


def test_state_dict_round_trip_and_optimizer_manifolds(gen):
    bn = LieBatchNorm(4, metric="aim", theta=0.5, dtype=F64)
    _randomize(bn, gen)
    x = _points(gen, 8)
    bn(x)
    buf = io.BytesIO()
    torch.save(bn.state_dict(), buf)
    buf.seek(0)
    other = LieBatchNorm(4, metric="aim", theta=0.5, dtype=F64)
    other.load_state_dict(torch.load(buf))
    torch.testing.assert_close(other.eval()(x), bn.eval()(x))
    assert isinstance(other.bias, ManifoldParameter) and other.bias.manifold == bn.manifold
    groups = manifold_param_groups(other, lr=0.1)
    assert {type(g["manifold"]).__name__ for g in groups} == {"SPD", "Euclidean"}


def test_domain_specific_statistics(gen):
    x = torch.cat([_points(gen, 8), _points(gen, 8, cond=50.0)])
    dom = torch.tensor([0] * 8 + [1] * 8)
    bn = DomainSpecificSPDBatchNorm(4, num_domains=3, dtype=F64)
    y = bn(x, dom)
    for d in (0, 1):
        single = SPDBatchNorm(4, dtype=F64)
        torch.testing.assert_close(y[dom == d], single(x[dom == d]))
        torch.testing.assert_close(bn.running_mean[d, 0], single.running_mean[0])
    assert int(bn.num_batches_tracked[2]) == 0
    # source-free adaptation: fit domain 2 on unlabeled data, then eval there = batch statistics
    refit_batchnorm_stats(bn, x[8:], forward=lambda m, b: m(b, 2))
    torch.testing.assert_close(bn.eval()(x[8:], 2), bn.train()(x[8:], 2).detach(), atol=1e-9, rtol=0)
    with pytest.raises(ValueError, match="domains"):
        bn(x, torch.full((16,), 3))


def test_bad_input():
    with pytest.raises(ValueError, match="momentum"):
        SPDBatchNorm(3, momentum=1.5)
    with pytest.raises(ValueError, match="metric"):
        LieBatchNorm(3, metric="bw")
    with pytest.raises(ValueError, match="alpha"):
        LieBatchNorm(3, metric="lcm", alpha=2.0)
    bn = SPDBatchNorm(3)
    with pytest.raises(ValueError, match="shape"):
        bn(torch.eye(3).expand(2, 1, 3, 3))
    with pytest.raises(ValueError, match="size 3"):
        bn(torch.eye(4).expand(2, 4, 4))


def test_float32_follows_input(gen):
    bn = LieBatchNorm(4, metric="aim", dtype=torch.float32)
    x = _points(gen, 10).float()
    y = bn(x)
    assert y.dtype == torch.float32 and torch.isfinite(y).all()
    assert math.isfinite(float(bn.running_var[0]))


@pytest.mark.cuda
def test_cuda_matches_cpu(gen):
    x = _points(gen, 10)
    for name in ("aim", "liebn-lcm", "bw"):
        cpu = LAYERS[name](4, dtype=F64)
        gpu = LAYERS[name](4, dtype=F64).cuda()
        torch.testing.assert_close(gpu(x.cuda()).cpu(), cpu(x), atol=1e-8, rtol=0)


@pytest.mark.parametrize("name", ["aim", "aim-nodisp", "liebn-aim-deformed"])
@pytest.mark.parametrize("train", [True, False])
def test_fused_path_matches_generic_recipe(name, train, gen):
    """The one-eigh fast path (Z^f) equals centre → log → scale → exp → bias, values and grads."""
    from riemlearn.layers.batchnorm import RiemannianBatchNorm

    bn = LAYERS[name](4, dtype=F64)
    _randomize(bn, gen)
    bn(_points(gen, 10))  # some running statistics
    bn.train(train)
    x = _points(gen, 9).requires_grad_(True)
    xg = x.unsqueeze(0)
    state = [t.clone() for t in (bn.running_mean, bn.running_var, bn.num_batches_tracked)]
    fast = bn._forward_grouped(xg, *state)
    (gf,) = torch.autograd.grad((fast * xg.detach()).sum(), x)
    state = [t.clone() for t in (bn.running_mean, bn.running_var, bn.num_batches_tracked)]
    ref = RiemannianBatchNorm._forward_grouped(bn, xg, *state)
    (gr,) = torch.autograd.grad((ref * xg.detach()).sum(), x)
    torch.testing.assert_close(fast, ref, atol=1e-10, rtol=0)
    torch.testing.assert_close(gf, gr, atol=1e-8, rtol=0)


def test_gradcheck_eval_mode(gen):
    bn = SPDBatchNorm(3, dtype=F64)
    _randomize(bn, gen)
    bn(_points(gen, 6, n=3))
    bn.eval()
    x = _points(gen, 4, n=3).requires_grad_(True)
    scale = bn.log_scale.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda x, s: torch.func.functional_call(bn, {"log_scale": s}, ((x + x.mT) / 2,)), (x, scale),
        eps=1e-6, atol=1e-5, rtol=1e-4)
