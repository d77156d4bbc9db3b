"""The neighbourhood E-step (var-GMM-S / vc-GMM): cost grows with G, not with C.

Each point keeps its truncated set K_n between iterations. Its candidates are
K_n, the neighbourhoods of the components in K_n, and ``n_random`` random
components; the new K_n is the best C' of them. Every component is the first
member of its own neighbourhood, so the old K_n is always a candidate and the
free energy cannot decrease.

Neighbourhoods are learnt from the statistics the E-step already gathers (the
"-S" variant): for every point whose best component is b, each other candidate
c gets the gap ``l_n(b) - l_n(c)``; b's new neighbours are the candidates with
the smallest mean gap, the ones that come closest to competing with b for b's
own points. This costs no log-joint evaluation beyond the E-step's own, ranks by
the same log-joint the E-step ranks by (so it suits every covariance type and
learned weights), and needs no C x C work. (Component-to-component distances,
the "-X" variant, cost O(C^2 D) per iteration, more than the E-step itself once
C exceeds about N C' G / C.) The first table, before any statistics exist,
comes from the log-joints of the means under every component, once per fit.
"""

from __future__ import annotations

import numpy as np

from ..model.covariance import GatherForm, Isotropic
from ..model.mixture import Mixture
from .base import ChunkResult, EStep
from .exhaustive import Exhaustive
from .sketch import Sketch, nearest_sets, uses_sketch

#: pairs held in raw form before they are folded into the table (bounds memory)
FOLD_ENTRIES = 1 << 22

#: largest float64 means + precisions the kernel reads as they are. Beyond it
#: (with float32 data) they are cast to float32: the random reads then leave the
#: cache and halving them pays; below it the float32 -> float64 conversion of
#: every term costs more. Measured on one thread (2 MiB L2 per core): at C =
#: 1 000, D = 32 (0.5 MiB) float64 took 14 ms per 100 000 rows (k-means, C' = 1)
#: and 82 ms (diagonal, C' = 5) against 17 and 102 ms in float32; at C = 8 000,
#: D = 64 float32 was faster (100 against 122 ms per 200 000 rows)
FLOAT64_FORM_BYTES = 1 << 20

#: skip the exhaustive rescue of far points whose component's far points found
#: nothing better in the last pass, unless a component jumped near them since
#: (see :meth:`Neighbourhood.update`); tests switch it off
SKIP_FUTILE_RESCUES = True

#: rescues of at most this many evaluations per chunk (rows x C) run on one
#: thread (about 3 ms of work there): late in a fit they are a few hundred rows
#: at large C, and a parallel region can wait longer for a busy core than that.
#: At C = 8 000, D = 64: 100 rows took 1.5 ms on one thread against 8 ms in
#: parallel on the shared 2-core machine under load, 400 rows 5 against 12 ms
RESCUE_SERIAL_EVALS = 1 << 21


class NeighbourScores:
    """What the neighbourhood E-step gathers besides the M-step's statistics.

    Closed under ``+``. Holds the gaps of (best component, candidate) pairs,
    kept raw per chunk and folded into a (C, A) table once they grow past
    :data:`FOLD_ENTRIES` (so memory is bounded whatever the data size), and
    per-component summaries for global moves (:mod:`truncmix.moves`):
    ``removal`` (C,), the estimated loss of free energy if the component were
    dropped, and ``worst_lse`` / ``worst_row`` (C,), its worst-explained point.
    """

    def __init__(self, n_components, capacity, parts=(), table=None, removal=None,
                 worst_lse=None, worst_row=None, futile=None, useful=None):
        C = n_components
        self.n_components = C
        self.capacity = capacity
        self.parts = list(parts)
        self.table = table
        self.removal = np.zeros(C) if removal is None else removal
        self.worst_lse = np.full(C, np.inf) if worst_lse is None else worst_lse
        self.worst_row = np.full(C, -1, np.int64) if worst_row is None else worst_row
        # per component (the search's best): far points whose exhaustive rescue
        # found nothing better, and those for which it did (see Neighbourhood)
        self.futile = np.zeros(C, np.int64) if futile is None else futile
        self.useful = np.zeros(C, np.int64) if useful is None else useful

    @classmethod
    def from_chunk(cls, n_components, capacity, best, cand, gap, n_cand, weights, lse=None,
                   start=0):
        out = cls(n_components, capacity, [(best, cand, gap, n_cand, weights)])
        if lse is not None:
            from ..kernels.neighbourhood import chunk_summaries

            chunk_summaries(best, lse, cand, gap, weights, start, out.removal, out.worst_lse,
                            out.worst_row)
        return out

    @property
    def n_entries(self):
        return sum(p[1].size for p in self.parts)

    def folded(self):
        """The pair statistics as one ``(keys, sums, counts)`` table."""
        from ..kernels.neighbourhood import merge_tables_into, tally_into

        C, A = self.n_components, self.capacity
        keys = np.full((C, A), -1, np.int32)
        sums = np.zeros((C, A))
        counts = np.zeros((C, A))
        if self.table is not None:
            merge_tables_into(keys, sums, counts, *self.table)
        for best, cand, gap, n_cand, weights in self.parts:
            tally_into(best, cand, gap, n_cand, weights, keys, sums, counts)
        return keys, sums, counts

    def __add__(self, other):
        if not isinstance(other, NeighbourScores):
            return NotImplemented
        # worst points: the lower lse, ties to the smaller row (any grouping agrees)
        take = (other.worst_lse < self.worst_lse) | (
            (other.worst_lse == self.worst_lse) & (other.worst_row >= 0)
            & ((self.worst_row < 0) | (other.worst_row < self.worst_row))
        )
        out = NeighbourScores(
            self.n_components, self.capacity, self.parts + other.parts,
            removal=self.removal + other.removal,
            worst_lse=np.where(take, other.worst_lse, self.worst_lse),
            worst_row=np.where(take, other.worst_row, self.worst_row),
            futile=self.futile + other.futile, useful=self.useful + other.useful,
        )
        if self.table is not None and other.table is not None:
            from ..kernels.neighbourhood import merge_tables_into

            keys, sums, counts = (a.copy() for a in self.table)
            merge_tables_into(keys, sums, counts, *other.table)
            out.table = (keys, sums, counts)
        else:
            out.table = self.table if self.table is not None else other.table
        if out.n_entries > FOLD_ENTRIES:
            out.table, out.parts = out.folded(), []
        return out


class Neighbourhood(EStep):
    """Search each point's C' best components among the neighbours of its current ones.

    Parameters
    ----------
    n_active : int
        C', components kept per point (less than the number of components).
    n_neighbors : int
        G, the size of each component's neighbourhood, itself included.
    n_random : int
        E, random extra candidates per point and pass.

    Notes
    -----
    Points without a truncated set yet (state -1, the first pass of a fit) are
    searched exhaustively, and so are points that their best candidate explains
    far worse than its own points (squared Mahalanobis distance beyond the
    6-sigma point of a chi-square with D degrees of freedom): they are stuck
    among the wrong components, which random candidates alone would take many
    iterations to fix. Once the search has settled (a pass in which no set
    changed), such a point whose component's far points all found nothing
    better in that pass is searched again only if a component that moved since
    (swaps, re-seeding) could beat its C'-th best: until a swap fills its
    cluster, a point of a cluster without a centre would otherwise cost C
    evaluations in every pass. Random candidates come from a counter-based
    stream of (seed, pass, global row), so they do not depend on chunks or
    threads.
    """

    def __init__(self, n_active, n_neighbors=5, n_random=1):
        super().__init__(n_active)
        self.n_neighbors = int(n_neighbors)
        self.n_random = int(n_random)
        self.table = None
        self.seed = 0
        self.pass_index = 0
        self._extra_evals = 0
        self._form_key = None
        self._form = None
        self._prec = None
        self._rescuer = None  # an Exhaustive that keeps the mixture's form between chunks
        self._settled = None  # (C,) bool: far points found nothing better last pass
        self._first_sketch = None  # the Sketch of a first pass (see _first_pass)
        # components whose mean a swap or re-seeding moved, or whose points a
        # swap changed: in the current and in the previous iteration
        self._jumped, self._jumped_before = [], []

    # ----------------------------------------------------------- geometry
    def neighbours(self, n_components):
        """G for a mixture of ``n_components``."""
        return max(1, min(self.n_neighbors, n_components))

    def width(self, n_components):
        """Most candidates a point can have (the kernels' row width)."""
        k = self.kept(n_components)
        return min(n_components, k * self.neighbours(n_components) + self.n_random + k)

    def columns(self, n_components):
        # (a first pass through a sketch scores at most G + 1 candidates per row)
        return self.width(n_components)

    def state_shape(self, n_samples, n_components):
        return (n_samples, self.kept(n_components))

    # -------------------------------------------------------------- state
    def start_fit(self, mixture, random_state):
        """A fresh random stream and the first neighbourhoods, from the means."""
        self.seed = int(random_state.randint(np.iinfo(np.int32).max))
        self.pass_index = 0
        self.table = initial_table(mixture, self.neighbours(mixture.n_components))
        C = mixture.n_components
        self._extra_evals = C * C if self.neighbours(C) < C else 0
        self._settled = None
        self._jumped, self._jumped_before = [], []
        self._first_sketch = None

    def end_pass(self, stats, mixture):
        self.pass_index += 1
        self._first_sketch = None
        extra = stats.extra
        self._jumped_before, self._jumped = self._jumped, []
        if not isinstance(extra, NeighbourScores) or self.table is None:
            self._settled = None
            return
        # Only once the search has settled: no set changed in this pass (not
        # the first, whose M-step follows the start's), so the next M-step
        # gives every mean the value of the last one, except where the last
        # iteration's swaps changed points (recorded) and where this
        # iteration's swaps and re-seedings move means (recorded next). Before
        # that, means drift and a far point's nearest component can change
        # without any jump.
        self._settled = ((extra.futile > 0) & (extra.useful == 0)
                         if SKIP_FUTILE_RESCUES and stats.n_changed == 0 and self.pass_index >= 2
                         else None)
        from ..kernels.neighbourhood import choose_neighbours

        keys, sums, counts = extra.folded()
        self.table = choose_neighbours(keys, sums, counts, self.table, mixture.alive)

    def after_m_step(self, mixture, report):
        """Give re-seeded components the neighbourhood of the place they moved to."""
        relocated = np.asarray(report.relocated, dtype=np.int64)
        if relocated.size == 0:
            return
        # one search among all components for all of them (one call per
        # component cost 1.6 ms each, about 0.1 s for the 60 re-seedings of
        # a second iteration at C = 4 000)
        rows = (neighbours_of(mixture, relocated, self.table.shape[1])
                if self.table is not None and self.table.shape[1] >= 2 else None)
        for i, r in enumerate(relocated):
            self.moved(mixture, r, row=None if rows is None else rows[i])

    def moved(self, mixture, r, near=None, fallbacks=(), row=None):
        """Component ``r`` jumped: its neighbours become those of its new place,
        and it joins their neighbourhoods (so their points can find it).

        ``near`` is a component known to sit at the new place (a swap moves r
        onto a point of it): r then takes its neighbourhood in O(G) and
        ``mixture`` is not used; ``row`` is r's new table row when the caller
        found it already; without either the neighbours are found among all
        components of ``mixture``. ``fallbacks``: the components that took
        r's points (their means move at the next M-step). All of them are
        remembered for the check of skipped rescues (:meth:`update`).
        """
        self._jumped += [int(r)] + ([] if near is None else [int(near)])
        self._jumped += [int(c) for c in np.unique(np.asarray(fallbacks, dtype=np.int64))]
        if self.table is None or self.table.shape[1] < 2:
            return
        G = self.table.shape[1]
        if row is not None:
            row = np.asarray(row)
        elif near is None:
            row = neighbours_of(mixture, [r], G)[0]
        else:
            row = [r, near] + [c for c in self.table[near][1:] if c != r]
            row = np.array(row[:G])
        self.table[r, : len(row)] = row
        for c in row[1:]:
            if r not in self.table[c]:
                self.table[c, -1] = r

    # -------------------------------------------------------------- E-step
    def _gather_form(self, mixture, dtype=np.float64):
        """The mixture's gather form, cached per mixture. With float32 data and
        means and precisions larger than :data:`FLOAT64_FORM_BYTES` in float64,
        they are float32 too (half the memory the random accesses of the kernel
        touch; sums stay float64); smaller ones stay in the cache either way and
        are faster in float64 (no conversion per term)."""
        key = (id(mixture), np.dtype(dtype))
        if self._form_key != key:
            form = mixture.covariance.gather_form(mixture.means, mixture.log_weights)
            if (np.dtype(dtype) == np.float32 and form.P3 is None
                    and form.M.nbytes + form.prec.nbytes > FLOAT64_FORM_BYTES):
                form = GatherForm(form.transform, form.M.astype(np.float32),
                                  form.prec.astype(np.float32), form.cap)
            self._form = form
            self._form_key = key
            self._form_mixture = mixture  # keeps the id valid
            # One precision per component (kind 0): the kernel reads only
            # prec[c, 0], so it gets a (C, 1) copy. A (C, D) array would put a
            # cache line per candidate in the working set (512 KiB at C = 8 000);
            # at D = 64 the kernel took 36 instead of 48 ms per 200 000 rows
            # at C = 8 000, 25 instead of 32 ms at C = 1 000.
            self._prec = (np.ascontiguousarray(form.prec[:, :1]) if form.kind == 0
                          else form.prec)
        return self._form

    def update(self, X, mixture, K_prev, start=0, weights=None):
        from .._threads import single_threaded_blas
        from ..kernels.neighbourhood import neighbourhood_estep

        n, C = X.shape[0], mixture.n_components
        k = self.kept(C)
        if self.table is None or self.table.shape[0] != C:
            raise RuntimeError("Neighbourhood.start_fit must be called before the first pass")
        extra_evals, self._extra_evals = self._extra_evals, 0
        if K_prev is None or n == 0:
            K_prev = np.full((n, k), -1, np.int32)
        unknown = K_prev[:, 0] < 0
        if unknown.all():
            return self._first_pass(X, mixture, start, weights, extra_evals)
        form = self._gather_form(mixture, X.dtype)
        Y = X if form.transform is None else X @ form.transform.astype(X.dtype, copy=False)
        Y = np.ascontiguousarray(Y)
        P3 = form.P3 if form.P3 is not None else np.zeros((1, 1, 1))
        # rows without a set are searched exhaustively below; any valid set here
        K_in = np.where(unknown[:, None], 0, K_prev).astype(np.int32)
        with single_threaded_blas():
            K, q, lse, cand, gap, n_cand = neighbourhood_estep(
                Y, form.M, self._prec, form.cap, P3, form.kind, K_in, self.table, self.n_random,
                self.seed, self.pass_index, start, k, self.width(C) - 1,
            )
        n_evals = int(n_cand.sum())
        # Rescue: a point whose best candidate is far outside that component's
        # own spread (Mahalanobis^2 beyond the 6-sigma point of chi^2_D) is
        # stuck among components that do not fit it; search it exhaustively.
        # A per-row rule, so results do not depend on the chunking.
        D = X.shape[1]
        with np.errstate(divide="ignore", invalid="ignore"):
            best_l = lse + np.log(q[:, 0])
            maha = -2.0 * (best_l - form.cap[K[:, 0]])
        far = maha > D + 6.0 * np.sqrt(2.0 * D)
        futile = np.zeros(C, np.int64)
        useful = np.zeros(C, np.int64)
        settled = self._settled
        if far.any() and settled is not None and settled.shape[0] == C:
            # Far points of a settled component (last pass, its far points'
            # exhaustive searches all found what the search had, and no set
            # changed) are searched again only if a component that moved
            # since (see end_pass) could beat their C'-th best. A per-row rule
            # given the pass's flags, so chunks do not matter.
            keep = np.flatnonzero(far & ~unknown & settled[K[:, 0]])
            jumped = np.unique(np.asarray(self._jumped + self._jumped_before, dtype=np.int64))
            if keep.size and jumped.size:
                sub = Mixture(mixture.means[jumped], mixture.log_weights[jumped],
                              mixture.covariance.take(jumped))
                beats = sub.log_joint(np.asarray(X[keep], dtype=np.float64)).max(axis=1)
                with np.errstate(divide="ignore"):
                    kth = lse[keep] + np.log(q[keep, -1])
                n_evals += keep.size * jumped.size
                keep = keep[beats < kth]
            far[keep] = False
            np.add.at(futile, K[keep, 0], 1)
        exhaustive = unknown | far
        if exhaustive.any():
            rows = np.flatnonzero(exhaustive)
            if self._rescuer is None or self._rescuer.n_active != k:
                self._rescuer = Exhaustive(k, cache_form=True, serial_evals=RESCUE_SERIAL_EVALS)
            res = self._rescuer.update(np.ascontiguousarray(X[rows]), mixture, None)
            known = ~unknown[rows]
            same = (res.K == K[rows]).all(axis=1)
            np.add.at(futile, K[rows[known & same], 0], 1)
            np.add.at(useful, K[rows[known & ~same], 0], 1)
            K[rows], q[rows], lse[rows] = res.K, res.q, res.lse
            cand[rows] = -1
            n_cand[rows] = 0
            n_evals += len(rows) * C
        extra = self._scores(C, K, cand, gap, np.minimum(n_cand, cand.shape[1]), weights, lse,
                             start)
        extra.futile, extra.useful = futile, useful
        return ChunkResult(K, q, lse, n_evals + extra_evals, extra=extra)

    def _scores(self, C, K, cand, gap, n_cand, weights, lse, start):
        """The pass's :class:`NeighbourScores` for one chunk."""
        capacity = min(C, max(2 * self.neighbours(C), self.width(C)) + 8)
        weights = np.ones(K.shape[0]) if weights is None else np.asarray(weights, np.float64)
        return NeighbourScores.from_chunk(C, capacity, K[:, 0].copy(), cand, gap, n_cand,
                                          weights, lse=lse, start=start)

    def _first_pass(self, X, mixture, start, weights, extra_evals):
        """The pass of points without a set yet (a fit's first, when no first
        M-step seeded them): each point's best C' of all components, exactly,
        or through a :class:`~truncmix.estep.sketch.Sketch` when there are many
        (isotropic mixtures: nearest by distance).

        The other components seen (the next best up to the search's width, or
        the sketch's candidates) are the pass's candidates, so it gives the
        swaps their summaries and the neighbourhoods their first statistics
        like any other pass (a k-means fit's first iteration then needs no
        pass of its own before them).
        """
        C = mixture.n_components
        if (self._first_sketch is None and isinstance(mixture.covariance, Isotropic)
                and uses_sketch(C, mixture.n_features)):
            # nearest by distance (isotropic); one sketch for the pass's chunks
            self._first_sketch = Sketch(mixture, self.table)
        res, cand, gap, n_cand = nearest_sets(X, mixture, self.kept(C), self.width(C),
                                              self._first_sketch)
        extra = self._scores(C, res.K, cand, gap, n_cand, weights, res.lse, start)
        return ChunkResult(res.K, res.q, res.lse, res.n_evals + extra_evals, extra=extra)


def initial_table(mixture, n_neighbors):
    """Each component, then the G-1 components under which its mean is most probable.

    O(C^2 D) once per fit, through the fused exhaustive kernel in blocks of
    means (no C x C array).
    """
    return neighbours_of(mixture, np.arange(mixture.n_components), n_neighbors)


def neighbours_of(mixture, components, n_neighbors):
    """Table rows for ``components``: each one, then the G-1 other components
    under which its mean is most probable (ties to the smaller index)."""
    C = mixture.n_components
    G = n_neighbors
    components = np.asarray(components, dtype=np.int64)
    if G >= C:
        return np.array([[c] + [d for d in range(C) if d != c] for c in components], np.int32)
    means = np.ascontiguousarray(mixture.means[components])
    if G + 1 < C:
        ranked = Exhaustive(G + 1).update(means, mixture, None).K
    else:  # G = C - 1: every other component, ranked
        ranked = np.argsort(-mixture.log_joint(means), axis=1, kind="stable")
    table = np.empty((len(components), G), np.int32)
    for i, c in enumerate(components):
        row = [d for d in ranked[i] if d != c]
        table[i, 0] = c
        table[i, 1:] = row[: G - 1]
    return table
