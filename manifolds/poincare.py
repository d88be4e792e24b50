"""The Poincaré ball of curvature ``-c``: functional core, :class:`PoincareMetric`, :class:`PoincareBall`.

Points are ``(*batch, n)`` with ``‖x‖ < 1/√c``; tangent vectors are any ``(*batch, n)``. The
metric is conformal, ``g_x = λ_x² I`` with ``λ_x = 2 / A(x)``, ``A(x) = 1 − c‖x‖²``.

Numerics
--------
Distances use ``d(x, y) = arcosh(1 + δ)/√c``, ``δ = 2c‖x − y‖² / (A(x) A(y))`` with
``arcosh(1 + δ) = log1p(δ + √δ √(δ + 2))``, and ``A(x) = 1 − c‖x‖²`` evaluated nearly exactly
(:func:`~riemlearn.manifolds.mobius.one_minus_cnorm2`: a few ulps *of itself* down to
``A ~ 1e-12``, ~1e-7 relative at ``A ~ 2e-16``). Nothing is clamped: against an 80-digit mpmath
evaluation on the stored float64 coordinates, ``d(0, x)``, ``d(x, y)`` for far pairs and for
pairs at distance 1 are within **1e-14 relative** for ``‖x‖ = 1 − 10^-k`` up to k = 10
(distance 24 from the origin), 1e-11 at k = 13 (d = 31) and 2e-9 at k = 15 (d = 35) (the
textbook ``1 − c‖x‖²`` gives 2.6e-7 at distance 26 and 1e-3 at 35; geoopt's clamp reads a
perpendicular pair at ``‖x‖ = ‖y‖ = 1 − 1e-7`` 48.9 % short, random 16-d pairs there up to 50 %
short). float32 distances are within 6e-8 relative up to the float32 capacity. The logarithm takes
its length from this distance and its direction from ``A(x)(y − x) − c‖x − y‖² x``.

Representational capacity (measured, see ``tests/test_hyperbolic_boundary.py``): the farthest
point on a coordinate axis has ``√c x₁ = 1 − ε/2`` (the float just below 1), at distance
``log(4/ε − 1)/√c`` = **37.43** in float64, **17.33** in float32 (off-axis points can be a bit
farther, since ``‖x‖²`` is summed exactly). Results of ``exp``, ``⊙``, ``⊗`` are capped at radius
``(1 − 4ε)/√c``, i.e. at distance ``log(1/(2ε) − 1)/√c`` = **35.35** (float64) / **15.25** (float32)
(± ~1/√c from the rounding of ``1/√c``): past that an exponential map returns the capped point —
finite, strictly inside (even for a naive float check ``‖x‖√c < 1``), monotone in the length
of the tangent vector; distances between stored points are not capped. A point *stored* at
``‖x‖ = 1 − τ`` is itself uncertain by ``~ε/τ`` in distance (rounding of its coordinates),
which is what limits round trips.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import mobius
from .base import Manifold, Metric, _check_shape_finite, as_shape, randn, safe_sqrt
from .mobius import curvature, keep_inside

__all__ = [
    "PoincareBall",
    "PoincareMetric",
    "conformal_factor",
    "inner",
    "dist",
    "dist0",
    "exp",
    "log",
    "expmap0",
    "logmap0",
    "transport",
    "exp_transport",
    "egrad_to_rgrad",
    "ehess_to_rhess",
    "arcosh1p",
    "wrapped_normal",
]

expmap0 = mobius.expmap0
logmap0 = mobius.logmap0


_sq = mobius._sq
_dot = mobius._dot


def arcosh1p(delta: Tensor) -> Tensor:
    """``arcosh(1 + δ)`` for ``δ ≥ 0`` as ``log1p(δ + √δ √(δ + 2))`` (exact for tiny and huge δ)."""
    delta = delta.clamp_min(0)
    return torch.log1p(delta + safe_sqrt(delta) * torch.sqrt(delta + 2))


def conformal_factor(x: Tensor, c: Tensor | float) -> Tensor:
    """``λ_x = 2 / (1 − c‖x‖²)``, keepdim ``(*batch, 1)``."""
    return 2 / mobius.one_minus_cnorm2(x, c)


def inner(x: Tensor, u: Tensor, v: Tensor, c: Tensor | float) -> Tensor:
    """``⟨u, v⟩_x = λ_x² ⟨u, v⟩``, shape ``(*batch,)``.

    ``λ_x`` to a few ulps (plain ``1 − c‖x‖²`` when all points are well inside, see
    ``mobius._one_minus_interior``), nearly exact near the boundary.
    """
    a = mobius._one_minus_interior(x, curvature(c, x))
    return (4 * _dot(u, v) / (a * a)).squeeze(-1)


def _delta(x: Tensor, y: Tensor, cc: Tensor) -> Tensor:
    ax = mobius._one_minus(x, cc)
    ay = mobius._one_minus(y, cc)
    return 2 * cc * _sq(x - y) / (ax * ay)


def dist(x: Tensor, y: Tensor, c: Tensor | float) -> Tensor:
    """Geodesic distance ``arcosh(1 + 2c‖x − y‖²/(A(x)A(y)))/√c``, shape ``(*batch,)``.

    Examples
    --------
    >>> import torch
    >>> from riemlearn.manifolds.poincare import dist
    >>> x = torch.tensor([1 - 1e-9, 0.0], dtype=torch.float64)
    >>> round(float(dist(torch.zeros(2, dtype=torch.float64), x, 1.0)), 6)  # log(2/1e-9 − 1)
    21.416413
    """
    cc = curvature(c, torch.broadcast_tensors(x, y)[0])
    return (arcosh1p(_delta(x, y, cc)) / torch.sqrt(cc)).squeeze(-1)


def dist0(y: Tensor, c: Tensor | float) -> Tensor:
    """Distance from the origin ``2 artanh(√c‖y‖)/√c``, shape ``(*batch,)``."""
    cc = curvature(c, y)
    sc = torch.sqrt(cc)
    at, _ = mobius.artanh_ratio(sc * safe_sqrt(_sq(y)), mobius._one_minus(y, cc))
    return (2 * at / sc).squeeze(-1)


def exp(x: Tensor, u: Tensor, c: Tensor | float) -> Tensor:
    """Exponential map ``exp_x(u) = x ⊕ exp_0(u / A(x))`` (``λ_x u / 2`` at the origin)."""
    cc = curvature(c, torch.broadcast_tensors(x, u)[0])
    v = mobius.expmap0(u / mobius._one_minus(x, cc), c)
    return mobius.gyro_add(x, v, c)


def log(x: Tensor, y: Tensor, c: Tensor | float) -> Tensor:
    """Logarithm: ``log_x(y) = d(x, y) (A(x)/2) ŵ`` with ``ŵ`` the direction of ``(⊖x) ⊕ y``.

    The direction is computed as ``A(x)(y − x) − c‖x − y‖² x`` (parallel to ``(⊖x) ⊕ y``),
    the length from :func:`dist`; both are free of cancellation near the boundary.
    """
    x, y = torch.broadcast_tensors(x, y)
    cc = curvature(c, x)
    ax = mobius._one_minus(x, cc)
    ay = mobius._one_minus(y, cc)
    diff = y - x
    d2 = _sq(diff)
    w = ax * diff - cc * d2 * x
    nw = safe_sqrt(_sq(w))
    d = arcosh1p(2 * cc * d2 / (ax * ay)) / torch.sqrt(cc)
    tiny = nw <= torch.finfo(x.dtype).tiny
    ratio = torch.where(tiny, 2 / (ax * ax), d / torch.where(tiny, torch.ones_like(nw), nw))
    return ratio * (ax / 2) * w


def transport(x: Tensor, y: Tensor, v: Tensor, c: Tensor | float) -> Tensor:
    """Parallel transport ``P_{x→y} v = (A(y)/A(x)) gyr[y, ⊖x] v`` (along the geodesic).

    The gyration of :func:`~riemlearn.manifolds.mobius.gyration` inlined, so that ``A(x)`` and
    ``A(y)`` are computed once each (same values and operations as before).
    """
    x, y, v = torch.broadcast_tensors(x, y, v)
    cc = curvature(c, x)
    ax = mobius._one_minus(x, cc)
    ay = mobius._one_minus(y, cc)
    b = -x
    av, bv, ab = _dot(y, v), _dot(b, v), _dot(y, b)
    a2, b2 = _sq(y), _sq(b)
    alpha = -cc * cc * av * b2 + cc * bv + 2 * cc * cc * ab * bv
    beta = -cc * cc * bv * a2 - cc * av
    den = ay * ax + cc * _sq(y + b)
    return (ay / ax) * (v + 2 * (alpha * y + beta * b) / den)


def exp_transport(
    x: Tensor, u: Tensor, m: Tensor, c: Tensor | float, scale: float = 1.0
) -> tuple[Tensor, Tensor]:
    """``(y, P_{x→y} m)`` with ``y = exp_x(scale · u)``: :func:`exp` and :func:`transport`
    sharing work (``scale``, e.g. ``−lr``, is folded into the coefficients).

    The optimizers' step. ``A = 1 − c‖·‖²`` (nearly exact, as everywhere) is summed once
    each for ``x`` and ``y`` (seven times in ``exp`` then ``transport``); the intermediate
    ``v = exp_0(u/A(x))`` has ``A(v) = (1 − tanh t)(1 + tanh t)`` in closed form. ``A(y)``
    must be the one of the stored ``y`` (the gyration cancels near the boundary; a closed
    form there broke the isometry). Same formulas as ``exp`` then ``transport``, equal up
    to round-off (geodesic lengths agree within the rounding of the stored points; the
    transported norm is preserved as accurately as by ``transport``); the result is guarded
    like every ``exp`` output. All inputs ``(*batch, n)``.
    """
    x, u, m = torch.broadcast_tensors(x, u, m)
    cct = curvature(c, x)
    # a float curvature stays a Python number (c = 1: no multiplication at all)
    cc: Tensor | float = float(c) if isinstance(c, (int, float)) else cct
    e = float(torch.finfo(x.dtype).eps)
    ax = mobius._one_minus_interior(x, cct)
    t = torch.sqrt(_cmul(cc * (scale * scale) if scale != 1.0 else cc, _sq(u))) / ax  # √c‖su‖/A(x)
    th = mobius._cap(torch.tanh(t))
    # v = tanh(t) u / (√c ‖u‖) = (tanh(t)/t) u / A(x): tanh(t)/t is accurate to two roundings
    # for every t > 0 (no series branch needed without autograd); u = 0 gives t = 0, coef = 0
    coef = th / (t.clamp_min(torch.finfo(x.dtype).tiny) * ax)
    if scale != 1.0:
        coef = coef * scale
    av = (1 - th) * (1 + th)  # A(v) in closed form (1 − th exact)
    s = torch.addcmul(x, coef, u)  # x + v
    cs2 = _cmul(cc, _sq(s))
    den = torch.addcmul(cs2, ax, av)
    # guard as mobius.keep_inside: A(y) = A(x)A(v)/D flags the rows near the boundary, the
    # plain c‖y‖² (what a naive membership check computes) gives their rescaling
    y = (s * (ax / den)).addcmul_(x, cs2 / den)  # (A(x) s + c‖s‖² x) / D
    sy = _cmul(cc, _sq(y))
    cpu = y.device.type == "cpu"
    # CPU: one host read; with every c‖y‖² ≤ ½ no row needs the guard (its threshold is near 1;
    # A(x)A(v) > 0 for inner x) and the plain A(y) is accurate (as mobius._one_minus_interior)
    interior = cpu and (sy.numel() == 0 or float(sy.amax()) <= 0.5)
    if not interior:
        bad = (ax * av <= 0) | (sy >= 1 - mobius._GUARD_ULPS * e)
        if not cpu or bool(bad.any()):
            target = 1 - max(4.0, 2 * mobius._GUARD_ULPS) * e
            y.mul_(torch.where(bad, torch.sqrt(target / sy.clamp_min(target)), torch.ones_like(sy)))
    # the transport needs A(y) consistent with the stored y (the gyration cancels near the
    # boundary): the exact one, as in transport()
    ay = 1 - sy if interior else mobius._one_minus(y, cct)
    # P m = (A(y)/A(x)) gyr[y, −x] m, gyr[a, b]v = v + 2(α a + β b)/D with, for a = y, b = −x:
    # α = c(x·m (2c x·y − 1) − c‖x‖² y·m), β = c(c‖y‖² x·m − y·m), D = A(y)A(x) + c‖y − x‖²
    yv, xv, xy = _dot(y, m), _dot(x, m), _dot(x, y)
    dg = torch.addcmul(_cmul(cc, _sq(y - x)), ay, ax)
    r = ay / ax
    kc = r * (2 * cc) / dg  # 2c · A(y)/A(x) / D
    alpha = torch.addcmul(xv * (_cmul(2 * cc, xy) - 1), 1 - ax, yv, value=-1)
    nbeta = torch.addcmul(yv, xv, 1 - ay, value=-1)  # −β/c
    out = (m * r).addcmul_(y, kc * alpha).addcmul_(x, kc * nbeta)
    return y, out


def _cmul(c: Tensor | float, t: Tensor) -> Tensor:
    """``c · t``, skipped for a float ``c = 1``."""
    return t if isinstance(c, float) and c == 1.0 else c * t


def egrad_to_rgrad(x: Tensor, egrad: Tensor, c: Tensor | float) -> Tensor:
    """``grad f = egrad / λ_x² = (A(x)/2)² egrad`` (``A`` as in :func:`inner`)."""
    a = mobius._one_minus_interior(x, curvature(c, x))
    return (0.25 * a * a) * egrad


def ehess_to_rhess(x: Tensor, egrad: Tensor, ehess: Tensor, u: Tensor, c: Tensor | float) -> Tensor:
    """Riemannian Hessian-vector product of the conformal metric ``λ_x² I``.

    ``Hess f[u] = ehess/λ² + (c/λ)(⟨x, g⟩ u − ⟨x, u⟩ g − ⟨u, g⟩ x)`` with ``g`` the Euclidean
    gradient and ``ehess = D g(x)[u]`` (Levi-Civita connection of ``e^{2φ} δ``, ``φ = log λ``).
    """
    cc = curvature(c, x)
    lam = 2 / mobius._one_minus(x, cc)
    corr = _dot(x, egrad) * u - _dot(x, u) * egrad - _dot(u, egrad) * x
    return ehess / lam**2 + cc / lam * corr


def wrapped_normal(
    mean: Tensor, std: Tensor | float, c: Tensor | float, generator: torch.Generator | None = None
) -> Tensor:
    """Wrapped normal: ``mean ⊕ exp_0(σ z / 2)``, ``z ~ N(0, I)``, same shape as ``mean``.

    ``σ z / 2`` has Riemannian covariance ``σ² I`` at the origin; parallel transport to the
    mean followed by ``exp_mean`` equals the Möbius translation by ``mean``.
    """
    z = randn(mean.shape, generator, mean.dtype, mean.device)
    s = torch.as_tensor(std, dtype=mean.dtype, device=mean.device)
    s = s.unsqueeze(-1) if s.dim() > 0 else s
    return mobius.gyro_add(mean, mobius.expmap0(s * z / 2, c), c)


class PoincareMetric(Metric):
    """The hyperbolic metric ``λ_x² I`` of the Poincaré ball of curvature ``-c``, with its
    Möbius gyrovector structure (``gyro_add`` = Möbius addition)."""

    name = "poincare"
    ndim = 1
    has_gyro = True

    def __init__(self, c: float = 1.0) -> None:
        c = float(c)
        if not c > 0 or c != c or c == float("inf"):
            raise ValueError(f"c must be a positive finite curvature magnitude, got {c}")
        self.c = c

    def _params(self) -> tuple:
        return (self.c,)

    def inner(self, x: Tensor, u: Tensor, v: Tensor) -> Tensor:
        return inner(x, u, v, self.c)

    def norm(self, x: Tensor, u: Tensor) -> Tensor:
        return (conformal_factor(x, self.c) * safe_sqrt(_sq(u))).squeeze(-1)

    def dist(self, x: Tensor, y: Tensor) -> Tensor:
        return dist(x, y, self.c)

    def exp(self, x: Tensor, u: Tensor) -> Tensor:
        return exp(x, u, self.c)

    def log(self, x: Tensor, y: Tensor) -> Tensor:
        return log(x, y, self.c)

    def transport(self, x: Tensor, y: Tensor, v: Tensor) -> Tensor:
        return transport(x, y, v, self.c)

    def egrad_to_rgrad(self, x: Tensor, egrad: Tensor) -> Tensor:
        return egrad_to_rgrad(x, egrad, self.c)

    def ehess_to_rhess(self, x: Tensor, egrad: Tensor, ehess: Tensor, u: Tensor) -> Tensor:
        return ehess_to_rhess(x, egrad, ehess, u, self.c)

    def geodesic(self, x: Tensor, y: Tensor, t: Tensor | float) -> Tensor:
        """``x ⊕ (t ⊙ ((⊖x) ⊕ y))``."""
        return mobius.gyro_add(x, mobius.gyro_scalar(t, mobius.gyro_add(-x, y, self.c), self.c), self.c)

    def expmap0(self, u: Tensor) -> Tensor:
        """Exponential map at the origin."""
        return mobius.expmap0(u, self.c)

    def logmap0(self, y: Tensor) -> Tensor:
        """Logarithm at the origin."""
        return mobius.logmap0(y, self.c)

    def gyro_add(self, x: Tensor, y: Tensor) -> Tensor:
        return mobius.gyro_add(x, y, self.c)

    def gyro_scalar(self, r: Tensor | float, x: Tensor) -> Tensor:
        return mobius.gyro_scalar(r, x, self.c)

    def gyro_inv(self, x: Tensor) -> Tensor:
        return mobius.gyro_inv(x)

    def gyration(self, a: Tensor, b: Tensor, v: Tensor) -> Tensor:
        """``gyr[a, b] v``."""
        return mobius.gyration(a, b, v, self.c)


class PoincareBall(Manifold):
    """The Poincaré ball ``{x ∈ R^n : ‖x‖ < 1/√c}`` of constant curvature ``-c``.

    Parameters
    ----------
    c : float
        Curvature magnitude (> 0); the sectional curvature is ``-c``. For a learnable curvature
        call the functions of :mod:`riemlearn.manifolds.poincare` / ``mobius`` with a tensor.
    n : int, optional
        Dimension; needed only for :meth:`random_point`, :meth:`identity` and shape checks.

    Notes
    -----
    Capacity (distance from the origin of the farthest representable point): 37.43/√c in
    float64, 17.33/√c in float32; ``exp``/``⊙``/``⊗`` outputs stop at 35.35/√c and 15.25/√c
    (so that they pass even naive float checks ``‖x‖√c < 1``).
    Distances are within 1e-14 relative up to distance 24, 2e-9 at 35 (mpmath-checked).
    See the module docstring for the numerics. Membership is strict (``c‖x‖² < 1`` as computed);
    ``atol`` is ignored for points.

    Examples
    --------
    >>> import torch
    >>> from riemlearn.manifolds.poincare import PoincareBall
    >>> m = PoincareBall(c=1.0, n=2)
    >>> u = torch.tensor([3.0, 4.0], dtype=torch.float64)   # ‖u‖_0 = 2‖u‖ = 10
    >>> round(float(m.dist(m.origin(dtype=torch.float64), m.expmap0(u))), 10)
    10.0
    """

    name = "poincare"
    ndim = 1

    def __init__(self, c: float = 1.0, *, n: int | None = None) -> None:
        super().__init__(PoincareMetric(c))
        if n is not None and int(n) < 1:
            raise ValueError(f"n must be a positive dimension, got {n}")
        self.n = None if n is None else int(n)
        self.c = self.metric.c

    def _params(self) -> tuple:
        return (self.c, self.n)

    def __repr__(self) -> str:
        return f"PoincareBall(c={self.c!r}, n={self.n!r})"

    @property
    def shape(self) -> tuple[int, ...] | None:
        return None if self.n is None else (self.n,)

    def _need_n(self) -> int:
        if self.n is None:
            raise ValueError(f"{self!r} has no dimension; pass n= to draw points")
        return self.n

    def project_point(self, x: Tensor) -> Tensor:
        """Points inside (``c‖x‖² < 1 − 4ε``) are unchanged; others go to radius ``√(1 − 8ε)/√c``."""
        return keep_inside(x, self.c)

    def project_tangent(self, x: Tensor, u: Tensor) -> Tensor:
        return u

    def point_violation(self, x: Tensor) -> Tensor:
        """``max(0, √c‖x‖ − 1)``; 0 also for points on the boundary (see :meth:`belongs`)."""
        return (self.c**0.5 * safe_sqrt(_sq(x)) - 1).clamp_min(0).squeeze(-1)

    def tangent_violation(self, x: Tensor, u: Tensor) -> Tensor:
        bad = (~torch.isfinite(u)).any(-1)
        return torch.where(bad, torch.inf, 0.0).to(u.dtype)

    def violation_description(self) -> str:
        return "√c‖x‖ − 1 (must be < 0)"

    def belongs(self, x: Tensor, atol: float | None = None) -> Tensor:
        """Strict membership ``c‖x‖² < 1`` and finite, ``(*batch,)`` (``atol`` is ignored)."""
        problem = self.shape_problem(x)
        if problem is not None:
            raise ValueError(f"x {problem}")
        return (mobius.one_minus_cnorm2(x, self.c).squeeze(-1) > 0) & torch.isfinite(x).all(-1)

    def check_point(self, x: Tensor, name: str = "x", atol: float | None = None) -> None:
        """Raise :class:`ValueError` for points on or outside the ball, saying by how much."""
        _check_shape_finite(self, x, name)
        a = mobius.one_minus_cnorm2(x, self.c).squeeze(-1)
        if a.numel() and bool((a <= 0).any()):
            excess = self.c**0.5 * safe_sqrt(_sq(x)).squeeze(-1) - 1
            k = int(torch.argmax(excess.reshape(-1)))
            where = ""
            if excess.dim() > 0:
                idx = tuple(int(i) for i in torch.unravel_index(torch.tensor(k), excess.shape))
                where = f" at batch index {idx}"
            raise ValueError(
                f"{name} is off {self!r}: √c‖x‖ − 1 = {float(excess.reshape(-1)[k]):.3g}{where} "
                f"(points need ‖x‖ < 1/√c = {self.c ** -0.5:.6g})"
            )

    def random_point(self, *batch: int, generator=None, dtype=None, device=None) -> Tensor:
        """Wrapped normal at the origin with ``σ = 1/√n`` (mean squared distance 1)."""
        n = self._need_n()
        mean = torch.zeros(as_shape(batch) + (n,), dtype=dtype, device=device)
        return wrapped_normal(mean, n**-0.5, self.c, generator)

    def wrapped_normal(
        self, mean: Tensor, std: Tensor | float = 1.0, *batch: int, generator=None
    ) -> Tensor:
        """Wrapped normal samples ``(*batch, *mean.shape)`` around ``mean`` (Riemannian std)."""
        m = mean.expand(as_shape(batch) + tuple(mean.shape))
        return wrapped_normal(m, std, self.c, generator)

    def identity(self, *batch: int, dtype=None, device=None) -> Tensor:
        return torch.zeros(as_shape(batch) + (self._need_n(),), dtype=dtype, device=device)

    def expmap0(self, u: Tensor) -> Tensor:
        """Exponential map at the origin."""
        return mobius.expmap0(u, self.c)

    def logmap0(self, y: Tensor) -> Tensor:
        """Logarithm at the origin."""
        return mobius.logmap0(y, self.c)

    def dist0(self, y: Tensor) -> Tensor:
        """Distance from the origin, ``(*batch,)``."""
        return dist0(y, self.c)

    def gyration(self, a: Tensor, b: Tensor, v: Tensor) -> Tensor:
        """``gyr[a, b] v``."""
        return mobius.gyration(a, b, v, self.c)

    def mobius_matvec(self, m: Tensor, x: Tensor) -> Tensor:
        """Möbius matrix–vector product ``M ⊗ x``."""
        return mobius.mobius_matvec(m, x, self.c)

    def gyro_midpoint(self, x: Tensor, weights: Tensor | None = None, dim: int = -2) -> Tensor:
        """Weighted gyromidpoint along ``dim``."""
        return mobius.gyro_midpoint(x, self.c, weights, dim)
