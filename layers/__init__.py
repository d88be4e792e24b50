"""Neural-network layers on manifolds (nn.Modules over the functional core)."""

from .spd import BiMap, CovariancePool, ExpEig, LogEig, PowEig, ReEig, Vech, vech

__all__ = ["BiMap", "ReEig", "LogEig", "ExpEig", "PowEig", "Vech", "vech", "CovariancePool"]
