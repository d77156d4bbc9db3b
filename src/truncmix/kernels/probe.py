"""Nearest sketched mean by probing groups of means (numba).

The means (short sketched rows, see :mod:`truncmix.estep.sketch`) are sorted
into groups around group centres. Each point ranks the group centres, then
looks for its nearest mean among the members of its ``n_probe`` nearest groups
only: about ``n_probe C / g`` distances per point instead of C.

The group centres are scored by one small matrix product per tile of rows.
The means are stored in blocks of :data:`LANES` columns, each block ``(d,
LANES)`` contiguous with the columns' squared norms beside it, and scored in
the expanded form ``||c||^2 - 2 y.c`` (the row's own ``||y||^2`` is the same for
every column): one multiply-add per feature and block, over a constant number
of lanes, which the compiler turns into vector instructions.
"""

from __future__ import annotations

import numba as nb
import numpy as np

#: columns per block (float32 lanes of an AVX-512 register, two of AVX2)
LANES = 16
#: rows per parallel work item (each allocates its small scratch once)
ROWS_PER_TILE = 512
#: squared norm of the padding columns: never the nearest
FAR = np.float32(1e30)


@nb.njit(inline="always")
def _block_scores(Y, i, blocks, norms, b, acc):  # pragma: no cover - compiled
    for l in range(LANES):
        acc[l] = norms[b, l]
    for k in range(Y.shape[1]):
        y2 = np.float32(-2.0) * Y[i, k]
        for l in range(LANES):
            acc[l] += y2 * blocks[b, k, l]


@nb.njit(parallel=True, cache=True, nogil=True, fastmath=True)
def probe_nearest_into(Y, centres_t, centre_norms, blocks, norms, starts, column_ids, sizes,
                       n_probe, best, dist, n_seen):  # pragma: no cover - compiled
    """Each row's nearest member of its ``n_probe`` nearest groups.

    IN:  Y (n, d) float32 rows;
         centres_t (d, g) float32 group centres (scaled by -2), centre_norms
         (g,) float32 their squared norms;
         blocks (B, d, LANES), norms (B, LANES) float32: the means sorted by
         group; starts (g + 1,) int64: group j's means are in blocks
         starts[j]:starts[j+1] (padded with FAR columns); column_ids
         (B * LANES,) int32: the component of each column (-1: padding);
         sizes (g,) int64 means per group; n_probe int.
    OUT: best (n,) int32 component; dist (n,) float32 its squared distance
         (expanded form, float32); n_seen (n,) int64 means scored (besides
         the g centres).
    Ties go to the smaller column (means sorted by group, then by index).
    """
    n, d = Y.shape
    g = centres_t.shape[1]
    p = min(n_probe, g)
    n_tiles = (n + ROWS_PER_TILE - 1) // ROWS_PER_TILE
    for t in nb.prange(n_tiles):
        lo_row = t * ROWS_PER_TILE
        hi_row = min(n, lo_row + ROWS_PER_TILE)
        # the rows' scores against all group centres: one small product
        to_centres = np.dot(Y[lo_row:hi_row], centres_t)
        acc = np.empty(LANES, np.float32)
        chosen = np.empty(p, np.int64)
        top_d = np.empty(p, np.float32)
        for i in range(lo_row, hi_row):
            # the p nearest groups, by insertion into a sorted list of p (one
            # comparison per group once the list is full; ties to the smaller)
            m = 0
            row = to_centres[i - lo_row]
            for j in range(g):
                v = row[j] + centre_norms[j]
                if m == p and v >= top_d[p - 1]:
                    continue
                r = m if m < p else p - 1
                while r > 0 and top_d[r - 1] > v:
                    top_d[r] = top_d[r - 1]
                    chosen[r] = chosen[r - 1]
                    r -= 1
                top_d[r] = v
                chosen[r] = j
                if m < p:
                    m += 1
            bd = np.float32(np.inf)
            bc = 0
            seen = 0
            for r in range(p):
                seen += sizes[chosen[r]]
                for b in range(starts[chosen[r]], starts[chosen[r] + 1]):
                    _block_scores(Y, i, blocks, norms, b, acc)
                    # the block's minimum first (a vector reduction); its
                    # lanes are scanned only when it can win (few blocks do)
                    low = acc[0]
                    for l in range(1, LANES):
                        low = min(low, acc[l])
                    if low > bd:
                        continue
                    for l in range(LANES):
                        c = b * LANES + l
                        if acc[l] < bd or (acc[l] == bd and c < bc):
                            bd = acc[l]
                            bc = c
            y2 = np.float32(0.0)
            for k in range(d):
                y2 += Y[i, k] * Y[i, k]
            best[i] = column_ids[bc]
            dist[i] = max(bd + y2, np.float32(0.0))
            n_seen[i] = seen


def _blocks(rows, n_blocks, columns):
    """``rows`` (m, d) placed at ``columns`` of ``n_blocks`` blocks: ``(blocks
    (n_blocks, d, LANES), norms (n_blocks, LANES))`` in float32, padding FAR."""
    d = rows.shape[1]
    flat = np.zeros((n_blocks * LANES, d), np.float32)
    flat[columns] = rows
    sq = np.full(n_blocks * LANES, FAR, np.float32)
    sq[columns] = np.einsum("ij,ij->i", flat[columns], flat[columns])
    blocks = np.ascontiguousarray(flat.reshape(n_blocks, LANES, d).transpose(0, 2, 1))
    return blocks, sq.reshape(n_blocks, LANES)


class ProbeIndex:
    """Means sorted into groups, laid out for :func:`probe_nearest_into`.

    Parameters
    ----------
    centres : ndarray (g, d)
        Group centres.
    members : ndarray (C, d)
        The (sketched) means.
    labels : ndarray (C,) int
        Each mean's group (groups without means are left out).
    """

    def __init__(self, centres, members, labels):
        labels = np.asarray(labels, dtype=np.int64)
        # empty groups are dropped: every probed group then has a member
        counts = np.bincount(labels, minlength=centres.shape[0])
        kept = np.flatnonzero(counts)
        centres, counts = centres[kept], counts[kept]
        labels = np.searchsorted(kept, labels)  # every label is in kept (sorted)
        g = kept.size
        self.sizes = counts.astype(np.int64)
        n_blocks = -(-counts // LANES)
        self.starts = np.zeros(g + 1, np.int64)
        np.cumsum(n_blocks, out=self.starts[1:])
        order = np.argsort(labels, kind="stable")
        first = np.zeros(g, np.int64)
        np.cumsum(counts[:-1], out=first[1:])
        lab = labels[order]
        columns = LANES * self.starts[lab] + (np.arange(order.size) - first[lab])
        self.blocks, self.norms = _blocks(np.asarray(members, np.float32)[order],
                                          int(self.starts[-1]), columns)
        self.column_ids = np.full(int(self.starts[-1]) * LANES, -1, np.int32)
        self.column_ids[columns] = order
        self.n_groups = g
        centres = np.asarray(centres, np.float32)
        self.centres_t = np.ascontiguousarray(-2.0 * centres.T, dtype=np.float32)
        self.centre_norms = np.einsum("ij,ij->i", centres, centres).astype(np.float32)

    def nearest(self, Y, n_probe):
        """Each row's nearest mean among its ``n_probe`` nearest groups.

        Returns
        -------
        best : ndarray (n,) int32
        dist : ndarray (n,) float32
            Squared distances (float32, expanded form).
        n_seen : ndarray (n,) int64
            Means scored per row, besides the group centres.
        """
        Y = np.ascontiguousarray(Y, dtype=np.float32)
        n = Y.shape[0]
        best = np.empty(n, np.int32)
        dist = np.empty(n, np.float32)
        n_seen = np.empty(n, np.int64)
        from .._threads import single_threaded_blas

        with single_threaded_blas():  # the tiles' products run in the kernel's threads
            probe_nearest_into(Y, self.centres_t, self.centre_norms, self.blocks, self.norms,
                               self.starts, self.column_ids, self.sizes, int(n_probe), best,
                               dist, n_seen)
        return best, dist, n_seen


def probe_nearest(Y, centres, members, labels, n_probe):
    """:meth:`ProbeIndex.nearest` of a fresh index (see there)."""
    return ProbeIndex(centres, members, labels).nearest(Y, n_probe)
