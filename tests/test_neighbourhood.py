"""The neighbourhood E-step (search="neighbourhood"), its kernels and the fast seedings.

Oracles: the exhaustive E-step (with G = C every candidate set is every
component), the plain NumPy twins in ``truncmix.kernels._reference``, and
closed-form properties (monotone free energy, evaluation counts).
"""

import numpy as np
from numpy.testing import assert_array_equal
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from truncmix import KMeans, TruncatedGaussianMixture
from truncmix.estep.neighbourhood import Neighbourhood, NeighbourScores, initial_table
from truncmix.init import afk_mc2, lightweight_coreset
from truncmix.kernels import _reference as ref
from truncmix.kernels.neighbourhood import (
    choose_neighbours,
    neighbourhood_estep_into,
    tally_into,
)
from truncmix.model.covariance import COVARIANCE_TYPES
from truncmix.model.mixture import Mixture

from .test_free_energy import SETTINGS, assert_monotone, problems

pytestmark = [
    pytest.mark.filterwarnings(
        "ignore::sklearn.exceptions.ConvergenceWarning",
        "ignore::truncmix.exceptions.DegenerateComponentWarning",
    ),
    pytest.mark.usefixtures("one_blas_thread"),
]

TYPES = ["isotropic", "spherical", "diag", "tied", "full"]


def random_mixture(rng, C, D, cov_type, learned=True):
    means = rng.normal(scale=3.0, size=(C, D))
    if cov_type in ("isotropic",):
        covs = 1.3
    elif cov_type == "spherical":
        covs = rng.uniform(0.5, 2.0, C)
    elif cov_type == "diag":
        covs = rng.uniform(0.5, 2.0, (C, D))
    else:
        A = rng.normal(size=(C, D, D)) * 0.3
        covs = np.eye(D) + np.einsum("cij,ckj->cik", A, A)
        if cov_type == "tied":
            covs = covs[0]
    cov = COVARIANCE_TYPES[cov_type].from_covariances(covs, C, D)
    logw = np.log(rng.dirichlet(np.ones(C))) if learned else np.full(C, -np.log(C))
    return Mixture(means, logw, cov)


def random_sets(rng, n, C, k):
    return np.array([rng.choice(C, size=k, replace=False) for _ in range(n)], np.int32)


def random_table(rng, C, G):
    table = np.empty((C, G), np.int32)
    for c in range(C):
        others = rng.permutation(np.delete(np.arange(C), c))[: G - 1]
        table[c] = [c, *others]
    return table


# ------------------------------------------------------------------ kernels
@pytest.mark.parametrize("cov_type", TYPES)
@pytest.mark.parametrize("k, G, E", [(1, 3, 0), (1, 4, 2), (3, 2, 1), (2, 5, 3)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_estep_kernel_equals_numpy_twin(cov_type, k, G, E, dtype):
    rng = np.random.default_rng(7)
    n, C, D = 60, 12, 3
    mixture = random_mixture(rng, C, D, cov_type)
    X = rng.normal(scale=3.0, size=(n, D)).astype(dtype)
    form = mixture.covariance.gather_form(mixture.means, mixture.log_weights)
    Y = X if form.transform is None else X @ form.transform.astype(dtype)
    Y = np.ascontiguousarray(Y)
    K_prev = random_sets(rng, n, C, k)
    table = random_table(rng, C, G)
    width = min(C, k * G + E + k)
    K = np.empty((n, k), np.int32)
    q = np.empty((n, k))
    lse = np.empty(n)
    cand = np.full((n, width - 1), -1, np.int32)
    gap = np.empty((n, width - 1))
    n_cand = np.empty(n, np.int32)
    full = form.P3 is not None
    neighbourhood_estep_into(
        Y, form.M, form.prec, form.cap, form.P3 if full else np.zeros((1, 1, 1)), form.kind,
        K_prev, table, E, 1234, 5, 1000, k, 16, K, q, lse, cand, gap, n_cand,
    )
    K_r, q_r, lse_r, pairs = ref.neighbourhood_estep(
        Y, form.M, form.prec, form.cap, form.P3, K_prev, table, E, 1234, 5, 1000, k,
    )
    np.testing.assert_array_equal(K, K_r)
    np.testing.assert_allclose(q, q_r, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(lse, lse_r, rtol=1e-12)
    for i in range(n):
        used = [(int(c), g) for c, g in zip(cand[i], gap[i]) if c >= 0]
        assert [c for c, _ in used] == [c for c, _ in pairs[i]]
        np.testing.assert_allclose([g for _, g in used], [g for _, g in pairs[i]], rtol=1e-12,
                                   atol=1e-12)
        assert n_cand[i] == len(ref.candidates(K_prev[i], table, E, 1234, 5, 1000 + i, k))
    # the old set is always a candidate: no point can get worse
    old = np.array([[mixture.log_joint(X[i : i + 1].astype(np.float64))[0, K_prev[i]].max()]
                    for i in range(n)])[:, 0]
    best = np.array([mixture.log_joint(X[i : i + 1].astype(np.float64))[0, K[i, 0]]
                     for i in range(n)])
    assert np.all(best >= old - 1e-9 * np.abs(old))


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("capacity", [3, 8])
@pytest.mark.parametrize("G, tied", [(4, False), (1, False), (2, True), (5, True)])
def test_neighbour_table_equals_numpy_twin(capacity, parallel, G, tied, monkeypatch):
    """Both the serial and the parallel kernel (chosen by the table's size);
    any G, and gaps with ties (broken by the smaller index)."""
    import truncmix.kernels.neighbourhood as kernels

    monkeypatch.setattr(kernels, "CHOOSE_PARALLEL_ENTRIES", 0 if parallel else 1 << 40)
    rng = np.random.default_rng(3)
    n, C, width = 300, 15, 6
    best = rng.integers(C, size=n).astype(np.int32)
    cand = np.full((n, width), -1, np.int32)
    gap = rng.exponential(size=(n, width))
    if tied:
        gap = np.ceil(gap)  # few distinct values: many equal mean gaps
    n_cand = rng.integers(0, width + 1, size=n).astype(np.int32)
    pairs = []
    for i in range(n):
        others = rng.permutation(np.delete(np.arange(C), best[i]))[: n_cand[i]]
        cand[i, : n_cand[i]] = others
        pairs.append([(int(c), g) for c, g in zip(others, gap[i])])
    weights = rng.choice([0.0, 1.0], size=n) if tied else rng.choice([0.0, 0.5, 1.0, 2.0], size=n)
    alive = rng.random(C) > 0.1
    old = random_table(rng, C, G)
    keys = np.full((C, capacity), -1, np.int32)
    sums = np.zeros((C, capacity))
    counts = np.zeros((C, capacity))
    tally_into(best, cand, gap, n_cand, weights, keys, sums, counts)
    new = choose_neighbours(keys, sums, counts, old, alive)
    expected = ref.neighbour_table(best, pairs, weights, old, alive, capacity)
    np.testing.assert_array_equal(new, expected)
    assert (new[:, 0] == np.arange(C)).all()
    assert all(len(set(row)) == G for row in new)


@pytest.mark.parametrize("capacity", [2, 4, 12])
def test_tally_equals_a_plain_pass_over_the_rows(capacity):
    """The grouped tally (rows by best component) fills the table exactly as a
    plain pass in row order would, also into a table that already holds pairs
    and rows that fill up (later pairs dropped)."""
    rng = np.random.default_rng(11)
    C, width = 9, 5

    def chunk(n):
        best = rng.integers(C, size=n).astype(np.int32)
        cand = np.full((n, width), -1, np.int32)
        n_cand = rng.integers(0, width + 1, size=n).astype(np.int32)
        for i in range(n):
            others = rng.permutation(np.delete(np.arange(C), best[i]))[: n_cand[i]]
            cand[i, : n_cand[i]] = others
        return best, cand, rng.exponential(size=(n, width)), n_cand, rng.choice([0.0, 0.5, 1.0], n)

    def plain(parts):
        keys = np.full((C, capacity), -1, np.int32)
        sums, counts = np.zeros((C, capacity)), np.zeros((C, capacity))
        for best, cand, gap, n_cand, w in parts:
            for i in range(len(best)):
                if w[i] == 0.0:
                    continue
                b = best[i]
                for j in range(n_cand[i]):
                    row = list(keys[b])
                    if cand[i, j] in row:
                        a = row.index(cand[i, j])
                        sums[b, a] += w[i] * gap[i, j]
                        counts[b, a] += w[i]
                    elif -1 in row:
                        a = row.index(-1)
                        keys[b, a], sums[b, a], counts[b, a] = cand[i, j], w[i] * gap[i, j], w[i]
        return keys, sums, counts

    parts = [chunk(200), chunk(150)]
    keys = np.full((C, capacity), -1, np.int32)
    sums, counts = np.zeros((C, capacity)), np.zeros((C, capacity))
    for part in parts:
        tally_into(*part, keys, sums, counts)
    want = plain(parts)
    np.testing.assert_array_equal(keys, want[0])
    np.testing.assert_array_equal(sums, want[1])  # same additions in the same order
    np.testing.assert_array_equal(counts, want[2])


def test_scores_sum_in_any_grouping():
    """Folded tables do not depend on how chunks are grouped."""
    rng = np.random.default_rng(5)
    C, width = 10, 4
    parts = []
    for _ in range(6):
        n = 40
        best = rng.integers(C, size=n).astype(np.int32)
        cand = np.array([rng.permutation(np.delete(np.arange(C), b))[:width] for b in best],
                        np.int32)
        gap = rng.exponential(size=(n, width))
        parts.append(NeighbourScores.from_chunk(C, C, best, cand, gap,
                                                np.full(n, width, np.int32), np.ones(n)))
    left = sum(parts[1:], parts[0])
    right = parts[0] + (parts[1] + parts[2]) + (parts[3] + (parts[4] + parts[5]))
    for a, b in zip(left.folded(), right.folded()):
        np.testing.assert_allclose(a, b, rtol=1e-13)


def test_initial_table_holds_each_component_first():
    rng = np.random.default_rng(2)
    mixture = random_mixture(rng, 30, 4, "diag")
    table = initial_table(mixture, 5)
    assert (table[:, 0] == np.arange(30)).all()
    assert all(len(set(row)) == 5 for row in table)
    # the neighbours are the components under which c's mean is most probable
    for c in range(30):
        l = mixture.log_joint(mixture.means[c : c + 1])[0]
        l[c] = -np.inf
        assert set(table[c, 1:]) == set(np.argsort(-l, kind="stable")[:4])


# ------------------------------------------------- G = C is the exhaustive search
@pytest.mark.parametrize("cov_type", TYPES)
@pytest.mark.parametrize("n_active", [1, 3])
def test_neighbourhood_with_all_neighbours_is_exhaustive(cov_type, n_active):
    from .test_free_energy import make_data

    X = make_data(11, 300, 3, 5, "blobs", False)
    C = 6
    kw = dict(n_components=C, n_active=n_active, covariance_type=cov_type, random_state=0,
              max_iter=15, tol=0)
    exhaustive = TruncatedGaussianMixture(**kw).fit(X)
    search = TruncatedGaussianMixture(search="neighbourhood", n_neighbors=C, n_random=0,
                                      swaps=0, **kw).fit(X)
    assert search.n_iter_ == exhaustive.n_iter_
    np.testing.assert_allclose(search.free_energy_history_, exhaustive.free_energy_history_,
                               rtol=1e-10)
    np.testing.assert_allclose(search.means_, exhaustive.means_, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(search.weights_, exhaustive.weights_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(search.covariances_, exhaustive.covariances_, rtol=1e-9,
                               atol=1e-12)
    np.testing.assert_array_equal(search.predict(X), exhaustive.predict(X))


def test_kmeans_with_all_neighbours_is_lloyd():
    from sklearn.datasets import make_blobs

    X, _ = make_blobs(500, 4, centers=8, random_state=1)
    ours = KMeans(8, random_state=3, search="neighbourhood", n_neighbors=8, n_random=0,
                  swaps=0, tol=0).fit(X)
    exhaustive = KMeans(8, random_state=3, tol=0).fit(X)
    np.testing.assert_array_equal(ours.labels_, exhaustive.labels_)
    np.testing.assert_allclose(ours.cluster_centers_, exhaustive.cluster_centers_, rtol=1e-10)
    assert ours.n_iter_ == exhaustive.n_iter_
    np.testing.assert_allclose(ours.inertia_, exhaustive.inertia_, rtol=1e-10)


# ----------------------------------------------------------- free energy, counts
@pytest.mark.parametrize("cov_type", TYPES)
@pytest.mark.parametrize("weights", ["equal", "learned"])
@settings(max_examples=12, **SETTINGS)
@given(data=st.data())
def test_free_energy_never_decreases(cov_type, weights, data):
    X, w, C, seed = data.draw(problems(min_components=3, weighted=data.draw(st.booleans())))
    n_active = data.draw(st.integers(1, C - 1))
    G = data.draw(st.integers(1, C))
    E = data.draw(st.integers(0, 2))
    chunk = data.draw(st.sampled_from([None, 17]))
    est = TruncatedGaussianMixture(
        C, n_active=n_active, covariance_type=cov_type, weights=weights, search="neighbourhood",
        n_neighbors=G, n_random=E, random_state=seed % 2**31, max_iter=30, tol=1e-8,
        chunk_size=chunk,
    ).fit(X, sample_weight=w)
    assert_monotone(est.free_energy_history_)
    assert np.isfinite(est.means_).all()


@settings(max_examples=15, **SETTINGS)
@given(data=st.data())
def test_kmeans_free_energy_never_decreases(data):
    X, w, C, seed = data.draw(problems(min_components=2, weighted=data.draw(st.booleans())))
    est = KMeans(C, search="neighbourhood", n_neighbors=data.draw(st.integers(1, 3)),
                 n_random=data.draw(st.integers(0, 2)), random_state=seed % 2**31,
                 init=data.draw(st.sampled_from(["k-means++", "afk-mc2", "random"])),
                 tol=0, max_iter=30).fit(X, sample_weight=w)
    assert_monotone(est.free_energy_history_)


def test_evaluations_do_not_grow_with_the_number_of_clusters():
    """Once settled, each point scores at most C' G + E + C' components, whatever C."""
    from sklearn.datasets import make_blobs

    N = 4000
    settled = {}
    for C in (20, 80):
        X, _ = make_blobs(N, 5, centers=C, random_state=0, cluster_std=0.5)
        est = KMeans(C, search="neighbourhood", n_neighbors=4, n_random=1, random_state=0,
                     max_iter=10, tol=0).fit(X)
        evals = [r.n_evals for r in est.history_]
        # first pass: the initial table (C^2 means scored), then every point
        assert evals[0] >= C * C + N
        # points far outside their best candidate are searched exhaustively
        # (rescued); when the clusters are found, hardly any is
        assert len(evals) >= 3
        assert all(e <= N * (4 + 1) + 0.01 * N * C for e in evals[1:][-3:]), evals
        settled[C] = evals[-1]
    exhaustive = KMeans(80, random_state=0, max_iter=6, tol=0, algorithm="lloyd").fit(X)
    assert all(r.n_evals == N * 80 for r in exhaustive.history_)
    # the same bound at both sizes: a tenth of the exhaustive cost at C = 80
    assert settled[80] < 0.1 * N * 80


def test_stuck_points_are_rescued_by_an_exhaustive_search():
    """A point whose set holds only far components finds its own in one pass."""
    from truncmix.backends import InMemory
    from truncmix.em import e_pass
    from truncmix.model.covariance import Isotropic

    rng = np.random.default_rng(0)
    centres = rng.normal(scale=50.0, size=(30, 3))
    y = np.repeat(np.arange(30), 20)
    X = centres[y] + rng.normal(size=(600, 3))
    mixture = Mixture.with_equal_weights(centres, Isotropic(1.0, 30, 3))
    step = Neighbourhood(1, n_neighbors=2, n_random=0)
    step.start_fit(mixture, np.random.RandomState(0))
    backend = InMemory(X, np.ones(600), np.zeros(3))
    backend.allocate_state((600, 1))
    backend.state[:, 0] = y
    wrong = np.arange(0, 600, 7)
    backend.state[wrong, 0] = (y[wrong] + 15) % 30  # far away, not a neighbour
    stats = e_pass(backend, step, mixture)
    np.testing.assert_array_equal(backend.state[:, 0], y)
    assert stats.n_evals >= len(wrong) * 30


def test_result_does_not_depend_on_chunking():
    from .test_free_energy import make_data

    X = make_data(4, 500, 3, 8, "blobs", False)
    kw = dict(n_components=10, n_active=2, search="neighbourhood", n_neighbors=3, n_random=2,
              random_state=1, max_iter=10, tol=0)
    a = TruncatedGaussianMixture(**kw).fit(X)
    b = TruncatedGaussianMixture(chunk_size=37, **kw).fit(X)
    np.testing.assert_allclose(a.free_energy_history_, b.free_energy_history_, rtol=1e-12)
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-11, atol=1e-12)


def test_search_finds_the_clusters_of_separated_blobs():
    """Locally optimal, but on well-separated blobs the search matches Lloyd."""
    from sklearn.datasets import make_blobs
    from sklearn.metrics import adjusted_rand_score

    X, y = make_blobs(4000, 8, centers=50, random_state=2, cluster_std=0.5)
    exhaustive = KMeans(50, random_state=0).fit(X)
    search = KMeans(50, random_state=0, search="neighbourhood").fit(X)
    assert search.inertia_ <= 1.01 * exhaustive.inertia_
    assert adjusted_rand_score(exhaustive.labels_, search.labels_) > 0.99


def test_relocated_component_gets_a_neighbourhood():
    from truncmix.mstep import MStepReport

    rng = np.random.default_rng(0)
    mixture = random_mixture(rng, 12, 2, "isotropic", learned=False)
    step = Neighbourhood(1, n_neighbors=3)
    step.start_fit(mixture, np.random.RandomState(0))
    step.after_m_step(mixture, MStepReport(1, (4,), (), 0))
    assert step.table[4, 0] == 4
    for c in step.table[4, 1:]:
        assert 4 in step.table[c]


# ------------------------------------------------------------------ swap moves
def two_in_one_start():
    """Four separated blobs; the start puts two means in blob 0 and none in blob 3."""
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [20.0, 0.0], [0.0, 20.0], [20.0, 20.0]])
    y = np.repeat(np.arange(4), 150)
    X = centres[y] + rng.normal(size=(600, 2))
    init = np.array([[-0.5, 0.0], [0.5, 0.0], [20.0, 0.0], [0.0, 20.0]])
    return X, y, init


def test_swaps_repair_what_local_search_cannot():
    from sklearn.metrics import adjusted_rand_score

    X, y, init = two_in_one_start()
    stuck = KMeans(4, init=init, search="neighbourhood", swaps=0, n_random=0).fit(X)
    lloyd = KMeans(4, init=init).fit(X)
    repaired = KMeans(4, init=init, search="neighbourhood", n_random=0).fit(X)
    assert adjusted_rand_score(y, stuck.labels_) < 0.9
    assert adjusted_rand_score(y, lloyd.labels_) < 0.9
    assert adjusted_rand_score(y, repaired.labels_) == 1.0
    assert sum(r.n_swapped for r in repaired.history_) >= 1
    assert repaired.inertia_ < 0.5 * lloyd.inertia_
    assert_monotone(repaired.free_energy_history_)
    assert repaired.converged_


def test_swaps_start_at_the_first_iteration():
    """A k-means fit's first E-step (no sets yet) gathers the summaries swaps
    need, so the misplaced mean moves in the first iteration."""
    X, y, init = two_in_one_start()
    km = KMeans(4, init=init, search="neighbourhood", n_random=0, max_iter=1, tol=0).fit(X)
    assert km.history_[0].n_swapped >= 1
    assert np.min(((km.cluster_centers_ - [20.0, 20.0]) ** 2).sum(-1)) < 25.0


@pytest.mark.parametrize("search", ["exhaustive", "neighbourhood"])
def test_kmeans_makes_one_pass_per_iteration(search, monkeypatch):
    """Lloyd's model has no first M-step about its seeds: its first iteration's
    E-step is the first assignment. The GMM keeps its first M-step."""
    from sklearn.datasets import make_blobs

    import truncmix.em
    import truncmix.init

    passes = []
    original = truncmix.em.e_pass

    def counting(*args, **kwargs):
        passes.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(truncmix.em, "e_pass", counting)
    monkeypatch.setattr(truncmix.init, "e_pass", counting)
    X, _ = make_blobs(3000, 4, centers=30, random_state=0)
    km = KMeans(30, search=search, random_state=0, max_iter=3, tol=0).fit(X)
    assert km.n_iter_ == 3 and len(passes) == 3 + 1  # iterations and the final pass
    passes.clear()
    gm = TruncatedGaussianMixture(30, covariance_type="isotropic", weights="equal", n_active=2,
                                  search=search, random_state=0, max_iter=3, tol=0).fit(X)
    assert gm.n_iter_ == 3 and len(passes) == 1 + 3 + 1


def test_first_pass_of_the_search_is_exact_with_its_summaries():
    """Points without sets get their C' best of all components; the pass's
    candidates and gaps (from the next best) give the swaps' summaries."""
    from truncmix.estep.neighbourhood import Neighbourhood
    from truncmix.model.covariance import Isotropic

    rng = np.random.default_rng(3)
    X = rng.normal(size=(500, 3)) * 3.0
    means = rng.normal(size=(40, 3)) * 3.0
    mixture = Mixture.with_equal_weights(means, Isotropic(0.7, 40, 3))
    weights = rng.uniform(0.5, 2.0, size=500)
    est = Neighbourhood(2, n_neighbors=3, n_random=1)
    est.start_fit(mixture, np.random.RandomState(0))
    res = est.update(X, mixture, np.full((500, 2), -1, np.int32), start=7, weights=weights)
    L = mixture.log_joint(X)
    order = np.argsort(-L, axis=1, kind="stable")
    assert np.array_equal(res.K, order[:, :2])
    top = np.take_along_axis(L, order, axis=1)
    lse = np.logaddexp(top[:, 0], top[:, 1])
    assert np.allclose(res.lse, lse, rtol=1e-12, atol=1e-10)
    assert np.allclose(res.q, np.exp(top[:, :2] - lse[:, None]), atol=1e-12)
    # removal: each point's smallest gap to another candidate it saw (the second best)
    removal = np.bincount(order[:, 0], weights * (top[:, 0] - top[:, 1]), minlength=40)
    assert np.allclose(res.extra.removal, removal, rtol=1e-9, atol=1e-9)
    worst = np.full(40, -1)
    for c in range(40):
        mine = np.flatnonzero(order[:, 0] == c)
        if mine.size:
            worst[c] = 7 + mine[np.argmin(lse[mine])]
    assert np.array_equal(res.extra.worst_row, worst)
    assert res.n_evals == 500 * 40 + 40 * 40  # the pass and the first neighbourhoods


def first_hard_pass(X, init):
    """A k-means model (variance 2) at ``init``, each point on its nearest mean,
    and one neighbourhood pass (G = 2, no random candidates) over it:
    ``(backend, mixture, step, stats)``."""
    from truncmix.backends import InMemory
    from truncmix.em import e_pass
    from truncmix.model.covariance import Isotropic

    C = len(init)
    backend = InMemory(X, np.ones(len(X)), np.zeros(X.shape[1]))
    mixture = Mixture.with_equal_weights(init, Isotropic(2.0, C, X.shape[1]))
    step = Neighbourhood(1, n_neighbors=2, n_random=0)
    backend.allocate_state((len(X), 1))
    backend.state[:, 0] = np.argmin(((X[:, None] - init[None]) ** 2).sum(-1), axis=1)
    step.start_fit(mixture, np.random.RandomState(0))
    return backend, mixture, step, e_pass(backend, step, mixture)


def test_a_swap_raises_the_exactly_recomputed_free_energy():
    from truncmix.moves import swap_moves

    X, _, init = two_in_one_start()
    backend, mixture, step, stats = first_hard_pass(X, init)

    def free_energy(mix, labels):  # float64 recomputation from the definition
        return float(mix.log_joint(X)[np.arange(len(X)), labels].sum())

    before = free_energy(mixture, backend.state[:, 0].copy())
    np.testing.assert_allclose(before, stats.free_energy, rtol=1e-12)
    moved, n = swap_moves(backend, mixture, stats.extra, 4, table=step.table,
                          on_move=step.moved)
    assert n == 1
    after = free_energy(moved, backend.state[:, 0])
    assert after > before
    # one of the two means in blob 0 went to the empty blob (3)
    assert np.min(((moved.means - [20.0, 20.0]) ** 2).sum(-1)) < 25.0


def test_a_donor_whose_removal_was_underestimated_is_skipped(monkeypatch):
    """When a donor's exact loss is far above its estimated removal cost (its
    fallbacks went to earlier swaps of the round), the round skips the donor,
    not the target: the next donor (a twin in blob 0) fills the empty blob."""
    from truncmix import moves

    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [40.0, 0.0], [0.0, 20.0], [5.0, 40.0]])
    X = centres[np.repeat(np.arange(4), 150)] + rng.normal(size=(600, 2))
    # two means in blob 0, none in blob 3, whose points all go to blob 2's mean
    init = np.array([[-0.5, 0.0], [0.5, 0.0], [40.0, 0.0], [0.0, 20.0]])

    def one_round():
        backend, mixture, step, stats = first_hard_pass(X, init)
        # the lone means of blobs 1 and 2 look like the cheapest donors
        stats.extra.removal[2:] = [1e-9, 2e-9]
        before = float(mixture.log_joint(X)[np.arange(len(X)), backend.state[:, 0]].sum())
        moved, n = moves.swap_moves(backend, mixture, stats.extra, 4, table=step.table)
        after = float(moved.log_joint(X)[np.arange(len(X)), backend.state[:, 0]].sum())
        assert after >= before
        return np.min(((moved.means - centres[3]) ** 2).sum(-1))

    assert one_round() < 4.0
    # the rule matters: trusting the estimate, the round spends blob 3's
    # target on blob 1's lone mean, and blob 3 stays without a mean
    monkeypatch.setattr(moves, "STALE_DONOR", np.inf)
    assert one_round() > 100.0


@pytest.mark.parametrize("probed", [False, True])
def test_sketch_finds_the_nearest_means_of_separated_clusters(probed, monkeypatch):
    from sklearn.datasets import make_blobs

    from truncmix.estep import Exhaustive, sketch as sketch_module
    from truncmix.estep.neighbourhood import initial_table
    from truncmix.estep.sketch import Sketch, sketch_dims
    from truncmix.model.covariance import Isotropic

    # probed: the sketch's nearest mean is looked for in groups of means
    monkeypatch.setattr(sketch_module, "PROBE_MIN_COMPONENTS", 0 if probed else 10**9)

    X, y = make_blobs(6000, 32, centers=600, random_state=0)
    X = X.astype(np.float32)
    means = np.array([X[y == c].mean(axis=0) for c in range(600)], dtype=np.float64)
    mixture = Mixture.with_equal_weights(means, Isotropic(1.0, 600, 32))
    sketch = Sketch(mixture, initial_table(mixture, 6))
    assert sketch.basis.shape == (32, sketch_dims(32)) == (32, 8)
    assert (sketch.index is not None) == probed
    res, cand, gap, n_cand = sketch.nearest(X, mixture, 2)
    exact = Exhaustive(2).update(X, mixture, None)
    assert (res.K[:, 0] == exact.K[:, 0]).mean() > 0.97
    if probed:  # 49 groups, 8 probed: about a sixth of the sketched distances
        assert res.n_evals < len(X) * (49 + 600 / 4) + n_cand.sum()
    assert (res.K[:, 0] != res.K[:, 1]).all() and res.K.min() >= 0 and res.K.max() < 600
    # the candidates are exactly scored: their gaps are the float64 log-joint gaps
    L = mixture.log_joint(X.astype(np.float64))
    rows = np.arange(len(X))
    for j in range(cand.shape[1]):
        ok = cand[:, j] >= 0
        want = L[rows[ok], res.K[ok, 0]] - L[rows[ok], cand[ok, j]]
        np.testing.assert_allclose(gap[ok, j], want, rtol=1e-6, atol=1e-6)
    assert (n_cand == (cand >= 0).sum(axis=1)).all() and (n_cand >= 5).all()
    # far fewer full-length evaluations than the exhaustive search
    assert int(n_cand.sum()) < 0.02 * exact.n_evals


def test_probed_sketch_gives_far_rows_the_unprobed_choice(monkeypatch):
    """Rows whose exactly scored best mean is far (a blob without a mean) are
    looked up among all sketched means: they get the sets the sketch without
    groups gives, and so do nearly all other rows."""
    from sklearn.datasets import make_blobs

    from truncmix.estep import sketch as sketch_module
    from truncmix.estep.neighbourhood import initial_table
    from truncmix.estep.sketch import Sketch
    from truncmix.model.covariance import Isotropic

    X, y = make_blobs(8000, 32, centers=800, random_state=1)
    X = X.astype(np.float32)
    # blobs 0-99 get no mean: their points are far from all 700 means
    means = np.array([X[y == c].mean(axis=0) for c in range(100, 800)], dtype=np.float64)
    mixture = Mixture.with_equal_weights(means, Isotropic(1.0, 700, 32))
    table = initial_table(mixture, 6)
    results = {}
    for probed in (True, False):
        monkeypatch.setattr(sketch_module, "PROBE_MIN_COMPONENTS", 0 if probed else 10**9)
        sketch = Sketch(mixture, table)
        assert (sketch.index is not None) == probed
        results[probed] = sketch.nearest(X, mixture, 2)
    orphans = y < 100
    (res, cand, gap, n_cand), (ref, ref_cand, ref_gap, ref_n) = results[True], results[False]
    assert_array_equal(res.K[orphans], ref.K[orphans])
    assert_array_equal(cand[orphans], ref_cand[orphans])
    assert (res.K[~orphans] == ref.K[~orphans]).all(axis=1).mean() > 0.99
    # the far rows were found from the exact scores: every orphan, few others
    d2 = ((X[:, None, :] - means[res.K[:, 0]][:, None, :]) ** 2).sum(-1)[:, 0]
    assert (d2[orphans] > sketch.far).all() and (d2[~orphans] > sketch.far).mean() < 0.01


def test_large_kmeans_seeded_through_the_sketch_stays_monotone(monkeypatch):
    from sklearn.datasets import make_blobs
    from sklearn.metrics import adjusted_rand_score

    import truncmix.estep.sketch as sketch

    # 600 components are below the sketch's default threshold: lower it
    monkeypatch.setattr(sketch, "SKETCH_MIN_COMPONENTS", 512)
    used = []
    original = sketch.Sketch.nearest

    def counting(self, *args):
        used.append(1)
        return original(self, *args)

    monkeypatch.setattr(sketch.Sketch, "nearest", counting)
    X, y = make_blobs(8000, 32, centers=600, random_state=1)
    km = KMeans(600, search="neighbourhood", coreset_size=3000, random_state=0, max_iter=15,
                tol=0).fit(X)
    assert used  # the first pass went through the sketch
    assert_monotone(km.free_energy_history_)
    assert km.history_[1].n_evals < 0.1 * len(X) * 600
    assert adjusted_rand_score(y, km.labels_) > 0.9


# ----------------------------------------------------------------- seedings
def test_afk_mc2_seeds_are_rows_and_cover_separated_clusters():
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=100.0, size=(5, 3))
    X = np.concatenate([c + rng.normal(size=(200, 3)) for c in centres])
    seeds = afk_mc2(X, np.ones(len(X)), 5, np.random.RandomState(1), chain=50)
    rows = {tuple(r) for r in X}
    assert all(tuple(s) in rows for s in seeds)
    nearest = np.argmin(((seeds[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
    assert len(set(nearest)) == 5
    again = afk_mc2(X, np.ones(len(X)), 5, np.random.RandomState(1), chain=50)
    np.testing.assert_array_equal(seeds, again)


@pytest.mark.parametrize("C, trials", [(3, 3), (400, 7), (1100, 8), (30000, 8)])
def test_greedy_seeding_trials_are_capped(C, trials, monkeypatch):
    """2 + log C local trials per centre, at most MAX_TRIALS (8: one 8-column product)."""
    import truncmix.kernels.seeding as seeding
    from truncmix.init import MAX_TRIALS, greedy_kmeans_pp

    seen = []
    monkeypatch.setattr(seeding, "greedy_kmeans_pp",
                        lambda X, w, n, T, u0, u: seen.append((T, u.shape)) or np.arange(n))
    X = np.random.default_rng(0).normal(size=(C, 2))
    greedy_kmeans_pp(X, np.ones(C), C, np.random.RandomState(0))
    assert MAX_TRIALS == 8 and seen == [(trials, (C - 1, trials))]


def test_seeding_kernels_equal_numpy_twins():
    from truncmix.kernels.seeding import afk_mc2_chains, greedy_kmeans_pp

    rng = np.random.default_rng(4)
    X = rng.normal(size=(300, 3)) + rng.integers(0, 5, size=(300, 1)) * 6.0
    X -= X.mean(axis=0)
    w = rng.uniform(0.5, 2.0, size=300)
    uniforms = rng.random((9, 4))
    got = greedy_kmeans_pp(X.astype(np.float32), w, 10, 4, 0.3, uniforms)
    want = ref.greedy_kmeans_pp(X.astype(np.float32), w, 10, 4, 0.3, uniforms)
    np.testing.assert_array_equal(got, want)
    q = rng.random(300)
    q /= q.sum()
    proposals = rng.integers(0, 300, size=(9, 6))
    uniforms = rng.random((9, 6))
    np.testing.assert_array_equal(afk_mc2_chains(X, w, q, 5, proposals, uniforms),
                                  ref.afk_mc2_chains(X, w, q, 5, proposals, uniforms))


def test_lightweight_coreset_is_unbiased():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20000, 3)) * [1.0, 5.0, 0.2] + [3.0, 0.0, -1.0]
    w = rng.uniform(0.5, 2.0, size=len(X))
    rows, cw = lightweight_coreset(X, w, 4000, np.random.RandomState(0))
    assert rows.shape == (4000,) and (np.diff(rows) >= 0).all()
    # weighted sums over the coreset estimate those over the data
    np.testing.assert_allclose(cw.sum(), w.sum(), rtol=0.03)
    np.testing.assert_allclose(cw @ X[rows] / cw.sum(), w @ X / w.sum(), atol=0.1)


def test_coreset_seeding_reaches_the_same_clustering():
    from sklearn.datasets import make_blobs
    from sklearn.metrics import adjusted_rand_score

    X, y = make_blobs(5000, 4, centers=10, random_state=3, cluster_std=0.4)
    est = KMeans(10, random_state=0, coreset_size=500, search="neighbourhood").fit(X)
    assert adjusted_rand_score(y, est.labels_) > 0.95


def test_bad_search_parameters_are_refused():
    X = np.random.default_rng(0).normal(size=(50, 2))
    with pytest.raises(ValueError, match="search"):
        KMeans(3, search="nearby").fit(X)
    with pytest.raises(ValueError, match="n_neighbors"):
        KMeans(3, search="neighbourhood", n_neighbors=0).fit(X)
    with pytest.raises(ValueError, match="n_random"):
        TruncatedGaussianMixture(3, n_active=1, search="neighbourhood", n_random=-1).fit(X)


# ------------------------------------------- k-means start of a neighbourhood GMM
def test_kmeans_start_runs_on_the_fit_rows_and_hands_its_sets_on(monkeypatch):
    """init="k-means" with the search: the start's means are exactly the centres
    of KMeans fitted alone (same seed), and the sets handed on are that KMeans'
    labels (at its fixed point the last iteration's sets are the final ones)."""
    from sklearn.datasets import make_blobs

    import truncmix.estimators.gmm as gmm_module

    X, _ = make_blobs(3000, 4, centers=40, random_state=3)
    kw = dict(search="neighbourhood", coreset_size=200, n_neighbors=4)
    km = KMeans(40, random_state=5, **kw).fit(X)
    assert km.converged_
    seen = {}
    real = gmm_module.first_m_step

    def spy(backend, means, *args, **kwargs):
        seen["means"] = means + backend.offset
        seen["labels"] = kwargs["labels"].copy()
        return real(backend, means, *args, **kwargs)

    monkeypatch.setattr(gmm_module, "first_m_step", spy)
    gm = TruncatedGaussianMixture(40, n_active=3, init="k-means", random_state=5, max_iter=5,
                                  **kw).fit(X)
    np.testing.assert_allclose(seen["means"], km.cluster_centers_, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(seen["labels"], km.labels_)
    assert_monotone(gm.free_energy_history_)


def test_final_pass_does_not_learn_neighbourhoods():
    """The final E-step of a fit leaves the neighbourhood table as the last
    iteration made it (nothing follows that would use a new one)."""
    from sklearn.datasets import make_blobs

    from truncmix.backends import InMemory
    from truncmix.em import EMConfig, EMRun, e_pass
    from truncmix.init import first_m_step
    from truncmix.model.covariance import Floor

    X, _ = make_blobs(2000, 3, centers=30, random_state=0)
    Xc = X - X.mean(axis=0)
    backend = InMemory(Xc, np.ones(len(X)), np.zeros(3))
    step = Neighbourhood(2, n_neighbors=3)
    backend.allocate_state(step.state_shape(len(X), 30))
    floor = Floor.from_variances(Xc.var(axis=0), 1e-6)
    start = first_m_step(backend, Xc[:30].copy(), "diag", np.diag(Xc.var(axis=0)),
                         learned_weights=True, floor=floor, reg_covar=0.0, seed_state=True)
    step.start_fit(start, np.random.RandomState(0))
    run = EMRun(backend, step, start, EMConfig(learned_weights=True, floor=floor, max_iter=3,
                                               tol=0.0), keep_state=True).run()
    table, passes = step.table.copy(), step.pass_index
    run.finish()
    np.testing.assert_array_equal(step.table, table)
    assert step.pass_index == passes
    # an ordinary pass does learn (the check above can fail)
    e_pass(backend, step, run.mixture)
    assert step.pass_index == passes + 1


@pytest.mark.parametrize("cov_type", ["isotropic", "spherical", "diag"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_compiled_swaps_equal_the_numpy_path(cov_type, dtype, monkeypatch):
    """The numba kernels of a swap round (diagonal forms) make the same swaps as
    the NumPy path that every covariance type has: same moves, labels and means."""
    from sklearn.datasets import make_blobs

    import truncmix.moves as moves
    from truncmix.backends import InMemory
    from truncmix.em import e_pass
    from truncmix.model.covariance import COVARIANCE_TYPES

    X, y = make_blobs(3000, 5, centers=60, random_state=4, cluster_std=0.6)
    X = X.astype(dtype)
    rng = np.random.default_rng(0)
    # a poor start: 60 means drawn from 30 of the blobs (doubles, and 30 blobs empty)
    blobs = rng.choice(60, size=30, replace=False)
    init = np.concatenate([X[y == b][:2] for b in blobs]).astype(np.float64)
    covs = {"isotropic": 1.0, "spherical": rng.uniform(0.5, 2.0, 60),
            "diag": rng.uniform(0.5, 2.0, (60, 5))}[cov_type]
    logw = np.log(rng.dirichlet(np.full(60, 5.0)))
    mixture = Mixture(init, logw, COVARIANCE_TYPES[cov_type].from_covariances(covs, 60, 5))
    weights = rng.choice([0.5, 1.0, 2.0], size=len(X))
    results = []
    for compiled in (True, False):
        monkeypatch.setattr(moves, "COMPILED", compiled)
        backend = InMemory(X, weights, np.zeros(5))
        step = Neighbourhood(1, n_neighbors=3, n_random=0)
        backend.allocate_state((len(X), 1))
        backend.state[:, 0] = np.argmax(mixture.log_joint(X), axis=1)
        step.start_fit(mixture, np.random.RandomState(0))
        stats = e_pass(backend, step, mixture)
        moved, n = moves.swap_moves(backend, mixture, stats.extra, 40, table=step.table)
        results.append((moved.means, backend.state[:, 0].copy(), n))
    (m1, l1, n1), (m2, l2, n2) = results
    assert n1 == n2 >= 10
    np.testing.assert_array_equal(l1, l2)
    np.testing.assert_allclose(m1, m2, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("cov_type", ["isotropic", "diag", "tied"])
def test_float32_data_with_float64_or_float32_form(cov_type, monkeypatch):
    """Float32 data: small forms are read in float64, large ones cast to float32
    (FLOAT64_FORM_BYTES); both agree with a float64 recomputation of the
    log-joints of the sets they choose."""
    import truncmix.estep.neighbourhood as module

    rng = np.random.default_rng(7)
    C, D, n, k = 40, 6, 500, 3
    mixture = random_mixture(rng, C, D, cov_type)
    X = (mixture.means[rng.integers(C, size=n)] + rng.normal(size=(n, D))).astype(np.float32)
    K_prev = random_sets(rng, n, C, k)
    results = {}
    for limit in (0, 1 << 40):
        monkeypatch.setattr(module, "FLOAT64_FORM_BYTES", limit)
        step = Neighbourhood(k, n_neighbors=4, n_random=2)
        step.start_fit(mixture, np.random.RandomState(0))
        res = step.update(X, mixture, K_prev.copy())
        form = step._gather_form(mixture, np.float32)
        assert form.M.dtype == (np.float32 if limit == 0 else np.float64)
        full = mixture.log_joint(X.astype(np.float64))
        chosen = np.take_along_axis(full, res.K, axis=1)
        lse = np.logaddexp.reduce(chosen, axis=1)
        # (rows rescued by an exhaustive search use float32 products either way)
        np.testing.assert_allclose(res.lse, lse, rtol=1e-5)
        results[limit] = res.K
    # the two forms differ by rounding only: the same sets almost everywhere
    assert (results[0] == results[1 << 40]).all(axis=1).mean() > 0.99


@pytest.mark.parametrize("k, G, E", [(1, 4, 2), (3, 3, 1)])
def test_estep_kernel_reads_one_precision_per_component(k, G, E):
    """For one precision per component (kind 0) the kernel reads prec[c, 0]
    only: a (C, 1) copy gives bit-identical results to the (C, D) rows."""
    rng = np.random.default_rng(3)
    n, C, D = 80, 15, 5
    for cov_type in ("isotropic", "spherical"):
        mixture = random_mixture(rng, C, D, cov_type)
        form = mixture.covariance.gather_form(mixture.means, mixture.log_weights)
        assert form.kind == 0
        X = rng.normal(scale=3.0, size=(n, D))
        K_prev = random_sets(rng, n, C, k)
        table = random_table(rng, C, G)
        width = min(C, k * G + E + k)
        outs = []
        for prec in (form.prec, np.ascontiguousarray(form.prec[:, :1])):
            out = (np.empty((n, k), np.int32), np.empty((n, k)), np.empty(n),
                   np.full((n, width - 1), -1, np.int32), np.zeros((n, width - 1)),
                   np.empty(n, np.int32))
            neighbourhood_estep_into(X, form.M, prec, form.cap, np.zeros((1, 1, 1)), 0, K_prev,
                                     table, E, 99, 2, 0, k, 16, *out)
            outs.append(out)
        for a, b in zip(*outs):
            np.testing.assert_array_equal(a, b)


def test_search_passes_compact_precisions_only_for_kind_0():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(50, 4))
    for cov_type, width in (("isotropic", 1), ("spherical", 1), ("diag", 4)):
        mixture = random_mixture(rng, 10, 4, cov_type)
        step = Neighbourhood(2, n_neighbors=3, n_random=1)
        step.start_fit(mixture, np.random.RandomState(0))
        step.update(X, mixture, random_sets(rng, 50, 10, 2))
        assert step._prec.shape == (10, width)


@pytest.mark.parametrize("cov_type", ["isotropic", "diag", "tied"])
def test_rescue_with_cached_form_on_one_thread_equals_a_fresh_exhaustive(cov_type):
    """The rescuer (form cached per mixture, small calls on one thread in larger
    tiles) gives what a plain Exhaustive gives, and takes a new mixture's form."""
    from truncmix.estep.exhaustive import Exhaustive

    rng = np.random.default_rng(5)
    C, D, n, k = 30, 4, 200, 2
    cached = Exhaustive(k, cache_form=True, serial_evals=1 << 30)
    for _ in range(2):  # a second mixture must not reuse the first one's form
        mixture = random_mixture(rng, C, D, cov_type)
        for dtype in (np.float64, np.float32, np.float64):
            X = rng.normal(scale=3.0, size=(n, D)).astype(dtype)
            got = cached.update(X, mixture, None)
            want = Exhaustive(k).update(X, mixture, None)
            np.testing.assert_array_equal(got.K, want.K)
            np.testing.assert_allclose(got.q, want.q, rtol=1e-6, atol=1e-9)
            np.testing.assert_allclose(got.lse, want.lse, rtol=1e-6)
            assert got.n_evals == want.n_evals
    # a call within the limit runs on one numba thread and restores the count after
    import numba

    before = numba.get_num_threads()
    cached.update(X, mixture, None)
    assert numba.get_num_threads() == before


def _far_point_setup():
    """Separated clusters, one of them (cluster 0) without a component: its
    points are far from every mean, and stay so until a component moves there."""
    from truncmix.backends import InMemory
    from truncmix.model.covariance import Isotropic

    rng = np.random.default_rng(1)
    centres = rng.normal(scale=50.0, size=(12, 3))
    y = np.repeat(np.arange(12), 15)
    X = centres[y] + rng.normal(size=(180, 3))
    means = centres.copy()
    means[0] = centres[1] + 0.5  # a doubled component; cluster 0 has none
    mixture = Mixture.with_equal_weights(means, Isotropic(1.0, 12, 3))
    step = Neighbourhood(1, n_neighbors=2, n_random=0)
    step.start_fit(mixture, np.random.RandomState(0))
    backend = InMemory(X, np.ones(180), np.zeros(3), chunk_size=50)
    backend.allocate_state((180, 1))
    return X, y, centres, mixture, step, backend


def test_futile_rescues_are_skipped_until_a_component_moves_near():
    from truncmix.em import e_pass

    X, y, centres, mixture, step, backend = _far_point_setup()
    counts = [e_pass(backend, step, mixture).n_evals for _ in range(4)]
    # passes 1-2: exhaustive; from pass 3 on the settled far points (cluster
    # 0's 15, found nothing better twice with no set changed) are skipped
    assert step._settled is not None and step._settled.any()
    assert counts[3] < counts[1] and counts[3] <= 180 * 2
    stuck = backend.state[y == 0, 0].copy()
    # a component jumps onto cluster 0: the next pass must search those points
    means = mixture.means.copy()
    means[5] = centres[0]
    moved = Mixture(means, mixture.log_weights, mixture.covariance)
    step.moved(moved, 5)
    e_pass(backend, step, moved)
    assert (backend.state[y == 0, 0] == 5).all() and (stuck != 5).all()


def test_skipping_futile_rescues_keeps_the_fit(monkeypatch):
    """The same k-means fit (labels, centres, iterations) with and without the
    skip, on data whose seeding leaves clusters without a centre, and the same
    result for any chunking."""
    import truncmix.estep.neighbourhood as module
    from sklearn.datasets import make_blobs

    X, _ = make_blobs(6_000, n_features=8, centers=150, random_state=0)
    X = X.astype(np.float32)
    kw = dict(search="neighbourhood", coreset_size=300, random_state=0, max_iter=30)
    fits = []
    for skip, chunk in ((False, None), (True, None), (True, 777)):
        monkeypatch.setattr(module, "SKIP_FUTILE_RESCUES", skip)
        fits.append(KMeans(150, chunk_size=chunk, **kw).fit(X))
    for other in fits[1:]:
        np.testing.assert_array_equal(other.labels_, fits[0].labels_)
        np.testing.assert_allclose(other.cluster_centers_, fits[0].cluster_centers_, rtol=1e-10)
        assert other.n_iter_ == fits[0].n_iter_
    np.testing.assert_array_equal([r.n_evals for r in fits[1].history_],
                                  [r.n_evals for r in fits[2].history_])
    # rescues were skipped (fewer evaluations)
    assert sum(r.n_evals for r in fits[1].history_) < sum(r.n_evals for r in fits[0].history_)


def test_sketch_threshold():
    from truncmix.estep.sketch import SKETCH_MIN_COMPONENTS, sketch_dims, uses_sketch

    assert uses_sketch(SKETCH_MIN_COMPONENTS, 64) and not uses_sketch(SKETCH_MIN_COMPONENTS - 1, 64)
    # short rows: the product is not what the exhaustive pass spends its time on
    assert not uses_sketch(10 * SKETCH_MIN_COMPONENTS, 16) and uses_sketch(4000, 32)
    assert sketch_dims(64) == 16 and sketch_dims(32) == 8 and sketch_dims(5) == 5


def test_kmeans_pp_takes_more_local_trials_where_cheap(monkeypatch):
    """Small data: 4x scikit-learn's 2 + log C local trials; large data: its own."""
    import sklearn.cluster

    from truncmix import init as init_module

    assert init_module.local_trials(5000, 2, 15) == 4 * (2 + int(np.log(15)))
    assert init_module.local_trials(100_000, 2, 100) == 2 + int(np.log(100))
    base = 2 + int(np.log(50))
    assert init_module.local_trials(14_000, 32, 50) == 2 * base  # budget / work = 2.4
    seen = []
    real = sklearn.cluster.kmeans_plusplus

    def recording(*args, **kwargs):
        seen.append(kwargs.get("n_local_trials"))
        return real(*args, **kwargs)

    monkeypatch.setattr(sklearn.cluster, "kmeans_plusplus", recording)
    X = np.random.default_rng(0).normal(size=(500, 2))
    KMeans(5, n_init=1, random_state=0).fit(X)
    assert seen == [4 * (2 + int(np.log(5)))]
