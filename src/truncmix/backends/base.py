"""What every backend provides to the EM driver."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: default working-set budget for one chunk's work arrays, in bytes
DEFAULT_WORKING_MEMORY = 128 * 2**20

#: budget of one block of the data-moment passes (a few float64 copies of its rows)
MOMENT_WORKING_MEMORY = 32 * 2**20


@dataclass
class Chunk:
    """One block of rows as the E-step sees it.

    Attributes
    ----------
    start : int
        Global index of the first row.
    X : ndarray (n, D)
        The rows, shifted by the backend's offset (a private copy).
    weights : ndarray (n,), float64
    K : ndarray (n, C') int32 or None
        A writable view of the per-point state for these rows.
    """

    start: int
    X: np.ndarray
    weights: np.ndarray
    K: np.ndarray | None


class Backend:
    """What the backends share: the size of the data they read (``self.X``, or :attr:`data`)."""

    @property
    def data(self):
        return self.X

    @property
    def n_samples(self):
        return self.data.shape[0]

    @property
    def n_features(self):
        return self.data.shape[1]


def rows_per_chunk(n_samples, n_features, n_components, chunk_size=None,
                   working_memory=DEFAULT_WORKING_MEMORY):
    """Rows per chunk: ``chunk_size`` if given, else what fits the memory budget.

    A chunk holds a few (n, C) float64 work arrays (log-joints, posteriors) and a
    shifted copy of its rows.
    """
    if chunk_size is not None:
        return max(1, min(int(chunk_size), n_samples))
    per_row = 8 * (4 * n_components + 2 * n_features)
    return max(1, min(n_samples, working_memory // per_row))


def moment_rows(n_samples, n_features, chunk_size=None):
    """Rows per block of the passes that take the data's mean and covariance.

    Every backend uses this, so their float64 sums agree to the last bit.
    """
    return rows_per_chunk(n_samples, n_features, 1, chunk_size, MOMENT_WORKING_MEMORY)


# --------------------------------------------------- shared by the out-of-core backends
#: rows drawn to seed the means when the data is not in memory (k-means++ or
#: random rows then run on this weighted sample, see :func:`draw_positions`)
SEED_SAMPLE_ROWS = 100_000


def seed_draws(n_samples, n_components):
    """Rows to draw for seeding; ``n_samples`` or more means "use every row"."""
    return max(SEED_SAMPLE_ROWS, 10 * n_components)


@dataclass
class FirstPass:
    """One pass over the data: weight, moment sums about a reference row, validity.

    Sums are taken about ``ref`` (the first row: a data point, so within the
    data's spread of the mean, no cancellation of large numbers). Closed under
    ``+`` (a block's part plus another's), so backends sum it in order (in
    memory, out of core) or by tree reduction (Dask); every backend computes
    the blocks of :func:`moment_rows` the same way, so in order the sums agree
    to the last bit. Indices are global rows.
    """

    weight: float
    s1: np.ndarray  # (D,) sum_n w_n (x_n - ref)
    s2: np.ndarray  # (D, D) sum_n w_n (x_n - ref)(x_n - ref)^T, or its diagonal (D,)
    n_samples: int
    first_nonfinite: float = np.inf
    lo: np.ndarray | None = None  # (D,) smallest finite value of each feature
    hi: np.ndarray | None = None  # (D,) largest
    first_bad_weight: float = np.inf
    bad_weight_kind: str = ""

    @classmethod
    def of_block(cls, X, weights, start, ref, full=True, check=True):
        """The part of rows ``start .. start + len(X)``; ``weights`` None means ones."""
        n = X.shape[0]
        ref = np.asarray(ref, dtype=np.float64)
        if full:
            # the outer products by one matrix product
            d = np.asarray(X, dtype=np.float64) - ref
            wd = d if weights is None else d * weights[:, None]
            s1, s2 = wd.sum(axis=0), wd.T @ d
        else:
            from ..kernels.accumulate import centred_sums_into

            s1, s2 = np.zeros(X.shape[1]), np.zeros(X.shape[1])
            centred_sums_into(np.ascontiguousarray(X),
                              np.empty(0) if weights is None
                              else np.ascontiguousarray(weights, dtype=np.float64),
                              np.ascontiguousarray(ref), s1, s2)
        part = cls(weight=float(n if weights is None else weights.sum()), s1=s1, s2=s2,
                   n_samples=n)
        if not check:
            return part
        if not X.size:
            return part
        # reductions without temporaries; the bad row is looked for only when there is one
        from .._validation import column_extremes

        X = np.asarray(X)
        part.lo, part.hi = column_extremes(X)
        if not (np.isfinite(part.lo).all() and np.isfinite(part.hi).all()):
            finite = np.isfinite(X).all(axis=1)
            part.first_nonfinite = float(start + np.flatnonzero(~finite)[0])
            part.lo = X[finite].min(axis=0, initial=np.inf).astype(np.float64)
            part.hi = X[finite].max(axis=0, initial=-np.inf).astype(np.float64)
        if weights is not None:
            bad = ~np.isfinite(weights) | (weights < 0)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                part.first_bad_weight = float(start + i)
                part.bad_weight_kind = "non-finite" if not np.isfinite(weights[i]) else "negative"
        return part

    def __add__(self, other):
        if other == 0:
            return self
        first_bad = min(self.first_bad_weight, other.first_bad_weight)
        return FirstPass(
            self.weight + other.weight, self.s1 + other.s1, self.s2 + other.s2,
            self.n_samples + other.n_samples,
            min(self.first_nonfinite, other.first_nonfinite),
            _combine(np.minimum, self.lo, other.lo), _combine(np.maximum, self.hi, other.hi),
            first_bad,
            self.bad_weight_kind if first_bad == self.first_bad_weight else other.bad_weight_kind,
        )

    __radd__ = __add__

    def check(self, dtype, n_features):
        """Raise a ValueError for data or weights the fit cannot use (as in memory)."""
        if np.isfinite(self.first_nonfinite):
            raise ValueError(
                f"Input X contains NaN or infinity (first at row {int(self.first_nonfinite)})"
            )
        if np.isfinite(self.first_bad_weight):
            raise ValueError(
                f"sample_weight holds {self.bad_weight_kind} value(s) (first at index "
                f"{int(self.first_bad_weight)}); weights must be finite and >= 0"
            )
        if not self.weight > 0:
            raise ValueError("sample_weight sums to zero: at least one sample needs a positive weight")
        from .._validation import check_scale, check_total_weight

        check_total_weight(np.array([self.weight]))
        if self.lo is not None and np.isfinite(self.lo).all():
            # the same overflow and underflow rules as in memory, from each feature's range
            check_scale(np.array([self.lo, self.hi], dtype=dtype))

    def moments(self, ref):
        """Weighted mean and covariance (diagonal when only variances were summed)."""
        m1 = self.s1 / self.weight
        if self.s2.ndim == 2:
            cov = self.s2 / self.weight - np.outer(m1, m1)
        else:
            cov = np.diag(np.maximum(self.s2 / self.weight - m1 * m1, 0.0))
        return ref + m1, cov


def _combine(op, a, b):
    return b if a is None else a if b is None else op(a, b)


def draw_positions(total_weight, n_draws, random_state):
    """Sorted uniform positions in ``[0, W)``: rows drawn with probability ``w_n / W``.

    A row is picked where the running sum of the weights passes a position (see
    :func:`pick_rows`); drawing with replacement keeps this one sequential pass
    and the sample's weights are the draw counts.
    """
    return np.sort(random_state.uniform(0.0, total_weight, size=n_draws))


def pick_rows(weights, n_rows, positions):
    """Rows of one block hit by ``positions`` (relative to the block's first weight).

    Returns ``(rows, counts)``: distinct local row indices and how often each was drawn.
    """
    if weights is None:
        hit = positions.astype(np.int64)
    else:
        hit = np.searchsorted(np.cumsum(weights), positions, side="right")
    return np.unique(np.minimum(hit, n_rows - 1), return_counts=True)


class FitData:
    """Data as the estimators fit it, whatever holds it.

    Subclasses (:class:`~truncmix.backends.memory.MemoryData`,
    :class:`~truncmix.backends.ondisk.OnDiskData`,
    :class:`~truncmix.backends.dask.DaskData`) give :meth:`backend`; the fit
    then needs ``moments()`` (validating the data on the way),
    ``seed_rows(C, random_state)``, ``final_pass(run, mixture, backend)`` and
    the ``dtype``, ``n_samples`` and ``n_features`` of the data.
    """

    def __init__(self, data, weights, chunk_size, shape, dtype):
        self.data = data
        self.weights = weights
        self.chunk_size = chunk_size
        self.n_samples, self.n_features = (int(n) for n in shape)
        self.dtype = np.dtype(dtype)

    def backend(self, offset, centre=False):
        """The backend of the data shifted by ``offset`` (``centre``: a centred copy if cheap)."""
        raise NotImplementedError

    def moments(self, full=True):
        """Weighted mean and covariance of the data (float64; diagonal unless ``full``)."""
        return self.backend(np.zeros(self.n_features)).moments(full)

    def seed_rows(self, n_components, random_state):
        """Rows to seed the means from, and their weights."""
        return self.backend(np.zeros(self.n_features)).seed_rows(n_components, random_state)

    def new_labels(self):
        return np.empty(self.n_samples, dtype=np.int64)

    def final_pass(self, run, mixture, backend):
        """``run.finish`` with the labels of every point; returns ``(stats, labels)``."""
        labels = self.new_labels()
        return labelled_finish(run, backend, mixture, labels), labels


def labelled_finish(run, backend, mixture, labels):
    """``run.finish`` on an in-process backend, writing each point's label into ``labels``
    (an ndarray, or anything taking ``labels[start:stop] = values``)."""

    def collect(chunk, res):
        labels[chunk.start : chunk.start + chunk.X.shape[0]] = res.labels

    return run.finish(backend=backend, mixture=mixture, on_chunk=collect)
