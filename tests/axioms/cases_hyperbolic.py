"""Axiom cases for the hyperbolic models (Poincaré ball, Lorentz hyperboloid), several curvatures."""

from __future__ import annotations

import torch
from riemlearn.manifolds.lorentz import Lorentz
from riemlearn.manifolds.poincare import PoincareBall

from .cases import Case


def _outside_ball(c: float):
    def off(x: torch.Tensor) -> torch.Tensor:
        n = x.norm(dim=-1, keepdim=True).clamp_min(1e-3)
        d = torch.where(n > 1e-3, x / n, torch.ones_like(x) / x.shape[-1] ** 0.5)
        return d * 1.2 / c**0.5

    return off


def _off_hyperboloid(x: torch.Tensor) -> torch.Tensor:
    y = x.clone()
    y[..., 0] = y[..., 0] * 1.5 + 0.5
    return y


CASES: list[Case] = [
    Case("poincare-c1-n2", lambda: PoincareBall(1.0, n=2), off_manifold=_outside_ball(1.0)),
    Case("poincare-c1-n5", lambda: PoincareBall(1.0, n=5), off_manifold=_outside_ball(1.0)),
    Case("poincare-c0.5-n3", lambda: PoincareBall(0.5, n=3), off_manifold=_outside_ball(0.5)),
    Case("poincare-c2-n3", lambda: PoincareBall(2.0, n=3), off_manifold=_outside_ball(2.0)),
    Case("lorentz-c1-n3", lambda: Lorentz(1.0, n=3), off_manifold=_off_hyperboloid),
    Case("lorentz-c0.7-n2", lambda: Lorentz(0.7, n=2), off_manifold=_off_hyperboloid),
]
