"""Axiom cases exercising the Grassmann gyro structure (shapes beyond the basic Grassmann cases)."""

from __future__ import annotations

from riemlearn.manifolds.grassmann import Grassmann

from .cases import Case


def _scale(x):
    return 1.5 * x


CASES: list[Case] = [
    Case("grassmann-gyro-4x1", lambda: Grassmann(4, 1), off_manifold=_scale),
    Case("grassmann-gyro-7x3", lambda: Grassmann(7, 3), off_manifold=_scale),
]
