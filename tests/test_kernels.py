"""The numba kernels against their NumPy twins, the statistics algebra, chunking,
and the covariance classes against scipy.

* ``kernels.topk.top_k_softmax`` and ``kernels.accumulate.accumulate`` must equal
  ``kernels._reference`` (ALGORITHMS.md 3.1, 3.3: ties go to the smaller index;
  -inf entries are allowed).
* ``SufficientStats`` is closed under ``+``: statistics of the parts of a chunk
  sum to those of the whole, and the remembered outliers do not depend on the
  split (3.4, and the re-seeding rule of section 6).
* A fit does not depend on ``chunk_size`` beyond rounding.
* ``Mixture.log_joint`` is ``log pi_c + log N(x; mu_c, Sigma_c)`` (section 2) for
  every covariance class.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.testing import assert_allclose, assert_array_equal
from scipy.stats import multivariate_normal
from sklearn.datasets import make_blobs

import truncmix
from truncmix import _constants as const
from truncmix.kernels import _reference as ref
from truncmix.kernels.accumulate import accumulate
from truncmix.kernels.topk import top_k_softmax
from truncmix.model.covariance import Diag, Full, Isotropic, Spherical, Tied
from truncmix.model.mixture import Mixture
from truncmix.stats import Outliers, accumulate_dense, from_posterior

# (moment, shared) pairs; shared only changes MOMENT_MATRIX, but every code must
# accept both
MOMENTS = [
    (const.MOMENT_SCALAR, False),
    (const.MOMENT_SCALAR, True),
    (const.MOMENT_VECTOR, False),
    (const.MOMENT_VECTOR, True),
    (const.MOMENT_MATRIX, False),
    (const.MOMENT_MATRIX, True),
]
MOMENT_IDS = [f"{['scalar', 'vector', 'matrix'][m]}-{'shared' if s else 'per'}" for m, s in MOMENTS]


# ------------------------------------------------------------------ top-k softmax
@st.composite
def log_joint_and_k(draw):
    n = draw(st.integers(1, 25))
    C = draw(st.integers(1, 9))
    if draw(st.booleans()):
        # integer-valued log-joints: many exact ties
        elements = st.integers(-3, 3).map(float)
    else:
        elements = st.floats(-60, 60, allow_nan=False, allow_infinity=False)
    L = draw(hnp.arrays(np.float64, (n, C), elements=elements))
    # -inf entries (removed components), but never a whole row
    mask = draw(hnp.arrays(np.bool_, (n, C)))
    keep = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, C - 1)))
    mask[np.arange(n), keep] = False
    L[mask] = -np.inf
    k = draw(st.sampled_from(sorted({k for k in (1, 2, 3, C) if k <= C})))
    return L, k


@settings(deadline=None, max_examples=60)
@given(log_joint_and_k())
def test_top_k_softmax_matches_reference(case):
    L, k = case
    K, q, lse = top_k_softmax(L, k)
    K_ref, q_ref, lse_ref = ref.top_k_softmax(L, k)
    assert K.shape == K_ref.shape == (L.shape[0], k)
    assert K.dtype == np.int32
    assert_array_equal(K, K_ref)
    assert_allclose(q, q_ref, rtol=1e-12, atol=0)
    assert_allclose(lse, lse_ref, rtol=1e-12, atol=0)


def test_top_k_softmax_ties_and_inf_semantics():
    """The reference itself: ties to the smaller index, -inf gets zero mass."""
    L = np.array([[0.0, 1.0, 1.0, -np.inf, 1.0],
                  [-np.inf, -np.inf, 2.0, -np.inf, -np.inf]])
    for impl in (top_k_softmax, ref.top_k_softmax):
        K, q, lse = impl(L, 3)
        assert_array_equal(K, [[1, 2, 4], [2, 0, 1]])
        assert_allclose(q, [[1 / 3, 1 / 3, 1 / 3], [1, 0, 0]], rtol=1e-15)
        assert_allclose(lse, [1 + np.log(3), 2.0], rtol=1e-15)


def test_top_k_softmax_with_all_components_is_softmax():
    rng = np.random.default_rng(0)
    L = rng.normal(scale=10, size=(50, 6))
    K, q, lse = top_k_softmax(L, 6)
    from scipy.special import logsumexp, softmax

    assert_allclose(lse, logsumexp(L, axis=1), rtol=1e-12)
    assert_allclose(q, np.take_along_axis(softmax(L, axis=1), K, axis=1), rtol=1e-12)
    # best first
    assert np.all(np.diff(np.take_along_axis(L, K, axis=1), axis=1) <= 0)


# ------------------------------------------------------------------- accumulation
def _sparse_posterior(rng, n, C, k, dtype):
    """Data, weights (with zeros), distinct sets K, posteriors q (with zeros), anchors."""
    D = 4
    X = (rng.normal(size=(n, D)) * [1.0, 2.0, 0.5, 3.0]).astype(dtype)
    weights = rng.uniform(0.5, 2.0, size=n)
    weights[rng.random(n) < 0.2] = 0.0
    K = np.argsort(rng.random((n, C)), axis=1)[:, :k].astype(np.int32)
    q = rng.dirichlet(np.ones(k), size=n)
    q[rng.random((n, k)) < 0.1] = 0.0
    q[q.sum(axis=1) == 0, 0] = 1.0
    q /= q.sum(axis=1, keepdims=True)
    # anchors offset from the data, so that no statistic is a near-cancelling sum
    anchors = rng.uniform(2.0, 4.0, size=(C, D)) * [1.0, 2.0, 0.5, 3.0]
    return X, weights, K, q, anchors


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("moment", "shared"), MOMENTS, ids=MOMENT_IDS)
@pytest.mark.parametrize("k", [1, 3])
def test_accumulate_matches_reference(moment, shared, dtype, k):
    rng = np.random.default_rng([moment, shared, k, np.dtype(dtype).itemsize])
    n, C = 300, 5
    X, weights, K, q, anchors = _sparse_posterior(rng, n, C, k, dtype)
    assert (weights == 0).any()
    assert k == 1 or (q == 0).any()
    got = accumulate(X, weights, K, q, anchors, moment, shared, C)
    want = ref.accumulate(X, weights, K, q, anchors, moment, shared, C)
    for g, w in zip(got, want):
        assert g.dtype == np.float64
        assert g.shape == w.shape
        assert_allclose(g, w, rtol=1e-10)
    # zero-weight rows contribute nothing
    live = weights > 0
    sub = ref.accumulate(X[live], weights[live], K[live], q[live], anchors, moment, shared, C)
    for g, w in zip(got, sub):
        assert_allclose(g, w, rtol=1e-10)


@pytest.mark.parametrize(("moment", "shared"), MOMENTS, ids=MOMENT_IDS)
def test_accumulate_blocks_follow_rows_per_component(moment, shared, monkeypatch):
    """Row blocks (threads) only where each has MIN_ROWS_PER_COMPONENT rows per
    component; any block count gives the reference statistics."""
    import truncmix.kernels.accumulate as module

    rng = np.random.default_rng([moment, shared])
    n, C, k = 3 * module.MIN_BLOCK_ROWS, 6, 2
    X, weights, K, q, anchors = _sparse_posterior(rng, n, C, k, np.float64)
    want = ref.accumulate(X, weights, K, q, anchors, moment, shared, C)
    calls = []
    kernel = module.accumulate_into

    def counted(X, *args):
        calls.append(X.shape[0])
        return kernel(X, *args)

    monkeypatch.setattr(module, "accumulate_into", counted)
    for per_component, blocks in ((1, 3), (n // (2 * C), 2), (n // C + 1, 1)):
        monkeypatch.setattr(module, "MIN_ROWS_PER_COMPONENT", per_component)
        calls.clear()
        got = accumulate(X, weights, K, q, anchors, moment, shared, C)
        assert len(calls) == blocks and sum(calls) == n
        for g, w in zip(got, want):
            assert_allclose(g, w, rtol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("moment", "shared"), MOMENTS, ids=MOMENT_IDS)
def test_accumulate_dense_matches_reference(moment, shared, dtype):
    rng = np.random.default_rng([moment, shared, np.dtype(dtype).itemsize, 7])
    n, C, D = 250, 4, 3
    X = (rng.normal(size=(n, D)) * [1.0, 3.0, 0.5] + [0.5, -1.0, 2.0]).astype(dtype)
    weights = rng.uniform(0.0, 2.0, size=n)
    weights[:10] = 0.0
    q = rng.dirichlet(np.ones(C), size=n)
    # anchors as the E-step has them: the means of the previous iteration
    anchors = X[rng.choice(n, C, replace=False)].astype(np.float64) + rng.normal(size=(C, D))
    K = np.tile(np.arange(C, dtype=np.int32), (n, 1))
    got = accumulate_dense(X, weights, q, anchors, moment, shared)
    want = ref.accumulate(X, weights, K, q, anchors, moment, shared, C)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        assert_allclose(g, w, rtol=1e-10)


# ----------------------------------------------------------- statistics algebra
def _chunk(rng, n=120, C=5, k=2, D=3):
    X = rng.normal(size=(n, D))
    weights = rng.uniform(0.5, 2.0, size=n)
    weights[rng.random(n) < 0.15] = 0.0
    K = np.argsort(rng.random((n, C)), axis=1)[:, :k].astype(np.int32)
    q = rng.dirichlet(np.ones(k), size=n)
    # integer-valued per-point free energies: ties among the outlier candidates
    lse = rng.integers(-6, 0, size=n).astype(np.float64)
    anchors = rng.normal(size=(C, D)) + 3.0
    return X, weights, K, q, lse, anchors


def _stats(X, weights, K, q, lse, anchors, moment, shared, start, stop, capacity):
    return from_posterior(
        X[start:stop], weights[start:stop], None if K is None else K[start:stop],
        q[start:stop], lse[start:stop], anchors, moment, shared,
        n_evals=3 * (stop - start), n_changed=stop - start - 1, offset=start,
        outlier_capacity=capacity,
    )


def _assert_stats_equal(a, b):
    assert_allclose(a.resp, b.resp, rtol=1e-12)
    assert_allclose(a.first, b.first, rtol=1e-12, atol=1e-12 * np.abs(b.first).max())
    assert_allclose(a.second, b.second, rtol=1e-12, atol=1e-12 * np.abs(b.second).max())
    assert_allclose(a.free_energy, b.free_energy, rtol=1e-12)
    assert_allclose(a.weight, b.weight, rtol=1e-12)
    assert a.n_samples == b.n_samples
    assert_array_equal(a.anchors, b.anchors)


@pytest.mark.parametrize("dense", [False, True], ids=["sparse", "dense"])
@pytest.mark.parametrize(("moment", "shared"), MOMENTS, ids=MOMENT_IDS)
def test_statistics_are_additive(moment, shared, dense):
    rng = np.random.default_rng([moment, shared, dense])
    X, weights, K, q, lse, anchors = _chunk(rng)
    C = anchors.shape[0]
    if dense:
        K, q = None, rng.dirichlet(np.ones(C), size=X.shape[0])
    n, cap = X.shape[0], 6
    whole = _stats(X, weights, K, q, lse, anchors, moment, shared, 0, n, cap)
    for split in (1, 37, n // 2, n - 1):
        left = _stats(X, weights, K, q, lse, anchors, moment, shared, 0, split, cap)
        right = _stats(X, weights, K, q, lse, anchors, moment, shared, split, n, cap)
        total = left + right
        _assert_stats_equal(total, whole)
        assert total.n_evals == whole.n_evals
        assert total.n_changed == left.n_changed + right.n_changed
        assert_array_equal(total.outliers.rows, whole.outliers.rows)
        # sum() starts from 0
        _assert_stats_equal(sum([left, right]), whole)


@pytest.mark.parametrize("capacity", [1, 4, 16, 200])
def test_outliers_do_not_depend_on_the_split(capacity):
    rng = np.random.default_rng(capacity)
    X, weights, K, q, lse, anchors = _chunk(rng, n=150)
    n = X.shape[0]
    # the expected choice, recomputed: lowest scores among positive-weight rows,
    # ties to the smaller row
    live = np.flatnonzero(weights > 0)
    expected = live[np.lexsort((live, lse[live]))][:capacity]

    def merged(bounds):
        parts = [Outliers.from_chunk(lse[a:b], weights[a:b], X[a:b], a, capacity)
                 for a, b in zip(bounds[:-1], bounds[1:])]
        out = parts[0]
        for p in parts[1:]:
            out = out + p
        return out

    splits = [[0, n], [0, 75, n], [0, 1, 2, 3, n], list(range(0, n, 7)) + [n],
              list(range(n + 1)), sorted({0, n, *rng.choice(np.arange(1, n), 9).tolist()})]
    for bounds in splits:
        out = merged(bounds)
        assert_array_equal(out.rows, expected)
        assert_array_equal(out.scores, lse[expected])
        assert_array_equal(out.points, X[expected])
    # merge order does not matter either
    parts = [Outliers.from_chunk(lse[a:b], weights[a:b], X[a:b], a, capacity)
             for a, b in ((0, 50), (50, 100), (100, n))]
    assert_array_equal((parts[2] + parts[0] + parts[1]).rows, expected)


# ------------------------------------------------------------ chunk independence
def _chunk_data():
    X, _ = make_blobs(n_samples=300, centers=4, n_features=3, cluster_std=1.6,
                      center_box=(-5, 5), random_state=21)
    return X @ np.array([[1.0, 0.3, 0.0], [0.0, 1.0, 0.4], [0.2, 0.0, 0.7]])


CHUNKS = [7, 100, None]


@pytest.fixture
def one_numba_thread():
    """Small chunks mean hundreds of parallel kernel launches per fit; on a busy
    machine each launch waits for its worker threads. The kernels treat rows
    independently, so the thread count cannot change the results."""
    from truncmix._threads import one_numba_thread as serial

    with serial():
        yield


def _fits(make, X):
    out = []
    for chunk_size in CHUNKS:
        est = make(chunk_size)
        labels = est.fit_predict(X)
        out.append((est, labels))
    return out


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.filterwarnings("ignore::truncmix.exceptions.ConvergenceWarning")
# hard EM with learned weights may remove a component: that path must not
# depend on the chunking either
@pytest.mark.filterwarnings("ignore::truncmix.exceptions.DegenerateComponentWarning")
@pytest.mark.parametrize("n_active", [1, 2, None])
@pytest.mark.parametrize("covariance_type", ["isotropic", "spherical", "diag", "tied", "full"])
@pytest.mark.usefixtures("one_numba_thread")
def test_gmm_does_not_depend_on_chunk_size(covariance_type, n_active):
    X = _chunk_data()
    fits = _fits(lambda cs: truncmix.TruncatedGaussianMixture(
        4, n_active=n_active, covariance_type=covariance_type, max_iter=15, tol=0,
        random_state=3, chunk_size=cs), X)
    base, base_labels = fits[0]
    assert np.isfinite(base.lower_bound_)
    for est, labels in fits[1:]:
        assert_array_equal(labels, base_labels)
        assert est.n_iter_ == base.n_iter_
        assert_allclose(est.weights_, base.weights_, rtol=1e-10)
        assert_allclose(est.means_, base.means_, rtol=1e-10, atol=1e-12)
        assert_allclose(est.covariances_, base.covariances_, rtol=1e-10, atol=1e-12)
        assert_allclose(est.lower_bound_, base.lower_bound_, rtol=1e-10)
        assert_allclose(est.free_energy_history_, base.free_energy_history_, rtol=1e-10)


@pytest.mark.filterwarnings("ignore::truncmix.exceptions.DegenerateComponentWarning")
@pytest.mark.parametrize("duplicate_init", [False, True], ids=["kpp", "duplicate-centre"])
@pytest.mark.usefixtures("one_numba_thread")
def test_kmeans_does_not_depend_on_chunk_size(duplicate_init):
    X = _chunk_data()
    if duplicate_init:
        # two identical centres: the second gets no point in the first E-step
        # and is re-seeded at a remembered outlier, which must not depend on
        # how the outliers were gathered chunk by chunk
        init = np.array([X[0], X[0], X[100], X[200]])
        make = lambda cs: truncmix.KMeans(4, init=init, max_iter=100, chunk_size=cs)  # noqa: E731
    else:
        make = lambda cs: truncmix.KMeans(4, max_iter=100, random_state=5, chunk_size=cs)  # noqa: E731
    fits = _fits(make, X)
    base, base_labels = fits[0]
    if duplicate_init:
        assert base.history_[0].n_relocated == 1
    assert_array_equal(base_labels, base.labels_)
    for est, labels in fits[1:]:
        assert_array_equal(labels, base_labels)
        assert_array_equal(est.labels_, base.labels_)
        assert est.n_iter_ == base.n_iter_
        assert_allclose(est.cluster_centers_, base.cluster_centers_, rtol=1e-10, atol=1e-12)
        assert_allclose(est.inertia_, base.inertia_, rtol=1e-10)
        assert_allclose(est.sigma2_, base.sigma2_, rtol=1e-10)
        assert_allclose(est.lower_bound_, base.lower_bound_, rtol=1e-10)


# -------------------------------------------------------- covariance log-joints
def _random_mixture(kind, rng, C=4, D=3, dead=False):
    means = rng.normal(scale=3.0, size=(C, D))
    weights = rng.dirichlet(np.ones(C))
    if dead:
        weights[1] = 0.0
        weights /= weights.sum()

    def spd():
        A = rng.normal(size=(D, D))
        return A @ A.T / D + 0.3 * np.eye(D)

    if kind == "isotropic":
        v = rng.uniform(0.5, 2.0)
        cov, covs = Isotropic(v, C, D), [v * np.eye(D)] * C
    elif kind == "spherical":
        v = rng.uniform(0.5, 2.0, size=C)
        cov, covs = Spherical(v, D), [vi * np.eye(D) for vi in v]
    elif kind == "diag":
        v = rng.uniform(0.3, 3.0, size=(C, D))
        cov, covs = Diag(v), [np.diag(vi) for vi in v]
    elif kind == "tied":
        S = spd()
        cov, covs = Tied(S, C, D), [S] * C
    else:
        S = np.stack([spd() for _ in range(C)])
        cov, covs = Full(S, C, D), list(S)
    with np.errstate(divide="ignore"):
        log_w = np.log(weights)
    return Mixture(means, log_w, cov), covs


def _scipy_log_joint(mixture, covs, X):
    X = np.asarray(X, dtype=np.float64)
    out = np.empty((X.shape[0], mixture.n_components))
    for c in range(mixture.n_components):
        out[:, c] = mixture.log_weights[c] + multivariate_normal(mixture.means[c], covs[c]).logpdf(X)
    return out


COV_KINDS = ["isotropic", "spherical", "diag", "tied", "full"]


@pytest.mark.parametrize("kind", COV_KINDS)
def test_log_joint_matches_scipy(kind):
    rng = np.random.default_rng(COV_KINDS.index(kind))
    mixture, covs = _random_mixture(kind, rng)
    assert type(mixture.covariance).name == kind
    X = rng.normal(scale=3.0, size=(200, 3))
    assert_allclose(mixture.log_joint(X), _scipy_log_joint(mixture, covs, X), rtol=1e-10)
    # the scikit-learn forms agree with the matrices too
    cov = mixture.covariance
    dense = np.stack(covs)
    if kind in ("tied", "full"):
        pc = np.broadcast_to(cov.precisions_cholesky, dense.shape)
        assert_allclose(np.linalg.inv(pc @ np.swapaxes(pc, 1, 2)), dense, rtol=1e-10)
    else:
        # per-feature variances of every component, (C, D)
        var = np.asarray(cov.covariances, float)
        var = var.reshape(-1, 1) if kind != "diag" else var
        var = np.broadcast_to(var, (mixture.n_components, 3))
        assert_allclose(var, np.diagonal(dense, axis1=1, axis2=2), rtol=1e-12)
        assert_allclose(np.asarray(cov.precisions) * np.asarray(cov.covariances), 1.0, rtol=1e-12)


@pytest.mark.parametrize("kind", COV_KINDS)
def test_log_joint_float32_close_to_float64_recomputation(kind):
    rng = np.random.default_rng(10 + COV_KINDS.index(kind))
    mixture, covs = _random_mixture(kind, rng)
    X32 = rng.normal(scale=3.0, size=(200, 3)).astype(np.float32)
    got = mixture.log_joint(X32)
    assert got.dtype == np.float64
    want = _scipy_log_joint(mixture, covs, X32.astype(np.float64))
    # float32 arithmetic: relative accuracy about 1e-7 of the terms involved
    assert_allclose(got, want, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("dead", [False, True], ids=["all-alive", "removed-component"])
@pytest.mark.parametrize("k", [1, 2, 4])
@pytest.mark.parametrize("kind", COV_KINDS)
def test_log_joint_at_gathers_log_joint(kind, k, dead):
    rng = np.random.default_rng([COV_KINDS.index(kind), k, dead])
    mixture, _ = _random_mixture(kind, rng, C=4, dead=dead)
    X = rng.normal(scale=3.0, size=(150, 3))
    K = np.argsort(rng.random((150, 4)), axis=1)[:, :k].astype(np.int32)
    full = mixture.log_joint(X)
    got = mixture.log_joint_at(X, K)
    assert got.shape == K.shape
    assert_allclose(got, np.take_along_axis(full, K, axis=1), rtol=1e-10)
    if dead:
        assert np.isneginf(got[K == 1]).all() and np.isfinite(got[K != 1]).all()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.floats(-800.0, 0.0), st.just(-np.inf)), min_size=1, max_size=70),
       st.floats(-50.0, 50.0))
def test_vectorised_exp_matches_libm(values, top):
    from truncmix.kernels.vexp import exp_shifted_into

    row = np.array(values) + top
    row[0] = top  # the row's maximum, as in a softmax
    out = np.empty_like(row)
    total = exp_shifted_into(row, top, out, np.empty(row.size, np.int64))
    expected = np.exp(row - top)
    # within 2 units in the last place of libm (subnormals: absolute)
    np.testing.assert_allclose(out, expected, rtol=4.5e-16, atol=1e-320)
    assert np.all(out[np.isneginf(row)] == 0.0)
    assert total == pytest.approx(expected.sum(), rel=1e-15)


def test_scaled_transpose_equals_numpy():
    from truncmix.kernels.topk import scaled_transpose

    rng = np.random.default_rng(2)
    for C, D in ((1, 3), (63, 5), (64, 2), (130, 7)):
        means = rng.normal(size=(C, D))
        variances = rng.uniform(0.5, 2.0, C)
        got = scaled_transpose(means, variances)
        assert got.flags.c_contiguous and got.shape == (D, C)
        assert_array_equal(got, (means / variances[:, None]).T)


@pytest.mark.parametrize("n_probe", [1, 3, 40])
def test_probe_nearest_matches_numpy_twin(n_probe):
    """The probed nearest mean is the nearest among the members of the row's
    n_probe nearest group centres (float64 twin; the kernel's distances are
    float32 in expanded form)."""
    from truncmix.kernels.probe import probe_nearest

    rng = np.random.default_rng(3)
    d, C, g = 12, 300, 17
    means = rng.normal(size=(C, d)) * 3
    labels = rng.integers(0, g - 1, C)  # group g-1 stays empty: left out
    centres = rng.normal(size=(g, d)) * 3
    Y = rng.normal(size=(500, d)) * 3
    best, dist, seen = probe_nearest(Y, centres, means, labels, n_probe)
    to_centres = ((Y[:, None] - centres[None]) ** 2).sum(-1)
    to_means = ((Y[:, None] - means[None]) ** 2).sum(-1)
    filled = np.unique(labels)
    for i in range(len(Y)):
        ranked = filled[np.argsort(to_centres[i, filled], kind="stable")]
        groups = ranked[:min(n_probe, filled.size)]
        members = np.flatnonzero(np.isin(labels, groups))
        assert seen[i] == members.size
        want = members[np.argmin(to_means[i, members])]
        assert best[i] in members
        assert to_means[i, best[i]] <= to_means[i, want] + 1e-3 * (1 + to_means[i, want])
        assert_allclose(dist[i], to_means[i, best[i]], rtol=1e-4, atol=1e-3)


@given(values=hnp.arrays(np.float64, st.integers(0, 60),
                         elements=st.sampled_from([-np.inf, -2.0, -1.0, 0.0, 0.5, 3.0, np.inf])),
       k=st.integers(1, 70), seed=st.integers(0, 3))
@settings(max_examples=200, deadline=None)
def test_kth_lowest_matches_sorting(values, k, seed):
    """The k-th lowest value over positive-weight rows (ties and infinities
    included), +inf when there are fewer than k such rows."""
    from truncmix.kernels.topk import kth_lowest

    weights = np.random.default_rng(seed).choice([0.0, 1.0, 2.5], size=values.shape[0])
    kept = np.sort(values[weights > 0])
    want = kept[k - 1] if kept.size >= k else np.inf
    assert kth_lowest(values, weights, k) == want


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("full", [False, True])
def test_data_moments_of_a_block_match_float64_sums(dtype, weighted, full):
    # the first pass's sums about a reference row (the variances by the numba
    # kernel, the covariance by one matrix product) against float64 NumPy
    from truncmix.backends.base import FirstPass

    rng = np.random.default_rng(11)
    X = (rng.normal(size=(3001, 5)) * [1.0, 10.0, 0.1, 3.0, 1e3] + 50.0).astype(dtype)
    w = rng.uniform(0.0, 3.0, 3001) if weighted else None
    refrow = X[7].astype(np.float64)
    part = FirstPass.of_block(X, w, 0, refrow, full=full)
    d = X.astype(np.float64) - refrow
    ww = np.ones(3001) if w is None else w
    assert part.weight == pytest.approx(ww.sum(), rel=1e-15)
    assert_allclose(part.s1, (ww[:, None] * d).sum(0), rtol=1e-12)
    want = (ww[:, None] * d).T @ d if full else (ww[:, None] * d * d).sum(0)
    assert_allclose(part.s2, want, rtol=1e-12)
    assert_allclose(part.lo, X.min(0).astype(np.float64))
    assert_allclose(part.hi, X.max(0).astype(np.float64))
    # the blocks' parts add up to the whole's
    halves = (FirstPass.of_block(X[:1500], None if w is None else w[:1500], 0, refrow, full)
              + FirstPass.of_block(X[1500:], None if w is None else w[1500:], 1500, refrow, full))
    assert_allclose(halves.s2, part.s2, rtol=1e-12)
    # a non-finite value is found at its row
    X[2000, 3] = np.nan
    bad = FirstPass.of_block(X, w, 100, refrow, full=full)
    assert bad.first_nonfinite == 2100
    assert np.isfinite(bad.lo).all() and np.isfinite(bad.hi).all()
