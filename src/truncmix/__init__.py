"""truncmix: k-means and Gaussian mixtures as one family, fitted by truncated variational EM.

k-means is the member with one shared isotropic variance, equal weights and each
point's posterior truncated to its closest cluster (C' = 1); exact EM keeps all C.

The public names are imported on first use, so that ``import truncmix`` and
``truncmix --help`` do not pay for scikit-learn and numba.
"""

__version__ = "0.1.0"

__all__ = ["KMeans", "TruncatedGaussianMixture", "__version__", "load", "save"]

_LAZY = {
    "KMeans": ".estimators",
    "TruncatedGaussianMixture": ".estimators",
    "load": ".io",
    "save": ".io",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'truncmix' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
