"""Hyper-parameter rules, declared once per estimator and checked at ``fit``.

A small table of our own (no scikit-learn private API): each parameter maps to a
list of rules, and the value must satisfy one of them.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Interval:
    """A real or integral number in ``[low, high]`` (``None``: unbounded).

    ``closed`` is one of "both", "left", "right", "neither".
    """

    kind: type
    low: float | None
    high: float | None
    closed: str = "both"

    def accepts(self, value):
        if isinstance(value, bool):
            return False
        if self.kind is numbers.Integral and not isinstance(value, numbers.Integral):
            return False
        if not isinstance(value, numbers.Real) or not np.isfinite(value):
            return False
        lo_ok = self.low is None or (value >= self.low if self.closed in ("both", "left") else value > self.low)
        hi_ok = self.high is None or (value <= self.high if self.closed in ("both", "right") else value < self.high)
        return lo_ok and hi_ok

    def __str__(self):
        kind = "an int" if self.kind is numbers.Integral else "a float"
        left = "[" if self.closed in ("both", "left") else "("
        right = "]" if self.closed in ("both", "right") else ")"
        lo = "-inf" if self.low is None else self.low
        hi = "inf" if self.high is None else self.high
        return f"{kind} in the range {left}{lo}, {hi}{right}"


@dataclass(frozen=True)
class Options:
    """One of a fixed set of values (strings, or None)."""

    values: tuple

    def accepts(self, value):
        return any(value is v or (isinstance(value, str) and value == v) for v in self.values)

    def __str__(self):
        return "one of " + ", ".join(repr(v) for v in self.values)


class ArrayLike:
    """An array (checked for shape at fit time)."""

    def accepts(self, value):
        return isinstance(value, (np.ndarray, list, tuple)) or hasattr(value, "__array__")

    def __str__(self):
        return "an array-like"


class RandomStateLike:
    """None, an int seed, or a numpy RandomState / Generator."""

    def accepts(self, value):
        return (
            value is None
            or (isinstance(value, numbers.Integral) and not isinstance(value, bool))
            or isinstance(value, (np.random.RandomState, np.random.Generator))
        )

    def __str__(self):
        return "None, an int, or a numpy.random.RandomState"


def check_params(estimator):
    """Raise a ValueError naming the first parameter that breaks its rules."""
    for name, rules in type(estimator)._parameter_constraints.items():
        value = getattr(estimator, name)
        if not any(rule.accepts(value) for rule in rules):
            allowed = " or ".join(str(r) for r in rules)
            raise ValueError(
                f"The '{name}' parameter of {type(estimator).__name__} must be {allowed}. "
                f"Got {value!r} instead."
            )


def check_sample_weight(sample_weight, n_samples):
    """Sample weights as a float64 vector: finite, non-negative, not all zero."""
    if sample_weight is None:
        return np.ones(n_samples)
    if isinstance(sample_weight, numbers.Number):
        w = np.full(n_samples, float(sample_weight))
    else:
        try:
            w = np.asarray(sample_weight, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"sample_weight must be numeric: {exc}") from None
    if w.ndim != 1 or w.shape[0] != n_samples:
        raise ValueError(
            f"sample_weight.shape == {w.shape}, expected {(n_samples,)}: one weight per sample"
        )
    bad = ~np.isfinite(w)
    if bad.any():
        raise ValueError(
            f"sample_weight holds {int(bad.sum())} non-finite value(s) (first at index "
            f"{int(np.flatnonzero(bad)[0])}); weights must be finite"
        )
    if (w < 0).any():
        raise ValueError(
            f"sample_weight holds negative value(s) (first at index {int(np.flatnonzero(w < 0)[0])}); "
            "weights must be >= 0"
        )
    if not w.sum() > 0:
        raise ValueError("sample_weight sums to zero: at least one sample needs a positive weight")
    return w


#: the smallest variance the fit can meet, relative to the data's (the covariance
#: floor's smallest relative value, for a constant column, times its default)
_SMALLEST_RELATIVE_VARIANCE = 1e-18


#: the largest total sample weight: the M-step squares weighted sums, which must
#: not overflow (1e100 rows would be far beyond any data set)
MAX_TOTAL_WEIGHT = 1e100


def check_total_weight(weights):
    """Refuse sample weights so large that squared weighted sums overflow."""
    total = float(weights.sum())
    if not total <= MAX_TOTAL_WEIGHT:
        raise ValueError(
            f"sample_weight sums to {total:.3g} (more than {MAX_TOTAL_WEIGHT:.0e}): the M-step's "
            "weighted sums would overflow float64. Only the ratios of the weights matter: divide "
            "them by their largest value"
        )


def column_extremes(X):
    """Each column's smallest and largest value, as float64 arrays.

    NumPy reduces short rows along axis 0 slowly (one pass of D elements per
    row: 0.11 s for 1 000 000 x 16 float32); viewed as rows r times longer, then
    folded, the same values take 0.02 s.
    """
    n, D = X.shape
    r = max(1, 256 // D) if X.flags.c_contiguous and n >= 256 else 1
    m = (n // r) * r
    wide = X[:m].reshape(m // r, r * D)
    lo = wide.min(axis=0).reshape(r, D).min(axis=0)
    hi = wide.max(axis=0).reshape(r, D).max(axis=0)
    if m < n:
        lo = np.minimum(lo, X[m:].min(axis=0))
        hi = np.maximum(hi, X[m:].max(axis=0))
    return lo.astype(np.float64), hi.astype(np.float64)


def check_scale(X):
    """Refuse data whose squared distances overflow, or whose variances underflow, X's dtype.

    One pass for each feature's smallest and largest value. Precisions (inverse
    variances, down to 1e-18 of the data's variance for a constant column) must
    stay finite; all-identical rows (no spread at all) are fine.
    """
    if X.size == 0:
        return
    lo, hi = column_extremes(X)
    remedy = " or pass float64 data" if X.dtype == np.float32 else ""
    largest = float(max(np.max(np.abs(lo)), np.max(np.abs(hi))))
    limit = np.sqrt(np.finfo(X.dtype).max / (8.0 * X.shape[1]))
    if largest > limit:
        raise ValueError(
            f"X holds values up to {largest:.3g} in magnitude; squared distances between such "
            f"{X.dtype} values overflow (limit about {limit:.3g} for {X.shape[1]} features). "
            f"Rescale the data (e.g. divide by its largest magnitude){remedy}"
        )
    span = float(np.max(hi - lo))
    limit = 10.0 * np.sqrt(1.0 / (_SMALLEST_RELATIVE_VARIANCE * np.finfo(X.dtype).max))
    if 0.0 < span < limit:
        raise ValueError(
            f"X spans at most {span:.3g} in any feature; variances of such {X.dtype} values "
            f"underflow (each feature should span more than about {limit:.3g}). Rescale the "
            f"data (e.g. divide by its standard deviation){remedy}"
        )


def _listed(indices, limit=5):
    """``"3, 10, 12"`` or ``"3, 10, 12, 15, 20, ... (7 in all)"``."""
    head = ", ".join(str(i) for i in indices[:limit])
    return head if len(indices) <= limit else f"{head}, ... ({len(indices)} in all)"


def refuse_sparse(X):
    """Raise a TypeError for a sparse X, saying what a dense copy would cost."""
    import scipy.sparse as sp

    if sp.issparse(X):
        nbytes = X.shape[0] * X.shape[1] * 8
        raise TypeError(
            f"X is a sparse matrix of shape {X.shape}; truncmix needs dense data (the Gaussian "
            f"densities use every entry). Pass X.toarray() (a float64 copy takes "
            f"{nbytes / 2**20:.4g} MiB), or reduce the number of features first, e.g. with "
            "sklearn.decomposition.TruncatedSVD"
        )


def nonfinite_rows(X):
    """Boolean mask of the rows of X holding NaN or inf, or None if there are none."""
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(X.sum()):
            return None
    bad = ~np.isfinite(X).all(axis=1)
    return bad if bad.any() else None


def describe_nonfinite(X, bad, names=None):
    """Where the NaN / inf values are: ``"rows 3, 10 (of 60), columns 1, 2"``.

    Columns are named by ``names`` (e.g. a DataFrame's) when given.
    """
    rows = np.flatnonzero(bad)
    cols = np.flatnonzero(~np.isfinite(X[rows]).all(axis=0))
    if names is not None:
        cols = np.array([repr(str(names[c])) for c in cols], dtype=object)
    return (f"{'row' if len(rows) == 1 else 'rows'} {_listed(rows)} (of {X.shape[0]}), "
            f"{'column' if len(cols) == 1 else 'columns'} {_listed(cols)}")


def check_X(estimator, X, *, reset, missing="raise", action="fit"):
    """Validated 2-D float array for ``estimator``, and the mask of non-finite rows.

    Sparse input is refused with a TypeError that says how to densify it. Rows holding
    NaN or inf raise a ValueError naming them, unless ``missing == "drop"``; then
    their mask is returned (None when every row is finite).
    """
    from sklearn.utils.validation import validate_data

    refuse_sparse(X)
    try:
        X = validate_data(estimator, X, dtype=[np.float64, np.float32],
                          order="C", ensure_all_finite=False, reset=reset, ensure_min_samples=1)
    except ValueError as exc:
        if "inhomogeneous" in str(exc):
            raise ValueError(
                "X is ragged (its rows have different lengths); every sample needs the same "
                "number of features"
            ) from None
        raise
    bad = nonfinite_rows(X)
    if bad is None or missing == "drop":
        return X, bad
    if action == "fit":
        remedy = ("remove or impute them (e.g. sklearn.impute.SimpleImputer), or pass "
                  "missing='drop' to fit on the other rows")
    else:
        remedy = f"a mixture cannot {action} a point with missing values: remove or impute those rows"
    raise ValueError(
        f"Input X contains NaN or infinity in "
        f"{describe_nonfinite(X, bad, getattr(estimator, 'feature_names_in_', None))}; {remedy}"
    )


def count_distinct_rows(X, at_least):
    """The number of distinct rows of X, or any number >= ``at_least`` if there are that many.

    Equal rows have equal projections on a fixed direction, so the number of
    distinct projections is a lower bound; only when it is below ``at_least``
    are the rows themselves compared.
    """
    if X.shape[0] == 0:
        return 0
    direction = np.random.default_rng(7).standard_normal(X.shape[1])
    # usually the first few rows already hold enough distinct points
    if np.unique(X[: 4 * at_least] @ direction).size >= at_least:
        return at_least
    projection = X @ direction
    order = np.argsort(projection, kind="stable")
    if 1 + np.count_nonzero(np.diff(projection[order])) >= at_least:
        return at_least
    rows = X[order]
    return 1 + int(np.count_nonzero(np.any(rows[1:] != rows[:-1], axis=1)))
