"""riemlearn: learning on Riemannian and matrix manifolds with PyTorch.

Subpackages: :mod:`riemlearn.manifolds` (spaces, metrics, matrix functions),
:mod:`riemlearn.optim` (Riemannian optimizers and solvers), :mod:`riemlearn.layers`
(nn.Modules), :mod:`riemlearn.stats` (means, PCA-like analyses, EEG estimators) and
:mod:`riemlearn.distributed`. The names users import most are re-exported here.
"""

__version__ = "0.1.0"

from . import layers, manifolds, optim, stats
from .manifolds import SPD, Euclidean, Grassmann, Lorentz, PoincareBall, Product, Sphere, Stiefel
from .optim import ManifoldParameter, RiemannianAdam, RiemannianSGD
from .stats import frechet_mean

__all__ = [
    "__version__",
    "manifolds",
    "optim",
    "layers",
    "stats",
    "SPD",
    "Euclidean",
    "Grassmann",
    "Lorentz",
    "PoincareBall",
    "Product",
    "Sphere",
    "Stiefel",
    "ManifoldParameter",
    "RiemannianAdam",
    "RiemannianSGD",
    "frechet_mean",
]
