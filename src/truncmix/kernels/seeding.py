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


@nb.njit(cache=True, nogil=True)
def greedy_kmeans_pp(X, w, n_components, n_trials, first_u, uniforms):  # pragma: no cover
    """Greedy k-means++ (Arthur and Vassilvitskii 2007, with local trials as in
    scikit-learn): each new centre is the best of ``n_trials`` D^2-weighted draws.

    The trials' distances come from one small matrix product per step
    (``||x||^2 - 2 x.c + ||c||^2``, clamped at zero; centre X first).

    IN:  X (m, D) float32, centred; w (m,) float64 weights; n_components C;
         n_trials T; first_u float in [0, 1); uniforms (C-1, T) in [0, 1).
    OUT: (C,) int64 chosen rows.
    """
    m, D = X.shape
    T = n_trials
    chosen = np.empty(n_components, np.int64)
    x_sq = np.empty(m)
    for i in range(m):
        acc = 0.0
        for d in range(D):
            acc += np.float64(X[i, d]) * X[i, d]
        x_sq[i] = acc
    cum = np.cumsum(w)
    chosen[0] = min(np.searchsorted(cum, first_u * cum[-1], side="right"), m - 1)
    closest = np.empty(m)
    # the product's width padded to 8, or to a multiple of 16 above that (zero
    # columns, unused): OpenBLAS's float32 kernel took 0.15 ms for 8 000 x 64
    # by 8 columns, 0.21 ms by 10, 0.19 ms by 12 and 0.17 ms by 16 (one
    # thread, SkylakeX)
    trial = np.zeros((D, 8 if T <= 8 else -(-T // 16) * 16), X.dtype)
    cands = np.empty(T, np.int64)
    pots = np.empty(T)
    c_sqs = np.empty(T)
    c0 = chosen[0]
    cum = np.empty(m)
    run = 0.0
    for i in range(m):
        acc = 0.0
        for d in range(D):
            t = np.float64(X[i, d]) - X[c0, d]
            acc += t * t
        closest[i] = acc
        run += w[i] * acc
        cum[i] = run  # the cumulative sum np.cumsum(w * closest) gives
    for s in range(1, n_components):
        total = cum[-1]
        for t in range(T):
            if total > 0:
                cands[t] = min(np.searchsorted(cum, uniforms[s - 1, t] * total, side="right"),
                               m - 1)
            else:  # every row is a centre already: any row
                cands[t] = int(uniforms[s - 1, t] * m) % m
            for d in range(D):
                trial[d, t] = X[cands[t], d]
        G = np.dot(X, trial)  # (m, T padded)
        # every trial's potential in one pass over the rows of G: the trials
        # sit side by side (vectorised, no dependency chain between them);
        # each potential is still summed over the rows in order
        for t in range(T):
            pots[t] = 0.0
            c_sqs[t] = x_sq[cands[t]]
        for i in range(m):
            xi = x_sq[i]
            ci = closest[i]
            wi = w[i]
            Gi = G[i]
            for t in range(T):
                v = xi - 2.0 * Gi[t] + c_sqs[t]
                v = v if v > 0.0 else 0.0
                pots[t] += wi * (v if v < ci else ci)
        best = 0
        best_pot = np.inf
        for t in range(T):
            if pots[t] < best_pot:
                best_pot = pots[t]
                best = t
        chosen[s] = cands[best]
        c_sq = x_sq[cands[best]]
        # new distances and the next step's cumulative weights in one pass
        run = 0.0
        for i in range(m):
            v = x_sq[i] - 2.0 * G[i, best] + c_sq
            v = v if v > 0.0 else 0.0
            if i == chosen[s]:
                v = 0.0
            if v < closest[i]:
                closest[i] = v
            run += w[i] * closest[i]
            cum[i] = run
    return chosen
