"""The first pass of a search over many components: nearest means through a sketch.

A search's first pass (no truncated sets yet) needs each point's nearest means.
Exhaustively that is one matrix product over all C means in D dimensions. With
many means the pass goes through a *sketch* instead: the data and the means
projected on the means' d leading principal directions (d = D / 4, at least 8).
Each point's nearest mean in the sketch, and that mean's neighbours, are then
scored exactly; the sets are approximate, which the search that follows repairs.

The principal directions of the means are where the means differ most: a
point's distances to the means differ mostly there, while the rest of its
distance is nearly the same for every mean. On 200 000 points of 64 features
around 4 000 k-means++ seeds (separated blobs, 2 threads) the sketch pass took
0.50 s against 0.89 s for the exhaustive one that keeps the 7 best (0.68 s for
the best alone), and gave 86% of the points their exact nearest mean: the
others sit in blobs no seed reached, with no mean near them. With 10 000 means
and 32 features: 0.98 against 1.87 s, 81%. The sketched product is bound by
its output (one value per point and mean) more than by its length: 0.36 s at
d = 8, 0.43 s at 16, 0.68 s at 64 for 200 000 rows and 4 000 means. Pivots
(points scoring the members of their 3 nearest of 2 sqrt(C) pivot means'
groups, by gathered evaluations) took 1.8 s on the 4 000-mean data and found
82%.
"""

from __future__ import annotations

import numpy as np

from ..model.covariance import Isotropic
from ..model.mixture import Mixture
from .base import ChunkResult
from .exhaustive import Exhaustive

#: the first pass goes through a sketch from this many components on, for rows
#: of at least SKETCH_MIN_FEATURES features (shorter rows gain too little: the
#: selection over C, not the product, is most of the exhaustive pass there)
SKETCH_MIN_COMPONENTS = 2048
SKETCH_MIN_FEATURES = 24
#: neighbours per mean scored exactly after the sketch, when the search has no
#: table of its own yet (a mixture's first M-step)
SKETCH_NEIGHBOURS = 8


def uses_sketch(n_components, n_features):
    """True when a first pass over ``n_components`` means goes through a :class:`Sketch`."""
    return n_components >= SKETCH_MIN_COMPONENTS and n_features >= SKETCH_MIN_FEATURES


def sketch_dims(n_features):
    """Dimensions of the sketch of ``n_features``-dimensional rows."""
    return int(min(n_features, max(8, n_features // 4)))


class Sketch:
    """Approximate nearest means of an isotropic, equal-weight mixture.

    Parameters
    ----------
    mixture : Mixture
        Its means are sketched; the ranking is by Euclidean distance.
    table : ndarray (C, G) int32
        Each component's neighbours, itself first (see
        :func:`truncmix.estep.neighbourhood.initial_table`): the candidates
        scored exactly are the sketch's nearest mean and its neighbours.
    """

    def __init__(self, mixture, table):
        means = mixture.means
        C, D = means.shape
        self.centre = means.mean(axis=0)
        # leading eigenvectors of the (D, D) scatter of the means: the same
        # directions as their SVD, in 1 ms instead of 54 (4 000 x 64)
        centred = means - self.centre
        _, vectors = np.linalg.eigh(centred.T @ centred)
        d = sketch_dims(D)
        self.basis = np.ascontiguousarray(vectors[:, ::-1][:, :d])  # (D, d), largest first
        self.sketched = Mixture.with_equal_weights((means - self.centre) @ self.basis,
                                                   Isotropic(1.0, C, d))
        self.table = np.ascontiguousarray(table, dtype=np.int32)

    @property
    def width(self):
        """Candidates per point (columns the pass needs per row)."""
        return self.table.shape[1]

    def nearest(self, X, mixture, k):
        """Each point's ``k`` best of its candidates, exactly scored under ``mixture``.

        Returns
        -------
        result : ChunkResult
            ``K`` (n, k) best first, ``q``, ``lse`` over them.
        cand, gap, n_cand :
            The other candidates scored, their gaps ``l(best) - l(c)`` and
            their count per row (the neighbourhood statistics of the pass).
        """
        from ..kernels.neighbourhood import neighbourhood_estep

        n, C = X.shape[0], mixture.n_components
        basis = self.basis.astype(X.dtype)
        shift = (self.centre @ self.basis).astype(X.dtype)
        Y = np.ascontiguousarray(X @ basis - shift)
        best = Exhaustive(1).update(Y, self.sketched, None).K
        form = mixture.covariance.gather_form(mixture.means, mixture.log_weights)
        K, q, lse, cand, gap, n_cand = neighbourhood_estep(
            np.ascontiguousarray(X), form.M, form.prec, form.cap, np.zeros((1, 1, 1)), form.kind,
            np.ascontiguousarray(best, dtype=np.int32), self.table, 0, 0, 0, 0, k,
            max(self.width, k) + 1,
        )
        n_evals = n * C + int(n_cand.sum())  # C sketched (shorter) evaluations per row
        return ChunkResult(K, q, lse, n_evals), cand, gap, (cand >= 0).sum(axis=1).astype(np.int32)


def nearest_sets(X, mixture, k, n_seen=None, sketch=None):
    """Each point's ``k`` best components, best first, and the others it saw.

    Exactly, by one fused matrix product per tile that keeps the ``n_seen``
    best (at least k), or approximately through ``sketch`` (a :class:`Sketch`
    of ``mixture``, whose candidates are the sketch's nearest mean and its
    neighbours).

    Returns
    -------
    result : ChunkResult
        ``K`` (n, k) int32, ``q`` (n, k) and ``lse`` over those k.
    cand, gap, n_cand :
        For every row, the components seen other than its best, with their
        gaps ``l(best) - l(c)`` (valid entries first, then -1), and their
        count: the neighbourhood statistics of the pass.
    """
    if sketch is not None:
        return sketch.nearest(X, mixture, k)
    C = mixture.n_components
    h = min(C, max(k, n_seen or k))
    res = Exhaustive(h).update(X, mixture, None)
    if res.K is None:  # every component kept: q is dense, in component order
        K = np.argsort(-res.q, axis=1, kind="stable").astype(np.int32)
        res = ChunkResult(K, np.take_along_axis(res.q, K, axis=1), res.lse, res.n_evals)
    with np.errstate(divide="ignore"):
        log_q = np.log(res.q)
    # gap l(best) - l(c) = log q(best) - log q(c); none where q underflowed
    # (those are last, as the sets are sorted)
    gap = np.ascontiguousarray(log_q[:, :1] - log_q[:, 1:])
    cand = np.where(np.isfinite(gap), res.K[:, 1:], -1).astype(np.int32)
    if cand.shape[1] == 0:
        cand, gap = np.full((len(cand), 1), -1, np.int32), np.zeros((len(cand), 1))
    mass = res.q[:, :k].sum(axis=1)
    kept = ChunkResult(np.ascontiguousarray(res.K[:, :k]), res.q[:, :k] / mass[:, None],
                       res.lse + np.log(mass), res.n_evals)
    return kept, cand, gap, (cand >= 0).sum(axis=1).astype(np.int32)
