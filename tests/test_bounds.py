"""Lloyd's assignment with group bounds (KMeans(algorithm="yinyang")).

Oracles: the NumPy twin ``kernels._reference.lloyd_pass`` (exact argmin of the
unexpanded distances, and the statistics), the exact per-group distances (the
bounds must never exceed them), KMeans(algorithm="lloyd") and scikit-learn's
KMeans from the same initial centres.
"""

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.cluster import KMeans as SkKMeans
from sklearn.datasets import make_blobs

from truncmix import KMeans, TruncatedGaussianMixture
from truncmix.estep.bounded import Bounded
from truncmix.kernels import _reference as ref
from truncmix.kernels.bounds import (_tile_norms, group_components, pass_tile, product_rows,
                                     yinyang_pass_into)
from truncmix.stats import Outliers

from .test_free_energy import assert_monotone

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning",
    "ignore::truncmix.exceptions.DegenerateComponentWarning",
)


def run_pass(X, w, means, alive, labels_in, lower, groups, drift, direct_limit=None, blocks=3,
             product=None, own2_in=None, step=None, movers=None):
    """One kernel pass; ``product`` is the products' dtype (X's by default).

    ``own2_in`` (the last pass's squared distances, ``out[1]``) and ``step``
    (each mean's move since) let one-group passes send points to the product
    without their distance; by default no point is sent that way. ``movers``:
    the means a one-group pass checks exactly (their move left out of
    ``drift``). ``w`` None: unit weights, given to the kernel as no array.
    """
    unit = w is None
    w = np.ones(X.shape[0]) if unit else w
    movers = np.empty(0, np.int64) if movers is None else np.asarray(movers, np.int64)
    product = X.dtype if product is None else np.dtype(product)
    own2_in = np.zeros(X.shape[0], np.float32) if own2_in is None else own2_in.astype(np.float32)
    step = np.zeros(means.shape[0]) if step is None else step
    own2 = np.empty(X.shape[0], np.float32)
    members, group_of = groups
    n, D = X.shape
    C = means.shape[0]
    labels = np.empty(n, np.int32)
    dist2 = np.empty(n)
    # the kernel writes every block's statistics: NaN in the buffers must go
    resp, first = np.full((blocks, C), np.nan), np.full((blocks, C, D), np.nan)
    second, evals = np.full((blocks, C), np.nan), np.zeros(blocks, np.int64)
    totals = np.full((blocks, 2), np.nan)
    changed = np.zeros(blocks, np.int64)
    threads = numba.config.NUMBA_NUM_THREADS
    lowest = np.full((threads, 8), -1, np.int64)
    lowest_v, lowest_n = np.empty((threads, 8)), np.zeros(threads, np.int64)
    previous = np.where(labels_in >= 0, labels_in, 0).astype(np.int32)
    yinyang_pass_into(
        X, np.empty(0) if unit else w, means, product_rows(means, members, product), alive,
        labels_in, lower, members, group_of, drift, movers, step, own2_in,
        float(np.finfo(product).eps) / 2, max(1, C // 8) if direct_limit is None else direct_limit,
        pass_tile(C), blocks, 1.0, 0.0, own2, previous, labels, dist2, resp, first, second, totals,
        changed, lowest, lowest_v, lowest_n, evals,
    )
    # scores d2 (scale 1, no constant): their weighted sum and the weight
    np.testing.assert_allclose(totals.sum(0), [np.sum(w * dist2), np.sum(w)], rtol=1e-12)
    # changed labels (weighted rows); the threads' heaps of 8 weighted rows of
    # lowest score (here d2; ties to the smaller row) hold the pass's 8 lowest
    assert changed.sum() == np.sum((labels != previous) & (w != 0))
    np.testing.assert_allclose(own2, dist2, rtol=1e-6, atol=np.finfo(np.float32).tiny)
    kept = lowest[lowest >= 0]
    assert kept.size == np.minimum(lowest_n, 8).sum() and np.all(w[kept] != 0)
    rows = np.flatnonzero(w != 0)
    want = rows[np.lexsort((rows, dist2[rows]))][:8]
    np.testing.assert_array_equal(np.intersect1d(kept, want), np.sort(want))
    # the chunk's worst-explained points, chosen among them, are the ones
    # chosen over the whole chunk
    among = Outliers.among(dist2, X, lowest[lowest >= 0], 5, 8)
    whole = Outliers.from_chunk(dist2, w, X, 5, 8)
    np.testing.assert_array_equal(among.rows, whole.rows)
    return labels, dist2, resp.sum(0), first.sum(0), second.sum(0), int(evals.sum())


def lloyd_step(means, out):
    """Lloyd's M-step from a pass's statistics (``out`` of :func:`run_pass`)."""
    new = means.copy()
    filled = out[2] > 0
    new[filled] += out[3][filled] / out[2][filled, None]
    return new


def drifts(old, new, groups, n_movers=0):
    """Each mean's move (inflated as Bounded inflates it) and its group's largest.

    With ``n_movers`` (one group only) also the means that moved farthest,
    whose move the group's drift then leaves out: ``(step, drift, movers)``.
    """
    step = np.sqrt(((new - old) ** 2).sum(1)) * (1 + 1e-12)
    G = groups[0].shape[1]
    if not n_movers:
        return step, np.array([step[groups[1] == g].max(initial=0.0) for g in range(G)])
    assert G == 1
    order = np.argsort(-step, kind="stable")
    movers = order[:n_movers]
    return step, np.array([step[order[n_movers:]].max(initial=0.0)]), movers


def check_against_twin(X, w, means, alive, out, groups, fresh):
    labels, dist2, resp, first, second, _ = out
    r_labels, r_dist2, r_resp, r_first, r_second = ref.lloyd_pass(X, w, means, alive)
    np.testing.assert_array_equal(labels, r_labels)
    np.testing.assert_allclose(dist2, r_dist2, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(resp, r_resp, rtol=1e-12)
    # sums of differences may cancel: their rounding scales with the data
    scale = max(1.0, float(np.max(np.abs(X))))
    np.testing.assert_allclose(first, r_first, rtol=1e-10, atol=1e-10 * scale)
    np.testing.assert_allclose(second, r_second, rtol=1e-10)
    return labels


def check_bounds(X, means, alive, labels, lower, groups, tight, product=None):
    exact = ref.group_lower_bounds(X, means, alive, labels, groups[1], lower.shape[1])
    # a bound may never exceed the distance it bounds
    assert np.all(lower.astype(np.float64) <= exact), np.max(lower - exact)
    if tight:
        # fresh bounds from the products are the distances less their rounding
        # (larger for float32 products, here on data far from the origin); the
        # label's own group holds the second least distance over all means
        # (a lower bound on its own members': no scan of the group per row)
        own = groups[1][labels][:, None] == np.arange(lower.shape[1])[None, :]
        d = np.sqrt(((X.astype(np.float64)[:, None] - means[None]) ** 2).sum(-1))
        d[:, ~alive] = np.inf
        d[np.arange(len(labels)), labels] = np.inf
        expected = np.where(own, d.min(axis=1)[:, None], exact)
        finite = np.isfinite(expected)
        product = X.dtype if product is None else np.dtype(product)
        atol = 1e-3 if product == np.float64 else 1e-2
        np.testing.assert_allclose(lower[finite], expected[finite], rtol=1e-4, atol=atol)


#: (rows' dtype, products' dtype): float64 rows are multiplied in float32 when
#: their magnitude allows (Bounded._product_dtype)
DTYPES = [(np.float64, np.float64), (np.float32, np.float32), (np.float64, np.float32)]


@pytest.mark.parametrize("dtype,product", DTYPES)
@pytest.mark.parametrize("C,n_groups,n_movers", [(1, 1, 0), (7, 1, 0), (7, 1, 2), (30, 1, 3),
                                                 (23, 3, 0), (60, 6, 0)])
def test_kernel_equals_exact_lloyd_over_passes(dtype, product, C, n_groups, n_movers):
    rng = np.random.default_rng(C)
    n, D = 700, 5
    centres = rng.normal(scale=4.0, size=(C, D))
    X = (centres[rng.integers(0, C, n)] + rng.normal(size=(n, D)) + 30.0).astype(dtype)
    w = rng.uniform(0.0, 2.0, n)
    w[::17] = 0.0
    means = X[rng.choice(n, C, replace=False)].astype(np.float64)
    alive = np.ones(C, bool)
    groups = group_components(means, alive, n_groups)
    labels = np.full(n, -1, np.int32)
    lower = np.empty((n, n_groups), np.float32)
    out = run_pass(X, w, means, alive, labels, lower, groups, np.zeros(n_groups), product=product)
    labels = check_against_twin(X, w, means, alive, out, groups, True)
    check_bounds(X, means, alive, labels, lower, groups, tight=True, product=product)
    assert out[5] >= n * C  # the first pass scores every mean
    for step in range(6):
        # Lloyd's M-step, then some means jump (as relocated ones do)
        new = lloyd_step(means, out)
        if step == 2:
            new[0] += 5.0
        drift_c, drift, *movers = drifts(means, new, groups, n_movers)
        means = new
        out = run_pass(X, w, means, alive, labels, lower, groups, drift, product=product,
                       own2_in=out[1], step=drift_c, movers=movers[0] if movers else None)
        labels = check_against_twin(X, w, means, alive, out, groups, False)
        check_bounds(X, means, alive, labels, lower, groups, tight=False)


@pytest.mark.parametrize("dtype,product", DTYPES)
def test_exact_ties_across_groups_go_to_the_smaller_index(dtype, product):
    # means on a lattice and points on the midpoints between lattice
    # neighbours: every point is exactly as far from two (or four) means,
    # often of different groups, so the least group minima tie and the
    # product path searches several groups; far from the origin, the
    # expanded form's rounding also puts other means within its bound
    side = 5
    grid = np.stack(np.meshgrid(np.arange(side), np.arange(side), indexing="ij"), -1)
    means = grid.reshape(-1, 2).astype(np.float64) * 2.0 + 64.0
    C, G = means.shape[0], 6
    X = np.concatenate([means[:-1] + [1.0, 0.0], means[:-1] + [0.0, 1.0],
                        means[:-1] + [1.0, 1.0]]).astype(dtype)
    n = X.shape[0]
    alive = np.ones(C, bool)
    groups = group_components(means, alive, G)
    d2 = ((X.astype(np.float64)[:, None, :] - means[None]) ** 2).sum(-1)
    tied = np.sort(d2, axis=1)[:, 1] == d2.min(axis=1)
    two = np.argsort(d2, axis=1, kind="stable")[:, :2]
    assert (tied & (groups[1][two[:, 0]] != groups[1][two[:, 1]])).any()
    for limit in (1, 10**9):  # by the product / by the direct search
        labels = np.full(n, -1, np.int32)
        lower = np.empty((n, G), np.float32)
        out = run_pass(X, np.ones(n), means, alive, labels, lower, groups, np.zeros(G), limit,
                       product=product)
        labels = check_against_twin(X, np.ones(n), means, alive, out, groups, False)
        np.testing.assert_array_equal(labels, np.argmin(d2, axis=1))
        check_bounds(X, means, alive, labels, lower, groups, tight=False)
        # a second pass with the same means: from the bounds (or the direct search)
        again = run_pass(X, np.ones(n), means, alive, labels, lower, groups, np.zeros(G), limit,
                         product=product)
        np.testing.assert_array_equal(again[0], labels)


def test_kernel_prunes_when_means_stand_still():
    X, _ = make_blobs(3000, 4, centers=40, cluster_std=0.3, random_state=0)
    C, G = 40, 4
    means = X[np.random.default_rng(0).choice(3000, C, replace=False)]
    alive = np.ones(C, bool)
    groups = group_components(means, alive, G)
    labels = np.full(3000, -1, np.int32)
    lower = np.empty((3000, G), np.float32)
    out = run_pass(X, np.ones(3000), means, alive, labels, lower, groups, np.zeros(G))
    again = run_pass(X, np.ones(3000), means, alive, out[0], lower, groups, np.zeros(G))
    np.testing.assert_array_equal(again[0], out[0])
    # with fresh bounds and no drift, most points only check their own mean
    assert again[5] < 0.25 * 3000 * C, again[5]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("filled", [1, 37, 64])
def test_tile_norms_are_the_float64_squared_norms_of_the_filled_columns(dtype, filled):
    # the tile holds rows as columns; only the first ``filled`` are rows
    rng = np.random.default_rng(filled)
    buf = (rng.standard_normal((16, 64)) * 10.0 ** rng.uniform(-3, 3, 64)).astype(dtype)
    xx = np.full(64, -1.0)
    _tile_norms(buf, filled, xx)
    expected = np.einsum("dr,dr->r", buf.astype(np.float64), buf.astype(np.float64))
    np.testing.assert_allclose(xx[:filled], expected[:filled], rtol=1e-14)
    # the rest of the tile is left alone
    assert np.all(xx[filled:] == -1.0)


def test_dead_components_are_never_chosen_and_direct_search_agrees():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(500, 3))
    C, G = 30, 5
    means = rng.normal(size=(C, 3))
    alive = np.ones(C, bool)
    alive[[0, 7, 8, 29]] = False
    groups = group_components(means, alive, G)
    for limit in (1, 10**9):  # products for every searched point / member by member
        labels = np.full(500, -1, np.int32)
        lower = np.empty((500, G), np.float32)
        out = run_pass(X, np.ones(500), means, alive, labels, lower, groups, np.zeros(G), limit)
        labels = check_against_twin(X, np.ones(500), means, alive, out, groups, True)
        assert not np.isin(labels, [0, 7, 8, 29]).any()
        moved = means + rng.normal(scale=0.05, size=means.shape)
        _, drift = drifts(means, moved, groups)
        out = run_pass(X, np.ones(500), moved, alive, labels, lower, groups, drift, limit)
        labels = check_against_twin(X, np.ones(500), moved, alive, out, groups, False)
        check_bounds(X, moved, alive, labels, lower, groups, tight=False)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), C=st.integers(2, 40), G=st.integers(1, 8),
       scale=st.floats(0.01, 3.0), dtypes=st.sampled_from(DTYPES), n_movers=st.integers(0, 3))
def test_kernel_is_exact_lloyd_under_random_moves(seed, C, G, scale, dtypes, n_movers):
    rng = np.random.default_rng(seed)
    n, D = 200, 3
    X = rng.normal(scale=3.0, size=(n, D)).astype(dtypes[0])
    means = rng.normal(scale=3.0, size=(C, D))
    alive = np.ones(C, bool)
    groups = group_components(means, alive, G)
    G = groups[0].shape[1]
    labels = np.full(n, -1, np.int32)
    lower = np.empty((n, G), np.float32)
    n_movers = n_movers if G == 1 else 0
    movers = None
    for _ in range(4):
        first = labels[0] < 0
        out = run_pass(X, None, means, alive, labels, lower, groups,
                       np.zeros(G) if first else drift, product=dtypes[1],
                       own2_in=None if first else out[1], step=None if first else drift_c,
                       movers=None if first else movers)
        labels = check_against_twin(X, np.ones(n), means, alive, out, groups, False)
        check_bounds(X, means, alive, labels, lower, groups, tight=False)
        new = means + rng.normal(scale=scale, size=means.shape) * (rng.uniform(size=(C, 1)) < 0.5)
        drift_c, drift, *movers = drifts(means, new, groups, n_movers)
        movers = movers[0] if movers else None
        means = new


@pytest.mark.parametrize("limit", [1, 10**9])
def test_float32_products_of_float64_rows_resolve_near_ties_exactly(limit):
    # points a relative 1e-12 off the bisector of two means: float32 products
    # cannot tell the two apart, the exact re-scoring in float64 must
    rng = np.random.default_rng(5)
    C, D, G = 12, 4, 3
    means = rng.normal(scale=5.0, size=(C, D)) + 40.0
    a, b = rng.integers(0, C, 400), rng.integers(0, C, 400)
    keep = a != b
    a, b = a[keep], b[keep]
    t = 0.5 + rng.choice([-1e-12, 1e-12, 0.0], a.size)
    X = means[a] + t[:, None] * (means[b] - means[a])
    alive = np.ones(C, bool)
    groups = group_components(means, alive, G)
    n = X.shape[0]
    labels = np.full(n, -1, np.int32)
    lower = np.empty((n, G), np.float32)
    out = run_pass(X, np.ones(n), means, alive, labels, lower, groups, np.zeros(G), limit,
                   product=np.float32)
    labels = check_against_twin(X, np.ones(n), means, alive, out, groups, False)
    check_bounds(X, means, alive, labels, lower, groups, tight=False)
    again = run_pass(X, np.ones(n), means, alive, labels, lower, groups, np.zeros(G), limit,
                     product=np.float32)
    check_against_twin(X, np.ones(n), means, alive, again, groups, False)


@pytest.mark.parametrize("scale", [1e-20, 1e12])
def test_float32_products_keep_bounds_valid_at_extreme_scales(scale):
    # at 1e-20 the squared norms are float32 subnormals (absolute rounding,
    # covered by the underflow term); at 1e12 the products are near 1e25
    rng = np.random.default_rng(6)
    C, D, G = 20, 3, 4
    centres = rng.normal(scale=4.0, size=(C, D))
    X = (centres[rng.integers(0, C, 500)] + rng.normal(size=(500, D))) * scale
    means = X[rng.choice(500, C, replace=False)]
    alive = np.ones(C, bool)
    groups = group_components(means, alive, G)
    labels = np.full(500, -1, np.int32)
    lower = np.empty((500, G), np.float32)
    for step in range(3):
        drift = np.zeros(G)
        if step:
            new = lloyd_step(means, out)
            _, drift = drifts(means, new, groups)
            means = new
        out = run_pass(X, np.ones(500), means, alive, labels, lower, groups, drift,
                       product=np.float32)
        labels = check_against_twin(X, np.ones(500), means, alive, out, groups, False)
        check_bounds(X, means, alive, labels, lower, groups, tight=False)


def test_float64_data_far_from_the_origin_scores_its_final_pass_exactly():
    # the loop sees the centred rows (small: float32 products), the final
    # pass the rows as given, around 1e20 (float64 products): both exact
    X, _ = make_blobs(3000, 4, centers=8, cluster_std=1.0, random_state=0)
    X = X * 1e6 + 1e20
    init = X[np.random.default_rng(0).choice(3000, 8, replace=False)]
    a = KMeans(8, init=init, max_iter=20, tol=0, algorithm="yinyang").fit(X)
    b = KMeans(8, init=init, max_iter=20, tol=0, algorithm="lloyd").fit(X)
    exact = ((X[:, None, :] - a.cluster_centers_[None]) ** 2).sum(-1).argmin(1)
    np.testing.assert_array_equal(a.labels_, exact)
    np.testing.assert_array_equal(a.labels_, b.labels_)


def test_bounded_multiplies_float64_rows_in_float32_only_at_moderate_magnitudes():
    means = np.zeros((3, 2))
    b = Bounded(10)
    assert b._product_dtype(np.ones((10, 2)), means, 0) == np.float32
    assert b._product_dtype(np.full((10, 2), 1e20), means, 10) == np.float64
    assert b._product_dtype(np.full((10, 2), 1e-20), means, 20) == np.float64
    assert b._product_dtype(np.ones((10, 2)), np.full((3, 2), 1e20), 0) == np.float64
    assert b._product_dtype(np.ones((10, 2), np.float32), means, 30) == np.float32


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_features", [6, 64])  # one group (Hamerly) / C/10 groups
def test_yinyang_fit_equals_lloyd_and_sklearn(dtype, n_features):
    # yinyang's labels are the exact argmin of the float64 distances, in
    # either dtype; lloyd and scikit-learn rank by the expanded form in the
    # data's dtype, which in float32 may order a near tie the other way (on
    # one BLAS kernel and not on another), so the references run on the
    # float64 copy of the same values, where the expanded form is exact to
    # about 1e-16
    X, _ = make_blobs(4000, n_features, centers=30, cluster_std=1.5, random_state=1)
    X = X.astype(dtype)
    X64 = X.astype(np.float64)
    init = X[np.random.default_rng(2).choice(4000, 30, replace=False)]
    w = np.random.default_rng(3).uniform(0.5, 2.0, 4000)
    a = KMeans(30, init=init, max_iter=100, tol=0, algorithm="yinyang").fit(X, sample_weight=w)
    init64 = init.astype(np.float64)
    b = KMeans(30, init=init64, max_iter=100, tol=0, algorithm="lloyd").fit(X64, sample_weight=w)
    sk = SkKMeans(30, init=init64, n_init=1, max_iter=100, tol=0, algorithm="lloyd").fit(
        X64, sample_weight=w)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.labels_, sk.labels_)
    assert a.n_iter_ == b.n_iter_
    rtol = 1e-10 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=rtol)
    np.testing.assert_allclose(a.cluster_centers_, sk.cluster_centers_, rtol=rtol, atol=1e-5)
    np.testing.assert_allclose(a.inertia_, b.inertia_, rtol=rtol)
    np.testing.assert_allclose(a.free_energy_history_, b.free_energy_history_, rtol=1e-6)
    # the final scoring pass sees the rows as given, the loop their centred
    # copy, rounded to float32 (a relative 1e-7 apart at D = 64)
    assert_monotone(a.free_energy_history_[:-1] if dtype == np.float32 else a.free_energy_history_)
    # the bounds pay: late iterations compute far fewer than N C distances
    evals = [r.n_evals for r in a.history_]
    assert evals[0] >= 4000 * 30 and min(evals[1:]) < 0.3 * 4000 * 30, evals


def test_yinyang_does_not_depend_on_chunking_and_relocates_like_lloyd():
    X, _ = make_blobs(3000, 4, centers=12, random_state=4)
    # a far-away start for one centre empties it: it is re-seeded
    init = X[:12].copy()
    init[5] = 1e3
    fits = [KMeans(12, init=init, max_iter=50, tol=0, algorithm=alg, chunk_size=cs).fit(X)
            for alg, cs in (("lloyd", None), ("yinyang", None), ("yinyang", 257))]
    for f in fits[1:]:
        np.testing.assert_array_equal(f.labels_, fits[0].labels_)
        np.testing.assert_allclose(f.cluster_centers_, fits[0].cluster_centers_, rtol=1e-10)
        assert f.n_iter_ == fits[0].n_iter_
    assert any(r.n_relocated for r in fits[1].history_)


def test_groups_are_balanced_and_near():
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=10.0, size=(7, 4))
    means = centres.repeat(9, axis=0)[:60] + rng.normal(scale=0.1, size=(60, 4))
    members, group_of = group_components(means, np.ones(60, bool), 7)
    assert members.shape == (9, 7)
    counts = np.bincount(group_of, minlength=7)
    assert counts.max() - counts.min() <= 1 + (9 * 7 - 60)
    flat = members.ravel()
    np.testing.assert_array_equal(np.sort(flat[flat >= 0]), np.arange(60))
    for g in range(7):
        col = members[:, g]
        assert np.all(group_of[col[col >= 0]] == g)
    # well separated clumps of 9 become the groups
    assert len({tuple(np.sort(members[:, g][members[:, g] >= 0] // 9)) for g in range(7)}) == 7


def test_group_count_follows_memory_budget_and_estimator_choice():
    est = Bounded(n_samples=10**9)
    assert est.n_groups(1000) == 1  # 4 bytes per group and point: one group only
    assert Bounded(n_samples=1000).n_groups(1000) == 100
    # few features: one group (Hamerly's bound), whatever C
    assert Bounded(n_samples=1000, n_features=16).n_groups(1000) == 1
    assert Bounded(n_samples=1000, n_features=64).n_groups(1000) == 100
    X, _ = make_blobs(500, 3, centers=5, random_state=0)
    assert isinstance(KMeans(5)._estep(_memory(X)), Bounded)
    assert not isinstance(KMeans(5, algorithm="lloyd")._estep(_memory(X)), Bounded)
    # the isotropic equal-weight hard mixture is the same model
    gmm = TruncatedGaussianMixture(5, covariance_type="isotropic", weights="equal", n_active=1)
    assert isinstance(gmm._estep(_memory(X)), Bounded)
    learned = TruncatedGaussianMixture(5, covariance_type="isotropic", n_active=1)
    assert not isinstance(learned._estep(_memory(X)), Bounded)


def _memory(X):
    from truncmix.backends.memory import MemoryData

    return MemoryData(X, np.ones(X.shape[0]))


def test_yinyang_gmm_equals_lloyd_kmeans():
    X, _ = make_blobs(2000, 5, centers=8, random_state=7)
    init = X[:8]
    gmm = TruncatedGaussianMixture(8, covariance_type="isotropic", weights="equal", n_active=1,
                                   means_init=init, max_iter=40, tol=0).fit(X)
    km = KMeans(8, init=init, max_iter=40, tol=0, algorithm="lloyd").fit(X)
    np.testing.assert_array_equal(gmm.predict(X), km.labels_)
    np.testing.assert_allclose(gmm.means_, km.cluster_centers_, rtol=1e-10)


def test_one_far_mover_is_checked_exactly_and_the_other_bounds_hold():
    # one mean jumps far, the others stand still: with one group its move
    # would loosen every point's bound; checked exactly, it leaves them tight
    X, _ = make_blobs(2000, 3, centers=20, cluster_std=0.5, random_state=1)
    C, n = 20, 2000
    means = X[np.random.default_rng(1).choice(n, C, replace=False)]
    alive = np.ones(C, bool)
    groups = group_components(means, alive, 1)
    labels = np.full(n, -1, np.int32)
    lower = np.empty((n, 1), np.float32)
    out = run_pass(X, None, means, alive, labels, lower, groups, np.zeros(1))
    labels = check_against_twin(X, np.ones(n), means, alive, out, groups, True)
    moved = means.copy()
    moved[3] += 40.0
    step, drift, movers = drifts(means, moved, groups, 1)
    assert movers[0] == 3 and drift[0] == 0.0
    evals = {}
    for name, kw in (("movers", dict(movers=movers)),
                     ("drift", dict())):
        lo = lower.copy()
        d = drift if name == "movers" else np.array([step.max()])
        res = run_pass(X, None, moved, alive, labels, lo, groups, d, own2_in=out[1], step=step,
                       **kw)
        check_against_twin(X, np.ones(n), moved, alive, res, groups, False)
        check_bounds(X, moved, alive, res[0], lo, groups, tight=False)
        evals[name] = res[5]
    # own distance and the mover's for most points, against every mean for all
    assert evals["movers"] < 0.25 * n * C, evals
    assert evals["drift"] >= n * C, evals
