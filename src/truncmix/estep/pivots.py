"""Approximate nearest means through pivots, and the first pass of a search.

A search's first pass (no truncated sets yet) needs each point's nearest means.
Exhaustively that is one matrix product over all C means; with many means the
pass goes through pivots instead: about ``P + 3 C / P`` gathered evaluations
per point with ``P = 2 sqrt(C)`` pivots, O(N sqrt(C) D) in all.
"""

from __future__ import annotations

import numpy as np

from ..model.covariance import Isotropic
from ..model.mixture import Mixture
from .base import ChunkResult
from .exhaustive import Exhaustive

#: from this many components on (at D <= 32; proportionally more above, see
#: :func:`uses_pivots`), the first assignment searches through pivots.
#: Below it the exhaustive pass (one GEMM per chunk, about 1.5 ns per
#: evaluation) costs less than the pivots' gathered evaluations (about 10 ns
#: each, some 3.5 sqrt(C) per point): at C = 1 000, D = 32 the exhaustive pass
#: took 0.16 s against 0.18 s for 100 000 points on one thread, and its sets are
#: exact; the pivots win from about C = 2 000 on (their cost grows as sqrt(C))
PIVOT_MIN_COMPONENTS = 2048
#: pivots probed per point
PIVOT_PROBES = 3


def uses_pivots(n_components, n_features):
    """True when the first assignment of ``n_components`` means searches through pivots.

    The gathered evaluations lose more against the matrix product the longer
    the rows: on 200 000 rows (KMeans with a neighbourhood search, whole fits,
    2 threads) pivots were slower at C = 4 000, D = 64 (2.90 against 2.68 s)
    and faster at C = 8 000, D = 64 and at C = 4 000 and 10 000, D = 32. So
    the threshold grows with D above 32.
    """
    return n_components >= PIVOT_MIN_COMPONENTS * max(1.0, n_features / 32.0)



class Pivots:
    """Groups of means around ``P = 2 sqrt(C)`` pivot means, for approximate nearest means.

    The pivots are every (C/P)-th mean (k-means++ seeds come spread out, in
    drawing order); each mean joins the group of its nearest pivot. A point
    scores the pivots, then the members of its ``PIVOT_PROBES`` nearest
    pivots' groups: about ``P + 3 C / P`` evaluations instead of C.
    """

    def __init__(self, mixture):
        C = mixture.n_components
        P = int(min(C, max(2, np.ceil(2 * np.sqrt(C)))))
        self.index = np.unique(np.linspace(0, C - 1, P).astype(np.int64))
        self.pivots = Mixture.with_equal_weights(
            mixture.means[self.index], Isotropic(1.0, len(self.index), mixture.n_features))
        group = Exhaustive(1).update(np.ascontiguousarray(mixture.means), self.pivots, None).K[:, 0]
        sizes = np.bincount(group, minlength=len(self.index))
        # long groups are cut (their extra members are found later by the search)
        width = int(min(sizes.max(), max(8, 3 * C // len(self.index))))
        self.table = np.empty((len(self.index), width), np.int32)
        order = np.argsort(group, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(sizes)])
        for p in range(len(self.index)):
            members = order[bounds[p] : bounds[p + 1]][:width]
            if members.size == 0:
                members = self.index[p : p + 1]
            self.table[p] = np.resize(members, width)  # repeats are deduplicated
        self.width = PIVOT_PROBES * width + len(self.index)

    def nearest(self, X, mixture, k):
        """Approximate ``Exhaustive(k).update(X, mixture)`` (an isotropic mixture)."""
        from ..kernels.neighbourhood import block_rows, neighbourhood_estep_into

        n, C = X.shape[0], mixture.n_components
        probes = min(PIVOT_PROBES, len(self.index))
        near = Exhaustive(probes).update(X, self.pivots, None)
        K_piv = near.K if near.K is not None else np.argsort(-near.q, axis=1)[:, :probes]
        form = mixture.covariance.gather_form(mixture.means, mixture.log_weights)
        width = probes * self.table.shape[1] + 1
        K = np.empty((n, k), np.int32)
        q = np.empty((n, k))
        lse = np.empty(n)
        cand = np.full((n, width), -1, np.int32)
        gap = np.empty((n, width))
        n_cand = np.empty(n, np.int32)
        neighbourhood_estep_into(
            np.ascontiguousarray(X), form.M, form.prec, form.cap, np.zeros((1, 1, 1)), form.kind,
            np.ascontiguousarray(K_piv, dtype=np.int32), self.table, 0, 0, 0, 0, k,
            block_rows(n), K, q, lse, cand, gap, n_cand,
        )
        return ChunkResult(K, q, lse, n * len(self.index) + int(n_cand.sum()))


def nearest_sets(X, mixture, k, pivots=None):
    """Each point's ``k`` best components, best first, and their posteriors.

    Exactly (one fused matrix product per tile), or approximately through
    ``pivots`` (:class:`Pivots` of ``mixture``). With ``k`` equal to the
    number of components, the components ordered (ties: the smaller index).

    Returns
    -------
    ChunkResult
        ``K`` (n, k) int32, ``q`` (n, k) and ``lse`` over those k.
    """
    if pivots is not None:
        return pivots.nearest(X, mixture, k)
    res = Exhaustive(min(k, mixture.n_components)).update(X, mixture, None)
    if res.K is None:  # every component kept: q is dense, in component order
        K = np.argsort(-res.q, axis=1, kind="stable").astype(np.int32)
        return ChunkResult(K, np.take_along_axis(res.q, K, axis=1), res.lse, res.n_evals)
    return res
