"""Vectorization of symmetric matrices and the tangent-space mapping of SPD data.

``vech`` keeps the upper triangle (row-major, diagonal included) with off-diagonal entries
scaled by ``√2``, so that ``⟨vech a, vech b⟩ = tr(ab)``: an isometry from Sym(n) with the
Frobenius inner product onto ``R^{n(n+1)/2}`` (the ordering of pyriemann's ``upper``).

:func:`tangent_space` maps points to vectors at a reference point: ``Log_ref(x)`` is transported
to the identity (parallel transport of the metric) and written in coordinates that are
orthonormal for the metric at the identity, so that ``‖tangent_space(x, ref)‖ = d(ref, x)``.
For the affine-invariant metric this is ``vech(logm(ref^{-1/2} x ref^{-1/2}))`` (pyriemann's
``tangent_space(..., metric="riemann")``), for the log-Euclidean metric
``vech(log x − log ref)``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .base import Metric

__all__ = ["vech", "unvech", "tangent_space", "untangent_space"]


def _weights(n: int, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    r, c = torch.triu_indices(n, n, device=device)
    # √2 built in the target dtype (a float32 √2 would cost 1e-8 relative in float64).
    w = torch.full(r.shape, math.sqrt(2.0), dtype=dtype, device=device)
    w[r == c] = 1.0
    return r, c, w


def vech(a: Tensor) -> Tensor:
    """Upper triangle of symmetric ``(*batch, n, n)`` as ``(*batch, n(n+1)/2)``, off-diagonals ×√2.

    Examples
    --------
    >>> import torch
    >>> from riemlearn.manifolds.spd_vectorize import vech
    >>> a = torch.tensor([[1.0, 2.0], [2.0, 3.0]], dtype=torch.float64)
    >>> vech(a)
    tensor([1.0000, 2.8284, 3.0000], dtype=torch.float64)
    >>> torch.allclose(vech(a) @ vech(a), (a * a).sum())
    True
    """
    if a.dim() < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"a must have shape (*batch, n, n), got {tuple(a.shape)}")
    r, c, w = _weights(a.shape[-1], a.dtype, a.device)
    return a[..., r, c] * w


def unvech(t: Tensor) -> Tensor:
    """Inverse of :func:`vech`: ``(*batch, n(n+1)/2)`` → symmetric ``(*batch, n, n)``."""
    if t.dim() < 1:
        raise ValueError("t must have at least one dimension")
    d = t.shape[-1]
    n = int(round((math.sqrt(8 * d + 1) - 1) / 2))
    if n * (n + 1) // 2 != d:
        raise ValueError(f"t has {d} entries in its last dimension, not n(n+1)/2 for any n")
    r, c, w = _weights(n, t.dtype, t.device)
    vals = t / w
    out = t.new_zeros(t.shape[:-1] + (n, n))
    out[..., r, c] = vals
    out[..., c, r] = vals
    return out


def _resolve(metric: str | Metric) -> Metric:
    from .spd import resolve_spd_metric

    return resolve_spd_metric(metric)


def _coords(metric: Metric, a: Tensor) -> Tensor:
    fn = getattr(metric, "identity_coords", None)
    return a if fn is None else fn(a)


def _coords_inv(metric: Metric, c: Tensor) -> Tensor:
    fn = getattr(metric, "identity_coords_inv", None)
    return c if fn is None else fn(c)


def tangent_space(x: Tensor, ref: Tensor, metric: str | Metric = "affine_invariant") -> Tensor:
    """Vectors ``(*batch, n(n+1)/2)`` of SPD ``x`` at the reference point ``ref``.

    ``vech(C(Γ_{ref→I} Log_ref(x)))`` with ``Γ`` the metric's parallel transport and ``C`` the
    metric's orthonormal coordinates at the identity (``identity_coords``; the identity map
    for the unweighted affine-invariant and log-Euclidean metrics). Isometric:
    ``‖tangent_space(x, ref)‖ = d(ref, x)``.

    Parameters
    ----------
    x : Tensor, shape (*batch, n, n)
    ref : Tensor, shape (n, n) or (*batch, n, n)
    metric : str or Metric
        As in :class:`~riemlearn.manifolds.SPD`.

    Examples
    --------
    >>> import torch
    >>> from riemlearn.manifolds import SPD
    >>> from riemlearn.manifolds.spd_vectorize import tangent_space, untangent_space
    >>> m = SPD(3)
    >>> x = m.random_point(4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    >>> t = tangent_space(x, x[0])
    >>> t.shape
    torch.Size([4, 6])
    >>> torch.allclose(untangent_space(t, x[0]), x)
    True
    """
    met = _resolve(metric)
    eye = torch.eye(x.shape[-1], dtype=x.dtype, device=x.device)
    ref = ref.expand_as(x) if ref.shape != x.shape else ref
    u = met.log(ref, x)
    return vech(_coords(met, met.transport(ref, eye.expand_as(x), u)))


def untangent_space(t: Tensor, ref: Tensor, metric: str | Metric = "affine_invariant") -> Tensor:
    """Inverse of :func:`tangent_space`: SPD ``(*batch, n, n)`` from vectors at ``ref``."""
    met = _resolve(metric)
    a = _coords_inv(met, unvech(t))
    eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device).expand_as(a)
    ref = ref.expand_as(a) if ref.shape != a.shape else ref
    return met.exp(ref, met.transport(eye, ref, a))
