"""Kernels of the swap moves (:mod:`truncmix.moves`) for diagonal forms (numba).

A swap needs log-joints of a few hundred rows under a handful of components,
a few dozen times per round. Through NumPy each of those small evaluations
costs tens of microseconds of call overhead; here they are plain loops. They
serve the covariance types whose log-joint is ``cap[c] - 1/2 sum_d prec[c, d]
(x_d - mu_c,d)^2`` (isotropic, spherical, diagonal: no whitening); tied and
full covariances keep the NumPy path. The NumPy path is also the test oracle.
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, nogil=True)
def rows_by_label(labels, n_components):  # pragma: no cover - compiled
    """Rows grouped by label (a counting sort): ``rows[starts[c]:starts[c + 1]]``
    are the rows of label c, in increasing order."""
    starts = np.zeros(n_components + 1, np.int64)
    for i in range(labels.shape[0]):
        starts[labels[i] + 1] += 1
    for c in range(n_components):
        starts[c + 1] += starts[c]
    fill = starts[:n_components].copy()
    rows = np.empty(labels.shape[0], np.int64)
    for i in range(labels.shape[0]):
        c = labels[i]
        rows[fill[c]] = i
        fill[c] += 1
    return rows, starts


@nb.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def pool_log_joints(X, rows, pool, means, prec, cap):  # pragma: no cover - compiled
    """Log-joints of ``X[rows]`` under the components ``pool``, (len(rows), len(pool)).

    ``prec`` (C, D) holds each component's diagonal precisions, ``cap`` (C,)
    its log-weight plus log-normaliser; float64 throughout.
    """
    n, m, D = rows.shape[0], pool.shape[0], X.shape[1]
    out = np.empty((n, m))
    for i in range(n):
        r = rows[i]
        for j in range(m):
            c = pool[j]
            acc = 0.0
            for d in range(D):
                t = np.float64(X[r, d]) - means[c, d]
                acc += prec[c, d] * t * t
            out[i, j] = cap[c] - 0.5 * acc
    return out


@nb.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def split_two(X, rows, w, first_r, first_k, prec_r, prec_k, cap_r, cap_k, steps):  # pragma: no cover
    """Two-means split of one component's rows between a moved component r and
    the component k itself (see :func:`truncmix.moves._swap_round`).

    Starting from means ``first_r`` (the target point) and ``first_k`` (k's
    mean), each of ``steps`` rounds gives every row to the component under
    which its log-joint is larger (r only when strictly larger) and moves both
    means to the weighted means of their rows; it stops early when one side has
    no weight. r and k keep their own precisions and ``cap`` (log-weight plus
    log-normaliser).

    Returns
    -------
    mean_r, mean_k : ndarray (D,)
    takes : ndarray (n,) bool
        Rows that go to r.
    gain : float
        ``sum_n w_n (max(l_r(x_n), l_k(x_n)) - l_k^0(x_n))``, with ``l_k^0`` the
        log-joint under k's first mean: the rise of the free energy of k's rows.
    """
    n, D = rows.shape[0], X.shape[1]
    mr = first_r.copy()
    mk = first_k.copy()
    before = np.empty(n)
    lr = np.empty(n)
    lk = np.empty(n)
    takes = np.zeros(n, np.bool_)
    for it in range(steps + 1):
        for i in range(n):
            a = 0.0
            b = 0.0
            for d in range(D):
                x = np.float64(X[rows[i], d])
                t = x - mr[d]
                u = x - mk[d]
                a += prec_r[d] * t * t
                b += prec_k[d] * u * u
            lr[i] = cap_r - 0.5 * a
            lk[i] = cap_k - 0.5 * b
            if it == 0:
                before[i] = lk[i]
            takes[i] = lr[i] > lk[i]
        if it == steps:
            break
        wr = 0.0
        wk = 0.0
        for i in range(n):
            if takes[i]:
                wr += w[rows[i]]
            else:
                wk += w[rows[i]]
        if not (wr > 0.0 and wk > 0.0):
            break
        mr[:] = 0.0
        mk[:] = 0.0
        for i in range(n):
            wi = w[rows[i]]
            if takes[i]:
                for d in range(D):
                    mr[d] += wi * X[rows[i], d]
            else:
                for d in range(D):
                    mk[d] += wi * X[rows[i], d]
        for d in range(D):
            mr[d] /= wr
            mk[d] /= wk
    gain = 0.0
    for i in range(n):
        gain += w[rows[i]] * (max(lr[i], lk[i]) - before[i])
    return mr, mk, takes, gain
