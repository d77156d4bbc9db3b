"""Global moves for hard (C' = 1) fits: swap a redundant component to a badly explained point.

A local search (the neighbourhood E-step, and Lloyd's algorithm alike) cannot
move a component across the data: seeding that put two components in one
cluster and none in another stays that way. A *swap* takes a component r whose
points are also well explained by other components, and moves its mean onto a
point p that the model explains badly.

Each swap is applied only if it raises the free energy, computed exactly at the
current parameters: r's points are handed to their best other component (an
exhaustive search over those few rows), p is handed to r, whose log-joint at
p is then its maximum ``cap_r``; every other point keeps its component. So

    F(K', Theta') - F(K, Theta) = w_p (cap_r - l_p(k_p))
                                  - sum_{n in r} w_n (l_n(r) - l_n(best other))

is known before the swap is made, and the chain E-step, M-step, swap, E-step
never lowers F. The candidates come from the E-step's own summaries (see
:class:`truncmix.estep.neighbourhood.NeighbourScores`): donors by their
estimated removal cost, targets as each component's worst-explained point.
"""

from __future__ import annotations

import numpy as np

from .model.mixture import Mixture


def swap_moves(backend, mixture, summaries, max_swaps, on_move=None):
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
    on_move : callable or None
        Called as ``on_move(mixture, r)`` after component r moved (the E-step
        gives it a neighbourhood at its new place).

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
                           on_move)


def _swap_round(X, w, labels, mixture, summaries, targets, donors, max_swaps, on_move):
    rows = np.flatnonzero(np.isin(labels, donors))
    rows = rows[np.argsort(labels[rows], kind="stable")]
    sorted_labels = labels[rows]  # a copy: the grouping before any swap
    cap = mixture.log_weights + mixture.covariance.log_norm()
    used = np.zeros(mixture.n_components, bool)
    means = mixture.means.copy()
    n_swaps = failures = d = 0
    for j in targets:
        if n_swaps >= max_swaps or failures >= 4 or d >= len(donors):
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
        block = mixture.log_joint(np.asarray(X[rows[lo:hi]]))
        own = block[:, r].copy()
        block[:, used] = -np.inf  # moved or changed this round: not fallbacks
        block[:, r] = -np.inf
        other = np.argmax(block, axis=1)
        fallback = block[np.arange(hi - lo), other]
        loss = float(w[rows[lo:hi]] @ (own - fallback)) if hi > lo else 0.0
        l_p = mixture.log_joint(np.asarray(X[p : p + 1]))[0, k_p]
        gain = float(w[p] * (cap[r] - l_p))
        if not (np.isfinite(loss) and gain > loss):
            failures += 1
            used[j] = True
            continue
        means[r] = np.asarray(X[p], dtype=np.float64)
        labels[rows[lo:hi]] = other
        labels[p] = r
        used[[r, j, k_p]] = True
        used[other] = True
        n_swaps += 1
        d += 1
        if on_move is not None:
            on_move(Mixture(means, mixture.log_weights, mixture.covariance), r)
    if n_swaps == 0:
        return mixture, 0
    return Mixture(means, mixture.log_weights, mixture.covariance), n_swaps
