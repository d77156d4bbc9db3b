"""Lloyd's assignment with group lower bounds (Yinyang k-means), numba.

Ding et al. (2015), "Yinyang K-means: a drop-in replacement of the classic
K-means with consistent speedup". The components are split once into G groups.
Each point keeps, for every group, a lower bound on its distance to the group's
members other than its own label. After an M-step that moved each component
by ``drift[c]``, the triangle inequality keeps a bound valid when it is lowered
by the largest drift in its group. A point then computes one distance (to its
own centre, ``u``), and only the groups whose bound is not above ``u`` are
searched, member by member.

The result is Lloyd's: every label is the exact argmin of the Euclidean
distance (computed unexpanded, in float64, ties to the smaller index), and the
search only skips components that the bounds prove farther. Bounds are stored
in float32, rounded down, so storage rounding cannot make them invalid.

The same pass accumulates the statistics of the M-step (counts, sums and sums
of squares about the current means), so no second pass over the data is needed.
"""

from __future__ import annotations

import numba as nb
import numpy as np

#: a group is searched unless its bound exceeds the best distance by this
#: relative margin (covers the rounding of the float64 distances)
CHECK_MARGIN = 1e-9
#: stored bounds are rounded down by this relative amount (float32 storage)
STORE_SHRINK = 1.0 - 2.0**-20
#: the squared norm given to dead components: finite (the scoring loop is
#: compiled for finite values), and far beyond any distance
DEAD = 1e300


@nb.njit(fastmath=True)
def _sq_dist(x, m):  # pragma: no cover - compiled
    """``||x - m||^2`` in float64, unexpanded (finite inputs; vectorised)."""
    s = 0.0
    for d in range(x.shape[0]):
        t = np.float64(x[d]) - m[d]
        s += t * t
    return s


@nb.njit(fastmath=True)
def _sq_norm(x):  # pragma: no cover - compiled
    """``||x||^2`` in float64 (finite inputs; vectorised)."""
    s = 0.0
    for d in range(x.shape[0]):
        t = np.float64(x[d])
        s += t * t
    return s


@nb.njit(fastmath={"nnan", "reassoc", "nsz", "contract"})
def _group_minima(prod_row, norms2, near):  # pragma: no cover - compiled
    """Per group ``min_j norms2[p] - 2 prod_row[p]`` over its positions ``p = j G + g``.

    Vectorised across groups; returns the least of them. Values are finite
    (padding and dead means carry :data:`DEAD`).
    """
    G = near.shape[0]
    S = norms2.shape[0] // G
    for g in range(G):
        near[g] = norms2[g] - 2.0 * np.float64(prod_row[g])
    for j in range(1, S):
        base = j * G
        for g in range(G):
            near[g] = min(near[g], norms2[base + g] - 2.0 * np.float64(prod_row[base + g]))
    least = np.inf
    for g in range(G):
        least = min(least, near[g])
    return least


@nb.njit(fastmath={"nnan", "nsz", "arcp", "contract"})
def _store_bounds(near, shift, out):  # pragma: no cover - compiled
    """``out[g] = sqrt(max(near[g] + shift, 0))``, rounded down to float32 (vectorised; +inf stays)."""
    for g in range(out.shape[0]):
        v = max(near[g] + shift, 0.0)
        out[g] = np.float32(np.sqrt(v) * STORE_SHRINK)


@nb.njit(inline="always")
def _finish_row(i, x, w, best, best2, blk, means, labels_out, dist2, resp, first, second):  # pragma: no cover
    """Write a row's label and distance and add it to its block's statistics."""
    labels_out[i] = best
    dist2[i] = best2
    if w != 0.0 and best >= 0:
        resp[blk, best] += w
        second[blk, best] += w * best2
        mb = means[best]
        fb = first[blk, best]
        for d in range(x.shape[0]):
            fb[d] += w * (np.float64(x[d]) - mb[d])


@nb.njit(inline="always")
def _store_bound(v):  # pragma: no cover - compiled
    """A float32 no larger than ``v`` (a distance, or -inf/+inf)."""
    return np.float32(v * STORE_SHRINK if v > 0 else v)


@nb.njit(parallel=True, cache=True, nogil=True)
def yinyang_pass_into(X, weights, means, means_t, alive, labels_in, lower, members, group_of,
                      group_drift, gemm_unit, direct_limit, tile, n_blocks,
                      labels_out, dist2, resp, first, second, evals):  # pragma: no cover
    """One exact Lloyd assignment with group bounds, and its statistics.

    Each point first computes the distance ``u`` to its own mean and lowers its
    group bounds by the groups' drift. A point with no bound at or below ``u``
    keeps its label. A point with a few such groups searches their members
    one by one (unexpanded distances). The others are gathered in tiles and
    scored against every mean by one matrix product per tile (expanded form,
    whose rounding is bounded: the few means within that bound of the best are
    re-scored unexpanded), which also refreshes all their bounds.

    IN:  X (n, D) float32/float64; weights (n,) float64; means (C, D)
         float64; alive (C,) bool (dead components are never chosen);
         labels_in (n,) int32, each point's label when its bounds were made
         (-1: unknown, the point is scored against every mean);
         members (S, G) int64: member j of group g (-1: padding), so that a
         row of products holds the j-th members of all groups side by side
         and the group minima are vectorised; group_of (C,) int64;
         means_t (D, S G) the means in X's dtype in ``members`` order (zero
         columns for padding), for the products;
         group_drift (G,) float64: how far the group's members moved at most
         since the bounds were made (0 when they are fresh);
         gemm_unit: unit roundoff of the product's dtype;
         direct_limit: most member distances a point computes one by one
         before it is scored by the product instead;
         tile: rows per product; n_blocks: row blocks, each with its own
         statistics (their count depends on n only, so results do not depend
         on the thread count).
    IN/OUT: lower (n, G) float32, per group a lower bound on the distance to
         the members other than the point's label.
    OUT: labels_out (n,) int32; dist2 (n,) float64, squared distance to the
         chosen mean; resp (n_blocks, C), first (n_blocks, C, D), second
         (n_blocks, C): sum w, sum w (x - mu_c), sum w ||x - mu_c||^2 per
         block (added to); evals (n_blocks,) distances computed (a product
         row counts C).
    """
    n, D = X.shape
    S, G = members.shape
    P = S * G
    flat = members.ravel()
    # squared norms in the products' column order; padding and dead means are
    # never chosen
    norms2 = np.empty(P)
    top_norm = 0.0
    for p in range(P):
        c = flat[p]
        live = c >= 0 and alive[c]
        norms2[p] = _sq_norm(means[c]) if live else DEAD
        if live and norms2[p] > top_norm:
            top_norm = norms2[p]
    top_norm = np.sqrt(top_norm)
    # worst-case rounding of a dot product of length D (+ the cast of the means)
    gamma = (D + 2) * gemm_unit / (1.0 - (D + 2) * gemm_unit)
    # no array expressions outside the prange below: with parallel=True each
    # would be a parallel region of its own, and every region start waits for
    # all threads (ruinous on a busy machine)
    for blk in nb.prange(n_blocks):
        s = (n * blk) // n_blocks
        e = (n * (blk + 1)) // n_blocks
        bound = np.empty(G)
        near1 = np.empty(G)
        near2 = np.empty(G)
        who1 = np.empty(G, np.int64)
        searched = np.empty(G, np.bool_)
        buf = np.empty((tile, D), X.dtype)
        rows = np.empty(tile, np.int64)
        filled = 0
        count = 0
        for i in range(s, e + 1):
            if i < e:
                x = X[i]
                a = labels_in[i]
                known = a >= 0 and alive[a]
                own2 = np.inf
                n_fail = 0
                work = 0
                if known:
                    own2 = _sq_dist(x, means[a])
                    count += 1
                    threshold = np.sqrt(own2) * (1.0 + CHECK_MARGIN)
                    for g in range(G):
                        bound[g] = np.float64(lower[i, g]) - group_drift[g]
                        if bound[g] <= threshold:
                            n_fail += 1
                    work = n_fail * S
                if known and n_fail == 0:
                    # every other mean is provably farther: the label stays
                    for g in range(G):
                        lower[i, g] = _store_bound(bound[g])
                    _finish_row(i, x, weights[i], a, own2, blk, means, labels_out, dist2,
                                resp, first, second)
                    continue
                if known and work <= direct_limit:
                    best = a
                    best2 = own2
                    for g in range(G):
                        searched[g] = False
                    for g in range(G):
                        # the best distance only falls, so a skipped group
                        # stays provably farther
                        if bound[g] > np.sqrt(best2) * (1.0 + CHECK_MARGIN):
                            continue
                        searched[g] = True
                        m1 = np.inf
                        m2 = np.inf
                        w1 = -1
                        for j in range(S):
                            c = members[j, g]
                            if c < 0 or not alive[c]:
                                continue
                            if c == a:
                                d2 = own2
                            else:
                                d2 = _sq_dist(x, means[c])
                                count += 1
                            if d2 < m1:
                                m2 = m1
                                m1 = d2
                                w1 = c
                            elif d2 < m2:
                                m2 = d2
                            if d2 < best2 or (d2 == best2 and c < best):
                                best2 = d2
                                best = c
                        near1[g] = m1
                        near2[g] = m2
                        who1[g] = w1
                    for g in range(G):
                        if searched[g]:
                            v = np.sqrt(near2[g] if who1[g] == best else near1[g])
                        else:
                            v = bound[g]
                        lower[i, g] = _store_bound(v)
                    if best != a and not searched[group_of[a]]:
                        # the label just left is a member like the others now
                        u = _store_bound(np.sqrt(own2))
                        if u < lower[i, group_of[a]]:
                            lower[i, group_of[a]] = u
                    _finish_row(i, x, weights[i], best, best2, blk, means, labels_out, dist2,
                                resp, first, second)
                    continue
                # scored by the product, with the tile
                for d in range(D):
                    buf[filled, d] = x[d]
                rows[filled] = i
                filled += 1
                if filled < tile:
                    continue
            if filled == 0:
                continue
            prod = np.dot(buf[:filled], means_t)
            for r in range(filled):
                ii = rows[r]
                xr = X[ii]
                xx = _sq_norm(xr)
                err = 2.0 * gamma * np.sqrt(xx) * top_norm + 1e-14 * (xx + top_norm * top_norm)
                pr = prod[r]
                # per group the least ||x - mu||^2 - ||x||^2, expanded
                vmin = _group_minima(pr, norms2, near1)
                count += P
                # the exact best is among the means within the rounding of the best
                best = -1
                best2 = np.inf
                limit = vmin + 2.0 * err
                for g in range(G):
                    if near1[g] > limit:
                        continue
                    for j in range(S):
                        p = j * G + g
                        if norms2[p] - 2.0 * np.float64(pr[p]) <= limit:
                            c = flat[p]
                            d2 = _sq_dist(xr, means[c])
                            count += 1
                            if d2 < best2 or (d2 == best2 and c < best):
                                best2 = d2
                                best = c
                home = group_of[best]
                m = np.inf
                for j in range(S):
                    p = j * G + home
                    if flat[p] != best:
                        m = min(m, norms2[p] - 2.0 * np.float64(pr[p]))
                near1[home] = m
                _store_bounds(near1, xx - err, lower[ii])
                _finish_row(ii, xr, weights[ii], best, best2, blk, means, labels_out, dist2,
                            resp, first, second)
            filled = 0
        evals[blk] = count


def group_components(means, alive, n_groups, seed=0, n_iter=5):
    """Split the components into G groups of nearby means, of equal size.

    A few Lloyd steps on the means place G group centres; the means are then
    dealt to their nearest group with room left (closest pairs first), so every
    group holds ``ceil(C / G)`` members or one less. Equal sizes leave almost no
    padding in the member-major layout of :func:`yinyang_pass_into`.

    Parameters
    ----------
    means : ndarray (C, D)
    alive : ndarray (C,) bool
    n_groups : int
    seed : int
    n_iter : int

    Returns
    -------
    members : ndarray (S, G) int64
        Member j of group g, in increasing component order; -1 pads the
        groups with fewer than S members.
    group_of : ndarray (C,) int64
    """
    C = means.shape[0]
    G = max(1, min(int(n_groups), C))
    S = -(-C // G)
    if G == 1:
        group_of = np.zeros(C, np.int64)
    else:
        rng = np.random.default_rng(seed)
        pts = np.where(alive[:, None], means, 0.0)
        centres = pts[np.sort(rng.choice(C, size=G, replace=False))]
        for it in range(n_iter + 1):
            d2 = (np.einsum("cd,cd->c", pts, pts)[:, None] - 2.0 * pts @ centres.T
                  + np.einsum("gd,gd->g", centres, centres)[None, :])
            if it < n_iter:
                group_of = np.argmin(d2, axis=1)
            else:
                group_of = _deal(d2, S)
            counts = np.bincount(group_of, minlength=G)
            sums = np.zeros_like(centres)
            np.add.at(sums, group_of, pts)
            filled = counts > 0
            centres[filled] = sums[filled] / counts[filled, None]
        group_of = group_of.astype(np.int64)
    members = np.full((S, G), -1, np.int64)
    fill = np.zeros(G, np.int64)
    for c in range(C):
        g = group_of[c]
        members[fill[g], g] = c
        fill[g] += 1
    return members, group_of


def _deal(d2, capacity):
    """Each mean to its nearest group with room; the nearer means are served first.

    Rounds: every unplaced mean asks its nearest group that still has room,
    and each group takes the nearest of its askers up to its room.

    Parameters
    ----------
    d2 : ndarray (C, G)
        Squared distances of the means to the group centres.
    capacity : int
        Room per group (``capacity * G >= C``).

    Returns
    -------
    ndarray (C,) int64
    """
    C, G = d2.shape
    group_of = np.full(C, -1, np.int64)
    room = np.full(G, capacity)
    cost = d2.copy()
    while True:
        left = np.flatnonzero(group_of < 0)
        if left.size == 0:
            return group_of
        cost[:, room == 0] = np.inf
        ask = np.argmin(cost[left], axis=1)
        mine = cost[left, ask]
        # within each asked group, nearest first (stable: smaller index on ties)
        order = np.lexsort((left, mine, ask))
        ask, who = ask[order], left[order]
        first = np.searchsorted(ask, ask, side="left")
        rank = np.arange(ask.size) - first
        taken = rank < room[ask]
        group_of[who[taken]] = ask[taken]
        np.subtract.at(room, ask[taken], 1)


def pass_tile(n_components):
    """Rows per product tile: the tile's products should stay in L2."""
    return int(min(512, max(16, (1 << 17) // max(n_components, 1))))


def pass_blocks(n_rows):
    """Row blocks of one pass: a function of the row count only (reproducible sums)."""
    return int(max(1, min(32, n_rows // 2048)))
