"""truncmix: k-means and Gaussian mixtures as one family, fitted by truncated variational EM.

k-means is the member with one shared isotropic variance, equal weights and each
point's posterior truncated to its closest cluster (C' = 1); exact EM keeps all C.
"""

from .estimators import KMeans, TruncatedGaussianMixture
from .io import load, save

__version__ = "0.1.0"

__all__ = ["KMeans", "TruncatedGaussianMixture", "__version__", "load", "save"]
