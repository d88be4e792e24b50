"""Re-centering (whitening) of SPD data per domain, for transfer across sessions and subjects.

Covariance matrices of different sessions or subjects drift as a whole: each domain sits around
its own mean. Re-centering (Zanini et al., IEEE TBME 2018) moves every domain's Fréchet mean to
the identity by parallel transport — for the affine-invariant metric the congruence
``C ↦ M^{-1/2} C M^{-1/2}`` (whitening by the domain mean ``M``), for the log-Euclidean metric
``C ↦ expm(logm C − logm M)`` — so that classifiers trained on one domain transfer to another.
Optionally each domain is also *stretched* along geodesics from the identity so that its mean
squared distance to it is 1 (the stretching step of Riemannian Procrustes analysis, Rodrigues
et al., IEEE TBME 2019).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..manifolds.base import Metric
from ..manifolds.spd import SPD
from ..manifolds.spectral import expm, logm, sqrtm_invsqrtm, sym
from ._sklearn import (
    BaseEstimator,
    TransformerMixin,
    check_is_fitted,
    check_n_channels,
    check_sample_weight,
    check_spd,
    to_output,
)
from .tangent_space import _compute_dtype, fast_path, spd_manifold

__all__ = ["recenter", "Recenter"]


def recenter(
    C: Tensor, mean: Tensor, metric: str | Metric = "affine_invariant", index: Tensor | None = None
) -> Tensor:
    """Transport SPD matrices so that ``mean`` goes to the identity.

    Parameters
    ----------
    C : Tensor, shape (*batch, n, n)
    mean : Tensor, shape (n, n) or broadcastable to (*batch, n, n); with ``index``: (L, n, n)
    metric : str or Metric
    index : Tensor (long), shape (*batch,), optional
        Which of the ``L`` means each matrix uses (each mean's square roots are computed once).

    Returns
    -------
    Tensor, shape (*batch, n, n)

    Examples
    --------
    >>> import torch
    >>> from riemlearn.stats.recentering import recenter
    >>> M = torch.diag(torch.tensor([4.0, 1.0], dtype=torch.float64))
    >>> recenter(M[None], M)
    tensor([[[1., 0.],
             [0., 1.]]], dtype=torch.float64)
    """
    m = spd_manifold(metric).metric
    kind = fast_path(m)
    dt = C.dtype
    cdt = _compute_dtype(m, dt)
    Cc, Mc = C.to(cdt), mean.to(cdt)
    pick = (lambda t: t[index.to(t.device)]) if index is not None else (lambda t: t)
    if kind == "ai":
        _, isq = sqrtm_invsqrtm(Mc)
        isq = pick(isq)
        out = sym(isq @ Cc @ isq)
    elif kind == "le":
        out = expm(logm(Cc) - pick(logm(Mc)))
    else:
        Mc = pick(Mc)
        shape = torch.broadcast_shapes(Cc.shape, Mc.shape)
        eye = torch.eye(C.shape[-1], dtype=cdt, device=C.device).expand(shape)
        Me = Mc.expand(shape)
        out = m.exp(eye, m.transport(Me, eye, m.log(Me, Cc.expand(shape))))
    return out.to(dt)


def _stretch(C: Tensor, scale: Tensor, metric: Metric) -> Tensor:
    """``Exp_I(s · Log_I C)`` with per-matrix ``s`` (shape ``(*batch,)``)."""
    eye = torch.eye(C.shape[-1], dtype=C.dtype, device=C.device).expand_as(C)
    return metric.exp(eye, scale[..., None, None] * metric.log(eye, C))


def _dispersion(C: Tensor, metric: Metric) -> Tensor:
    eye = torch.eye(C.shape[-1], dtype=C.dtype, device=C.device).expand_as(C)
    return metric.dist(eye, C) ** 2


class Recenter(TransformerMixin, BaseEstimator):
    """Move each domain's Fréchet mean to the identity (and optionally normalise its spread).

    Parameters
    ----------
    metric : str or Metric, default="affine_invariant"
    rescale : bool, default=False
        Also stretch each domain along geodesics from the identity so that its mean squared
        distance to the identity is 1.

    Notes
    -----
    ``fit(X, groups=g)`` estimates one mean per domain label in ``g`` (one batched Fréchet
    mean call); ``transform(X, groups=g)`` re-centers each trial with its domain's fitted mean.
    A domain label that was not seen in ``fit`` is re-centered with the mean of its own trials
    in ``X`` (unsupervised adaptation to a new session). ``transform(X)`` without ``groups``
    uses the single fitted mean when ``fit`` saw one domain, and otherwise treats ``X`` as one
    new domain. In a :class:`~sklearn.pipeline.Pipeline` ``groups`` reach ``fit`` as a fit
    parameter (``pipe.fit(X, y, recenter__groups=g)``) and test data are then handled as one
    new domain.

    Attributes
    ----------
    domains_ : ndarray, shape (n_domains,) or None
        Domain labels seen in ``fit`` (``None`` when fitted without ``groups``).
    means_ : ndarray or Tensor, shape (n_domains, n, n)
    scales_ : ndarray or Tensor, shape (n_domains,)
        Stretch factors (ones unless ``rescale``).

    Examples
    --------
    >>> import numpy as np
    >>> from riemlearn.stats import make_eeg, Covariances, Recenter
    >>> X, _ = make_eeg(20, 3, 128, random_state=0, as_numpy=True)
    >>> C = Covariances("oas").fit_transform(X)
    >>> g = np.repeat([0, 1], 10)
    >>> Z = Recenter().fit_transform(C, groups=g)
    >>> Z.shape
    (20, 3, 3)
    """

    def __init__(self, metric: str | Metric = "affine_invariant", rescale: bool = False) -> None:
        self.metric = metric
        self.rescale = rescale

    def _domain_stats(self, C: Tensor, gidx: Tensor, n_dom: int, w: Tensor | None,
                      manifold: SPD) -> tuple[Tensor, Tensor]:
        from .classifiers import class_means

        means = class_means(C, gidx, n_dom, manifold, w)
        if not self.rescale:
            return means, C.new_ones(n_dom)
        disp = _dispersion(recenter(C, means, manifold.metric, index=gidx), manifold.metric)
        onehot = torch.nn.functional.one_hot(gidx.to(C.device), n_dom).to(C.dtype)
        ww = onehot if w is None else onehot * w[:, None]
        mean_disp = (ww * disp[:, None]).sum(0) / ww.sum(0)
        return means, mean_disp.clamp_min(torch.finfo(C.dtype).tiny).rsqrt()

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None, groups: Any = None) -> Recenter:
        """Fit one mean (and scale) per domain of ``groups`` (all trials one domain if None)."""
        manifold = spd_manifold(self.metric)
        C, was_numpy = check_spd(X)
        w = check_sample_weight(sample_weight, C.shape[0], C)
        domains, gidx = _encode_groups(groups, C.shape[0])
        means, scales = self._domain_stats(C, gidx, len(domains), w, manifold)
        self.domains_ = None if groups is None else domains
        self.means_ = to_output(means, was_numpy)
        self.scales_ = to_output(scales, was_numpy)
        self.n_channels_ = int(C.shape[-1])
        return self

    def transform(self, X: Any, groups: Any = None) -> Any:
        """Re-centered matrices, same shape as ``X`` (n_matrices, n, n)."""
        check_is_fitted(self)
        C, was_numpy = check_spd(X)
        check_n_channels(self, C)
        manifold = spd_manifold(self.metric)
        fitted_means = torch.as_tensor(self.means_).to(dtype=C.dtype, device=C.device)
        fitted_scales = torch.as_tensor(self.scales_).to(dtype=C.dtype, device=C.device)
        if groups is None and self.domains_ is None:
            means, scales = fitted_means[:1], fitted_scales[:1]
            g = torch.zeros(C.shape[0], dtype=torch.long, device=C.device)
        else:
            labels, gidx = _encode_groups(groups, C.shape[0])
            known = self.domains_ if self.domains_ is not None else np.array([])
            new = np.array([lab not in set(known.tolist()) for lab in labels.tolist()], dtype=bool)
            dm = C.new_empty((len(labels),) + C.shape[1:])
            ds = C.new_empty(len(labels))
            if new.any():
                keep = torch.from_numpy(new)[gidx]
                sub_lab = np.nonzero(new)[0]
                remap = torch.full((len(labels),), -1, dtype=torch.long)
                remap[torch.from_numpy(sub_lab)] = torch.arange(len(sub_lab))
                m_new, s_new = self._domain_stats(C[keep.to(C.device)], remap[gidx[keep]], len(sub_lab),
                                                  None, manifold)
                dm[torch.from_numpy(sub_lab)] = m_new
                ds[torch.from_numpy(sub_lab)] = s_new
            for k in np.nonzero(~new)[0]:  # a few domain labels, not trials
                j = int(np.nonzero(known == labels[k])[0][0])
                dm[k], ds[k] = fitted_means[j], fitted_scales[j]
            g = gidx.to(C.device)
            means, scales = dm, ds
        out = recenter(C, means, manifold.metric, index=g)
        if self.rescale:
            out = _stretch(out, scales[g], manifold.metric)
        return to_output(out, was_numpy)

    def fit_transform(self, X: Any, y: Any = None, sample_weight: Any = None, groups: Any = None) -> Any:
        """``fit(X, y, sample_weight, groups).transform(X, groups)``."""
        return self.fit(X, y, sample_weight=sample_weight, groups=groups).transform(X, groups=groups)

    def __sklearn_tags__(self):  # noqa: D105
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        return tags


def _encode_groups(groups: Any, n: int) -> tuple[np.ndarray, Tensor]:
    if groups is None:
        return np.array([0]), torch.zeros(n, dtype=torch.long)
    if isinstance(groups, Tensor):
        groups = groups.detach().cpu().numpy()
    arr = np.asarray(groups)
    if arr.shape != (n,):
        raise ValueError(f"groups must have shape ({n},), got {arr.shape}")
    labels, inv = np.unique(arr, return_inverse=True)
    return labels, torch.from_numpy(inv.reshape(-1).astype(np.int64))
