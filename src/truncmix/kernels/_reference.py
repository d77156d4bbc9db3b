"""Plain NumPy twins of the numba kernels.

They are slow and allocate freely; their only job is to be obviously right, so
that the tests can compare every kernel against them.
"""

from __future__ import annotations

import numpy as np

from .. import _constants as const


def top_k_softmax(log_joint, k):
    """Keep the ``k`` largest log-joints of every row and normalise them.

    Parameters
    ----------
    log_joint : ndarray of shape (n, C)
    k : int

    Returns
    -------
    K : ndarray of shape (n, k), int32
        Component indices, best first; ties go to the smaller index.
    q : ndarray of shape (n, k), float64
        Truncated posteriors over ``K``.
    lse : ndarray of shape (n,), float64
        ``log sum_{c in K_n} exp log_joint[n, c]``.
    """
    log_joint = np.asarray(log_joint, dtype=np.float64)
    # A stable sort of -l orders by value, then by index among equal values.
    order = np.argsort(-log_joint, axis=1, kind="stable")[:, :k]
    values = np.take_along_axis(log_joint, order, axis=1)
    top = values[:, :1]
    with np.errstate(invalid="ignore"):
        shifted = np.exp(values - top)
    shifted[~np.isfinite(values)] = 0.0
    total = shifted.sum(axis=1, keepdims=True)
    q = shifted / total
    lse = top[:, 0] + np.log(total[:, 0])
    return order.astype(np.int32), q, lse


def accumulate(X, weights, K, q, anchors, moment, shared, n_components):
    """Weighted statistics of the truncated posteriors about ``anchors``.

    Parameters
    ----------
    X : ndarray of shape (n, D)
    weights : ndarray of shape (n,)
    K : ndarray of shape (n, k), int
    q : ndarray of shape (n, k)
    anchors : ndarray of shape (C, D)
        The moments are taken about these points (the previous means).
    moment : int
        ``MOMENT_SCALAR`` (sum of squared norms), ``MOMENT_VECTOR`` (per feature)
        or ``MOMENT_MATRIX`` (outer products).
    shared : bool
        For ``MOMENT_MATRIX`` only: sum the outer products over components.
    n_components : int

    Returns
    -------
    resp, first, second : ndarrays
        ``sum r``, ``sum r (x - a)`` and the second moment of ``x - a``.
    """
    X = np.asarray(X, dtype=np.float64)
    C, D = n_components, X.shape[1]
    r = weights[:, None] * q
    resp = np.zeros(C)
    first = np.zeros((C, D))
    if moment == const.MOMENT_SCALAR:
        second = np.zeros(C)
    elif moment == const.MOMENT_VECTOR:
        second = np.zeros((C, D))
    elif shared:
        second = np.zeros((D, D))
    else:
        second = np.zeros((C, D, D))
    for j in range(K.shape[1]):
        for c in np.unique(K[:, j]):
            rows = K[:, j] == c
            rc = r[rows, j]
            diff = X[rows] - anchors[c]
            resp[c] += rc.sum()
            first[c] += rc @ diff
            if moment == const.MOMENT_SCALAR:
                second[c] += rc @ (diff * diff).sum(axis=1)
            elif moment == const.MOMENT_VECTOR:
                second[c] += rc @ (diff * diff)
            elif shared:
                second += (diff * rc[:, None]).T @ diff
            else:
                second[c] += (diff * rc[:, None]).T @ diff
    return resp, first, second
