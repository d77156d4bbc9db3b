"""The free energy: monotone under EM, a lower bound on the log-likelihood, and
the k-means identities (ALGORITHMS.md sections 3.2, 3.5, 3.6 and 7.1).

Every oracle here is a closed form or an independent NumPy recomputation; no
expected number comes from the library's own output.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from truncmix import KMeans, TruncatedGaussianMixture
from truncmix.backends import InMemory
from truncmix.em import e_pass
from truncmix.estep import Exhaustive
from truncmix.model.covariance import Floor, Isotropic
from truncmix.model.mixture import Mixture
from truncmix.mstep import m_step

pytestmark = [
    pytest.mark.filterwarnings(
        "ignore::sklearn.exceptions.ConvergenceWarning",
        # emptied components are re-seeded / removed with a warning; that is legal
        "ignore::truncmix.exceptions.DegenerateComponentWarning",
    ),
    # small problems: one BLAS thread (see conftest.one_blas_thread)
    pytest.mark.usefixtures("one_blas_thread"),
]

COVARIANCE_TYPES = ["isotropic", "spherical", "diag", "tied", "full"]
WEIGHTS = ["equal", "learned"]
N_ACTIVE = [1, 2, 3, None]

#: rounding allowed in a step of the free energy (ALGORITHMS.md 3.5)
MONOTONE_RTOL = 1e-10




SETTINGS = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    derandomize=True,
)


# --------------------------------------------------------------------- data
def make_data(seed, n_samples, n_features, n_blobs, kind, far):
    """Synthetic data of several shapes, generated from one seed."""
    rng = np.random.default_rng(seed)
    N, D = n_samples, n_features
    if kind == "uniform":
        X = rng.uniform(-1.0, 1.0, size=(N, D)) * rng.uniform(0.1, 10.0, size=D)
    else:
        spread = 1.0 if kind == "overlap" else 12.0
        centres = rng.normal(scale=spread, size=(n_blobs, D))
        labels = rng.integers(n_blobs, size=N)
        # anisotropic, per-blob scales
        scales = rng.uniform(0.3, 2.0, size=(n_blobs, D))
        X = centres[labels] + rng.normal(size=(N, D)) * scales[labels]
    if far:
        direction = rng.normal(size=D)
        X = X + 1e4 * direction / np.linalg.norm(direction)
    return X


@st.composite
def problems(draw, min_components=2, weighted=False):
    """(X, sample_weight or None, n_components, seed)."""
    seed = draw(st.integers(0, 2**32 - 1))
    N = draw(st.integers(20, 200))
    D = draw(st.integers(1, 4))
    C = draw(st.integers(max(2, min_components), 5))
    kind = draw(st.sampled_from(["blobs", "overlap", "uniform"]))
    far = draw(st.booleans())
    n_blobs = draw(st.integers(1, 6))
    X = make_data(seed, N, D, n_blobs, kind, far)
    w = None
    if weighted:
        w = np.random.default_rng(seed + 1).uniform(0.05, 5.0, size=N)
    return X, w, C, seed


def assert_monotone(h):
    """``F_{t+1} >= F_t - 1e-10 |F_t|`` (ALGORITHMS.md 3.5), ``h`` per unit weight.

    The scale is floored at 1 nat per unit weight: F is a sum of per-point
    log-densities of either sign, so its total can cancel to nearly zero while
    each term, and so the rounding, stays O(1). (Seen with full covariances
    clipped at the floor, condition number ~1e7, F/W ~ -0.02: the *exact* F at
    the float64 parameters moved by -7e-12 per unit weight, pure rounding.)
    """
    h = np.asarray(h, dtype=np.float64)
    assert h.ndim == 1 and h.size >= 2, h
    assert np.isfinite(h).all(), h
    steps = np.diff(h)
    bad = steps < -MONOTONE_RTOL * np.maximum(np.abs(h[:-1]), 1.0)
    assert not bad.any(), (
        f"free energy decreased at step(s) {np.flatnonzero(bad)}: "
        f"{steps[bad]} (history {h})"
    )


def gmm(C, cov, weights, n_active, seed, **kw):
    params = dict(
        n_components=C, covariance_type=cov, weights=weights, n_active=n_active,
        random_state=seed % (2**31), max_iter=40, tol=1e-7,
    )
    params.update(kw)
    return TruncatedGaussianMixture(**params)


GRID = [
    pytest.param(cov, weights, n_active, id=f"{cov}-{weights}-C'={n_active}")
    for cov in COVARIANCE_TYPES
    for weights in WEIGHTS
    for n_active in N_ACTIVE
]


# -------------------------------------------------------------- monotonicity
@pytest.mark.parametrize("cov, weights, n_active", GRID)
@settings(max_examples=25, **SETTINGS)
@given(data=st.data())
def test_gmm_free_energy_never_decreases(cov, weights, n_active, data):
    X, _, C, seed = data.draw(problems(min_components=n_active or 2))
    init = data.draw(st.sampled_from(["k-means++", "random"]))
    est = gmm(C, cov, weights, n_active, seed, init=init).fit(X)
    assert_monotone(est.free_energy_history_)


@pytest.mark.parametrize("cov, weights, n_active", GRID)
@settings(max_examples=10, **SETTINGS)
@given(data=st.data())
def test_gmm_free_energy_never_decreases_weighted(cov, weights, n_active, data):
    X, w, C, seed = data.draw(problems(min_components=n_active or 2, weighted=True))
    est = gmm(C, cov, weights, n_active, seed).fit(X, sample_weight=w)
    assert_monotone(est.free_energy_history_)


@settings(max_examples=80, **SETTINGS)
@given(problem=problems(), weighted=st.booleans())
def test_kmeans_free_energy_never_decreases(problem, weighted):
    X, _, C, seed = problem
    w = np.random.default_rng(seed + 7).uniform(0.05, 5.0, size=X.shape[0]) if weighted else None
    est = KMeans(n_clusters=C, random_state=seed % (2**31), max_iter=60, tol=0.0).fit(
        X, sample_weight=w
    )
    assert_monotone(est.free_energy_history_)


# ------------------------------------------------------- F <= L, and the gap
def _check_bound(est, X, w, C, n_active):
    L = est.score(X, sample_weight=w)
    F = est.lower_bound_
    assert np.isfinite(L) and np.isfinite(F)
    tiny = 1e-11 * abs(L) + 1e-13
    assert F <= L + tiny, (F, L)
    if n_active is None or n_active == C:
        np.testing.assert_allclose(F, L, rtol=1e-10, atol=0)
    else:
        gap = L - F
        assert -tiny <= gap <= np.log(C / n_active) + tiny, (gap, np.log(C / n_active))


@pytest.mark.parametrize("cov, weights, n_active", GRID)
@settings(max_examples=10, **SETTINGS)
@given(data=st.data())
def test_gmm_truncated_free_energy_bounds_log_likelihood(cov, weights, n_active, data):
    weighted = data.draw(st.booleans())
    X, w, C, seed = data.draw(problems(min_components=n_active or 2, weighted=weighted))
    est = gmm(C, cov, weights, n_active, seed).fit(X, sample_weight=w)
    _check_bound(est, X, w, C, n_active)


@settings(max_examples=50, **SETTINGS)
@given(problem=problems(), weighted=st.booleans())
def test_kmeans_free_energy_bounds_log_likelihood(problem, weighted):
    X, _, C, seed = problem
    w = np.random.default_rng(seed + 3).uniform(0.05, 5.0, size=X.shape[0]) if weighted else None
    est = KMeans(n_clusters=C, random_state=seed % (2**31)).fit(X, sample_weight=w)
    _check_bound(est, X, w, C, 1)


# ------------------------------------------------------- k-means identities
@settings(max_examples=60, **SETTINGS)
@given(problem=problems())
def test_kmeans_lower_bound_is_closed_form_in_sigma2(problem):
    """ALGORITHMS.md 3.6: F/W = -log C - (D/2) log(2 pi e sigma^2), sigma^2 = Q/(N D)."""
    X, _, C, seed = problem
    N, D = X.shape
    est = KMeans(n_clusters=C, random_state=seed % (2**31)).fit(X)
    # the inertia itself, recomputed from the centres and labels
    Q = np.sum((X - est.cluster_centers_[est.labels_]) ** 2)
    np.testing.assert_allclose(est.inertia_, Q, rtol=1e-9)
    np.testing.assert_allclose(est.sigma2_, est.inertia_ / (N * D), rtol=1e-12)
    expected = -np.log(C) - 0.5 * D * np.log(2 * np.pi * np.e * est.sigma2_)
    np.testing.assert_allclose(est.lower_bound_, expected, rtol=1e-12)


@settings(max_examples=60, **SETTINGS)
@given(problem=problems(), weighted=st.booleans(), data=st.data())
def test_free_energy_after_one_m_step_is_closed_form_in_Q(problem, weighted, data):
    """ALGORITHMS.md 7.1: after an M-step from hard assignments,
    F(q, Theta_new) = -W log C - (W D / 2) log(2 pi e Q / (W D)),
    Q at the new centres and the assignments that M-step used."""
    X, _, C, seed = problem
    N, D = X.shape
    rng = np.random.default_rng(seed + 11)
    w = rng.uniform(0.05, 5.0, size=N) if weighted else np.ones(N)
    W = w.sum()
    # centres: distinct data points, slightly moved; an arbitrary starting variance
    rows = rng.choice(N, size=C, replace=False)
    scale = X.std(axis=0).mean() + 1e-300
    centres = X[rows] + 1e-3 * scale * rng.normal(size=(C, D))
    sigma2_old = data.draw(st.floats(1e-2, 1e2)) * scale**2
    # the driver works in centred coordinates (ALGORITHMS.md 6); do the same
    offset = (w @ X) / W
    Xc = X - offset
    mixture = Mixture.with_equal_weights(centres - offset, Isotropic(sigma2_old, C, D))

    backend = InMemory(X, w, offset, chunk_size=data.draw(st.sampled_from([None, 7])))
    backend.allocate_state((N, 1))
    stats = e_pass(backend, Exhaustive(1), mixture)
    K = backend.state.copy()

    # the E-step is the nearest-centre assignment (float64 recomputation)
    d2 = ((X[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    nearest = d2.argmin(axis=1)
    srt = np.sort(d2, axis=1)
    clear = srt[:, 1] - srt[:, 0] > 1e-9 * (srt[:, 1] + 1e-300)
    np.testing.assert_array_equal(K[clear, 0], nearest[clear])
    a = K[:, 0]
    # every centre keeps at least one point (needed for the closed form)
    assume(np.all(np.bincount(a, weights=w, minlength=C) > 0))

    floor = Floor.from_variances(X.var(axis=0), 1e-6)
    new, report = m_step(stats, mixture, learned_weights=False, floor=floor, reg_covar=0.0)
    assert report.n_empty == 0

    # new centres are the weighted centroids of the old assignment
    mass = np.bincount(a, weights=w, minlength=C)
    centroids = np.stack([np.bincount(a, weights=w * X[:, d], minlength=C) for d in range(D)], 1)
    centroids /= mass[:, None]
    np.testing.assert_allclose(new.means + offset, centroids, rtol=1e-10, atol=1e-10 * scale)

    Q = float(w @ ((X - centroids[a]) ** 2).sum(axis=1))
    assume(Q / (W * D) > floor.scalar)  # the floor did not bind
    np.testing.assert_allclose(new.covariance.variance, Q / (W * D), rtol=1e-10)

    F = float(w @ new.log_joint_at(Xc, K)[:, 0])
    expected = -W * np.log(C) - 0.5 * W * D * np.log(2 * np.pi * np.e * Q / (W * D))
    np.testing.assert_allclose(F, expected, rtol=1e-10)
    # and this F is at least the E-step's F with the old parameters (3.5, step 2)
    assert F >= stats.free_energy - 1e-10 * abs(stats.free_energy)


# ------------------------------------------------------- Lloyd equivalence
def lloyd(X, centres, n_steps):
    """Plain Lloyd in float64: returns centres after each step and the steps run
    before the assignment stopped changing (the estimator stops there too)."""
    centres = np.array(centres, dtype=np.float64)
    previous = None
    for step in range(1, n_steps + 1):
        d2 = ((X[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        labels = d2.argmin(axis=1)
        counts = np.bincount(labels, minlength=centres.shape[0])
        if np.any(counts == 0):
            return None, None, None
        srt = np.sort(d2, axis=1)
        if np.any(srt[:, 1] - srt[:, 0] <= 1e-9 * srt[:, 1]):
            return None, None, None  # near-tie: rounding may decide it either way
        if previous is not None and np.array_equal(labels, previous):
            return centres, step, labels  # fixed point: the M-step changes nothing
        centres = np.stack([X[labels == c].mean(axis=0) for c in range(centres.shape[0])])
        previous = labels
    return centres, n_steps, None


@pytest.mark.parametrize("n_steps", [1, 2, 3, 4, 5])
@settings(max_examples=25, **SETTINGS)
@given(problem=problems())
def test_kmeans_is_lloyd_at_every_iteration(n_steps, problem):
    X, _, C, seed = problem
    N, D = X.shape
    init = X[np.random.default_rng(seed + 5).choice(N, size=C, replace=False)]
    expected, n_iter, _ = lloyd(X, init, n_steps)
    assume(expected is not None)
    est = KMeans(n_clusters=C, init=init, max_iter=n_steps, tol=0.0).fit(X)
    scale = np.abs(X).max()
    np.testing.assert_allclose(est.cluster_centers_, expected, rtol=1e-10, atol=1e-12 * scale)
    assert est.n_iter_ == n_iter
    # the labels are the nearest centres of the returned centres
    d2 = ((X[:, None, :] - expected[None, :, :]) ** 2).sum(axis=2)
    srt = np.sort(d2, axis=1)
    clear = srt[:, 1] - srt[:, 0] > 1e-9 * srt[:, 1]
    np.testing.assert_array_equal(est.labels_[clear], d2.argmin(axis=1)[clear])
