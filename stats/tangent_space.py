"""Tangent-space features of SPD matrices at a reference point, and the ``TangentSpace`` transformer.

A batch of SPD matrices ``C`` is mapped to the tangent space at a reference ``P`` (the Fréchet
mean of the training data), moved to the identity by parallel transport, and written in an
orthonormal basis: the coordinates are Euclidean, so linear models (logistic regression, SVM,
LDA) can be used on them (Barachant et al., IEEE TBME 2012; Tuzel et al., PAMI 2008).

- affine-invariant: ``vech(logm(P^{-1/2} C P^{-1/2}))`` (the "whitened" log map);
- log-Euclidean:    ``vech(logm C − logm P)``;
- log-Cholesky:     the entries of ``Φ(C) − Φ(P)`` (``Φ(L Lᵀ) = ⌊L⌋ + log diag L``);
- any other metric: ``identity_coords(transport(P, I, Log_P C))`` through the metric object.

``vech`` stacks the diagonal and ``√2`` times the strict upper triangle, so that
``‖vech(S)‖ = ‖S‖_F`` and the Euclidean distance of two feature vectors is the metric's norm of
the difference of the tangent vectors (at the reference: the geodesic distance to it).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ..manifolds.base import Metric
from ..manifolds.eigh_refine import eigh_from_guess
from ..manifolds.spd import SPD
from ..manifolds.spd_affine_invariant import AffineInvariant
from ..manifolds.spd_base import resolve_compute_dtype
from ..manifolds.spd_log_cholesky import LogCholesky, cholesky_log
from ..manifolds.spd_log_euclidean import LogEuclidean
from ..manifolds.spd_vectorize import unvech, vech
from ..manifolds.spectral import expm, logm, sqrtm_invsqrtm, sym
from ._sklearn import (
    BaseEstimator,
    TransformerMixin,
    as_tensor,
    check_is_fitted,
    check_n_channels,
    check_sample_weight,
    check_spd,
    to_output,
)

__all__ = [
    "to_tangent", "from_tangent", "TangentSpace", "spd_manifold", "fast_path", "aim_whitener",
    "whitened_tangent",
]


def spd_manifold(metric: str | Metric) -> SPD:
    """``SPD(metric=metric)`` with a ``ValueError`` naming the parameter on a bad value."""
    try:
        return SPD(metric=metric)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"metric: {exc}") from exc


def fast_path(metric: Metric) -> str | None:
    """``"ai"``, ``"le"`` or ``"lc"`` for the undeformed classical metrics, else ``None``."""
    if getattr(metric, "theta", 1.0) != 1.0:
        return None
    if type(metric) is AffineInvariant:
        return "ai"
    if type(metric) is LogEuclidean:
        return "le"
    if type(metric) is LogCholesky:
        return "lc"
    return None


def _compute_dtype(metric: Metric, dtype: torch.dtype) -> torch.dtype:
    return resolve_compute_dtype(getattr(metric, "compute_dtype", None), dtype)


def _n_from_dim(d: int) -> int:
    n = int(round((math.sqrt(8 * d + 1) - 1) / 2))
    if n * (n + 1) // 2 != d:
        raise ValueError(f"X has {d} features, which is not n(n+1)/2 for any n")
    return n


def to_tangent(C: Tensor, reference: Tensor, metric: str | Metric = "affine_invariant") -> Tensor:
    """Tangent-space coordinates of SPD matrices at ``reference``.

    Parameters
    ----------
    C : Tensor, shape (*batch, n, n)
        SPD matrices.
    reference : Tensor, shape (n, n) or broadcastable to (*batch, n, n)
        SPD reference point.
    metric : str or Metric
        SPD metric (see :class:`~riemlearn.manifolds.SPD`).

    Returns
    -------
    Tensor, shape (*batch, n(n+1)/2)

    Examples
    --------
    >>> import torch
    >>> from riemlearn.stats.tangent_space import to_tangent, from_tangent
    >>> C = torch.diag(torch.tensor([1.0, torch.e ** 2], dtype=torch.float64))[None]
    >>> P = torch.eye(2, dtype=torch.float64)
    >>> to_tangent(C, P)
    tensor([[0., 0., 2.]], dtype=torch.float64)
    >>> torch.allclose(from_tangent(to_tangent(C, P), P), C)
    True
    """
    m = spd_manifold(metric).metric
    kind = fast_path(m)
    dt = C.dtype
    cdt = _compute_dtype(m, dt)
    Cc, Pc = C.to(cdt), reference.to(cdt)
    if kind == "ai":
        return whitened_tangent(Cc, aim_whitener(Pc), m).to(dt)
    if kind == "le":
        s = logm(Cc) - logm(Pc)
    elif kind == "lc":
        z = cholesky_log(Cc) - cholesky_log(Pc)
        d = torch.diag_embed(z.diagonal(dim1=-2, dim2=-1))
        low = z - d
        s = low + low.mT + 2 * d  # the a ∈ T_I with DΦ_I[a] = z
    else:
        eye = torch.eye(C.shape[-1], dtype=cdt, device=C.device).expand_as(Pc)
        s = m.transport(Pc, eye, m.log(Pc, Cc))
    return vech(m.identity_coords(s)).to(dt)


def aim_whitener(reference: Tensor) -> Tensor:
    """``P^{-1/2}`` of an SPD reference ``(*batch, n, n)`` (one eigendecomposition).

    Computed once by :class:`TangentSpace` at fit time and reused by every ``transform``.
    """
    return sqrtm_invsqrtm(reference)[1]


def whitened_tangent(C: Tensor, whitener: Tensor, metric: Metric) -> Tensor:
    """Affine-invariant coordinates ``vech(logm(W C W))`` for ``W = P^{-1/2}`` (same dtype as ``C``).

    One batched congruence and one batched ``logm`` (a single ``eigh`` of the batch).
    """
    w = whitener.to(C.dtype)
    return vech(metric.identity_coords(logm(sym(w @ C @ w))))


def from_tangent(T: Tensor, reference: Tensor, metric: str | Metric = "affine_invariant") -> Tensor:
    """Inverse of :func:`to_tangent`: SPD matrices ``(*batch, n, n)`` from ``(*batch, n(n+1)/2)``."""
    m = spd_manifold(metric).metric
    kind = fast_path(m)
    n = reference.shape[-1]
    if T.shape[-1] != n * (n + 1) // 2:
        raise ValueError(f"T has {T.shape[-1]} features; a {n}x{n} reference needs {n * (n + 1) // 2}")
    dt = T.dtype
    cdt = _compute_dtype(m, dt)
    Pc = reference.to(cdt)
    a = m.identity_coords_inv(unvech(T.to(cdt)))
    if kind == "ai":
        p_sqrt, _ = sqrtm_invsqrtm(Pc)
        out = sym(p_sqrt @ expm(a) @ p_sqrt)
    elif kind == "le":
        out = expm(logm(Pc) + a)
    elif kind == "lc":
        d = torch.diag_embed(a.diagonal(dim1=-2, dim2=-1))
        z = torch.tril(a, -1) + 0.5 * d + cholesky_log(Pc)
        low = torch.tril(z, -1) + torch.diag_embed(torch.exp(z.diagonal(dim1=-2, dim2=-1)))
        out = sym(low @ low.mT)
    else:
        eye = torch.eye(n, dtype=cdt, device=T.device)
        shape = torch.broadcast_shapes(a.shape, Pc.shape)
        out = m.exp(Pc.expand(shape), m.transport(eye.expand(shape), Pc.expand(shape), a.expand(shape)))
    return out.to(dt)


def _as_reference(est: Any, like: Tensor) -> Tensor:
    ref = est.reference_
    ref = ref if isinstance(ref, Tensor) else torch.as_tensor(ref)
    return ref.to(dtype=like.dtype, device=like.device)


def weighted_frechet_mean(C: Tensor, manifold: SPD, sample_weight: Tensor | None,
                          tol: float | None = None) -> Tensor:
    """Fréchet mean of ``C`` (N, n, n) with optional weights (N,), at an estimator's ``tol``
    (:func:`~riemlearn.stats.frechet_mean.estimator_tol`)."""
    from .frechet_mean import estimator_tol, frechet_mean

    return frechet_mean(C, manifold, weights=sample_weight, tol=estimator_tol(tol, manifold.metric, C.dtype))


class TangentSpace(TransformerMixin, BaseEstimator):
    """Map SPD matrices to Euclidean tangent-space features at their Fréchet mean.

    Parameters
    ----------
    metric : str or Metric, default="affine_invariant"
        SPD metric: the reference is the Fréchet mean for it and the log map is its own.
    tsupdate : bool, default=False
        If True, :meth:`transform` re-estimates the reference on the data it transforms
        (unsupervised adaptation to a new session); else the fitted ``reference_`` is used.
    tol : float or None, default=None
        Gradient-norm tolerance of the reference mean; None: 1e-8 in float64, pyRiemann's
        (:data:`~riemlearn.stats.frechet_mean.ESTIMATOR_TOL`).

    Attributes
    ----------
    reference_ : ndarray or Tensor, shape (n_channels, n_channels)
        Fréchet mean of the training matrices (numpy if fitted on numpy).
    n_channels_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from riemlearn.stats import Covariances, TangentSpace
    >>> X = np.random.default_rng(0).standard_normal((10, 3, 50))
    >>> C = Covariances("oas").fit_transform(X)
    >>> TangentSpace().fit(C).transform(C).shape
    (10, 6)
    """

    def __init__(self, metric: str | Metric = "affine_invariant", tsupdate: bool = False,
                 tol: float | None = None) -> None:
        self.metric = metric
        self.tsupdate = tsupdate
        self.tol = tol

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> TangentSpace:
        """Fit the reference point (Fréchet mean of ``X``, shape (n_matrices, n, n))."""
        self._fit(X, sample_weight)
        return self

    def _fit(self, X: Any, sample_weight: Any) -> tuple[Tensor, bool]:
        manifold = spd_manifold(self.metric)
        C, was_numpy = check_spd(X)
        w = check_sample_weight(sample_weight, C.shape[0], C)
        ref = weighted_frechet_mean(C, manifold, w, self.tol)
        self.reference_ = to_output(ref, was_numpy)
        self.n_channels_ = int(C.shape[-1])
        # Affine-invariant: P^{-1/2} once here, not at every transform (a tensor in the
        # compute dtype; private, recomputed if reference_ is replaced by hand).
        m = manifold.metric
        self._whitener = (aim_whitener(ref.to(_compute_dtype(m, ref.dtype)))
                          if fast_path(m) == "ai" else None)
        self._whitener_of = self.reference_
        return C, was_numpy

    def fit_transform(self, X: Any, y: Any = None, sample_weight: Any = None) -> Any:
        """:meth:`fit`, then :meth:`transform` of ``X``.

        Affine-invariant: the mean's solver ends with the eigenvectors of the whitened training
        matrices (or a rotation of them); ``log(P^{-1/2} Cᵢ P^{-1/2})`` starts from those, refined
        to full precision by matrix products, instead of a fresh ``eigh`` of every matrix.
        """
        from .frechet_mean import capture_aim_states

        m = spd_manifold(self.metric).metric
        reuse = not self.tsupdate and fast_path(m) == "ai"
        with capture_aim_states() as states:
            C, was_numpy = self._fit(X, sample_weight)
        state = states[0][0] if reuse and len(states) == 1 and not C.requires_grad else None
        guess = state.vectors_guess() if state is not None else None
        if guess is None:
            return self._transform(C, was_numpy)  # X already validated by _fit
        wh = self._whitener.to(device=C.device)
        cc = C.to(wh.dtype)
        # W Cᵢ W = Q Yᵢ Qᵀ with Yᵢ = C_f⁻¹ Cᵢ C_f⁻ᵀ the solver's whitened points and Q = W C_f
        # (orthogonal if the solver's frame is the returned mean's, nearly so otherwise).
        q = wh @ state.c[0]
        lam, v = eigh_from_guess(sym(wh @ cc @ wh), q @ guess[0])
        logs = (v * torch.log(lam.clamp_min(torch.finfo(lam.dtype).tiny)).unsqueeze(-2)) @ v.mT
        T = vech(m.identity_coords(sym(logs)))
        return to_output(T.to(C.dtype), was_numpy)

    def transform(self, X: Any) -> Any:
        """Tangent vectors, shape (n_matrices, n(n+1)/2)."""
        check_is_fitted(self)
        C, was_numpy = check_spd(X)
        check_n_channels(self, C)
        return self._transform(C, was_numpy)

    def _transform(self, C: Tensor, was_numpy: bool) -> Any:
        if self.tsupdate:
            ref = weighted_frechet_mean(C, spd_manifold(self.metric), None, self.tol)
        else:
            whitener = getattr(self, "_whitener", None)
            m = spd_manifold(self.metric).metric
            cdt = _compute_dtype(m, C.dtype)
            if (whitener is not None and whitener.dtype == cdt
                    and getattr(self, "_whitener_of", None) is self.reference_):
                T = whitened_tangent(C.to(cdt), whitener.to(device=C.device), m)
                return to_output(T.to(C.dtype), was_numpy)
            ref = _as_reference(self, C)
        return to_output(to_tangent(C, ref, self.metric), was_numpy)

    def inverse_transform(self, X: Any) -> Any:
        """SPD matrices (n_vectors, n, n) from tangent vectors (n_vectors, n(n+1)/2)."""
        check_is_fitted(self)
        T, was_numpy = as_tensor(X)
        if T.dim() != 2:
            raise ValueError(f"X must have shape (n_vectors, n_features), got {tuple(T.shape)}")
        n = _n_from_dim(T.shape[-1])
        if n != self.n_channels_:
            d = self.n_channels_ * (self.n_channels_ + 1) // 2
            raise ValueError(f"X has {T.shape[-1]} features, expected {d}")
        if not bool(torch.isfinite(T).all()):
            raise ValueError("X contains NaN/inf entries")
        return to_output(from_tangent(T, _as_reference(self, T), self.metric), was_numpy)

    def __sklearn_tags__(self):  # noqa: D105
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        return tags
