"""What KMeans and TruncatedGaussianMixture share: fitting, scoring, sampling."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .. import _validation as v
from .._validation import Interval, Options, RandomStateLike
from ..backends import InMemory, as_chunk_source, is_dask_array
from ..backends.base import rows_per_chunk
from ..backends.memory import MemoryData
from ..backends.ondisk import OnDisk, OnDiskData, as_array, check_source, spill_array
from ..em import EMConfig, EMRun, _small_blas
from ..estep import Exhaustive
from ..estep.bounded import Bounded
from ..estep.neighbourhood import Neighbourhood, NeighbourScores
from ..moves import swap_moves
from ..exceptions import (
    ConvergenceWarning,
    DegenerateComponentWarning,
    DroppedRowsWarning,
    FitInterruptedWarning,
)
from ..init import data_covariance, first_m_step, initial_means
from ..model.covariance import COVARIANCE_TYPES, Floor
from ..model.mixture import Mixture

import warnings


#: the numpydoc entries of the search parameters, shared by both estimators
SEARCH_PARAMETERS_DOC = """search : {"exhaustive", "neighbourhood"}, default="exhaustive"
        How each point's truncated set is searched. "exhaustive" scores every
        component (cost grows with C). "neighbourhood" scores only the
        neighbours of the point's current components plus ``n_random`` random
        ones (var-GMM-S / vc-GMM): the cost of an iteration grows with
        ``n_neighbors``, not with C, and the free energy still never
        decreases, but a fixed point is only locally optimal. Neighbourhoods are
        learnt from the E-step's own log-joints. Used only when fewer than all
        components are kept.
    n_neighbors : int, default=5
        G, the size of each component's neighbourhood (itself included).
    n_random : int, default=1
        E, random candidate components per point and iteration.
    coreset_size : int or None, default=None
        Seed on a lightweight coreset of this many weighted points (Bachem,
        Lucic and Krause 2018) instead of the whole data: seeding then costs
        O(coreset_size C D) instead of O(N C D). The fit itself uses all data.
    swaps : "auto" or int, default="auto"
        Most global swap moves per iteration for hard fits (C' = 1) with
        ``search="neighbourhood"``: a redundant component jumps to a badly
        explained point when that raises the free energy (exactly computed; see
        :mod:`truncmix.moves`). They repair what local search cannot, such as
        two components in one cluster and none in another. "auto" allows
        ``1 + C // 20``; 0 turns them off. The exhaustive search never swaps,
        so that k-means stays exactly Lloyd's algorithm."""


#: the numpydoc entry of ``missing``, shared by both estimators
MISSING_PARAMETER_DOC = """missing : {"raise", "drop"}, default="raise"
        What ``fit`` does with rows holding NaN or infinite values: raise a
        ValueError naming them, or leave them out of the fit with a
        :class:`~truncmix.exceptions.DroppedRowsWarning` (``n_dropped_`` counts
        them, ``labels_``, ``fit_predict`` and ``predict`` give them the label
        -1). The other methods (``predict_proba``, ``score_samples``, ...) always
        refuse such rows."""


def with_search_parameters(cls):
    """Class decorator: put :data:`SEARCH_PARAMETERS_DOC` and
    :data:`MISSING_PARAMETER_DOC` into the docstring."""
    cls.__doc__ = (cls.__doc__.replace("%(search_parameters)s", SEARCH_PARAMETERS_DOC)
                   .replace("%(missing_parameter)s", MISSING_PARAMETER_DOC))
    return cls


#: parameter constraints both estimators share (search, chunking, input handling)
SHARED_CONSTRAINTS = {
    "random_state": [RandomStateLike()],
    "verbose": [Interval(numbers.Integral, 0, None)],
    "chunk_size": [Interval(numbers.Integral, 1, None), Options((None,))],
    "search": [Options(("exhaustive", "neighbourhood"))],
    "n_neighbors": [Interval(numbers.Integral, 1, None)],
    "n_random": [Interval(numbers.Integral, 0, None)],
    "coreset_size": [Interval(numbers.Integral, 1, None), Options((None,))],
    "swaps": [Interval(numbers.Integral, 0, None), Options(("auto",))],
    "missing": [Options(("raise", "drop"))],
}


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
        C, cov_type, learned, n_active = self._model()
        means = initial_means(X, weights, C, self._init_means_spec(), random_state,
                              coreset_size=self.coreset_size)
        self._check_init_means(means, X.shape[1])
        if cov_type == "isotropic" and not learned and n_active == 1:
            # Lloyd's model: the assignment to the seeds does not depend on
            # sigma^2, so a first M-step about them would only repeat the first
            # iteration's E-step. The seeds start with the data's variance, and
            # that E-step (a neighbourhood search's first pass, over points
            # without sets) is the first assignment.
            return Mixture.with_equal_weights(
                means - backend.offset, data_covariance(cov_type, C, data_cov, floor))
        return first_m_step(
            backend, means - backend.offset, cov_type, data_cov,
            learned_weights=learned, floor=floor, reg_covar=self._reg_covar(),
            seed_state=seed_state,
        )

    def _em_config(self, data_cov):
        """The variance floor and the :class:`EMConfig` of a fit on data of covariance ``data_cov``."""
        C, _, learned, _ = self._model()
        floor = Floor.from_variances(np.diag(data_cov), self._covariance_floor())
        config = EMConfig(
            learned_weights=learned, floor=floor, reg_covar=self._reg_covar(),
            max_iter=self.max_iter, tol=self.tol, outlier_capacity=min(C, 64),
        )
        return floor, config

    def _run_in_memory(self, X, weights, backend, random_state, data_cov):
        """One run of this estimator on a prepared in-memory backend; no final pass.

        For fits that only start another one (``TruncatedGaussianMixture(init=
        "k-means")``): the data is already validated, its moments known and a
        centred copy made, so none of that is done again, and the final E-step
        is left out (the fit that follows starts with its own). ``X`` and
        ``weights`` are the rows to seed from (data coordinates); ``backend``
        gets the run's per-point state. A Ctrl-C is passed on.

        Returns
        -------
        EMRun
            Its ``mixture`` is in the backend's coordinates; with the
            neighbourhood search, ``backend.state`` holds each point's sets as
            the last iteration (and its swap moves) left them.
        """
        C = self._model()[0]
        floor, config = self._em_config(data_cov)
        estep = self._estep()
        seeded = isinstance(estep, Neighbourhood)
        backend.allocate_state(estep.state_shape(backend.n_samples, C) if seeded else None)
        start = self._start(X, weights, backend, random_state, floor, data_cov,
                            seed_state=seeded)
        estep.start_fit(start, random_state)
        run = EMRun(backend, estep, start, config, keep_state=seeded,
                    moves=self._moves(estep, True)).run()
        if run.interrupted:
            raise KeyboardInterrupt
        return run

    def _moves(self, estep, in_memory):
        """Global swap moves for hard neighbourhood fits, or None."""
        C = self._model()[0]
        if not isinstance(estep, Neighbourhood) or estep.kept(C) != 1:
            return None
        limit = 1 + C // 20 if self.swaps == "auto" else int(self.swaps)
        if limit == 0:
            return None
        if not in_memory:
            # swaps read the rows of a few components at random places: in memory only
            if self.swaps != "auto":
                warnings.warn(f"swaps={self.swaps} is ignored: swap moves need the data in "
                              "memory (out-of-core and Dask fits run without them)",
                              UserWarning, stacklevel=4)
            return None

        def moves(backend, mixture, stats):
            if not isinstance(stats.extra, NeighbourScores):
                return mixture, 0
            return swap_moves(backend, mixture, stats.extra, limit, table=estep.table,
                              on_move=estep.moved, min_gain=self.tol * stats.weight)

        return moves

    def _estep(self, data=None):
        """The E-step strategy the parameters ask for (``data``: the FitData being fitted)."""
        C, cov_type, learned, n_active = self._model()
        kept = C if n_active is None else min(n_active, C)
        if self.search == "neighbourhood" and kept < C:
            return Neighbourhood(kept, n_neighbors=self.n_neighbors, n_random=self.n_random)
        # Lloyd's model ranks by distance alone: group bounds skip most of it
        if (data is not None and kept == 1 and cov_type == "isotropic" and not learned
                and self._bounds_wanted(isinstance(data, MemoryData))):
            return Bounded(data.n_samples, data.n_features)
        return Exhaustive(n_active, dense_stats=True)

    def _bounds_wanted(self, in_memory):
        """Whether a hard isotropic equal-weight fit uses :class:`Bounded` (in memory)."""
        return in_memory

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
        """Checked ``(X, weights, kept)``; ``kept`` masks the rows fitted (None: all)."""
        v.check_params(self)
        X, bad = v.check_X(self, X, reset=True, missing=self.missing)
        weights = v.check_sample_weight(sample_weight, X.shape[0])
        kept = None
        if bad is not None:
            n_bad = int(bad.sum())
            if n_bad == X.shape[0]:
                raise ValueError("Input X contains NaN or infinity in every row: nothing is left to fit")
            warnings.warn(DroppedRowsWarning(
                f"missing='drop': dropped {n_bad} of {X.shape[0]} rows holding NaN or infinite "
                f"values ({v.describe_nonfinite(X, bad, getattr(self, 'feature_names_in_', None))}); "
                "labels_ marks them with -1", n_bad,
            ), stacklevel=4)
            kept = ~bad
            X, weights = X[kept], weights[kept]
            if not weights.sum() > 0:
                raise ValueError("every row with a positive sample_weight holds NaN or infinity")
        self._check_n_samples(X.shape[0])
        C = self._model()[0]
        n_weighted = int(np.count_nonzero(weights))
        if n_weighted < C:
            raise ValueError(
                f"only {n_weighted} of the {X.shape[0]} samples have a positive sample_weight, "
                f"fewer than {self._count_name}={C}: zero-weight samples do not count"
            )
        v.check_scale(X)
        v.check_total_weight(weights)
        self._warn_few_distinct(X, weights, C)
        return X, weights, kept

    def _warn_few_distinct(self, X, weights, C):
        """Warn when fewer distinct points than components carry weight."""
        if C == 1:
            return
        # (indexing copies X: only when some rows have zero weight)
        weighted = X if weights.all() else X[weights > 0]
        distinct = v.count_distinct_rows(weighted, at_least=C)
        if distinct < C:
            warnings.warn(
                f"X has only {distinct} distinct point(s) with positive weight but "
                f"{self._count_name}={C}: at most {distinct} component(s) can hold distinct "
                "points; the others will coincide with them or end up empty",
                DegenerateComponentWarning, stacklevel=5,
            )

    def _check_n_samples(self, n_samples):
        C = self._model()[0]
        if n_samples < C:
            raise ValueError(
                f"n_samples={n_samples} should be >= {self._count_name}={C}: "
                f"a mixture cannot have more components than there are samples"
            )

    def _fit_data(self, X, sample_weight):
        """The fit input and the mask of rows kept (None: all).

        In memory, out of core (a file or chunk source) or a Dask array.
        Out-of-core and Dask data are validated by the first pass over them
        (:meth:`moments`), not here: reading them twice would cost a pass; they
        refuse NaN and inf whatever ``missing`` says (rows cannot be dropped
        from a file without rewriting it).
        """
        if is_dask_array(X):
            from ..backends.dask import DaskData

            v.check_params(self)
            data = DaskData(X, sample_weight, self.chunk_size)
        else:
            source = as_chunk_source(X)
            if source is None:
                X, weights, kept = self._validate_fit_input(X, sample_weight)
                return MemoryData(X, weights, self.chunk_size), kept
            v.check_params(self)
            check_source(source)
            weights = (None if sample_weight is None
                       else v.check_sample_weight(sample_weight, source.shape[0]))
            data = OnDiskData(source, weights, self.chunk_size)
        self._check_n_samples(data.n_samples)
        # what validate_data(reset=True) records for arrays
        self.n_features_in_ = data.n_features
        if hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        return data, None

    def _fit(self, X, sample_weight):
        data, kept = self._fit_data(X, sample_weight)
        C, cov_type, learned, n_active = self._model()
        random_state = check_random_state(self.random_state)
        with _small_blas(data.n_features):
            # a sum over all rows: with one BLAS thread (as the M-step has when
            # D is small) its rounding does not depend on BLAS's thread count.
            # Tied and full starts need the whole covariance; the others its diagonal
            mean, data_cov = data.moments(full=cov_type in ("tied", "full"))
        backend = data.backend(mean, centre=True)
        floor, config = self._em_config(data_cov)
        estep = self._estep(data)
        # a neighbourhood search starts from each point's nearest seeds, found by
        # the first M-step's assignment pass
        seeded = isinstance(estep, Neighbourhood)
        best = None
        for _ in range(self.n_init):
            try:
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
                            keep_state=seeded,
                            moves=self._moves(estep, isinstance(data, MemoryData))).run()
            except KeyboardInterrupt:
                # Ctrl-C while seeding a later run: keep the best run so far
                if best is None:
                    raise
                warnings.warn("fit interrupted while starting a new run; keeping the best run so far",
                              FitInterruptedWarning, stacklevel=3)
                break
            final = self._finish_run(run, data, backend.offset)
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
        self._warn_empty(mixture, stats)
        if kept is not None:
            labels_all = np.full(kept.shape[0], -1, dtype=labels.dtype)
            labels_all[kept] = labels
            labels = labels_all
        self.n_dropped_ = 0 if kept is None else int((~kept).sum())
        self.converged_ = bool(run.converged)
        self.n_iter_ = int(run.n_iter)
        self.history_ = list(run.history)
        self.free_energy_history_ = np.array([r.free_energy for r in run.history]) / stats.weight
        self.lower_bound_ = stats.free_energy / stats.weight
        self._store(mixture, stats, labels, floor)
        return labels

    def _finish_run(self, run, data, offset):
        """:meth:`_final_pass`; a Ctrl-C during it is noted and the pass done again.

        The pass is one E-step; without it the run's parameters would have no
        labels or free energy. A second Ctrl-C aborts the fit.
        """
        try:
            return self._final_pass(run, data, offset)
        except KeyboardInterrupt:
            if not run.history:
                raise
            if not run.interrupted:
                run.interrupted = True
                warnings.warn(
                    f"fit interrupted after {run.n_iter} iterations; keeping the parameters of "
                    "the last completed M-step (finishing its E-step; Ctrl-C again to abort)",
                    FitInterruptedWarning, stacklevel=4,
                )
            del run.history[run.n_iter:]  # a partial final record, if any
            return self._final_pass(run, data, offset)

    def _warn_empty(self, mixture, stats):
        """Name the components the returned parameters give no data to."""
        empty = np.flatnonzero(mixture.alive & ~(stats.resp > np.finfo(float).eps * stats.weight))
        if empty.size:
            warnings.warn(
                f"component(s) {empty.tolist()} of the fitted model hold no data at the "
                "returned parameters (too few distinct points to re-seed them); they keep "
                "their last parameters",
                DegenerateComponentWarning, stacklevel=4,
            )

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

    def _chunks(self, X, missing="raise"):
        """Validated X, its chunks in centred coordinates with the fitted mixture,
        and the mask of rows holding NaN or inf (left out; None if there are none)."""
        check_is_fitted(self)
        X, bad = v.check_X(self, X, reset=False, missing=missing, action="score")
        if bad is not None:
            X = X[~bad]
        mixture = self._fitted_mixture()
        shift = self._offset_of(mixture, X.dtype)
        backend = InMemory(X, np.ones(X.shape[0]), shift, self.chunk_size)
        return X, mixture.shifted(shift), backend.chunks(mixture.n_components), bad

    def _map_rows(self, X, fn, out_shape, dtype=np.float64, missing_value=None):
        """Apply ``fn(chunk X, mixture)`` chunk by chunk into one output array.

        With ``missing="drop"`` and a ``missing_value``, rows holding NaN or inf
        get that value; otherwise they are refused. Out-of-core input gives an
        ndarray (a memory-mapped temporary file when large), a Dask array a
        Dask array (see :meth:`_map_rows_large`).
        """
        check_is_fitted(self)
        if is_dask_array(X) or as_chunk_source(X) is not None:
            return self._map_rows_large(X, fn, out_shape, dtype)
        drop = missing_value is not None and self.missing == "drop"
        X, mixture, chunks, bad = self._chunks(X, "drop" if drop else "raise")
        out = np.empty((X.shape[0], *out_shape(mixture)), dtype=dtype)
        for chunk in chunks:
            out[chunk.start : chunk.start + chunk.X.shape[0]] = fn(chunk.X, mixture)
        if bad is not None:
            full = np.full((bad.shape[0], *out.shape[1:]), missing_value, dtype=dtype)
            full[~bad] = out
            out = full
        return out

    def _map_rows_large(self, X, fn, out_shape, dtype):
        """:meth:`_map_rows` for out-of-core and Dask input (NaN or inf is refused)."""
        mixture = self._fitted_mixture()
        if is_dask_array(X):
            from ..backends.dask import map_rows

            return map_rows(X, fn, mixture, self._offset_of, out_shape(mixture), dtype,
                            self.n_features_in_)
        source = as_chunk_source(X)
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
            if not np.isfinite(chunk.X).all():
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
            With ``missing="drop"``, -1 for rows holding NaN or inf (as in
            ``labels_``); otherwise such rows raise a ValueError.
        """
        # the same E-step as the fit's final pass, so fit_predict == fit().predict
        hard = Exhaustive(1)
        return self._map_rows(
            X, lambda x, m: hard.update(x, m, None).labels, lambda m: (), dtype=np.int64,
            missing_value=-1,
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
