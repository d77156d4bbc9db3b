"""Sublinear in C (issue 4), EM side: a diagonal GMM against scikit-learn, and cost per iteration against C.

The measurements are described in :mod:`benchmarks.suites.sublinear`; this
module is its second half, run as its own benchmark so that either can be
re-run alone (the k-means half spends most of its time in scikit-learn's
seeding).
"""

from .sublinear import run_em as run

__all__ = ["run"]
