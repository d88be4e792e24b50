"""Axiom cases for the Bures–Wasserstein family on SPD (ids ``spd-bw*``).

Random SPD points have eigenvalues in ``[e⁻¹, e]``; tangent vectors are scaled to BW norm
``0.7 · tangent_scale``. Since ``‖L_x[u]‖₂ ≤ ‖u‖_x / √λmin(x)``, the chosen scales keep
``I + L_x[u]`` positive definite, i.e. inside the domain where ``exp`` is the minimizing
geodesic and ``log`` inverts it. For GBW the bound applies to ``M^{-1/2} x M^{-1/2}``
(``M`` has eigenvalues in ``[0.5, 2]``), hence the smaller scale.
"""

from __future__ import annotations

import torch
from riemlearn.manifolds.spd import SPD
from riemlearn.manifolds.spd_bures_wasserstein import BuresWasserstein, GeneralizedBuresWasserstein

from .cases import Case

NO_GYRO = frozenset({"gyro"})


def _indefinite(x: torch.Tensor) -> torch.Tensor:
    """Shift every eigenvalue below zero (random points have eigenvalues ≤ e < 3)."""
    return x - 3.0 * torch.eye(x.shape[-1], dtype=x.dtype, device=x.device)


def _m3() -> torch.Tensor:
    """A fixed non-diagonal SPD metric parameter with eigenvalues 0.5, 1, 2."""
    q = torch.linalg.qr(torch.tensor([[1.0, 2.0, 0.0], [0.5, -1.0, 1.0], [0.0, 1.0, 3.0]],
                                     dtype=torch.float64))[0]
    return q @ torch.diag(torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)) @ q.T


CASES: list[Case] = [
    Case("spd-bw-3", lambda: SPD(3, metric=BuresWasserstein()), NO_GYRO,
         tangent_scale=0.5, off_manifold=_indefinite),
    Case("spd-bw-4", lambda: SPD(4, metric=BuresWasserstein()), NO_GYRO,
         tangent_scale=0.5, off_manifold=_indefinite),
    Case("spd-bw-gbw-3", lambda: SPD(3, metric=GeneralizedBuresWasserstein(_m3())), NO_GYRO,
         tangent_scale=0.35, off_manifold=_indefinite),
    Case("spd-bw-gbw-theta-3", lambda: SPD(3, metric=GeneralizedBuresWasserstein(_m3(), theta=0.5)),
         NO_GYRO, tangent_scale=0.35, off_manifold=_indefinite),
]
