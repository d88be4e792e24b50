"""Statistics on manifolds: Fréchet means, dimension reduction, clustering, EEG estimators."""

# EEG / BCI estimators and data (covariances, synthetic generator, EEGBCI loader)
from .bsa import BSA
from .classifiers import MDM, FgMDM
from .covariance import Covariances, Shrinkage, covariances
from .datasets import make_eeg
from .eegbci import load_eegbci

# Fréchet means and statistics on manifolds
from .frechet_mean import FrechetMeanInfo, frechet_mean
from .kmeans import RiemannianKMeans
from .median import geometric_median
from .pga import PGA
from .recentering import Recenter, recenter
from .sliced_wasserstein import spd_sliced_wasserstein, spd_sliced_wasserstein_kernel
from .tangent import tangent_space, tangent_space_inverse, variance

# Dimension reduction
from .tangent_pca import TangentPCA
from .tangent_space import TangentSpace
