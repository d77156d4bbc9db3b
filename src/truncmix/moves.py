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
    alive = mixture.alive
    labels = state[:, 0]
    targets = [c for c in np.argsort(summaries.worst_lse, kind="stable")
               if summaries.worst_row[c] >= 0 and np.isfinite(summaries.worst_lse[c])]
    donors = [c for c in np.argsort(summaries.removal, kind="stable")
              if alive[c] and np.isfinite(summaries.removal[c])]
    used = np.zeros(mixture.n_components, bool)
    means = mixture.means.copy()
    n_swaps = 0
    failures = 0
    d = 0
    for j in targets:
        if n_swaps >= max_swaps or failures >= 4 or d >= len(donors):
            break
        if used[j]:
            continue
        p = int(summaries.worst_row[j])
        k_p = int(labels[p])
        while d < len(donors) and (used[donors[d]] or donors[d] == k_p):
            d += 1
        if d >= len(donors):
            break
        r = int(donors[d])
        current = Mixture(means, mixture.log_weights, mixture.covariance)
        rows = np.flatnonzero(labels == r)
        l_rows = current.log_joint(np.asarray(X[rows]))
        own = l_rows[:, r].copy()
        l_rows[:, r] = -np.inf
        l_rows[:, used] = -np.inf  # components already moved this round are not fallbacks
        other = np.argmax(l_rows, axis=1)
        loss = float(w[rows] @ (own - l_rows[np.arange(len(rows)), other])) if len(rows) else 0.0
        l_p = current.log_joint(np.asarray(X[p : p + 1], dtype=np.float64))[0]
        cap_r = float(mixture.log_weights[r] + mixture.covariance.log_norm()[r])
        gain = float(w[p] * (cap_r - l_p[k_p]))
        if not (np.isfinite(loss) and gain > loss):
            failures += 1
            used[j] = True
            continue
        means[r] = np.asarray(X[p], dtype=np.float64)
        labels[rows] = other
        labels[p] = r
        used[r] = used[j] = used[k_p] = True
        used[other] = True
        n_swaps += 1
        d += 1
        if on_move is not None:
            on_move(Mixture(means, mixture.log_weights, mixture.covariance), r)
    if n_swaps == 0:
        return mixture, 0
    return Mixture(means, mixture.log_weights, mixture.covariance), n_swaps
