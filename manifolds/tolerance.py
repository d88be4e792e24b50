"""Tolerances keyed on dtype: the one place numerical thresholds come from.

Every membership test, tie threshold and convergence default in riemlearn asks this module,
so that float32 and float64 behave consistently and the numbers can be audited in one place.
"""

from __future__ import annotations

import torch

__all__ = ["eps", "atol", "tie_threshold", "as_float_dtype"]


def as_float_dtype(dtype: torch.dtype | None) -> torch.dtype:
    """Return ``dtype`` if it is floating point, else the default float dtype."""
    if dtype is None or not dtype.is_floating_point:
        return torch.get_default_dtype()
    return dtype


def eps(dtype: torch.dtype) -> float:
    """Machine epsilon of ``dtype`` (float16/bfloat16 included)."""
    return float(torch.finfo(as_float_dtype(dtype)).eps)


def atol(dtype: torch.dtype) -> float:
    """Absolute tolerance for membership tests (``belongs``, ``is_tangent``).

    Roughly ``sqrt(eps)`` scaled up a little: 1e-7 in float64, 1e-3 in float32. Checks are
    made on quantities of order one (``XᵀX − I``, ``‖x‖ − 1``), so an absolute value fits.
    """
    e = eps(dtype)
    if e <= 1e-15:
        return 1e-7
    if e <= 1e-6:
        return 1e-3
    return 3e-2


def tie_threshold(dtype: torch.dtype) -> float:
    """Relative gap below which two eigenvalues are treated as tied.

    ``eps ** (1/3)`` balances the cancellation error of a divided difference (``eps/δ``) against
    the truncation error of replacing it by the derivative at the midpoint (``δ²``).
    """
    return eps(dtype) ** (1.0 / 3.0)
