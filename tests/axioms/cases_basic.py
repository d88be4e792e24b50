"""Axiom cases for the foundation spaces (Euclidean, Sphere, Stiefel, Grassmann, Product)."""

from __future__ import annotations

from riemlearn.manifolds import Euclidean
from riemlearn.manifolds.grassmann import Grassmann
from riemlearn.manifolds.product import Product
from riemlearn.manifolds.sphere import Sphere
from riemlearn.manifolds.stiefel import Stiefel

from .cases import Case


def _scale(x):
    """Off-manifold for sphere/Stiefel/Grassmann/product: stretch every point by 1.5."""
    return 1.5 * x


_NO_LOG = frozenset({"log", "dist", "geodesic"})

# Stiefel's canonical log (Zimmermann's iteration) is returned only within the certified
# injectivity radius, so its cases draw second points near x (near_pairs).
CASES: list[Case] = [
    Case("euclidean-3", lambda: Euclidean(3)),
    Case("euclidean-2x3", lambda: Euclidean(2, 3)),
    Case("sphere-3", lambda: Sphere(3), frozenset({"gyro"}), off_manifold=_scale),
    Case("sphere-5", lambda: Sphere(5), frozenset({"gyro"}), off_manifold=_scale),
    Case("stiefel-5x2-canonical-qr", lambda: Stiefel(5, 2, "canonical", "qr"), frozenset({"gyro"}),
         isometric_transport=False, off_manifold=_scale, near_pairs=True, tangent_scale=2.0),
    Case("stiefel-5x2-embedded-polar", lambda: Stiefel(5, 2, "embedded", "polar"), _NO_LOG | {"gyro"},
         isometric_transport=False, off_manifold=_scale),
    Case("stiefel-6x3-canonical-cayley", lambda: Stiefel(6, 3, "canonical", "cayley"), frozenset({"gyro"}),
         isometric_transport=False, off_manifold=_scale, near_pairs=True),
    # Square: O(4) has two components, so random pairs have no log; embedded metric, QR.
    Case("stiefel-4x4-embedded-qr", lambda: Stiefel(4, 4, "embedded", "qr"), _NO_LOG | {"gyro"},
         isometric_transport=False, off_manifold=_scale),
    Case("grassmann-5x2", lambda: Grassmann(5, 2), off_manifold=_scale),
    Case("grassmann-6x3", lambda: Grassmann(6, 3, retraction="qr"), off_manifold=_scale),
    Case("product-sphere3-euclidean2-stiefel4x2", lambda: Product(Sphere(3), Euclidean(2), Stiefel(4, 2)),
         frozenset({"gyro"}), isometric_transport=False, off_manifold=_scale, near_pairs=True),
]
