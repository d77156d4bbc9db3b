"""What KMeans and TruncatedGaussianMixture share: fitting, scoring, sampling."""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from .. import _validation as v
from ..backends import InMemory, as_chunk_source, is_dask_array
from ..backends.base import rows_per_chunk
from ..backends.memory import MemoryData
from ..backends.ondisk import OnDisk, OnDiskData, as_array, check_source, spill_array
from ..em import EMConfig, EMRun
from ..estep import Exhaustive
from ..estep.neighbourhood import Neighbourhood, NeighbourScores
from ..moves import swap_moves
from ..exceptions import ConvergenceWarning
from ..init import first_m_step, initial_means
from ..model.covariance import COVARIANCE_TYPES, Floor
from ..model.mixture import Mixture

import warnings


class TruncatedMixtureMixin:
    """Fitting and the generative methods of a truncated-EM Gaussian mixture.

    Subclasses say which model they are through :meth:`_model` and how fitted
    parameters map to attributes through :meth:`_store` and
    :meth:`_fitted_mixture`.
    """

    # ----------------------------------------------------------------- model
    def _model(self):
        """``(n_components, covariance_type, learned_weights, n_active)``."""
        raise NotImplementedError

    def _start(self, X, weights, backend, random_state, floor, data_cov, seed_state=False):
        """Initial mixture, in the backend's (shifted) coordinates."""
        C, cov_type, learned, _ = self._model()
        means = initial_means(X, weights, C, self._init_means_spec(), random_state,
                              coreset_size=self.coreset_size)
        self._check_init_means(means, X.shape[1])
        return first_m_step(
            backend, means - backend.offset, cov_type, data_cov,
            learned_weights=learned, floor=floor, reg_covar=self._reg_covar(),
            seed_state=seed_state,
        )

    def _moves(self, estep, data):
        """Global swap moves for hard neighbourhood fits, or None."""
        C = self._model()[0]
        if not isinstance(estep, Neighbourhood) or estep.kept(C) != 1:
            return None
        limit = 1 + C // 20 if self.swaps == "auto" else int(self.swaps)
        if limit == 0:
            return None
        if not isinstance(data, MemoryData):
            # swaps read the rows of a few components at random places: in memory only
            if self.swaps != "auto":
                warnings.warn(f"swaps={self.swaps} is ignored: swap moves need the data in "
                              "memory (out-of-core and Dask fits run without them)",
                              UserWarning, stacklevel=4)
            return None

        def moves(backend, mixture, stats):
            if not isinstance(stats.extra, NeighbourScores):
                return mixture, 0
            return swap_moves(backend, mixture, stats.extra, limit, on_move=estep.moved)

        return moves

    def _estep(self):
        """The E-step strategy the parameters ask for."""
        C, _, _, n_active = self._model()
        kept = C if n_active is None else min(n_active, C)
        if self.search == "neighbourhood" and kept < C:
            return Neighbourhood(kept, n_neighbors=self.n_neighbors, n_random=self.n_random)
        return Exhaustive(n_active)

    def _init_means_spec(self):
        return self.init

    def _reg_covar(self):
        return 0.0

    def _covariance_floor(self):
        return 1e-6

    @staticmethod
    def _check_init_means(means, n_features):
        if means.ndim != 2 or means.shape[1] != n_features:
            raise ValueError(
                f"initial means have shape {means.shape}; expected (n_components, {n_features})"
            )
        if not np.isfinite(means).all():
            raise ValueError("initial means hold NaN or infinite values")

    # ------------------------------------------------------------------- fit
    def fit(self, X, y=None, sample_weight=None):
        """Fit the model to ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights; integer weights act as repeated rows, zero
            weight as a dropped row.

        Returns
        -------
        self
        """
        self._fit(X, sample_weight)
        return self

    def _validate_fit_input(self, X, sample_weight):
        X = validate_data(self, X, dtype=[np.float64, np.float32], order="C", ensure_min_samples=1)
        self._check_n_samples(X.shape[0])
        weights = v.check_sample_weight(sample_weight, X.shape[0])
        v.check_squares_finite(X)
        return X, weights

    def _check_n_samples(self, n_samples):
        C = self._model()[0]
        if n_samples < C:
            raise ValueError(
                f"n_samples={n_samples} should be >= {self._count_name}={C}: "
                f"a mixture cannot have more components than there are samples"
            )

    def _fit_data(self, X, sample_weight):
        """The fit input: in memory, out of core (a file or chunk source) or a Dask array.

        Out-of-core and Dask data are validated by the first pass over them
        (:meth:`moments`), not here: reading them twice would cost a pass.
        """
        v.check_params(self)
        if is_dask_array(X):
            from ..backends.dask import DaskData

            data = DaskData(X, sample_weight, self.chunk_size)
        else:
            source = as_chunk_source(X)
            if source is None:
                return MemoryData(*self._validate_fit_input(X, sample_weight), self.chunk_size)
            check_source(source)
            weights = (None if sample_weight is None
                       else v.check_sample_weight(sample_weight, source.shape[0]))
            data = OnDiskData(source, weights, self.chunk_size)
        self._check_n_samples(data.n_samples)
        # what validate_data(reset=True) records for arrays
        self.n_features_in_ = data.n_features
        if hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        return data

    def _fit(self, X, sample_weight):
        data = self._fit_data(X, sample_weight)
        C, cov_type, learned, n_active = self._model()
        random_state = check_random_state(self.random_state)
        # tied and full starts need the whole covariance; the others its diagonal
        mean, data_cov = data.moments(full=cov_type in ("tied", "full"))
        backend = data.backend(mean, centre=True)
        floor = Floor.from_variances(np.diag(data_cov), self._covariance_floor())
        config = EMConfig(
            learned_weights=learned, floor=floor, reg_covar=self._reg_covar(),
            max_iter=self.max_iter, tol=self.tol, outlier_capacity=min(C, 64),
        )
        estep = self._estep()
        # a neighbourhood search starts from each point's nearest seeds, found by
        # the first M-step's assignment pass
        seeded = isinstance(estep, Neighbourhood)
        best = None
        for _ in range(self.n_init):
            if seeded:
                backend.allocate_state(estep.state_shape(data.n_samples, C))
            if isinstance(self._init_means_spec(), str):
                X_seed, w_seed = data.seed_rows(C, random_state)
            else:  # given means: no rows needed (no pass over out-of-core data)
                X_seed, w_seed = np.empty((0, data.n_features), data.dtype), np.empty(0)
            start = self._start(X_seed, w_seed, backend, random_state, floor, data_cov,
                                seed_state=seeded)
            estep.start_fit(start, random_state)
            run = EMRun(backend, estep, start, config, callback=self._progress,
                        keep_state=seeded, moves=self._moves(estep, data)).run()
            final = self._final_pass(run, data, backend.offset)
            if best is None or final[1].free_energy > best[1][1].free_energy:
                best = (run, final)
            if run.interrupted:
                break
        run, (mixture, stats, labels) = best
        if not run.converged and not run.interrupted:
            warnings.warn(
                f"{type(self).__name__} did not converge in max_iter={self.max_iter} "
                f"iterations (tol={self.tol}); raise max_iter or tol",
                ConvergenceWarning, stacklevel=3,
            )
        self.converged_ = bool(run.converged)
        self.n_iter_ = int(run.n_iter)
        self.history_ = list(run.history)
        self.free_energy_history_ = np.array([r.free_energy for r in run.history]) / stats.weight
        self.lower_bound_ = stats.free_energy / stats.weight
        self._store(mixture, stats, labels, floor)
        return labels

    def _final_pass(self, run, data, offset):
        """E-step with the returned parameters, through the same path as ``predict``.

        Returns ``(mixture in data coordinates, stats, labels)``.
        """
        mixture = run.mixture.shifted(-offset)
        shift = self._offset_of(mixture, data.dtype)
        stats, labels = data.final_pass(run, mixture.shifted(shift), data.backend(shift))
        return mixture, stats, labels

    def _progress(self, record):
        if self.verbose:
            print(
                f"Iteration {record.iteration}: free energy {record.free_energy:.6g}, "
                f"change per sample {record.delta:.3g}, {record.seconds:.3f} s"
            )
        return False

    # ------------------------------------------------------- fitted mixture
    @staticmethod
    def _offset_of(mixture, dtype):
        """The shift used for scoring: the weighted mean of the means, rounded to dtype."""
        w = mixture.weights
        centre = (w @ mixture.means) / w.sum()
        return np.asarray(centre, dtype=dtype).astype(np.float64)

    def _map_rows(self, X, fn, out_shape, dtype=np.float64):
        """Apply ``fn(chunk X, mixture)`` chunk by chunk into one output array.

        In-memory input gives an ndarray, out-of-core input an ndarray (a
        memory-mapped temporary file when large), a Dask array a Dask array.
        """
        check_is_fitted(self)
        mixture = self._fitted_mixture()
        if is_dask_array(X):
            from ..backends.dask import map_rows

            return map_rows(X, fn, mixture, self._offset_of, out_shape(mixture), dtype,
                            self.n_features_in_)
        source = as_chunk_source(X)
        if source is None:
            X = validate_data(self, X, dtype=[np.float64, np.float32], order="C", reset=False)
            shift = self._offset_of(mixture, X.dtype)
            backend = InMemory(X, np.ones(X.shape[0]), shift, self.chunk_size)
            out = np.empty((X.shape[0], *out_shape(mixture)), dtype=dtype)
        else:
            check_source(source)
            if source.shape[1] != self.n_features_in_:
                raise ValueError(
                    f"X has {source.shape[1]} features, but {type(self).__name__} is expecting "
                    f"{self.n_features_in_} features as input."
                )
            shift = self._offset_of(mixture, source.dtype)
            backend = OnDisk(source, None, shift, self.chunk_size)
            out = spill_array((source.shape[0], *out_shape(mixture)), dtype)
        mixture = mixture.shifted(shift)
        for chunk in backend.chunks(mixture.n_components):
            if source is not None and not np.isfinite(chunk.X).all():
                raise ValueError(f"Input X contains NaN or infinity (in rows from {chunk.start})")
            out[chunk.start : chunk.start + chunk.X.shape[0]] = fn(chunk.X, mixture)
        return as_array(out)

    # ------------------------------------------------------------ inference
    def predict(self, X):
        """Most probable component of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray of shape (n_samples,), int64
        """
        # the same E-step as the fit's final pass, so fit_predict == fit().predict
        hard = Exhaustive(1)
        return self._map_rows(
            X, lambda x, m: hard.update(x, m, None).labels, lambda m: (), dtype=np.int64
        )

    def predict_proba(self, X):
        """Exact posterior ``p(c | x)`` over all components.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_components)
        """
        exact = Exhaustive(None)
        return self._map_rows(X, lambda x, m: exact.update(x, m, None).q, lambda m: (m.n_components,))

    def score_samples(self, X):
        """Exact log-density ``log p(x)`` of each sample under the fitted mixture.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        exact = Exhaustive(None)
        return self._map_rows(X, lambda x, m: exact.update(x, m, None).lse, lambda m: ())

    def score(self, X, y=None, sample_weight=None):
        """Mean (weighted) log-likelihood of ``X`` under the fitted mixture.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        float
        """
        ll = self.score_samples(X)
        w = v.check_sample_weight(sample_weight, ll.shape[0])
        return float(w @ ll / w.sum())

    def sample(self, n_samples=1):
        """Draw samples from the fitted mixture.

        Parameters
        ----------
        n_samples : int, default=1

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        labels : ndarray of shape (n_samples,)
            The component each sample was drawn from.
        """
        check_is_fitted(self)
        if not (isinstance(n_samples, (int, np.integer)) and n_samples >= 1):
            raise ValueError(f"n_samples must be a positive integer; got {n_samples!r}")
        rng = np.random.default_rng(
            check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        )
        return self._fitted_mixture().sample(int(n_samples), rng)

    def _n_parameters(self):
        learned = self._model()[2]
        return self._fitted_mixture().n_parameters(learned)

    def bic(self, X):
        """Bayesian information criterion: ``-2 log L + p log n`` (lower is better)."""
        n = _n_rows(X)
        return -2.0 * self.score(X) * n + self._n_parameters() * np.log(n)

    def aic(self, X):
        """Akaike information criterion: ``-2 log L + 2 p`` (lower is better)."""
        return -2.0 * self.score(X) * _n_rows(X) + 2.0 * self._n_parameters()


def _n_rows(X):
    """Number of samples of any input ``fit`` accepts."""
    source = None if hasattr(X, "shape") else as_chunk_source(X)
    if source is not None:
        return source.shape[0]
    return (X if hasattr(X, "shape") else np.asarray(X)).shape[0]


def mixture_from_attributes(means, weights, covariance_type, covariances):
    """Rebuild a :class:`Mixture` from scikit-learn-style fitted attributes."""
    means = np.asarray(means, dtype=np.float64)
    C, D = means.shape
    cov = COVARIANCE_TYPES[covariance_type].from_covariances(covariances, C, D)
    with np.errstate(divide="ignore"):
        log_weights = np.log(np.asarray(weights, dtype=np.float64))
    return Mixture(means, log_weights, cov)


__all__ = ["TruncatedMixtureMixin", "mixture_from_attributes", "rows_per_chunk"]
