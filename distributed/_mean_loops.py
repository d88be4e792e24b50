"""The iterative Fréchet means of :mod:`riemlearn.stats` over sharded points (private).

The loops are those of ``stats/_mean_spd.py`` and ``stats/_mean_generic.py`` themselves: they
take a ``reduce`` hook applied to every sum over points, and here that hook is one all-reduce
(``Comm.sum_many``) per pass. Only the starting points are assembled here, from all-reduced
sums. Shapes: points ``(G, N_r, *point_shape)``, weights ``(G, N_r)`` normalized over all ranks.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..manifolds.base import Manifold
from ..stats import _mean_generic as _gen
from ..stats import _mean_spd as _spd
from ._comm import Comm

__all__ = ["spd_init", "aim_mean", "bw_mean", "karcher_mean"]


def spd_init(kind: str, x: Tensor, w: Tensor, comm: Comm) -> Tensor | tuple[Tensor, Tensor]:
    """The frame of ``A # H`` (affine-invariant, as ``_mean_spd.ah_frame``) or the arithmetic mean (BW)."""
    if kind == "bw":
        (a,) = comm.sum_many(_spd._wsum(w, x))
        return a
    chol, info = torch.linalg.cholesky_ex(x)  # reads the lower triangle only
    bad = (info > 0).any().to(x.dtype).reshape(1)
    a, hs, bad = comm.sum_many(_spd._wsum(w, x), _spd.inverse_wsum(chol, w), bad)
    if bool(bad.item() > 0):
        raise ValueError("points are not positive definite (Cholesky fails on some rank)")
    return _spd.ah_frame_from_means(a, hs)


def _hook(comm: Comm):
    return comm.sum_many if comm.active else None


def aim_mean(x: Tensor, w: Tensor, init: Tensor | None, tol: float, max_iter: int, norm_scale: float,
             ab: tuple[float, float], comm: Comm) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``_mean_spd.aim_mean`` with all-reduced cost, gradient and Hessian–vector products."""
    init = spd_init("ai", x, w, comm) if init is None else init.expand(x.shape[:-3] + x.shape[-2:])
    mean, it, gn, conv, _ = _spd.aim_mean(x, w, init, tol, max_iter, norm_scale, ab, reduce=_hook(comm))
    return mean, it, gn, conv


def bw_mean(x: Tensor, w: Tensor, init: Tensor | None, tol: float, max_iter: int, comm: Comm
            ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``_mean_spd.bw_mean`` with the sum of square roots all-reduced."""
    s = spd_init("bw", x, w, comm) if init is None else init.expand(x.shape[:-3] + x.shape[-2:])
    return _spd.bw_mean(x, w, s, tol, max_iter, reduce=_hook(comm))


def karcher_mean(m: Manifold, x: Tensor, w: Tensor, init: Tensor, tol: float, max_iter: int, comm: Comm
                 ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``_mean_generic.karcher_mean`` with the tangent sum ``Σ wᵢ log_M Xᵢ`` and cost all-reduced."""
    return _gen.karcher_mean(m, x, w, init, tol, max_iter, reduce=_hook(comm))
