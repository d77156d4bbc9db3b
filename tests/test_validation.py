"""Bad input gets a clear ValueError at fit, not a failure deep inside."""

import numpy as np
import pytest

from truncmix import KMeans, TruncatedGaussianMixture


@pytest.fixture
def X():
    return np.random.default_rng(0).standard_normal((50, 3))


def test_values_whose_squares_overflow_are_refused(X):
    with pytest.raises(ValueError, match="overflow"):
        KMeans(2).fit(X * 1e200)
    with pytest.raises(ValueError, match="float64"):
        KMeans(2).fit((X * 1e19).astype(np.float32))


def test_more_clusters_than_samples(X):
    with pytest.raises(ValueError, match="n_samples=50 should be >= n_clusters=60"):
        KMeans(60).fit(X)


@pytest.mark.parametrize("bad, message", [
    (-1.0, "negative"), (np.inf, "non-finite"), (np.nan, "non-finite"),
])
def test_bad_sample_weight(X, bad, message):
    w = np.ones(len(X))
    w[7] = bad
    with pytest.raises(ValueError, match=message):
        TruncatedGaussianMixture(2).fit(X, sample_weight=w)


def test_zero_total_weight(X):
    with pytest.raises(ValueError, match="sums to zero"):
        KMeans(2).fit(X, sample_weight=np.zeros(len(X)))


def test_bad_parameter_named(X):
    with pytest.raises(ValueError, match="'covariance_type' parameter"):
        TruncatedGaussianMixture(2, covariance_type="banana").fit(X)


def test_nan_refused(X):
    X = X.copy()
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        KMeans(2).fit(X)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_kmeans_init_starts_from_a_kmeans_fit():
    from sklearn.datasets import make_blobs

    X, _ = make_blobs(600, n_features=2, centers=5, cluster_std=2.5, random_state=3)
    rs = np.random.RandomState(0)
    centres = KMeans(5, random_state=rs).fit(X).cluster_centers_
    a = TruncatedGaussianMixture(5, init="k-means", random_state=0, max_iter=3, tol=0).fit(X)
    b = TruncatedGaussianMixture(5, means_init=centres, max_iter=3, tol=0).fit(X)
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-12)
    c = TruncatedGaussianMixture(5, init="k-means++", random_state=0, max_iter=3, tol=0).fit(X)
    assert not np.allclose(c.means_, a.means_), "the k-means start should differ from k-means++ seeds"
