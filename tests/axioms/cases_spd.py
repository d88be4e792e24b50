"""Axiom cases for SPD with the affine-invariant, log-Euclidean and log-Cholesky metrics.

Bures–Wasserstein cases live in ``cases_spd_bw.py``.
"""

from __future__ import annotations

import torch
from riemlearn.manifolds.spd import SPD
from riemlearn.manifolds.spd_affine_invariant import AffineInvariant
from riemlearn.manifolds.spd_log_cholesky import LogCholesky
from riemlearn.manifolds.spd_log_euclidean import LogEuclidean
from torch import Tensor

from .cases import Case


def _indefinite(x: Tensor) -> Tensor:
    """A symmetric matrix with a negative eigenvalue (same shape)."""
    n = x.shape[-1]
    return x - 2 * torch.linalg.matrix_norm(x, ord=2)[..., None, None] * torch.eye(n, dtype=x.dtype)


CASES: list[Case] = [
    Case("spd-ai-3", lambda: SPD(3, AffineInvariant()), off_manifold=_indefinite),
    Case("spd-ai-4", lambda: SPD(4, "affine_invariant"), off_manifold=_indefinite),
    Case("spd-le-3", lambda: SPD(3, LogEuclidean()), off_manifold=_indefinite),
    Case("spd-lc-3", lambda: SPD(3, LogCholesky()), off_manifold=_indefinite),
    Case("spd-ai-theta0.5-3", lambda: SPD(3, AffineInvariant(theta=0.5)), off_manifold=_indefinite),
    Case("spd-le-theta0.5-3", lambda: SPD(3, LogEuclidean(theta=0.5)), off_manifold=_indefinite),
    Case("spd-lc-theta0.5-3", lambda: SPD(3, LogCholesky(theta=0.5)), off_manifold=_indefinite),
    Case("spd-ai-ab-3", lambda: SPD(3, AffineInvariant(alpha=2.0, beta=-0.5)), off_manifold=_indefinite),
    Case("spd-le-ab-3", lambda: SPD(3, LogEuclidean(alpha=0.5, beta=0.7)), off_manifold=_indefinite),
]
