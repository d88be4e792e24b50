"""Minimum-distance-to-mean classifiers on SPD matrices: :class:`MDM` and :class:`FgMDM`.

MDM (Barachant et al., IEEE TBME 2012) represents each class by the Fréchet mean of its
training matrices for a chosen SPD metric (all class means from one batched
:func:`~riemlearn.stats.frechet_mean.frechet_mean` call) and assigns a matrix to the class whose
mean is nearest. FgMDM first filters the matrices in the tangent space at the global mean by
projecting onto the Fisher discriminant subspace (geodesic filtering; Barachant et al.,
Neurocomputing 2013), then applies MDM.

Distances to the ``K`` class means are computed without repeating work per pair: for the
affine-invariant metric from the eigenvalues of ``L_k⁻¹ C L_k⁻ᵀ`` (``M_k = L_k L_kᵀ``), for the
log-Euclidean metric from ``logm C`` computed once per matrix, for log-Cholesky from ``Φ(C)``
once per matrix; other metrics go through ``metric.dist`` with broadcasting.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..manifolds.base import Metric
from ..manifolds.spd import SPD
from ..manifolds.spd_log_cholesky import cholesky_log
from ..manifolds.spectral import eigvalsh, logm, sym
from ._sklearn import (
    BaseEstimator,
    ClassifierMixin,
    check_is_fitted,
    check_labels,
    check_n_channels,
    check_sample_weight,
    check_spd,
    labels_to_output,
    to_output,
)
from .covariance import _lwf
from .frechet_mean import estimator_tol
from .tangent_space import _compute_dtype, fast_path, from_tangent, spd_manifold, to_tangent

__all__ = ["MDM", "FgMDM", "class_means", "distances_to_means", "inverse_cholesky"]


def class_means(
    C: Tensor, y_idx: Tensor, n_classes: int, manifold: SPD, sample_weight: Tensor | None = None,
    tol: float | None = None,
) -> Tensor:
    """Fréchet mean of each class from one batched call.

    Trials are gathered into a ``(n_classes, N_max, n, n)`` stack (classes padded with
    zero-weight copies of one of their members) and averaged with per-class weights.

    Parameters
    ----------
    C : Tensor, shape (N, n, n)
    y_idx : Tensor (long), shape (N,)
        Class index of each trial, in ``0 .. n_classes-1``.
    n_classes : int
    manifold : SPD
    sample_weight : Tensor, shape (N,), optional

    Returns
    -------
    Tensor, shape (n_classes, n, n)
    """
    from .frechet_mean import frechet_mean

    dev = C.device
    y_idx = y_idx.to(dev)
    counts = torch.bincount(y_idx, minlength=n_classes)
    n_max = int(counts.max())
    order = torch.argsort(y_idx, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.arange(n_max, device=dev)
    valid = slot[None, :] < counts[:, None]  # (K, n_max)
    pos = starts[:, None] + torch.where(valid, slot[None, :], 0)
    idx = order[pos]  # (K, n_max): padded with each class's first trial
    w = valid.to(C.dtype) if sample_weight is None else sample_weight[idx] * valid.to(C.dtype)
    w = w / w.sum(dim=1, keepdim=True).clamp_min(torch.finfo(C.dtype).tiny)
    return frechet_mean(C[idx], manifold, weights=w, tol=tol)


def inverse_cholesky(means: Tensor) -> Tensor:
    """``L⁻¹`` with ``M = L Lᵀ`` (Cholesky) for SPD ``(K, n, n)``: the whitening of the AIM distances."""
    low = torch.linalg.cholesky(means)
    eye = torch.eye(means.shape[-1], dtype=means.dtype, device=means.device)
    return torch.linalg.solve_triangular(low, eye, upper=False)


def distances_to_means(
    C: Tensor, means: Tensor, metric: Metric, inv_chol: Tensor | None = None
) -> Tensor:
    """Squared geodesic distances ``d²(C_i, M_k)``, shape ``(N, K)``.

    Parameters
    ----------
    C : Tensor, shape (N, n, n)
    means : Tensor, shape (K, n, n)
    metric : Metric
    inv_chol : Tensor, shape (K, n, n), optional
        Precomputed :func:`inverse_cholesky` of ``means`` in the compute dtype (affine-invariant
        metric only; :class:`MDM` caches it at fit time). Ignored for other metrics.
    """
    kind = fast_path(metric)
    alpha = float(getattr(metric, "alpha", 1.0))
    beta = float(getattr(metric, "beta", 0.0))
    dt = C.dtype
    cdt = _compute_dtype(metric, dt)
    Cc = C.to(cdt)
    if kind == "ai":
        if inv_chol is None or inv_chol.dtype != cdt:
            inv_chol = inverse_cholesky(means.to(cdt))
        linv = inv_chol.to(device=Cc.device)[None]  # (1, K, n, n)
        z = linv @ Cc[:, None] @ linv.mT  # (N, K, n, n), same spectrum as M_k^{-1/2} C M_k^{-1/2}
        lam = eigvalsh(sym(z))
        lg = torch.log(lam.clamp_min(torch.finfo(cdt).tiny))
        d2 = alpha * (lg * lg).sum(-1)
        if beta != 0.0:
            d2 = d2 + beta * lg.sum(-1) ** 2
    elif kind in ("le", "lc"):
        f = logm if kind == "le" else cholesky_log
        diff = f(Cc)[:, None] - f(means.to(cdt))[None]
        if kind == "lc":
            d2 = (diff * diff).sum((-2, -1))
        else:
            d2 = alpha * (diff * diff).sum((-2, -1))
            if beta != 0.0:
                d2 = d2 + beta * diff.diagonal(dim1=-2, dim2=-1).sum(-1) ** 2
    else:
        d2 = metric.dist(Cc[:, None], means.to(cdt)[None]) ** 2
    return d2.to(dt)


def _to_numpy(a: Any) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, Tensor) else np.asarray(a)


def _accuracy(pred: Any, y: Any, sample_weight: Any) -> float:
    from sklearn.metrics import accuracy_score

    sw = None if sample_weight is None else _to_numpy(sample_weight)
    return float(accuracy_score(_to_numpy(y), _to_numpy(pred), sample_weight=sw))


def _fitted_tensor(value: Any, like: Tensor) -> Tensor:
    t = value if isinstance(value, Tensor) else torch.as_tensor(value)
    return t.to(dtype=like.dtype, device=like.device)


class MDM(ClassifierMixin, BaseEstimator):
    """Minimum distance to mean classifier on SPD matrices.

    Parameters
    ----------
    metric : str or Metric, default="affine_invariant"
        SPD metric for the class means and the distances (``"affine_invariant"``,
        ``"log_euclidean"``, ``"log_cholesky"``, ``"bures_wasserstein"`` or a metric object).
    n_jobs : int or None, default=None
        Accepted for compatibility with pyRiemann and ignored (work is batched).
    tol : float or None, default=None
        Gradient-norm tolerance of the class means; None: 1e-8 in float64, pyRiemann's
        (:data:`~riemlearn.stats.frechet_mean.ESTIMATOR_TOL`).

    Attributes
    ----------
    classes_ : ndarray, shape (n_classes,)
    covmeans_ : ndarray or Tensor, shape (n_classes, n_channels, n_channels)
        Class means (numpy when fitted on numpy, else a tensor on the input's device).
    n_channels_ : int

    Examples
    --------
    >>> from riemlearn.stats import make_eeg, Covariances, MDM
    >>> X, y = make_eeg(40, 4, 128, random_state=0, class_sep=2.0, as_numpy=True)
    >>> C = Covariances("oas").fit_transform(X)
    >>> clf = MDM().fit(C, y)
    >>> clf.covmeans_.shape, clf.score(C, y) > 0.8
    ((2, 4, 4), True)
    """

    def __init__(self, metric: str | Metric = "affine_invariant", n_jobs: int | None = None,
                 tol: float | None = None) -> None:
        self.metric = metric
        self.n_jobs = n_jobs
        self.tol = tol

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> MDM:
        """Fit the class means from SPD matrices ``X`` (n_matrices, n, n) and labels ``y``."""
        manifold = spd_manifold(self.metric)
        C, was_numpy = check_spd(X)
        classes, y_idx = check_labels(y, C.shape[0])
        w = check_sample_weight(sample_weight, C.shape[0], C)
        means = class_means(C, y_idx, len(classes), manifold, w,
                            tol=estimator_tol(self.tol, manifold.metric, C.dtype))
        self.classes_ = classes
        self.covmeans_ = to_output(means, was_numpy)
        self.n_channels_ = int(C.shape[-1])
        # Affine-invariant: the means' inverse Cholesky factors once here, not at every predict
        # (private; ignored if covmeans_ is replaced by hand).
        m = manifold.metric
        self._inv_chol = (inverse_cholesky(means.to(_compute_dtype(m, means.dtype)))
                          if fast_path(m) == "ai" else None)
        self._inv_chol_of = self.covmeans_
        return self

    def _d2(self, X: Any) -> tuple[Tensor, bool, Tensor]:
        check_is_fitted(self)
        C, was_numpy = check_spd(X)
        check_n_channels(self, C)
        means = _fitted_tensor(self.covmeans_, C)
        inv_chol = getattr(self, "_inv_chol", None)
        if getattr(self, "_inv_chol_of", None) is not self.covmeans_:
            inv_chol = None
        d2 = distances_to_means(C, means, spd_manifold(self.metric).metric, inv_chol)
        return d2, was_numpy, C

    def transform(self, X: Any) -> Any:
        """Distances to the class means, shape (n_matrices, n_classes)."""
        d2, was_numpy, _ = self._d2(X)
        return to_output(d2.clamp_min(0).sqrt(), was_numpy)

    def predict(self, X: Any) -> Any:
        """Label of the nearest class mean, shape (n_matrices,)."""
        d2, was_numpy, C = self._d2(X)
        return labels_to_output(self.classes_, d2.argmin(dim=1), was_numpy, C)

    def predict_proba(self, X: Any) -> Any:
        """Softmax of ``−d²`` over the classes, shape (n_matrices, n_classes)."""
        d2, was_numpy, _ = self._d2(X)
        return to_output(torch.softmax(-d2, dim=1), was_numpy)

    def decision_function(self, X: Any) -> Any:
        """``−d²`` to each class mean (for two classes: ``d²₀ − d²₁``)."""
        d2, was_numpy, _ = self._d2(X)
        out = d2[:, 0] - d2[:, 1] if d2.shape[1] == 2 else -d2
        return to_output(out, was_numpy)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean accuracy on ``X``, ``y`` (labels compared on the CPU; tensors on any device)."""
        return _accuracy(self.predict(X), y, sample_weight)

    def __sklearn_tags__(self):  # noqa: D105
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        return tags


def fisher_projector(T: Tensor, y_idx: Tensor, n_classes: int) -> Tensor:
    """Orthogonal projector ``(d, d)`` onto the Fisher discriminant subspace of features ``T``.

    The discriminant directions are ``S_w⁻¹ (μ_k − μ)`` with ``S_w`` the prior-weighted
    within-class covariance, each class covariance estimated with Ledoit–Wolf shrinkage on
    standardized features (as scikit-learn's LDA with ``shrinkage="auto"``); the projector is
    onto their span (rank ≤ ``n_classes − 1``).
    """
    y_idx = y_idx.to(T.device)
    onehot = torch.nn.functional.one_hot(y_idx, n_classes).to(T.dtype)  # (N, K)
    counts = onehot.sum(0)
    priors = counts / counts.sum()
    mu_k = (onehot.T @ T) / counts[:, None]
    mu = priors @ mu_k
    scale = T.std(dim=0, correction=0).clamp_min(torch.finfo(T.dtype).eps)
    sw = T.new_zeros(T.shape[1], T.shape[1])
    for k in range(n_classes):  # a handful of classes, each a batched estimate
        z = (T[y_idx == k] / scale).T  # (d, N_k): features as channels
        cov, _ = _lwf(z - z.mean(dim=1, keepdim=True))
        sw = sw + priors[k] * cov
    sw = scale[:, None] * sw * scale[None, :]
    W = torch.linalg.solve(sw, (mu_k - mu).T)  # (d, K)
    u, s, _ = torch.linalg.svd(W, full_matrices=False)
    r = int((s > s[0] * T.shape[1] * torch.finfo(T.dtype).eps).sum()) if s.numel() else 0
    ur = u[:, : max(r, 1)]
    return ur @ ur.T


class FgMDM(ClassifierMixin, BaseEstimator):
    """MDM after geodesic (Fisher) filtering in the tangent space at the Fréchet mean.

    Parameters
    ----------
    metric : str or Metric, default="affine_invariant"
    tsupdate : bool, default=False
        Re-estimate the tangent-space reference on the data at prediction time.
    n_jobs : int or None, default=None
        Ignored (compatibility).
    tol : float or None, default=None
        Gradient-norm tolerance of the reference and class means (None: as :class:`MDM`).

    Attributes
    ----------
    classes_ : ndarray
    reference_ : ndarray or Tensor, shape (n, n)
    projector_ : ndarray or Tensor, shape (d, d), ``d = n(n+1)/2``
    mdm_ : MDM fitted on the filtered matrices

    Examples
    --------
    >>> from riemlearn.stats import make_eeg, Covariances, FgMDM
    >>> X, y = make_eeg(40, 4, 128, random_state=0, class_sep=2.0, as_numpy=True)
    >>> C = Covariances("oas").fit_transform(X)
    >>> FgMDM().fit(C, y).score(C, y) > 0.8
    True
    """

    def __init__(self, metric: str | Metric = "affine_invariant", tsupdate: bool = False,
                 n_jobs: int | None = None, tol: float | None = None) -> None:
        self.metric = metric
        self.tsupdate = tsupdate
        self.n_jobs = n_jobs
        self.tol = tol

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> FgMDM:
        """Fit reference, Fisher filter and MDM on SPD matrices ``X`` (n_matrices, n, n)."""
        from .frechet_mean import frechet_mean

        manifold = spd_manifold(self.metric)
        C, was_numpy = check_spd(X)
        classes, y_idx = check_labels(y, C.shape[0])
        w = check_sample_weight(sample_weight, C.shape[0], C)
        ref = frechet_mean(C, manifold, weights=w, tol=estimator_tol(self.tol, manifold.metric, C.dtype))
        T = to_tangent(C, ref, manifold.metric)
        proj = fisher_projector(T, y_idx, len(classes))
        Cf = from_tangent(T @ proj, ref, manifold.metric)
        self.mdm_ = MDM(metric=self.metric, tol=self.tol).fit(
            to_output(Cf, was_numpy), classes[y_idx.numpy()], sample_weight=sample_weight)
        self.classes_ = classes
        self.reference_ = to_output(ref, was_numpy)
        self.projector_ = to_output(proj, was_numpy)
        self.n_channels_ = int(C.shape[-1])
        return self

    def _filter(self, X: Any) -> tuple[Any, bool, Tensor]:
        from .frechet_mean import frechet_mean

        check_is_fitted(self)
        C, was_numpy = check_spd(X)
        check_n_channels(self, C)
        manifold = spd_manifold(self.metric)
        ref = (frechet_mean(C, manifold, tol=estimator_tol(self.tol, manifold.metric, C.dtype))
               if self.tsupdate else _fitted_tensor(self.reference_, C))
        T = to_tangent(C, ref, manifold.metric)
        Cf = from_tangent(T @ _fitted_tensor(self.projector_, C), ref, manifold.metric)
        return to_output(Cf, was_numpy), was_numpy, C

    def predict(self, X: Any) -> Any:
        """Predicted labels, shape (n_matrices,)."""
        Cf, _, _ = self._filter(X)
        return self.mdm_.predict(Cf)

    def predict_proba(self, X: Any) -> Any:
        """Class probabilities (softmax of ``−d²``), shape (n_matrices, n_classes)."""
        Cf, _, _ = self._filter(X)
        return self.mdm_.predict_proba(Cf)

    def transform(self, X: Any) -> Any:
        """Distances of the filtered matrices to the class means, (n_matrices, n_classes)."""
        Cf, _, _ = self._filter(X)
        return self.mdm_.transform(Cf)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean accuracy on ``X``, ``y`` (labels compared on the CPU; tensors on any device)."""
        return _accuracy(self.predict(X), y, sample_weight)

    def __sklearn_tags__(self):  # noqa: D105
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        return tags

