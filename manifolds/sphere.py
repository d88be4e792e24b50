"""The unit sphere ``S^{n−1} ⊂ R^n`` with the round (induced) metric."""

from __future__ import annotations

import torch
from torch import Tensor

from .base import Manifold, Metric, as_shape, randn, safe_sqrt

__all__ = ["Sphere", "RoundMetric"]

# Below this squared norm, sin and cos use their Taylor series (smooth gradients at 0).
_SMALL = 1e-5


def _dot(u: Tensor, v: Tensor) -> Tensor:
    return (u * v).sum(-1)


def _sinc_cos_from_sq(sq: Tensor) -> tuple[Tensor, Tensor]:
    """``(sin r / r, cos r)`` for ``r = √sq``, smooth (and exact to rounding) near ``sq = 0``."""
    small = sq < _SMALL
    safe = torch.where(small, torch.ones_like(sq), sq)
    r = torch.sqrt(safe)
    sinc = torch.where(small, 1 - sq / 6 + sq * sq / 120, torch.sin(r) / r)
    cos = torch.where(small, 1 - sq / 2 + sq * sq / 24, torch.cos(r))
    return sinc, cos


def sphere_angle(x: Tensor, y: Tensor) -> Tensor:
    """Angle between unit vectors, ``2 atan2(‖x − y‖, ‖x + y‖)``: accurate near 0 and near π."""
    return 2 * torch.atan2(safe_sqrt(_dot(x - y, x - y)), safe_sqrt(_dot(x + y, x + y)))


class RoundMetric(Metric):
    """The round metric of the unit sphere (inner product of the ambient space)."""

    name = "round"
    ndim = 1

    def inner(self, x: Tensor, u: Tensor, v: Tensor) -> Tensor:
        return _dot(u, v)

    def exp(self, x: Tensor, u: Tensor) -> Tensor:
        sinc, cos = _sinc_cos_from_sq(_dot(u, u))
        y = cos.unsqueeze(-1) * x + sinc.unsqueeze(-1) * u
        # Renormalize: exact for x on the sphere and u tangent, and it stops rounding errors from
        # compounding when exp is iterated (Karcher means, optimizers).
        return y / safe_sqrt(_dot(y, y)).unsqueeze(-1)

    def log(self, x: Tensor, y: Tensor) -> Tensor:
        d = y - x
        # Component of y orthogonal to x, written with d = y − x (no cancellation near y = x).
        v = d - _dot(x, d).unsqueeze(-1) * x
        s = _dot(d, d)
        small = s < _SMALL
        # θ / sin θ as a series in s = ‖y − x‖² = 4 sin²(θ/2) near 0.
        vn = safe_sqrt(_dot(v, v))
        tiny = torch.finfo(x.dtype).tiny
        theta = sphere_angle(x, y)
        big = theta / torch.where(small, torch.ones_like(vn), vn.clamp_min(tiny))
        coef = torch.where(small, 1 + s / 6 + s * s / 30, big)
        out = coef.unsqueeze(-1) * v
        # Exactly antipodal (v vanishes): any direction works; pick one deterministically.
        anti = (vn <= 8 * torch.finfo(x.dtype).eps) & ~small
        if bool(anti.any()):
            k = x.abs().argmin(dim=-1, keepdim=True)
            e = torch.zeros_like(x).scatter(-1, k, 1.0)
            w = e - _dot(x, e).unsqueeze(-1) * x
            w = w / safe_sqrt(_dot(w, w)).clamp_min(tiny).unsqueeze(-1)
            out = torch.where(anti.unsqueeze(-1), theta.unsqueeze(-1) * w, out)
        return out

    def dist(self, x: Tensor, y: Tensor) -> Tensor:
        return sphere_angle(x, y)

    def retract(self, x: Tensor, u: Tensor) -> Tensor:
        z = x + u
        return z / safe_sqrt(_dot(z, z)).unsqueeze(-1)

    def transport(self, x: Tensor, y: Tensor, v: Tensor) -> Tensor:
        # Parallel transport along the minimal geodesic: v − ⟨y, v⟩/(1 + ⟨x, y⟩) (x + y);
        # 1 + ⟨x, y⟩ = ‖x + y‖²/2 (accurate near the antipode, where it vanishes).
        s = x + y
        denom = (0.5 * _dot(s, s)).clamp_min(torch.finfo(x.dtype).tiny)
        return v - (_dot(y, v) / denom).unsqueeze(-1) * s

    def egrad_to_rgrad(self, x: Tensor, egrad: Tensor) -> Tensor:
        return egrad - _dot(x, egrad).unsqueeze(-1) * x

    def ehess_to_rhess(self, x: Tensor, egrad: Tensor, ehess: Tensor, u: Tensor) -> Tensor:
        return self.egrad_to_rgrad(x, ehess) - _dot(x, egrad).unsqueeze(-1) * u

    def geodesic(self, x: Tensor, y: Tensor, t: Tensor | float) -> Tensor:
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device).unsqueeze(-1)
        return self.exp(x, t * self.log(x, y))


class Sphere(Manifold):
    """Unit sphere ``{x ∈ R^n : ‖x‖ = 1}``, points of shape ``(*batch, n)``.

    Parameters
    ----------
    n : int
        Ambient dimension (``Sphere(3)`` is the 2-sphere in ``R³``).

    Notes
    -----
    ``dist`` is ``2 atan2(‖x − y‖, ‖x + y‖)``, accurate for tiny angles and near ``π``. ``log``
    has finite gradients at ``y = x`` and returns a vector of norm ``π`` (in a deterministic
    direction) at the exact antipode. ``transport`` is parallel transport along the minimal
    geodesic (undefined at the antipode). The sphere has no identity and no gyro structure.

    Examples
    --------
    >>> import torch
    >>> from riemlearn.manifolds import Sphere
    >>> m = Sphere(3)
    >>> x = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    >>> y = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    >>> round(float(m.dist(x, y)), 6)
    1.570796
    >>> torch.allclose(m.exp(x, m.log(x, y)), y)
    True
    """

    name = "sphere"
    ndim = 1

    def __init__(self, n: int) -> None:
        n = int(n)
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        self.n = n
        super().__init__(RoundMetric())

    def _params(self) -> tuple:
        return (self.n,)

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.n,)

    def project_point(self, x: Tensor) -> Tensor:
        return x / safe_sqrt(_dot(x, x)).clamp_min(torch.finfo(x.dtype).tiny).unsqueeze(-1)

    def project_tangent(self, x: Tensor, u: Tensor) -> Tensor:
        return u - _dot(x, u).unsqueeze(-1) * x

    def point_violation(self, x: Tensor) -> Tensor:
        return (torch.linalg.vector_norm(x, dim=-1) - 1).abs()

    def tangent_violation(self, x: Tensor, u: Tensor) -> Tensor:
        scale = torch.linalg.vector_norm(u, dim=-1).clamp_min(1.0)
        return _dot(x, u).abs() / scale

    def violation_description(self) -> str:
        return "| ‖x‖ − 1 |"

    def random_point(self, *batch: int, generator=None, dtype=None, device=None) -> Tensor:
        """Uniformly distributed points (normalized Gaussians), ``(*batch, n)``."""
        z = randn(as_shape(batch) + (self.n,), generator, dtype, device)
        return z / torch.linalg.vector_norm(z, dim=-1, keepdim=True)
