"""Scatter-accumulation of sufficient statistics for sparse posteriors (numba)."""

from __future__ import annotations

import numba as nb
import numpy as np

from .._constants import MOMENT_MATRIX, MOMENT_SCALAR, MOMENT_VECTOR


@nb.njit(cache=True, nogil=True)
def accumulate_into(X, weights, K, q, anchors, moment, shared, resp, first, second):  # pragma: no cover
    """Add the weighted moments of ``x - anchors[c]`` for every kept (n, c).

    IN:  X (n, D) float32/64; weights (n,); K (n, k) int32; q (n, k);
         anchors (C, D) float64; moment: MOMENT_* code; shared: sum the
         MOMENT_MATRIX outer products over components (into second[0]).
    OUT: resp (C,), first (C, D), second (C, 1, 1) | (C, D, 1) | (C or 1, D, D)
         for the three moments, all float64, added to (not overwritten).
    """
    n, D = X.shape
    k = K.shape[1]
    diff = np.empty(D)
    for i in range(n):
        wi = weights[i]
        if wi == 0.0:
            continue
        for j in range(k):
            r = wi * q[i, j]
            if r == 0.0:
                continue
            c = K[i, j]
            resp[c] += r
            for d in range(D):
                diff[d] = X[i, d] - anchors[c, d]
                first[c, d] += r * diff[d]
            if moment == MOMENT_SCALAR:
                s = 0.0
                for d in range(D):
                    s += diff[d] * diff[d]
                second[c, 0, 0] += r * s
            elif moment == MOMENT_VECTOR:
                for d in range(D):
                    second[c, d, 0] += r * diff[d] * diff[d]
            else:
                t = 0 if shared else c
                for a in range(D):
                    ra = r * diff[a]
                    for b in range(a, D):
                        second[t, a, b] += ra * diff[b]


def accumulate(X, weights, K, q, anchors, moment, shared, n_components):
    """Allocate float64 statistics and run :func:`accumulate_into`.

    Returns ``(resp, first, second)`` with the same meaning and shapes as
    :func:`truncmix.kernels._reference.accumulate`.
    """
    C, D = n_components, X.shape[1]
    resp = np.zeros(C)
    first = np.zeros((C, D))
    # one 3-D layout for every moment, so the kernel compiles once per dtype
    if moment == MOMENT_SCALAR:
        second = np.zeros((C, 1, 1))
    elif moment == MOMENT_VECTOR:
        second = np.zeros((C, D, 1))
    else:
        second = np.zeros((1 if shared else C, D, D))
    accumulate_into(
        np.ascontiguousarray(X),
        np.ascontiguousarray(weights, dtype=np.float64),
        np.ascontiguousarray(K, dtype=np.int32),
        np.ascontiguousarray(q, dtype=np.float64),
        np.ascontiguousarray(anchors, dtype=np.float64),
        moment,
        shared,
        resp,
        first,
        second,
    )
    if moment == MOMENT_SCALAR:
        second = second[:, 0, 0]
    elif moment == MOMENT_VECTOR:
        second = second[:, :, 0]
    else:
        # only the upper triangle was accumulated
        second = np.triu(second) + np.swapaxes(np.triu(second, 1), -1, -2)
        if shared:
            second = second[0]
    return resp, first, second
