"""Distributed Fréchet means: the points are sharded over the ranks of a process group.

Every rank passes its own shard ``(*groups, N_r, *point_shape)`` (``N_r`` may differ between
ranks) and gets back the same mean, the weighted Fréchet mean of the union of all shards — the
answer of :func:`riemlearn.stats.frechet_mean` on the concatenated points, up to the rounding of
the partial sums. The algorithms are the single-process loops themselves
(``riemlearn.stats._mean_spd`` / ``_mean_generic``, called with a ``reduce`` hook); only the sums
over points are all-reduced:

* closed forms (Euclidean, SPD log-Euclidean, log-Cholesky): one all-reduce of the weighted sum
  (differentiable: the backward all-reduces the gradient, as for a loss summed over ranks);
* SPD affine-invariant (Newton–CG in the whitened frame): per iteration one all-reduce of
  ``(cost, Σ wᵢ log Yᵢ)`` and one per conjugate-gradient step (Hessian–vector product);
* SPD Bures–Wasserstein (fixed point): one all-reduce of ``Σ wᵢ (S^{1/2} Xᵢ S^{1/2})^{1/2}``;
* any other manifold (Karcher gradient descent): one all-reduce of the weighted tangent sum
  ``Σ wᵢ log_M Xᵢ`` and the cost per trial step.

All reductions are ``SUM`` all-reduces, so every rank runs the same iterates and stops at the same
iteration. Each rank does the ``eigh`` / ``log`` work of its own points only.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ..manifolds.base import Manifold
from ..manifolds.euclidean import FlatMetric
from ..manifolds.spectral import eigh, expm, logm, powm, sym
from ..stats import _mean_spd as _spd
from ..stats.frechet_mean import (
    FrechetMeanInfo,
    _check_init,
    _check_points,
    _compute_dtype,
    _spd_kind,
    _validated_weights,
    default_tol,
    finish_mean,
)
from ._comm import Comm
from ._mean_loops import aim_mean, bw_mean, karcher_mean

__all__ = ["frechet_mean"]


def _local_weights(weights: Tensor | None, groups: tuple[int, ...], n: int, ref: Tensor) -> Tensor:
    """Unnormalized local weights ``(*groups, N_r)`` (validated)."""
    if weights is None:
        return torch.ones(groups + (n,), dtype=ref.dtype, device=ref.device)
    return _validated_weights(weights, groups, n, ref).to(ref.dtype)


def _generic_init(m: Manifold, x: Tensor, w: Tensor, comm: Comm) -> Tensor:
    """The single-process starting point, from all-reduced extrinsic sums."""
    nd = m.ndim
    wb = w.reshape(w.shape + (1,) * nd)
    name = type(m).__name__
    if name == "Grassmann":
        (proj,) = comm.sum_many((wb * (x @ x.mT)).sum(-3))
        _, vecs = eigh(proj)
        return vecs[..., -x.shape[-1]:]
    (s,) = comm.sum_many((wb * x).sum(-nd - 1))
    # the rank-0 first point is the fallback (as the single-process first point)
    first = x.select(-nd - 1, 0).clone()
    if comm.active:
        import torch.distributed as dist

        dist.broadcast(first, src=dist.get_global_rank(comm.group, 0), group=comm.group)
    ones = torch.ones(s.shape[: s.dim() - nd] + (1,), dtype=w.dtype, device=w.device)
    if name == "Lorentz":  # the Lorentz centroid of the sum (the single-process formula)
        from ..stats.frechet_mean import _generic_init as _single

        return _single(m, s.unsqueeze(-nd - 1), ones)
    try:
        out = m.project_point(s)
    except Exception:  # noqa: BLE001 - any failure: fall back to a data point
        return first
    ok = torch.isfinite(out).reshape(out.shape[: out.dim() - nd] + (-1,)).all(-1)
    ok = ok & m.belongs(torch.where(torch.isfinite(out), out, first))
    return torch.where(ok.reshape(ok.shape + (1,) * nd), out, first)


def _spd_mean(kind: str, metric: Any, x: Tensor, w: Tensor, init: Tensor | None, tol: float,
              max_iter: int, comm: Comm) -> tuple[Tensor, Tensor, Tensor, Tensor, str]:
    groups = x.shape[:-3]
    zi = torch.zeros(groups, dtype=torch.long, device=x.device)
    zf = torch.zeros(groups, dtype=x.dtype, device=x.device)
    if kind == "le":
        return expm(comm.sum(_spd._wsum(w, logm(x)))), zi, zf, zf == 0, "log-Euclidean closed form"
    theta = float(getattr(metric, "theta", 1.0))
    if theta != 1.0:
        x = powm(x, theta)
        init = powm(init, theta) if init is not None else None
    if kind == "lc":  # Lin (2019) closed form: one all-reduce of the factor statistics
        c = torch.linalg.cholesky(sym(x))
        n = x.shape[-1]
        logd = (w[..., None] * torch.log(c.diagonal(dim1=-2, dim2=-1))).sum(-2)
        packed = comm.sum(torch.cat([_spd._wsum(w, c.tril(-1)).reshape(-1, n * n), logd], -1))
        lm = packed[..., : n * n].reshape(-1, n, n) + torch.diag_embed(torch.exp(packed[..., n * n:]))
        mean, it, gn, conv, alg = lm @ lm.mT, zi, zf, zf == 0, "log-Cholesky closed form"
    else:
        xd, wd = x.detach(), w.detach()
        if kind == "ai":
            ab = (float(getattr(metric, "alpha", 1.0)), float(getattr(metric, "beta", 0.0)))
            mean, it, gn, conv = aim_mean(xd, wd, init, tol * abs(theta), max_iter, 1.0 / abs(theta),
                                          ab, comm)
            alg = "affine-invariant Newton-CG (whitened frame, Armijo)"
        else:
            mean, it, gn, conv = bw_mean(xd, wd, init, tol * abs(theta), max_iter, comm)
            gn = gn / abs(theta)
            alg = "Bures-Wasserstein fixed point (Alvarez-Esteban et al. 2016)"
    if theta != 1.0:
        mean = powm(mean, 1.0 / theta)
    return mean, it, gn, conv, alg


def frechet_mean(
    points: Tensor,
    manifold: Manifold,
    weights: Tensor | None = None,
    *,
    process_group: Any = None,
    tol: float | None = None,
    max_iter: int = 100,
    init: Tensor | None = None,
    return_info: bool = False,
) -> Tensor | tuple[Tensor, FrechetMeanInfo]:
    """Weighted Fréchet mean of points sharded over the ranks of a process group.

    Call it on every rank of ``process_group`` with that rank's shard; every rank returns the same
    mean, that of all shards together (as :func:`riemlearn.stats.frechet_mean` on the
    concatenation, to rounding). Without an initialized ``torch.distributed`` it is the
    single-process mean.

    Parameters
    ----------
    points : Tensor, shape (*groups, N_r, *point_shape)
        This rank's ``N_r >= 1`` points per group (``N_r`` may differ between ranks; ``groups``
        and ``point_shape`` must not).
    manifold : Manifold
        The space and metric, the same on every rank.
    weights : Tensor, shape (N_r,) or (*groups, N_r), optional
        Non-negative weights of this rank's points, normalized over *all* ranks (uniform by
        default: every point of every rank weighs ``1 / Σ_r N_r``).
    process_group : ProcessGroup, optional
        The group whose ranks hold the shards (default: the world group).
    tol, max_iter, init, return_info :
        As for :func:`riemlearn.stats.frechet_mean` (``init`` must be the same on every rank).

    Returns
    -------
    mean : Tensor, shape (*groups, *point_shape)
    info : FrechetMeanInfo, only if ``return_info``

    Notes
    -----
    Closed forms (Euclidean, log-Euclidean, log-Cholesky) are differentiable (every rank must
    then run the backward, as with ``DistributedDataParallel``). Iterative means return a
    detached tensor and raise ``NotImplementedError`` if a gradient is required; for
    differentiable batch statistics use :class:`~riemlearn.distributed.SyncRiemannianBatchNorm`.

    Invalid input on one rank raises ``ValueError`` on every rank (no hang).

    Examples
    --------
    >>> import torch
    >>> from riemlearn.manifolds import SPD
    >>> from riemlearn.distributed import frechet_mean
    >>> x = SPD(3).random_point(10, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    >>> m = frechet_mean(x, SPD(3))   # one process: the ordinary mean
    >>> from riemlearn.stats import frechet_mean as single
    >>> bool(torch.allclose(m, single(x, SPD(3)), atol=1e-12))
    True
    """
    comm = Comm(process_group)
    nd = getattr(manifold, "ndim", 0)
    error = None
    try:
        _check_points(points, manifold)
        if not isinstance(max_iter, int) or max_iter < 0:
            raise ValueError(f"max_iter must be a non-negative int, got {max_iter!r}")
        point_shape = tuple(points.shape[points.dim() - nd:])
        groups = tuple(points.shape[: points.dim() - nd - 1])
        n_pts = points.shape[points.dim() - nd - 1]
        w = _local_weights(weights, groups, n_pts, points)
        init = _check_init(init, points, groups, point_shape)
    except ValueError as exc:
        error = exc
    ref = points if isinstance(points, Tensor) and points.dtype.is_floating_point else torch.zeros(1)
    if comm.max_flag(error is not None, ref):
        if error is not None:
            raise ValueError(f"rank {comm.rank}: {error}") from error
        raise ValueError("invalid points or weights on another rank")
    g = math.prod(groups)
    if comm.active:  # the shapes must agree; the weight totals normalize
        shape_code = torch.tensor([float(g)] + [float(s) for s in point_shape], dtype=points.dtype,
                                  device=points.device)
        (sc,) = comm.sum_many(shape_code)
        if not torch.equal(sc, shape_code * comm.world_size):
            raise ValueError("points must have the same (*groups, *point_shape) on every rank")
    wf = w.reshape(g, n_pts)
    total = comm.sum(wf.sum(-1))
    if bool((total.detach() <= 0).any()):
        raise ValueError("weights of some group sum to zero over all ranks")
    wf = wf / total[:, None]
    x = points.reshape((g, n_pts) + point_shape)
    initf = init.reshape((g,) + point_shape) if init is not None else None

    metric = manifold.metric
    kind = _spd_kind(metric) if nd == 2 and type(manifold).__name__ == "SPD" else None
    closed = isinstance(metric, FlatMetric) or kind in ("le", "lc")
    if not closed and torch.is_grad_enabled() and (x.requires_grad or wf.requires_grad):
        raise NotImplementedError("the distributed iterative Fréchet mean is not differentiable: "
                                  "call it under torch.no_grad() or on detached points")
    if isinstance(metric, FlatMetric):
        mean = comm.sum((wf.reshape(wf.shape + (1,) * nd) * x).sum(1))
        zf = torch.zeros(g, dtype=x.dtype, device=x.device)
        it = torch.zeros(g, dtype=torch.long, device=x.device)
        gn, conv, alg = zf, zf == 0, "Euclidean closed form"
    elif kind is not None:
        cdt = _compute_dtype(metric, x.dtype)
        tol_ = default_tol(cdt) if tol is None else float(tol)
        ic = initf.to(cdt) if initf is not None else None
        mean, it, gn, conv, alg = _spd_mean(kind, metric, x.to(cdt), wf.to(cdt), ic, tol_, max_iter, comm)
        mean, gn = mean.to(points.dtype), gn.to(points.dtype)
        tol = tol_ if tol is None else tol
    elif type(manifold).__name__ == "PoincareBall":
        from ..manifolds.hyperbolic_conversions import ball_to_lorentz, lorentz_to_ball
        from ..manifolds.lorentz import Lorentz

        c = float(manifold.metric.c)
        il = ball_to_lorentz(init, c) if init is not None else None
        ml, info = frechet_mean(ball_to_lorentz(points, c), Lorentz(c), weights, process_group=process_group,
                                tol=tol, max_iter=max_iter, init=il, return_info=True)
        mean = lorentz_to_ball(ml, c)
        return (mean, info) if return_info else mean
    else:
        tol_ = default_tol(x.dtype) if tol is None else float(tol)
        xd, wd = x.detach(), wf.detach()
        start = initf.detach() if initf is not None else _generic_init(manifold, xd, wd, comm)
        mean, it, gn, conv = karcher_mean(manifold, xd, wd, start, tol_, max_iter, comm)
        alg = "Riemannian gradient descent (Armijo)"
        tol = tol_ if tol is None else tol
    alg = f"{alg}, distributed over {comm.world_size} rank(s)"
    return finish_mean(mean, it, gn, conv, groups, point_shape, alg, tol, max_iter, return_info)
