"""Tangent PCA: principal component analysis of the logs of the data at a reference point.

The data ``Xᵢ`` are mapped to the tangent space at a reference ``P`` (the weighted Fréchet mean by
default) by ``Log_P``; the tangent vectors are written in coordinates that are **orthonormal for
the metric at P** (so that the PCA is carried out in the metric's inner product, whatever the
point representation: for SPD with the affine-invariant metric these coordinates are, up to a
rotation, the whitened ``vech`` coordinates with ``√2`` off-diagonal scaling), and an SVD of the
(weighted) coordinate matrix gives the principal directions. ``inverse_transform`` maps scores
back with ``Exp_P`` of the reconstructed tangent vector.

Orthonormal coordinates, for any manifold and metric: the ambient basis ``E_j`` is projected to
the tangent space (``b_j = project_tangent(P, E_j)``, a spanning family of ``T_P``), its metric Gram
matrix ``G = (⟨b_i, b_j⟩_P)`` is computed with one autograd pass (the "flat" of each ``b_j``),
and ``G = V Λ Vᵀ`` restricted to its ``d = dim M`` non-zero eigenvalues gives the orthonormal basis
``e_k = λ_k^{-1/2} Σ_i V_ik b_i`` and the coordinates ``c(u) = Λ^{-1/2} Vᵀ (⟨u, b_j⟩_P)_j``.

Conventions: variances are *population* variances (weights normalized to one, i.e. divided by
``N``, as :func:`~riemlearn.stats.tangent.variance`), so with the Fréchet mean as reference and
all components kept, ``explained_variance_.sum()`` equals the Fréchet variance
``Σ wᵢ d²(P, Xᵢ)``. scikit-learn's ``PCA`` divides by ``N − 1``. The tangent vectors are not
re-centred: at the Fréchet mean they have zero weighted mean (first-order condition); with a
user-given reference the analysis is of second moments about that reference.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..manifolds.base import Manifold
from ..manifolds.spectral import eigh
from ._sklearn import (
    BaseEstimator,
    TransformerMixin,
    as_tensor,
    check_is_fitted,
    check_sample_weight,
    to_output,
)
from .frechet_mean import frechet_mean
from .tangent import tangent_space

__all__ = ["TangentPCA", "tangent_basis", "resolve_manifold", "check_points_input"]


def resolve_manifold(manifold: Any) -> Manifold:
    """``None`` → ``SPD(affine_invariant)``, a string → that SPD metric, a Manifold as is."""
    from ..manifolds import SPD

    if manifold is None:
        return SPD(metric="affine_invariant")
    if isinstance(manifold, str):
        try:
            return SPD(metric=manifold)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"manifold: {exc}") from exc
    if not isinstance(manifold, Manifold):
        raise ValueError("manifold must be a riemlearn Manifold, an SPD metric name or None, "
                         f"got {type(manifold).__name__}")
    return manifold


def check_points_input(X: Any, m: Manifold, name: str = "X", *, min_points: int = 1
                       ) -> tuple[Tensor, bool]:
    """Validate ``(n_samples, *point_shape)`` points of ``m``; return ``(tensor, was_numpy)``."""
    t, was_numpy = as_tensor(X, name)
    if t.dim() != m.ndim + 1:
        raise ValueError(f"{name} must have shape (n_samples, *point_shape) with {m.ndim} point "
                         f"dimension(s), got {tuple(t.shape)}")
    if t.shape[0] < min_points:
        raise ValueError(f"{name} has {t.shape[0]} samples, at least {min_points} needed")
    problem = m.shape_problem(t)
    if problem is not None:
        raise ValueError(f"{name} {problem}")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN/inf")
    bad = ~m.belongs(t)
    if bool(bad.any()):
        i = int(torch.nonzero(bad)[0, 0])
        raise ValueError(f"{name}[{i}] is not a point of {m!r} ({m.violation_description()} "
                         f"= {float(m.point_violation(t[i])):.3g})")
    return t, was_numpy


def check_scores(X: Any, k: int) -> tuple[Tensor, bool]:
    """Validate scores ``X (n_samples, k)`` (finite); return ``(tensor, was_numpy)``."""
    s, was_numpy = as_tensor(X, "X")
    if s.dim() != 2 or s.shape[1] != k:
        raise ValueError(f"X must have shape (n_samples, {k}), got {tuple(s.shape)}")
    if not bool(torch.isfinite(s).all()):
        raise ValueError("X contains NaN/inf")
    return s, was_numpy


def points_from_scores(m: Manifold, ref: Tensor, comps: Tensor, s: Tensor) -> Tensor:
    """``Exp_ref(Σ_k s_k comps_k)`` for scores ``(n_samples, K)`` and components
    ``(K, *point_shape)`` (already in ``s``'s dtype/device); no gradient through ``exp``."""
    u = (s @ comps.reshape(comps.shape[0], -1)).reshape((s.shape[0],) + tuple(comps.shape[1:]))
    with torch.no_grad():
        return m.exp(ref.expand_as(u), u)

def tangent_basis(reference: Tensor, manifold: Manifold) -> tuple[Tensor, Tensor]:
    """Metric-orthonormal basis of ``T_P M`` and the coordinate map.

    Parameters
    ----------
    reference : Tensor, shape (*point_shape)
    manifold : Manifold

    Returns
    -------
    basis : Tensor, shape (d, *point_shape)
        Tangent vectors ``e_k`` at ``reference`` with ``⟨e_k, e_l⟩_P = δ_kl`` (``d = dim M``).
    coords : Tensor, shape (d, D)
        ``c(u) = coords @ u.reshape(D)`` gives the coordinates of a tangent vector ``u`` in
        ``basis`` (``D`` = number of ambient entries).

    Examples
    --------
    >>> import torch
    >>> from riemlearn.manifolds import SPD
    >>> from riemlearn.stats.tangent_pca import tangent_basis
    >>> p = torch.diag(torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64))
    >>> e, c = tangent_basis(p, SPD(3))
    >>> e.shape, c.shape
    (torch.Size([6, 3, 3]), torch.Size([6, 9]))
    >>> g = SPD(3).inner(p.expand_as(e).unsqueeze(1), e.unsqueeze(1), e.unsqueeze(0))
    >>> torch.allclose(g, torch.eye(6, dtype=torch.float64))
    True
    """
    shape = tuple(reference.shape)
    n_amb = int(math.prod(shape))
    eye = torch.eye(n_amb, dtype=reference.dtype, device=reference.device).reshape((n_amb,) + shape)
    ref = reference.detach().expand((n_amb,) + shape)
    b = manifold.project_tangent(ref, eye)
    # Flat of each b_j: the Euclidean gradient of u ↦ ⟨u, b_j⟩_P (the inner product is linear in u).
    u = torch.zeros_like(b, requires_grad=True)
    with torch.enable_grad():
        ip = manifold.inner(ref, u, b).sum()
        (flat,) = torch.autograd.grad(ip, u)
    bf, ff = b.reshape(n_amb, n_amb), flat.reshape(n_amb, n_amb)
    gram = ff @ bf.mT  # gram[i, j] = ⟨b_i, b_j⟩_P
    gram = 0.5 * (gram + gram.mT)
    w, v = eigh(gram)
    cut = max(float(w[-1]), 0.0) * n_amb * 1e3 * float(torch.finfo(w.dtype).eps)
    keep = w > cut
    w, v = w[keep].flip(0), v[:, keep].flip(1)
    scale = w.rsqrt()
    basis = (scale[:, None] * v.mT) @ bf  # (d, D)
    coords = (scale[:, None] * v.mT) @ ff  # c(u)_k = λ_k^{-1/2} Σ_j V_jk ⟨u, b_j⟩
    return basis.reshape((-1,) + shape), coords


def _check_n_components(n_components: Any, limit: int) -> int:
    if n_components is None:
        return limit
    if isinstance(n_components, bool) or not isinstance(n_components, (int, np.integer)):
        raise ValueError(f"n_components must be a positive int or None, got {n_components!r}")
    k = int(n_components)
    if k < 1 or k > limit:
        raise ValueError(f"n_components={k} must be between 1 and {limit} "
                         "(min(n_samples, manifold dimension))")
    return k


class TangentPCA(TransformerMixin, BaseEstimator):
    """Principal component analysis in the tangent space at a reference point.

    Parameters
    ----------
    n_components : int or None, default None
        Number of components (``None``: ``min(n_samples, dim M)``).
    manifold : Manifold, str or None, default None
        The space and metric (a string is an SPD metric name; ``None`` is
        ``SPD(metric="affine_invariant")``).
    reference : array or Tensor of shape (*point_shape), optional
        Base point of the tangent space; the weighted Fréchet mean of the training data if
        ``None``.

    Attributes
    ----------
    reference_ : ndarray or Tensor, shape (*point_shape)
    components_ : ndarray or Tensor, shape (n_components, *point_shape)
        Principal directions as tangent vectors at ``reference_``, orthonormal in the metric.
    explained_variance_ : ndarray or Tensor, shape (n_components,)
        Weighted mean of the squared scores (population variance, see the module notes).
    explained_variance_ratio_ : ndarray or Tensor, shape (n_components,)
        ``explained_variance_ / total_variance_``.
    total_variance_ : float
        ``Σ wᵢ ‖Log_P Xᵢ‖²`` (the Fréchet variance when ``P`` is the Fréchet mean).
    singular_values_ : ndarray or Tensor, shape (n_components,)
        Singular values of the (unweighted, or ``√w·N``-weighted) coordinate matrix.

    Examples
    --------
    >>> import torch
    >>> from riemlearn.manifolds import SPD
    >>> from riemlearn.stats.tangent_pca import TangentPCA
    >>> m = SPD(3)
    >>> X = m.random_point(20, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    >>> pca = TangentPCA(n_components=2, manifold=m).fit(X)
    >>> pca.transform(X).shape, pca.components_.shape
    (torch.Size([20, 2]), torch.Size([2, 3, 3]))
    >>> full = TangentPCA(manifold=m).fit(X)
    >>> from riemlearn.stats import variance
    >>> bool(torch.isclose(full.explained_variance_.sum(), variance(X, m)))
    True
    """

    def __init__(self, n_components: int | None = None, manifold: Any = None,
                 reference: Any = None) -> None:
        self.n_components = n_components
        self.manifold = manifold
        self.reference = reference

    def _tangent_coords(self, x: Tensor, ref: Tensor, m: Manifold, coords: Tensor) -> Tensor:
        logs = tangent_space(x, ref, m)
        return logs.reshape(x.shape[0], -1) @ coords.mT

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> TangentPCA:
        """Fit on points ``X`` of shape ``(n_samples, *point_shape)``."""
        m = resolve_manifold(self.manifold)
        x, was_numpy = check_points_input(X, m)
        n_pts = x.shape[0]
        w = check_sample_weight(sample_weight, n_pts, x)
        w = torch.full((n_pts,), 1.0 / n_pts, dtype=x.dtype, device=x.device) if w is None else w / w.sum()
        with torch.no_grad():
            if self.reference is None:
                ref = frechet_mean(x, m, w)
            else:
                ref, _ = as_tensor(self.reference, "reference")
                ref = ref.to(dtype=x.dtype, device=x.device)
                if tuple(ref.shape) != tuple(x.shape[1:]):
                    raise ValueError(f"reference has shape {tuple(ref.shape)}, expected "
                                     f"{tuple(x.shape[1:])}")
                m.check_point(ref, "reference")
            basis, coords = tangent_basis(ref, m)
            c = self._tangent_coords(x, ref, m, coords)  # (N, d)
            k = _check_n_components(self.n_components, min(n_pts, basis.shape[0]))
            _, s, vt = torch.linalg.svd(w.sqrt()[:, None] * c, full_matrices=False)
            vt = _flip_signs(vt)
            var = s * s
            total = (w * (c * c).sum(-1)).sum()
            comps = (vt[:k] @ basis.reshape(basis.shape[0], -1)).reshape((k,) + tuple(x.shape[1:]))
        self.manifold_ = m
        self._ref, self._coords, self._dirs = ref, coords, vt[:k]
        self._comp_t = comps
        self.n_components_ = k
        self.reference_ = to_output(ref, was_numpy)
        self.components_ = to_output(comps, was_numpy)
        self.explained_variance_ = to_output(var[:k], was_numpy)
        self.explained_variance_ratio_ = to_output(var[:k] / total, was_numpy)
        self.singular_values_ = to_output(s[:k] * math.sqrt(n_pts), was_numpy)
        self.total_variance_ = float(total)
        self.n_features_in_ = int(np.prod(x.shape[1:]))
        return self

    def _fitted(self, X: Any, name: str = "X") -> tuple[Tensor, bool]:
        check_is_fitted(self, "components_")
        x, was_numpy = check_points_input(X, self.manifold_, name)
        if tuple(x.shape[1:]) != tuple(self._ref.shape):
            raise ValueError(f"{name} has points of shape {tuple(x.shape[1:])}, the estimator was "
                             f"fitted on {tuple(self._ref.shape)}")
        return x, was_numpy

    def transform(self, X: Any) -> Any:
        """Scores ``(n_samples, n_components)``: coordinates of ``Log_P X`` on the components."""
        x, was_numpy = self._fitted(X)
        ref = self._ref.to(dtype=x.dtype, device=x.device)
        with torch.no_grad():
            c = self._tangent_coords(x, ref, self.manifold_, self._coords.to(x))
            out = c @ self._dirs.to(x).mT
        return to_output(out, was_numpy)

    def inverse_transform(self, X: Any) -> Any:
        """Points ``Exp_P(Σ_k s_k components_k)`` from scores ``(n_samples, n_components)``."""
        check_is_fitted(self, "components_")
        s, was_numpy = check_scores(X, self.n_components_)
        pts = points_from_scores(self.manifold_, self._ref.to(s), self._comp_t.to(s), s)
        return to_output(pts, was_numpy)


def _flip_signs(vt: Tensor) -> Tensor:
    """Deterministic signs: the largest-magnitude entry of each direction is positive."""
    idx = vt.abs().argmax(dim=-1, keepdim=True)
    sign = torch.sign(vt.gather(-1, idx))
    return vt * torch.where(sign == 0, torch.ones_like(sign), sign)
