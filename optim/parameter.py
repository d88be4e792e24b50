"""Manifold-valued parameters and the lookup of a parameter's manifold.

A parameter's manifold is found as DESIGN.md rule 8 says: the ``"manifold"`` entry of its param
group if set, else its ``manifold`` attribute (a :class:`ManifoldParameter`, or a geoopt
``ManifoldParameter`` mapped through :func:`riemlearn.optim.interop.from_geoopt`), else the
Euclidean space with every entry a point (``Euclidean(ndim=0)``), where the optimizers reproduce
``torch.optim`` exactly.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor, nn

from ..manifolds import Euclidean, Manifold

__all__ = ["ManifoldParameter", "manifold_param_groups", "manifold_of", "EUCLIDEAN"]

#: The manifold of an unconstrained parameter: every entry is a point of R.
EUCLIDEAN = Euclidean(ndim=0)


def _rebuild_manifold_parameter(data: Tensor, manifold: Manifold | None, requires_grad: bool,
                                state: dict | None = None) -> ManifoldParameter:
    p = ManifoldParameter(data, manifold=manifold, requires_grad=requires_grad)
    if state:
        p.__dict__.update(state)
    return p


class ManifoldParameter(nn.Parameter):
    """An :class:`torch.nn.Parameter` that knows its manifold.

    The manifold survives ``copy.deepcopy`` and pickling (``torch.save``/``torch.load`` with
    ``weights_only=False``). ``Module.state_dict()`` stores plain tensors, as for every parameter:
    the manifold lives with the module (the parameter object), and ``load_state_dict`` copies
    values into the existing parameter, so the manifold is kept.

    Parameters
    ----------
    data : Tensor
        Initial value, shape ``(*batch, *point_shape)``; should lie on ``manifold``.
    manifold : Manifold, optional
        The manifold (default: ``Euclidean(ndim=0)``).
    requires_grad : bool
        As for :class:`torch.nn.Parameter`.

    Examples
    --------
    >>> import copy, torch
    >>> from riemlearn.manifolds import Euclidean
    >>> p = ManifoldParameter(torch.zeros(2, 3), manifold=Euclidean(3))
    >>> copy.deepcopy(p).manifold
    Euclidean(3)
    """

    manifold: Manifold

    def __new__(cls, data: Tensor | None = None, manifold: Manifold | None = None,
                requires_grad: bool = True) -> ManifoldParameter:
        if data is None:
            data = torch.empty(0)
        if manifold is not None and not isinstance(manifold, Manifold):
            raise ValueError(f"manifold must be a riemlearn Manifold, got {type(manifold).__name__}")
        inst = nn.Parameter.__new__(cls, data, requires_grad)
        inst.manifold = manifold if manifold is not None else EUCLIDEAN
        return inst

    def __deepcopy__(self, memo: dict) -> ManifoldParameter:
        if id(self) in memo:
            return memo[id(self)]
        result = type(self)(self.data.clone(memory_format=torch.preserve_format), self.manifold,
                            self.requires_grad)
        memo[id(self)] = result
        extra = {k: v for k, v in self.__dict__.items() if k != "manifold"}
        result.__dict__.update(copy.deepcopy(extra, memo))
        return result

    def __reduce_ex__(self, proto: Any) -> tuple:
        extra = {k: v for k, v in self.__dict__.items() if k != "manifold"}
        return (_rebuild_manifold_parameter, (self.data, self.manifold, self.requires_grad, extra))

    def __repr__(self) -> str:
        return f"ManifoldParameter on {self.manifold!r} containing:\n{self.data!r}"


def manifold_of(p: Tensor, group: dict | None = None) -> Manifold:
    """The manifold of parameter ``p`` (param group, then attribute, then Euclidean)."""
    if group is not None and group.get("manifold") is not None:
        m = group["manifold"]
        if isinstance(m, Manifold):
            return m
        from .interop import from_geoopt

        return from_geoopt(m)
    m = getattr(p, "manifold", None)
    if m is None:
        return EUCLIDEAN
    if isinstance(m, Manifold):
        return m
    from .interop import from_geoopt_param

    return from_geoopt_param(p)


def manifold_param_groups(module: nn.Module, **defaults: Any) -> list[dict]:
    """Param groups of ``module``, one per manifold, ready for a Riemannian optimizer.

    Parameters
    ----------
    module : nn.Module
        Its ``parameters()`` that require grad are grouped by :func:`manifold_of`.
    **defaults
        Hyper-parameters copied into every group (e.g. ``lr=1e-3``).

    Returns
    -------
    list of dict
        ``[{"params": [...], "manifold": M, **defaults}, ...]`` in first-seen order.

    Examples
    --------
    >>> import torch
    >>> from riemlearn.manifolds import Euclidean
    >>> mod = torch.nn.Linear(2, 2)
    >>> mod.w = ManifoldParameter(torch.zeros(3), manifold=Euclidean(3))
    >>> [len(g["params"]) for g in manifold_param_groups(mod, lr=0.1)]
    [2, 1]
    """
    groups: dict[Any, dict] = {}
    for p in module.parameters():
        if not p.requires_grad:
            continue
        m = manifold_of(p)
        if m not in groups:
            groups[m] = {"params": [], "manifold": m, **defaults}
        groups[m]["params"].append(p)
    return list(groups.values())
