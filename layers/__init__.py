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

# Gyro, Grassmann and hyperbolic layers and models
from .grassmann import FRMap, OrthMap, ProjMap, ProjPool, ReOrth
from .gyro_grassmann import GrassmannGyroBN, GrassmannGyroFC, GrassmannGyroMLR
from .gyro_spd import SPDGyroFC, SPDGyroMLR
from .hyperbolic import LorentzLinear, PoincareGyroBN, PoincareLinear, PoincareMLR
from .models_other import GrNet, HyperbolicClassifier

__all__ += ["FRMap", "ReOrth", "OrthMap", "ProjMap", "ProjPool", "GrassmannGyroMLR", "GrassmannGyroFC",
            "GrassmannGyroBN", "SPDGyroMLR", "SPDGyroFC", "PoincareLinear", "PoincareMLR", "LorentzLinear",
            "PoincareGyroBN", "GrNet", "HyperbolicClassifier"]
