"""Shared machinery of the stochastic optimizers: bucketing parameters by manifold."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor

from ..manifolds import Euclidean, Manifold
from ..manifolds.euclidean import FlatMetric
from .parameter import manifold_of

__all__ = ["split_params", "bshape", "stacked"]


def is_flat(m: Manifold) -> bool:
    """Whether ``m`` is Euclidean (flat metric): the exact ``torch.optim`` path applies."""
    return isinstance(m, Euclidean) and isinstance(m.metric, FlatMetric)


def split_params(group: dict) -> tuple[list[Tensor], dict[tuple, list[Tensor]]]:
    """Parameters of ``group`` with a gradient: the flat ones and buckets of the others.

    Buckets are keyed by ``(manifold, shape, dtype, device)`` so that one bucket can be stacked
    and updated with one batched retraction/transport. With ``group["stacked"]`` false every
    parameter gets its own bucket.
    """
    flat: list[Tensor] = []
    buckets: dict[tuple, list[Tensor]] = {}
    stack = group.get("stacked", True)
    for p in group["params"]:
        if p.grad is None:
            continue
        if p.grad.is_sparse:
            raise RuntimeError("Riemannian optimizers do not support sparse gradients")
        m = manifold_of(p, group)
        if is_flat(m):
            flat.append(p)
            continue
        key = (m, tuple(p.shape), p.dtype, p.device) if stack else (m, id(p))
        buckets.setdefault(key, []).append(p)
    return flat, buckets


def bshape(t: Tensor, ndim: int) -> tuple[int, ...]:
    """Shape that broadcasts a per-point tensor ``(*batch,)`` against points with ``ndim`` dims."""
    return tuple(t.shape) + (1,) * ndim


def stacked(ts: list[Tensor]) -> Tensor:
    """``torch.stack`` of several tensors; a single tensor is returned as it is (no leading
    dimension: unbatched matrices keep ``mm`` instead of a batch-of-one ``bmm``, and in-place
    updates reach the tensor itself)."""
    if len(ts) == 1:
        return ts[0]
    return torch.stack(ts)


def write_back(targets: list[Tensor], values: Tensor) -> None:
    """Copy the rows of a :func:`stacked` tensor back into the tensors it came from."""
    if len(targets) == 1:
        targets[0].copy_(values)
        return
    for t, v in zip(targets, values.unbind(0), strict=True):
        t.copy_(v)


def iter_buckets(buckets: dict[tuple, list[Tensor]]) -> Iterator[tuple[Manifold, list[Tensor]]]:
    for key, ps in buckets.items():
        yield key[0], ps


def stacked_rgrad(manifold: Manifold, params: list[Tensor], weight_decay: float,
                  maximize: bool) -> tuple[Tensor, Tensor]:
    """Stacked points ``x`` of a bucket and their Riemannian gradient (sign for ``maximize``,
    ``weight_decay · x`` added to the Euclidean gradient before the conversion)."""
    x = stacked([p.detach() for p in params])
    g = stacked([p.grad for p in params])
    if maximize:
        g = -g
    if weight_decay != 0:
        g = g.add(x, alpha=weight_decay)
    return x, manifold.egrad_to_rgrad(x, g)

def bucketed_step(opt: Any, closure: Callable[[], Any] | None) -> Any:
    """Body of ``step`` shared by the stochastic optimizers (call it under ``torch.no_grad``).

    Evaluates ``closure`` with grad enabled, then for every parameter group runs
    ``opt._flat_step(group, flat_params)`` and ``opt._riemannian_step(group, manifold, params)``
    for each bucket; returns the closure's loss (``None`` without a closure).
    """
    loss = None
    if closure is not None:
        with torch.enable_grad():
            loss = closure()
    for group in opt.param_groups:
        flat, buckets = split_params(group)
        opt._flat_step(group, flat)
        for manifold, ps in iter_buckets(buckets):
            opt._riemannian_step(group, manifold, ps)
    return loss
