"""Isometries between models of hyperbolic space of curvature ``-c``.

* Poincaré ball ``B = {p ∈ R^n : c‖p‖² < 1}``,
* hyperboloid (Lorentz) ``H = {x ∈ R^{n+1} : −x₀² + ‖x_s‖² = −1/c, x₀ > 0}`` (time first),
* Klein (Beltrami–Klein) ball ``K = {k ∈ R^n : c‖k‖² < 1}``,
* upper half-space ``U = {y ∈ R^n : y_n > 0}`` with metric ``‖dy‖² / (c y_n²)``.

All maps take ``(*batch, n)`` or ``(*batch, n+1)`` points and a curvature ``c`` (float or tensor
of shape ``()`` / ``(*batch,)``), and are written without cancellation where the boundary makes
it matter: ``1 − c‖p‖² = 2 / (1 + √c x₀)`` is exact on the hyperboloid side.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import safe_sqrt
from .mobius import _one_minus, curvature

__all__ = [
    "ball_to_lorentz",
    "lorentz_to_ball",
    "ball_to_klein",
    "klein_to_ball",
    "lorentz_to_klein",
    "klein_to_lorentz",
    "lorentz_to_halfspace",
    "halfspace_to_lorentz",
    "ball_to_halfspace",
    "halfspace_to_ball",
    "halfspace_dist",
]


def _sq(x: Tensor) -> Tensor:
    return (x * x).sum(-1, keepdim=True)


def ball_to_lorentz(p: Tensor, c: Tensor | float) -> Tensor:
    """``x = ((1 + c‖p‖²) / (√c A), 2p / A)`` with ``A = 1 − c‖p‖²`` (evaluated exactly)."""
    cc = curvature(c, p)
    a = _one_minus(p, cc)  # exact near the boundary
    return torch.cat(((2 - a) / (torch.sqrt(cc) * a), 2 * p / a), dim=-1)


def lorentz_to_ball(x: Tensor, c: Tensor | float) -> Tensor:
    """``p = x_s / (1 + √c x₀)``; ``(*batch, n)``."""
    cc = curvature(c, x)
    return x[..., 1:] / (1 + torch.sqrt(cc) * x[..., :1])


def ball_to_klein(p: Tensor, c: Tensor | float) -> Tensor:
    """``k = 2p / (1 + c‖p‖²)``."""
    cc = curvature(c, p)
    return 2 * p / (1 + cc * _sq(p))


def klein_to_ball(k: Tensor, c: Tensor | float) -> Tensor:
    """``p = k / (1 + √(1 − c‖k‖²))``."""
    cc = curvature(c, k)
    return k / (1 + safe_sqrt(1 - cc * _sq(k)))


def lorentz_to_klein(x: Tensor, c: Tensor | float) -> Tensor:
    """``k = x_s / (√c x₀)``."""
    cc = curvature(c, x)
    return x[..., 1:] / (torch.sqrt(cc) * x[..., :1])


def klein_to_lorentz(k: Tensor, c: Tensor | float) -> Tensor:
    """``x = (1, √c k) / (√c √(1 − c‖k‖²))``."""
    cc = curvature(c, k)
    sc = torch.sqrt(cc)
    g = 1 / (sc * safe_sqrt(1 - cc * _sq(k)))
    return torch.cat((g, g * sc * k), dim=-1)


def lorentz_to_halfspace(x: Tensor, c: Tensor | float) -> Tensor:
    """Upper half-space coordinates ``y_i = x_i / (x₀ − x_n)``, ``y_n = 1/(√c (x₀ − x_n))``.

    ``x₀ − x_n`` is taken as ``(1/c + ‖x_{1..n−1}‖²)/(x₀ + x_n)`` when ``x_n > 0`` (no
    cancellation). Returns ``(*batch, n)``.
    """
    cc = curvature(c, x)
    x0, mid, xn = x[..., :1], x[..., 1:-1], x[..., -1:]
    alt = (1 / cc + _sq(mid)) / (x0 + xn.clamp_min(0))
    gap = torch.where(xn > 0, alt, x0 - xn)
    return torch.cat((mid / gap, 1 / (torch.sqrt(cc) * gap)), dim=-1)


def halfspace_to_lorentz(y: Tensor, c: Tensor | float) -> Tensor:
    """Inverse of :func:`lorentz_to_halfspace`; ``(*batch, n+1)``."""
    cc = curvature(c, y)
    sc = torch.sqrt(cc)
    mid, yn = y[..., :-1], y[..., -1:]
    r2 = _sq(mid) + yn * yn
    x0 = (1 + r2) / (2 * yn)
    xn = (r2 - 1) / (2 * yn)
    return torch.cat((x0, mid / yn, xn), dim=-1) / sc


def ball_to_halfspace(p: Tensor, c: Tensor | float) -> Tensor:
    """Poincaré ball → upper half-space (through the hyperboloid)."""
    return lorentz_to_halfspace(ball_to_lorentz(p, c), c)


def halfspace_to_ball(y: Tensor, c: Tensor | float) -> Tensor:
    """Upper half-space → Poincaré ball (through the hyperboloid)."""
    return lorentz_to_ball(halfspace_to_lorentz(y, c), c)


def halfspace_dist(y: Tensor, z: Tensor, c: Tensor | float) -> Tensor:
    """Distance in the upper half-space: ``arcosh(1 + ‖y − z‖²/(2 y_n z_n))/√c``, ``(*batch,)``."""
    from .poincare import arcosh1p

    cc = curvature(c, y)
    delta = _sq(y - z) / (2 * y[..., -1:] * z[..., -1:])
    return (arcosh1p(delta) / torch.sqrt(cc)).squeeze(-1)
