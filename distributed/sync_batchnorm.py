"""Synchronized Riemannian batch normalization: statistics of the global batch across ranks.

The manifold analogue of :class:`torch.nn.SyncBatchNorm`. In training mode every rank
contributes its local batch; the layer's Fréchet mean is that of the *global* batch (all ranks'
points), the dispersion is the global mean of ``d²(M, Xᵢ)``, and every rank normalizes its own
points with these statistics, so the result equals the single-process layer applied to the
concatenated batch (rank order). Gradients flow back to every rank's points through the
statistics (the loss is taken as the sum over ranks, as DDP does before averaging).

How: the local batches are gathered with a differentiable all-gather (its backward all-reduces
the gradient), each rank computes the mean of the global batch with the layer's own
``_batch_mean`` (so every geometry — AIM, LieBN with θ/α/β, GBW — is covered unchanged and
bit-for-bit as on one process), centres only its own points, and the dispersion is one
differentiable all-reduce of the local sums of squared norms. Communication per layer and step:
one all-gather of ``C·N·n²`` numbers and one all-reduce of ``C`` numbers; compute: one mean of
the global batch per rank (batch-norm batches are small; for large sharded data sets use
:func:`riemlearn.distributed.frechet_mean`, whose iterations all-reduce tangent sums instead).

In training mode the synchronized layer runs the generic centre → scale → bias steps of
:class:`~riemlearn.layers.RiemannianBatchNorm` (the same maths as the fused one-``eigh`` path of
the AIM layers, which computes the dispersion inside one fused kernel and so cannot be
synchronized without a hook in the layer; tested equal to 1e-12 against the fused
single-process layers).

Eval mode uses the running statistics (identical on every rank, since the training statistics
are). :func:`~riemlearn.layers.refit_batchnorm_stats` on a converted model fits the exact
statistics of the union of all ranks' data (call it on every rank).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..layers.batchnorm import RiemannianBatchNorm
from ..layers.batchnorm_spd import DomainSpecificSPDBatchNorm, SPDBatchNorm
from ..layers.bwbn import BWBatchNorm
from ..layers.liebn import LieBatchNorm
from ._comm import Comm

__all__ = ["SyncRiemannianBatchNorm", "SyncSPDBatchNorm", "SyncLieBatchNorm", "SyncBWBatchNorm",
           "convert_sync_batchnorm"]


class SyncRiemannianBatchNorm(RiemannianBatchNorm):
    """Mixin that synchronizes a :class:`~riemlearn.layers.RiemannianBatchNorm` subclass.

    Put it first: ``class SyncMyBN(SyncRiemannianBatchNorm, MyBN)``; the constructor takes the
    wrapped layer's arguments plus ``process_group`` (default: the world group). Without an
    initialized ``torch.distributed`` (or with one rank) the layer is the plain one.

    Parameters
    ----------
    *args, **kwargs :
        Those of the wrapped batch norm.
    process_group : ProcessGroup, optional
        Ranks whose batches are normalized together (default: the world group).
    """

    process_group: Any

    def __init__(self, *args: Any, process_group: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.process_group = process_group

    def _forward_grouped(self, xg: Tensor, rm: Tensor, rv: Tensor, nbt: Tensor) -> Tensor:
        comm = Comm(self.process_group)
        if not comm.active or not (self.training or not self.track_running_stats):
            return super()._forward_grouped(xg, rm, rv, nbt)
        xall = comm.gather_cat(xg)  # (C, N_total, n, n), rank order
        init = rm.detach().to(xg.dtype, copy=True) if int(nbt) > 0 else None
        mean = self._batch_mean(xall, init)
        v = self._center(xg, mean)
        var = comm.sum(self._sqnorm(v).sum(-1)) / xall.shape[1]
        if self.training and self.track_running_stats:
            self._update_running(mean, var, rm, rv, nbt)
        if self.dispersion:
            v = self._scale_tangent(v, self.scale.to(xg.dtype) / torch.sqrt(var + self.eps))
        return self._decenter(v, self.bias.to(xg.dtype))

    def _exact_stats(self, xg: Tensor) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            return super()._exact_stats(Comm(self.process_group).gather_cat(xg))

    def extra_repr(self) -> str:
        return super().extra_repr() + ", synchronized"


class SyncSPDBatchNorm(SyncRiemannianBatchNorm, SPDBatchNorm):
    """:class:`~riemlearn.layers.SPDBatchNorm` with global-batch statistics (``process_group=``)."""


class SyncLieBatchNorm(SyncRiemannianBatchNorm, LieBatchNorm):
    """:class:`~riemlearn.layers.LieBatchNorm` with global-batch statistics (``process_group=``)."""


class SyncBWBatchNorm(SyncRiemannianBatchNorm, BWBatchNorm):
    """:class:`~riemlearn.layers.BWBatchNorm` with global-batch statistics (``process_group=``)."""


_SYNC: dict[type, type] = {SPDBatchNorm: SyncSPDBatchNorm, LieBatchNorm: SyncLieBatchNorm,
                           BWBatchNorm: SyncBWBatchNorm}


def _sync_class(cls: type) -> type:
    if cls not in _SYNC:  # a user subclass: synchronize it the same way
        _SYNC[cls] = type("Sync" + cls.__name__, (SyncRiemannianBatchNorm, cls),
                          {"__module__": cls.__module__, "__doc__": f"Synchronized {cls.__name__}."})
    return _SYNC[cls]


def convert_sync_batchnorm(module: nn.Module, process_group: Any = None) -> nn.Module:
    """Replace every Riemannian batch norm in ``module`` by its synchronized version.

    Like :meth:`torch.nn.SyncBatchNorm.convert_sync_batchnorm`: parameters, buffers and
    settings are kept (the new layers share the old layers' tensors), the model is modified in
    place and returned (a bare batch norm passed as ``module`` is returned converted).

    Parameters
    ----------
    module : nn.Module
        A model containing :class:`~riemlearn.layers.RiemannianBatchNorm` layers.
    process_group : ProcessGroup, optional
        Ranks to synchronize over (default: the world group).

    Returns
    -------
    nn.Module

    Raises
    ------
    NotImplementedError
        For :class:`~riemlearn.layers.DomainSpecificSPDBatchNorm` (its per-domain statistics
        would need the set of domains present on every rank).

    Examples
    --------
    >>> import torch
    >>> from riemlearn.layers import SPDNet
    >>> from riemlearn.distributed import convert_sync_batchnorm
    >>> net = convert_sync_batchnorm(SPDNet(6, [4], 2, bn="aim", dtype=torch.float64))
    >>> type(net.features[1]).__name__
    'SyncSPDBatchNorm'
    """
    if isinstance(module, RiemannianBatchNorm) and not isinstance(module, SyncRiemannianBatchNorm):
        if isinstance(module, DomainSpecificSPDBatchNorm):
            raise NotImplementedError("convert_sync_batchnorm: DomainSpecificSPDBatchNorm is not supported")
        cls = _sync_class(type(module))
        new = cls.__new__(cls)
        new.__dict__.update(module.__dict__)
        new.process_group = process_group
        return new
    for name, child in module.named_children():
        conv = convert_sync_batchnorm(child, process_group)
        if conv is not child:
            setattr(module, name, conv)
    return module
