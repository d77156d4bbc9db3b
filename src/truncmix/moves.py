"""Global moves for hard (C' = 1) fits: swap a redundant component to a badly explained point.

A local search (the neighbourhood E-step, and Lloyd's algorithm alike) cannot
move a component across the data: seeding that put two components in one
cluster and none in another stays that way. A *swap* takes a component r whose
points are also well explained by other components, and moves its mean onto a
point p that the model explains badly.

Each swap is applied only if it raises the free energy, computed exactly at the
current parameters. r's points are handed to the best of r's neighbours; r's
mean moves to the mean of the points of p's component k that x_p explains
better than k does, and r takes every point of k it then explains better;
every other point and mean stays. So

    F(K', Theta') - F(K, Theta) = sum_{n in k, taken} w_n (l'_n(r) - l_n(k))
                                  - sum_{n in r} w_n (l_n(r) - l_n(fallback))

is known before the swap is made, and the chain E-step, M-step, swap, E-step
never lowers F. The candidates come from the E-step's own summaries (see
:class:`truncmix.estep.neighbourhood.NeighbourScores`): donors by their
estimated removal cost, targets as each component's worst-explained point.
"""

from __future__ import annotations

import numpy as np

from .model.mixture import Mixture


def swap_moves(backend, mixture, summaries, max_swaps, table=None, on_move=None):
    """Make up to ``max_swaps`` free-energy-raising swaps; return the new mixture.

    Parameters
    ----------
    backend : InMemory
        Data (driver coordinates), weights and the per-point state (n, 1),
        which is updated for the points the swaps move.
    mixture : Mixture
        Parameters after the M-step.
    summaries : NeighbourScores
        ``removal``, ``worst_lse`` and ``worst_row`` of the last E-step.
    max_swaps : int
    table : ndarray (C, G) int or None
        Neighbourhoods (component first). A donor's points fall back to the
        best of its neighbours, so a swap costs O(points x G x D), not
        O(points x C x D); without a table every component is searched.
    on_move : callable or None
        Called as ``on_move(mixture, r, k)`` after component r moved onto a
        point of component k (the E-step gives r a neighbourhood there).

    Returns
    -------
    mixture : Mixture
    n_swaps : int
    """
    state = backend.state
    if max_swaps <= 0 or state is None or state.shape[1] != 1:
        return mixture, 0
    X, w = backend.X, backend.weights
    labels = state[:, 0]
    targets = [int(c) for c in np.argsort(summaries.worst_lse, kind="stable")
               if summaries.worst_row[c] >= 0 and np.isfinite(summaries.worst_lse[c])]
    donors = [int(c) for c in np.argsort(summaries.removal, kind="stable")
              if mixture.alive[c] and np.isfinite(summaries.removal[c])]
    # Log-joints are taken with the parameters before any swap: a swap only
    # changes the mean of the donor it moves, and a moved donor is never used
    # again in the round (not as a fallback, donor or target), so they stay
    # exact throughout. The arrays are small: one BLAS thread (no start-up).
    budget = 4 * max_swaps + 8
    targets, donors = targets[:budget], donors[:budget]
    if not targets or not donors:
        return mixture, 0
    from ._threads import single_threaded_blas

    with single_threaded_blas():
        return _swap_round(X, w, labels, mixture, summaries, targets, donors, max_swaps,
                           table, on_move)


def _log_joint_with(mixture, X, components):
    """Log-joints of rows ``X`` under the listed components only, (n, len(components))."""
    sub = Mixture(mixture.means[components], mixture.log_weights[components],
                  mixture.covariance.take(components))
    return sub.log_joint(np.asarray(X))


def _swap_round(X, w, labels, mixture, summaries, targets, donors, max_swaps, table, on_move):
    rows = np.flatnonzero(np.isin(labels, donors))
    rows = rows[np.argsort(labels[rows], kind="stable")]
    sorted_labels = labels[rows]  # a copy: the grouping before any swap
    cap = mixture.log_weights + mixture.covariance.log_norm()
    used = np.zeros(mixture.n_components, bool)
    means = mixture.means.copy()
    n_swaps = failures = d = 0
    for j in targets:
        if n_swaps >= max_swaps or failures >= 8 or d >= len(donors):
            break
        p = int(summaries.worst_row[j])
        k_p = int(labels[p])
        if used[j] or used[k_p]:
            continue
        while d < len(donors) and (used[donors[d]] or donors[d] == k_p):
            d += 1
        if d >= len(donors):
            break
        r = donors[d]
        lo, hi = np.searchsorted(sorted_labels, [r, r + 1])
        # moved or changed this round, or removed (weight zero): not fallbacks
        pool = np.arange(mixture.n_components) if table is None else table[r]
        pool = np.concatenate(
            [[r], pool[(pool != r) & ~used[pool] & mixture.alive[pool]]]).astype(np.int64)
        if pool.size < 2:
            failures += 1
            used[j] = True
            continue
        block = _log_joint_with(mixture, X[rows[lo:hi]], pool)
        pick = 1 + np.argmax(block[:, 1:], axis=1)
        other = pool[pick]
        loss = float(w[rows[lo:hi]] @ (block[:, 0] - block[np.arange(hi - lo), pick]))
        # r moves into k_p's cluster: onto the mean of the points of k_p that
        # x_p would serve better than k_p does, and takes every point of k_p it
        # then explains better (exactly counted)
        mine = np.flatnonzero(labels == k_p)
        Xk = np.asarray(X[mine])
        trial = means.copy()
        trial[r] = np.asarray(X[p], dtype=np.float64)
        moved = Mixture(trial, mixture.log_weights, mixture.covariance)
        pair = _log_joint_with(moved, Xk, np.array([r, k_p]))
        closer = pair[:, 0] > pair[:, 1]
        if closer.any() and w[mine][closer].sum() > 0:
            wk = w[mine][closer]
            trial[r] = (wk @ Xk[closer]) / wk.sum()
            moved = Mixture(trial, mixture.log_weights, mixture.covariance)
            pair = _log_joint_with(moved, Xk, np.array([r, k_p]))
        takes = pair[:, 0] > pair[:, 1]
        gain = float(w[mine][takes] @ (pair[takes, 0] - pair[takes, 1]))
        if not (np.isfinite(loss) and gain > loss):
            failures += 1
            used[j] = True
            continue
        means[r] = trial[r]
        labels[rows[lo:hi]] = other
        labels[mine[takes]] = r
        used[[r, j, k_p]] = True
        used[other] = True
        n_swaps += 1
        d += 1
        if on_move is not None:
            on_move(Mixture(means, mixture.log_weights, mixture.covariance), r, k_p)
    if n_swaps == 0:
        return mixture, 0
    return Mixture(means, mixture.log_weights, mixture.covariance), n_swaps
