"""scikit-learn estimators."""

from .gmm import TruncatedGaussianMixture
from .kmeans import KMeans

__all__ = ["KMeans", "TruncatedGaussianMixture"]
