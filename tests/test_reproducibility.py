"""The same ``random_state`` gives bit-identical fits: across runs, and across 1 and 2 threads.

Thread counts are switched for both pools: numba's (``numba.set_num_threads``, the
E-step kernels) and BLAS's (``threadpoolctl``). The one documented exception
(docs/robustness.md): exact EM (``n_active=None``) sums its statistics with BLAS
matrix products over all rows, whose rounding depends on BLAS's thread count once
the problem is big enough for BLAS to split it; those fits agree to ~1e-12.
"""

import os
import warnings

import numba
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from truncmix import KMeans, TruncatedGaussianMixture

RNG = np.random.default_rng(4)
# D = 40: big enough that BLAS splits its products between threads
X = np.concatenate([RNG.normal(c, 1.0, size=(400, 40)) for c in range(6)])
THREADS = min(2, numba.config.NUMBA_NUM_THREADS)
THREADS_MAX = os.cpu_count() or 1  # the cores OpenBLAS starts with

MODELS = {"kmeans": lambda: KMeans(6, random_state=0, n_init=2)}
for _cov in ("isotropic", "spherical", "diag", "tied", "full"):
    MODELS[f"{_cov} C'=2"] = lambda cov=_cov: TruncatedGaussianMixture(
        6, covariance_type=cov, n_active=2, random_state=0, max_iter=6)
MODELS["kmeans neighbourhood, afk-mc2 on a coreset"] = lambda: KMeans(
    12, init="afk-mc2", search="neighbourhood", n_neighbors=3, coreset_size=500, random_state=0,
    max_iter=8)
MODELS["diag C'=2 neighbourhood"] = lambda: TruncatedGaussianMixture(
    12, n_active=2, search="neighbourhood", n_neighbors=3, random_state=0, max_iter=6)
for _cov in ("spherical", "full"):
    MODELS[f"{_cov} exact"] = lambda cov=_cov: TruncatedGaussianMixture(
        6, covariance_type=cov, random_state=0, max_iter=6, n_init=2)


def _fitted(make, threads):
    before = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        with threadpool_limits(threads), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert numba.get_num_threads() == threads
            est = make().fit(X)
    finally:
        numba.set_num_threads(before)
    params = {k: np.asarray(v) for k, v in vars(est).items()
              if k.endswith("_") and not k.startswith("_") and k != "history_"}
    return est, params


@pytest.mark.parametrize("name", sorted(MODELS))
def test_same_seed_same_bits_across_runs_and_threads(name):
    est1, one = _fitted(MODELS[name], 1)
    _, again = _fitted(MODELS[name], 1)
    est2, two = _fitted(MODELS[name], THREADS)
    assert one.keys() == again.keys() == two.keys() and "lower_bound_" in one
    for key in one:
        np.testing.assert_array_equal(one[key], again[key], err_msg=key)
    exact = name.endswith("exact")
    for key in one:
        if exact:
            np.testing.assert_allclose(one[key], two[key], rtol=1e-9, atol=1e-12, err_msg=key)
        else:
            np.testing.assert_array_equal(one[key], two[key], err_msg=key)
    # the labels of the exact fits agree too
    np.testing.assert_array_equal(est1.predict(X), est2.predict(X))


def test_a_randomstate_instance_is_consumed_but_an_int_is_not():
    a = TruncatedGaussianMixture(3, n_active=1, random_state=7).fit(X)
    b = TruncatedGaussianMixture(3, n_active=1, random_state=7).fit(X)
    np.testing.assert_array_equal(a.means_, b.means_)
    np.testing.assert_array_equal(a.sample(5)[0], b.sample(5)[0])
    rs = np.random.RandomState(7)
    c = TruncatedGaussianMixture(3, n_active=1, random_state=rs).fit(X)
    d = TruncatedGaussianMixture(3, n_active=1, random_state=rs).fit(X)
    np.testing.assert_array_equal(c.means_, a.means_)  # the first draw is the int seed's
    assert not np.array_equal(d.means_, c.means_)  # the shared RandomState has moved on


def test_single_threaded_blas_limits_blas_and_restores_its_count():
    from threadpoolctl import threadpool_info, threadpool_limits

    from truncmix._threads import single_threaded_blas

    def blas_threads():
        return sorted(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")

    with threadpool_limits(2, user_api="blas"):
        before = blas_threads()
        # two unless a library was built for one core
        assert before and max(before) == min(2, THREADS_MAX)
        with single_threaded_blas():
            assert all(n == 1 for n in blas_threads())
            with single_threaded_blas():  # nested: still one, and the outer's count kept
                assert all(n == 1 for n in blas_threads())
            assert all(n == 1 for n in blas_threads())
        assert blas_threads() == before
        # restored after an exception too
        try:
            with single_threaded_blas():
                raise KeyError
        except KeyError:
            pass
        assert blas_threads() == before
