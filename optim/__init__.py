"""Riemannian optimizers (torch.optim-compatible) and deterministic solvers."""

from .adam import RiemannianAdam
from .parameter import ManifoldParameter, manifold_of, manifold_param_groups
from .sgd import RiemannianSGD

__all__ = [
    "ManifoldParameter",
    "manifold_param_groups",
    "manifold_of",
    "RiemannianSGD",
    "RiemannianAdam",
]
