"""Scalar functions applied to eigenvalues, with stable first and second divided differences.

A :class:`SpectralFn` knows ``f``, ``f'``, ``f''`` and how to form the Loewner matrix
``F_ij = f[λi, λj]`` without cancellation. The named functions use exact reformulations
(``log1p``, ``expm1``, ``sinh``) so only exact ties need the derivative; :class:`Custom` falls
back to the midpoint derivative below a relative tie threshold.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["SpectralFn", "Log", "Exp", "Power", "Clamp", "Custom"]


def _pairs(w: Tensor) -> tuple[Tensor, Tensor]:
    return w.unsqueeze(-1), w.unsqueeze(-2)


def _safe(d: Tensor, mask: Tensor) -> Tensor:
    """``d`` with masked entries replaced by 1 (so ``torch.where`` never sees inf/NaN)."""
    return torch.where(mask, torch.ones_like(d), d)


class SpectralFn:
    """A scalar function ``f`` of eigenvalues with its first two derivatives."""

    def _params(self) -> tuple:
        return ()

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self._params() == other._params()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._params()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}{self._params()}"

    def value(self, w: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def deriv(self, w: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def second(self, w: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def first_divided_difference(self, w: Tensor, thr: float) -> Tensor:
        """Loewner matrix ``f[λi, λj]``, shape ``(*batch, n, n)``; generic midpoint rule."""
        a, b = _pairs(w)
        d = a - b
        scale = torch.maximum(a.abs(), b.abs()).clamp_min(torch.finfo(w.dtype).tiny)
        tie = d.abs() <= thr * scale
        fw = self.value(w)
        fa, fb = _pairs(fw)
        quotient = (fa - fb) / _safe(d, tie)
        return torch.where(tie, self.deriv((a + b) * 0.5), quotient)

    def second_divided_difference(self, w: Tensor, thr: float) -> Tensor:
        """``f[λi, λj, λk]``, shape ``(*batch, n, n, n)`` (used only by double backward)."""
        f1 = self.first_divided_difference(w, thr)
        fp = self.deriv(w)
        f2 = self.second(w)
        wi = w[..., :, None, None]
        wj = w[..., None, :, None]
        wk = w[..., None, None, :]
        scale = torch.maximum(torch.maximum(wi.abs(), wj.abs()), wk.abs())
        scale = scale.clamp_min(torch.finfo(w.dtype).tiny)
        d_ik = wi - wk
        tie_ik = d_ik.abs() <= thr * scale
        d_ji = wj - wi
        tie_ij = d_ji.abs() <= thr * scale
        f1_ij = f1.unsqueeze(-1)  # [i, j, ·]
        f1_jk = f1.unsqueeze(-3)  # [·, j, k]
        distinct = (f1_ij - f1_jk) / _safe(d_ik, tie_ik)
        # i ≈ k: f[i, j, i] = (f[i, j] − f'(i)) / (λj − λi), or f''/2 when all three tie.
        fp_i = fp[..., :, None, None]
        two_equal = (f1_ij - fp_i) / _safe(d_ji, tie_ij)
        all_equal = 0.5 * f2[..., :, None, None].expand_as(two_equal)
        return torch.where(~tie_ik, distinct, torch.where(~tie_ij, two_equal, all_equal))


class Log(SpectralFn):
    """``log λ``; ``f[a, b] = log1p(r) / (r·m)`` with ``m = max(a, b)``, ``r = (min − max)/m``."""

    def value(self, w: Tensor) -> Tensor:
        return torch.log(w)

    def deriv(self, w: Tensor) -> Tensor:
        return 1.0 / w

    def second(self, w: Tensor) -> Tensor:
        return -1.0 / (w * w)

    def first_divided_difference(self, w: Tensor, thr: float) -> Tensor:
        a, b = _pairs(w)
        hi = torch.maximum(a, b)
        r = (torch.minimum(a, b) - hi) / hi
        small = r.abs() < thr
        series = 1.0 - r * 0.5 + r * r / 3.0
        exact = torch.log1p(r) / _safe(r, small)
        return torch.where(small, series, exact) / hi


class Exp(SpectralFn):
    """``exp λ``; ``f[a, b] = e^{(a+b)/2} sinh(h)/h`` with ``h = |a − b|/2``."""

    def value(self, w: Tensor) -> Tensor:
        return torch.exp(w)

    def deriv(self, w: Tensor) -> Tensor:
        return torch.exp(w)

    def second(self, w: Tensor) -> Tensor:
        return torch.exp(w)

    def first_divided_difference(self, w: Tensor, thr: float) -> Tensor:
        a, b = _pairs(w)
        h = (a - b).abs() * 0.5
        small = h < thr
        big = h > 1.0
        sinhc = torch.where(small, 1.0 + h * h / 6.0, torch.sinh(h) / _safe(h, small))
        near = torch.exp((a + b) * 0.5) * sinhc
        d = a - b
        far = (torch.exp(a) - torch.exp(b)) / _safe(d, ~big)
        return torch.where(big, far, near)


class Power(SpectralFn):
    """``λ^t``; ``f[a, b] = m^{t−1} expm1(t log1p r) / r`` with ``m = max(a, b)``."""

    def __init__(self, t: float) -> None:
        self.t = float(t)

    def _params(self) -> tuple:
        return (self.t,)

    def value(self, w: Tensor) -> Tensor:
        if self.t == 0.5:
            return torch.sqrt(w)
        if self.t == -0.5:
            return torch.rsqrt(w)
        if self.t == 1.0:
            return w.clone()
        return torch.pow(w, self.t)

    def deriv(self, w: Tensor) -> Tensor:
        return self.t * torch.pow(w, self.t - 1.0)

    def second(self, w: Tensor) -> Tensor:
        return self.t * (self.t - 1.0) * torch.pow(w, self.t - 2.0)

    def first_divided_difference(self, w: Tensor, thr: float) -> Tensor:
        t = self.t
        a, b = _pairs(w)
        hi = torch.maximum(a, b)
        r = (torch.minimum(a, b) - hi) / hi
        small = r.abs() < thr
        series = t + 0.5 * t * (t - 1.0) * r + t * (t - 1.0) * (t - 2.0) / 6.0 * r * r
        exact = torch.expm1(t * torch.log1p(r)) / _safe(r, small)
        return torch.where(small, series, exact) * torch.pow(hi, t - 1.0)


class Clamp(SpectralFn):
    """``max(λ, eps)`` — the ReEig rectification; derivative 1 above ``eps``, 0 at or below."""

    def __init__(self, eps: float) -> None:
        self.eps = float(eps)

    def _params(self) -> tuple:
        return (self.eps,)

    def value(self, w: Tensor) -> Tensor:
        return w.clamp_min(self.eps)

    def deriv(self, w: Tensor) -> Tensor:
        return (w > self.eps).to(w.dtype)

    def second(self, w: Tensor) -> Tensor:
        return torch.zeros_like(w)


class Custom(SpectralFn):
    """User-given elementwise ``f``; ``df``/``d2f`` default to autograd of ``f``."""

    def __init__(
        self,
        f: Callable[[Tensor], Tensor],
        df: Callable[[Tensor], Tensor] | None = None,
        d2f: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        self.f, self.df, self.d2f = f, df, d2f

    def _params(self) -> tuple:
        return (self.f, self.df, self.d2f)

    def value(self, w: Tensor) -> Tensor:
        return self.f(w)

    def _autograd(self, g: Callable[[Tensor], Tensor], w: Tensor) -> Tensor:
        with torch.enable_grad():
            x = w.detach().requires_grad_(True)
            (d,) = torch.autograd.grad(g(x).sum(), x)
        return d

    def deriv(self, w: Tensor) -> Tensor:
        return self.df(w) if self.df is not None else self._autograd(self.f, w)

    def second(self, w: Tensor) -> Tensor:
        if self.d2f is not None:
            return self.d2f(w)
        if self.df is not None:
            return self._autograd(self.df, w)

        def first(x: Tensor) -> Tensor:
            (d,) = torch.autograd.grad(self.f(x).sum(), x, create_graph=True)
            return d

        return self._autograd(first, w)
