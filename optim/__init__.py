"""Riemannian optimizers (torch.optim-compatible) and deterministic solvers."""

from .adam import RiemannianAdam
from .bb_line_search import BarzilaiBorweinLineSearch
from .conjugate_gradient import ConjugateGradient
from .interop import from_geoopt, to_geoopt, to_pymanopt
from .lbfgs import LBFGS
from .line_search import AdaptiveLineSearch, BackTrackingLineSearch
from .parameter import ManifoldParameter, manifold_of, manifold_param_groups
from .problem import Problem
from .result import OptimizeResult, Solver
from .sgd import RiemannianSGD
from .steepest_descent import SteepestDescent
from .trust_regions import TrustRegions
from .wolfe_line_search import WolfeLineSearch

__all__ = [
    "ManifoldParameter",
    "manifold_param_groups",
    "manifold_of",
    "RiemannianSGD",
    "RiemannianAdam",
    "Problem",
    "OptimizeResult",
    "Solver",
    "SteepestDescent",
    "ConjugateGradient",
    "TrustRegions",
    "LBFGS",
    "BackTrackingLineSearch",
    "AdaptiveLineSearch",
    "BarzilaiBorweinLineSearch",
    "WolfeLineSearch",
    "to_geoopt",
    "from_geoopt",
    "to_pymanopt",
]
