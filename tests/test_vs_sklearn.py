"""truncmix against scikit-learn as an oracle (ALGORITHMS.md section 7, oracles 1 and 2).

* ``KMeans`` (C' = 1, one shared isotropic variance, equal weights) is Lloyd's
  algorithm: from the same initial centres it must reproduce
  ``sklearn.cluster.KMeans(algorithm="lloyd")`` label for label, iteration for
  iteration.
* ``TruncatedGaussianMixture(n_active=None)`` (C' = C) is exact EM: from the same
  initial weights, means and precisions, with the same ``reg_covar``, it must
  reproduce ``sklearn.mixture.GaussianMixture`` for every covariance type
  scikit-learn has.

With ``tol=0`` neither library can stop on the tolerance, so every run goes to
``max_iter`` (or, for k-means, to a fixed point where no label changes); both
libraries then warn about convergence, which is filtered here.
"""

from functools import lru_cache

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.cluster import KMeans as SkKMeans
from sklearn.cluster import kmeans_plusplus
from sklearn.datasets import make_blobs
from sklearn.metrics import pairwise_distances_argmin
from sklearn.mixture import GaussianMixture

import truncmix

ignore_convergence = [
    pytest.mark.filterwarnings("ignore::truncmix.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
]


# small problems: one BLAS thread (see conftest.one_blas_thread)
pytestmark = pytest.mark.usefixtures("one_blas_thread")


def _apply(marks):
    def deco(fn):
        for m in marks:
            fn = m(fn)
        return fn

    return deco


# --------------------------------------------------------------------------- data
def _blobs_overlapping():
    # cluster_std large relative to the centre spread: Lloyd needs many iterations
    X, _ = make_blobs(n_samples=600, centers=5, n_features=2, cluster_std=2.5,
                      center_box=(-6, 6), random_state=0)
    return X, 5


def _anisotropic():
    X, _ = make_blobs(n_samples=500, centers=3, n_features=2, cluster_std=1.0, random_state=170)
    return X @ np.array([[0.6, -0.6], [-0.4, 0.8]]), 3


def _uniform():
    return np.random.default_rng(1).uniform(size=(800, 4)), 6


def _shifted():
    X, _ = make_blobs(n_samples=700, centers=4, n_features=3, cluster_std=2.0,
                      center_box=(-5, 5), random_state=3)
    return X + 1000.0, 4


def _high_dim():
    X, _ = make_blobs(n_samples=1000, centers=10, n_features=8, cluster_std=3.0,
                      center_box=(-6, 6), random_state=4)
    return X, 10


KMEANS_DATA = {
    "blobs-overlapping": _blobs_overlapping,
    "anisotropic": _anisotropic,
    "uniform": _uniform,
    "shifted+1000": _shifted,
    "D8-C10": _high_dim,
}
KMEANS_SEEDS = {"blobs-overlapping": 0, "anisotropic": 1, "uniform": 2, "shifted+1000": 3,
                "D8-C10": 5}


@lru_cache(maxsize=None)
def _kmeans_case(name):
    X, C = KMEANS_DATA[name]()
    X = np.ascontiguousarray(X, dtype=np.float64)
    init, _ = kmeans_plusplus(X, C, random_state=KMEANS_SEEDS[name])
    return X, C, init


@lru_cache(maxsize=None)
def _sklearn_lloyd_never_empties(name, max_iter):
    """True iff no E-step of scikit-learn's Lloyd run (up to ``max_iter``) leaves a cluster empty.

    The E-step of iteration 1 assigns to ``init``; that of iteration i > 1 gives
    the labels a run stopped after i - 1 iterations returns.
    """
    X, C, init = _kmeans_case(name)
    if np.bincount(pairwise_distances_argmin(X, init), minlength=C).min() == 0:
        return False
    for i in range(1, max_iter + 1):
        sk = SkKMeans(C, init=init, n_init=1, max_iter=i, tol=0, algorithm="lloyd").fit(X)
        if np.bincount(sk.labels_, minlength=C).min() == 0:
            return False
        if sk.n_iter_ < i:  # stopped at a fixed point: later runs are identical
            break
    return True


# ------------------------------------------------------------------------- KMeans
@_apply(ignore_convergence)
@pytest.mark.parametrize("max_iter", [1, 5, 50])
@pytest.mark.parametrize("name", sorted(KMEANS_DATA))
def test_kmeans_matches_sklearn_lloyd(name, max_iter):
    X, C, init = _kmeans_case(name)
    sk = SkKMeans(C, init=init, n_init=1, max_iter=max_iter, tol=0, algorithm="lloyd").fit(X)
    # scikit-learn re-seeds empty clusters differently; the comparison is only
    # meaningful when no cluster ever empties
    assert _sklearn_lloyd_never_empties(name, max_iter)
    assert np.bincount(sk.labels_, minlength=C).min() > 0

    km = truncmix.KMeans(C, init=init, n_init=1, max_iter=max_iter, tol=0).fit(X)
    assert all(r.n_empty == 0 for r in km.history_)
    assert_array_equal(km.labels_, sk.labels_)
    assert_allclose(km.cluster_centers_, sk.cluster_centers_, rtol=1e-7)
    assert_allclose(km.inertia_, sk.inertia_, rtol=1e-9)
    assert km.n_iter_ == sk.n_iter_


def test_kmeans_cases_exercise_long_runs():
    """The data sets are hard enough that Lloyd does not settle within a few steps."""
    n_iters = []
    for name in KMEANS_DATA:
        X, C, init = _kmeans_case(name)
        n_iters.append(
            SkKMeans(C, init=init, n_init=1, max_iter=50, tol=0, algorithm="lloyd").fit(X).n_iter_
        )
    assert max(n_iters) > 10, n_iters


def _well_separated():
    X, y = make_blobs(n_samples=900, centers=4, n_features=3, cluster_std=0.5,
                      center_box=(-20, 20), random_state=11)
    return X, y, 4


def test_kmeans_float32_gives_float64_labels():
    X, _, C = _well_separated()
    init, _ = kmeans_plusplus(X, C, random_state=0)
    k64 = truncmix.KMeans(C, init=init, max_iter=100).fit(X)
    k32 = truncmix.KMeans(C, init=init.astype(np.float32), max_iter=100).fit(X.astype(np.float32))
    assert_array_equal(k32.labels_, k64.labels_)
    assert_array_equal(k32.predict(X.astype(np.float32)), k64.labels_)
    assert_allclose(k32.cluster_centers_, k64.cluster_centers_, rtol=1e-5, atol=1e-5)


def test_kmeans_fit_predict_consistent():
    X, C, init = _kmeans_case("blobs-overlapping")
    labels = truncmix.KMeans(C, init=init, max_iter=300).fit_predict(X)
    km = truncmix.KMeans(C, init=init, max_iter=300).fit(X)
    assert_array_equal(labels, km.labels_)
    assert_array_equal(km.predict(X), km.labels_)
    # labels are the nearest centres
    assert_array_equal(km.labels_, pairwise_distances_argmin(X, km.cluster_centers_))


# --------------------------------------------------------------- Gaussian mixture
GMM_TYPES = ["spherical", "diag", "tied", "full"]


def _gmm_blobs():
    X, _ = make_blobs(n_samples=500, centers=4, n_features=3, cluster_std=1.5,
                      center_box=(-6, 6), random_state=7)
    # shear the data so that tied/full covariances are not diagonal
    A = np.array([[1.0, 0.4, 0.0], [0.0, 1.0, -0.5], [0.3, 0.0, 0.8]])
    return X @ A, 4


def _gmm_shifted():
    X, _ = make_blobs(n_samples=400, centers=3, n_features=2, cluster_std=1.0,
                      center_box=(-4, 4), random_state=170)
    return X @ np.array([[0.6, -0.6], [-0.4, 0.8]]) + 1000.0, 3


GMM_DATA = {"blobs-3d": _gmm_blobs, "aniso-shifted+1000": _gmm_shifted}


def _spd(rng, D, scale):
    A = rng.normal(size=(D, D))
    return scale * (A @ A.T / D + 0.5 * np.eye(D))


@lru_cache(maxsize=None)
def _gmm_case(name, covariance_type):
    """Data, C and initial (weights, means, precisions) in scikit-learn's forms."""
    X, C = GMM_DATA[name]()
    X = np.ascontiguousarray(X, dtype=np.float64)
    D = X.shape[1]
    rng = np.random.default_rng([sorted(GMM_DATA).index(name), GMM_TYPES.index(covariance_type)])
    means, _ = kmeans_plusplus(X, C, random_state=1)
    weights = rng.dirichlet(np.full(C, 5.0))
    var = X.var(axis=0).mean()
    if covariance_type == "spherical":
        prec = 1.0 / (var * rng.uniform(0.3, 1.0, size=C))
    elif covariance_type == "diag":
        prec = 1.0 / (X.var(axis=0) * rng.uniform(0.3, 1.0, size=(C, D)))
    elif covariance_type == "tied":
        prec = np.linalg.inv(_spd(rng, D, var))
    else:
        prec = np.stack([np.linalg.inv(_spd(rng, D, var * s)) for s in rng.uniform(0.3, 1, C)])
    return X, C, weights, means, prec


def _fit_pair(name, covariance_type, max_iter, reg_covar=1e-6):
    X, C, w0, m0, p0 = _gmm_case(name, covariance_type)
    sk = GaussianMixture(
        C, covariance_type=covariance_type, weights_init=w0, means_init=m0, precisions_init=p0,
        reg_covar=reg_covar, max_iter=max_iter, tol=0, init_params="random_from_data",
        random_state=0,
    ).fit(X)
    tm = truncmix.TruncatedGaussianMixture(
        C, n_active=None, weights="learned", covariance_type=covariance_type,
        means_init=m0, weights_init=w0, precisions_init=p0, reg_covar=reg_covar,
        covariance_floor=0, max_iter=max_iter, tol=0,
    ).fit(X)
    return X, sk, tm


@_apply(ignore_convergence)
@pytest.mark.parametrize("max_iter", [1, 5, 30])
@pytest.mark.parametrize("covariance_type", GMM_TYPES)
@pytest.mark.parametrize("name", sorted(GMM_DATA))
def test_gmm_exact_em_matches_sklearn(name, covariance_type, max_iter):
    X, sk, tm = _fit_pair(name, covariance_type, max_iter)
    assert_allclose(tm.means_, sk.means_, rtol=1e-6)
    assert_allclose(tm.weights_, sk.weights_, rtol=1e-6)
    assert_allclose(tm.covariances_, sk.covariances_, rtol=1e-6)
    assert_allclose(tm.precisions_cholesky_, sk.precisions_cholesky_, rtol=1e-6, atol=1e-12)
    assert_allclose(tm.precisions_, sk.precisions_, rtol=1e-6, atol=1e-12)
    assert tm.n_iter_ == sk.n_iter_ == max_iter
    assert_allclose(tm.score(X), sk.score(X), rtol=1e-8)
    assert_allclose(tm.score_samples(X), sk.score_samples(X), rtol=1e-7)
    assert_allclose(tm.predict_proba(X), sk.predict_proba(X), atol=1e-7)
    assert_array_equal(tm.predict(X), sk.predict(X))
    # C' = C: the free energy with the returned parameters is the log-likelihood
    assert_allclose(tm.lower_bound_, sk.score(X), rtol=1e-8)


@_apply(ignore_convergence)
@pytest.mark.parametrize("covariance_type", GMM_TYPES)
def test_gmm_reg_covar_semantics_match_sklearn(covariance_type):
    """``reg_covar`` is added to the diagonal exactly as scikit-learn adds it."""
    X, sk, tm = _fit_pair("blobs-3d", covariance_type, 5, reg_covar=1e-2)
    _, sk0, tm0 = _fit_pair("blobs-3d", covariance_type, 5, reg_covar=1e-6)
    # the regularisation is large enough to matter at this tolerance ...
    assert not np.allclose(tm.covariances_, tm0.covariances_, rtol=1e-4, atol=0)
    # ... and both libraries apply it the same way
    assert_allclose(tm.covariances_, sk.covariances_, rtol=1e-6)
    assert_allclose(tm.means_, sk.means_, rtol=1e-6)
    assert_allclose(tm.weights_, sk.weights_, rtol=1e-6)
    assert_allclose(tm.score(X), sk.score(X), rtol=1e-8)


@_apply(ignore_convergence)
@pytest.mark.parametrize("covariance_type", GMM_TYPES)
def test_gmm_means_init_only_converges_like_sklearn(covariance_type):
    """Only means given: the starting weights and covariances differ between the
    libraries (scikit-learn takes them from its own k-means labels, truncmix from
    the nearest-mean assignment), but on well separated blobs both end at the
    same optimum."""
    X, _, C = _well_separated()
    means, _ = kmeans_plusplus(X, C, random_state=2)
    sk = GaussianMixture(C, covariance_type=covariance_type, means_init=means, reg_covar=1e-6,
                         max_iter=500, tol=1e-8, random_state=0).fit(X)
    tm = truncmix.TruncatedGaussianMixture(
        C, covariance_type=covariance_type, means_init=means, reg_covar=1e-6,
        covariance_floor=0, max_iter=500, tol=1e-8,
    ).fit(X)
    assert np.isfinite(tm.score(X))
    assert_allclose(tm.score(X), sk.score(X), rtol=1e-3)
    order = np.argsort(tm.means_[:, 0])
    assert_allclose(tm.means_[order], sk.means_[np.argsort(sk.means_[:, 0])], rtol=1e-3,
                    atol=1e-3)


@_apply(ignore_convergence)
@pytest.mark.parametrize("covariance_type", GMM_TYPES)
def test_gmm_fit_predict_consistent(covariance_type):
    X, C, w0, m0, p0 = _gmm_case("blobs-3d", covariance_type)
    kw = dict(covariance_type=covariance_type, means_init=m0, weights_init=w0,
              precisions_init=p0, reg_covar=1e-6, covariance_floor=0, max_iter=5, tol=0)
    labels = truncmix.TruncatedGaussianMixture(C, **kw).fit_predict(X)
    tm = truncmix.TruncatedGaussianMixture(C, **kw).fit(X)
    assert_array_equal(labels, tm.predict(X))
    assert_array_equal(labels, np.argmax(tm.predict_proba(X), axis=1))
    sk = GaussianMixture(C, covariance_type=covariance_type, weights_init=w0, means_init=m0,
                         precisions_init=p0, reg_covar=1e-6, max_iter=5, tol=0,
                         init_params="random_from_data", random_state=0)
    assert_array_equal(labels, sk.fit_predict(X))
