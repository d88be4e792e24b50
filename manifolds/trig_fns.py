"""Trigonometric spectral functions for Stiefel and Grassmann geometry.

Closed forms on Grassmann and Stiefel are functions of small symmetric ``p × p`` matrices
(``UᵀU``, ``ZᵀZ``, the symmetric part of an orthogonal matrix). Written as entire (or analytic)
functions of the eigenvalue ``λ`` they need no square root of a matrix and no SVD, and they go
through :func:`riemlearn.manifolds.spectral.sym_functions`, whose Daleckii–Krein backward stays
finite at repeated eigenvalues (zero angles, identical subspaces).

Each function is evaluated by its Taylor series near ``0`` (no cancellation) and by the closed
form elsewhere. Divided differences treat eigenvalues closer than ``tie_threshold · max(1, |λ|)``
as tied: the functions vary on the scale 1, so near ``λ = 0`` an absolute threshold is the right
one (a relative one would divide cancelled differences by tiny gaps).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from .spectral_fns import SpectralFn

__all__ = ["COS_SQRT", "SINC_SQRT", "VERSIN_SQRT", "ATAN_RATIO", "ATAN_SQ", "ASIN_SQ", "PHI_ORTH"]

_NTERMS = 30


def _series(coef: list[float], w: Tensor) -> Tensor:
    out = torch.zeros_like(w)
    for c in reversed(coef):
        out = out * w + c
    return out


def _blend(
    w: Tensor, cut: float, series: Callable[[Tensor], Tensor], closed: Callable[[Tensor], Tensor]
) -> Tensor:
    small = w < cut
    ws = torch.where(small, w, torch.zeros_like(w))
    wc = torch.where(small, torch.full_like(w, cut), w)
    return torch.where(small, series(ws), closed(wc))


# cos(√λ) = Σ (−λ)^k/(2k)!,  sin(√λ)/√λ = Σ (−λ)^k/(2k+1)!,  (1 − cos√λ)/λ = Σ (−λ)^k/(2k+2)!
_COS = [(-1.0) ** k / math.factorial(2 * k) for k in range(_NTERMS)]
_SINC = [(-1.0) ** k / math.factorial(2 * k + 1) for k in range(_NTERMS)]
_VERS = [(-1.0) ** k / math.factorial(2 * k + 2) for k in range(_NTERMS)]
# asin(√σ)/(√σ √(1−σ)) = Σ 4^k (k!)² / (2k+1)! σ^k ;  atan(√τ)/√τ = Σ (−τ)^k / (2k+1)
_ASR = [4.0**k * math.factorial(k) ** 2 / math.factorial(2 * k + 1) for k in range(_NTERMS)]
_ATR = [(-1.0) ** k / (2 * k + 1) for k in range(_NTERMS)]
# asin(√σ)² = ½ Σ_{k≥1} 4^k σ^k / (k² C(2k, k))
_ASQ = [0.0] + [0.5 * 4.0**k / (k * k * math.comb(2 * k, k)) for k in range(1, _NTERMS)]


def cos_sqrt(w: Tensor) -> Tensor:
    """``cos(√λ)`` for ``λ ≥ 0`` (negative round-off is clamped)."""
    w = w.clamp_min(0)
    return _blend(w, 1.0, lambda s: _series(_COS, s), lambda s: torch.cos(torch.sqrt(s)))


def sinc_sqrt(w: Tensor) -> Tensor:
    """``sin(√λ)/√λ`` (1 at 0)."""
    w = w.clamp_min(0)
    return _blend(w, 1.0, lambda s: _series(_SINC, s), lambda s: torch.sin(torch.sqrt(s)) / torch.sqrt(s))


def versin_sqrt(w: Tensor) -> Tensor:
    """``(1 − cos√λ)/λ`` (½ at 0)."""
    w = w.clamp_min(0)
    return _blend(w, 1.0, lambda s: _series(_VERS, s), lambda s: (1 - torch.cos(torch.sqrt(s))) / s)


def _max_sigma(w: Tensor) -> float:
    return 1.0 - 4 * float(torch.finfo(w.dtype).eps)


def asin_ratio(w: Tensor) -> Tensor:
    """``asin(√σ)/(√σ √(1−σ)) = θ/(sin θ cos θ)`` for ``σ = sin²θ ∈ [0, 1)``.

    Singular at ``σ = 1`` (``θ = π/2``); the argument is clamped just below 1.
    """
    w = w.clamp(0, _max_sigma(w))

    def closed(s: Tensor) -> Tensor:
        r = torch.sqrt(s)
        return torch.asin(r) / (r * torch.sqrt(1 - s))

    return _blend(w, 0.25, lambda s: _series(_ASR, s), closed)


def atan_ratio(w: Tensor) -> Tensor:
    """``atan(√τ)/√τ = θ / tan θ`` for ``τ = tan²θ ≥ 0`` (1 at 0)."""
    w = w.clamp_min(0)
    return _blend(w, 0.25, lambda s: _series(_ATR, s), lambda s: torch.atan(torch.sqrt(s)) / torch.sqrt(s))


def atan_sq(w: Tensor) -> Tensor:
    """``atan(√τ)² = θ²`` for ``τ = tan²θ ≥ 0``, written ``τ · atan_ratio(τ)²`` (smooth at 0)."""
    return w.clamp_min(0) * atan_ratio(w) ** 2


def asin_sq(w: Tensor) -> Tensor:
    """``asin(√σ)² = θ²`` for ``σ = sin²θ ∈ [0, 1]`` (used where ``tan θ`` is unbounded)."""
    w = w.clamp(0, 1)
    # The derivative is infinite at σ = 1: take it at 1 − 4 eps (finite), keep the exact value.
    wc = w.clamp(max=_max_sigma(w))

    def f(s: Tensor) -> Tensor:
        return _blend(s, 0.25, lambda a: _series(_ASQ, a), lambda a: torch.asin(torch.sqrt(a)) ** 2)

    fc = f(wc)
    return fc + (f(w.detach()) - fc.detach())


def phi_orth(c: Tensor) -> Tensor:
    """``θ / sin θ`` as a function of ``c = cos θ`` (``θ ∈ [0, π)``): ``asin_ratio((1 − c)/2)``.

    With ``s = sin(θ/2)``, ``θ/sin θ = asin(s)/(s√(1−s²))`` and ``s² = (1 − c)/2``.
    """
    return asin_ratio((1 - c) * 0.5)


class _Analytic(SpectralFn):
    """A smooth scalar function with autograd derivatives and an absolute-near-zero tie rule."""

    def __init__(self, name: str, f: Callable[[Tensor], Tensor]) -> None:
        self.name, self.f = name, f

    def _params(self) -> tuple:
        return (self.name,)

    def __reduce__(self):  # module-level constants: pickle by name
        return (_BY_NAME.__getitem__, (self.name,))

    def value(self, w: Tensor) -> Tensor:
        return self.f(w)

    def _grad(self, g: Callable[[Tensor], Tensor], w: Tensor, create: bool = False) -> Tensor:
        with torch.enable_grad():
            x = w.detach().requires_grad_(True)
            (d,) = torch.autograd.grad(g(x).sum(), x, create_graph=create)
        return d

    def deriv(self, w: Tensor) -> Tensor:
        return self._grad(self.f, w)

    def second(self, w: Tensor) -> Tensor:
        def first(x: Tensor) -> Tensor:
            (d,) = torch.autograd.grad(self.f(x).sum(), x, create_graph=True)
            return d

        return self._grad(first, w)

    def first_divided_difference(self, w: Tensor, thr: float) -> Tensor:
        a, b = w.unsqueeze(-1), w.unsqueeze(-2)
        d = a - b
        scale = torch.maximum(a.abs(), b.abs()).clamp_min(1.0)
        tie = d.abs() <= thr * scale
        fw = self.value(w)
        fa, fb = fw.unsqueeze(-1), fw.unsqueeze(-2)
        quotient = (fa - fb) / torch.where(tie, torch.ones_like(d), d)
        return torch.where(tie, self.deriv((a + b) * 0.5), quotient)


COS_SQRT = _Analytic("cos_sqrt", cos_sqrt)
SINC_SQRT = _Analytic("sinc_sqrt", sinc_sqrt)
VERSIN_SQRT = _Analytic("versin_sqrt", versin_sqrt)
ATAN_RATIO = _Analytic("atan_ratio", atan_ratio)
ATAN_SQ = _Analytic("atan_sq", atan_sq)
ASIN_SQ = _Analytic("asin_sq", asin_sq)
PHI_ORTH = _Analytic("phi_orth", phi_orth)
_BY_NAME = {f.name: f for f in (COS_SQRT, SINC_SQRT, VERSIN_SQRT, ATAN_RATIO, ATAN_SQ, ASIN_SQ, PHI_ORTH)}
