"""Scalar functions applied to eigenvalues, with stable first and second divided differences.

A :class:`SpectralFn` knows ``f``, ``f'``, ``f''`` and how to form the Loewner matrix
``F_ij = f[λi, λj]`` without cancellation. The named functions use exact reformulations
(``1/(√a+√b)`` for the square root, ``log1p``/``expm1`` of ``(hi − lo)/lo`` for log and powers,
``e^lo expm1(hi − lo)`` for exp) that are accurate to a few ulps for every pair, so only exact
ties (the diagonal, repeated eigenvalues) need the derivative; they are patched in place without
a full-size ``torch.where`` (which costs as much as several matrix products at n = 32).
:class:`Custom` and :class:`Clamp` fall back to the midpoint derivative below a relative tie
threshold.
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


def _gap_ratio(w: Tensor) -> tuple[Tensor, Tensor]:
    """``(d, d / lo)`` with ``d = |λi − λj|`` (exact for close pairs), ``lo = min(λi, λj) > 0``.

    ``d / lo`` is formed as ``d · max(1/λi, 1/λj)`` (a broadcast max and an in-place product
    instead of a full-size division; one extra rounding).
    """
    a, b = _pairs(w)
    ra, rb = _pairs(torch.reciprocal(w))
    d = (a - b).abs_()
    return d, torch.maximum(ra, rb).mul_(d)


def _patch_ties(f1: Tensor, w: Tensor, fp: Tensor) -> Tensor:
    """Set ``f[λi, λj] = f'(λi)`` where ``λi == λj`` exactly (diagonal always), in place.

    ``w`` is sorted ascending (``eigh``), so an off-diagonal exact tie exists iff two adjacent
    eigenvalues are equal: on CPU a cheap O(n) test decides whether the full-size fix is needed.
    On other devices the fix is always applied (cheap there, and it avoids a host sync).
    """
    n = w.shape[-1]
    if n > 1 and (w.device.type != "cpu" or bool((w[..., 1:] == w[..., :-1]).any())):
        a, b = _pairs(w)
        f1 = torch.where(a == b, fp.unsqueeze(-1).expand_as(f1), f1)
    f1.diagonal(dim1=-2, dim2=-1).copy_(fp)
    return f1


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
    """``log λ``; ``f[a, b] = log1p(d/lo) / d`` with ``d = |a − b|``, ``lo = min(a, b)``.

    ``d`` is exact for close pairs (Sterbenz) and ``log1p`` of a non-negative argument is
    accurate even at condition numbers beyond ``1/eps``.
    """

    def value(self, w: Tensor) -> Tensor:
        return torch.log(w)

    def deriv(self, w: Tensor) -> Tensor:
        return 1.0 / w

    def second(self, w: Tensor) -> Tensor:
        return -1.0 / (w * w)

    def first_divided_difference(self, w: Tensor, thr: float) -> Tensor:
        # f[a, b] = g(hi/lo)/lo with g(u) = log(u)/(u − 1), hi = max(a, b), lo = min(a, b).
        # g is well conditioned (relative condition ≤ ½), so evaluating it at the rounded
        # u = hi·(1/lo) costs ~ulps; log(u) is accurate and u − 1 exact (Sterbenz), hence a few
        # ulps for every pair — as log1p(d/lo)/d, but with torch's vectorized log (log1p is
        # several times slower in float64). u = 1 (the diagonal, ties) gives 0/0, replaced by
        # the limit g(1) = 1, i.e. f[a, a] = 1/a. For ascending w, u is monotone away from the
        # diagonal, so on CPU an O(n) look at the first off-diagonal tells whether anything
        # but the diagonal needs it (elsewhere the full-size fix avoids a host sync).
        # Two full-size buffers, reused (fresh large CPU allocations cost page faults, as much
        # as the arithmetic at n = 32): ``m`` holds 1/lo, then log u, then the result.
        ra, rb = _pairs(torch.reciprocal(w))
        a, b = _pairs(w)
        m = torch.maximum(ra, rb)  # 1/lo
        u = torch.maximum(a, b).mul_(m)
        q = torch.log(u, out=m)
        u.sub_(1.0)
        q.div_(u)
        n = w.shape[-1]
        if w.device.type == "cpu" and (n < 2 or not bool((u.diagonal(1, -2, -1) == 0).any())):
            q.diagonal(0, -2, -1).fill_(1.0)
        else:
            q.nan_to_num_(nan=1.0)
        return q.mul_(torch.maximum(ra, rb, out=u))


class Exp(SpectralFn):
    """``exp λ``; ``f[a, b] = e^lo expm1(d) / d`` with ``d = |a − b|``, ``lo = min(a, b)``.

    Accurate for every pair; it overflows (inf) only where ``expm1(d)`` does, i.e. eigenvalue
    spreads beyond ~88 (float32) / ~709 (float64), where ``exp`` itself is already useless.
    """

    def value(self, w: Tensor) -> Tensor:
        return torch.exp(w)

    def deriv(self, w: Tensor) -> Tensor:
        return torch.exp(w)

    def second(self, w: Tensor) -> Tensor:
        return torch.exp(w)

    def first_divided_difference(self, w: Tensor, thr: float) -> Tensor:
        a, b = _pairs(w)
        d = (a - b).abs_()
        ew = torch.exp(w)
        ea, eb = _pairs(ew)
        f1 = torch.expm1(d).div_(d).mul_(torch.minimum(ea, eb))
        return _patch_ties(f1, w, ew)


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
        if t == 0.5:  # (√a − √b)/(a − b) = 1/(√a + √b): exact, no ties to patch
            sa, sb = _pairs(torch.sqrt(w))
            return (sa + sb).reciprocal_()
        if t == -0.5:  # = −1 / (√a √b (√a + √b)); one full-size buffer
            sa, sb = _pairs(torch.sqrt(w))
            r = torch.rsqrt(w)
            ra, rb = _pairs(r)
            return torch.add(sa, sb).reciprocal_().mul_(rb).mul_(-ra)
        if t == -1.0:  # = −1/(ab)
            r = torch.reciprocal(w)
            ra, rb = _pairs(r)
            return torch.mul(-ra, rb)
        if t == 1.0:
            return torch.ones_like(a * b)
        if t == 0.0:
            return torch.zeros_like(a * b)
        if t == 2.0:
            return a + b
        # lo^t ((hi/lo)^t − 1)/d with (hi/lo)^t − 1 = expm1(t log1p(d/lo))
        d, x = _gap_ratio(w)
        fa, fb = _pairs(self.value(w))
        lo_t = torch.minimum(fa, fb) if t > 0 else torch.maximum(fa, fb)
        f1 = x.log1p_().mul_(t).expm1_().div_(d).mul_(lo_t)
        return _patch_ties(f1, w, self.deriv(w))


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
