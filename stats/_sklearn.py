"""scikit-learn boundary helpers: numpy/torch conversion and input validation (DESIGN rule 9, 11).

Estimators in ``riemlearn.stats`` accept numpy arrays (and return numpy) or torch tensors (and
return tensors on the same device). :func:`as_tensor` converts an input once at the public
boundary and remembers which kind it was; :func:`to_output` converts a result back. The
validators raise :class:`ValueError` naming the argument and what is wrong (shape, NaN/inf,
not symmetric, not positive definite with the trial index and its smallest eigenvalue).

scikit-learn is an optional dependency (extra ``sklearn``): this module imports without it, and
constructing an estimator then raises an :class:`ImportError` that says how to install it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..manifolds.spectral import eigh
from ..manifolds.tolerance import eps

try:  # scikit-learn is the optional "sklearn" extra
    from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
    from sklearn.utils.validation import check_is_fitted

    HAS_SKLEARN = True
except ImportError:  # pragma: no cover - exercised only without scikit-learn
    HAS_SKLEARN = False

    _MSG = (
        "riemlearn.stats estimators need scikit-learn: pip install 'riemlearn[sklearn]' "
        "(or pip install scikit-learn)"
    )

    class BaseEstimator:  # type: ignore[no-redef]
        """Stand-in that explains how to install scikit-learn when an estimator is built."""

        def __new__(cls, *args: Any, **kwargs: Any):  # noqa: D102
            raise ImportError(_MSG)

    class ClassifierMixin:  # type: ignore[no-redef]
        pass

    class TransformerMixin:  # type: ignore[no-redef]
        pass

    def check_is_fitted(estimator: Any, attributes: Any = None) -> None:  # type: ignore[misc]
        raise ImportError(_MSG)


__all__ = [
    "BaseEstimator",
    "ClassifierMixin",
    "TransformerMixin",
    "check_is_fitted",
    "HAS_SKLEARN",
    "as_tensor",
    "to_output",
    "check_trials",
    "check_spd",
    "check_labels",
    "check_sample_weight",
    "check_n_channels",
    "labels_to_output",
]


def as_tensor(X: Any, name: str = "X") -> tuple[Tensor, bool]:
    """Convert ``X`` to a floating torch tensor; return ``(tensor, was_numpy)``.

    Torch tensors keep their dtype and device (integer tensors become the default float dtype).
    numpy arrays and array-likes become CPU tensors, float64 unless they are float32.
    """
    if isinstance(X, Tensor):
        if X.is_complex():
            raise ValueError(f"{name} must be real, got dtype {X.dtype}")
        if not X.dtype.is_floating_point:
            X = X.to(torch.get_default_dtype())
        return X, False
    try:
        arr = np.asarray(X)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise ValueError(f"{name} cannot be converted to an array: {exc}") from exc
    if arr.dtype == object:
        raise ValueError(f"{name} has dtype object; expected a numeric array")
    if np.iscomplexobj(arr):
        raise ValueError(f"{name} must be real, got dtype {arr.dtype}")
    if arr.dtype != np.float32:
        try:
            arr = arr.astype(np.float64, copy=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}") from exc
    return torch.from_numpy(np.ascontiguousarray(arr)), True


def to_output(t: Tensor, was_numpy: bool) -> Any:
    """Return ``t`` as numpy (detached, on CPU) if the input was numpy, else as is."""
    if was_numpy:
        return t.detach().cpu().numpy()
    return t


def _check_finite(X: Tensor, name: str) -> None:
    if bool(torch.isfinite(X.sum())):  # one fast pass: NaN/inf propagate into the sum
        return
    bad = ~torch.isfinite(X)
    if bool(bad.any()):
        flat = bad.reshape(X.shape[0], -1).any(dim=1) if X.dim() > 1 else bad.reshape(-1)
        first = int(torch.nonzero(flat)[0, 0])
        raise ValueError(
            f"{name} contains {int(bad.sum())} NaN/inf entries (first in trial {first})"
        )


def check_trials(X: Any, name: str = "X") -> tuple[Tensor, bool]:
    """Validate multichannel time series ``(n_trials, n_channels, n_times)``."""
    t, was_numpy = as_tensor(X, name)
    if t.dim() != 3:
        raise ValueError(
            f"{name} must have shape (n_trials, n_channels, n_times), got {tuple(t.shape)}"
        )
    if t.shape[0] == 0 or t.shape[1] == 0 or t.shape[2] == 0:
        raise ValueError(f"{name} is empty: shape {tuple(t.shape)}")
    if t.shape[2] < 2:
        raise ValueError(f"{name} needs at least 2 time samples per trial, got {t.shape[2]}")
    _check_finite(t, name)
    return t, was_numpy


def check_spd(
    X: Any, name: str = "X", *, n: int | None = None, definite: bool = True
) -> tuple[Tensor, bool]:
    """Validate a batch of SPD matrices ``(n_matrices, n, n)``; return the symmetrized tensor.

    Raises :class:`ValueError` for a wrong shape, NaN/inf, an asymmetric matrix, or a matrix
    that is not positive definite (naming the trial and its smallest eigenvalue). With
    ``definite=False`` only shape, finiteness and symmetry are checked.
    """
    t, was_numpy = as_tensor(X, name)
    if t.dim() != 3 or t.shape[-1] != t.shape[-2]:
        raise ValueError(
            f"{name} must have shape (n_matrices, n_channels, n_channels), got {tuple(t.shape)}"
        )
    if t.shape[0] == 0 or t.shape[-1] == 0:
        raise ValueError(f"{name} is empty: shape {tuple(t.shape)}")
    if n is not None and t.shape[-1] != n:
        raise ValueError(
            f"{name} has {t.shape[-1]}x{t.shape[-1]} matrices, the estimator was fitted on {n}x{n}"
        )
    _check_finite(t, name)
    scale = t.abs().amax(dim=(-2, -1))
    asym = (t - t.mT).abs().amax(dim=(-2, -1))
    tol = 1e3 * eps(t.dtype) * t.shape[-1]
    bad = asym > tol * scale
    if bool(bad.any()):
        k = int(torch.nonzero(bad)[0, 0])
        raise ValueError(
            f"{name} is not symmetric: trial {k} has max |X - X^T| = {float(asym[k]):.3g} "
            f"(entries up to {float(scale[k]):.3g})"
        )
    t = (t + t.mT) * 0.5
    if not definite:
        return t, was_numpy
    info = torch.linalg.cholesky_ex(t).info
    notpd = info != 0
    if bool(notpd.any()):
        idx = torch.nonzero(notpd)[:, 0]
        k = int(idx[0])
        w, _ = eigh(t[k])
        raise ValueError(
            f"{name} is not positive definite: {idx.numel()} of {t.shape[0]} matrices fail, "
            f"first trial {k} with smallest eigenvalue {float(w[0]):.3g} "
            "(regularize the covariance estimate, e.g. Covariances(estimator='oas') "
            "or Covariances(regularize=1e-6))"
        )
    return t, was_numpy


def check_labels(y: Any, n: int, *, min_classes: int = 2) -> tuple[np.ndarray, Tensor]:
    """Validate class labels; return ``(classes, y_index)`` with ``y_index`` a CPU long tensor."""
    if y is None:
        raise ValueError("y is required (class labels, shape (n_trials,))")
    if isinstance(y, Tensor):
        y = y.detach().cpu().numpy()
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"y must have shape (n_trials,), got {arr.shape}")
    if arr.shape[0] != n:
        raise ValueError(f"y has {arr.shape[0]} labels but X has {n} trials")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError("y contains NaN/inf labels")
    if arr.dtype.kind == "f" and not np.all(arr == np.round(arr)):
        raise ValueError("y has non-integer float values; classifiers need discrete class labels")
    classes, inv = np.unique(arr, return_inverse=True)
    if classes.shape[0] < min_classes:
        raise ValueError(
            f"y has {classes.shape[0]} class{'es' if classes.shape[0] != 1 else ''} "
            f"({classes.tolist()}); a classifier needs at least {min_classes}"
        )
    return classes, torch.from_numpy(inv.reshape(-1).astype(np.int64))


def check_sample_weight(sample_weight: Any, n: int, like: Tensor) -> Tensor | None:
    """Validate ``sample_weight`` (``None`` or ``(n_trials,)`` non-negative, finite, positive sum)."""
    if sample_weight is None:
        return None
    w, _ = as_tensor(sample_weight, "sample_weight")
    w = w.to(dtype=like.dtype, device=like.device)
    if w.dim() == 0:
        w = w.expand(n).clone()
    if w.shape != (n,):
        raise ValueError(f"sample_weight must have shape ({n},), got {tuple(w.shape)}")
    if not bool(torch.isfinite(w).all()):
        raise ValueError("sample_weight contains NaN/inf")
    if bool((w < 0).any()):
        raise ValueError("sample_weight must be non-negative")
    if not bool(w.sum() > 0):
        raise ValueError("sample_weight sums to zero")
    return w


def check_n_channels(est: Any, t: Tensor) -> None:
    """Raise if ``t`` does not have the channel count the estimator was fitted on."""
    n = getattr(est, "n_channels_", None)
    if n is not None and t.shape[-1] != n:
        raise ValueError(
            f"X has {t.shape[-1]} channels, {type(est).__name__} was fitted with {n}"
        )


def labels_to_output(classes: np.ndarray, idx: Tensor, was_numpy: bool, like: Tensor) -> Any:
    """Class labels ``classes[idx]``: numpy for numpy input; for tensor input a tensor on the
    input's device when the labels are numeric, else a numpy array."""
    labels = classes[idx.detach().cpu().numpy()]
    if was_numpy or labels.dtype.kind not in "biuf":
        return labels
    return torch.as_tensor(labels, device=like.device)
