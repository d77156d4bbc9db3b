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

from .vector_scan import scan_tile

#: a group is searched unless its bound exceeds the best distance by this
#: relative margin (covers the rounding of the float64 distances)
CHECK_MARGIN = 1e-9
#: the squared threshold: the squared distance times this
THRESHOLD_SCALE2 = (1.0 + CHECK_MARGIN) ** 2
#: stored bounds are rounded down by this relative amount (float32 storage)
STORE_SHRINK = 1.0 - 2.0**-20
#: the squared norm given to dead components: finite (the scoring loop is
#: compiled for finite values), and far beyond any distance
DEAD = 1e300
#: roundings of the sum ``||mu||^2 + (-2 x . mu)`` in the products' dtype (the
#: cast of ``||mu||^2`` and the sum, ``|v| <= 2 max||mu||^2 + ||x||^2``), in
#: units of ``||x||^2 + max||mu||^2``: see ``_rounding``
SUM_ROUNDINGS = 3.0
#: squared bounds below this are stored as 0 (float32 subnormals round by
#: more than STORE_SHRINK covers)
TINY_SQUARE = 1e-30
#: squared bounds stay below this when the rows' and means' squared norms do:
#: float32 square roots are safe under it (float32's largest is 3.4e38)
NARROW_LIMIT = 1e37
SHRINK32 = np.float32(STORE_SHRINK)
#: float64 rows and means whose largest magnitude is within this range are
#: multiplied in float32 (products below 1e30, far from float32's overflow,
#: and the largest far above its subnormals): about 3x faster at D = 16; the
#: rounding bounds and the exact re-scoring keep the labels Lloyd's
FLOAT32_PRODUCTS = (1e-15, 1e15)
#: above any absolute error of one term of a product from underflow, to
#: subnormals or (flushed) to zero, in float32 or float64
UNDERFLOW = 2.0**-120


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


@nb.njit(inline="always")
def _expanded(X, i, means_m2, norms2, p):  # pragma: no cover - compiled
    """``v = ||mu_p||^2 + x_i . (-2 mu_p)`` (``||x - mu||^2 - ||x||^2``), one mean at a time.

    The dot product in the products' dtype (X's, or float32 means times
    float64 rows: no rounding beyond what the bound takes), the sum with the
    float64 squared norm in float64. Within the same rounding bound as
    :func:`~truncmix.kernels.vector_scan.scan_tile`'s values, though rounded
    otherwise.
    """
    dot = X[i, 0] * means_m2[p, 0]
    for d in range(1, X.shape[1]):
        dot += X[i, d] * means_m2[p, d]
    return norms2[p] + np.float64(dot)


@nb.njit
def _tile_norms(buf, filled, xx):  # pragma: no cover - compiled
    """``xx[r]``: the squared norm of column ``r`` of ``buf`` (D, T) in float64, for the first ``filled``.

    Along the rows (vectorised, no reduction across lanes): summed row by row,
    each norm was a chain of dependent additions.
    """
    for r in range(filled):
        xx[r] = 0.0
    for d in range(buf.shape[0]):
        bd = buf[d]
        for r in range(filled):
            t = np.float64(bd[r])
            xx[r] += t * t


@nb.njit(inline="always")
def _rounding(xn, slope, sum_unit, top2, const):  # pragma: no cover - compiled
    """How far an expanded value ``v`` may be from exact, for a row of squared norm ``xn``.

    The product's rounding (``slope sqrt(xn)``, about ``2 gamma max||mu||``,
    including the casts of the means and rows to the products' dtype), that
    of the sum ``||mu||^2 + (-2 x . mu)`` and of the squared norm's cast
    (``sum_unit (||x||^2 + max ||mu||^2)``) and a ``const`` for underflow.
    """
    return slope * np.sqrt(xn) + sum_unit * (xn + top2) + const


@nb.njit(fastmath={"nnan", "reassoc", "nsz", "contract"})
def _tile_limits(xx, filled, least, slope, sum_unit, top2, const, limit, shift):  # pragma: no cover
    """Per row of a tile (squared norms ``xx``): the search limit above the least, the bound shift.

    ``limit[r] = least[r] + 2 err`` holds every mean whose exact value can be
    the least; ``shift[r] = ||x||^2 - err`` turns a group minimum of ``v`` into
    a lower bound on the squared distance. Returns the largest squared norm.
    """
    top = 0.0
    for r in range(filled):
        top = max(top, xx[r])
    for r in range(filled):
        err = _rounding(xx[r], slope, sum_unit, top2, const)
        limit[r] = np.float64(least[r]) + 2.0 * err
        shift[r] = xx[r] - err
    return top


@nb.njit(fastmath={"nnan", "nsz", "contract"})
def _tile_bounds(near, shift, filled, narrow, out):  # pragma: no cover - compiled
    """``out[g, r]``: ``sqrt(max(near[g, r] + shift[r], 0))`` rounded down to float32.

    With ``narrow`` (every value far below float32's largest) the root is
    taken in float32: the casts and the root round by at most three float32
    units in all, well inside :data:`STORE_SHRINK`; squares below
    :data:`TINY_SQUARE` (where float32 subnormals round by more) give 0. +inf
    stays +inf. Vectorised along the rows.
    """
    for g in range(near.shape[0]):
        ng = near[g]
        og = out[g]
        if narrow:
            for r in range(filled):
                t = np.float64(ng[r]) + shift[r]
                og[r] = np.sqrt(np.float32(t)) * SHRINK32 if t > TINY_SQUARE else np.float32(0.0)
        else:
            for r in range(filled):
                og[r] = np.float32(np.sqrt(max(np.float64(ng[r]) + shift[r], 0.0)) * STORE_SHRINK)


@nb.njit(inline="always")
def _fails(bound, threshold2):  # pragma: no cover - compiled
    """A bound at or below the threshold, given squared (both in float64).

    Squared, the comparison rounds by about 1e-16 relatively, far inside
    :data:`CHECK_MARGIN`; no root is waited for on the common path.
    """
    return bound <= 0.0 or bound * bound <= threshold2


@nb.njit(inline="always")
def _better(d2, c, best2, best):  # pragma: no cover - compiled
    """Lloyd's order: a smaller exact distance wins, ties to the smaller index."""
    return d2 < best2 or (d2 == best2 and c < best)


@nb.njit(fastmath=True)
def _diff_sq(x, m, diff):  # pragma: no cover - compiled
    """``diff = x - m`` and ``||x - m||^2``, in float64, unexpanded (vectorised)."""
    s = 0.0
    for d in range(x.shape[0]):
        t = np.float64(x[d]) - m[d]
        diff[d] = t
        s += t * t
    return s


@nb.njit(inline="always")
def _finish_row(i, best, best2, w, diff, blk, lse_scale, lse_const, own2_out, labels_out, lse, resp,
                first, second, totals, previous, heap_v, heap_i, n_kept, cut,
                first_done=False):  # pragma: no cover
    """Write a row's label and score, add it (``diff = x - mu_best``) to its block's statistics.

    ``first_done``: its first moment is already added (the product path adds
    it in the sweep that computes the distance). Returns the row's share of
    the block's counts, ``(changed, n_kept, cut)`` (see :func:`_tally`).
    """
    labels_out[i] = best
    own2_out[i] = best2
    score = lse_scale * best2 + lse_const
    lse[i] = score
    if w != 0.0:
        totals[blk, 0] += w * score
        totals[blk, 1] += w
    if w != 0.0 and best >= 0:
        resp[blk, best] += w
        second[blk, best] += w * best2
        if not first_done:
            for d in range(diff.shape[0]):
                first[blk, best, d] += w * diff[d]
    return _tally(i, best, score, w, previous, heap_v, heap_i, n_kept, cut)


@nb.njit(inline="always")
def _weight(weights, i):  # pragma: no cover - compiled
    """Row ``i``'s weight; an empty ``weights`` means every row weighs 1."""
    return weights[i] if weights.shape[0] > 0 else 1.0


@nb.njit(inline="always")
def _above(v1, i1, v2, i2):  # pragma: no cover - compiled
    """``(v1, i1) > (v2, i2)``: by score, then by row."""
    return v1 > v2 or (v1 == v2 and i1 > i2)


@nb.njit
def _keep_lowest(heap_v, heap_i, size, v, i):  # pragma: no cover - compiled
    """Offer row ``i`` (score ``v``) to a max-heap of the lowest (score, row); returns its size.

    The heap holds at most ``heap_v.shape[0]`` entries with the largest on
    top: a full heap takes a row only below its top, which it replaces.
    """
    k = heap_v.shape[0]
    if size < k:
        j = size
        heap_v[j] = v
        heap_i[j] = i
        while j > 0:
            up = (j - 1) // 2
            if not _above(heap_v[j], heap_i[j], heap_v[up], heap_i[up]):
                break
            heap_v[j], heap_v[up] = heap_v[up], heap_v[j]
            heap_i[j], heap_i[up] = heap_i[up], heap_i[j]
            j = up
        return size + 1
    if not _above(heap_v[0], heap_i[0], v, i):
        return size
    heap_v[0] = v
    heap_i[0] = i
    j = 0
    while True:
        big = j
        for child in (2 * j + 1, 2 * j + 2):
            if child < k and _above(heap_v[child], heap_i[child], heap_v[big], heap_i[big]):
                big = child
        if big == j:
            return size
        heap_v[j], heap_v[big] = heap_v[big], heap_v[j]
        heap_i[j], heap_i[big] = heap_i[big], heap_i[j]
        j = big


@nb.njit(inline="always")
def _tally(i, label, score, w, previous, heap_v, heap_i, n_kept, cut):  # pragma: no cover
    """A finished row's share of its block's counts: ``(changed, n_kept, cut)``.

    ``changed`` is 1 for a weighted row whose label differs from
    ``previous``; a weighted row not above ``cut`` (the top of the full heap
    of lowest scores, else +inf) is offered to the heap (:func:`_keep_lowest`,
    which orders ties by row whatever order rows are finished in).
    """
    if w == 0.0:
        return 0, n_kept, cut
    if score <= cut:
        n_kept = _keep_lowest(heap_v, heap_i, n_kept, score, i)
        if n_kept == heap_v.shape[0]:
            cut = heap_v[0]
    return (1 if label != previous[i] else 0), n_kept, cut


@nb.njit(inline="always")
def _store_bound(v):  # pragma: no cover - compiled
    """A float32 no larger than ``v`` (a distance, or -inf/+inf)."""
    return np.float32(v * STORE_SHRINK if v > 0 else v)


# reassociation lets the per-row loops below (distances, squared norms, dot
# products) vectorise; infinities are sentinels here, so no nnan/ninf, and
# no contraction, so a score is computed as the exhaustive E-step computes it
@nb.njit(parallel=True, cache=True, nogil=True, fastmath={"reassoc", "nsz"})
def yinyang_pass_into(X, weights, means, means_m2, alive, labels_in, lower, members, group_of,
                      group_drift, movers, step, own2_in, gemm_unit, direct_limit, tile, n_blocks,
                      lse_scale, lse_const, own2_out,
                      previous, labels_out, lse, resp, first, second, totals, changed, lowest,
                      lowest_v, lowest_n,
                      evals):  # pragma: no cover
    """One exact Lloyd assignment with group bounds, and its statistics.

    Each point first computes the distance ``u`` to its own mean and lowers its
    group bounds by the groups' drift. A point with no bound at or below ``u``
    keeps its label. A point with a few such groups scores their members by
    one dot product each; the others are gathered in tiles and scored against
    every mean (:func:`~truncmix.kernels.vector_scan.scan_tile`: the dot
    products and the sweep for the least, second least and group minima in
    one), which also refreshes all their bounds. Both use the expanded form,
    whose rounding is bounded: when more than one mean lies within that bound
    of the least, those means are re-scored unexpanded; otherwise the one is
    the exact argmin.

    IN:  X (n, D) float32/float64; weights (n,) float64 (empty: every
         row weighs 1); means (C, D)
         float64; alive (C,) bool (dead components are never chosen);
         labels_in (n,) int32, each point's label when its bounds were made
         (-1: unknown, the point is scored against every mean);
         members (S, G) int64: member j of group g (-1: padding);
         group_of (C,) int64;
         means_m2 (G S, D) the means times -2 (exact), group-major (row
         ``g S + j`` is member j of group g, zero rows for padding: a
         group's members are scored side by side), in X's dtype, or
         float32 for float64 rows and means within :data:`FLOAT32_PRODUCTS`
         (the rounding bounds cover the casts; the labels stay exact);
         group_drift (G,) float64: how far the group's members moved at most
         since the bounds were made (0 when they are fresh), leaving out
         the ``movers``; movers (k,) int64: with one group, the means
         whose distance a point computes exactly instead (the few that
         moved farthest: one mean moving far would loosen every point's
         bound); empty with several groups; step (C,)
         float64: how far each mean moved since then; own2_in (n,) float32:
         each point's squared distance to its label then (with one group, a
         point whose bound fails even against that distance less its mean's
         step goes to the product without its distance being computed: the
         product is exact whatever sends a point to it);
         gemm_unit: unit roundoff of the products' dtype;
         direct_limit: most members a point scores by dot products
         before it is scored by the product instead;
         tile: rows per product; n_blocks: row blocks, each with its own
         statistics (their count depends on n only, so results do not depend
         on the thread count).
    IN/OUT: lower (n, G) float32, per group a lower bound on the distance to
         the members other than the point's label.
         lse_scale, lse_const: the row's score is ``lse_scale d2 +
         lse_const`` for its squared distance d2 to the chosen mean (the
         log-joint of the k-means model: -1/(2 sigma^2) and the log weight
         and normaliser; 1 and 0 give d2); previous (n,) int32, the labels
         the caller holds, for counting changes.
    OUT: own2_out (n,) float32, squared distance to the chosen mean (for
         the next pass's own2_in); labels_out (n,) int32; lse (n,) float64,
         the rows' scores;
         resp (n_blocks, C), first (n_blocks, C, D), second (n_blocks, C):
         sum w, sum w (x - mu_c), sum w ||x - mu_c||^2 per block (written:
         each block zeroes its own first, so buffers can be reused);
         totals (n_blocks, 2): sum w score, sum w per block (written);
         changed (n_blocks,) rows of nonzero weight whose label differs
         from ``previous``.
    IN/OUT: lowest (T, k) int64, lowest_v (T, k) float64, lowest_n (T,)
         int64: per thread (T at least the threads numba may run; n 0 to
         start) a max-heap of the k weighted rows of lowest (score, row) it
         saw, its first lowest_n entries valid: the pass's k lowest are
         among them (the free energy's worst-explained points);
         evals (n_blocks,) distances computed (a product row counts C).
    """
    n, D = X.shape
    C = means.shape[0]
    S, G = members.shape
    P = S * G
    # the components in means_m2's (group-major) order
    flat = np.empty(P, np.int64)
    for g in range(G):
        for j in range(S):
            flat[g * S + j] = members[j, g]
    # squared norms in means_m2's order, in float64 and in the products'
    # dtype; padding and dead means are never chosen (DEAD is +inf in float32)
    norms2 = np.empty(P)
    norms2_t = np.empty(P, means_m2.dtype)
    top2 = 0.0
    for p in range(P):
        c = flat[p]
        live = c >= 0 and alive[c]
        norms2[p] = _sq_norm(means[c]) if live else DEAD
        norms2_t[p] = norms2[p]
        if live and norms2[p] > top2:
            top2 = norms2[p]
    # worst-case rounding of a dot product of length D in the products'
    # dtype (+ the casts of the means and of the rows to it)
    gamma = (D + 3) * gemm_unit / (1.0 - (D + 3) * gemm_unit)
    # underflow (to subnormals or zero, in the casts and the products) adds
    # an absolute error per term, below UNDERFLOW
    slope = 2.0 * gamma * np.sqrt(top2) + 2.0 * D * UNDERFLOW
    const = 2.0 * D * UNDERFLOW * (1.0 + np.sqrt(top2))
    # the sum of a squared norm and a product in the products' dtype (see
    # _rounding); 1e-14 covers the float64 arithmetic around it
    sum_unit = SUM_ROUNDINGS * gemm_unit + 1e-14
    # float64 rows multiplied in float32 (see FLOAT32_PRODUCTS)
    cast = X.itemsize != means_m2.itemsize
    # no array expressions outside the prange below: with parallel=True each
    # would be a parallel region of its own, and every region start waits for
    # all threads (ruinous on a busy machine)
    for blk in nb.prange(n_blocks):
        s = (n * blk) // n_blocks
        e = (n * (blk + 1)) // n_blocks
        # the block's statistics start from zero here, in the thread that adds
        # to them, so the caller can reuse its buffers from pass to pass
        # (``first`` is 16 MB at C = 1 000, D = 64, with 32 blocks)
        for c in range(C):
            resp[blk, c] = 0.0
            second[blk, c] = 0.0
            for d in range(D):
                first[blk, c, d] = 0.0
        totals[blk, 0] = 0.0
        totals[blk, 1] = 0.0
        bound = np.empty(G)
        searched = np.empty(G, np.bool_)
        diff = np.empty(D)
        # the tile's rows as columns, scored 16 side by side (scan_tile);
        # zeros at first, so the rows past a tile's last are finite
        buf = np.zeros((D, tile), means_m2.dtype)
        rows = np.empty(tile, np.int64)
        near_t = np.empty((G, tile), means_m2.dtype)
        bound_t = np.empty((G, tile), np.float32)
        least = np.empty(tile, means_m2.dtype)
        least2 = np.empty(tile, means_m2.dtype)
        pos = np.empty(tile, np.int32)
        xx = np.empty(tile)
        limit = np.empty(tile)
        shift = np.empty(tile)
        row_v = np.empty(P)
        filled = 0
        count = 0
        # changed labels; the max-heap of the k lowest (score, row) of the
        # thread running this block, carried over its blocks (a heap per
        # block took rows 64 (1 + ln(rows / 64)) times: 10% of 100 000)
        n_changed = 0
        tid = nb.get_thread_id()
        heap_v = lowest_v[tid]
        heap_i = lowest[tid]
        n_kept = lowest_n[tid]
        cut = heap_v[0] if n_kept == heap_v.shape[0] else np.inf
        for i in range(s, e + 1):
            if i < e:
                # no row slice taken for every row (each is a pair of atomic
                # reference-count updates): only the dot-product path takes one
                a = labels_in[i]
                known = a >= 0 and alive[a]
                own2 = np.inf
                n_fail = 0
                work = 0
                if known and G == 1:
                    # its last distance less its mean's step is a lower bound
                    # on the distance now: a bound failing against it fails
                    t = np.float64(lower[i, 0]) - group_drift[0] + step[a]
                    if t <= 0.0 or t * t <= own2_in[i]:
                        known = False
                        a = -1
                if known:
                    # x - mu_a and its squared norm (indexed, not sliced: the
                    # loop vectorises without per-row aliasing checks)
                    own2 = 0.0
                    for d in range(D):
                        t = np.float64(X[i, d]) - means[a, d]
                        diff[d] = t
                        own2 += t * t
                    count += 1
                    # compared squared: no root waited for on the common path
                    threshold2 = own2 * THRESHOLD_SCALE2
                    for g in range(G):
                        bound[g] = np.float64(lower[i, g]) - group_drift[g]
                        if _fails(bound[g], threshold2):
                            n_fail += 1
                    # the movers left out of the drift: the nearest one's
                    # exact distance is the bound, or fails it
                    if n_fail == 0 and movers.shape[0] > 0:
                        near2 = np.inf
                        for j in range(movers.shape[0]):
                            c = movers[j]
                            if c == a:
                                continue
                            dc2 = 0.0
                            for d in range(D):
                                t = np.float64(X[i, d]) - means[c, d]
                                dc2 += t * t
                            count += 1
                            near2 = min(near2, dc2)
                        if near2 <= threshold2:
                            n_fail = 1
                        elif near2 < np.inf:
                            bound[0] = min(bound[0], np.sqrt(near2))
                    work = n_fail * S
                if known and n_fail == 0:
                    # every other mean is provably farther: the label stays
                    for g in range(G):
                        lower[i, g] = _store_bound(bound[g])
                    moved, n_kept, cut = _finish_row(
                        i, a, own2, _weight(weights, i), diff, blk, lse_scale, lse_const,
                        own2_out, labels_out, lse, resp, first, second, totals, previous, heap_v,
                        heap_i, n_kept, cut)
                    n_changed += moved
                    continue
                if known and work <= direct_limit:
                    # the members of the failing groups, one dot product each
                    # in X's dtype (expanded: ||x - mu||^2 - ||x||^2 = v), then
                    # exact distances for the few within the rounding of the
                    # least, as in the product path below
                    x = X[i]
                    xn = _sq_norm(x)
                    err = _rounding(xn, slope, sum_unit, top2, const)
                    vmin = own2 - xn
                    for g in range(G):
                        searched[g] = _fails(bound[g], threshold2)
                        if not searched[g]:
                            continue
                        # padding and dead means come out near DEAD
                        for j in range(S):
                            p = g * S + j
                            v = _expanded(X, i, means_m2, norms2, p)
                            row_v[p] = v
                            vmin = min(vmin, v)
                        count += S
                    lim = vmin + 2.0 * err
                    best = a
                    best2 = own2
                    for g in range(G):
                        if not searched[g]:
                            continue
                        for j in range(S):
                            p = g * S + j
                            c = flat[p]
                            if row_v[p] <= lim and c != a:
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
                                p = g * S + j
                                if flat[p] != best:
                                    m = min(m, row_v[p])
                            lower[i, g] = np.float32(np.sqrt(max(m + lift, 0.0)) * STORE_SHRINK)
                        else:
                            lower[i, g] = _store_bound(bound[g])
                    if best != a:
                        best2 = _diff_sq(x, means[best], diff)
                        if not searched[group_of[a]]:
                            # the label just left is a member like the others now
                            u = _store_bound(np.sqrt(own2))
                            if u < lower[i, group_of[a]]:
                                lower[i, group_of[a]] = u
                    moved, n_kept, cut = _finish_row(
                        i, best, best2, _weight(weights, i), diff, blk, lse_scale, lse_const,
                        own2_out, labels_out, lse, resp, first, second, totals, previous, heap_v,
                        heap_i, n_kept, cut)
                    n_changed += moved
                    continue
                # scored by the product, with the tile (cast to its dtype;
                # the squared norm from the row as it is)
                for d in range(D):
                    buf[d, filled] = X[i, d]
                if cast:
                    # the squared norm of the row as it is, not of its cast
                    xn = 0.0
                    for d in range(D):
                        xn += np.float64(X[i, d]) * np.float64(X[i, d])
                    xx[filled] = xn
                rows[filled] = i
                filled += 1
                if filled < tile:
                    continue
            if filled == 0:
                continue
            if not cast:
                # the rows are the tile's columns as they are
                _tile_norms(buf, filled, xx)
            scan_tile(means_m2, norms2_t, buf, filled, near_t, least, least2, pos)
            top_xx = _tile_limits(xx, filled, least, slope, sum_unit, top2, const, limit, shift)
            count += filled * P
            for r in range(filled):
                ii = rows[r]
                lim = limit[r]
                if np.float64(least2[r]) > lim:
                    # one mean within the rounding of the least: it is the
                    # exact argmin. Its group's bound leaves it out: the
                    # second least over all means is a lower one than the
                    # group's own (and takes no serial scan of the group)
                    p0 = pos[r]
                    best = flat[p0]
                    g0 = group_of[best] if best >= 0 else 0  # p0's group, without a division
                    m = np.float64(least2[r])
                else:
                    # the exact best is among the means within the rounding
                    # of the least (ties, or near ties)
                    best = -1
                    best2 = np.inf
                    for g in range(G):
                        if np.float64(near_t[g, r]) > lim:
                            continue
                        for j in range(S):
                            p = g * S + j
                            if _expanded(X, ii, means_m2, norms2, p) <= lim:
                                c = flat[p]
                                d2 = _sq_dist(X[ii], means[c])
                                count += 1
                                if _better(d2, c, best2, best):
                                    best2 = d2
                                    best = c
                    m = np.inf
                    g0 = group_of[best] if best >= 0 else 0
                    for j in range(S):
                        p = g0 * S + j
                        if flat[p] != best:
                            m = min(m, _expanded(X, ii, means_m2, norms2, p))
                near_t[g0, r] = m
                count += 1
                wi = _weight(weights, ii)
                if best >= 0 and wi != 0.0:
                    # distance and first moment in one sweep of the row
                    best2 = 0.0
                    for d in range(D):
                        t = np.float64(X[ii, d]) - means[best, d]
                        first[blk, best, d] += wi * t
                        best2 += t * t
                else:
                    best2 = _sq_dist(X[ii], means[best]) if best >= 0 else np.inf
                moved, n_kept, cut = _finish_row(
                    ii, best, best2, wi, diff, blk, lse_scale, lse_const, own2_out, labels_out, lse,
                    resp, first, second, totals, previous, heap_v, heap_i, n_kept, cut, True)
                n_changed += moved
            narrow = 2.0 * (top_xx + top2) < NARROW_LIMIT
            _tile_bounds(near_t, shift, filled, narrow, bound_t)
            for r in range(filled):
                ii = rows[r]
                for g in range(G):
                    lower[ii, g] = bound_t[g, r]
            filled = 0
        evals[blk] = count
        changed[blk] = n_changed
        lowest_n[tid] = n_kept


def group_components(means, alive, n_groups, seed=0, n_iter=5):
    """Split the components into G groups of nearby means, of equal size.

    A few Lloyd steps on the means place G group centres; the means are then
    dealt to their nearest group with room left (closest pairs first), so every
    group holds ``ceil(C / G)`` members or one less. Equal sizes leave almost no
    padding in the group-major layout of :func:`product_rows`.

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


def product_rows(means, members, dtype):
    """``-2`` times the means (exact), in the group-major order :func:`yinyang_pass_into` takes.

    Parameters
    ----------
    means : ndarray (C, D)
    members : ndarray (S, G) int64
        From :func:`group_components` (-1: padding).
    dtype : numpy dtype
        The products' dtype.

    Returns
    -------
    ndarray (G S, D) of ``dtype``
        Row ``g S + j`` is member ``j`` of group ``g``; zero rows pad the groups.
    """
    order = members.T.ravel()
    out = np.zeros((order.shape[0], means.shape[1]), dtype)
    real = order >= 0
    out[real] = means[order[real]]
    out *= -2
    return out


def pass_tile(n_components):
    """Rows per tile scored against every mean: fewer with more components.

    The tile's per-group minima and bounds (G x tile each) should stay in L2
    beside its rows, and its rows (copied in as columns, one scattered store
    per feature) in L1 beside a run of means: at most 128 rows (16 KB at 32
    float32 features). A multiple of :data:`~truncmix.kernels.vector_scan.ROWS`,
    the rows :func:`~truncmix.kernels.vector_scan.scan_tile` scores together.
    (Scratch, one thread, a replayed pass at 100k x 32, C = 100, float32: 128
    rows against 256 took 13.4 against 14.8 ms with every row in the tile,
    12.5 against 12.7 ms as the fourth pass of a fit; no difference at 16
    features. Tiles of 256 at C = 1 000 were no faster: 87-119 against
    88-112 ms per iteration, alternated.)
    """
    return int(min(128, max(16, (1 << 17) // max(n_components, 1) // 16 * 16)))


def pass_blocks(n_rows):
    """Row blocks of one pass: a function of the row count only (reproducible sums)."""
    return int(max(1, min(32, n_rows // 2048)))
