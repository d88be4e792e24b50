"""Collective helpers over ``torch.distributed`` (private).

Every helper degrades to the identity when ``torch.distributed`` is not initialized (one process),
so the distributed algorithms also run, unchanged, in a single process.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["resolve_group", "Comm"]


def resolve_group(process_group: Any = None) -> tuple[Any, int, int]:
    """``(group, world_size, rank)``; ``(None, 1, 0)`` when ``torch.distributed`` is not initialized."""
    if not (dist.is_available() and dist.is_initialized()):
        if process_group is not None:
            raise ValueError("process_group was given but torch.distributed is not initialized")
        return None, 1, 0
    group = process_group if process_group is not None else dist.group.WORLD
    return group, dist.get_world_size(group), dist.get_rank(group)


class _AllReduceSum(torch.autograd.Function):
    """``y = Σ_ranks x`` on every rank; backward: ``x̄ = Σ_ranks ȳ`` (the loss is summed over ranks)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, group: Any) -> Tensor:
        ctx.group = group
        y = x.clone()
        dist.all_reduce(y, op=dist.ReduceOp.SUM, group=group)
        return y

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> Any:
        g = g.clone()
        dist.all_reduce(g, op=dist.ReduceOp.SUM, group=ctx.group)
        return g, None


class _AllGather(torch.autograd.Function):
    """Concatenate every rank's ``x (C, N_r, ...)`` along dim 1 (sizes may differ); backward sums
    the gradient of the gathered tensor over ranks and returns this rank's slice."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, group: Any, sizes: list[int], rank: int) -> Tensor:
        ctx.group, ctx.sizes, ctx.rank = group, sizes, rank
        big = max(sizes)
        pad = list(x.shape)
        pad[1] = big - x.shape[1]
        xp = torch.cat([x, x.new_zeros(pad)], dim=1) if pad[1] else x.contiguous()
        parts = [torch.empty_like(xp) for _ in sizes]
        dist.all_gather(parts, xp, group=group)
        return torch.cat([p[:, :s] for p, s in zip(parts, sizes, strict=True)], dim=1)

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> Any:
        g = g.contiguous().clone()
        dist.all_reduce(g, op=dist.ReduceOp.SUM, group=ctx.group)
        start = sum(ctx.sizes[: ctx.rank])
        return g[:, start:start + ctx.sizes[ctx.rank]], None, None, None


class Comm:
    """Sum-reductions over one process group (identity in a single process)."""

    def __init__(self, process_group: Any = None) -> None:
        self.group, self.world_size, self.rank = resolve_group(process_group)

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def sum(self, t: Tensor) -> Tensor:
        """Differentiable all-reduce (sum) of one tensor."""
        if not self.active:
            return t
        return _AllReduceSum.apply(t, self.group)

    def sum_many(self, *ts: Tensor) -> tuple[Tensor, ...]:
        """All-reduce (sum) several tensors with one collective (not differentiable)."""
        if not self.active:
            return ts
        flat = torch.cat([t.detach().reshape(-1).to(ts[0].dtype) for t in ts])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM, group=self.group)
        out, i = [], 0
        for t in ts:
            out.append(flat[i:i + t.numel()].reshape(t.shape).to(t.dtype))
            i += t.numel()
        return tuple(out)

    def max_flag(self, flag: bool, ref: Tensor) -> bool:
        """Whether ``flag`` is set on any rank."""
        if not self.active:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], dtype=ref.dtype, device=ref.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX, group=self.group)
        return bool(t.item() > 0)

    def gather_cat(self, x: Tensor) -> Tensor:
        """Differentiable concatenation of every rank's ``x (C, N_r, ...)`` along dim 1."""
        if not self.active:
            return x
        n = torch.tensor([x.shape[1]], dtype=torch.long, device=x.device)
        sizes_t = [torch.empty_like(n) for _ in range(self.world_size)]
        dist.all_gather(sizes_t, n, group=self.group)
        sizes = [int(s.item()) for s in sizes_t]
        return _AllGather.apply(x, self.group, sizes, self.rank)
