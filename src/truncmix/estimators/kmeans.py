"""k-means as the C'=1, isotropic, equal-weight member of the family."""

from __future__ import annotations

import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin

from .._validation import ArrayLike, Interval, Options
from ..model.covariance import LOG_2PI, Isotropic
from ..model.mixture import Mixture
from ._base import SHARED_CONSTRAINTS, TruncatedMixtureMixin, with_search_parameters


@with_search_parameters
class KMeans(TruncatedMixtureMixin, ClusterMixin, TransformerMixin, BaseEstimator):
    """Lloyd's k-means, fitted as truncated variational EM with C' = 1.

    Lloyd's algorithm is exactly truncated variational EM on a Gaussian mixture
    whose components share one isotropic variance sigma^2 and equal weights, with
    each point's posterior truncated to its closest cluster. The centres and
    labels are Lloyd's; the M-step also estimates ``sigma2_ = inertia_ / (W D)``,
    which makes the fitted model a density: it can :meth:`sample`, :meth:`score`
    held-out data by likelihood and give soft assignments (:meth:`predict_proba`).

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters C.
    init : {"k-means++", "random"} or array of shape (n_clusters, n_features), \
default="k-means++"
        Initial centres: greedy k-means++ (scikit-learn's ``kmeans_plusplus``,
        with up to 4x its ``2 + log C`` local trials per centre while that stays
        cheap, see :func:`truncmix.init.local_trials`), distinct random samples
        (drawn with probability proportional to the sample weights), or given.
    n_init : int, default=1
        Runs from different initial centres; the one with the highest free
        energy (equivalently, lowest inertia) is kept.
    max_iter : int, default=300
        Maximum number of Lloyd (E+M) iterations per run.
    tol : float, default=1e-4
        Stop when the free energy per unit sample weight changes by less than
        ``tol``. For k-means that change is ``(D/2) log(Q_old / Q_new)``, so the
        rule is scale-free. A run also stops when no label changes.
    random_state : int, RandomState instance or None, default=None
    verbose : int, default=0
        Print one line per iteration when positive.
    chunk_size : int or None, default=None
        Rows per chunk in the E-step; None picks it from a memory budget. The
        result does not depend on it beyond rounding.
    %(search_parameters)s
    %(missing_parameter)s
    algorithm : {"auto", "lloyd", "yinyang"}, default="auto"
        How the exhaustive search (``search="exhaustive"``) assigns points.
        "lloyd" scores every centre by one matrix product per chunk of rows.
        "yinyang" keeps per point a lower bound on its distance to each group
        of about 10 centres (Ding et al. 2015), and computes only the distances
        the bounds cannot rule out: same labels and centres (distances are
        computed unexpanded in float64), much less work once the centres move
        little, for 4 bytes per point and group (at most 256 MiB; fewer groups
        beyond). Data in memory only. "auto" is "yinyang" for data in memory,
        "lloyd" otherwise.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
    labels_ : ndarray of shape (n_samples,)
    inertia_ : float
        Weighted sum of squared distances to the closest centre.
    sigma2_ : float
        The M-step variance ``inertia_ / (W * n_features)`` (floored at a tiny
        fraction of the data variance), W the total sample weight.
    n_iter_ : int
    converged_ : bool
    lower_bound_ : float
        Free energy per unit sample weight at the returned parameters:
        ``-log C - (D/2) log(2 pi e sigma2_)``.
    free_energy_history_ : ndarray
        Free energy per unit weight at every E-step (non-decreasing).
    history_ : list of IterationRecord
    n_dropped_ : int
        Rows left out of the fit by ``missing="drop"``.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when fitted on a DataFrame with string column names.

    Notes
    -----
    Unlike scikit-learn's ``KMeans.score`` (minus the inertia), :meth:`score`
    returns the mean log-likelihood of the isotropic mixture; both are "higher
    is better". An emptied cluster is re-seeded at the point worst explained by
    the current model (scikit-learn moves it to the farthest points too, but
    also changes the clusters those points leave); a
    :class:`~truncmix.exceptions.DegenerateComponentWarning` says so.
    """

    _count_name = "n_clusters"
    _parameter_constraints = {
        "n_clusters": [Interval(numbers.Integral, 1, None)],
        "init": [Options(("k-means++", "random", "afk-mc2")), ArrayLike()],
        "n_init": [Interval(numbers.Integral, 1, None)],
        "max_iter": [Interval(numbers.Integral, 1, None)],
        "tol": [Interval(numbers.Real, 0, None)],
        "algorithm": [Options(("auto", "lloyd", "yinyang"))],
        **SHARED_CONSTRAINTS,
    }

    def __init__(self, n_clusters=8, *, init="k-means++", n_init=1, max_iter=300, tol=1e-4,
                 random_state=None, verbose=0, chunk_size=None,
                 search="exhaustive", n_neighbors=5, n_random=1, coreset_size=None,
                 swaps="auto", missing="raise", algorithm="auto"):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.verbose = verbose
        self.chunk_size = chunk_size
        self.search = search
        self.n_neighbors = n_neighbors
        self.n_random = n_random
        self.coreset_size = coreset_size
        self.swaps = swaps
        self.missing = missing
        self.algorithm = algorithm

    def _model(self):
        return self.n_clusters, "isotropic", False, 1

    def _bounds_wanted(self, in_memory):
        if self.algorithm == "yinyang" and not in_memory:
            warnings.warn("algorithm='yinyang' needs the data in memory; running 'lloyd' "
                          "(out-of-core and Dask fits)", UserWarning, stacklevel=4)
        return in_memory and self.algorithm in ("auto", "yinyang")

    def _store(self, mixture, stats, labels, floor):
        W, D, C = stats.weight, mixture.n_features, mixture.n_components
        # with C' = 1 the moments about the means are the squared distances
        inertia = float(stats.second.sum())
        sigma2 = max(inertia / (W * D), floor.scalar)
        self.cluster_centers_ = mixture.means
        self.labels_ = labels
        self.inertia_ = inertia
        self.sigma2_ = sigma2
        # sigma^2 re-fitted to the final labels: the free energy can only rise
        F = -W * np.log(C) - 0.5 * W * D * (LOG_2PI + np.log(sigma2)) - inertia / (2 * sigma2)
        self.lower_bound_ = F / W
        self.free_energy_history_[-1] = self.lower_bound_

    def _fitted_mixture(self):
        C, D = self.cluster_centers_.shape
        return Mixture.with_equal_weights(self.cluster_centers_, Isotropic(self.sigma2_, C, D))

    def transform(self, X):
        """Euclidean distance from each sample to each centre.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_clusters)
        """
        from ..model.covariance import squared_distances

        return self._map_rows(
            X, lambda x, m: np.sqrt(squared_distances(x, m.means)), lambda m: (m.n_components,)
        )

    def fit_transform(self, X, y=None, sample_weight=None):
        """Fit, then return :meth:`transform` of ``X``."""
        return self.fit(X, sample_weight=sample_weight).transform(X)
