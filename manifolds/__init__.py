"""Manifolds, metrics and matrix functions."""

from . import spectral
from .base import Manifold, Metric
from .eigh_dispatch import spectral_backend
from .euclidean import Euclidean, FlatMetric
from .grassmann import Grassmann, GrassmannMetric
from .lorentz import Lorentz, LorentzMetric
from .poincare import PoincareBall, PoincareMetric
from .product import Product, ProductMetric
from .spd import SPD
from .spd_affine_invariant import AffineInvariant
from .spd_bures_wasserstein import BuresWasserstein, GeneralizedBuresWasserstein
from .spd_log_cholesky import LogCholesky
from .spd_log_euclidean import LogEuclidean
from .sphere import RoundMetric, Sphere
from .stiefel import Stiefel, StiefelCanonicalMetric, StiefelEmbeddedMetric

__all__ = ["Manifold", "Metric", "Euclidean", "FlatMetric", "spectral", "spectral_backend"]
__all__ += ["Sphere", "RoundMetric", "Stiefel", "StiefelCanonicalMetric", "StiefelEmbeddedMetric"]
__all__ += ["Grassmann", "GrassmannMetric", "Product", "ProductMetric"]
__all__ += ["SPD", "AffineInvariant", "LogEuclidean", "LogCholesky"]
__all__ += ["BuresWasserstein", "GeneralizedBuresWasserstein"]
__all__ += ["PoincareBall", "PoincareMetric", "Lorentz", "LorentzMetric"]
