"""Fused dispersion normalization ``Zᵢ ↦ Zᵢ^f``, ``f = s / √(σ² + eps)``, ``σ² = mean ‖log Zᵢ‖²``.

The centred points ``Zᵢ`` of the AIM-type batch norms have Fréchet mean ``I``; their dispersion
and the scaled output ``expm(f logm Zᵢ) = Zᵢ^f`` need one eigendecomposition of each ``Zᵢ``
(not two, as ``logm`` then ``expm`` would). The backward is written in Daleckii–Krein form,
cancellation-free and finite at repeated eigenvalues:

* ``∂/∂Zᵢ`` of ``Zᵢ^f`` at fixed ``f``: Loewner matrix ``F_jk = w_k^{f−1} expm1(f d)/expm1(d)``,
  ``d = log w_j − log w_k`` (``= f w^{f−1}`` on the diagonal and at ties);
* through ``f``: ``∂L/∂f = Σᵢ tr(Ḡᵢ Vᵢ diag(w^f log w) Vᵢᵀ)``, ``∂f/∂σ² = −f / (2(σ² + eps))``,
  ``∂σ²/∂Zᵢ = (2/N) Vᵢ diag(log w / w) Vᵢᵀ``; ``∂L/∂s = ∂L/∂f · f / s``.

Private to :mod:`riemlearn.layers` (used by :class:`SPDBatchNorm` and AIM LieBN).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ..manifolds.spectral import eigh, sym

__all__ = ["dispersion_power"]


def _loewner_power(lw: Tensor, wf: Tensor, w: Tensor, f: Tensor) -> Tensor:
    """``F_jk = (w_j^f − w_k^f)/(w_j − w_k)`` without cancellation; ``f`` broadcast as (..., 1, 1)."""
    d = lw.unsqueeze(-1) - lw.unsqueeze(-2)
    small = d.abs() < 1e-6
    ds = torch.where(small, torch.ones_like(d), d)
    ratio = torch.where(small, f * (1.0 + 0.5 * (f - 1.0) * d), torch.expm1(f * ds) / torch.expm1(ds))
    return (wf / w).unsqueeze(-2) * ratio  # w_k^{f-1} · ratio


class _DispersionPower(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, z: Tensor, s: Tensor, eps: float, var_fixed: Tensor | None,
                ab: tuple[float, float, float]) -> Any:
        w, v = eigh(sym(z))
        w = w.clamp_min(torch.finfo(w.dtype).tiny)
        lw = torch.log(w)
        alpha, beta, c = ab
        sq = lw.square().sum(-1) * alpha
        if beta != 0.0:
            sq = sq + beta * lw.sum(-1).square()
        var = (sq * c).mean(-1)  # (C,)
        use = var if var_fixed is None else var_fixed
        f = s / torch.sqrt(use + eps)  # (C,)
        wf = torch.exp(f[:, None, None] * lw)
        out = (v * wf.unsqueeze(-2)) @ v.mT
        ctx.eps, ctx.ab = eps, ab
        ctx.batch_var = var_fixed is None
        ctx.save_for_backward(w, v, lw, wf, f, use, s)
        ctx.mark_non_differentiable(var)
        return out, var

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, gout: Tensor, _gvar: Tensor) -> Any:
        w, v, lw, wf, f, use, s = ctx.saved_tensors
        gh = v.mT @ sym(gout) @ v
        inner = _loewner_power(lw, wf, w, f[:, None, None, None]) * gh
        dldf = (torch.diagonal(gh, dim1=-2, dim2=-1) * wf * lw).sum((-2, -1))  # (C,)
        gs = dldf * f / s
        if ctx.batch_var:
            n_pts = w.shape[-2]
            gvar = dldf * (-0.5 * f / (use + ctx.eps))  # (C,)
            alpha, beta, c = ctx.ab
            dsq = alpha * lw if beta == 0.0 else alpha * lw + beta * lw.sum(-1, keepdim=True)
            diag = (2.0 * c / n_pts) * gvar[:, None, None] * dsq / w
            inner = inner + torch.diag_embed(diag)
            gvar_fixed = None
        else:
            gvar_fixed = dldf * (-0.5 * f / (use + ctx.eps))
        gz = v @ inner @ v.mT
        return gz, gs, None, gvar_fixed, None


def dispersion_power(z: Tensor, scale: Tensor, eps: float, var: Tensor | None = None,
                     alpha: float = 1.0, beta: float = 0.0, theta: float = 1.0) -> tuple[Tensor, Tensor]:
    """``(Zᵢ^f, σ²)`` for centred points ``z (C, N, n, n)`` and scales ``(C,)``.

    ``σ² = mean (α‖log Zᵢ‖² + β tr(log Zᵢ)²) / θ²`` (the squared distance to ``I`` of the
    ``(α, β)``, ``θ``-deformed affine-invariant metric, with ``Zᵢ`` already raised to ``θ``).

    With ``var`` given (eval mode: running dispersion), ``f = s / √(var + eps)`` uses it; the
    returned ``σ²`` is always the batch dispersion of ``z`` (not differentiable).
    """
    return _DispersionPower.apply(z, scale, float(eps), var, (float(alpha), float(beta), 1.0 / theta**2))
