"""The hyperboloid (Lorentz) model of curvature ``-c``: functional core, :class:`LorentzMetric`,
:class:`Lorentz`.

Points are ``(*batch, n+1)``, time coordinate first, with ``⟨x, x⟩_L = −x₀² + ‖x_s‖² = −1/c``
and ``x₀ > 0``; tangent vectors at ``x`` satisfy ``⟨x, u⟩_L = 0``.

Numerics
--------
``−c⟨x, y⟩_L − 1`` (the argument of ``arcosh(1 + ·)``) is never formed from the Minkowski
product, whose two terms are ``~cosh²`` and cancel catastrophically; it is computed as
``δ = (c/2)‖x_s(1 + √c y₀) − y_s(1 + √c x₀)‖² / ((1 + √c x₀)(1 + √c y₀))`` (the Poincaré-ball
form of the same quantity, through ``1 − c‖p‖² = 2/(1 + √c x₀)``, with ``√c x₀`` re-derived as
``√(1 + c‖x_s‖²)``). Against mpmath on the stored coordinates, pairs at distance 1 are within
2e-14 relative at radius 5, 1e-12 at 10, 6e-10 at 15 and 6e-9 at 18 (error ~ε e^R, the angular
resolution of coordinates of size e^R; the Minkowski form loses everything by radius ~8 in
float32 and ~18 in float64). The logarithm uses
``(y − x) − δ x`` for the direction and ``t/sinh t`` for the length. With ``upcast=True`` (the
default of the classes) float32/float16 inputs are computed in float64 and cast back.

Representational capacity: a point at distance ``d`` from the origin has ``x₀ = cosh(√c d)/√c``;
the constraint ``c x₀² − c‖x_s‖² = 1`` stops being resolvable once ``cosh² (√c d) ≥ 1/ε``, i.e.
at ``d = arcosh(ε^{−1/2})/√c`` = **18.71** in float64 and **8.66** in float32 (measured in
``tests/test_hyperbolic_boundary.py``: beyond it ``x₀² − ‖x_s‖²`` evaluates to 0 or worse).
Beyond that, distances computed here stay finite, monotone and are not shortened (they are
computed from the spatial coordinates), but the point is ambiguous at the ``ε x₀`` level.
``exp`` caps ``√c‖u‖_L`` at ``½ log(max float)`` (354 / 44) so that ``x₀²`` never overflows.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from . import hyperbolic_conversions as conv
from . import mobius
from .base import Manifold, Metric, as_shape, randn, safe_sqrt
from .mobius import curvature
from .poincare import arcosh1p

__all__ = [
    "Lorentz",
    "LorentzMetric",
    "minkowski",
    "dist",
    "exp",
    "log",
    "expmap0",
    "logmap0",
    "transport",
    "project_point",
    "project_tangent",
    "egrad_to_rgrad",
    "ehess_to_rhess",
    "gyro_add",
    "gyro_scalar",
    "gyro_inv",
    "gyration",
    "mobius_matvec",
    "gyro_midpoint",
    "dist_to_gyroplane",
    "origin",
]

_SMALL = 1e-4


def minkowski(u: Tensor, v: Tensor, keepdim: bool = False) -> Tensor:
    """``⟨u, v⟩_L = −u₀v₀ + ⟨u_s, v_s⟩``; ``(*batch,)`` (or keepdim)."""
    out = -u[..., :1] * v[..., :1] + (u[..., 1:] * v[..., 1:]).sum(-1, keepdim=True)
    return out if keepdim else out.squeeze(-1)


def _sq(x: Tensor) -> Tensor:
    return (x * x).sum(-1, keepdim=True)


def _delta(x: Tensor, y: Tensor, cc: Tensor) -> Tensor:
    """``−c⟨x, y⟩_L − 1 ≥ 0`` without cancellation, keepdim.

    The points are read through their spatial coordinates (the hyperboloid is a graph over
    ``x_s``): ``1 + √c x₀ = 1 + √(1 + c‖x_s‖²)``, so a stored ``x₀`` that is off by rounding
    (relative ε, i.e. ``ε x₀²`` in the constraint) does not leak into the distance.
    """
    ax = 1 + torch.sqrt(1 + cc * _sq(x[..., 1:]))
    ay = 1 + torch.sqrt(1 + cc * _sq(y[..., 1:]))
    w = x[..., 1:] * ay - y[..., 1:] * ax
    return cc / 2 * _sq(w) / (ax * ay)


def origin(*batch: int, n: int, c: float = 1.0, dtype=None, device=None) -> Tensor:
    """``(1/√c, 0, …, 0)`` of shape ``(*batch, n+1)``."""
    o = torch.zeros(as_shape(batch) + (n + 1,), dtype=dtype, device=device)
    o[..., 0] = 1 / math.sqrt(c)
    return o


def dist(x: Tensor, y: Tensor, c: Tensor | float) -> Tensor:
    """Geodesic distance ``arcosh(−c⟨x, y⟩_L)/√c``, ``(*batch,)`` (cancellation-free form).

    Examples
    --------
    >>> import torch
    >>> from riemlearn.manifolds.lorentz import dist, expmap0
    >>> o = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    >>> y = expmap0(torch.tensor([0.0, 3.0, 4.0], dtype=torch.float64), 1.0)
    >>> round(float(dist(o, y, 1.0)), 12)
    5.0
    """
    cc = curvature(c, torch.broadcast_tensors(x, y)[0])
    return (arcosh1p(_delta(x, y, cc)) / torch.sqrt(cc)).squeeze(-1)


def project_point(x: Tensor, c: Tensor | float) -> Tensor:
    """Keep the spatial part, set ``x₀ = √(1/c + ‖x_s‖²)``."""
    cc = curvature(c, x)
    xs = x[..., 1:]
    return torch.cat((torch.sqrt(1 / cc + _sq(xs)), xs), dim=-1)


def project_tangent(x: Tensor, u: Tensor, c: Tensor | float) -> Tensor:
    """Minkowski-orthogonal projection ``u + c⟨x, u⟩_L x`` onto ``T_x``."""
    cc = curvature(c, x)
    return u + cc * minkowski(x, u, keepdim=True) * x


def _sinhc(t: Tensor) -> Tensor:
    small = t < _SMALL
    ts = torch.where(small, torch.ones_like(t), t)
    return torch.where(small, 1 + t * t / 6, torch.sinh(ts) / ts)


def _sinh_ratio(t: Tensor, tm: Tensor) -> Tensor:
    """``sinh(tm)/t`` (``tm = min(t, cap)``), equal to ``sinh(t)/t`` below the cap."""
    capped = t > tm
    return torch.where(capped, torch.sinh(tm) / torch.where(capped, t, torch.ones_like(t)), _sinhc(tm))


def _max_t(ref: Tensor) -> float:
    return 0.5 * math.log(torch.finfo(ref.dtype).max) - 1


def exp(x: Tensor, u: Tensor, c: Tensor | float) -> Tensor:
    """``exp_x(u) = cosh(t) x + sinh(t) u / t`` with ``t = √c‖u‖_L``, then re-projected.

    ``t`` is capped at ``½ log(max float) − 1`` (353.9 in float64) so that ``x₀²`` stays finite.
    """
    x, u = torch.broadcast_tensors(x, u)
    cc = curvature(c, x)
    t = torch.sqrt(cc) * safe_sqrt(minkowski(u, u, keepdim=True).clamp_min(0))
    tm = t.clamp_max(_max_t(x))
    y = torch.cosh(tm) * x + _sinh_ratio(t, tm) * u
    return project_point(y, c)


def log(x: Tensor, y: Tensor, c: Tensor | float) -> Tensor:
    """``log_x(y) = (t / sinh t) ((y − x) − δ x)`` with ``δ = −c⟨x,y⟩_L − 1``, ``t = √c d``."""
    x, y = torch.broadcast_tensors(x, y)
    cc = curvature(c, x)
    delta = _delta(x, y, cc)
    t = arcosh1p(delta)
    return ((y - x) - delta * x) / _sinhc(t)


def expmap0(u: Tensor, c: Tensor | float) -> Tensor:
    """Exponential map at the origin; ``u`` is ``(*batch, n+1)`` with ``u₀ = 0`` (ignored)."""
    cc = curvature(c, u)
    sc = torch.sqrt(cc)
    us = u[..., 1:]
    t = sc * safe_sqrt(_sq(us))
    ratio = _sinh_ratio(t, t.clamp_max(_max_t(u)))
    xs = ratio * us
    return torch.cat((torch.sqrt(1 / cc + _sq(xs)), xs), dim=-1)


def logmap0(y: Tensor, c: Tensor | float) -> Tensor:
    """Logarithm at the origin: ``(0, asinh(√c‖y_s‖)/(√c‖y_s‖) y_s)``."""
    cc = curvature(c, y)
    ys = y[..., 1:]
    z = torch.sqrt(cc) * safe_sqrt(_sq(ys))
    small = z < _SMALL
    zs = torch.where(small, torch.ones_like(z), z)
    ratio = torch.where(small, 1 - z * z / 6, torch.asinh(zs) / zs)
    return torch.cat((torch.zeros_like(y[..., :1]), ratio * ys), dim=-1)


def transport(x: Tensor, y: Tensor, v: Tensor, c: Tensor | float) -> Tensor:
    """Parallel transport ``v + c⟨y, v⟩_L (x + y) / (1 − c⟨x, y⟩_L)``, ``1 − c⟨x,y⟩ = 2 + δ``."""
    cc = curvature(c, torch.broadcast_tensors(x, y, v)[0])
    return v + cc * minkowski(y, v, keepdim=True) / (2 + _delta(x, y, cc)) * (x + y)


def egrad_to_rgrad(x: Tensor, egrad: Tensor, c: Tensor | float) -> Tensor:
    """``grad f = J g + c (x·g) x`` with ``J = diag(−1, 1, …, 1)`` (``⟨x, Jg⟩_L = x·g``)."""
    cc = curvature(c, x)
    jg = torch.cat((-egrad[..., :1], egrad[..., 1:]), dim=-1)
    return jg + cc * (x * egrad).sum(-1, keepdim=True) * x


def ehess_to_rhess(x: Tensor, egrad: Tensor, ehess: Tensor, u: Tensor, c: Tensor | float) -> Tensor:
    """``Hess f[u] = P_x(J ehess) + c (x·g) u`` (Boumal, §7.6, with ``⟨x,x⟩_L = −1/c``)."""
    cc = curvature(c, x)
    jh = torch.cat((-ehess[..., :1], ehess[..., 1:]), dim=-1)
    return project_tangent(x, jh, c) + cc * (x * egrad).sum(-1, keepdim=True) * u


def gyro_add(x: Tensor, y: Tensor, c: Tensor | float) -> Tensor:
    """Gyro addition carried over from the ball by the isometry ``p = x_s/(1 + √c x₀)``."""
    p = mobius.gyro_add(conv.lorentz_to_ball(x, c), conv.lorentz_to_ball(y, c), c)
    return project_point(conv.ball_to_lorentz(p, c), c)


def gyro_scalar(r: Tensor | float, x: Tensor, c: Tensor | float) -> Tensor:
    """Gyro scalar multiplication carried over from the ball."""
    p = mobius.gyro_scalar(r, conv.lorentz_to_ball(x, c), c)
    return project_point(conv.ball_to_lorentz(p, c), c)


def gyro_inv(x: Tensor) -> Tensor:
    """``⊖x = (x₀, −x_s)`` (the image of ``−p``)."""
    return torch.cat((x[..., :1], -x[..., 1:]), dim=-1)


def gyration(a: Tensor, b: Tensor, v: Tensor, c: Tensor | float) -> Tensor:
    """``gyr[a, b] v`` for hyperboloid points ``a, b, v`` (through the ball)."""
    p = mobius.gyration(conv.lorentz_to_ball(a, c), conv.lorentz_to_ball(b, c), conv.lorentz_to_ball(v, c), c)
    return project_point(conv.ball_to_lorentz(p, c), c)


def mobius_matvec(m: Tensor, x: Tensor, c: Tensor | float) -> Tensor:
    """Möbius matrix–vector product ``M ⊗ x`` (``M`` is ``(k, n)``, ``x`` is ``(*batch, n+1)``)."""
    p = mobius.mobius_matvec(m, conv.lorentz_to_ball(x, c), c)
    return project_point(conv.ball_to_lorentz(p, c), c)


def gyro_midpoint(x: Tensor, c: Tensor | float, weights: Tensor | None = None, dim: int = -2) -> Tensor:
    """Weighted gyromidpoint (= Einstein midpoint) of hyperboloid points along ``dim``."""
    p = mobius.gyro_midpoint(conv.lorentz_to_ball(x, c), c, weights, dim)
    return project_point(conv.ball_to_lorentz(p, c), c)


def dist_to_gyroplane(x: Tensor, p: Tensor, a: Tensor, c: Tensor | float, signed: bool = True) -> Tensor:
    """Signed distance from ``x`` to the gyroplane through ``p`` with normal ``a`` (``a`` is a
    ball-frame vector ``(*batch, n)``); see :func:`riemlearn.manifolds.mobius.dist_to_gyroplane`."""
    return mobius.dist_to_gyroplane(conv.lorentz_to_ball(x, c), conv.lorentz_to_ball(p, c), a, c, signed)


def _upcast(fn):
    """Run ``fn`` in float64 for lower-precision floating inputs, cast the result back."""

    def wrapped(self, *args):
        if not self.upcast:
            return fn(self, *args)
        dt = next((a.dtype for a in args if isinstance(a, Tensor)), None)
        if dt is None or dt == torch.float64 or not dt.is_floating_point:
            return fn(self, *args)
        up = [a.to(torch.float64) if isinstance(a, Tensor) else a for a in args]
        return fn(self, *up).to(dt)

    wrapped.__doc__ = fn.__doc__
    wrapped.__name__ = fn.__name__
    return wrapped


class LorentzMetric(Metric):
    """The hyperbolic metric induced by the Minkowski form on the hyperboloid, with the gyro
    structure carried over from the Poincaré ball.

    Parameters
    ----------
    c : float
        Curvature magnitude (> 0).
    upcast : bool
        Compute float32/float16 inputs in float64 (results cast back). Default True.
    """

    name = "lorentz"
    ndim = 1
    has_gyro = True

    def __init__(self, c: float = 1.0, upcast: bool = True) -> None:
        c = float(c)
        if not c > 0 or c != c or c == float("inf"):
            raise ValueError(f"c must be a positive finite curvature magnitude, got {c}")
        self.c = c
        self.upcast = bool(upcast)

    def _params(self) -> tuple:
        return (self.c, self.upcast)

    @_upcast
    def inner(self, x: Tensor, u: Tensor, v: Tensor) -> Tensor:
        return minkowski(u, v).expand(torch.broadcast_shapes(x.shape, u.shape)[:-1])

    @_upcast
    def norm(self, x: Tensor, u: Tensor) -> Tensor:
        return safe_sqrt(minkowski(u, u).clamp_min(0))

    @_upcast
    def dist(self, x: Tensor, y: Tensor) -> Tensor:
        return dist(x, y, self.c)

    @_upcast
    def exp(self, x: Tensor, u: Tensor) -> Tensor:
        return exp(x, u, self.c)

    @_upcast
    def log(self, x: Tensor, y: Tensor) -> Tensor:
        return log(x, y, self.c)

    @_upcast
    def transport(self, x: Tensor, y: Tensor, v: Tensor) -> Tensor:
        return transport(x, y, v, self.c)

    def egrad_to_rgrad(self, x: Tensor, egrad: Tensor) -> Tensor:
        return egrad_to_rgrad(x, egrad, self.c)

    def ehess_to_rhess(self, x: Tensor, egrad: Tensor, ehess: Tensor, u: Tensor) -> Tensor:
        return ehess_to_rhess(x, egrad, ehess, u, self.c)

    @_upcast
    def gyro_add(self, x: Tensor, y: Tensor) -> Tensor:
        return gyro_add(x, y, self.c)

    def gyro_scalar(self, r: Tensor | float, x: Tensor) -> Tensor:
        if self.upcast and x.dtype != torch.float64 and x.dtype.is_floating_point:
            rr = r.to(torch.float64) if isinstance(r, Tensor) else r
            return gyro_scalar(rr, x.to(torch.float64), self.c).to(x.dtype)
        return gyro_scalar(r, x, self.c)

    def gyro_inv(self, x: Tensor) -> Tensor:
        return gyro_inv(x)


class Lorentz(Manifold):
    """The hyperboloid ``{x ∈ R^{n+1} : ⟨x, x⟩_L = −1/c, x₀ > 0}`` of curvature ``-c``.

    Parameters
    ----------
    c : float
        Curvature magnitude (> 0). geoopt's ``Lorentz(k)`` is ``Lorentz(c=1/k)`` here.
    n : int, optional
        Intrinsic dimension (points have ``n + 1`` coordinates); needed for random points.
    upcast : bool
        Compute float32 inputs in float64 inside dist/exp/log/transport/gyro (default True).

    Notes
    -----
    Capacity: 18.71/√c (float64), 8.66/√c (float32) — see the module docstring. ``belongs``
    measures the relative residual ``|1 + c⟨x, x⟩_L| / max(1, c x₀²)`` (plus 1 + √c|x₀| on the
    lower sheet).

    Examples
    --------
    >>> import torch
    >>> from riemlearn.manifolds.lorentz import Lorentz
    >>> m = Lorentz(c=1.0, n=2)
    >>> o = m.origin(dtype=torch.float64)
    >>> y = m.exp(o, torch.tensor([0.0, 0.6, 0.8], dtype=torch.float64))
    >>> round(float(m.dist(o, y)), 12)
    1.0
    """

    name = "lorentz"
    ndim = 1

    def __init__(self, c: float = 1.0, *, n: int | None = None, upcast: bool = True) -> None:
        super().__init__(LorentzMetric(c, upcast))
        if n is not None and int(n) < 1:
            raise ValueError(f"n must be a positive dimension, got {n}")
        self.n = None if n is None else int(n)
        self.c = self.metric.c

    def _params(self) -> tuple:
        return (self.c, self.n, self.metric.upcast)

    def __repr__(self) -> str:
        return f"Lorentz(c={self.c!r}, n={self.n!r})"

    @property
    def shape(self) -> tuple[int, ...] | None:
        return None if self.n is None else (self.n + 1,)

    def shape_problem(self, x: Tensor) -> str | None:
        problem = super().shape_problem(x)
        if problem is None and x.shape[-1] < 2:
            return f"has {x.shape[-1]} coordinates, hyperboloid points need n + 1 >= 2"
        return problem

    def _need_n(self) -> int:
        if self.n is None:
            raise ValueError(f"{self!r} has no dimension; pass n= to draw points")
        return self.n

    def project_point(self, x: Tensor) -> Tensor:
        return project_point(x, self.c)

    def project_tangent(self, x: Tensor, u: Tensor) -> Tensor:
        return project_tangent(x, u, self.c)

    def point_violation(self, x: Tensor) -> Tensor:
        x0 = x[..., 0]
        res = (1 + self.c * minkowski(x, x)).abs() / (self.c * x0 * x0).clamp_min(1)
        return res + torch.where(x0 > 0, 0.0, 1 + self.c**0.5 * x0.abs()).to(x.dtype)

    def violation_description(self) -> str:
        return "relative residual |1 + c⟨x,x⟩_L| / max(1, c x₀²) (+1 + √c|x₀| if x₀ ≤ 0)"

    def tangent_violation(self, x: Tensor, u: Tensor) -> Tensor:
        scale = (x[..., :1] * u[..., :1]).abs().squeeze(-1) + (
            safe_sqrt(_sq(x[..., 1:])) * safe_sqrt(_sq(u[..., 1:]))
        ).squeeze(-1)
        return minkowski(x, u).abs() / scale.clamp_min(torch.finfo(x.dtype).tiny)

    def random_point(self, *batch: int, generator=None, dtype=None, device=None) -> Tensor:
        """Wrapped normal at the origin with ``σ = 1/√n`` (mean squared distance 1)."""
        return self.wrapped_normal(self.origin(dtype=dtype, device=device), self._need_n() ** -0.5,
                                   *batch, generator=generator)

    def wrapped_normal(self, mean: Tensor, std: Tensor | float = 1.0, *batch: int,
                       generator=None) -> Tensor:
        """Wrapped normal ``exp_μ(P_{o→μ}(0, σz))`` samples ``(*batch, *mean.shape)``."""
        m = mean.expand(as_shape(batch) + tuple(mean.shape))
        z = randn(m.shape[:-1] + (m.shape[-1] - 1,), generator, m.dtype, m.device)
        s = torch.as_tensor(std, dtype=m.dtype, device=m.device)
        s = s.unsqueeze(-1) if s.dim() > 0 else s
        v = torch.cat((torch.zeros_like(z[..., :1]), s * z), dim=-1)
        o = origin(n=m.shape[-1] - 1, c=self.c, dtype=m.dtype, device=m.device)
        return self.exp(m, self.transport(o.expand_as(m), m, v))

    def identity(self, *batch: int, dtype=None, device=None) -> Tensor:
        return origin(*as_shape(batch), n=self._need_n(), c=self.c, dtype=dtype, device=device)

    def expmap0(self, u: Tensor) -> Tensor:
        """Exponential map at the origin."""
        return expmap0(u, self.c)

    def logmap0(self, y: Tensor) -> Tensor:
        """Logarithm at the origin."""
        return logmap0(y, self.c)

    def to_ball(self, x: Tensor) -> Tensor:
        """Image in the Poincaré ball of the same curvature."""
        return conv.lorentz_to_ball(x, self.c)

    def from_ball(self, p: Tensor) -> Tensor:
        """Hyperboloid point of a Poincaré-ball point."""
        return conv.ball_to_lorentz(p, self.c)
