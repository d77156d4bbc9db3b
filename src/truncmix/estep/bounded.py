"""Lloyd's assignment step with group lower bounds (Yinyang k-means).

The k-means model (isotropic, equal weights, C' = 1) ranks components by the
Euclidean distance alone, so the triangle inequality can prove most of them
farther than a point's own centre without computing their distance. This
strategy gives exactly the labels of the exhaustive E-step (computed from
unexpanded float64 distances) at a fraction of its cost once the means move
little; see :mod:`truncmix.kernels.bounds`.

Its state, kept between passes by the strategy itself (in memory), is one
float32 bound per point and group (one group below 64 features) and each
point's last squared distance (float32), chunk by chunk.
"""

from __future__ import annotations

from contextlib import nullcontext

import numba
import numpy as np

from .._constants import MOMENT_SCALAR
from .base import ChunkResult
from .exhaustive import Exhaustive

#: components per group (Yinyang's C/10)
GROUP_SIZE = 10
#: with fewer features one group (Hamerly's bound: the second nearest mean):
#: per row a product is cheap there and keeping C/10 bounds costs more than
#: they save. Whole runs of 19-60 iterations from random rows (scratch, float32):
#: one group against C/10 took 1.91 against 1.92 s at 1M x 16, C = 100;
#: 0.65 against 0.80 s at 100k x 16, C = 1 000; 0.68 against 0.71 s at
#: 100k x 32, C = 1 000; 178 against 179 ms at 100k x 32, C = 100; but
#: 0.75 against 0.72 s at 100k x 64, C = 1 000
GROUPS_MIN_FEATURES = 64
#: memory the per-point bounds may take; fewer groups above it
BOUND_MEMORY = 256 * 2**20
#: a point with bounds failing for more than C / DIRECT_COST components is
#: scored against all means by a matrix product (about this much cheaper per
#: distance) instead of one dot product per member of the failing groups.
#: Iterations 3-7 from random rows (in-loop, best of 3): 16 against 8 gave
#: 62.1 against 66.6 ms at 1M x 16 float32, C = 100; the same within 1 ms in
#: float64, at 100k x 32 (C = 100) and 100k x 64 (C = 1 000); 1 000 (the
#: product for every failing point) 62.0 against 53.9 ms at C = 1 000
DIRECT_COST = 16
#: with one group, the means that moved farthest whose distance each point
#: computes exactly, leaving their step out of the group's drift (a few
#: means moving far would loosen every bound). Iterations 3-7 at 1M x 16,
#: C = 100, float32 (scratch, fit(7) - fit(2) over 5): 0 / 1 / 2 / 3 / 4
#: movers gave 41.6-42.2 / 41.3 / 40.4-41.3 / 41.3 / 41.5 ms; 60 iterations
#: 1.56 / 1.50 (2) / 1.62 (4) s
MOVERS = 2
#: rows of lowest score each thread of a pass keeps (the outliers the M-step
#: may re-seed at are among them: the estimators keep at most 64)
LOWEST_KEPT = 64
#: the drift is inflated by this much so its rounding cannot loosen a bound
DRIFT_INFLATE = 1.0 + 1e-12


def bounded_applies(mixture):
    """True when the mixture ranks components by Euclidean distance alone.

    That is the k-means model: one isotropic variance and equal weights.
    """
    cov = mixture.covariance
    lw = mixture.log_weights[mixture.alive]
    return cov.name == "isotropic" and lw.size > 0 and bool(np.all(lw == lw[0]))


class Bounded(Exhaustive):
    """Exact hard assignment (C' = 1) with Yinyang group bounds.

    Parameters
    ----------
    n_samples : int
        Rows of the data fitted (sizes the groups within :data:`BOUND_MEMORY`).
    n_features : int or None
        Columns of the data: below :data:`GROUPS_MIN_FEATURES` one group.

    Notes
    -----
    A pass with a mixture other than the one the last M-step produced (the
    final scoring pass) scores every mean for every point, without bounds,
    by the same kernel; a mixture that does not rank by distance falls back to
    the exhaustive E-step.
    """

    def __init__(self, n_samples, n_features=None):
        super().__init__(1)
        self.n_samples = int(n_samples)
        self.n_features = n_features
        self._reset(None)

    def _reset(self, mixture):
        self._mixture = mixture
        self._epoch = 0
        # start -> (epoch, labels when the bounds were made, bounds, squared
        # distances to those labels)
        self._chunks = {}
        self._drift = None
        self._step = None
        self._movers = np.empty(0, np.int64)
        self._groups = None
        self._magnitudes = {}  # (start, rows, address) -> largest |value| of a float64 chunk
        self._statistics = {}  # (blocks, C, D) -> per-block statistics buffers

    def _block_statistics(self, blocks, C, D):
        """Per-block statistics buffers ``resp, first, second, totals``, reused between passes.

        The kernel writes every block's share (zeroing it first), so the
        buffers need no clearing and are not allocated again every pass
        (``first`` is 16 MB at C = 1 000, D = 64 with 32 blocks). The moments
        handed on are sums over the blocks, new arrays, so nothing refers to
        the buffers. Kept per shape: the chunks of one pass may differ in
        their number of blocks (93 206 and 6 794 rows at 100k x 64, C = 1 000).
        """
        shape = (blocks, C, D)
        if shape not in self._statistics:
            self._statistics[shape] = (np.empty((blocks, C)), np.empty(shape),
                                       np.empty((blocks, C)), np.empty((blocks, 2)))
        return self._statistics[shape]

    def n_groups(self, n_components):
        """G: about C/10, fewer when the bounds would exceed :data:`BOUND_MEMORY`.

        One when the data has fewer than :data:`GROUPS_MIN_FEATURES` features.
        """
        if self.n_features is not None and self.n_features < GROUPS_MIN_FEATURES:
            return 1
        by_memory = BOUND_MEMORY // (4 * max(self.n_samples, 1))
        return int(max(1, min(-(-n_components // GROUP_SIZE), by_memory)))

    def columns(self, n_components):
        # per row: the bounds and a few scalars, not C work columns
        return 1 + self.n_groups(n_components) // 8

    def start_fit(self, mixture, random_state):
        self._reset(mixture)
        if bounded_applies(mixture):
            from ..kernels.bounds import group_components

            # the grouping only affects speed, never the labels: a fixed seed
            self._groups = group_components(mixture.means, mixture.alive,
                                            self.n_groups(mixture.n_components), seed=0)

    def after_m_step(self, mixture, report):
        previous, self._mixture = self._mixture, mixture
        self._epoch += 1
        self._movers = np.empty(0, np.int64)
        if self._groups is None or previous is None or not bounded_applies(mixture):
            self._drift = self._step = None
            return
        step = np.sqrt(np.einsum("cd,cd->c", mixture.means - previous.means,
                                 mixture.means - previous.means))
        step = np.where(mixture.alive, step * DRIFT_INFLATE, 0.0)
        self._step = step
        members, _ = self._groups
        if members.shape[1] == 1:
            # the farthest movers are checked exactly; the drift is the others'
            order = np.argsort(-step, kind="stable")
            self._movers = order[:MOVERS][step[order[:MOVERS]] > 0].astype(np.int64)
            self._drift = np.array([step[order[self._movers.size:]].max(initial=0.0)])
            return
        padded = np.where(members >= 0, step[np.maximum(members, 0)], 0.0)
        self._drift = padded.max(axis=0)

    def _product_dtype(self, X, means, start):
        """float32 for float32 rows, and for float64 rows and means of moderate magnitude.

        The magnitude of a chunk is found once per fit and memory block (its
        rows do not change between passes; the final pass may see the rows
        in other coordinates, another block); see
        :data:`~truncmix.kernels.bounds.FLOAT32_PRODUCTS`.
        """
        from .._validation import column_extremes
        from ..kernels.bounds import FLOAT32_PRODUCTS

        if X.dtype == np.float32:
            return X.dtype
        key = (start, X.shape[0], X.__array_interface__["data"][0])
        if key not in self._magnitudes:
            lo, hi = column_extremes(X)
            self._magnitudes[key] = float(max(np.max(-lo, initial=0.0), np.max(hi, initial=0.0)))
        largest = max(self._magnitudes[key], float(np.max(np.abs(means), initial=0.0)))
        low, high = FLOAT32_PRODUCTS
        return np.dtype(np.float32) if low <= largest <= high else X.dtype

    def update(self, X, mixture, K_prev, start=0, weights=None):
        if (self._groups is None or not bounded_applies(mixture)
                or self._groups[1].shape[0] != mixture.n_components):
            return super().update(X, mixture, K_prev, start, weights)
        # another mixture than the last M-step's (the final scoring pass):
        # no bounds to use or keep, but the same exact distances and scores
        # as every pass before it (the exhaustive E-step's come from the
        # expanded form in X's dtype)
        fresh = mixture is not self._mixture
        from .._threads import one_numba_thread
        from ..kernels.bounds import pass_blocks, pass_tile, product_rows, yinyang_pass_into

        n, D = X.shape
        C = mixture.n_components
        members, group_of = self._groups
        G = members.shape[1]
        kept = None if fresh else self._chunks.get(start)
        if kept is not None and kept[1].shape[0] == n and kept[0] == self._epoch - 1 \
                and self._drift is not None:
            labels_in, lower, own2_in = kept[1], kept[2], kept[3]
            drift, step, movers = self._drift, self._step, self._movers
        elif kept is not None and kept[1].shape[0] == n and kept[0] == self._epoch:
            labels_in, lower, own2_in = kept[1], kept[2], kept[3]
            drift, step, movers = np.zeros(G), np.zeros(C), self._movers[:0]
        else:
            # no valid bounds: every point searches every group once
            labels_in = np.full(n, -1, np.int32)
            lower = np.empty((n, G), np.float32)
            own2_in = np.empty(0, np.float32)  # read only for known labels
            drift, step, movers = np.zeros(G), np.zeros(C), self._movers[:0]
        # empty: every row weighs 1 (no n floats to write and read per pass)
        weights = np.empty(0) if weights is None else np.ascontiguousarray(weights, np.float64)
        means = np.ascontiguousarray(mixture.means, dtype=np.float64)
        product = self._product_dtype(X, means, start)
        blocks = pass_blocks(n)
        # log pi + log N(x; mu, sigma^2 I) at the chosen mean, as
        # scale d2 + const: the other terms are the same for every live
        # component (equal weights, one variance)
        cov = mixture.covariance
        alive = np.flatnonzero(mixture.alive)[0]
        lse_scale = -0.5 / float(cov.variance)
        lse_const = float(mixture.log_weights[alive] + cov.log_norm()[alive])
        labels = np.empty(n, np.int32)
        own2 = np.empty(n, np.float32)
        lse = np.empty(n)
        resp, first, second, totals = self._block_statistics(blocks, C, D)
        changed = np.zeros(blocks, np.int64)
        threads = numba.config.NUMBA_NUM_THREADS  # get_thread_id() stays below
        lowest = np.full((threads, LOWEST_KEPT), -1, np.int64)
        lowest_v = np.empty((threads, LOWEST_KEPT))
        lowest_n = np.zeros(threads, np.int64)
        evals = np.zeros(blocks, np.int64)
        previous = labels_in if K_prev is None else np.ascontiguousarray(K_prev[:, 0], np.int32)
        # blocks run in parallel threads (the pass calls no BLAS). A pass of
        # one block runs on this thread alone, without waking a worker that
        # gets no block (scratch, 2 000 x 8, C = 10, inside a fit: 0.12-0.13
        # ms a pass, against 0.16-0.22 ms with two threads and the BLAS limit
        # the pass used to set)
        with one_numba_thread() if blocks == 1 else nullcontext():
            yinyang_pass_into(
                np.ascontiguousarray(X), weights, means,
                product_rows(means, members, product), np.ascontiguousarray(mixture.alive),
                labels_in, lower, members, group_of, drift, movers, step, own2_in,
                float(np.finfo(product).eps) / 2, max(1, C // DIRECT_COST), pass_tile(C), blocks,
                lse_scale, lse_const, own2, previous, labels, lse, resp, first, second, totals,
                changed, lowest, lowest_v, lowest_n, evals,
            )
        if not fresh:
            self._chunks[start] = (self._epoch, labels, lower, own2)
        moments = (MOMENT_SCALAR, resp.sum(axis=0), first.sum(axis=0), second.sum(axis=0))
        # q is one per row: a read-only view, not n floats per pass
        return ChunkResult(labels[:, None], np.broadcast_to(1.0, (n, 1)), lse, int(evals.sum()),
                           moments=moments, totals=tuple(totals.sum(axis=0)),
                           n_changed=None if K_prev is None else int(changed.sum()),
                           lowest=(lowest[lowest >= 0], LOWEST_KEPT))
