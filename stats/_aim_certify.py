"""Certificates for the last Newton step of the affine-invariant mean (private).

After the move ``M' = C e^{D} Cᵀ`` the gradient is, to first order, the CG residual
``G − Hess[D]``; these functions bound the rest without a new eigendecomposition, so that a
step can be accepted as final when residual + bound <= tol (see ``_mean_spd.aim_mean``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..manifolds.spectral import sym
from ..manifolds.spectral_fns import Log
from ..manifolds.tolerance import tie_threshold
from ._aim_newton import _stack_vt, _sum_sandwich

__all__: list[str] = []


def _hess_error_from(hn: Tensor, dn: Tensor, n: int, dtype: torch.dtype) -> Tensor:
    """Bound on ``‖(Hess̃ − Hess)[D]‖_F`` when the products run in ``dtype`` (0 if that is ``hn``'s).

    Four products of inner size ``n`` and one scaling: ``8 n eps`` relative, times
    ``‖Hess‖ ≤ hn`` (:func:`_hess_norm_bound`) and ``‖D‖_F = dn``. A model, not a worst case:
    rounding errors of products with orthogonal factors grow like ``√n eps`` (measured relative
    errors of the float32 products: 0.7-1.6e-7 at n = 8...64, 140-3000× below the model; the
    adversarial worst case of Higham's ``γₙ`` bounds grows like ``n^{3/2} eps`` per product).
    ``tests/test_mean_fast_paths.py`` checks the margin.
    """
    if dtype == hn.dtype:
        return torch.zeros_like(dn)
    return (8 * n * torch.finfo(dtype).eps) * hn * dn


def _log_path_bound(hn: Tensor, dn: Tensor, n: int) -> Tensor:
    """Bound on ``‖G(M') − (G − Hess[D])‖_F`` after ``M' = C e^{D} Cᵀ``, free of λ_max/λ_min.

    Per point, ``f(s) = log(e^{-sD/2} Yᵢ e^{-sD/2})`` has ``f' = −φ(½ ad_L)[D]`` with ``L = f(s)``,
    ``φ(x) = x coth x`` (the Hessian's weights), so ``f'' = −Dφ(½ ad_L)[½ ad_{L'}][D]``. With
    ``0 ≤ φ' < 1`` the Daleckii–Krein form of ``Dφ`` has Hilbert–Schmidt norm at most
    ``‖½ ad_{L'}‖_HS ≤ √(n/2) ‖L'‖_F``, and ``‖L'‖_F ≤ m ‖D‖_F`` with ``m = max φ ≤ 1 + (lmax −
    lmin)/2``, which grows at most like ``e^{s‖D‖}`` along the path (Grönwall). Taylor:
    ``‖f(1) − f(0) − f'(0)‖ ≤ ½ √(n/2) e^{‖D‖} ‖D‖² m(0)``; summed with the weights, ``m(0)``
    becomes ``hn`` (:func:`_hess_norm_bound`). ``dn = ‖D‖_F``; shape ``(G,)``.
    """
    return 0.5 * math.sqrt(n / 2) * torch.exp(dn) * dn * dn * hn * (1 + 1e-6)


def _hess_norm_bound(ll: Tensor, w: Tensor) -> Tensor:
    """``‖Hess‖ ≤ Σ wᵢ (1 + (lmax − lmin)ᵢ / 2)`` (``δ coth δ ≤ 1 + |δ|``); also ``≥ κ(Hess)``, as
    ``Hess ≥ I``. Shape ``(G,)``, a sum over points."""
    return (w * (1.0 + 0.5 * (ll.amax(-1) - ll.amin(-1)))).sum(-1)


def _step_bound(lam: Tensor, w: Tensor, mu: Tensor) -> Tensor:
    """Bound on ``‖G(M') − (G − Hess[D])‖_F`` after the move ``M' = C e^{D} Cᵀ`` (no ``eigh``).

    ``Y'ᵢ ≅ P Yᵢ P`` with ``P = e^{-D/2}``; in the eigenbasis of ``Yᵢ`` this is ``Λ + Δ`` with
    ``Δ = QΛQ − Λ``, ``Q = e^{-D̃/2}``, ``D̃ = Vᵀ D V`` (same spectrum ``μ`` as ``D``). The
    first-order part ``Δ₁ = −(D̃Λ + ΛD̃)/2`` gives ``L¹ ∘ Δ₁ = −g ∘ D̃`` (``g = δ coth δ``, ``L¹``
    the divided differences of log), i.e. exactly ``G − Hess[D]`` — the CG residual. With
    ``E = Q − I`` and ``F = E + D̃/2`` (norms from ``μ`` alone), ``Δ − Δ₁ = FΛ + ΛF + EΛE``, so
    per point the rest is at most ``‖Δ − Δ₁‖/λ_min + ‖Δ‖² / (2 (λ_min − ‖Δ‖)²)`` (``|L¹| ≤ 1/λ_min``;
    the Taylor remainder of log, Bhatia, Matrix Analysis, V.3). Shape ``(G,)``.
    """
    e = torch.expm1(-0.5 * mu)  # eigenvalues of E
    f = torch.add(e, mu, alpha=0.5)  # eigenvalues of F
    e_f = torch.linalg.vector_norm(e, dim=-1)
    ee = e_f * torch.linalg.vector_norm(e, ord=float("inf"), dim=-1)
    lmin, lmax = lam.amin(-1), lam.amax(-1)
    rest = lmax * torch.add(ee, torch.linalg.vector_norm(f, dim=-1), alpha=2.0)[..., None]  # ‖Δ − Δ₁‖_F
    dn = lmax * torch.add(ee, e_f, alpha=2.0)[..., None]  # ‖Δ‖_F
    r = dn / (lmin - dn).clamp_min(torch.finfo(lam.dtype).tiny)
    err = torch.addcmul(rest / lmin, r, r, value=0.5)
    err = torch.where(dn < 0.5 * lmin, err, float("inf"))
    return (w.unsqueeze(-2) @ err.unsqueeze(-1)).reshape(w.shape[:-1]) * (1 + 1e-6)


def _perturbed_grad(v: Tensor, lam: Tensor, ll: Tensor, w: Tensor, mu: Tensor, u: Tensor
                    ) -> tuple[Tensor, Tensor]:
    """Gradient norm after the move ``M' = C e^{D} Cᵀ`` from the eigenpairs at ``M`` (no ``eigh``).

    ``Y'ᵢ ≅ P Yᵢ P`` with ``P = e^{-D/2}``; in the eigenbasis of ``Yᵢ``, ``Λ + Δ̂`` with
    ``Δ̂ = Q Λ Q − Λ``, ``Q = Vᵀ P V``. First order: ``log(Λ + Δ̂) ≈ log Λ + L¹ ∘ Δ̂`` (``L¹`` the
    divided differences of log). Returns the estimate and a bound on the neglected second-order
    term ``Σ wᵢ ‖Δ̂ᵢ‖² / (2 (λ_min − ‖Δ̂ᵢ‖)²)``.
    """
    p = (u * torch.exp(-0.5 * mu).unsqueeze(-2)) @ u.mT
    q = (v.mT @ p.unsqueeze(-3)) @ v
    delta = (q * lam.unsqueeze(-2)) @ q
    delta.diagonal(dim1=-2, dim2=-1).sub_(lam)
    l1 = Log().first_divided_difference(lam, tie_threshold(lam.dtype))
    inner = l1 * delta
    inner.diagonal(dim1=-2, dim2=-1).add_(ll)
    grad = sym(_sum_sandwich(_stack_vt(v), inner * w[..., None, None]))
    dn = delta.norm(dim=(-2, -1))
    lmin = lam.amin(-1)
    gap = (lmin - dn).clamp_min(torch.finfo(lam.dtype).tiny)
    # Taylor remainder of log: ‖R‖_F ≤ ½ sup|f''| ‖Δ̂‖_F² with sup|f''| = 1/(λ_min − ‖Δ̂‖)² (the
    # second divided differences of log are f''(ξ)/2; Bhatia, Matrix Analysis, V.3).
    err = torch.where(dn < 0.5 * lmin, 0.5 * dn * dn / (gap * gap), torch.full_like(dn, float("inf")))
    return grad, (w * err).sum(-1)
