"""Riemannian geometric median (Weiszfeld algorithm), batched over groups.

The median minimizes ``Σ wᵢ d(M, Xᵢ)``. The Riemannian Weiszfeld iteration (Fletcher,
Venkatasubramanian & Joshi 2009) moves along

    v = Σᵢ wᵢ log_M(Xᵢ) / dᵢ  /  Σᵢ wᵢ / dᵢ,        M ← exp_M(v).

When ``M`` coincides with data points (``dᵢ = 0``) the plain update is undefined; the usual
safeguard (Vardi & Zhang 2000, carried over to manifolds) drops those points from the sums,
measures ``r = ‖Σ_{dᵢ>0} wᵢ log_M(Xᵢ)/dᵢ‖`` against their total weight ``η`` and either stops
(``r ≤ η``: ``M`` is the median) or takes the step scaled by ``1 − η/r``. The optimality measure
reported is ``max(r − η, 0)`` (the norm of the smallest subgradient), 0 at the median.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor

from ..manifolds.base import Manifold
from ..manifolds.tolerance import eps
from .frechet_mean import FrechetMeanInfo, _check_points, check_weights, default_tol, frechet_mean

__all__ = ["geometric_median"]


def geometric_median(
    points: Tensor,
    manifold: Manifold,
    weights: Tensor | None = None,
    *,
    tol: float | None = None,
    max_iter: int = 200,
    init: Tensor | None = None,
    return_info: bool = False,
) -> Tensor | tuple[Tensor, FrechetMeanInfo]:
    """Weighted geometric median of every group of points (not differentiable).

    Parameters
    ----------
    points : Tensor, shape (*groups, N, *point_shape)
    manifold : Manifold
    weights : Tensor, shape (N,) or (*groups, N), optional
        Non-negative weights (normalized per group).
    tol : float, optional
        Stop when the smallest subgradient norm ``max(r − η, 0)`` is ``<= tol`` (default as for
        :func:`~riemlearn.stats.frechet_mean.frechet_mean`, 1e-10 in float64).
    max_iter : int, default 200
    init : Tensor, shape (*groups, *point_shape), optional
        Start (default: the Fréchet mean, computed to 1e-6).
    return_info : bool
        Also return a :class:`~riemlearn.stats.frechet_mean.FrechetMeanInfo`.

    Returns
    -------
    median : Tensor, shape (*groups, *point_shape)
    info : FrechetMeanInfo, only if ``return_info``

    Examples
    --------
    >>> import torch
    >>> from riemlearn.manifolds import Euclidean
    >>> from riemlearn.stats.median import geometric_median
    >>> x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0]], dtype=torch.float64)
    >>> geometric_median(x, Euclidean(2))  # a data point: the safeguard stops exactly there
    tensor([1., 0.], dtype=torch.float64)
    """
    _check_points(points, manifold)
    nd = manifold.ndim
    point_shape = tuple(points.shape[points.dim() - nd:])
    groups = tuple(points.shape[: points.dim() - nd - 1])
    n_pts = points.shape[points.dim() - nd - 1]
    g = math.prod(groups)
    with torch.no_grad():
        w = check_weights(weights, groups, n_pts, points).reshape(g, n_pts)
        x = points.detach().reshape((g, n_pts) + point_shape)
        tol_ = default_tol(x.dtype) if tol is None else float(tol)
        if init is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                m = frechet_mean(x, manifold, w, tol=max(tol_, 1e-6), max_iter=50)
        else:
            m = init.detach().to(x.dtype).expand((*groups, *point_shape)).reshape((g,) + point_shape)
        m, it, opt = _weiszfeld(manifold, x, w, m, tol_, max_iter)
    conv = opt <= tol_
    if not bool(conv.all()):
        warnings.warn(f"geometric_median did not converge for {int((~conv).sum())} of {g} group(s) in "
                      f"{max_iter} iterations: largest optimality gap {float(opt.max()):.3g} > {tol_:.3g}",
                      RuntimeWarning, stacklevel=2)
    median = m.reshape(groups + point_shape)
    if not return_info:
        return median
    return median, FrechetMeanInfo(it.reshape(groups), opt.reshape(groups), conv.reshape(groups),
                                   "Riemannian Weiszfeld (Vardi-Zhang safeguard)")


def _weiszfeld(m: Manifold, x: Tensor, w: Tensor, mean: Tensor, tol: float, max_iter: int):
    nd = m.ndim
    g = w.shape[0]

    def bc(t: Tensor) -> Tensor:
        return t.reshape(t.shape + (1,) * nd)

    iters = torch.zeros(g, dtype=torch.long, device=x.device)
    opt = torch.full((g,), float("inf"), dtype=x.dtype, device=x.device)
    for k in range(max_iter + 1):
        base = mean.unsqueeze(1).expand_as(x)
        logs = m.log(base, x)
        d = m.norm(base, logs)
        scale = d.amax(-1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)
        hit = d <= 64 * eps(x.dtype) * (1 + scale)  # the iterate sits on these data points
        inv = torch.where(hit, torch.zeros_like(d), w / torch.where(hit, torch.ones_like(d), d))
        eta = (w * hit).sum(-1)
        rvec = (bc(inv) * logs).sum(1)  # Σ_{dᵢ>0} wᵢ log/dᵢ (minus the gradient of Σ w d)
        r = m.norm(mean, rvec)
        opt = (r - eta).clamp_min(0)
        active = opt > tol
        if not bool(active.any()) or k == max_iter:
            break
        den = inv.sum(-1).clamp_min(torch.finfo(x.dtype).tiny)
        factor = torch.where(eta > 0, (1 - eta / r.clamp_min(torch.finfo(x.dtype).tiny)).clamp_min(0),
                             torch.ones_like(r))
        step = bc(torch.where(active, factor / den, torch.zeros_like(den))) * rvec
        mean = m.exp(mean, step)
        iters = iters + active.long()
    return mean, iters, opt
