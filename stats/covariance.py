"""Batched covariance estimators for multichannel time series, and their scikit-learn transformers.

Functional core: :func:`covariances` maps trials ``(*batch, n_channels, n_times)`` to
``(*batch, n_channels, n_channels)`` with one of

- ``"scm"``  sample covariance (centered, divided by ``n_times``);
- ``"cov"``  unbiased sample covariance (divided by ``n_times - 1``);
- ``"lwf"``  Ledoit–Wolf shrinkage towards ``μ I`` (Ledoit & Wolf, J. Multivar. Anal. 2004);
- ``"oas"``  oracle approximating shrinkage towards ``μ I`` (Chen, Wiesel, Eldar & Hero,
  IEEE TSP 2010), in the form used by scikit-learn >= 1.3;
- ``"sch"``  Schäfer–Strimmer shrinkage towards the diagonal (Stat. Appl. Genet. Mol. Biol. 2005);
- ``"corr"`` correlation matrix.

All are a few batched matrix products: no loop over trials. The estimates agree with
scikit-learn's ``ledoit_wolf`` / ``oas`` and pyRiemann's ``covariances`` (tested).

Transformers: :class:`Covariances` (trials → SPD matrices) and :class:`Shrinkage`
(SPD → ``(1 − s) C + s tr(C)/n I``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ._sklearn import (
    BaseEstimator,
    TransformerMixin,
    check_spd,
    check_trials,
    to_output,
)

__all__ = ["covariances", "shrink", "ESTIMATORS", "Covariances", "Shrinkage"]

ESTIMATORS = ("scm", "cov", "lwf", "oas", "sch", "corr")


def _centered(X: Tensor) -> Tensor:
    return X - X.mean(dim=-1, keepdim=True)


def _trace(C: Tensor) -> Tensor:
    return C.diagonal(dim1=-2, dim2=-1).sum(-1)


def _eye_like(C: Tensor) -> Tensor:
    return torch.eye(C.shape[-1], dtype=C.dtype, device=C.device)


def shrink(C: Tensor, shrinkage: Tensor | float) -> Tensor:
    """Shrink towards the scaled identity: ``(1 − s) C + s (tr C / n) I``.

    Parameters
    ----------
    C : Tensor, shape (*batch, n, n)
    shrinkage : float or Tensor broadcastable to (*batch,)

    Returns
    -------
    Tensor, shape (*batch, n, n)
    """
    s = torch.as_tensor(shrinkage, dtype=C.dtype, device=C.device)[..., None, None]
    mu = (_trace(C) / C.shape[-1])[..., None, None]
    return (1 - s) * C + (s * mu) * _eye_like(C)


def _scm(Xc: Tensor) -> Tensor:
    return Xc @ Xc.mT / Xc.shape[-1]


def _emp(X: Tensor) -> Tensor:
    """Centered sample covariance ``(1/T) Σ (x_t − m)(x_t − m)ᵀ`` without a centered copy of X.

    ``X Xᵀ/T − m mᵀ`` reads X once; it loses about ``eps · |m|²/var`` relative accuracy, so when
    any channel's squared mean exceeds ``1e-12/eps`` times its variance (i.e. always in float32)
    the estimate is recomputed from centered data.
    """
    m = X.mean(dim=-1)
    c = X @ X.mT / X.shape[-1] - m[..., :, None] * m[..., None, :]
    var = c.diagonal(dim1=-2, dim2=-1)
    ratio = (m * m) / var.clamp_min(torch.finfo(X.dtype).tiny)
    if c.numel() and float(ratio.max()) > 1e-12 / torch.finfo(X.dtype).eps:
        return _scm(_centered(X))
    return c


def _lwf(Xc: Tensor) -> tuple[Tensor, Tensor]:
    n_channels, n_times = Xc.shape[-2], Xc.shape[-1]
    emp = _scm(Xc)
    mu = _trace(emp) / n_channels
    # Σ_t ‖x_t‖⁴ / n_times  and  ‖emp‖_F²  (the Ledoit–Wolf β and δ statistics)
    sq_norms = (Xc * Xc).sum(dim=-2)
    beta_ = (sq_norms * sq_norms).sum(-1) / n_times
    delta_ = (emp * emp).sum(dim=(-2, -1))
    beta = (beta_ - delta_) / (n_channels * n_times)
    delta = (delta_ - n_channels * mu * mu) / n_channels
    beta = torch.minimum(beta, delta)
    s = torch.where(beta > 0, beta / torch.where(delta > 0, delta, 1.0), 0.0)
    return shrink(emp, s), s


def _oas(emp: Tensor, n_times: int) -> tuple[Tensor, Tensor]:
    n_channels = emp.shape[-1]
    alpha = (emp * emp).mean(dim=(-2, -1))
    mu = _trace(emp) / n_channels
    num = alpha + mu * mu
    den = (n_times + 1) * (alpha - mu * mu / n_channels)
    s = torch.where(den == 0, 1.0, torch.clamp(num / torch.where(den == 0, 1.0, den), max=1.0))
    return shrink(emp, s), s


def _sch(X: Tensor) -> tuple[Tensor, Tensor]:
    n_times = X.shape[-1]
    Xc = _centered(X)
    scm = _scm(Xc)
    var = (Xc * Xc).mean(-1)  # population variance (ddof=0)
    std = var.sqrt()
    off = 1 - _eye_like(scm)
    r = (n_times / ((n_times - 1.0) * (std[..., :, None] * std[..., None, :]))) * scm * off
    x2 = Xc * Xc
    var_r = (x2 @ x2.mT - n_times * scm * scm) * off
    var_r = var_r * (n_times / ((n_times - 1.0) ** 3 * (var[..., :, None] * var[..., None, :])))
    r2 = (r * r).sum(dim=(-2, -1))
    gamma = torch.where(r2 == 0, 0.0, var_r.sum(dim=(-2, -1)) / torch.where(r2 == 0, 1.0, r2))
    gamma = gamma.clamp(0.0, 1.0)
    g = gamma[..., None, None]
    diag = torch.diag_embed(scm.diagonal(dim1=-2, dim2=-1))
    return (n_times / (n_times - 1.0)) * ((1 - g) * scm + g * diag), gamma


def _corr(c: Tensor) -> Tensor:
    d = c.diagonal(dim1=-2, dim2=-1).rsqrt()
    return c * d[..., :, None] * d[..., None, :]


def covariances(
    X: Tensor,
    estimator: str = "scm",
    *,
    return_shrinkage: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """Covariance matrices of a batch of multichannel signals.

    Parameters
    ----------
    X : Tensor, shape (*batch, n_channels, n_times)
        Signals (each row a channel). Means over time are removed by every estimator.
    estimator : {"scm", "cov", "lwf", "oas", "sch", "corr"}
        See the module docstring.
    return_shrinkage : bool
        Also return the shrinkage intensity, shape ``(*batch,)`` (zeros for "scm", "cov",
        "corr").

    Returns
    -------
    Tensor, shape (*batch, n_channels, n_channels)
        (and the shrinkage ``(*batch,)`` when asked).

    Examples
    --------
    >>> import torch
    >>> from riemlearn.stats.covariance import covariances
    >>> X = torch.randn(5, 4, 100, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> C, s = covariances(X, "oas", return_shrinkage=True)
    >>> C.shape, s.shape
    (torch.Size([5, 4, 4]), torch.Size([5]))
    >>> bool(((s >= 0) & (s <= 1)).all())
    True
    """
    if not isinstance(X, Tensor):
        raise ValueError(f"X must be a torch.Tensor, got {type(X).__name__}")
    if X.dim() < 2:
        raise ValueError(f"X must have shape (*batch, n_channels, n_times), got {tuple(X.shape)}")
    if not X.dtype.is_floating_point:
        raise ValueError(f"X must be floating point, got {X.dtype}")
    if X.shape[-1] < 2:
        raise ValueError(f"X needs at least 2 time samples, got {X.shape[-1]}")
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    zero = X.new_zeros(X.shape[:-2])
    n_times = X.shape[-1]
    if estimator == "sch":
        C, s = _sch(X)
    elif estimator == "lwf":
        C, s = _lwf(_centered(X))
    else:
        emp = _emp(X)
        if estimator == "scm":
            C, s = emp, zero
        elif estimator == "cov":
            C, s = emp * (n_times / (n_times - 1)), zero
        elif estimator == "oas":
            C, s = _oas(emp, n_times)
        else:
            C, s = _corr(emp), zero
    C = (C + C.mT) * 0.5
    return (C, s) if return_shrinkage else C


class Covariances(TransformerMixin, BaseEstimator):
    """Estimate one covariance matrix per trial (scikit-learn transformer).

    Parameters
    ----------
    estimator : {"scm", "cov", "lwf", "oas", "sch", "corr"}, default="scm"
        Covariance estimator (see :func:`covariances`).
    regularize : float or None, default=None
        If given, add ``regularize · tr(C)/n · I`` to every estimate (a relative ridge that
        makes rank-deficient estimates positive definite). Nothing is added otherwise.

    Notes
    -----
    Stateless: :meth:`fit` only validates ``X``. Input ``(n_trials, n_channels, n_times)`` as a
    numpy array (numpy out) or a torch tensor (tensor out, same device and dtype).

    Examples
    --------
    >>> import numpy as np
    >>> from riemlearn.stats import Covariances
    >>> X = np.random.default_rng(0).standard_normal((3, 4, 50))
    >>> Covariances("lwf").fit_transform(X).shape
    (3, 4, 4)
    """

    def __init__(self, estimator: str = "scm", regularize: float | None = None) -> None:
        self.estimator = estimator
        self.regularize = regularize

    def _check_params(self) -> None:
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}, got {self.estimator!r}")
        if self.regularize is not None and not (float(self.regularize) >= 0):
            raise ValueError(f"regularize must be None or >= 0, got {self.regularize!r}")

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> Covariances:
        """Validate parameters and ``X`` (n_trials, n_channels, n_times); return self."""
        self._check_params()
        t, _ = check_trials(X)
        self.n_channels_ = int(t.shape[1])
        return self

    def transform(self, X: Any) -> Any:
        """Covariance matrices, shape (n_trials, n_channels, n_channels)."""
        self._check_params()
        t, was_numpy = check_trials(X)
        C = covariances(t, self.estimator)
        if self.regularize:
            C = C + (float(self.regularize) * _trace(C) / C.shape[-1])[..., None, None] * _eye_like(C)
        return to_output(C, was_numpy)

    def __sklearn_tags__(self):  # noqa: D105
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        return tags


class Shrinkage(TransformerMixin, BaseEstimator):
    """Shrink symmetric (e.g. rank-deficient covariance) matrices towards ``tr(C)/n · I``.

    ``(1 − s) C + s tr(C)/n I``: positive definite for ``s > 0`` when ``C`` is PSD and non-zero.

    Parameters
    ----------
    shrinkage : float in [0, 1], default=0.1

    Examples
    --------
    >>> import numpy as np
    >>> from riemlearn.stats import Shrinkage
    >>> C = np.array([[[2.0, 1.0], [1.0, 2.0]]])
    >>> Shrinkage(0.5).fit_transform(C)
    array([[[2. , 0.5],
            [0.5, 2. ]]])
    """

    def __init__(self, shrinkage: float = 0.1) -> None:
        self.shrinkage = shrinkage

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> Shrinkage:
        """Validate parameters and ``X`` (n_matrices, n, n); return self."""
        self._check_params()
        check_spd(X, definite=False)
        return self

    def _check_params(self) -> None:
        s = self.shrinkage
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not (0.0 <= float(s) <= 1.0):
            raise ValueError(f"shrinkage must be a float in [0, 1], got {s!r}")

    def transform(self, X: Any) -> Any:
        """Shrunk matrices, same shape as ``X``."""
        self._check_params()
        t, was_numpy = check_spd(X, definite=False)
        return to_output(shrink(t, float(self.shrinkage)), was_numpy)

    def __sklearn_tags__(self):  # noqa: D105
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        return tags
