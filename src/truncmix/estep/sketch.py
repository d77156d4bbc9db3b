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

So from :data:`PROBE_MIN_COMPONENTS` means on, the sketch does not score all
of them: the sketched means are grouped (a few Lloyd steps, 2 sqrt(C) groups)
and a point scores the group centres, then the members of its 8 nearest
groups (:mod:`truncmix.kernels.probe`): 126 + about 270 sketched distances per
point instead of 4 000, in a kernel of short vector loops. For the points near
a mean that finds the sketch's nearest mean for 99.99% of them (4 000 means,
D = 64) and 99.4% (10 000, D = 32). It serves the points that sit where no
mean is less well, and their choice matters: it decides which components the
first M-step drags between blobs. Those points are recognised after the exact
scoring (their best mean is farther than a quarter of the median squared
distance between neighbouring means) and look among all sketched means, so
they get the same sets as without groups. On the 4 000-mean data (seeds 0-5,
max_iter 4 and 5) the fits then end at the same objectives as without groups
(all twelve equal) in 1.98 instead of 2.11 s on average (max_iter 5); probing
8 groups for every point without that rule left the objective 1.2% higher
after 5 iterations, probing 16 cost 2.03 s.
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
#: from this many means on, a point looks for its nearest sketched mean only in
#: the PROBES nearest of GROUPS_PER_SQRT * sqrt(C) groups of means (formed by
#: GROUP_ITERATIONS Lloyd steps on the sketched means), not among all C
PROBE_MIN_COMPONENTS = 1024
GROUPS_PER_SQRT = 2.0
PROBES = 8
GROUP_ITERATIONS = 5
FAR_SHARE = 0.25
#: neighbours per mean scored exactly after the sketch, when the search has no
#: table of its own yet (a mixture's first M-step)
SKETCH_NEIGHBOURS = 8


def group_means(points, n_groups, n_iter=GROUP_ITERATIONS):
    """A few Lloyd steps grouping ``points`` (m, d) around ``n_groups`` centres.

    Deterministic: the centres start at points evenly spaced in the order of
    the first coordinate (the sketch's leading direction).

    Returns
    -------
    centres : ndarray (n_groups, d)
    labels : ndarray (m,) int64
    """
    m = points.shape[0]
    order = np.argsort(points[:, 0], kind="stable")
    centres = points[order[(np.arange(n_groups) * m) // n_groups]].copy()
    sq = np.einsum("ij,ij->i", points, points)
    for step in range(n_iter + 1):
        scores = (np.einsum("ij,ij->i", centres, centres)[None, :] - 2.0 * points @ centres.T
                  + sq[:, None])
        labels = np.argmin(scores, axis=1)
        if step == n_iter:
            break
        counts = np.bincount(labels, minlength=n_groups)
        sums = np.zeros_like(centres)
        np.add.at(sums, labels, points)
        filled = counts > 0
        centres[filled] = sums[filled] / counts[filled, None]
    return centres, labels


def probe_index(sketched):
    """The :class:`~truncmix.kernels.probe.ProbeIndex` of the sketched means, or
    None when there are too few for groups to pay."""
    from ..kernels.probe import ProbeIndex

    C = sketched.shape[0]
    if C < PROBE_MIN_COMPONENTS:
        return None
    n_groups = int(round(GROUPS_PER_SQRT * np.sqrt(C)))
    centres, labels = group_means(sketched, n_groups)
    return ProbeIndex(centres, sketched, labels)


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
        from .._threads import single_threaded_blas

        # leading eigenvectors of the (D, D) scatter of the means: the same
        # directions as their SVD, in 1 ms instead of 54 (4 000 x 64); on one
        # BLAS thread, as the OpenMP threads of the kernel before may still
        # spin on the cores (eigh took 8-14 ms instead of 0.5)
        centred = means - self.centre
        with single_threaded_blas():
            _, vectors = np.linalg.eigh(centred.T @ centred)
        d = sketch_dims(D)
        self.basis = np.ascontiguousarray(vectors[:, ::-1][:, :d])  # (D, d), largest first
        sketched = centred @ self.basis
        self.sketched = Mixture.with_equal_weights(sketched, Isotropic(1.0, C, d))
        self.table = np.ascontiguousarray(table, dtype=np.int32)
        self.index = probe_index(sketched)
        # squared distance from a mean beyond which a row counts as far from
        # every mean (see nearest)
        if table.shape[1] > 1:
            gaps = means - means[self.table[:, 1]]
            self.far = FAR_SHARE * float(np.median(np.einsum("ij,ij->i", gaps, gaps)))
        else:
            self.far = np.inf

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
        n, C = X.shape[0], mixture.n_components
        basis = self.basis.astype(X.dtype)
        shift = (self.centre @ self.basis).astype(X.dtype)
        if self.index is None:
            Y = np.ascontiguousarray(X @ basis - shift)
            best = Exhaustive(1).update(Y, self.sketched, None).K[:, 0]
            n_sketched = n * C
        else:
            from .._threads import single_threaded_blas

            # a short product: BLAS threads left spinning after it would take
            # a core from the probe kernel's threads (which then took 0.31
            # instead of 0.2 s for 200 000 rows)
            with single_threaded_blas():
                Y = np.ascontiguousarray(X @ basis - shift)
            best, _, seen = self.index.nearest(Y, PROBES)
            n_sketched = int(seen.sum()) + n * self.index.n_groups
        form = mixture.covariance.gather_form(mixture.means, mixture.log_weights)
        out = self._score(X, form, best, k)
        if self.index is not None:
            # rows whose exactly scored best mean is far (farther than
            # FAR_SHARE of the typical squared distance between neighbouring
            # means) sit where no mean is: their choice among far means
            # decides which components the first M-step drags, and the groups
            # found it less well. They look among all sketched means.
            # (isotropic: l = cap - d^2 prec / 2, so the squared distance
            # comes from the best log-joint without touching the rows)
            K, q, lse = out[0], out[1], out[2]
            best_c = K[:, 0]
            with np.errstate(divide="ignore"):
                d2 = 2.0 * (form.cap[best_c] - (lse + np.log(q[:, 0]))) / form.prec[best_c, 0]
            far = np.flatnonzero(d2 > self.far)
            if far.size:
                best[far] = Exhaustive(1).update(np.ascontiguousarray(Y[far]), self.sketched,
                                                 None).K[:, 0]
                n_sketched += far.size * C
                again = self._score(X[far], form, best[far], k)
                for whole, part in zip(out, again):
                    whole[far] = part
        K, q, lse, cand, gap, n_cand = out
        n_evals = n_sketched + int(n_cand.sum())  # sketched (shorter) evaluations, then exact
        return ChunkResult(K, q, lse, n_evals), cand, gap, (cand >= 0).sum(axis=1).astype(np.int32)

    def _score(self, X, form, best, k):
        """``(K, q, lse, cand, gap, n_cand)``: the ``k`` best of each row's
        ``best`` mean and its table neighbours, exactly scored (``form``: the
        mixture's :class:`~truncmix.model.covariance.GatherForm`)."""
        from ..kernels.neighbourhood import neighbourhood_estep

        return list(neighbourhood_estep(
            np.ascontiguousarray(X), form.M, form.prec, form.cap, np.zeros((1, 1, 1)), form.kind,
            np.ascontiguousarray(best.reshape(-1, 1), dtype=np.int32), self.table, 0, 0, 0, 0, k,
            max(self.width, k) + 1,
        ))


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
