"""Covariance structures: one small class per type, all with the same methods.

Every class turns data into squared Mahalanobis distances (through BLAS), knows its
log-normaliser, re-estimates itself from :class:`~truncmix.stats.SufficientStats`
(the M-step), applies the variance floor by clipping (so the free energy stays
monotone), and converts to and from scikit-learn's attribute forms.

All parameters are float64. Covariances are invariant to the shift that the
driver applies to the data, so they never need to know about it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

import numpy as np
from scipy import linalg

from .._constants import MOMENT_MATRIX, MOMENT_SCALAR, MOMENT_VECTOR

LOG_2PI = np.log(2.0 * np.pi)

#: relative floors below this are raised to it, so Cholesky factors stay defined
MIN_RELATIVE_FLOOR = 1e-12


@dataclass(frozen=True)
class Floor:
    """Variance floor, relative to the data's own per-feature variances.

    The constraint is ``Sigma >= relative * diag(scale)`` (for matrices, in the
    Loewner order). Clipping to it is the exact constrained maximiser of the
    free energy, so the M-step keeps the free energy monotone.

    Attributes
    ----------
    relative : float
        The factor epsilon (``covariance_floor``).
    scale : ndarray of shape (n_features,)
        Per-feature data variances (zero variances replaced by a small positive
        multiple of the mean variance).
    """

    relative: float
    scale: np.ndarray

    @classmethod
    def from_variances(cls, variances, relative):
        """Build a floor from the per-feature variances of the training data."""
        v = np.asarray(variances, dtype=np.float64)
        mean = float(v.mean()) if v.size and np.isfinite(v).all() and v.mean() > 0 else 1.0
        v = np.maximum(np.nan_to_num(v, nan=mean, posinf=mean), 1e-12 * mean)
        return cls(max(float(relative), MIN_RELATIVE_FLOOR), v)

    @property
    def per_feature(self):
        """Floor on each diagonal variance, shape (n_features,)."""
        return self.relative * self.scale

    @property
    def scalar(self):
        """Floor on an isotropic variance: relative times the mean variance."""
        return self.relative * float(self.scale.mean())


def squared_distances(X, means):
    """``||x - mu||^2`` for all rows and means by one GEMM, clamped at zero.

    The product runs in ``X``'s dtype (float32 stays float32); the result is
    float64.
    """
    means_x = means.astype(X.dtype, copy=False)
    cross = X @ means_x.T
    x_sq = np.einsum("ij,ij->i", X, X, dtype=np.float64)
    m_sq = np.einsum("ij,ij->i", means, means)
    d2 = np.multiply(cross, -2.0, dtype=np.float64)
    d2 += x_sq[:, None]
    d2 += m_sq[None, :]
    np.maximum(d2, 0.0, out=d2)
    return d2


def _cholesky_lower(cov):
    """Lower Cholesky factor(s) of a (..., D, D) array."""
    return np.linalg.cholesky(cov)


def _precision_cholesky(lower):
    """``L^{-T}`` for each lower factor: the upper factor scikit-learn reports.

    A stack of factors is inverted in one batched call (a loop of C small
    triangular solves costs more in call overhead than in arithmetic).
    """
    if lower.ndim == 2:
        D = lower.shape[0]
        return linalg.solve_triangular(lower, np.eye(D), lower=True).T
    inv = np.linalg.inv(lower)
    # the inverse of a lower-triangular matrix is lower-triangular: drop rounding
    return np.swapaxes(np.tril(inv), 1, 2)


def clip_matrix(cov, floor):
    """Clip the eigenvalues of ``cov`` from below at ``floor``, in the data's scale.

    With ``S = diag(floor.scale)`` the constraint is ``S^-1/2 Sigma S^-1/2 >=
    relative * I``; clipping the eigenvalues of the whitened matrix and mapping
    back is the exact maximiser of the Gaussian likelihood under it.

    Parameters
    ----------
    cov : ndarray of shape (..., D, D), symmetric
    floor : Floor

    Returns
    -------
    cov : ndarray, the same shape, and n_clipped : int
        How many matrices had to be clipped.
    """
    s = np.sqrt(floor.scale)
    white = cov / s[:, None] / s[None, :]
    batch = white.reshape(-1, *white.shape[-2:])
    shifted = batch - floor.relative * np.eye(white.shape[-1])
    out = batch.copy()
    n_clipped = 0
    for i in range(batch.shape[0]):
        try:
            np.linalg.cholesky(shifted[i])
            continue
        except np.linalg.LinAlgError:
            pass
        w, V = np.linalg.eigh(0.5 * (batch[i] + batch[i].T))
        w = np.maximum(w, floor.relative)
        out[i] = (V * w) @ V.T
        n_clipped += 1
    if n_clipped == 0:
        return cov, 0
    out = out.reshape(white.shape) * s[:, None] * s[None, :]
    return 0.5 * (out + np.swapaxes(out, -1, -2)), n_clipped


class Covariance:
    """Interface shared by the covariance types (see the subclasses).

    Attributes
    ----------
    name : str
        The ``covariance_type`` string.
    moment : int
        Which second moment the M-step needs (a ``MOMENT_*`` code).
    shared : bool
        One covariance for all components.
    """

    name: ClassVar[str]
    moment: ClassVar[int]
    shared: ClassVar[bool]

    def __init__(self, n_components, n_features):
        self.n_components = int(n_components)
        self.n_features = int(n_features)

    # -- densities -------------------------------------------------------------
    def log_norm(self):
        """``-(D/2) log 2 pi - (1/2) log det Sigma_c`` for every component, (C,)."""
        raise NotImplementedError

    def quadratic(self, X, means):
        """Squared Mahalanobis distances (n, C), float64, clamped at zero."""
        raise NotImplementedError

    def take(self, index):
        """The covariance restricted to components ``index`` (shared: itself)."""
        raise NotImplementedError

    def linear_form(self, means, log_weights):
        """The log-joint as one matrix product plus per-component terms.

        Returns a :class:`LinearForm` such that ``log p(c, x) = min(a(x) . B[:, c]
        + bias[c] + row_coef[c] ||t(x)||^2, cap[c])``, or None when the type
        needs a product per component (full).
        """
        return None

    def gather_form(self, means, log_weights):
        """The log-joint in the exact form used on chosen (row, component) pairs.

        Returns a :class:`GatherForm`: ``log p(c, x) = cap[c] - 1/2 sum_d
        prec[c, d] (y_d - M[c, d])^2`` with ``y = x @ transform`` (or x), or for
        full covariances ``cap[c] - 1/2 ||x P_c - M[c]||^2``.
        """
        prec = self._precision_rows()
        return GatherForm(None, np.ascontiguousarray(means, dtype=np.float64),
                          np.ascontiguousarray(prec), log_weights + self.log_norm())

    def _precision_rows(self):
        """Per-component diagonal precisions, (C, D)."""
        raise NotImplementedError

    def noise(self, rng, labels):
        """Zero-mean Gaussian draws with each label's covariance, (n, D)."""
        raise NotImplementedError

    def n_parameters(self):
        """Number of free covariance parameters (for BIC / AIC)."""
        raise NotImplementedError

    # -- scikit-learn forms ----------------------------------------------------
    @property
    def covariances(self):
        """``covariances_`` as scikit-learn reports it for this type."""
        raise NotImplementedError

    @property
    def precisions_cholesky(self):
        """``precisions_cholesky_`` as scikit-learn reports it for this type."""
        raise NotImplementedError

    @property
    def precisions(self):
        """``precisions_`` as scikit-learn reports it for this type."""
        raise NotImplementedError

    # -- M-step ----------------------------------------------------------------
    @classmethod
    def estimate(cls, stats, nonempty, previous, floor, reg_covar):
        """Covariance maximising the free energy for the statistics.

        Parameters
        ----------
        stats : SufficientStats
            Moments about the previous means (the anchors).
        nonempty : ndarray of bool, shape (C,)
            Components with mass; the others keep ``previous``'s covariance.
        previous : Covariance
        floor : Floor
        reg_covar : float
            Added to the diagonal before the floor (scikit-learn's meaning).

        Returns
        -------
        covariance : Covariance
        n_floored : int
            Number of components whose variance the floor raised.
        """
        raise NotImplementedError


@dataclass(frozen=True)
class LinearForm:
    """Coefficients of the fused E-step (see :func:`kernels.topk.fused_estep_into`).

    Attributes
    ----------
    B : ndarray (P, C)
        P = D, or 2D when ``squares`` (the design is then ``[x, x * x]``).
    bias, row_coef, cap : ndarray (C,)
    squares : bool
    transform : ndarray (D, D) or None
        Rows are mapped to ``x @ transform`` first (tied: the whitening).
    """

    B: np.ndarray
    bias: np.ndarray
    row_coef: np.ndarray
    cap: np.ndarray
    squares: bool = False
    transform: np.ndarray | None = None


@dataclass(frozen=True)
class GatherForm:
    """Coefficients of the candidate-set E-step (see :mod:`truncmix.kernels.neighbourhood`).

    Attributes
    ----------
    transform : ndarray (D, D) or None
        Rows are mapped to ``x @ transform`` first (tied: the whitening).
    M : ndarray (C, D)
        Means, in the transformed space (full: ``mu_c P_c``).
    prec : ndarray (C, D)
        Diagonal precisions (unused for full).
    cap : ndarray (C,)
        ``log pi_c`` plus the normaliser: the log-joint at zero distance.
    P3 : ndarray (C, D, D) or None
        Full covariances: the whitening ``P_c`` of every component.
    """

    transform: np.ndarray | None
    M: np.ndarray
    prec: np.ndarray
    cap: np.ndarray
    P3: np.ndarray | None = None

    @cached_property  # an O(C D) comparison: once per form, not per chunk
    def kind(self):
        """0: one precision per component (each row of ``prec`` constant);
        1: diagonal; 2: full (the kernels' switch)."""
        if self.P3 is not None:
            return 2
        return 0 if bool(np.all(self.prec == self.prec[:, :1])) else 1


def _isotropic_form(means, log_weights, log_norm, variances):
    """``-||x - mu_c||^2 / (2 v_c)`` expanded, for per-component variances ``v``."""
    from ..kernels.topk import scaled_transpose

    cap = log_weights + log_norm
    m_sq = np.einsum("cd,cd->c", means, means)
    return LinearForm(
        B=scaled_transpose(np.ascontiguousarray(means, dtype=np.float64),
                           np.ascontiguousarray(variances, dtype=np.float64)),
        bias=cap - 0.5 * m_sq / variances,
        row_coef=-0.5 / variances,
        cap=cap,
    )


def _centred_outer_correction(first, resp, nonempty):
    """``first_c first_c^T / N_c``: moves second moments from anchors to new means."""
    f = first[nonempty]
    return np.einsum("ci,cj->cij", f, f) / resp[nonempty, None, None]


class Isotropic(Covariance):
    """One variance sigma^2 shared by all components: the k-means model."""

    name = "isotropic"
    moment = MOMENT_SCALAR
    shared = True

    def __init__(self, variance, n_components, n_features):
        super().__init__(n_components, n_features)
        self.variance = float(variance)

    def log_norm(self):
        return np.full(self.n_components, -0.5 * self.n_features * (LOG_2PI + np.log(self.variance)))

    def quadratic(self, X, means):
        d2 = squared_distances(X, means)
        d2 /= self.variance
        return d2

    def take(self, index):
        return Isotropic(self.variance, len(np.atleast_1d(index)), self.n_features)

    def linear_form(self, means, log_weights):
        v = np.full(self.n_components, self.variance)
        return _isotropic_form(means, log_weights, self.log_norm(), v)

    def _precision_rows(self):
        return np.full((self.n_components, self.n_features), 1.0 / self.variance)

    def noise(self, rng, labels):
        return np.sqrt(self.variance) * rng.standard_normal((len(labels), self.n_features))

    def n_parameters(self):
        return 1

    @property
    def covariances(self):
        return self.variance

    @property
    def precisions_cholesky(self):
        return 1.0 / np.sqrt(self.variance)

    @property
    def precisions(self):
        return 1.0 / self.variance

    @classmethod
    def from_covariances(cls, covariances, n_components, n_features):
        return cls(float(np.asarray(covariances).reshape(-1)[0]), n_components, n_features)

    @classmethod
    def from_precisions(cls, precisions, n_components, n_features):
        return cls(1.0 / float(np.asarray(precisions).reshape(-1)[0]), n_components, n_features)

    @classmethod
    def estimate(cls, stats, nonempty, previous, floor, reg_covar):
        # squared norms of every row, then selected (no copy of the (C, D) sums)
        resp = stats.resp[nonempty]
        norms = np.einsum("cd,cd->c", stats.first, stats.first)[nonempty]
        total = stats.second[nonempty].sum() - (norms / resp).sum()
        var = max(total, 0.0) / (resp.sum() * previous.n_features) + reg_covar
        floored = var < floor.scalar
        return cls(max(var, floor.scalar), previous.n_components, previous.n_features), int(floored)


class _Variances(Covariance):
    """Shared code of the types stored as an array of variances."""

    @property
    def covariances(self):
        return self.variances.copy()

    @property
    def precisions_cholesky(self):
        return 1.0 / np.sqrt(self.variances)

    @property
    def precisions(self):
        return 1.0 / self.variances

    @classmethod
    def from_precisions(cls, precisions, n_components, n_features):
        return cls.from_covariances(1.0 / np.asarray(precisions, float), n_components, n_features)


class Spherical(_Variances):
    """One variance per component."""

    name = "spherical"
    moment = MOMENT_SCALAR
    shared = False

    def __init__(self, variances, n_features):
        self.variances = np.asarray(variances, dtype=np.float64).reshape(-1)
        super().__init__(self.variances.shape[0], n_features)

    def log_norm(self):
        return -0.5 * self.n_features * (LOG_2PI + np.log(self.variances))

    def quadratic(self, X, means):
        d2 = squared_distances(X, means)
        d2 /= self.variances[None, :]
        return d2

    def take(self, index):
        return Spherical(self.variances[index], self.n_features)

    def linear_form(self, means, log_weights):
        return _isotropic_form(means, log_weights, self.log_norm(), self.variances)

    def _precision_rows(self):
        return np.repeat((1.0 / self.variances)[:, None], self.n_features, axis=1)

    def noise(self, rng, labels):
        z = rng.standard_normal((len(labels), self.n_features))
        return z * np.sqrt(self.variances[labels])[:, None]

    def n_parameters(self):
        return self.n_components

    @classmethod
    def from_covariances(cls, covariances, n_components, n_features):
        return cls(np.broadcast_to(np.asarray(covariances, float), (n_components,)).copy(), n_features)

    @classmethod
    def estimate(cls, stats, nonempty, previous, floor, reg_covar):
        var = previous.variances.copy()
        resp, first = stats.resp[nonempty], stats.first[nonempty]
        centred = stats.second[nonempty] - np.einsum("cd,cd->c", first, first) / resp
        new = np.maximum(centred, 0.0) / (resp * previous.n_features) + reg_covar
        floored = new < floor.scalar
        var[nonempty] = np.maximum(new, floor.scalar)
        return cls(var, previous.n_features), int(floored.sum())


class Diag(_Variances):
    """A diagonal covariance per component."""

    name = "diag"
    moment = MOMENT_VECTOR
    shared = False

    def __init__(self, variances):
        self.variances = np.asarray(variances, dtype=np.float64)
        super().__init__(*self.variances.shape)

    def log_norm(self):
        return -0.5 * (self.n_features * LOG_2PI + np.log(self.variances).sum(axis=1))

    def quadratic(self, X, means):
        prec = 1.0 / self.variances
        dt = X.dtype
        out = np.multiply(X, X) @ prec.T.astype(dt, copy=False)
        out = out.astype(np.float64, copy=False)
        out -= 2.0 * (X @ (means * prec).T.astype(dt, copy=False))
        out += np.einsum("cd,cd->c", means * means, prec)[None, :]
        np.maximum(out, 0.0, out=out)
        return out

    def take(self, index):
        return Diag(self.variances[np.atleast_1d(index)])

    def linear_form(self, means, log_weights):
        prec = 1.0 / self.variances
        cap = log_weights + self.log_norm()
        return LinearForm(
            B=np.concatenate([(means * prec).T, -0.5 * prec.T]),
            bias=cap - 0.5 * np.einsum("cd,cd->c", means * means, prec),
            row_coef=np.zeros(self.n_components),
            cap=cap,
            squares=True,
        )

    def noise(self, rng, labels):
        z = rng.standard_normal((len(labels), self.n_features))
        return z * np.sqrt(self.variances[labels])

    def _precision_rows(self):
        return 1.0 / self.variances

    def n_parameters(self):
        return self.n_components * self.n_features

    @classmethod
    def from_covariances(cls, covariances, n_components, n_features):
        return cls(np.broadcast_to(np.asarray(covariances, float), (n_components, n_features)).copy())

    @classmethod
    def estimate(cls, stats, nonempty, previous, floor, reg_covar):
        var = previous.variances.copy()
        resp, first = stats.resp[nonempty, None], stats.first[nonempty]
        new = np.maximum(stats.second[nonempty] - first * first / resp, 0.0) / resp + reg_covar
        lo = floor.per_feature[None, :]
        floored = (new < lo).any(axis=1)
        var[nonempty] = np.maximum(new, lo)
        return cls(var), int(floored.sum())


class _Cholesky(Covariance):
    """Shared code of the two full-matrix types: factors kept beside the matrices."""

    moment = MOMENT_MATRIX

    def __init__(self, cov, n_components, n_features):
        super().__init__(n_components, n_features)
        self.cov = np.asarray(cov, dtype=np.float64)
        self.lower = _cholesky_lower(self.cov)
        self.prec_chol = _precision_cholesky(self.lower)

    @property
    def covariances(self):
        return self.cov.copy()

    @property
    def precisions_cholesky(self):
        return self.prec_chol.copy()

    @property
    def precisions(self):
        return self.prec_chol @ np.swapaxes(self.prec_chol, -1, -2)

    @classmethod
    def from_precisions(cls, precisions, n_components, n_features):
        return cls.from_covariances(np.linalg.inv(np.asarray(precisions, float)), n_components, n_features)


class Tied(_Cholesky):
    """One full covariance shared by all components."""

    name = "tied"
    shared = True

    def log_norm(self):
        logdet = np.log(np.diag(self.prec_chol)).sum()
        return np.full(self.n_components, logdet - 0.5 * self.n_features * LOG_2PI)

    def quadratic(self, X, means):
        P = self.prec_chol
        return squared_distances(X @ P.astype(X.dtype, copy=False), means @ P)

    def linear_form(self, means, log_weights):
        P = self.prec_chol
        v = np.ones(self.n_components)
        form = _isotropic_form(means @ P, log_weights, self.log_norm(), v)
        return LinearForm(form.B, form.bias, form.row_coef, form.cap, transform=P)

    def gather_form(self, means, log_weights):
        P = self.prec_chol
        ones = np.ones((self.n_components, self.n_features))
        return GatherForm(P, np.ascontiguousarray(means @ P), ones, log_weights + self.log_norm())

    def take(self, index):
        t = Tied.__new__(Tied)
        t.__dict__.update(self.__dict__)
        t.n_components = len(np.atleast_1d(index))
        return t

    def noise(self, rng, labels):
        return rng.standard_normal((len(labels), self.n_features)) @ self.lower.T

    def n_parameters(self):
        return self.n_features * (self.n_features + 1) // 2

    @classmethod
    def from_covariances(cls, covariances, n_components, n_features):
        return cls(np.asarray(covariances, float).reshape(n_features, n_features), n_components, n_features)

    @classmethod
    def estimate(cls, stats, nonempty, previous, floor, reg_covar):
        S = stats.second - _centred_outer_correction(stats.first, stats.resp, nonempty).sum(axis=0)
        cov = S / stats.resp[nonempty].sum()
        cov.flat[:: cov.shape[0] + 1] += reg_covar
        cov, n_clipped = clip_matrix(0.5 * (cov + cov.T), floor)
        return cls(cov, previous.n_components, previous.n_features), n_clipped


class Full(_Cholesky):
    """A full covariance per component."""

    name = "full"
    shared = False

    def log_norm(self):
        logdet = np.log(np.diagonal(self.prec_chol, axis1=1, axis2=2)).sum(axis=1)
        return logdet - 0.5 * self.n_features * LOG_2PI

    def quadratic(self, X, means):
        out = np.empty((X.shape[0], self.n_components))
        dt = X.dtype
        for c in range(self.n_components):
            y = (X - means[c].astype(dt)) @ self.prec_chol[c].astype(dt, copy=False)
            out[:, c] = np.einsum("ij,ij->i", y, y, dtype=np.float64)
        return out

    def stacked_form(self, means, log_weights):
        P = self.prec_chol  # (C, D, D)
        stacked = np.ascontiguousarray(np.transpose(P, (1, 0, 2)).reshape(self.n_features, -1))
        M = np.einsum("cd,cde->ce", means, P)
        return stacked, M, log_weights + self.log_norm()

    def gather_form(self, means, log_weights):
        P, M, cap = self.stacked_form(means, log_weights)
        return GatherForm(None, np.ascontiguousarray(M), np.ones((1, 1)), cap,
                          P3=np.ascontiguousarray(self.prec_chol))

    def take(self, index):
        index = np.atleast_1d(index)
        f = Full.__new__(Full)
        f.n_components, f.n_features = len(index), self.n_features
        f.cov, f.lower, f.prec_chol = self.cov[index], self.lower[index], self.prec_chol[index]
        return f

    def noise(self, rng, labels):
        z = rng.standard_normal((len(labels), self.n_features))
        return np.einsum("nij,nj->ni", self.lower[labels], z)

    def n_parameters(self):
        return self.n_components * self.n_features * (self.n_features + 1) // 2

    @classmethod
    def from_covariances(cls, covariances, n_components, n_features):
        cov = np.broadcast_to(np.asarray(covariances, float), (n_components, n_features, n_features))
        return cls(cov.copy(), n_components, n_features)

    @classmethod
    def estimate(cls, stats, nonempty, previous, floor, reg_covar):
        cov = previous.cov.copy()
        resp = stats.resp[nonempty]
        S = stats.second[nonempty] - _centred_outer_correction(stats.first, stats.resp, nonempty)
        new = S / resp[:, None, None]
        idx = np.arange(previous.n_features)
        new[:, idx, idx] += reg_covar
        new, n_clipped = clip_matrix(0.5 * (new + np.swapaxes(new, 1, 2)), floor)
        cov[nonempty] = new
        return cls(cov, previous.n_components, previous.n_features), n_clipped


COVARIANCE_TYPES = {
    cls.name: cls for cls in (Isotropic, Spherical, Diag, Tied, Full)
}


def data_covariance(name, n_components, mean, second_moment, variances):
    """A covariance of type ``name`` that puts every component at the data's spread.

    Used to start the first M-step: components that receive no points keep it.

    Parameters
    ----------
    name : str
    n_components : int
    mean : ndarray (D,)
        Unused beyond shape checks; the moments are already centred.
    second_moment : ndarray (D, D)
        Centred data covariance.
    variances : ndarray (D,)
        Its diagonal, floored.
    """
    D = len(variances)
    cls = COVARIANCE_TYPES[name]
    if name in ("isotropic", "spherical"):
        return cls.from_covariances(float(variances.mean()), n_components, D)
    if name == "diag":
        return cls.from_covariances(variances, n_components, D)
    cov = np.array(second_moment, dtype=float)
    cov[np.diag_indices(D)] = variances
    return cls.from_covariances(cov, n_components, D)
