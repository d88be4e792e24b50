"""Riemannian stochastic gradient descent with momentum (Bonnabel 2013; momentum by transport)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from ._common import bucketed_step, stacked, stacked_rgrad, write_back
from ._fused import retract_transport

__all__ = ["RiemannianSGD"]


class RiemannianSGD(torch.optim.Optimizer):
    """SGD on manifolds: Riemannian gradient, retraction, momentum moved by transport.

    Each step turns the Euclidean gradient (plus ``weight_decay * p``, negated if ``maximize``)
    into the Riemannian gradient with the metric's ``egrad_to_rgrad``, updates the momentum
    buffer, retracts ``-lr * direction`` with the metric's ``retract`` and moves the buffer to the
    new point with the metric's ``transport``. On Euclidean parameters (the default manifold)
    it performs exactly the operations of :class:`torch.optim.SGD` (single-tensor path), so the
    results agree bitwise. ``p.grad`` is never modified.

    Parameters
    ----------
    params : iterable
        Parameters or param groups; a group may carry ``"manifold"`` (see
        :func:`~riemlearn.optim.parameter.manifold_of`).
    lr, momentum, dampening, weight_decay, nesterov, maximize
        As for :class:`torch.optim.SGD`.
    stabilize : int, optional
        Every ``stabilize`` steps, project parameters back onto their manifold
        (``project_point``) and buffers onto the tangent space (round-off control).
    stacked : bool
        Update parameters sharing manifold, shape, dtype and device together (one batched
        retraction and transport); default True.

    Examples
    --------
    >>> import torch
    >>> w = torch.nn.Parameter(torch.ones(3))
    >>> opt = RiemannianSGD([w], lr=0.1, momentum=0.9)
    >>> (w ** 2).sum().backward(); opt.step()
    >>> w.detach()
    tensor([0.8000, 0.8000, 0.8000])
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False,
                 *, maximize: bool = False, stabilize: int | None = None,
                 stacked: bool = True) -> None:
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        if stabilize is not None and int(stabilize) < 1:
            raise ValueError(f"stabilize must be a positive integer or None, got {stabilize}")
        defaults: dict[str, Any] = dict(lr=lr, momentum=momentum, dampening=dampening,
                                        weight_decay=weight_decay, nesterov=nesterov,
                                        maximize=maximize, stabilize=stabilize, stacked=stacked,
                                        manifold=None)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform one optimization step (``closure`` re-evaluates the loss, as in torch)."""
        return bucketed_step(self, closure)

    def _flat_step(self, group: dict, params: list[Tensor]) -> None:
        lr, mom, damp = group["lr"], group["momentum"], group["dampening"]
        wd, nesterov, maximize = group["weight_decay"], group["nesterov"], group["maximize"]
        for param in params:
            grad = param.grad if not maximize else -param.grad
            if wd != 0:
                grad = grad.add(param, alpha=wd)
            if mom != 0:
                state = self.state[param]
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = grad.detach().clone()
                    state["momentum_buffer"] = buf
                else:
                    buf.mul_(mom).add_(grad, alpha=1 - damp)
                grad = grad.add(buf, alpha=mom) if nesterov else buf
            param.add_(grad, alpha=-lr)

    def _riemannian_step(self, group: dict, manifold, params: list[Tensor]) -> None:
        lr, mom, damp = group["lr"], group["momentum"], group["dampening"]
        wd, nesterov, maximize = group["weight_decay"], group["nesterov"], group["maximize"]
        x, g = stacked_rgrad(manifold, params, wd, maximize)
        states = [self.state[p] for p in params]
        for s in states:
            s["step"] = s.get("step", 0) + 1
        single = len(params) == 1
        if mom != 0:
            if single and states[0].get("momentum_buffer") is None:
                buf = g  # a fresh buffer is the gradient itself, as in torch (cloned when stored)
            elif any(s.get("momentum_buffer") is None for s in states):
                # a fresh buffer is the gradient itself, as in torch
                bufs = [s.get("momentum_buffer") for s in states]
                buf = torch.stack([g[i] if b is None else b for i, b in enumerate(bufs)])
                fresh = torch.tensor([b is None for b in bufs], device=x.device)
                upd = buf.mul(mom).add_(g, alpha=1 - damp)
                buf = torch.where(fresh.reshape((-1,) + (1,) * (x.dim() - 1)), g, upd)
            else:
                buf = stacked([s["momentum_buffer"] for s in states])
                # g + mom·buf in one pass when there is no dampening (equal up to rounding)
                buf = torch.add(g, buf, alpha=mom) if damp == 0 else buf.mul(mom).add_(g, alpha=1 - damp)
            d = g.add(buf, alpha=mom) if nesterov else buf
        else:
            d = g
        if mom != 0:
            new_x, buf = retract_transport(manifold, x, d, buf, scale=-lr)
        else:
            new_x = manifold.retract(x, d.mul(-lr))
        every = group["stabilize"]
        if every is not None and states[0]["step"] % int(every) == 0:
            new_x = manifold.project_point(new_x)
            if mom != 0:
                buf = manifold.project_tangent(new_x, buf)
        write_back(params, new_x)
        if mom != 0:
            for s, b in zip(states, [buf] if single else buf.unbind(0), strict=True):
                if s.get("momentum_buffer") is None:
                    s["momentum_buffer"] = b.clone()
                else:
                    s["momentum_buffer"].copy_(b)
