"""RiemannianSGD / RiemannianAdam: exact parity with torch.optim on Euclidean, manifold
parameters, state_dict round trips, argument checks."""

from __future__ import annotations

import copy
import io
import pickle

import pytest
import torch
from riemlearn.manifolds import Euclidean
from riemlearn.optim import (
    ManifoldParameter,
    RiemannianAdam,
    RiemannianSGD,
    manifold_param_groups,
)


def _run(opt_cls, kwargs, steps=6, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    w1 = torch.randn(4, 3, generator=g, dtype=dtype)
    w2 = torch.randn(5, generator=g, dtype=dtype)
    params = [torch.nn.Parameter(w1.clone()), torch.nn.Parameter(w2.clone())]
    opt = opt_cls(params, **kwargs)
    grads = []
    for k in range(steps):
        opt.zero_grad()
        loss = (params[0] ** 3).sum() * 0.1 + (params[0] @ torch.ones(3, dtype=dtype)).pow(2).sum() \
            + torch.sin(params[1]).sum() * (k + 1)
        loss.backward()
        before = [p.grad.clone() for p in params]
        opt.step()
        grads.append(all(torch.equal(b, p.grad) for b, p in zip(before, params, strict=True)))
    return [p.detach() for p in params], all(grads), opt


SGD_CONFIGS = [
    dict(lr=0.05),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.3),
    dict(lr=0.05, momentum=0.8, nesterov=True),
    dict(lr=0.05, momentum=0.9, weight_decay=0.1),
    dict(lr=0.05, momentum=0.5, maximize=True),
    dict(lr=0.05, weight_decay=0.01, nesterov=True, momentum=0.3, maximize=True),
]
ADAM_CONFIGS = [
    dict(lr=0.01),
    dict(lr=0.01, betas=(0.8, 0.99)),
    dict(lr=0.01, amsgrad=True),
    dict(lr=0.01, weight_decay=0.1),
    dict(lr=0.01, maximize=True),
    dict(lr=0.02, eps=1e-3, amsgrad=True, weight_decay=0.05, maximize=True),
]


@pytest.mark.parametrize("kw", SGD_CONFIGS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_sgd_matches_torch_exactly(kw, dtype):
    ours, untouched, _ = _run(RiemannianSGD, kw, dtype=dtype)
    ref, _, _ = _run(torch.optim.SGD, dict(kw, foreach=False), dtype=dtype)
    assert untouched
    for a, b in zip(ours, ref, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("kw", ADAM_CONFIGS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_adam_matches_torch_exactly(kw, dtype):
    ours, untouched, _ = _run(RiemannianAdam, kw, dtype=dtype)
    ref, _, _ = _run(torch.optim.Adam, dict(kw, foreach=False), dtype=dtype)
    assert untouched
    for a, b in zip(ours, ref, strict=True):
        assert torch.equal(a, b)


def test_euclidean_group_and_parameter_match_torch():
    # an explicit Euclidean manifold in the group or on the parameter keeps the exact path
    ours, _, _ = _run(lambda ps, **k: RiemannianAdam([{"params": ps, "manifold": Euclidean(ndim=0)}], **k),
                      dict(lr=0.01, amsgrad=True))
    ref, _, _ = _run(torch.optim.Adam, dict(lr=0.01, amsgrad=True, foreach=False))
    for a, b in zip(ours, ref, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("opt_cls,kw", [(RiemannianSGD, dict(lr=0.05, momentum=0.9)),
                                        (RiemannianAdam, dict(lr=0.01, amsgrad=True))])
def test_state_dict_round_trip(opt_cls, kw):
    ours, _, opt = _run(opt_cls, kw, steps=3)
    sd = opt.state_dict()
    buf = io.BytesIO()
    torch.save(sd, buf)
    buf.seek(0)
    sd2 = torch.load(buf, weights_only=False)
    params = [torch.nn.Parameter(p.clone()) for p in ours]
    opt2 = opt_cls(params, **kw)
    opt2.load_state_dict(sd2)
    for p, q in zip(opt.param_groups[0]["params"], params, strict=True):
        p.grad = torch.ones_like(p)
        q.grad = torch.ones_like(q)
    opt.step()
    opt2.step()
    for p, q in zip(opt.param_groups[0]["params"], params, strict=True):
        assert torch.equal(p.detach(), q.detach())


def test_argument_checks():
    p = [torch.nn.Parameter(torch.zeros(2))]
    with pytest.raises(ValueError, match="learning rate"):
        RiemannianSGD(p, lr=-1)
    with pytest.raises(ValueError, match="Nesterov"):
        RiemannianSGD(p, lr=1, nesterov=True)
    with pytest.raises(ValueError, match="beta"):
        RiemannianAdam(p, betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="stabilize"):
        RiemannianAdam(p, stabilize=0)


def test_manifold_parameter_survives_copies():
    m = Euclidean(3)
    p = ManifoldParameter(torch.randn(2, 3, generator=torch.Generator().manual_seed(0)), manifold=m)
    for q in (copy.deepcopy(p), pickle.loads(pickle.dumps(p))):
        assert isinstance(q, ManifoldParameter) and q.manifold == m and torch.equal(q, p)
        assert q.requires_grad
    mod = torch.nn.Module()
    mod.w = p
    mod.b = torch.nn.Parameter(torch.zeros(2))
    mod2 = copy.deepcopy(mod)
    mod2.load_state_dict(mod.state_dict())
    assert mod2.w.manifold == m
    groups = manifold_param_groups(mod, lr=0.1)
    assert [g["manifold"] for g in groups] == [m, Euclidean(ndim=0)]
    assert all(g["lr"] == 0.1 for g in groups)
    with pytest.raises(ValueError, match="manifold"):
        ManifoldParameter(torch.zeros(2), manifold="sphere")
