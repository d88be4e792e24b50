"""Axiom cases for the foundation spaces (Euclidean, Sphere, Stiefel, Grassmann, Product)."""

from __future__ import annotations

from riemlearn.manifolds import Euclidean

from .cases import Case

CASES: list[Case] = [
    Case("euclidean-3", lambda: Euclidean(3)),
    Case("euclidean-2x3", lambda: Euclidean(2, 3)),
]
