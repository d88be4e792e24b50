"""Neural-network layers on manifolds (nn.Modules over the functional core)."""

from .batchnorm import RiemannianBatchNorm, refit_batchnorm_stats
from .batchnorm_spd import DomainSpecificSPDBatchNorm, SPDBatchNorm
from .bwbn import BWBatchNorm
from .liebn import LieBatchNorm
from .models_spd import SPDNet, TSMNet
from .spd import BiMap, CovariancePool, ExpEig, LogEig, PowEig, ReEig, Vech, vech

__all__ = ["BiMap", "ReEig", "LogEig", "ExpEig", "PowEig", "Vech", "vech", "CovariancePool",
           "RiemannianBatchNorm", "refit_batchnorm_stats", "SPDBatchNorm", "DomainSpecificSPDBatchNorm",
           "LieBatchNorm", "BWBatchNorm", "SPDNet", "TSMNet"]
