"""Sliced-Wasserstein distance between distributions of SPD matrices, and its Gaussian kernel.

Bonet, Malézieux, Rakotomamonjy, Drumetz, Moreau, Kowalski & Courty (2023), "Sliced-Wasserstein on
symmetric positive definite matrices for M/EEG signals" (ICML), log-Euclidean variant: a direction
is a symmetric matrix ``A = P diag(θ) Pᵀ`` with ``P`` Haar-distributed on O(n) and ``θ`` uniform
on the unit sphere of ``Rⁿ`` (so ``‖A‖_F = 1``); a matrix ``X`` projects to the real number
``tr(A log X)``. Then

    SW_p(μ, ν)^p = E_A [ W_p^p(P^A_# μ, P^A_# ν) ],

estimated with ``n_projections`` directions, each 1-D Wasserstein distance computed exactly
from the quantile functions of the projected (weighted) empirical distributions.

``SW_2`` is a Hilbertian distance (an L² distance between quantile functions), so
``exp(−γ SW_2²)`` is a positive definite kernel usable as a scikit-learn precomputed kernel.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..manifolds.spectral import logm, sym

__all__ = [
    "random_symmetric_directions",
    "wasserstein_1d",
    "spd_sliced_wasserstein",
    "spd_sliced_wasserstein_kernel",
]


def random_symmetric_directions(n: int, n_projections: int, generator: torch.Generator | None = None,
                                dtype: torch.dtype = torch.float64, device: Any = None) -> Tensor:
    """Directions ``A = P diag(θ) Pᵀ`` (``P`` Haar on O(n), ``θ`` uniform on Sⁿ⁻¹), ``(L, n, n)``."""
    if n < 1 or n_projections < 1:
        raise ValueError(f"n and n_projections must be >= 1, got {n}, {n_projections}")
    gdev = generator.device if generator is not None else "cpu"
    g = torch.randn(n_projections, n, n, generator=generator, dtype=dtype, device=gdev)
    q, r = torch.linalg.qr(g)
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)  # Haar (Mezzadri 2007)
    theta = torch.randn(n_projections, n, generator=generator, dtype=dtype, device=gdev)
    theta = theta / theta.norm(dim=-1, keepdim=True)
    a = sym((q * theta.unsqueeze(-2)) @ q.mT)
    return a.to(device) if device is not None else a


def wasserstein_1d(u: Tensor, v: Tensor, u_weights: Tensor | None = None, v_weights: Tensor | None = None,
                   p: float = 2.0) -> Tensor:
    """Exact ``W_p^p`` between 1-D empirical distributions along the last dimension.

    ``u (*batch, N)``, ``v (*batch, M)`` with optional weights of the same shapes (normalized
    internally); returns ``(*batch,)``. Computed as ``∫₀¹ |F⁻¹(t) − G⁻¹(t)|^p dt`` over the merged
    breakpoints of both cumulative distribution functions.
    """
    batch = torch.broadcast_shapes(u.shape[:-1], v.shape[:-1])
    if u_weights is not None:
        u_weights = u_weights.to(u).expand_as(u)
    if v_weights is not None:
        v_weights = v_weights.to(v).expand_as(v)
    u, v = u.expand(batch + u.shape[-1:]), v.expand(batch + v.shape[-1:])
    u_sorted, iu = torch.sort(u, dim=-1)
    v_sorted, iv = torch.sort(v, dim=-1)
    if u_weights is None and v_weights is None and u.shape[-1] == v.shape[-1]:
        return (u_sorted - v_sorted).abs().pow(p).mean(-1)
    a = torch.ones_like(u) if u_weights is None else u_weights.expand_as(u)
    b = torch.ones_like(v) if v_weights is None else v_weights.expand_as(v)
    a = torch.gather(a, -1, iu)
    b = torch.gather(b, -1, iv)
    cu = torch.cumsum(a, -1)
    cu = cu / cu[..., -1:]
    cv = torch.cumsum(b, -1)
    cv = cv / cv[..., -1:]
    t, _ = torch.sort(torch.cat([cu, cv], dim=-1), dim=-1)
    t_prev = torch.cat([torch.zeros_like(t[..., :1]), t[..., :-1]], dim=-1)
    dt = (t - t_prev).clamp_min(0)
    mid = 0.5 * (t + t_prev)
    ku = torch.searchsorted(cu.contiguous(), mid.contiguous()).clamp_max(u.shape[-1] - 1)
    kv = torch.searchsorted(cv.contiguous(), mid.contiguous()).clamp_max(v.shape[-1] - 1)
    qu = torch.gather(u_sorted, -1, ku)
    qv = torch.gather(v_sorted, -1, kv)
    return (dt * (qu - qv).abs().pow(p)).sum(-1)


def _check_spd_batch(x: Any, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        x = torch.as_tensor(np.asarray(x, dtype=np.float64))
    if x.dim() < 3 or x.shape[-1] != x.shape[-2]:
        raise ValueError(f"{name} must have shape (*batch, N, n, n), got {tuple(x.shape)}")
    if x.shape[-3] == 0:
        raise ValueError(f"{name} is empty")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN/inf")
    return x


def _projections(x: Tensor, a: Tensor) -> Tensor:
    """``tr(A_l log Xᵢ)``: ``(*batch, N, n, n)`` × ``(L, n, n)`` → ``(*batch, L, N)``."""
    lx = logm(x)
    flat = lx.reshape(lx.shape[:-2] + (-1,))  # (*batch, N, n²)
    return (flat @ a.reshape(a.shape[0], -1).mT).transpose(-1, -2)


def spd_sliced_wasserstein(
    X: Tensor,
    Y: Tensor,
    n_projections: int = 200,
    generator: torch.Generator | None = None,
    p: float = 2.0,
    *,
    x_weights: Tensor | None = None,
    y_weights: Tensor | None = None,
    directions: Tensor | None = None,
) -> Tensor:
    """Log-Euclidean sliced-Wasserstein distance ``SW_p`` between two sets of SPD matrices.

    Parameters
    ----------
    X : Tensor, shape (*batch, N, n, n)
        Samples of the first distribution (SPD).
    Y : Tensor, shape (*batch, M, n, n)
        Samples of the second distribution.
    n_projections : int, default 200
        Number of random symmetric directions.
    generator : torch.Generator, optional
        Source of the directions (reproducible results).
    p : float, default 2
        Order of the Wasserstein distance (``>= 1``).
    x_weights, y_weights : Tensor, shape (*batch, N) / (*batch, M), optional
        Sample weights (uniform by default).
    directions : Tensor, shape (L, n, n), optional
        Use these symmetric unit-norm directions instead of drawing them.

    Returns
    -------
    Tensor, shape (*batch,)

    Examples
    --------
    >>> import torch
    >>> from riemlearn.manifolds import SPD
    >>> from riemlearn.stats.sliced_wasserstein import spd_sliced_wasserstein
    >>> g = torch.Generator().manual_seed(0)
    >>> x = SPD(3).random_point(50, generator=g, dtype=torch.float64)
    >>> float(spd_sliced_wasserstein(x, x, 20, generator=g))
    0.0
    """
    if not p >= 1:
        raise ValueError(f"p must be >= 1, got {p}")
    x = _check_spd_batch(X, "X")
    y = _check_spd_batch(Y, "Y").to(x)
    if x.shape[-1] != y.shape[-1]:
        raise ValueError(f"X and Y hold matrices of different sizes: {x.shape[-1]} and {y.shape[-1]}")
    a = directions if directions is not None else random_symmetric_directions(
        x.shape[-1], int(n_projections), generator, x.dtype, x.device)
    a = a.to(x)
    px, py = _projections(x, a), _projections(y, a)
    xw = x_weights.unsqueeze(-2) if x_weights is not None else None
    yw = y_weights.unsqueeze(-2) if y_weights is not None else None
    wp = wasserstein_1d(px, py, xw, yw, p)  # (*batch, L)
    return wp.mean(-1).pow(1.0 / p)


def spd_sliced_wasserstein_kernel(
    X: Sequence[Any] | Tensor | np.ndarray,
    Y: Sequence[Any] | Tensor | np.ndarray | None = None,
    *,
    n_projections: int = 200,
    generator: torch.Generator | None = None,
    gamma: float = 1.0,
    p: float = 2.0,
    return_distance: bool = False,
) -> Any:
    """Gram matrix ``K_ij = exp(−γ SW_p(μ_i, ν_j)²)`` between distributions of SPD matrices.

    Parameters
    ----------
    X : (n_x, N, n, n) array/tensor, or a sequence of (N_i, n, n) arrays (sizes may differ)
        Each entry is one distribution (a set of SPD matrices, e.g. the covariances of the
        sliding windows of one recording).
    Y : like ``X``, optional
        Defaults to ``X`` (a square, symmetric kernel matrix for ``fit``).
    n_projections, generator, p : as in :func:`spd_sliced_wasserstein`
        The same directions are used for every pair (a valid kernel needs that).
    gamma : float, default 1.0
    return_distance : bool, default False
        Return the ``SW_p`` distance matrix instead of the kernel.

    Returns
    -------
    ndarray (numpy input) or Tensor, shape (n_x, n_y)
        Use with ``sklearn.svm.SVC(kernel="precomputed")``: ``fit(K(X_train))``,
        ``predict(K(X_test, X_train))`` with the same ``generator`` seed.
    """
    was_numpy = not isinstance(X, Tensor) and not (isinstance(X, Sequence) and len(X) > 0
                                                     and isinstance(X[0], Tensor))
    xs = _as_list(X, "X")
    ys = xs if Y is None else _as_list(Y, "Y")
    n = xs[0].shape[-1]
    if any(t.shape[-1] != n for t in xs + ys):
        raise ValueError("all distributions must hold matrices of the same size")
    ref = xs[0]
    a = random_symmetric_directions(n, int(n_projections), generator, ref.dtype, ref.device)
    qx = [torch.sort(_projections(t, a), dim=-1)[0] for t in xs]  # (L, N_i) each
    qy = qx if Y is None else [torch.sort(_projections(t.to(ref), a), dim=-1)[0] for t in ys]
    same_size = len({q.shape[-1] for q in qx + qy}) == 1
    if same_size:
        sx, sy = torch.stack(qx), torch.stack(qy)  # (n_x, L, N)
        diff = (sx.unsqueeze(1) - sy.unsqueeze(0)).abs().pow(p)  # (n_x, n_y, L, N)
        wpp = diff.mean((-1, -2))
    else:  # pad to a common size with zero-weight copies of the largest value
        px, wx = _pad(qx)
        py, wy = (px, wx) if Y is None else _pad(qy)
        wpp = wasserstein_1d(px.unsqueeze(1), py.unsqueeze(0), wx.unsqueeze(1), wy.unsqueeze(0), p).mean(-1)
    dist = wpp.clamp_min(0).pow(1.0 / p)
    out = dist if return_distance else torch.exp(-gamma * dist * dist)
    return out.detach().cpu().numpy() if was_numpy else out


def _pad(qs: list[Tensor]) -> tuple[Tensor, Tensor]:
    """Stack sorted ``(L, N_i)`` projections as ``(k, L, N_max)`` with weights ``(k, L, N_max)``."""
    size = max(q.shape[-1] for q in qs)
    vals, wts = [], []
    for q in qs:
        extra = size - q.shape[-1]
        vals.append(torch.cat([q, q[..., -1:].expand(q.shape[:-1] + (extra,))], -1))
        w = torch.ones_like(q)
        wts.append(torch.cat([w, torch.zeros(q.shape[:-1] + (extra,), dtype=q.dtype, device=q.device)], -1))
    return torch.stack(vals), torch.stack(wts)


def _as_list(x: Any, name: str) -> list[Tensor]:
    if isinstance(x, Tensor) or isinstance(x, np.ndarray):
        t = _check_spd_batch(torch.as_tensor(x) if isinstance(x, np.ndarray) else x, name)
        if t.dim() != 4:
            raise ValueError(f"{name} must have shape (n_distributions, N, n, n), got {tuple(t.shape)}")
        return list(t.unbind(0))
    if not isinstance(x, Sequence) or len(x) == 0:
        raise ValueError(f"{name} must be an array (n_distributions, N, n, n) or a non-empty sequence")
    out = [_check_spd_batch(torch.as_tensor(np.asarray(e, dtype=np.float64)) if not isinstance(e, Tensor)
                            else e, f"{name}[{i}]") for i, e in enumerate(x)]
    if any(t.dim() != 3 for t in out):
        raise ValueError(f"each entry of {name} must have shape (N_i, n, n)")
    return out
