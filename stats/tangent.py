"""Variance and the tangent-space mapping (log/exp of a batch at one reference point).

* :func:`variance`: ``Σ wᵢ d²(M, Xᵢ)`` (weights normalized) around the Fréchet mean ``M`` (or a
  given point), per group.
* :func:`tangent_space` / :func:`tangent_space_inverse`: ``Log_ref(Xᵢ)`` / ``Exp_ref(Vᵢ)`` for a
  whole batch at one reference. For SPD with ``vectorize=True`` the vectors are the isometric
  ``vech`` coordinates (``√2`` off-diagonal scaling) of the log transported to the identity
  (:func:`riemlearn.manifolds.spd_vectorize.tangent_space`), so ``‖vᵢ‖ = d(ref, Xᵢ)``.
  For the plain affine-invariant metric the reference's square roots are computed once for the
  batch (one ``eigh`` per point instead of two).
"""

from __future__ import annotations

from torch import Tensor

from ..manifolds.base import Manifold
from ..manifolds.spectral import expm, logm, sqrtm_invsqrtm, sym
from .frechet_mean import _check_points, check_weights, frechet_mean

__all__ = ["variance", "tangent_space", "tangent_space_inverse"]


def variance(
    points: Tensor,
    manifold: Manifold,
    weights: Tensor | None = None,
    *,
    mean: Tensor | None = None,
) -> Tensor:
    """Weighted mean of squared geodesic distances to the mean, per group.

    Parameters
    ----------
    points : Tensor, shape (*groups, N, *point_shape)
    manifold : Manifold
    weights : Tensor, shape (N,) or (*groups, N), optional
        Non-negative, normalized per group (uniform by default).
    mean : Tensor, shape (*groups, *point_shape), optional
        Centre; the Fréchet mean (:func:`~riemlearn.stats.frechet_mean.frechet_mean`) by default.

    Returns
    -------
    Tensor, shape (*groups,)

    Examples
    --------
    >>> import torch
    >>> from riemlearn.manifolds import Euclidean
    >>> from riemlearn.stats.tangent import variance
    >>> x = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    >>> float(variance(x, Euclidean(2)))
    1.0
    """
    _check_points(points, manifold)
    nd = manifold.ndim
    groups = tuple(points.shape[: points.dim() - nd - 1])
    n_pts = points.shape[points.dim() - nd - 1]
    w = check_weights(weights, groups, n_pts, points)
    if mean is None:
        mean = frechet_mean(points, manifold, w)
    centre = mean.unsqueeze(-nd - 1).expand_as(points)
    d = manifold.dist(centre, points)
    return (w * d * d).sum(-1)


def _is_plain_ai(manifold: Manifold) -> bool:
    from ..manifolds.spd_affine_invariant import AffineInvariant

    met = manifold.metric
    return (type(met) is AffineInvariant and met.theta == 1.0 and type(manifold).__name__ == "SPD")


def _check_ref(reference: Tensor, manifold: Manifold) -> None:
    problem = manifold.shape_problem(reference)
    if problem is not None:
        raise ValueError(f"reference {problem}")


def _vech_fast_path(manifold: Manifold) -> bool:
    """For ``vectorize=True``: ``ValueError`` unless SPD; whether the metric is the unweighted,
    undeformed affine-invariant one (whose vectors need only the reference's square roots)."""
    if type(manifold).__name__ != "SPD":
        raise ValueError(f"vectorize=True needs an SPD manifold, got {manifold!r}")
    return _is_plain_ai(manifold) and manifold.metric.alpha == 1.0 and manifold.metric.beta == 0.0


def tangent_space(
    points: Tensor, reference: Tensor, manifold: Manifold, *, vectorize: bool = False
) -> Tensor:
    """``Log_ref(Xᵢ)`` for a batch of points at one reference (or one per batch element).

    Parameters
    ----------
    points : Tensor, shape (*batch, *point_shape)
    reference : Tensor, shape (*point_shape) or broadcastable to (*batch, *point_shape)
    manifold : Manifold
    vectorize : bool, default False
        SPD only: return isometric ``vech`` coordinates ``(*batch, n(n+1)/2)`` of the log
        transported to the identity (pyriemann's ``tangent_space`` for the affine-invariant
        metric).

    Returns
    -------
    Tensor, shape (*batch, *point_shape) or (*batch, n(n+1)/2)

    Examples
    --------
    >>> import torch
    >>> from riemlearn.manifolds import SPD
    >>> from riemlearn.stats.tangent import tangent_space, tangent_space_inverse
    >>> m = SPD(3)
    >>> x = m.random_point(5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    >>> v = tangent_space(x, x[0], m, vectorize=True)
    >>> v.shape, torch.allclose(v.norm(dim=-1), m.dist(x[0].expand_as(x), x))
    (torch.Size([5, 6]), True)
    >>> torch.allclose(tangent_space_inverse(v, x[0], m, vectorize=True), x)
    True
    """
    _check_points(points.unsqueeze(0), manifold)
    _check_ref(reference, manifold)
    if vectorize:
        from ..manifolds.spd_vectorize import tangent_space as spd_ts

        if _vech_fast_path(manifold):
            from ..manifolds.spd_vectorize import vech

            _, isq = sqrtm_invsqrtm(reference)
            return vech(logm(sym(isq @ points @ isq)))
        return spd_ts(points, reference, manifold.metric)
    if _is_plain_ai(manifold):
        s, isq = sqrtm_invsqrtm(reference)
        return sym(s @ logm(sym(isq @ points @ isq)) @ s)
    ref = reference.expand_as(points)
    return manifold.log(ref, points)


def tangent_space_inverse(
    vectors: Tensor, reference: Tensor, manifold: Manifold, *, vectorize: bool = False
) -> Tensor:
    """``Exp_ref(Vᵢ)``: inverse of :func:`tangent_space` (same shapes and options)."""
    _check_ref(reference, manifold)
    if vectorize:
        from ..manifolds.spd_vectorize import untangent_space, unvech

        if _vech_fast_path(manifold):
            s, _ = sqrtm_invsqrtm(reference)
            return sym(s @ expm(unvech(vectors)) @ s)
        return untangent_space(vectors, reference, manifold.metric)
    if _is_plain_ai(manifold):
        s, isq = sqrtm_invsqrtm(reference)
        return sym(s @ expm(sym(isq @ vectors @ isq)) @ s)
    ref = reference.expand_as(vectors)
    return manifold.exp(ref, vectors)
