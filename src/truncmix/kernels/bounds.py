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
def _dot(x, m):  # pragma: no cover - compiled
    """``x . m`` in the arrays' dtype (finite inputs; vectorised, any order)."""
    s = x[0] - x[0]  # a zero of x's dtype
    for d in range(x.shape[0]):
        s += x[d] * m[d]
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
def _tile_minima(prod_t, norms2, filled, near, least, least2, where):  # pragma: no cover - compiled
    """Group minima of a tile's expanded distances, column-wise.

    ``prod_t`` (S G, T) holds the products of the means (rows, member-major:
    position ``p = j G + g``) with the tile's rows (columns). For the first
    ``filled`` rows ``r`` and ``v[p, r] = norms2[p] - 2 prod_t[p, r]``:
    ``near[g, r]``, the least ``v`` of group ``g``; ``least[r]`` and
    ``least2[r]``, the least and second least of the group minima, and
    ``where[r]``, the group of the least (the first on ties). Every inner
    loop runs along the rows, so it is vectorised whatever G and S are.
    """
    P = norms2.shape[0]
    G = near.shape[0]
    S = P // G
    for g in range(G):
        ng = near[g]
        pr = prod_t[g]
        n2 = norms2[g]
        for r in range(filled):
            ng[r] = n2 - 2.0 * np.float64(pr[r])
    for j in range(1, S):
        for g in range(G):
            p = j * G + g
            ng = near[g]
            pr = prod_t[p]
            n2 = norms2[p]
            for r in range(filled):
                ng[r] = min(ng[r], n2 - 2.0 * np.float64(pr[r]))
    for r in range(filled):
        least[r] = np.inf
        least2[r] = np.inf
        where[r] = 0
    for g in range(G):
        ng = near[g]
        for r in range(filled):
            v = ng[r]
            least2[r] = min(least2[r], max(least[r], v))
            where[r] = g if v < least[r] else where[r]
            least[r] = min(least[r], v)


@nb.njit(fastmath={"nnan", "reassoc", "nsz", "contract"})
def _tile_sq_norms(buf, filled, out):  # pragma: no cover - compiled
    """``out[r] = ||buf[r]||^2`` in float64 for the first ``filled`` rows (vectorised)."""
    for r in range(filled):
        s = 0.0
        row = buf[r]
        for d in range(row.shape[0]):
            t = np.float64(row[d])
            s += t * t
        out[r] = s


@nb.njit(fastmath={"nnan", "nsz", "contract"})
def _tile_bounds(near, shift, filled, out):  # pragma: no cover - compiled
    """``out[g, r] = sqrt(max(near[g, r] + shift[r], 0))``, rounded down to float32 (vectorised; +inf stays)."""
    for g in range(near.shape[0]):
        ng = near[g]
        og = out[g]
        for r in range(filled):
            og[r] = np.float32(np.sqrt(max(ng[r] + shift[r], 0.0)) * STORE_SHRINK)


@nb.njit(inline="always")
def _better(d2, c, best2, best):  # pragma: no cover - compiled
    """Lloyd's order: a smaller exact distance wins, ties to the smaller index."""
    return d2 < best2 or (d2 == best2 and c < best)


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
def yinyang_pass_into(X, weights, means, means_p, alive, labels_in, lower, members, group_of,
                      group_drift, gemm_unit, direct_limit, tile, n_blocks,
                      labels_out, dist2, resp, first, second, evals):  # pragma: no cover
    """One exact Lloyd assignment with group bounds, and its statistics.

    Each point first computes the distance ``u`` to its own mean and lowers its
    group bounds by the groups' drift. A point with no bound at or below ``u``
    keeps its label. A point with a few such groups scores their members by
    one dot product each; the others are gathered in tiles and scored against
    every mean by one matrix product per tile, which also refreshes all their
    bounds. Both use the expanded form, whose rounding is bounded: the few
    means within that bound of the best are re-scored unexpanded.

    IN:  X (n, D) float32/float64; weights (n,) float64; means (C, D)
         float64; alive (C,) bool (dead components are never chosen);
         labels_in (n,) int32, each point's label when its bounds were made
         (-1: unknown, the point is scored against every mean);
         members (S, G) int64: member j of group g (-1: padding), so that a
         run of G products holds the j-th members of all groups side by
         side; group_of (C,) int64;
         means_p (S G, D) the means in X's dtype in ``members`` order (zero
         rows for padding), for the products;
         group_drift (G,) float64: how far the group's members moved at most
         since the bounds were made (0 when they are fresh);
         gemm_unit: unit roundoff of the product's dtype;
         direct_limit: most members a point scores by dot products
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
        searched = np.empty(G, np.bool_)
        # the tile's rows as columns: the product is (S G, tile) and every
        # scan of it runs along the rows (see _tile_minima)
        buf = np.zeros((tile, D), X.dtype)
        rows = np.empty(tile, np.int64)
        near_t = np.empty((G, tile))
        bound_t = np.empty((G, tile), np.float32)
        least = np.empty(tile)
        least2 = np.empty(tile)
        where = np.empty(tile, np.int64)
        xx = np.empty(tile)
        shift = np.empty(tile)
        vals = np.empty(S)
        row_v = np.empty(P)
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
                    # the members of the failing groups, one dot product each
                    # in X's dtype (expanded: ||x - mu||^2 - ||x||^2 = v), then
                    # exact distances for the few within the rounding of the
                    # least, as in the product path below
                    xn = _sq_norm(x)
                    err = 2.0 * gamma * np.sqrt(xn) * top_norm + 1e-14 * (xn + top_norm * top_norm)
                    vmin = own2 - xn
                    for g in range(G):
                        searched[g] = bound[g] <= threshold
                        if not searched[g]:
                            continue
                        # padding and dead means come out near DEAD
                        for j in range(S):
                            p = j * G + g
                            v = norms2[p] - 2.0 * np.float64(_dot(x, means_p[p]))
                            row_v[p] = v
                            vmin = min(vmin, v)
                        count += S
                    limit = vmin + 2.0 * err
                    best = a
                    best2 = own2
                    for g in range(G):
                        if not searched[g]:
                            continue
                        for j in range(S):
                            p = j * G + g
                            c = flat[p]
                            if row_v[p] <= limit and c != a:
                                d2 = _sq_dist(x, means[c])
                                count += 1
                                if _better(d2, c, best2, best):
                                    best2 = d2
                                    best = c
                    lift = xn - err
                    for g in range(G):
                        if searched[g]:
                            m = np.inf
                            for j in range(S):
                                p = j * G + g
                                if flat[p] != best:
                                    m = min(m, row_v[p])
                            lower[i, g] = np.float32(np.sqrt(max(m + lift, 0.0)) * STORE_SHRINK)
                        else:
                            lower[i, g] = _store_bound(bound[g])
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
            prod_t = np.dot(means_p, buf.T)
            _tile_minima(prod_t, norms2, filled, near_t, least, least2, where)
            _tile_sq_norms(buf, filled, xx)
            count += filled * P
            for r in range(filled):
                ii = rows[r]
                xr = X[ii]
                err = 2.0 * gamma * np.sqrt(xx[r]) * top_norm + 1e-14 * (xx[r] + top_norm * top_norm)
                shift[r] = xx[r] - err
                # the exact best is among the means within the rounding of the
                # least expanded value: mostly in one group, often one mean
                limit = least[r] + 2.0 * err
                best = -1
                best2 = np.inf
                if least2[r] > limit:
                    # one group: its values are kept for the home bound below
                    g0 = where[r]
                    for j in range(S):
                        p = j * G + g0
                        v = norms2[p] - 2.0 * np.float64(prod_t[p, r])
                        vals[j] = v
                        if v <= limit:
                            c = flat[p]
                            d2 = _sq_dist(xr, means[c])
                            count += 1
                            if _better(d2, c, best2, best):
                                best2 = d2
                                best = c
                    m = np.inf
                    for j in range(S):
                        if flat[j * G + g0] != best:
                            m = min(m, vals[j])
                else:
                    for g in range(G):
                        if near_t[g, r] > limit:
                            continue
                        for j in range(S):
                            p = j * G + g
                            if norms2[p] - 2.0 * np.float64(prod_t[p, r]) <= limit:
                                c = flat[p]
                                d2 = _sq_dist(xr, means[c])
                                count += 1
                                if _better(d2, c, best2, best):
                                    best2 = d2
                                    best = c
                    m = np.inf
                    for j in range(S):
                        p = j * G + group_of[best]
                        if flat[p] != best:
                            m = min(m, norms2[p] - 2.0 * np.float64(prod_t[p, r]))
                # the home group's bound leaves the label out
                near_t[group_of[best], r] = m
                _finish_row(ii, xr, weights[ii], best, best2, blk, means, labels_out, dist2,
                            resp, first, second)
            _tile_bounds(near_t, shift, filled, bound_t)
            for r in range(filled):
                ii = rows[r]
                for g in range(G):
                    lower[ii, g] = bound_t[g, r]
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
    """Rows per product tile: the tile's products should stay in L2.

    A multiple of 16, so that every row of the (components, rows) product
    starts on a 64-byte boundary for the column-wise scans.
    """
    return int(min(256, max(16, (1 << 17) // max(n_components, 1) // 16 * 16)))


def pass_blocks(n_rows):
    """Row blocks of one pass: a function of the row count only (reproducible sums)."""
    return int(max(1, min(32, n_rows // 2048)))
