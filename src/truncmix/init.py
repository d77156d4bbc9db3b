"""Initial parameters: means from a seeding rule, then a first M-step.

The means come from k-means++ (scikit-learn's public ``kmeans_plusplus``), from
randomly chosen data points, or from the user. Weights and covariances then come
from one M-step on the hard assignment of every point to its nearest mean, with
the means held fixed.
"""

from __future__ import annotations

import numpy as np

from .estep import Exhaustive
from .em import e_pass
from .model.covariance import COVARIANCE_TYPES, Isotropic, clip_matrix
from .model.mixture import Mixture
from .mstep import m_step


def initial_means(X, weights, n_components, init, random_state):
    """Means to start from, in the data's coordinates.

    Parameters
    ----------
    X : ndarray (N, D)
    weights : ndarray (N,)
    n_components : int
    init : {"k-means++", "random"} or ndarray (C, D)
    random_state : numpy.random.RandomState

    Returns
    -------
    ndarray (C, D), float64
    """
    if isinstance(init, str) and init == "k-means++":
        from sklearn.cluster import kmeans_plusplus

        # Seeding draws points by inverse-CDF sampling over the rows; in a
        # canonical row order the draws do not depend on how the rows are
        # shuffled, and a row of weight k is drawn exactly as k repeated rows.
        order = canonical_order(X)
        centres, _ = kmeans_plusplus(
            X[order], n_components, sample_weight=weights[order], random_state=random_state
        )
        return np.asarray(centres, dtype=np.float64)
    if isinstance(init, str) and init == "random":
        p = weights / weights.sum()
        rows = random_state.choice(X.shape[0], size=n_components, replace=False, p=p)
        return np.asarray(X[np.sort(rows)], dtype=np.float64)
    return np.array(init, dtype=np.float64)


def canonical_order(X):
    """A row order that depends only on the rows' values (equal rows adjacent).

    Rows are sorted by a fixed random projection; distinct rows tie only on a
    set of measure zero.
    """
    direction = np.random.default_rng(20261123).standard_normal(X.shape[1])
    return np.argsort(X @ direction, kind="stable")


def data_covariance(name, n_components, cov, floor):
    """A covariance of type ``name`` with every component at the data's spread."""
    D = cov.shape[0]
    cls = COVARIANCE_TYPES[name]
    var = np.maximum(np.diag(cov), floor.per_feature)
    if name in ("isotropic", "spherical"):
        return cls.from_covariances(float(var.mean()), n_components, D)
    if name == "diag":
        return cls.from_covariances(var, n_components, D)
    clipped, _ = clip_matrix(0.5 * (cov + cov.T), floor)
    return cls.from_covariances(clipped, n_components, D)


def first_m_step(backend, means, covariance_type, data_cov, *, learned_weights, floor, reg_covar):
    """Weights and covariances about fixed initial ``means`` (driver coordinates).

    Every point is assigned to its nearest mean; components that get no point
    keep the data's covariance.
    """
    C = means.shape[0]
    start = Mixture.with_equal_weights(means, data_covariance(covariance_type, C, data_cov, floor))
    nearest = Mixture.with_equal_weights(means, Isotropic(1.0, C, means.shape[1]))
    stats = e_pass(backend, Exhaustive(1), nearest, update_state=False,
                   moments_of=start.covariance)
    mixture, _ = m_step(
        stats, start, learned_weights=learned_weights, floor=floor, reg_covar=reg_covar,
        keep_means=True,
    )
    return mixture
