"""Markov-chain seeding kernels (numba)."""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, nogil=True)
def _nearest_sq(X, row, centres, n_centres):  # pragma: no cover - compiled
    D = X.shape[1]
    best = np.inf
    for j in range(n_centres):
        acc = 0.0
        for d in range(D):
            t = X[row, d] - centres[j, d]
            acc += t * t
            if acc >= best:
                break
        if acc < best:
            best = acc
    return best


@nb.njit(cache=True, nogil=True)
def afk_mc2_chains(X, w, q, first, proposals, uniforms):  # pragma: no cover - compiled
    """Run one Metropolis-Hastings chain per new centre.

    The target is the k-means++ distribution ``w_x d(x, centres)^2``, the
    proposal ``q`` fixed; a move from x to y is accepted with probability
    ``min(1, w_y d_y q_x / (w_x d_x q_y))``.

    IN:  X (N, D) float64; w (N,) weights; q (N,) proposal; first int;
         proposals (C-1, m) int64 row draws from q; uniforms (C-1, m).
    OUT: (C,) int64 chosen rows, ``first`` first.
    """
    n_new, m = proposals.shape
    D = X.shape[1]
    chosen = np.empty(n_new + 1, np.int64)
    centres = np.empty((n_new + 1, D))
    chosen[0] = first
    centres[0] = X[first]
    for i in range(n_new):
        x = proposals[i, 0]
        dx = w[x] * _nearest_sq(X, x, centres, i + 1)
        for j in range(1, m):
            y = proposals[i, j]
            dy = w[y] * _nearest_sq(X, y, centres, i + 1)
            if dx == 0.0 or dy * q[x] > uniforms[i, j] * dx * q[y]:
                x, dx = y, dy
        chosen[i + 1] = x
        centres[i + 1] = X[x]
    return chosen
