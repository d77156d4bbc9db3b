"""The neighbourhood E-step on candidate sets, and its neighbour statistics (numba).

Each point n searches only a candidate set S_n: the neighbourhoods of the
components in its previous truncated set K_n, plus ``n_random`` random
components. Its new K_n is the best C' of S_n. Since every component is its own
first neighbour, the old K_n is inside S_n and the free energy cannot decrease.

The log-joint of a candidate is evaluated in the exact (unexpanded) form

    l(c, x) = cap[c] - 1/2 sum_d prec[c, d] (y_d - M[c, d])^2     (diagonal types)
    l(c, x) = cap[c] - 1/2 ||y P_c - M[c]||^2                        (full)

with ``y`` the row (after the tied whitening, when there is one).
"""

from __future__ import annotations

import numba as nb
import numpy as np

#: SplitMix64 constants (Steele, Lea and Flood 2014): a counter-based stream, so
#: each row's random candidates depend only on (seed, pass, global row index)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


@nb.njit(inline="always")
def _splitmix(z):  # pragma: no cover - compiled
    z = z + _GOLDEN
    x = z
    x = (x ^ (x >> np.uint64(30))) * _MIX1
    x = (x ^ (x >> np.uint64(27))) * _MIX2
    return z, x ^ (x >> np.uint64(31))


@nb.njit(cache=True)
def row_stream(seed, pass_index, row):  # pragma: no cover - compiled
    """The starting state of one row's random stream."""
    z = np.uint64(seed) * _MIX1 + np.uint64(pass_index) * _MIX2
    z, _ = _splitmix(z)
    return z ^ (np.uint64(row) * _GOLDEN)


#: reassociation lets the per-candidate sums vectorise; no finite-math
#: assumption, since removed components carry a log-joint of -inf
_FAST = {"reassoc", "contract"}


@nb.njit(inline="always", fastmath=_FAST)
def _log_joint(y, c, M, prec, cap, P3, kind, z):  # pragma: no cover - compiled
    """l(c, x) for one row ``y`` (float64) and component c.

    kind 0: one precision per component (prec[c, 0]); 1: diagonal; 2: full.
    """
    D = y.shape[0]
    acc = 0.0
    if kind == 0:
        for d in range(D):
            t = y[d] - M[c, d]
            acc += t * t
        return cap[c] - 0.5 * prec[c, 0] * acc
    if kind == 1:
        for d in range(D):
            t = y[d] - M[c, d]
            acc += prec[c, d] * t * t
        return cap[c] - 0.5 * acc
    for a in range(D):
        z[a] = -M[c, a]
    for d in range(D):
        yd = y[d]
        for a in range(D):
            z[a] += yd * P3[c, d, a]
    for a in range(D):
        acc += z[a] * z[a]
    return cap[c] - 0.5 * acc


@nb.njit(parallel=True, cache=True, nogil=True)
def neighbourhood_estep_into(Y, M, prec, cap, P3, kind, K_prev, table, n_random, seed, pass_index,
                             start, k, block, K, q, lse, cand, gap, n_cand):  # pragma: no cover
    """Truncated E-step on candidate sets, parallel over blocks of rows.

    IN:  Y (n, D) rows (whitened for tied); M (C, D), prec (C, D), cap (C,)
         float64 (see the module docstring), prec may be (C, 1) for kind 0;
         P3 (C, D, D) float64 whitenings
         (kind 2 only); kind: 0 one precision per component (prec[:, 0]),
         1 diagonal precisions, 2 full; K_prev (n, k0) int32, every entry valid;
         table (C, G) int32 neighbourhoods, table[c, 0] == c; n_random int;
         seed, pass_index, start ints (random stream per global row);
         k = C'; block: rows per parallel block.
    OUT: K (n, k) int32 best first, ties to the smaller index; q (n, k);
         lse (n,); cand (n, E) int32 and gap (n, E) float64: each candidate
         other than the best and its log-joint gap l(best) - l(c) (the
         neighbour statistics); n_cand (n,) int32 entries used.
    Returns nothing; the number of log-joint evaluations is ``n_cand.sum() + n``.
    """
    n = Y.shape[0]
    C = M.shape[0]
    G = table.shape[1]
    k0 = K_prev.shape[1]
    width = cand.shape[1] + 1
    n_blocks = (n + block - 1) // block
    for b in nb.prange(n_blocks):
        stamp = np.zeros(C, np.int64)
        members = np.empty(width, np.int32)
        values = np.empty(width)
        vals = np.empty(k)
        idx = np.empty(k, np.int32)
        z = np.empty(Y.shape[1])
        y = np.empty(Y.shape[1])
        s = b * block
        e = min(n, s + block)
        for i in range(s, e):
            tag = i + 1
            m = 0
            for j in range(k0):
                for g in range(G):
                    c = table[K_prev[i, j], g]
                    if stamp[c] != tag:
                        stamp[c] = tag
                        members[m] = c
                        m += 1
            # random extras (and enough to fill C' when C is tiny)
            need = min(C, max(m + n_random, k))
            state = row_stream(seed, pass_index, start + i)
            tries = 0
            while m < need and tries < 8 * (need + 1):
                state, r = _splitmix(state)
                c = np.int32(r % np.uint64(C))
                tries += 1
                if stamp[c] != tag:
                    stamp[c] = tag
                    members[m] = c
                    m += 1
            for d in range(Y.shape[1]):
                y[d] = Y[i, d]
            for j in range(m):
                values[j] = _log_joint(y, members[j], M, prec, cap, P3, kind, z)
            # top-k by (value descending, index ascending)
            filled = 0
            for j in range(m):
                v = values[j]
                c = members[j]
                if filled < k:
                    pos = filled
                    filled += 1
                elif v > vals[k - 1] or (v == vals[k - 1] and c < idx[k - 1]):
                    pos = k - 1
                else:
                    continue
                while pos > 0 and (vals[pos - 1] < v or (vals[pos - 1] == v and idx[pos - 1] > c)):
                    vals[pos] = vals[pos - 1]
                    idx[pos] = idx[pos - 1]
                    pos -= 1
                vals[pos] = v
                idx[pos] = c
            top = vals[0]
            total = 0.0
            for j in range(filled):
                w = np.exp(vals[j] - top) if vals[j] > -np.inf else 0.0
                q[i, j] = w
                total += w
                K[i, j] = idx[j]
            for j in range(filled):
                q[i, j] /= total
            for j in range(filled, k):  # only when C < k, which the caller prevents
                K[i, j] = idx[0]
                q[i, j] = 0.0
            lse[i] = top + np.log(total)
            best = idx[0]
            used = 0
            for j in range(m):
                c = members[j]
                if c != best and values[j] > -np.inf:
                    cand[i, used] = c
                    gap[i, used] = top - values[j]
                    used += 1
            n_cand[i] = m


@nb.njit(cache=True, nogil=True)
def tally_into(best, cand, gap, n_cand, weights, keys, sums, counts):  # pragma: no cover
    """Add the weighted gaps of (best component, candidate) pairs to a table.

    IN:  best (n,) int32; cand (n, E) int32, gap (n, E), n_cand (n,): entries
         of row i are cand[i, :n_cand[i]] (as written by the E-step kernel,
         the best component excluded); weights (n,).
    OUT: keys (C, A) int32 (-1 = free slot), sums (C, A) and counts (C, A)
         float64, added to. A pair that finds its row full is dropped: the
         table keeps the candidates seen first, which is harmless (any
         neighbourhood keeps the free energy monotone).
    """
    n = best.shape[0]
    A = keys.shape[1]
    for i in range(n):
        w = weights[i]
        if w == 0.0:
            continue
        b = best[i]
        for j in range(n_cand[i]):
            c = cand[i, j]
            if c < 0:
                break
            for a in range(A):
                if keys[b, a] == c:
                    sums[b, a] += w * gap[i, j]
                    counts[b, a] += w
                    break
                if keys[b, a] < 0:
                    keys[b, a] = c
                    sums[b, a] = w * gap[i, j]
                    counts[b, a] = w
                    break


@nb.njit(cache=True, nogil=True)
def merge_tables_into(keys, sums, counts, other_keys, other_sums, other_counts):  # pragma: no cover
    """Add one neighbour-statistics table into another (same shapes)."""
    C, A = keys.shape
    for b in range(C):
        for a2 in range(A):
            c = other_keys[b, a2]
            if c < 0:
                break
            for a in range(A):
                if keys[b, a] == c:
                    sums[b, a] += other_sums[b, a2]
                    counts[b, a] += other_counts[b, a2]
                    break
                if keys[b, a] < 0:
                    keys[b, a] = c
                    sums[b, a] = other_sums[b, a2]
                    counts[b, a] = other_counts[b, a2]
                    break


@nb.njit(inline="always")
def _offer(c, v, tag, stamp, best, listed, m):  # pragma: no cover - compiled
    """Candidate c with score v: listed once per row (tag), keeping its smallest v."""
    if stamp[c] != tag:
        stamp[c] = tag
        best[c] = v
        listed[m] = c
        return m + 1
    if v < best[c]:
        best[c] = v
    return m


@nb.njit(cache=True, nogil=True)
def _choose_prepare(keys, counts, sums):  # pragma: no cover - compiled
    """Reverse entries of the pair table, in compressed rows: for each c, the
    (b, mean gap) with c in b's keys; and the widest such row."""
    C, A = keys.shape
    # reverse entries in compressed rows: for each c, the (b, mean gap) with c in b's keys
    n_rev = np.zeros(C + 1, np.int64)
    for b in range(C):
        for a in range(A):
            c = keys[b, a]
            if c < 0:
                break
            if counts[b, a] > 0.0:
                n_rev[c + 1] += 1
    for c in range(C):
        n_rev[c + 1] += n_rev[c]
    rev_from = np.empty(n_rev[C], np.int32)
    rev_gap = np.empty(n_rev[C])
    fill = n_rev[:C].copy()
    for b in range(C):
        for a in range(A):
            c = keys[b, a]
            if c < 0:
                break
            if counts[b, a] > 0.0:
                rev_from[fill[c]] = b
                rev_gap[fill[c]] = sums[b, a] / counts[b, a]
                fill[c] += 1
    widest = 0
    for b in range(C):
        widest = max(widest, n_rev[b + 1] - n_rev[b])
    return n_rev, rev_from, rev_gap, widest


@nb.njit(inline="always")
def _choose_block(lo, hi, keys, sums, counts, old, alive, n_rev, rev_from, rev_gap, widest,
                  new):  # pragma: no cover - compiled
    """Rows ``lo .. hi`` of the new table, with their own scratch."""
    C, A = keys.shape
    G = old.shape[1]
    best = np.full(C, np.inf)
    stamp = np.zeros(C, np.int64)
    taken = np.zeros(C, np.int64)
    listed = np.empty(A + widest, np.int32)
    order_vals = np.empty(A + widest)
    order_keys = np.empty(A + widest, np.int32)
    for b in range(lo, hi):
        tag = b + 1
        m = 0
        for a in range(A):  # b's points rating c
            c = keys[b, a]
            if c < 0:
                break
            if counts[b, a] <= 0.0 or not alive[c] or c == b:
                continue
            m = _offer(c, sums[b, a] / counts[b, a], tag, stamp, best, listed, m)
        for e in range(n_rev[b], n_rev[b + 1]):  # c's points rating b
            c = rev_from[e]
            if not alive[c] or c == b:
                continue
            m = _offer(c, rev_gap[e], tag, stamp, best, listed, m)
        # the G - 1 smallest (value, then index), by insertion into a list of
        # at most G - 1: sorting all m (some 30) cost O(m^2) per row, most of
        # the table's time (C = 8 000: 3.4 ms in parallel, 9.7 ms serial)
        top = min(G - 1, m)
        kept = 0
        for j in range(m if top > 0 else 0):
            c = listed[j]
            v = best[c]
            if kept == top and not (order_vals[top - 1] > v
                                    or (order_vals[top - 1] == v and order_keys[top - 1] > c)):
                continue
            pos = kept if kept < top else top - 1
            if kept < top:
                kept += 1
            while pos > 0 and (order_vals[pos - 1] > v
                               or (order_vals[pos - 1] == v and order_keys[pos - 1] > c)):
                order_vals[pos] = order_vals[pos - 1]
                order_keys[pos] = order_keys[pos - 1]
                pos -= 1
            order_vals[pos] = v
            order_keys[pos] = c
        new[b, 0] = b
        taken[b] = tag
        g = 1
        for j in range(kept):
            new[b, g] = order_keys[j]
            taken[order_keys[j]] = tag
            g += 1
        for j in range(G):
            if g == G:
                break
            c = old[b, j]
            if taken[c] != tag:
                new[b, g] = c
                taken[c] = tag
                g += 1
        # only if the old row was short of distinct entries: any free component
        c = 0
        while g < G and c < C:
            if taken[c] != tag:
                new[b, g] = c
                taken[c] = tag
                g += 1
            c += 1


@nb.njit(parallel=True, cache=True, nogil=True)
def _choose_parallel(keys, sums, counts, old, alive):  # pragma: no cover - compiled
    C = keys.shape[0]
    n_rev, rev_from, rev_gap, widest = _choose_prepare(keys, counts, sums)
    new = np.empty_like(old)
    # rows are independent: blocks of rows in parallel, each with its scratch
    n_blocks = min(C, 8)
    step = (C + n_blocks - 1) // n_blocks
    for blk in nb.prange(n_blocks):
        _choose_block(blk * step, min(C, (blk + 1) * step), keys, sums, counts, old, alive,
                      n_rev, rev_from, rev_gap, widest, new)
    return new


@nb.njit(cache=True, nogil=True)
def _choose_serial(keys, sums, counts, old, alive):  # pragma: no cover - compiled
    n_rev, rev_from, rev_gap, widest = _choose_prepare(keys, counts, sums)
    new = np.empty_like(old)
    _choose_block(0, keys.shape[0], keys, sums, counts, old, alive, n_rev, rev_from, rev_gap,
                  widest, new)
    return new


#: from this many (component, slot) entries on, rows are chosen in parallel
#: blocks; below it the work (about a millisecond at C = 1 000) costs less than
#: waking the threads, which on a busy machine can wait a scheduler slice
CHOOSE_PARALLEL_ENTRIES = 1 << 16


def choose_neighbours(keys, sums, counts, old, alive):
    """New neighbourhoods: each component, then its candidates of smallest mean gap.

    A pair's score is its mean gap seen from either side: b's points rating c,
    or c's points rating b (the smaller counts). The reverse direction lets two
    components find each other when only one of them has the other among its
    candidates (two means in one cluster, say).

    IN:  keys, sums, counts (C, A) as filled by :func:`tally_into`; old (C, G)
         int32, the current table; alive (C,) bool.
    OUT: a new (C, G) int32 table. Slots the statistics cannot fill keep the
         old neighbours, in their order; removed components are never chosen.
    """
    if keys.size >= CHOOSE_PARALLEL_ENTRIES:
        return _choose_parallel(keys, sums, counts, old, alive)
    return _choose_serial(keys, sums, counts, old, alive)


def block_rows(n_rows):
    """Rows per parallel block: enough blocks for the threads, each a few hundred rows."""
    return int(max(16, min(512, n_rows // (4 * max(nb.get_num_threads(), 1)) or 16)))


def neighbourhood_estep(Y, M, prec, cap, P3, kind, K_prev, table, n_random, seed, pass_index,
                        start, k, n_other):
    """Allocate the outputs and run :func:`neighbourhood_estep_into`.

    ``n_other`` is the width of ``cand`` and ``gap`` (at least 1), the most
    candidates besides the best a row can have.

    Returns
    -------
    K, q, lse, cand, gap, n_cand
    """
    n = Y.shape[0]
    K = np.empty((n, k), np.int32)
    q = np.empty((n, k))
    lse = np.empty(n)
    cand = np.full((n, max(n_other, 1)), -1, np.int32)
    gap = np.empty((n, max(n_other, 1)))
    n_cand = np.empty(n, np.int32)
    neighbourhood_estep_into(Y, M, prec, cap, P3, kind, K_prev, table, n_random, seed, pass_index,
                             start, k, block_rows(n), K, q, lse, cand, gap, n_cand)
    return K, q, lse, cand, gap, n_cand


@nb.njit(cache=True, nogil=True)
def chunk_summaries(best, lse, cand, gap, weights, start, removal, worst_lse, worst_row):  # pragma: no cover
    """Per-component summaries that global moves use.

    IN:  best (n,) int32 each point's best component; lse (n,); cand, gap
         (n, E) as written by the E-step kernel; weights (n,); start: global
         index of row 0.
    OUT (updated in place): removal (C,) += w_n times the smallest gap of the
         point (what dropping its best component would cost it, by the
         candidates it saw; +inf when it saw none); worst_lse (C,) and
         worst_row (C,) int64: the lowest lse among each component's points
         with positive weight and its global row (ties: the smaller row).
    """
    n, E = cand.shape
    for i in range(n):
        w = weights[i]
        if w == 0.0:
            continue
        b = best[i]
        g = np.inf
        for j in range(E):
            if cand[i, j] < 0:
                break
            if gap[i, j] < g:
                g = gap[i, j]
        removal[b] += w * g
        if lse[i] < worst_lse[b]:
            worst_lse[b] = lse[i]
            worst_row[b] = start + i
