"""Initial parameters: means from a seeding rule, then a first M-step.

The means come from k-means++ (scikit-learn's public ``kmeans_plusplus``), from
randomly chosen data points, or from the user. Weights and covariances then come
from one M-step on the hard assignment of every point to its nearest mean, with
the means held fixed. Lloyd's model (isotropic, equal weights, C' = 1) skips
that M-step: its seeds start with the data's variance, and the fit's first
E-step is the first assignment (see ``TruncatedMixtureMixin._start``).
"""

from __future__ import annotations

import numpy as np

from .estep import Exhaustive
from .estep.base import ChunkResult, EStep
from .estep.sketch import SKETCH_NEIGHBOURS, Sketch, nearest_sets, uses_sketch
from .em import e_pass
from .model.covariance import COVARIANCE_TYPES, Isotropic, clip_matrix
from .model.mixture import Mixture
from .mstep import m_step


#: AFK-MC2 Markov chain length per centre (vc-GMM's example uses 20; the
#: chain's cost is O(chain C^2 D) in all, independent of N)
AFKMC2_CHAIN = 20


def initial_means(X, weights, n_components, init, random_state, coreset_size=None):
    """Means to start from, in the data's coordinates.

    Parameters
    ----------
    X : ndarray (N, D)
    weights : ndarray (N,)
    n_components : int
    init : {"k-means++", "afk-mc2", "random"} or ndarray (C, D)
    random_state : numpy.random.RandomState
    coreset_size : int or None
        Seed on a lightweight coreset of this many weighted points drawn from
        X (k-means++ and AFK-MC2 only).

    Returns
    -------
    ndarray (C, D), float64
    """
    if not isinstance(init, str):
        return np.array(init, dtype=np.float64)
    if init == "random":
        p = weights / weights.sum()
        rows = random_state.choice(X.shape[0], size=n_components, replace=False, p=p)
        return np.asarray(X[np.sort(rows)], dtype=np.float64)
    on_coreset = coreset_size is not None and coreset_size < X.shape[0]
    if on_coreset:
        rows, weights = lightweight_coreset(X, weights, max(coreset_size, n_components),
                                            random_state)
        X = X[rows]
    if init == "afk-mc2":
        return afk_mc2(X, weights, n_components, random_state)
    if on_coreset:
        return greedy_kmeans_pp(X, weights, n_components, random_state)
    from sklearn.cluster import kmeans_plusplus

    # Seeding draws points by inverse-CDF sampling over the rows; in a
    # canonical row order the draws do not depend on how the rows are
    # shuffled, and a row of weight k is drawn exactly as k repeated rows.
    order = canonical_order(X)
    centres, _ = kmeans_plusplus(
        X[order], n_components, sample_weight=weights[order], random_state=random_state,
        n_local_trials=local_trials(*X.shape, n_components),
    )
    return np.asarray(centres, dtype=np.float64)


#: greedy k-means++ tries up to this many times scikit-learn's 2 + log C local
#: trials per centre while the seeding's work (rows x centres x trials, times
#: features / 16 above 16: scikit-learn's seeding is bound by the distance
#: entries on short rows) stays within SEEDING_BUDGET. At the budget the extra
#: trials cost about 0.1 s per seeding; on birch1 (100 000 x 2, C = 100),
#: which is 3.6x over it, 4x the trials had doubled the whole fit's time
TRIALS_FACTOR = 4
SEEDING_BUDGET = 1 << 24


def local_trials(n_samples, n_features, n_components):
    """Local trials per centre of the k-means++ seeding of ``n_samples`` rows.

    scikit-learn's ``2 + log C``, times up to :data:`TRIALS_FACTOR` while the
    seeding stays cheap (:data:`SEEDING_BUDGET`). More trials give better seeds:
    on the public sets of the quality benchmark (80% of the rows, ``n_init=3``,
    seeds 0-9) 4x the trials raised the mean ARI on a3 from 0.944 to 0.970,
    on s4 from 0.623 to 0.631 and on s3 from 0.718 to 0.722, and lowered it
    nowhere (s1, s2, unbalance, dim032, hepta, engytime, g2mg equal or higher;
    birch1, beyond the budget, rose from 0.943 to 0.954 at twice the fit
    time); the seeds that ended more than 0.01 below scikit-learn's ARI fell
    from 7 to 1 of 100 on the sets within the budget.
    """
    base = 2 + int(np.log(n_components))
    work = max(1, n_samples * n_components * base * max(n_features, 16) // 16)
    return int(base * min(TRIALS_FACTOR, max(1, SEEDING_BUDGET // work)))


#: coreset entries (rows x features) from which the greedy seeding's products
#: run on the BLAS's threads
SEEDING_THREADED_SIZE = 1 << 18
#: most local trials per centre of the greedy seeding. Up to 8 the trials'
#: product has 8 columns, from 9 on 16 (see the kernel). On 200 000 blobs
#: (2C-point coresets, seeds 0-2) 8 trials seeded 4 000 centres (D = 64) in
#: 0.54 against 0.75-0.79 s with 10 and 10 000 (D = 32) in 2.6 against 3.9 s
#: with 11; the seeds' k-means cost on all the data differed by -0.01% to
#: +0.06%, and covered as many blobs
MAX_TRIALS = 8


def greedy_kmeans_pp(X, weights, n_components, random_state):
    """Greedy k-means++ with ``2 + log C`` (at most :data:`MAX_TRIALS`) local
    trials per centre (numba, float32).

    The same rule as scikit-learn's ``kmeans_plusplus``, in a blocked kernel
    that is several times faster; used on coresets, where the speed matters
    more than drawing scikit-learn's exact seeds.

    Returns
    -------
    ndarray (C, D), float64
    """
    from .kernels.seeding import greedy_kmeans_pp as kernel

    C = n_components
    trials = min(2 + int(np.log(C)), MAX_TRIALS)
    first_u = random_state.random_sample()
    uniforms = random_state.random_sample((max(C - 1, 0), trials))
    w = np.asarray(weights, dtype=np.float64)
    # centred, so the expanded distances lose little to rounding in float32
    X32 = np.asarray(X, dtype=np.float32)
    X32 = np.ascontiguousarray(X32 - ((w @ X32) / w.sum()).astype(np.float32))
    from ._threads import single_threaded_blas

    # one small product per step: on the BLAS's threads when the rows are
    # many (a (8 000 x 64) x (64 x 16) product took 0.09 ms on two threads of
    # this 2-core machine, 0.09-0.17 ms on one; 4 000 centres on 8 000 rows
    # 0.70 against 0.89 s, same rows), on one below that, where threads cost
    # more than they save and keep spinning into the work that follows
    if X32.size >= SEEDING_THREADED_SIZE:
        rows = kernel(X32, w, C, trials, first_u, uniforms)
    else:
        with single_threaded_blas():
            rows = kernel(X32, w, C, trials, first_u, uniforms)
    return np.asarray(X[rows], dtype=np.float64)


def lightweight_coreset(X, weights, size, random_state):
    """A lightweight coreset (Bachem, Lucic and Krause, KDD 2018).

    Rows are drawn i.i.d. with probability ``s(n) = 1/2 w_n / W + 1/2 w_n d_n^2 /
    sum_m w_m d_m^2`` (``d_n`` the distance to the weighted data mean) and
    weighted ``w_n / (size s(n))``, so that weighted sums over the coreset are
    unbiased estimates of those over the data.

    Returns
    -------
    rows : ndarray (size,), int64
        Drawn rows (with repeats), in increasing order.
    weights : ndarray (size,), float64
    """
    w = np.asarray(weights, dtype=np.float64)
    # in blocks that stay in cache (a float64 copy of all of X took 26 ms of
    # the 34 for 200 000 x 64 float32 rows; blocks of 2 048 rows took 8)
    total = np.zeros(X.shape[1])
    for s in range(0, X.shape[0], 2048):
        total += w[s : s + 2048] @ np.asarray(X[s : s + 2048], dtype=np.float64)
    mean = (total / w.sum()).astype(X.dtype)
    d2 = np.empty(X.shape[0])
    for s in range(0, X.shape[0], 8192):
        block = X[s : s + 8192] - mean
        d2[s : s + 8192] = np.einsum("ij,ij->i", block, block)
    spread = w @ d2
    s = 0.5 * w / w.sum() + (0.5 * w * d2 / spread if spread > 0 else 0.5 * w / w.sum())
    s /= s.sum()
    rows = np.sort(random_state.choice(X.shape[0], size=size, replace=True, p=s))
    return rows, w[rows] / (size * s[rows])


def afk_mc2(X, weights, n_components, random_state, chain=AFKMC2_CHAIN):
    """AFK-MC2 seeding (Bachem, Lucic, Hassani and Krause, NeurIPS 2016).

    Approximates k-means++ by short Markov chains whose proposal is fixed after
    the first centre, so the cost does not grow with the number of points
    beyond one O(N D) pass: O(chain C^2 D) in all.

    Returns
    -------
    ndarray (C, D), float64
    """
    from .kernels.seeding import afk_mc2_chains

    X = np.asarray(X)
    w = np.asarray(weights, dtype=np.float64)
    N = X.shape[0]
    first = int(random_state.choice(N, p=w / w.sum()))
    d2 = np.einsum("ij,ij->i", X - X[first], X - X[first], dtype=np.float64)
    wd = w * d2
    q = 0.5 * w / w.sum() + (0.5 * wd / wd.sum() if wd.sum() > 0 else 0.5 * w / w.sum())
    q /= q.sum()
    C = n_components
    proposals = random_state.choice(N, size=(max(C - 1, 0), chain), p=q).astype(np.int64)
    uniforms = random_state.random_sample((max(C - 1, 0), chain))
    chosen = afk_mc2_chains(np.ascontiguousarray(X, dtype=np.float64), w, q, first, proposals,
                            uniforms)
    return np.asarray(X[chosen], dtype=np.float64)


def canonical_order(X):
    """A row order that depends only on the rows' values (equal rows adjacent).

    Rows are sorted by a fixed random projection; distinct rows tie only on a
    set of measure zero.
    """
    direction = np.random.default_rng(20261123).standard_normal(X.shape[1])
    return np.argsort(X @ direction, kind="stable")


def data_covariance(name, n_components, cov, floor):
    """A covariance of type ``name`` with every component at the data's spread."""
    D = cov.shape[0]
    cls = COVARIANCE_TYPES[name]
    var = np.maximum(np.diag(cov), floor.per_feature)
    if name in ("isotropic", "spherical"):
        return cls.from_covariances(float(var.mean()), n_components, D)
    if name == "diag":
        return cls.from_covariances(var, n_components, D)
    clipped, _ = clip_matrix(0.5 * (cov + cov.T), floor)
    return cls.from_covariances(clipped, n_components, D)


class _NearestSets(EStep):
    """Assignment to the nearest mean that also writes each point's C' nearest
    means into the per-point state: the first truncated sets of a search.

    With many components the C' nearest are found through a sketch (see
    :class:`~truncmix.estep.sketch.Sketch`); the sets are then approximate,
    which the search that follows repairs.
    """

    def __init__(self, n_active, sketch=None):
        super().__init__(n_active)
        self.sketch = sketch

    def columns(self, n_components):
        # The exhaustive pass keeps only the C' best per row (the products live
        # in per-thread tiles): chunks sized for C columns were 25 chunks of
        # 4 000 rows at C = 1 000, each with its own parallel region and
        # statistics; the diagonal GMM's fit (100 000 x 32) took 0.532 against
        # 0.515 s with chunks sized for C' columns
        return self.kept(n_components) if self.sketch is None else self.sketch.width + 1

    def update(self, X, mixture, K_prev, start=0, weights=None):
        res, _, _, _ = nearest_sets(X, mixture, self.n_active, sketch=self.sketch)
        K_prev[...] = res.K
        ones = np.ones((X.shape[0], 1))
        return ChunkResult(np.ascontiguousarray(res.K[:, :1]), ones, res.lse, res.n_evals)


class _GivenSets(EStep):
    """The assignment a k-means start already made (``labels``, global rows); the
    per-point state gets each label and its C' - 1 nearest means."""

    def __init__(self, n_active, labels, table):
        super().__init__(n_active)
        self.labels = labels
        self.table = table

    def columns(self, n_components):
        return 1

    def update(self, X, mixture, K_prev, start=0, weights=None):
        n = X.shape[0]
        labels = np.ascontiguousarray(self.labels[start : start + n], dtype=np.int32)
        if K_prev is not None:
            K_prev[...] = self.table[labels, : K_prev.shape[1]]
        return ChunkResult(labels[:, None], np.ones((n, 1)), np.zeros(n), 0)


def first_m_step(backend, means, covariance_type, data_cov, *, learned_weights, floor, reg_covar,
                 seed_state=False, labels=None):
    """Weights and covariances about fixed initial ``means`` (driver coordinates).

    Every point is assigned to its nearest mean; components that get no point
    keep the data's covariance. With ``seed_state`` the backend's (allocated)
    per-point state receives each point's C' nearest means, so a neighbourhood
    search starts from them without another exhaustive pass; with many
    components (:func:`~truncmix.estep.sketch.uses_sketch`) they are searched
    through a :class:`~truncmix.estep.sketch.Sketch` (approximately). ``labels`` (one per
    row, in the backend's order) gives the assignment instead of a search: a
    k-means start has just made it.
    """
    C = means.shape[0]
    start = Mixture.with_equal_weights(means, data_covariance(covariance_type, C, data_cov, floor))
    nearest = Mixture.with_equal_weights(means, Isotropic(1.0, C, means.shape[1]))
    if labels is not None:
        k = backend.state.shape[1] if seed_state else 1
        from .estep.neighbourhood import initial_table

        estep = _GivenSets(k, labels, initial_table(nearest, min(k, C)))
    elif seed_state:
        k = backend.state.shape[1]
        sketch = None
        if uses_sketch(C, means.shape[1]):
            from .estep.neighbourhood import initial_table

            sketch = Sketch(nearest, initial_table(nearest, min(C, max(k + 1, SKETCH_NEIGHBOURS))))
        estep = _NearestSets(k, sketch)
    else:
        estep = Exhaustive(1)
    stats = e_pass(backend, estep, nearest, update_state=False, moments_of=start.covariance)
    mixture, _ = m_step(
        stats, start, learned_weights=learned_weights, floor=floor, reg_covar=reg_covar,
        keep_means=True,
    )
    return mixture
