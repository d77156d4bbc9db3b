"""The fused exhaustive E-step equals log-joints computed apart and selected by the NumPy twin."""

import numpy as np
import pytest

from truncmix.estep import Exhaustive
from truncmix.kernels import _reference as ref
from truncmix.model.covariance import Diag, Full, Isotropic, Spherical, Tied
from truncmix.model.mixture import Mixture


def _mixture(kind, C, D, rng, integer=False):
    means = rng.integers(-2, 3, (C, D)).astype(float) if integer else rng.standard_normal((C, D)) * 2
    logw = np.log(rng.dirichlet(np.ones(C)))
    if kind == "isotropic":
        cov = Isotropic(1.0 if integer else 0.7, C, D)
        logw = np.full(C, -np.log(C)) if integer else logw
    elif kind == "spherical":
        cov = Spherical(rng.uniform(0.5, 2, C), D)
    elif kind == "diag":
        cov = Diag(rng.uniform(0.5, 2, (C, D)))
    elif kind == "tied":
        A = rng.standard_normal((D, D))
        cov = Tied(A @ A.T + D * np.eye(D), C, D)
    else:
        A = rng.standard_normal((C, D, D))
        cov = Full(A @ np.swapaxes(A, 1, 2) + D * np.eye(D), C, D)
    return Mixture(means, logw, cov)


@pytest.mark.parametrize("kind", ["isotropic", "spherical", "diag", "tied", "full"])
@pytest.mark.parametrize("C", [7, 300])
@pytest.mark.parametrize("k", [1, 3, None])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fused_equals_reference(kind, C, k, dtype):
    rng = np.random.default_rng(C + (k or 0))
    D = 5
    mixture = _mixture(kind, C, D, rng)
    X = (rng.standard_normal((400, D)) * 2).astype(dtype)
    res = Exhaustive(k).update(X, mixture, None)
    log_joint = mixture.log_joint(X)
    kk = C if k is None else k
    K, q, lse = ref.top_k_softmax(log_joint, kk)
    rtol = 1e-9 if dtype == np.float64 else 2e-4
    np.testing.assert_allclose(res.lse, lse, rtol=rtol, atol=rtol)
    if k is None:
        dense = np.zeros_like(log_joint)
        np.put_along_axis(dense, K, q, axis=1)
        np.testing.assert_allclose(res.q, dense, rtol=rtol, atol=1e-6 if dtype == np.float32 else 1e-12)
    elif dtype == np.float64:
        np.testing.assert_array_equal(res.K, K)
        np.testing.assert_allclose(res.q, q, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("C", [10, 300])
def test_hard_assignment_ties_go_to_the_smaller_index(C):
    # integer data and means: many exact ties in distance, on both argmax paths
    rng = np.random.default_rng(1)
    D = 3
    mixture = _mixture("isotropic", C, D, rng, integer=True)
    X = rng.integers(-2, 3, (500, D)).astype(float)
    res = Exhaustive(1).update(X, mixture, None)
    d2 = ((X[:, None, :] - mixture.means[None]) ** 2).sum(-1)
    expected = np.argmin(d2, axis=1)  # first minimum: the smaller index
    assert (d2 == d2.min(1, keepdims=True)).sum(1).max() > 1, "no ties: the test would be vacuous"
    np.testing.assert_array_equal(res.K[:, 0], expected)


@pytest.mark.parametrize("kind", ["isotropic", "spherical", "diag"])
@pytest.mark.parametrize("C", [7, 300])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dense_statistics_in_the_kernel_equal_posteriors_then_accumulation(kind, C, dtype):
    from truncmix.stats import from_posterior

    rng = np.random.default_rng(C)
    D, n = 5, 5000  # several row blocks
    mixture = _mixture(kind, C, D, rng)
    X = (rng.standard_normal((n, D)) * 2 + 3).astype(dtype)
    w = rng.uniform(0, 2, n)
    w[::11] = 0.0
    cov = mixture.covariance
    plain = Exhaustive(None).update(X, mixture, None, weights=w)
    ref_stats = from_posterior(X, w, None, plain.q, plain.lse, mixture.means, cov.moment,
                               cov.shared, n_evals=0, n_changed=0, offset=0, outlier_capacity=0)
    fused = Exhaustive(None, dense_stats=True).update(X, mixture, None, weights=w)
    assert fused.q is None and fused.moments[0] == cov.moment
    _, resp, first, second = fused.moments
    # float64: the same arithmetic to rounding. float32: both take the
    # log-joints from float32 products, whose rounding depends on the BLAS
    # kernel and the tile shape (tiles of other widths round otherwise on
    # some kernels: 3.5e-7 relatively on OpenBLAS's Haswell sgemm)
    tight = dtype == np.float64
    np.testing.assert_allclose(fused.lse, plain.lse, rtol=1e-12 if tight else 1e-5)
    if tight:
        clear = np.ones(n, bool)  # every label, exact ties included
    else:
        top2 = np.sort(plain.q, axis=1)[:, -2:]
        clear = top2[:, 1] - top2[:, 0] > 1e-4  # not a float32 near tie
    np.testing.assert_array_equal(fused.labels[clear], np.argmax(plain.q, axis=1)[clear])
    np.testing.assert_allclose(resp, ref_stats.resp, rtol=1e-10 if tight else 1e-5)
    rtol = 1e-8 if tight else 1e-5
    np.testing.assert_allclose(first, ref_stats.first, rtol=rtol, atol=rtol * n)
    np.testing.assert_allclose(second, ref_stats.second, rtol=rtol, atol=rtol * n)
