"""Global moves for hard (C' = 1) fits: swap a redundant component to a badly explained point.

A local search (the neighbourhood E-step, and Lloyd's algorithm alike) cannot
move a component across the data: seeding that put two components in one
cluster and none in another stays that way. A *swap* takes a component r whose
points are also well explained by other components, and moves its mean onto a
point p that the model explains badly.

Each swap is applied only if it raises the free energy, computed exactly at the
current parameters. r's points are handed to the best of r's neighbours; then
r and p's component k split k's points: a few two-means steps from (mean of k,
x_p) give new means for both, and each point of k goes to the one that
explains it better; every other point and mean stays. So

    F(K', Theta') - F(K, Theta) = sum_{n in k} w_n (max(l'_n(r), l'_n(k)) - l_n(k))
                                  - sum_{n in r} w_n (l_n(r) - l_n(fallback))

is known before the swap is made, and the chain E-step, M-step, swap, E-step
never lowers F. The candidates come from the E-step's own summaries (see
:class:`truncmix.estep.neighbourhood.NeighbourScores`): donors by their
estimated removal cost, targets as each component's worst-explained point.
"""

from __future__ import annotations

import numpy as np

from .model.mixture import Mixture

#: Lloyd steps of the two-means split a swap makes of its target cluster
SPLIT_STEPS = 3


def swap_moves(backend, mixture, summaries, max_swaps, table=None, on_move=None, min_gain=0.0):
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
        O(points x C x D); small donors search every component, within a
        budget of N evaluations per round; without a table every donor does.
    on_move : callable or None
        Called as ``on_move(mixture, r, k, fallbacks)`` after component r moved
        onto a point of component k (the E-step gives r a neighbourhood there);
        ``fallbacks`` are the components that took r's points.
    min_gain : float
        Smallest rise of the free energy a swap must bring (the fit passes its
        ``tol`` times the total weight: smaller swaps are not worth an iteration).

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
    order = np.argsort(summaries.worst_lse, kind="stable")
    ok = (summaries.worst_row >= 0) & np.isfinite(summaries.worst_lse)
    targets = order[ok[order]].tolist()
    order = np.argsort(summaries.removal, kind="stable")
    ok = mixture.alive & np.isfinite(summaries.removal)
    donors = order[ok[order]].tolist()
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
                           table, on_move, min_gain)


def _log_joint_with(mixture, X, components):
    """Log-joints of rows ``X`` under the listed components only, (n, len(components))."""
    sub = Mixture(mixture.means[components], mixture.log_weights[components],
                  mixture.covariance.take(components))
    return sub.log_joint(np.asarray(X))


def _split_numpy(X, w, mine, mixture, r, k_p, first_r, first_k):
    """The two-means split of :func:`truncmix.kernels.swaps.split_two`, for any
    covariance type: ``(means of r and k_p, takes, gain)``."""
    Xk = np.asarray(X[mine], dtype=np.float64)
    wk = w[mine]
    before = _log_joint_with(mixture, Xk, np.array([k_p]))[:, 0]
    both = np.array([r, k_p])
    trial = np.stack([first_r, first_k])
    for _ in range(SPLIT_STEPS + 1):
        pair = Mixture(trial, mixture.log_weights[both], mixture.covariance.take(both)
                       ).log_joint(Xk)
        takes = pair[:, 0] > pair[:, 1]
        if _ == SPLIT_STEPS or not (wk[takes].sum() > 0 and wk[~takes].sum() > 0):
            break
        trial = np.stack([(wk[takes] @ Xk[takes]) / wk[takes].sum(),
                          (wk[~takes] @ Xk[~takes]) / wk[~takes].sum()])
    gain = float(wk @ (np.maximum(pair[:, 0], pair[:, 1]) - before))
    return trial, takes, gain


def _diagonal_form(mixture):
    """``(prec, cap)`` when the mixture's log-joint is a diagonal form without
    whitening (isotropic, spherical, diagonal), else None (tied, full)."""
    form = mixture.covariance.gather_form(mixture.means, mixture.log_weights)
    if form.transform is not None or form.P3 is not None:
        return None
    prec = np.ascontiguousarray(np.broadcast_to(form.prec, mixture.means.shape), dtype=np.float64)
    return prec, np.ascontiguousarray(form.cap, dtype=np.float64)


#: a round ends after this many failed swaps in a row
MAX_FAILURES = 8
#: a donor whose points lose more than this multiple of its estimated removal
#: cost is skipped (its fallbacks were taken by earlier swaps of the round)
STALE_DONOR = 2.0
#: use the compiled kernels of :mod:`truncmix.kernels.swaps` for diagonal forms
#: (tests switch it off to compare with the NumPy path)
COMPILED = True
#: largest fallback pool scored by the compiled loop; a small donor's pool of
#: every component goes through a matrix product instead (at C = 8 000 the loop
#: cost about 10 ms per such donor)
COMPILED_POOL = 64


def _swap_round(X, w, labels, mixture, summaries, targets, donors, max_swaps, table, on_move,
                min_gain):
    from .kernels.swaps import pool_log_joints, rows_by_label, split_two

    C = mixture.n_components
    alive = mixture.alive
    used = np.zeros(C, bool)
    means = mixture.means.copy()
    n_swaps = failures = d = 0
    budget = labels.shape[0]
    diagonal = _diagonal_form(mixture) if COMPILED else None
    # A component's rows change only once it is used, and a used component is
    # not looked at again: the grouping before any swap stays valid for every
    # component the round looks at. One counting sort (O(N + C)) finds the rows
    # of donors and targets alike; selecting the donors' rows by np.isin and
    # sorting them took 3 ms per round at C = 8 000 on 200 000 rows.
    by_label, starts = rows_by_label(labels, C)

    t = 0
    while t < len(targets):
        j = targets[t]
        if n_swaps >= max_swaps or failures >= MAX_FAILURES or d >= len(donors):
            break
        p = int(summaries.worst_row[j])
        k_p = int(labels[p])
        if used[j] or used[k_p]:
            t += 1
            continue
        while d < len(donors) and (used[donors[d]] or donors[d] == k_p):
            d += 1
        if d >= len(donors):
            break
        r = donors[d]
        lo, hi = starts[r], starts[r + 1]
        # a small donor's points may look at every component (neighbourhoods can
        # miss a near twin); within a budget of one evaluation per data point
        if table is None or (hi - lo) * C <= budget:
            pool = np.arange(C)
            budget -= (hi - lo) * C
        else:
            pool = table[r]
        # moved or changed this round, or removed (weight zero): not fallbacks
        pool = np.concatenate(
            [[r], pool[(pool != r) & ~used[pool] & alive[pool]]]).astype(np.int64)
        if pool.size < 2:
            failures += 1
            d += 1
            continue
        if diagonal is None or pool.size > COMPILED_POOL:
            # (a pool of every component is one matrix product: faster there)
            block = _log_joint_with(mixture, X[by_label[lo:hi]], pool)
        else:
            block = pool_log_joints(X, by_label[lo:hi], pool, mixture.means, *diagonal)
        pick = 1 + np.argmax(block[:, 1:], axis=1)
        other = pool[pick]
        loss = float(w[by_label[lo:hi]] @ (block[:, 0] - block[np.arange(hi - lo), pick]))
        # r splits k_p's cluster: two-means on k_p's points (a few Lloyd steps
        # from k_p's mean and x_p); both means move, and each point of k_p goes
        # to the one that explains it better (exactly counted)
        mine = by_label[starts[k_p] : starts[k_p + 1]]
        first_r = np.asarray(X[p], dtype=np.float64)  # new means of r and k_p start here
        if diagonal is None:
            trial, takes, gain = _split_numpy(X, w, mine, mixture, r, k_p, first_r, means[k_p])
        else:
            prec, cap_all = diagonal
            mr, mk, takes, gain = split_two(X, mine, w, first_r, means[k_p], prec[r], prec[k_p],
                                            cap_all[r], cap_all[k_p], SPLIT_STEPS)
            trial = (mr, mk)
        if not (np.isfinite(loss) and gain - loss > min_gain):
            failures += 1
            if not loss <= STALE_DONOR * summaries.removal[r]:
                # the donor's points lost their fallbacks to earlier swaps of
                # the round: skip the donor, not the target
                d += 1
            else:
                used[j] = True
                t += 1
            continue
        means[r], means[k_p] = trial
        labels[by_label[lo:hi]] = other
        labels[mine[takes]] = r
        used[[r, j, k_p]] = True
        used[other] = True
        n_swaps += 1
        failures = 0
        d += 1
        t += 1
        if on_move is not None:
            # the new place of r is known (k_p's): the hook needs no search
            on_move(None, r, k_p, other)
    if n_swaps == 0:
        return mixture, 0
    return Mixture(means, mixture.log_weights, mixture.covariance), n_swaps
