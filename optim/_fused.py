"""Fused ``retract`` + ``transport`` for metrics where sharing work pays off.

The optimizers move a point and its momentum together: ``y = R_x(u)`` then
``T_{x→y}(m)``. For some metrics both are much cheaper computed at once; this module holds those
fused kernels. Each returns exactly what ``metric.retract`` and ``metric.transport`` return (the
same formulas, up to round-off), and anything not covered falls back to the two calls.

Affine-invariant SPD (θ = 1, any (α, β): the (α, β) family shares the Levi-Civita connection):
with ``x = L Lᵀ`` (Cholesky) and ``w = L⁻¹ u L⁻ᵀ``, the metric's retraction
``y = x + u + ½ u x⁻¹ u`` is ``L (I + w + ½ w²) Lᵀ`` and the parallel transport
``E m Eᵀ`` with ``E = (y x⁻¹)^{1/2} = L z^{1/2} L⁻¹``, ``z = I + w + ½ w²``. ``z`` shares the
eigenvectors of ``w`` (eigenvalues ``1 + λ + λ²/2 ≥ ½``), so one Cholesky and one ``eigh`` of
``w`` replace the two eigendecompositions of the generic transport.

Poincaré ball (retraction = exponential map): :func:`riemlearn.manifolds.poincare.exp_transport`
computes ``1 − c‖·‖²`` once for ``x`` and once for ``y`` (seven times in ``exp`` then
``transport``) and that of the intermediate point in closed form.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ..manifolds import Manifold
from ..manifolds.base import Metric
from ..manifolds.spectral import eigh, sym

__all__ = ["retract_transport"]


def _ai_retract_transport(x: Tensor, u: Tensor, m: Tensor) -> tuple[Tensor, Tensor]:
    c = torch.linalg.cholesky(sym(x))
    w = torch.linalg.solve_triangular(c, u, upper=False)
    w = sym(torch.linalg.solve_triangular(c, w.mT, upper=False))
    lam, v = eigh(w)
    zeig = 1 + lam + 0.5 * lam * lam
    cv = c @ v
    y = sym((cv * zeig.unsqueeze(-2)) @ cv.mT)
    a = torch.linalg.solve_triangular(c, m, upper=False)
    a = torch.linalg.solve_triangular(c, a.mT, upper=False)  # L⁻¹ m L⁻ᵀ
    k = cv * zeig.sqrt().unsqueeze(-2)  # L V z^{1/2}
    mt = sym(k @ (v.mT @ a @ v) @ k.mT)
    return y, mt


def _fused_for(manifold: Manifold, x: Tensor) -> Callable[..., tuple] | None:
    metric = manifold.metric
    if type(metric).__name__ == "PoincareMetric" and type(metric).retract is Metric.retract:
        from ..manifolds.poincare import exp_transport

        c = metric.c
        return lambda x, d, m, scale: exp_transport(x, d, m, c, scale=scale)
    if type(metric).__name__ == "AffineInvariant" and getattr(metric, "theta", None) == 1.0:
        from ..manifolds.spd_base import resolve_compute_dtype

        if resolve_compute_dtype(getattr(metric, "compute_dtype", None), x.dtype) == x.dtype:
            return lambda x, d, m, scale: _ai_retract_transport(x, d if scale == 1.0 else d * scale, m)
    return None


def retract_transport(manifold: Manifold, x: Tensor, d: Tensor, m: Tensor,
                      scale: float = 1.0) -> tuple[Tensor, Tensor]:
    """``(R_x(u), T_{x→R_x(u)}(m))`` with ``u = scale · d``, the metric's retraction and
    transport (the Poincaré step folds ``scale`` into its coefficients: one pass fewer)."""
    fused = _fused_for(manifold, x)
    if fused is not None:
        return fused(x, d, m, scale)
    u = d if scale == 1.0 else d * scale
    y = manifold.retract(x, u)
    return y, manifold.transport(x, y, m)
