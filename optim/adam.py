"""Riemannian Adam and AMSGrad (RAMSGrad, Bécigneul & Ganea 2019)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from ._common import bshape, bucketed_step, stacked, stacked_rgrad, write_back
from ._fused import retract_transport

__all__ = ["RiemannianAdam"]


class RiemannianAdam(torch.optim.Optimizer):
    """Adam on manifolds (Bécigneul & Ganea, *Riemannian Adaptive Optimization Methods*, 2019).

    The first moment is a tangent vector moved along with the parameter by the metric's
    ``transport``; the second moment is the per-point squared norm ``‖g‖²_x`` (shape
    ``(*batch,)``); ``amsgrad=True`` keeps its running maximum (RAMSGrad). The step
    ``-lr · m̂ / (√v̂ + eps)`` is applied with the metric's ``retract``. On Euclidean parameters
    (the default manifold) the update performs exactly the operations of
    :class:`torch.optim.Adam` (single-tensor path, per-entry second moment), so results agree
    bitwise. ``p.grad`` is never modified.

    Parameters
    ----------
    params : iterable
        Parameters or param groups; a group may carry ``"manifold"``.
    lr, betas, eps, weight_decay, amsgrad, maximize
        As for :class:`torch.optim.Adam` (weight decay adds ``weight_decay * p`` to the
        Euclidean gradient, before conversion to the Riemannian gradient).
    stabilize : int, optional
        Every ``stabilize`` steps project parameters onto their manifold and the first moment
        onto the tangent space.
    stacked : bool
        Update parameters sharing manifold, shape, dtype and device together (default True).

    Examples
    --------
    >>> import torch
    >>> w = torch.nn.Parameter(torch.ones(3))
    >>> opt = RiemannianAdam([w], lr=0.1)
    >>> (w ** 2).sum().backward(); opt.step()
    >>> w.detach()
    tensor([0.9000, 0.9000, 0.9000])
    """

    def __init__(self, params: Iterable, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, *, maximize: bool = False,
                 stabilize: int | None = None, stacked: bool = True) -> None:
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if stabilize is not None and int(stabilize) < 1:
            raise ValueError(f"stabilize must be a positive integer or None, got {stabilize}")
        defaults: dict[str, Any] = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                        amsgrad=amsgrad, maximize=maximize, stabilize=stabilize,
                                        stacked=stacked, manifold=None)
        super().__init__(params, defaults)

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("amsgrad", False)
            group.setdefault("maximize", False)

    def _init_state(self, p: Tensor, per_point: tuple[int, ...] | None, amsgrad: bool) -> dict:
        state = self.state[p]
        if len(state) == 0:
            state["step"] = torch.tensor(0.0, dtype=torch.float32)
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            if per_point is None:
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            else:
                state["exp_avg_sq"] = p.new_zeros(per_point)
            if amsgrad:
                state["max_exp_avg_sq"] = torch.zeros_like(state["exp_avg_sq"])
        elif amsgrad and "max_exp_avg_sq" not in state:
            state["max_exp_avg_sq"] = torch.zeros_like(state["exp_avg_sq"])
        return state

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform one optimization step (``closure`` re-evaluates the loss, as in torch)."""
        return bucketed_step(self, closure)

    def _flat_step(self, group: dict, params: list[Tensor]) -> None:
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        wd, amsgrad, maximize = group["weight_decay"], group["amsgrad"], group["maximize"]
        for param in params:
            state = self._init_state(param, None, amsgrad)
            grad = param.grad if not maximize else -param.grad
            exp_avg, exp_avg_sq, step_t = state["exp_avg"], state["exp_avg_sq"], state["step"]
            step_t += 1
            if wd != 0:
                grad = grad.add(param, alpha=wd)
            exp_avg.lerp_(grad, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            step = step_t.item()
            bias_correction1 = 1 - beta1**step
            bias_correction2 = 1 - beta2**step
            step_size = lr / bias_correction1
            bias_correction2_sqrt = bias_correction2**0.5
            if amsgrad:
                mx = state["max_exp_avg_sq"]
                torch.maximum(mx, exp_avg_sq, out=mx)
                denom = (mx.sqrt() / bias_correction2_sqrt).add_(eps)
            else:
                denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
            param.addcdiv_(exp_avg, denom, value=-step_size)

    def _riemannian_step(self, group: dict, manifold, params: list[Tensor]) -> None:
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        wd, amsgrad, maximize = group["weight_decay"], group["amsgrad"], group["maximize"]
        nd = manifold.ndim
        per_point = tuple(params[0].shape[: params[0].dim() - nd])
        states = [self._init_state(p, per_point, amsgrad) for p in params]
        x, g = stacked_rgrad(manifold, params, wd, maximize)
        # with one parameter the stacked tensors are views of the state: update in place
        single = len(params) == 1
        m = stacked([s["exp_avg"] for s in states]).lerp_(g, 1 - beta1)
        v = stacked([s["exp_avg_sq"] for s in states]).mul_(beta2)
        v.add_(manifold.inner(x, g, g), alpha=1 - beta2)
        for s in states:
            s["step"] += 1
        steps = [s["step"].item() for s in states]
        if all(st == steps[0] for st in steps):
            bc1 = 1 - beta1 ** steps[0]
            bc2_sqrt = (1 - beta2 ** steps[0]) ** 0.5
        else:
            st = torch.tensor(steps, dtype=x.dtype, device=x.device).reshape((-1,) + (1,) * len(per_point))
            bc1 = 1 - beta1**st
            bc2_sqrt = (1 - beta2**st).sqrt()
        if amsgrad:
            vmax = stacked([s["max_exp_avg_sq"] for s in states])
            torch.maximum(vmax, v, out=vmax)
            denom = (vmax.sqrt() / bc2_sqrt).add_(eps)
        else:
            denom = (v.sqrt() / bc2_sqrt).add_(eps)
        scale = (-lr / bc1) / denom
        u = m * scale.reshape(bshape(scale, nd))
        new_x, m = retract_transport(manifold, x, u, m)
        every = group["stabilize"]
        if every is not None and int(steps[0]) % int(every) == 0:
            new_x = manifold.project_point(new_x)
            m = manifold.project_tangent(new_x, m)
        write_back(params, new_x)
        write_back([s["exp_avg"] for s in states], m)
        if not single:
            write_back([s["exp_avg_sq"] for s in states], v)
            if amsgrad:
                write_back([s["max_exp_avg_sq"] for s in states], vmax)
