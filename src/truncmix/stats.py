"""Sufficient statistics of one E-step, closed under ``+``.

Every chunk of data produces a :class:`SufficientStats`; the statistics of the
whole data set are their sum, in whatever order or grouping (threads, files,
Dask blocks). The M-step needs nothing else: not the data, not the chunking.

All sums are float64. Moments are taken about *anchors* (the means the E-step
used), so that the M-step's ``second - first first^T / N`` subtracts numbers of
the size of the clusters' spread, not of their distance from the origin.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._constants import MOMENT_MATRIX, MOMENT_SCALAR, MOMENT_VECTOR


@dataclass(frozen=True)
class Outliers:
    """The points with the lowest free-energy contribution seen so far.

    Kept so that an emptied component can be re-seeded at a point the model
    explains worst, without a second pass over the data. Merging keeps the
    ``capacity`` lowest scores; ties go to the smaller global row index, so the
    result does not depend on the chunking.
    """

    scores: np.ndarray  # (m,) per-point log sum_{c in K_n} exp l_n(c)
    rows: np.ndarray  # (m,) global row indices
    points: np.ndarray  # (m, D) the points, in the driver's (shifted) coordinates
    capacity: int

    @classmethod
    def select(cls, scores, rows, points, capacity):
        """Keep the ``capacity`` lowest scores (ties: smaller row)."""
        order = np.lexsort((rows, scores))[:capacity]
        return cls(scores[order], rows[order], np.asarray(points[order], dtype=np.float64), capacity)

    @classmethod
    def from_chunk(cls, lse, weights, X, offset, capacity):
        """The worst points of one chunk (zero-weight points are never chosen)."""
        if capacity <= 0 or lse.shape[0] == 0:
            return cls.among(lse, X, (), offset, capacity)
        from .kernels.topk import kth_lowest

        lse = np.ascontiguousarray(lse, dtype=np.float64)
        weights = np.ascontiguousarray(weights, dtype=np.float64)
        # every point tied with the capacity-th lowest score is kept, so the
        # final choice is made by the global (score, row) order (one compiled
        # pass: argpartition with its index copies took 4 ms per 333 000 rows)
        cut = kth_lowest(lse, weights, capacity)
        return cls.among(lse, X, np.flatnonzero((lse <= cut) & (weights > 0)), offset, capacity)

    @classmethod
    def among(cls, lse, X, rows, offset, capacity):
        """The worst points of one chunk, among ``rows`` (weighted rows that hold them)."""
        rows = np.asarray(rows, dtype=np.int64)
        if capacity <= 0 or rows.size == 0:
            return cls(np.empty(0), np.empty(0, np.int64), np.empty((0, X.shape[1])), capacity)
        return cls.select(lse[rows], rows + offset, X[rows], capacity)

    def __add__(self, other):
        return Outliers.select(
            np.concatenate([self.scores, other.scores]),
            np.concatenate([self.rows, other.rows]),
            np.concatenate([self.points, other.points]),
            max(self.capacity, other.capacity),
        )


@dataclass(frozen=True)
class SufficientStats:
    """What one E-step over some data contributes to the M-step.

    Attributes
    ----------
    resp : ndarray (C,)
        ``N_c = sum_n w_n q_n(c)``.
    first : ndarray (C, D)
        ``sum_n w_n q_n(c) (x_n - a_c)``, about the anchors ``a``.
    second : ndarray
        The second moment of ``x_n - a_c`` in the form the covariance type needs:
        (C,) squared norms, (C, D) squares, (C, D, D) outer products, or (D, D)
        outer products summed over components (tied).
    anchors : ndarray (C, D)
        The means the moments are taken about (identical in every part).
    free_energy : float
        ``sum_n w_n log sum_{c in K_n} exp l_n(c)``.
    weight : float
        ``sum_n w_n``.
    n_samples : int
    n_evals : int
        Number of log-joint evaluations the E-step made.
    n_changed : int
        Points whose truncated set changed since the previous E-step.
    outliers : Outliers
    extra : object or None
        What the E-step strategy gathers for itself (e.g. neighbourhood scores);
        any object closed under ``+``, or None.
    """

    resp: np.ndarray
    first: np.ndarray
    second: np.ndarray
    anchors: np.ndarray
    free_energy: float
    weight: float
    n_samples: int
    n_evals: int
    n_changed: int
    outliers: Outliers = field(repr=False)
    extra: object = field(default=None, repr=False)

    def __add__(self, other):
        if not isinstance(other, SufficientStats):
            return NotImplemented
        return SufficientStats(
            resp=self.resp + other.resp,
            first=self.first + other.first,
            second=self.second + other.second,
            anchors=self.anchors,
            free_energy=self.free_energy + other.free_energy,
            weight=self.weight + other.weight,
            n_samples=self.n_samples + other.n_samples,
            n_evals=self.n_evals + other.n_evals,
            n_changed=self.n_changed + other.n_changed,
            outliers=self.outliers + other.outliers,
            extra=_add_optional(self.extra, other.extra),
        )

    def __radd__(self, other):
        # lets sum() start from 0
        if other == 0:
            return self
        return NotImplemented


def _add_optional(a, b):
    if a is None:
        return b
    return a if b is None else a + b


def accumulate_dense(X, weights, q, anchors, moment, shared):
    """Statistics for dense posteriors (every point over every component).

    Matrix products instead of a scatter: used when C' = C (exact EM).

    Parameters
    ----------
    X : ndarray (n, D), float32 or float64
    weights : ndarray (n,)
    q : ndarray (n, C), rows sum to one
    anchors : ndarray (C, D)
    moment : int
    shared : bool

    Returns
    -------
    resp, first, second : float64 ndarrays, as in :class:`SufficientStats`.
    """
    r = q if np.all(weights == 1.0) else q * weights[:, None]
    n, D = X.shape
    if moment in (MOMENT_SCALAR, MOMENT_VECTOR):
        # one product reads the n x C posteriors once: r^T [1, x, x^2]
        # (x^2 per feature, or its sum over features for the scalar moment)
        width = 1 + D + (1 if moment == MOMENT_SCALAR else D)
        Z = np.empty((n, width))
        Z[:, 0] = 1.0
        Z[:, 1 : 1 + D] = X
        if moment == MOMENT_SCALAR:
            np.einsum("ij,ij->i", Z[:, 1 : 1 + D], Z[:, 1 : 1 + D], out=Z[:, 1 + D])
        else:
            np.multiply(Z[:, 1 : 1 + D], Z[:, 1 : 1 + D], out=Z[:, 1 + D :])
        sums = r.T @ Z
        return moments_about(sums[:, 0].copy(), sums[:, 1:], anchors, moment)
    X = np.asarray(X, dtype=np.float64)
    resp = r.sum(axis=0)
    rx = r.T @ X  # (C, D): sum r x
    first = rx - resp[:, None] * anchors
    if shared:
        # sum_c sum_n r_nc (x - a_c)(x - a_c)^T
        second = (X * r.sum(axis=1)[:, None]).T @ X
        cross = anchors.T @ rx  # sum_c a_c (sum_n r x)^T
        second -= cross + cross.T
        second += (anchors * resp[:, None]).T @ anchors
    else:
        # sum_n r_nc x x^T for all c as one product with the rows' outer
        # products (in blocks of rows to bound memory), then moved to the anchors
        C, D = anchors.shape
        outer = np.zeros((C, D * D))
        step = max(1, (1 << 21) // (D * D))
        for s in range(0, X.shape[0], step):
            xb = X[s : s + step]
            outer += r[s : s + step].T @ (xb[:, :, None] * xb[:, None, :]).reshape(len(xb), D * D)
        second = outer.reshape(C, D, D)
        cross = np.einsum("cd,ce->cde", anchors, rx)
        second -= cross + np.swapaxes(cross, 1, 2)
        second += resp[:, None, None] * np.einsum("cd,ce->cde", anchors, anchors)
    return resp, first, second


def moments_about(resp, raw, anchors, moment):
    """Statistics about the anchors from raw sums, for the scalar and vector moments.

    Parameters
    ----------
    resp : ndarray (C,)
        ``sum_n r_nc``.
    raw : ndarray (C, D + 1) or (C, 2 D)
        ``sum_n r_nc [x_n, ||x_n||^2]`` (``MOMENT_SCALAR``) or
        ``sum_n r_nc [x_n, x_n^2]`` (``MOMENT_VECTOR``).
    anchors : ndarray (C, D)
    moment : int

    Returns
    -------
    resp, first, second : as in :class:`SufficientStats`.
    """
    D = anchors.shape[1]
    rx = raw[:, :D]
    first = rx - resp[:, None] * anchors
    if moment == MOMENT_SCALAR:
        second = (raw[:, D] - 2.0 * np.einsum("cd,cd->c", anchors, rx)
                  + resp * np.einsum("cd,cd->c", anchors, anchors))
    else:
        second = raw[:, D:] - 2.0 * anchors * rx + resp[:, None] * anchors**2
    return resp, first, second


def empty_second(moment, shared, n_components, n_features):
    """A zero second moment of the right shape."""
    C, D = n_components, n_features
    if moment == MOMENT_SCALAR:
        return np.zeros(C)
    if moment == MOMENT_VECTOR:
        return np.zeros((C, D))
    return np.zeros((D, D)) if shared else np.zeros((C, D, D))


__all__ = ["SufficientStats", "Outliers", "accumulate_dense", "empty_second", "from_posterior",
           "moments_about"]


def from_posterior(X, weights, K, q, lse, anchors, moment, shared, *, n_evals, n_changed,
                   offset, outlier_capacity, extra=None, moments=None, totals=None, lowest=None):
    """Statistics of one chunk from its truncated posteriors.

    Parameters
    ----------
    X : ndarray (n, D)
        The chunk, in the driver's coordinates.
    weights : ndarray (n,)
    K : ndarray (n, C') int32, or None
        Truncated sets; ``None`` means every component (``q`` is then (n, C)).
    q : ndarray (n, C') or (n, C)
    lse : ndarray (n,)
        Per-point ``log sum_{c in K_n} exp l_n(c)``.
    anchors : ndarray (C, D)
    moment, shared :
        The covariance type's needs (see :mod:`truncmix._constants`).
    n_evals, n_changed : int
    offset : int
        Global index of the chunk's first row.
    outlier_capacity : int
        How many worst-explained points to remember for re-seeding.
    extra : object or None
        The E-step strategy's own statistics (see :class:`SufficientStats`).
    moments : tuple or None
        ``(resp, first, second)`` about ``anchors`` for ``moment``, already
        computed by the E-step; None accumulates them here.
    totals : tuple or None
        ``(sum w lse, sum w)``, already computed by the E-step; None sums them here.
    lowest : tuple or None
        ``(rows, k)`` from the E-step: rows holding the chunk's k weighted
        rows of lowest (lse, row). With ``k >= outlier_capacity`` the outliers
        are chosen among them (the same points as from the whole chunk).

    Returns
    -------
    SufficientStats
    """
    if moments is not None:
        resp, first, second = moments
    elif K is None:
        resp, first, second = accumulate_dense(X, weights, q, anchors, moment, shared)
    else:
        from .kernels.accumulate import accumulate

        resp, first, second = accumulate(X, weights, K, q, anchors, moment, shared, anchors.shape[0])
    if totals is None:
        # an elementwise sum, not a BLAS dot: no thread start-up for one vector
        totals = (np.sum(weights * lse), weights.sum())
    return SufficientStats(
        resp=resp,
        first=first,
        second=second,
        anchors=anchors,
        free_energy=float(totals[0]),
        weight=float(totals[1]),
        n_samples=X.shape[0],
        n_evals=int(n_evals),
        n_changed=int(n_changed),
        outliers=(Outliers.among(lse, X, lowest[0], offset, outlier_capacity)
                  if lowest is not None and lowest[1] >= outlier_capacity
                  else Outliers.from_chunk(lse, weights, X, offset, outlier_capacity)),
        extra=extra,
    )
