"""Gaussian mixtures of every covariance type, with a truncation knob C'."""

from __future__ import annotations

import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin

from .._validation import ArrayLike, Interval, Options
from ..exceptions import ConvergenceWarning
from ..backends import InMemory
from ..init import first_m_step, initial_means
from ..model.covariance import COVARIANCE_TYPES
from ..model.mixture import Mixture
from ._base import (
    SHARED_CONSTRAINTS,
    TruncatedMixtureMixin,
    mixture_from_attributes,
    with_search_parameters,
)


@with_search_parameters
class TruncatedGaussianMixture(TruncatedMixtureMixin, DensityMixin, BaseEstimator):
    """Gaussian mixture fitted by truncated variational EM.

    Each point keeps the ``n_active`` (C') components with the largest joint
    probability ``p(c, x)``; its posterior is renormalised over them. C' = 1 is
    hard (classification) EM, and with isotropic covariances and equal weights
    it is k-means; C' = C (``n_active=None``) is exact EM, and the free energy is
    then the log-likelihood. Every step raises the free energy.

    Parameters
    ----------
    n_components : int, default=1
    n_active : int or None, default=None
        C', components kept per point; None keeps all (exact EM). Values above
        ``n_components`` act as ``n_components``.
    covariance_type : {"isotropic", "spherical", "diag", "tied", "full"}, default="diag"
        "isotropic" is one variance shared by all components (the k-means model);
        "spherical" one variance per component; "diag" a diagonal covariance per
        component; "tied" one full covariance shared; "full" one per component.
    weights : {"learned", "equal"}, default="learned"
        Mixing weights estimated by the M-step, or fixed at 1/C.
    init : {"k-means++", "k-means", "random"} or array of shape (n_components, n_features), \
default="k-means++"
        Initial means: k-means++ seeds, the centres of a k-means fit from such
        seeds ("k-means", scikit-learn's ``GaussianMixture`` default, slower
        but usually a better start), random samples, or given. Weights and
        covariances then come from one M-step on the assignment of every point
        to its nearest mean.
    n_init : int, default=1
    max_iter : int, default=100
    tol : float, default=1e-3
        Stop when the free energy per unit sample weight changes by less than
        ``tol`` (scikit-learn's rule for ``GaussianMixture``).
    reg_covar : float, default=0.0
        Added to the diagonal of every covariance estimate, as scikit-learn's
        ``reg_covar``. It can break the monotonicity of the free energy slightly;
        prefer ``covariance_floor``.
    covariance_floor : float, default=1e-6
        Variances are clipped from below at ``covariance_floor`` times the data's
        per-feature variance (for full matrices: eigenvalues, in the data's
        scale). Clipping is the exact constrained M-step, so the free energy
        stays monotone. Values below 1e-12 act as 1e-12.
    weights_init, means_init, precisions_init : array-like, optional
        Starting parameters in scikit-learn's ``GaussianMixture`` forms. Given
        means replace ``init``; what is missing comes from the first M-step.
    random_state : int, RandomState instance or None, default=None
    verbose : int, default=0
    chunk_size : int or None, default=None
        Rows per chunk in the E-step; None picks it from a memory budget.
    %(search_parameters)s
    %(missing_parameter)s

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, n_features)
    covariances_ : float or ndarray
        float for "isotropic", (C,) "spherical", (C, D) "diag", (D, D) "tied",
        (C, D, D) "full".
    precisions_ : same shape as ``covariances_``
    precisions_cholesky_ : same shape as ``covariances_``
        Upper Cholesky factors ``L^{-T}`` of the precisions, as scikit-learn.
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        Truncated free energy per unit sample weight at the returned parameters
        (the mean log-likelihood when C' = C).
    free_energy_history_ : ndarray
        Free energy per unit weight at every E-step, the last one with the
        returned parameters (non-decreasing).
    history_ : list of IterationRecord
    n_dropped_ : int
        Rows left out of the fit by ``missing="drop"``.
    n_features_in_ : int

    Notes
    -----
    Relation to ``sklearn.mixture.GaussianMixture``: with ``n_active=None``, the
    same ``weights_init``, ``means_init`` and ``precisions_init``, the same
    ``reg_covar`` and ``max_iter``, both run the same E- and M-steps, and
    ``n_iter_`` counts the same iterations. Two differences: scikit-learn's
    ``lower_bound_`` is the log-likelihood *before* its last M-step, ours is taken
    after it (with the returned parameters); and scikit-learn adds ``10 eps`` to
    every component's mass, a difference far below any tolerance.
    """

    _count_name = "n_components"
    _parameter_constraints = {
        "n_components": [Interval(numbers.Integral, 1, None)],
        "n_active": [Interval(numbers.Integral, 1, None), Options((None,))],
        "covariance_type": [Options(tuple(COVARIANCE_TYPES))],
        "weights": [Options(("learned", "equal"))],
        "init": [Options(("k-means++", "k-means", "random", "afk-mc2")), ArrayLike()],
        "n_init": [Interval(numbers.Integral, 1, None)],
        "max_iter": [Interval(numbers.Integral, 1, None)],
        "tol": [Interval(numbers.Real, 0, None)],
        "reg_covar": [Interval(numbers.Real, 0, None)],
        "covariance_floor": [Interval(numbers.Real, 0, None)],
        "weights_init": [ArrayLike(), Options((None,))],
        "means_init": [ArrayLike(), Options((None,))],
        "precisions_init": [ArrayLike(), Options((None,))],
        **SHARED_CONSTRAINTS,
    }

    def __init__(self, n_components=1, *, n_active=None, covariance_type="diag",
                 weights="learned", init="k-means++", n_init=1, max_iter=100, tol=1e-3,
                 reg_covar=0.0, covariance_floor=1e-6, weights_init=None, means_init=None,
                 precisions_init=None, random_state=None, verbose=0, chunk_size=None,
                 search="exhaustive", n_neighbors=5, n_random=1, coreset_size=None,
                 swaps="auto", missing="raise"):
        self.n_components = n_components
        self.n_active = n_active
        self.covariance_type = covariance_type
        self.weights = weights
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.reg_covar = reg_covar
        self.covariance_floor = covariance_floor
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.verbose = verbose
        self.chunk_size = chunk_size
        self.search = search
        self.n_neighbors = n_neighbors
        self.n_random = n_random
        self.coreset_size = coreset_size
        self.swaps = swaps
        self.missing = missing

    def _model(self):
        return self.n_components, self.covariance_type, self.weights == "learned", self.n_active

    def _reg_covar(self):
        return float(self.reg_covar)

    def _covariance_floor(self):
        return float(self.covariance_floor)

    def _init_means_spec(self):
        return self.init if self.means_init is None else self.means_init

    def _start(self, X, weights, backend, random_state, floor, data_cov, seed_state=False):
        C, D = self.n_components, X.shape[1]
        spec = self._init_means_spec()
        labels = None
        if isinstance(spec, str) and spec == "k-means":
            # scikit-learn's GaussianMixture default: start from a k-means fit
            from .kmeans import KMeans

            km = KMeans(C, n_init=1, random_state=random_state, chunk_size=self.chunk_size,
                        search=self.search, n_neighbors=self.n_neighbors,
                        n_random=self.n_random, coreset_size=self.coreset_size)
            # (in memory, the seed rows are all rows, in the backend's order)
            if (self.search == "neighbourhood" and isinstance(backend, InMemory)
                    and X.shape[0] == backend.n_samples):
                # on the rows this fit already holds (validated, centred, moments
                # known), and without k-means' final E-step: its assignment as the
                # last iteration left it is handed on (no second search)
                run = km._run_in_memory(X, weights, backend.sharing_rows(), random_state,
                                        data_cov)
                spec = run.mixture.means + backend.offset
                labels = run.backend.state[:, 0]
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    km._progress = lambda record: False
                    spec = km.fit(X, sample_weight=weights).cluster_centers_
                # a neighbourhood k-means hands its assignment on (no second search)
                if self.search == "neighbourhood" and km.labels_.shape[0] == backend.n_samples:
                    labels = km.labels_
        means = initial_means(X, weights, C, spec, random_state, coreset_size=self.coreset_size)
        self._check_init_means(means, D)
        if means.shape[0] != C:
            raise ValueError(f"means_init has {means.shape[0]} rows; expected n_components={C}")
        means = means - backend.offset
        if self.weights_init is not None and self.precisions_init is not None:
            mixture = Mixture(means, np.zeros(C), self._precisions_init(C, D))
        else:
            mixture = first_m_step(
                backend, means, self.covariance_type, data_cov,
                learned_weights=self.weights == "learned", floor=floor,
                reg_covar=self._reg_covar(), seed_state=seed_state, labels=labels,
            )
            if self.precisions_init is not None:
                mixture = Mixture(mixture.means, mixture.log_weights, self._precisions_init(C, D))
        if self.weights_init is not None:
            w = np.asarray(self.weights_init, dtype=np.float64)
            if w.shape != (C,) or (w < 0).any() or not np.isclose(w.sum(), 1.0):
                raise ValueError(
                    f"weights_init must be {C} non-negative numbers summing to 1; got {w!r}"
                )
            with np.errstate(divide="ignore"):
                mixture = Mixture(mixture.means, np.log(w), mixture.covariance)
        elif self.weights == "equal":
            mixture = Mixture.with_equal_weights(mixture.means, mixture.covariance)
        return mixture

    def _precisions_init(self, C, D):
        prec = np.asarray(self.precisions_init, dtype=np.float64)
        try:
            return COVARIANCE_TYPES[self.covariance_type].from_precisions(prec, C, D)
        except (ValueError, np.linalg.LinAlgError) as exc:
            raise ValueError(
                f"precisions_init is not a valid {self.covariance_type!r} precision: {exc}"
            ) from None

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit, and return the most probable component of each sample."""
        return self._fit(X, sample_weight)

    def _store(self, mixture, stats, labels, floor):
        cov = mixture.covariance
        self.weights_ = mixture.weights
        self.means_ = mixture.means
        self.covariances_ = cov.covariances
        self.precisions_ = cov.precisions
        self.precisions_cholesky_ = cov.precisions_cholesky

    def _fitted_mixture(self):
        return mixture_from_attributes(
            self.means_, self.weights_, self.covariance_type, self.covariances_
        )
