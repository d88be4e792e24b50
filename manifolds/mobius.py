"""Möbius gyrovector algebra on the Poincaré ball of curvature ``-c`` (functional core).

Points are ``(*batch, n)`` with ``‖x‖ < 1/√c``. Every function takes the curvature ``c`` as a
float or a tensor (shape ``()`` or ``(*batch,)``), so a layer can learn it; the value given is the
curvature used (no softplus, no clamping of ``c``).

Numerics near the boundary (Mishne et al., ICML 2023) rest on three facts:

* ``A(x) = 1 − c‖x‖²`` is computed nearly exactly from the stored coordinates
  (:func:`one_minus_cnorm2`); everything that depends on
  the distance to the boundary is written in terms of it, never as ``1 − √c‖z‖`` of a derived
  vector ``z``. In particular ``1 − c‖x ⊕ y‖² = A(x) A(y) / D`` with
  ``D = A(x) A(y) + c‖x + y‖²`` (no cancellation: every term is positive).
* Möbius addition is evaluated as ``x ⊕ y = (A(x)(x + y) + c‖x + y‖² x) / D``, an algebraically
  equal form of the textbook formula whose coefficients are sums of positive terms.
* ``artanh(z) = ½ log1p(2z(1 + z) / A)`` with ``A = 1 − z²`` taken from the coordinates.

Results that come out of a ``tanh`` (exp maps, scalar and matrix multiplication) are capped at
radius ``(1 − 4ε)/√c`` (ε the machine epsilon of the dtype), and any result whose ``c‖y‖²``
comes within ``4ε`` of 1 (or whose exact ``1 − c‖y‖²`` is ``≤ 0``) is pulled back to radius
``√(1 − 8ε)/√c``: outputs then pass even a naive float check ``‖y‖√c < 1`` (a cap at
``1 − ε`` left many capped outputs failing it). No other clamping is done, so nothing is
shortened within the representational capacity (see :mod:`riemlearn.manifolds.poincare`).
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor

from .base import full_precision_products, safe_sqrt

__all__ = [
    "curvature",
    "one_minus_cnorm2",
    "gyro_add",
    "gyro_inv",
    "gyro_scalar",
    "gyration",
    "mobius_matvec",
    "gyro_midpoint",
    "dist_to_gyroplane",
    "expmap0",
    "logmap0",
    "keep_inside",
    "artanh_ratio",
]

_SMALL = 1e-4  # below this, series expansions replace ratios such as tanh(t)/t


def curvature(c: Tensor | float, ref: Tensor) -> Tensor:
    """``c`` as a tensor of ``ref``'s dtype/device, shaped to broadcast against ``(*batch, n)``.

    A float or a 0-d tensor is a common curvature; a tensor of shape ``(*batch,)`` gives one
    curvature per point (it is unsqueezed to ``(*batch, 1)``).
    """
    c = torch.as_tensor(c, dtype=ref.dtype, device=ref.device)
    return c.unsqueeze(-1) if c.dim() > 0 else c


def _eps(ref: Tensor) -> float:
    return float(torch.finfo(ref.dtype).eps)


@functools.cache
def _ones_column(n: int, dtype: torch.dtype) -> Tensor:
    return torch.ones(n, 1, dtype=dtype)


def _rowsum(p: Tensor) -> Tensor:
    """``p.sum(-1, keepdim=True)``; on CPU as a product with a ones column (BLAS): torch's
    reduction over a short last dimension is slow (10000×10, 1 thread: 31 vs 60 µs float32,
    17 vs 54 µs float64)."""
    if p.device.type == "cpu" and p.dim() >= 2 and full_precision_products(p.dtype):
        return p @ _ones_column(p.shape[-1], p.dtype)
    return p.sum(-1, keepdim=True)


def _sq(x: Tensor) -> Tensor:
    return _rowsum(x * x)


def _dot(x: Tensor, y: Tensor) -> Tensor:
    return _rowsum(x * y)


def _unit(x: Tensor) -> tuple[Tensor, Tensor]:
    """``(x/‖x‖, ‖x‖)`` with ``‖x‖`` keepdim, safe at 0 (returns 0 direction)."""
    n = safe_sqrt(_sq(x))
    return x / n.clamp_min(torch.finfo(x.dtype).tiny), n


def _split(a: Tensor, factor: float) -> tuple[Tensor, Tensor]:
    """Dekker split ``a = hi + lo`` with half-width mantissas (so ``hi·hi`` etc. are exact)."""
    t = factor * a
    hi = t - (t - a)
    return hi, a - hi


def _split_factor(dtype: torch.dtype) -> float:
    bits = round(-math.log2(torch.finfo(dtype).eps)) + 1  # 53 for float64, 24 for float32
    return float(2 ** ((bits + 1) // 2) + 1)


def _two_prod(a: Tensor, b: Tensor, factor: float) -> tuple[Tensor, Tensor]:
    """``a·b = p + e`` exactly (Dekker), elementwise."""
    p = a * b
    ah, al = _split(a, factor)
    bh, bl = _split(b, factor)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _two_sum(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """``a + b = s + e`` exactly (Knuth), elementwise."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _exact_one_minus_f64(x: Tensor, cc: Tensor) -> Tensor:
    """``1 − c‖x‖²`` for float64 ``x``, error ~1e-22·√n absolute (no autograd).

    With ``2^e ≈ √c`` (so ``‖2^e x‖² < 4`` in the ball), ``t = 2^(e+25) x`` (exact scaling) is cut
    into integers and remainders, ``t = a + r`` with ``a ∈ Z`` and ``|r| ≤ ½``. Every ``a²`` is
    exact, and so is every partial sum of them (integers below ``2^53``), so ``Σa²`` carries no
    rounding; only the small remainder ``Σ(2a + r) r`` (``≲ 2^26``) is rounded. The sum is then
    combined with Knuth's two-sum, scaled back by ``2^-50`` (exact) and the product with
    ``c·2^-2e ∈ [¼, 1)`` made exact with Dekker's two-product. Eight elementwise passes over
    ``x``; everything else is per point.
    """
    _, e = torch.frexp(torch.sqrt(cc))  # √c = m·2^e, m ∈ [0.5, 1)
    pw = torch.exp2(e.to(x.dtype))
    c1 = cc / (pw * pw)  # c·2^-2e ∈ [0.25, 1), exact
    t = x * (pw * 2.0**25)
    a = torch.round(t)
    r = t - a
    s1 = (a * a).sum(-1, keepdim=True)
    s2 = ((a + t) * r).sum(-1, keepdim=True)
    hi, lo = _two_sum(s1, s2)
    hi = hi * 2.0**-50
    p, q = _two_prod(c1, hi, _split_factor(x.dtype))
    return ((1 - p) - q) - c1 * (lo * 2.0**-50)


def one_minus_cnorm2(x: Tensor, c: Tensor | float) -> Tensor:
    """``A(x) = 1 − c‖x‖²``, keepdim ``(*batch, 1)``, accurate to ~ε *relative to A*.

    The textbook evaluation carries ~n·ε/2 absolute error from the sum of squares, i.e. a
    relative error ε/A that grows without bound at the boundary (1e-6 at ‖x‖ = 1 − 1e-10).
    Here the sum of squares is made (nearly) exact by cutting the coordinates on a fixed grid
    (float64; lower precisions are summed in float64), so ``1 − c‖x‖²`` is correct to a few
    ulps of itself down to ``A ~ 1e-12`` and to ~1e-7 relative at the float64 capacity
    (``A ~ 2e-16``). The correction is computed without autograd and added to the plain
    formula, whose (exact-arithmetic) derivative ``−2c x`` is what backward sees.
    """
    return _one_minus(x, curvature(c, x))


def _one_minus(x: Tensor, cc: Tensor) -> Tensor:
    """:func:`one_minus_cnorm2` for an already shaped curvature tensor ``cc``."""
    low = x.dtype in (torch.float32, torch.float16, torch.bfloat16)
    if x.dtype != torch.float64 and not low:
        return 1 - cc * _sq(x)
    with torch.no_grad():
        if low:
            # a plain float64 evaluation is exact enough: ~1e-16 absolute, ≤ 2e-9 relative at
            # the float32 capacity (A ≥ 6e-8)
            x64 = x.detach().double()
            exact = (1 - cc.detach().double() * (x64 * x64).sum(-1, keepdim=True)).to(x.dtype)
        else:
            exact = _exact_one_minus_f64(x.detach(), cc.detach())
    if not (torch.is_grad_enabled() and (x.requires_grad or cc.requires_grad)):
        return exact
    # the value is the exact one; backward sees the derivative −2c x of the plain formula
    plain = 1 - cc * _sq(x)
    return plain + (exact - plain.detach())


def _one_minus_interior(x: Tensor, cc: Tensor) -> Tensor:
    """``A(x)`` for the optimizers' hot path (conformal factors, ``exp`` + transport steps).

    On CPU, when every point has plain ``c‖x‖² ≤ ½`` (one cheap host read there), the plain
    ``1 − c‖x‖²`` is returned: its relative error is below ``(n + 2)ε`` for such points, a few
    ulps instead of one. Otherwise (a point nearer the boundary, or another device, where a
    host read would synchronize) this is :func:`_one_minus`.
    """
    if x.device.type == "cpu" and x.numel() > 0:
        s = cc * _sq(x)
        if float(s.amax()) <= 0.5:  # NaN compares False: the exact path
            return 1 - s
    return _one_minus(x, cc)


def keep_inside(y: Tensor, c: Tensor | float) -> Tensor:
    """Return ``y`` unchanged unless ``c‖y‖² ≥ 1 − 4ε`` (or ``1 − c‖y‖² ≤ 0`` exactly); such rows
    go to radius ``√(1 − 8ε)/√c`` along their direction (within ~4 ulps of the boundary only)."""
    return _keep_inside(y, curvature(c, y))


_CAP_ULPS = 4.0  # tanh outputs are capped at 1 − _CAP_ULPS·ε
_GUARD_ULPS = 4.0  # keep_inside also rescales rows whose plain c‖y‖² ≥ 1 − _GUARD_ULPS·ε


def _keep_inside(y: Tensor, cc: Tensor) -> Tensor:
    s = cc * _sq(y)
    e = _eps(y)
    bad = (_one_minus(y, cc) <= 0) | (s >= 1 - _GUARD_ULPS * e)
    target = 1 - max(4.0, 2 * _GUARD_ULPS) * e
    scale = torch.sqrt(target / torch.where(bad, s, torch.ones_like(s)).clamp_min(target))
    return torch.where(bad, y * scale, y)


def _cap(th: Tensor) -> Tensor:
    """Cap a tanh value at ``±(1 − 4ε)`` (radius cap of every tanh-produced point)."""
    r = 1 - _CAP_ULPS * _eps(th)
    return th.clamp(-r, r)


def artanh_ratio(z: Tensor, a: Tensor) -> tuple[Tensor, Tensor]:
    """``(artanh(z), artanh(z)/z)`` for ``0 ≤ z < 1`` given ``a = 1 − z²`` computed accurately.

    ``artanh(z) = ½ log1p(2z(1 + z)/a)``: exact up to rounding even when ``1 − z`` is below
    ``√ε`` (no cancellation in ``1 − z``). The ratio uses ``1 + z²/3`` near 0.
    """
    small = z < _SMALL
    zs = torch.where(small, torch.ones_like(z), z)
    at_s = 0.5 * torch.log1p(2 * zs * (1 + zs) / torch.where(small, torch.ones_like(a), a))
    ratio = torch.where(small, 1 + z * z / 3, at_s / zs)
    at = torch.where(small, z * (1 + z * z / 3), at_s)
    return at, ratio


def expmap0(u: Tensor, c: Tensor | float) -> Tensor:
    """Exponential map at the origin: ``exp_0(u) = tanh(√c‖u‖) u / (√c‖u‖)``, ``(*batch, n)``.

    The tanh is capped at ``1 − 4ε`` so the result stays strictly inside; along a coordinate axis
    the result radius is a monotone function of ``‖u‖``. Note ``‖u‖_0 = 2‖u‖`` (conformal factor
    2 at the origin), so ``dist(0, exp_0(u)) = 2‖u‖`` up to the capacity.
    """
    cc = curvature(c, u)
    sc = torch.sqrt(cc)
    d, n = _unit(u)
    t = sc * n
    small = t < _SMALL
    big = _cap(torch.tanh(t)) / sc * d
    ts = torch.where(small, torch.ones_like(t), t)
    tanhc = torch.where(small, 1 - t * t / 3, torch.tanh(ts) / ts)
    return _keep_inside(torch.where(small, tanhc * u, big), cc)


def logmap0(y: Tensor, c: Tensor | float) -> Tensor:
    """Logarithm at the origin: ``log_0(y) = artanh(√c‖y‖) y / (√c‖y‖)``, ``(*batch, n)``."""
    cc = curvature(c, y)
    z = torch.sqrt(cc) * safe_sqrt(_sq(y))
    _, ratio = artanh_ratio(z, _one_minus(y, cc))
    return ratio * y


def _add_parts(x: Tensor, y: Tensor, cc: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Numerator, denominator ``D`` and ``A(x)``, ``A(y)`` of the stable Möbius addition."""
    ax = _one_minus(x, cc)
    ay = _one_minus(y, cc)
    s = x + y
    cs2 = cc * _sq(s)
    num = ax * s + cs2 * x
    den = ax * ay + cs2
    return num, den, ax, ay


def gyro_add(x: Tensor, y: Tensor, c: Tensor | float) -> Tensor:
    """Möbius addition ``x ⊕_c y``, ``(*batch, n)``.

    ``x ⊕ y = ((1 + 2c⟨x,y⟩ + c‖y‖²) x + (1 − c‖x‖²) y) / (1 + 2c⟨x,y⟩ + c²‖x‖²‖y‖²)``,
    evaluated in the cancellation-free form of the module docstring.

    Examples
    --------
    >>> import torch
    >>> from riemlearn.manifolds.mobius import gyro_add, gyro_inv
    >>> x = torch.tensor([0.3, -0.5], dtype=torch.float64)
    >>> gyro_add(gyro_inv(x), x, 1.0).abs().max().item() < 1e-15
    True
    """
    cc = curvature(c, torch.broadcast_tensors(x, y)[0])
    num, den, _, _ = _add_parts(x, y, cc)
    return _keep_inside(num / den, cc)


def gyro_inv(x: Tensor) -> Tensor:
    """Gyro inverse ``⊖x = −x`` (independent of the curvature)."""
    return -x


def _as_batch_scalar(r: Tensor | float, ref: Tensor) -> Tensor:
    r = torch.as_tensor(r, dtype=ref.dtype, device=ref.device)
    return r.unsqueeze(-1) if r.dim() > 0 else r


def gyro_scalar(r: Tensor | float, x: Tensor, c: Tensor | float) -> Tensor:
    """Möbius scalar multiplication ``r ⊙_c x = tanh(r artanh(√c‖x‖)) x / (√c‖x‖)``.

    ``r`` is a float or a tensor of shape ``()`` or ``(*batch,)``; ``x`` is ``(*batch, n)``.
    """
    cc = curvature(c, x)
    rr = _as_batch_scalar(r, x)
    sc = torch.sqrt(cc)
    d, n = _unit(x)
    z = sc * n
    at, _ = artanh_ratio(z, _one_minus(x, cc))
    small = z < _SMALL
    big = _cap(torch.tanh(rr * at)) / sc * d
    series = rr * (1 + (1 - rr * rr) * z * z / 3) * x
    return _keep_inside(torch.where(small, series, big), cc)


def gyration(a: Tensor, b: Tensor, v: Tensor, c: Tensor | float) -> Tensor:
    """Gyration ``gyr[a, b] v = ⊖(a ⊕ b) ⊕ (a ⊕ (b ⊕ v))`` in closed form, ``(*batch, n)``.

    ``gyr[a,b]v = v + 2(α a + β b)/D`` with ``α = −c²⟨a,v⟩‖b‖² + c⟨b,v⟩ + 2c²⟨a,b⟩⟨b,v⟩``,
    ``β = −c²⟨b,v⟩‖a‖² − c⟨a,v⟩`` and ``D = 1 + 2c⟨a,b⟩ + c²‖a‖²‖b‖²`` (evaluated as
    ``A(a)A(b) + c‖a + b‖²``). Gyrations are linear isometries (rotations) of ``R^n``.
    """
    cc = curvature(c, torch.broadcast_tensors(a, b, v)[0])
    av, bv, ab = _dot(a, v), _dot(b, v), _dot(a, b)
    a2, b2 = _sq(a), _sq(b)
    alpha = -cc * cc * av * b2 + cc * bv + 2 * cc * cc * ab * bv
    beta = -cc * cc * bv * a2 - cc * av
    den = _one_minus(a, cc) * _one_minus(b, cc) + cc * _sq(a + b)
    return v + 2 * (alpha * a + beta * b) / den


def mobius_matvec(m: Tensor, x: Tensor, c: Tensor | float) -> Tensor:
    """Möbius matrix–vector product ``M ⊗_c x = tanh(‖Mx‖/‖x‖ artanh(√c‖x‖)) Mx/(√c‖Mx‖)``.

    Parameters
    ----------
    m : Tensor
        ``(k, n)`` or ``(*batch, k, n)``.
    x : Tensor
        ``(*batch, n)``.
    c : float or Tensor
        Curvature.

    Returns
    -------
    Tensor
        ``(*batch, k)``; 0 where ``Mx = 0``.
    """
    mx = (m @ x.unsqueeze(-1)).squeeze(-1)
    cc = curvature(c, mx)
    sc = torch.sqrt(cc)
    n = safe_sqrt(_sq(x))
    dm, nm = _unit(mx)
    z = sc * n
    at, _ = artanh_ratio(z, _one_minus(x, cc))
    rho = nm / n.clamp_min(torch.finfo(x.dtype).tiny)
    small = z < _SMALL
    big = _cap(torch.tanh(rho * at)) / sc * dm
    series = (1 + (1 - rho * rho) * z * z / 3) * mx
    return _keep_inside(torch.where(small, series, big), cc)


def gyro_midpoint(
    x: Tensor, c: Tensor | float, weights: Tensor | None = None, dim: int = -2
) -> Tensor:
    """Weighted Möbius gyromidpoint (Ungar), the ball image of the Einstein midpoint.

    ``m = ½ ⊙ (Σ wᵢ λᵢ xᵢ / Σ wᵢ (λᵢ − 1))`` with ``λᵢ = 2/(1 − c‖xᵢ‖²)``.

    Parameters
    ----------
    x : Tensor
        Points, the points axis at ``dim`` (default ``(*batch, m, n)``).
    c : float or Tensor
        Curvature (float or 0-d tensor).
    weights : Tensor, optional
        Non-negative weights broadcastable to ``x`` without its last axis (e.g. ``(*batch, m)``);
        uniform if omitted.
    dim : int
        The points axis of ``x`` (negative, counted including the coordinate axis).

    Returns
    -------
    Tensor
        ``(*batch, n)``.
    """
    cc = curvature(c, x)
    lam = 2 / _one_minus(x, cc)
    w = torch.ones_like(lam) if weights is None else weights.to(x).unsqueeze(-1)
    num = (w * lam * x).sum(dim)
    den = (w * (lam - 1)).sum(dim)
    return gyro_scalar(0.5, num / den, c)


def dist_to_gyroplane(
    x: Tensor, p: Tensor, a: Tensor, c: Tensor | float, signed: bool = True
) -> Tensor:
    """(Signed) distance from ``x`` to the gyroplane ``{y : ⟨(⊖p) ⊕ y, a⟩ = 0}`` (Ganea et al.).

    ``d = arsinh(2√c ⟨z, a⟩ / ((1 − c‖z‖²)‖a‖)) / √c`` with ``z = (⊖p) ⊕ x``; the factor
    ``1 − c‖z‖² = A(p)A(x)/D`` is taken from the stable addition, so it stays accurate near
    the boundary. ``x``, ``p``, ``a`` are ``(*batch, n)`` (broadcast); returns ``(*batch,)``.
    This is the logit of hyperbolic multinomial logistic regression (times ``‖a‖_p``).
    """
    x, p, a = torch.broadcast_tensors(x, p, a)
    cc = curvature(c, x)
    sc = torch.sqrt(cc)
    num, den, ap, ax = _add_parts(-p, x, cc)
    z = num / den
    one_minus = ap * ax / den
    na = safe_sqrt(_sq(a)).clamp_min(torch.finfo(x.dtype).tiny)
    arg = 2 * sc * _dot(z, a) / (one_minus * na)
    out = (torch.asinh(arg) / sc).squeeze(-1)
    return out if signed else out.abs()
