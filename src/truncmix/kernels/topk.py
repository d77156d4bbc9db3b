"""Top-C' selection with a log-sum-exp normalisation, row by row (numba)."""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(parallel=True, cache=True, nogil=True)
def top_k_softmax_into(log_joint, k, K, q, lse):  # pragma: no cover - compiled
    """Keep the ``k`` largest entries of each row of ``log_joint``.

    IN:  log_joint (n, C) float64, k int.
    OUT: K (n, k) int32, best first, ties to the smaller index;
         q (n, k) float64, the softmax over the kept entries;
         lse (n,) float64, the log-sum-exp over the kept entries.
    """
    n, C = log_joint.shape
    for i in nb.prange(n):
        row = log_joint[i]
        vals = np.empty(k)
        idx = np.empty(k, np.int32)
        filled = 0
        for c in range(C):
            v = row[c]
            if filled < k:
                pos = filled
                filled += 1
            elif v > vals[k - 1]:
                pos = k - 1
            else:
                continue
            # insertion: move strictly smaller values down; equal values
            # stay ahead, so ties keep the smaller index first
            while pos > 0 and vals[pos - 1] < v:
                vals[pos] = vals[pos - 1]
                idx[pos] = idx[pos - 1]
                pos -= 1
            vals[pos] = v
            idx[pos] = c
        top = vals[0]
        total = 0.0
        for j in range(k):
            e = np.exp(vals[j] - top) if vals[j] > -np.inf else 0.0
            q[i, j] = e
            total += e
        for j in range(k):
            q[i, j] /= total
            K[i, j] = idx[j]
        lse[i] = top + np.log(total)


def top_k_softmax(log_joint, k):
    """Allocate the outputs and run :func:`top_k_softmax_into`."""
    log_joint = np.ascontiguousarray(log_joint, dtype=np.float64)
    n = log_joint.shape[0]
    K = np.empty((n, k), np.int32)
    q = np.empty((n, k))
    lse = np.empty(n)
    top_k_softmax_into(log_joint, k, K, q, lse)
    return K, q, lse
