"""k-means and GMMs as density models (ALGORITHMS.md section 5): sampling,
scoring, posteriors, sample weights and information criteria.

Oracles: scipy's multivariate normal densities, closed forms, quadrature of
the negative entropy, and standard errors of Monte-Carlo moments.
"""

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from truncmix import KMeans, TruncatedGaussianMixture

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    # hard EM with learned weights may remove a component; legal, and the same
    # in both fits that the sample-weight tests compare
    pytest.mark.filterwarnings("ignore::truncmix.exceptions.DegenerateComponentWarning"),
    # small problems: one BLAS thread (see conftest.one_blas_thread)
    pytest.mark.usefixtures("one_blas_thread"),
]

COVARIANCE_TYPES = ["isotropic", "spherical", "diag", "tied", "full"]
N_SAMPLES = 200_000
#: Monte-Carlo checks allow this many standard errors
N_SE = 5.0




# --------------------------------------------------------------------- data
def blobs(seed=0, n=300, far=False):
    """Three anisotropic, rotated 2-D blobs of unequal size."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [7.0, 1.0], [2.0, 8.0]])
    sizes = rng.multinomial(n - 30, [0.5, 0.3, 0.2]) + 10
    parts = []
    for c, m in enumerate(sizes):
        angle = rng.uniform(0, np.pi)
        R = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        A = R @ np.diag(rng.uniform(0.4, 1.5, size=2))
        parts.append(centres[c] + rng.normal(size=(m, 2)) @ A.T)
    X = np.concatenate(parts)
    X = X[rng.permutation(n)]
    if far:
        X = X + np.array([3e4, -2e4])
    return X


def fitted_params(est):
    """(weights, means, covariances as (C, D, D) matrices) of a fitted estimator,
    expanded by hand from the public attributes."""
    if isinstance(est, KMeans):
        means = est.cluster_centers_
        C, D = means.shape
        return np.full(C, 1.0 / C), means, np.broadcast_to(est.sigma2_ * np.eye(D), (C, D, D))
    means, cov = est.means_, est.covariances_
    C, D = means.shape
    kind = est.covariance_type
    if kind == "isotropic":
        assert np.ndim(cov) == 0
        covs = np.broadcast_to(float(cov) * np.eye(D), (C, D, D))
    elif kind == "spherical":
        assert np.shape(cov) == (C,)
        covs = cov[:, None, None] * np.eye(D)
    elif kind == "diag":
        assert np.shape(cov) == (C, D)
        covs = np.stack([np.diag(v) for v in cov])
    elif kind == "tied":
        assert np.shape(cov) == (D, D)
        covs = np.broadcast_to(cov, (C, D, D))
    else:
        assert np.shape(cov) == (C, D, D)
        covs = cov
    return est.weights_, means, np.array(covs)


def reference_log_joint(est, X):
    """log pi_c + log N(x; mu_c, Sigma_c) by scipy, in float64."""
    weights, means, covs = fitted_params(est)
    with np.errstate(divide="ignore"):
        logw = np.log(weights)
    return np.stack(
        [logw[c] + multivariate_normal(means[c], covs[c]).logpdf(X) for c in range(len(weights))],
        axis=1,
    ).reshape(X.shape[0], -1)


def make_estimator(kind, **kw):
    if kind == "kmeans":
        return KMeans(n_clusters=3, random_state=0, **kw)
    return TruncatedGaussianMixture(n_components=3, covariance_type=kind, random_state=0, **kw)


ALL_KINDS = ["kmeans"] + COVARIANCE_TYPES


# ------------------------------------------------------------------ k-means
def test_kmeans_sigma2_is_inertia_per_coordinate():
    X = blobs(1)
    est = KMeans(n_clusters=3, random_state=0).fit(X)
    d2 = cdist(X, est.cluster_centers_, "sqeuclidean")
    np.testing.assert_array_equal(est.labels_, d2.argmin(axis=1))
    np.testing.assert_allclose(est.inertia_, d2.min(axis=1).sum(), rtol=1e-10)
    np.testing.assert_allclose(est.sigma2_, est.inertia_ / (X.shape[0] * X.shape[1]), rtol=1e-12)


def test_kmeans_predict_proba_is_isotropic_equal_weight_posterior():
    X = blobs(2)
    est = KMeans(n_clusters=3, random_state=0).fit(X)
    Y = np.concatenate([X, np.random.default_rng(0).uniform(-5, 12, size=(200, 2))])
    d2 = ((Y[:, None, :] - est.cluster_centers_[None]) ** 2).sum(axis=2)
    D = Y.shape[1]
    lj = -np.log(3) - 0.5 * D * np.log(2 * np.pi * est.sigma2_) - d2 / (2 * est.sigma2_)
    expected = np.exp(lj - logsumexp(lj, axis=1, keepdims=True))
    proba = est.predict_proba(Y)
    np.testing.assert_allclose(proba, expected, rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(est.score_samples(Y), logsumexp(lj, axis=1), rtol=1e-10)


def test_kmeans_transform_is_euclidean_distance():
    X = blobs(3)
    est = KMeans(n_clusters=3, random_state=0).fit(X)
    Y = np.random.default_rng(1).normal(scale=5, size=(100, 2))
    np.testing.assert_allclose(
        est.transform(Y), cdist(Y, est.cluster_centers_), rtol=1e-9, atol=1e-12
    )
    np.testing.assert_allclose(
        KMeans(n_clusters=3, random_state=0).fit_transform(X),
        cdist(X, est.cluster_centers_), rtol=1e-9, atol=1e-12,
    )


# ----------------------------------------------------------------- sampling
def _check_moments(Xs, labels, est, kind):
    weights, means, covs = fitted_params(est)
    C, D = means.shape
    M = Xs.shape[0]
    assert Xs.shape == (M, D) and labels.shape == (M,)
    assert labels.min() >= 0 and labels.max() < C
    counts = np.bincount(labels, minlength=C)
    # label frequencies: binomial standard error
    se = np.sqrt(weights * (1 - weights) / M)
    np.testing.assert_array_less(np.abs(counts / M - weights), N_SE * se + 1e-12)
    Z = Xs - means[labels]  # deviations from each sample's own component mean
    for c in range(C):
        m = counts[c]
        assert m > 1000, "setup: every component should get many samples"
        Zc = Z[labels == c]
        S = covs[c]
        # means: SE sqrt(Sigma_dd / m)
        np.testing.assert_array_less(np.abs(Zc.mean(axis=0)), N_SE * np.sqrt(np.diag(S) / m))
        # full covariance about the true mean: Var(z_i z_j) = S_ii S_jj + S_ij^2
        S_hat = Zc.T @ Zc / m
        se = np.sqrt((np.outer(np.diag(S), np.diag(S)) + S**2) / m)
        np.testing.assert_array_less(np.abs(S_hat - S), N_SE * se)
    # the covariance parameters in the type's own form
    if kind in ("kmeans", "isotropic"):
        s2 = covs[0, 0, 0]
        est_s2 = np.sum(Z**2) / (M * D)
        assert abs(est_s2 - s2) < N_SE * s2 * np.sqrt(2.0 / (M * D))
    elif kind == "spherical":
        for c in range(C):
            Zc = Z[labels == c]
            s2 = est.covariances_[c]
            assert abs(np.sum(Zc**2) / Zc.size - s2) < N_SE * s2 * np.sqrt(2.0 / Zc.size)
    elif kind == "diag":
        for c in range(C):
            Zc = Z[labels == c]
            s = est.covariances_[c]
            np.testing.assert_array_less(
                np.abs((Zc**2).mean(axis=0) - s), N_SE * s * np.sqrt(2.0 / Zc.shape[0])
            )
    elif kind == "tied":
        S = est.covariances_
        S_hat = Z.T @ Z / M
        se = np.sqrt((np.outer(np.diag(S), np.diag(S)) + S**2) / M)
        np.testing.assert_array_less(np.abs(S_hat - S), N_SE * se)
    # "full" is the per-component check above


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_sample_moments_match_fitted_parameters(kind):
    X = blobs(4)
    est = make_estimator(kind).fit(X)
    Xs, labels = est.sample(N_SAMPLES)
    _check_moments(Xs, labels, est, kind)


# ------------------------------------------------------------------ scoring
@pytest.mark.parametrize("far", [False, True], ids=["near", "far"])
@pytest.mark.parametrize("kind", ALL_KINDS)
def test_score_samples_matches_scipy(kind, far):
    X = blobs(5, far=far)
    est = make_estimator(kind).fit(X)
    rng = np.random.default_rng(7)
    Y = np.concatenate([X, est.sample(2000)[0], X.mean(axis=0) + rng.normal(scale=8, size=(200, 2))])
    lj = reference_log_joint(est, Y)
    expected = logsumexp(lj, axis=1)
    np.testing.assert_allclose(est.score_samples(Y), expected, rtol=1e-10)
    np.testing.assert_allclose(est.score(Y), expected.mean(), rtol=1e-10)
    w = rng.uniform(0.1, 3.0, size=Y.shape[0])
    np.testing.assert_allclose(est.score(Y, sample_weight=w), w @ expected / w.sum(), rtol=1e-10)


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_predict_proba_is_exact_posterior(kind):
    X = blobs(6)
    est = make_estimator(kind).fit(X)
    Y = np.concatenate([X, np.random.default_rng(3).uniform(-6, 14, size=(300, 2))])
    lj = reference_log_joint(est, Y)
    proba = est.predict_proba(Y)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        proba, np.exp(lj - logsumexp(lj, axis=1, keepdims=True)), rtol=1e-9, atol=1e-14
    )
    srt = np.sort(lj, axis=1)
    clear = srt[:, -1] - srt[:, -2] > 1e-8
    np.testing.assert_array_equal(est.predict(Y)[clear], lj.argmax(axis=1)[clear])


def _negative_entropy_2d(est):
    """Integral of p log p over R^2 by the trapezoid rule on a fine grid (the
    integrand is smooth and Gaussian-tailed, so the rule is very accurate)."""
    weights, means, covs = fitted_params(est)
    sd_max = np.sqrt(max(np.linalg.eigvalsh(S).max() for S in covs))
    sd_min = np.sqrt(min(np.linalg.eigvalsh(S).min() for S in covs))
    lo = means.min(axis=0) - 10 * sd_max
    hi = means.max(axis=0) + 10 * sd_max
    n = np.ceil((hi - lo) / (sd_min / 6)).astype(int) + 1
    assert n.max() <= 3000, "setup: grid too fine"
    gx, gy = np.linspace(lo[0], hi[0], n[0]), np.linspace(lo[1], hi[1], n[1])
    G = np.stack(np.meshgrid(gx, gy, indexing="ij"), axis=-1).reshape(-1, 2)
    logp = logsumexp(reference_log_joint(est, G), axis=1)
    f = (np.exp(logp) * logp).reshape(n[0], n[1])
    mass = np.trapezoid(np.trapezoid(np.exp(logp).reshape(n[0], n[1]), gy, axis=1), gx)
    assert abs(mass - 1) < 1e-8, "setup: the grid must hold all the mass"
    return np.trapezoid(np.trapezoid(f, gy, axis=1), gx)


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_score_of_own_samples_is_negative_entropy(kind):
    """E_p[log p(x)] = -H(p): Monte-Carlo average of score vs quadrature."""
    X = blobs(8)
    est = make_estimator(kind).fit(X)
    Xs, _ = est.sample(N_SAMPLES)
    ll = est.score_samples(Xs)
    neg_entropy = _negative_entropy_2d(est)
    se = ll.std() / np.sqrt(N_SAMPLES)
    assert abs(est.score(Xs) - neg_entropy) < N_SE * se, (est.score(Xs), neg_entropy, se)


# ----------------------------------------------------------- sample weights
def _init_means(X, C=3, seed=0):
    return X[np.random.default_rng(seed).choice(X.shape[0], size=C, replace=False)]


def _fit_pair(kind, n_active, X1, w1, X2, init):
    if kind == "kmeans":
        make = lambda: KMeans(n_clusters=3, init=init, max_iter=100, tol=1e-10)
    else:
        make = lambda: TruncatedGaussianMixture(
            n_components=3, covariance_type=kind, n_active=n_active, means_init=init,
            max_iter=100, tol=1e-10,
        )
    a = make().fit(X1, sample_weight=w1)
    b = make().fit(X2)
    return a, b


def _assert_same_fit(a, b, kind, same_n_iter=True):
    if same_n_iter:
        assert a.n_iter_ == b.n_iter_
    pa, pb = fitted_params(a), fitted_params(b)
    for x, y in zip(pa, pb):
        np.testing.assert_allclose(x, y, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(a.lower_bound_, b.lower_bound_, rtol=1e-8)
    if kind == "kmeans":
        np.testing.assert_allclose(a.inertia_, b.inertia_, rtol=1e-8)
        np.testing.assert_allclose(a.sigma2_, b.sigma2_, rtol=1e-8)


WEIGHT_CASES = [pytest.param("kmeans", 1, id="kmeans")] + [
    pytest.param(kind, n_active, id=f"{kind}-C'={n_active}")
    for kind in COVARIANCE_TYPES
    for n_active in (1, None)
]


@pytest.mark.parametrize("kind, n_active", WEIGHT_CASES)
def test_integer_weights_equal_repeated_rows(kind, n_active):
    X = blobs(9, n=150)
    w = np.random.default_rng(9).integers(1, 4, size=X.shape[0])
    Xrep = np.repeat(X, w, axis=0)
    init = _init_means(X)
    a, b = _fit_pair(kind, n_active, X, w.astype(float), Xrep, init)
    _assert_same_fit(a, b, kind)
    labels_a = a.labels_ if kind == "kmeans" else a.predict(X)
    labels_b = b.labels_ if kind == "kmeans" else b.predict(Xrep)
    np.testing.assert_array_equal(np.repeat(labels_a, w), labels_b)


@pytest.mark.parametrize("kind, n_active", WEIGHT_CASES)
def test_zero_weight_equals_dropping_rows(kind, n_active):
    X = blobs(10, n=150)
    rng = np.random.default_rng(10)
    # some rows far away: dropping them must matter, weighting them zero must not
    X[:5] += 40.0
    w = np.ones(X.shape[0])
    w[:5] = 0.0
    w[rng.choice(np.arange(5, X.shape[0]), size=10, replace=False)] = 0.0
    keep = w > 0
    init = _init_means(X[keep])
    a, b = _fit_pair(kind, n_active, X, w, X[keep], init)
    # n_iter_ may differ: with C'=1 a zero-weight row whose label changes counts
    # as a change for the "no label changed" stopping rule (one extra, idle step)
    _assert_same_fit(a, b, kind, same_n_iter=False)
    labels_a = a.labels_[keep] if kind == "kmeans" else a.predict(X[keep])
    labels_b = b.labels_ if kind == "kmeans" else b.predict(X[keep])
    np.testing.assert_array_equal(labels_a, labels_b)


# ----------------------------------------------------------------- BIC/AIC
def _n_parameters_by_hand(kind, learned, C, D):
    """ALGORITHMS.md section 2."""
    cov = {
        "isotropic": 1,
        "spherical": C,
        "diag": C * D,
        "tied": D * (D + 1) // 2,
        "full": C * D * (D + 1) // 2,
    }[kind]
    return C * D + cov + (C - 1 if learned else 0)


BIC_CASES = [pytest.param("kmeans", "equal", id="kmeans")] + [
    pytest.param(kind, weights, id=f"{kind}-{weights}")
    for kind in COVARIANCE_TYPES
    for weights in ("equal", "learned")
]


@pytest.mark.parametrize("kind, weights", BIC_CASES)
def test_bic_aic(kind, weights):
    X = blobs(11)
    n, D = X.shape
    C = 3
    if kind == "kmeans":
        est = KMeans(n_clusters=C, random_state=0).fit(X)
        p = _n_parameters_by_hand("isotropic", False, C, D)
    else:
        est = TruncatedGaussianMixture(
            n_components=C, covariance_type=kind, weights=weights, random_state=0
        ).fit(X)
        p = _n_parameters_by_hand(kind, weights == "learned", C, D)
    # the log-likelihood independently, via scipy
    L = logsumexp(reference_log_joint(est, X), axis=1).sum()
    np.testing.assert_allclose(est.bic(X), -2 * L + p * np.log(n), rtol=1e-10)
    np.testing.assert_allclose(est.aic(X), -2 * L + 2 * p, rtol=1e-10)
