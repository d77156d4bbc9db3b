"""Fits on Dask arrays (local cluster of worker processes, loopback only) equal in-memory fits."""

import logging
import os
import signal
import subprocess
import sys

import dask
import dask.array as da
import numpy as np
import pytest
from distributed import Client, LocalCluster

from truncmix import KMeans, TruncatedGaussianMixture

pytestmark = [
    pytest.mark.filterwarnings("ignore::truncmix.exceptions.ConvergenceWarning"),
    # distributed's own chatter when a worker is killed or a cluster closes
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

N, D, C = 4000, 4, 5

CASES = [
    ("kmeans", KMeans, lambda m: dict(n_clusters=C, init=m, max_iter=20)),
    ("gmm-diag", TruncatedGaussianMixture,
     lambda m: dict(n_components=C, covariance_type="diag", means_init=m, max_iter=8, tol=0)),
    ("gmm-diag-c2", TruncatedGaussianMixture,
     lambda m: dict(n_components=C, n_active=2, covariance_type="diag", means_init=m,
                    max_iter=8, tol=0)),
    # the neighbour table travels with the E-step to the workers every pass
    ("gmm-diag-c2-neighbourhood", TruncatedGaussianMixture,
     lambda m: dict(n_components=C, n_active=2, covariance_type="diag", means_init=m,
                    max_iter=8, tol=0, search="neighbourhood", n_neighbors=3, random_state=0)),
]


def _data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N, D)) + 3.0 * rng.integers(0, C, N)[:, None] + 50.0
    return X, X[rng.choice(N, C, replace=False)]


def _cluster():
    return LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                        dashboard_address=None, silence_logs=logging.ERROR)


@pytest.fixture(scope="module")
def client():
    with _cluster() as cluster, Client(cluster) as c:
        yield c


def _compare(ref, est, rtol):
    for name in ("cluster_centers_", "inertia_", "means_", "weights_", "covariances_",
                 "lower_bound_", "free_energy_history_"):
        if hasattr(ref, name):
            np.testing.assert_allclose(getattr(est, name), getattr(ref, name), rtol=rtol,
                                       err_msg=name)
    assert est.n_iter_ == ref.n_iter_


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_local_cluster_fit_equals_in_memory(case, client):
    _, cls, kwargs = case
    X, means = _data()
    Xd = da.from_array(X, chunks=(700, D)).persist()
    ref = cls(**kwargs(means)).fit(X)
    est = cls(**kwargs(means)).fit(Xd)
    _compare(ref, est, rtol=1e-8)
    labels = est.predict(Xd)
    assert isinstance(labels, da.Array)
    np.testing.assert_array_equal(labels.compute(), ref.predict(X))
    if hasattr(est, "labels_"):
        assert isinstance(est.labels_, da.Array)
        np.testing.assert_array_equal(est.labels_.compute(), ref.labels_)
    proba, ll = est.predict_proba(Xd), est.score_samples(Xd)
    assert isinstance(proba, da.Array) and isinstance(ll, da.Array)
    np.testing.assert_allclose(proba.compute(), ref.predict_proba(X), rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(ll.compute(), ref.score_samples(X), rtol=1e-8)
    assert est.score(Xd) == pytest.approx(ref.score(X), rel=1e-8)


def test_seeding_weights_and_the_default_scheduler():
    """k-means++ seeding (all rows: N is below the sample size), dask sample weights,
    no client: Dask's threaded scheduler."""
    X, _ = _data()
    w = np.random.default_rng(2).integers(0, 3, N).astype(np.float64)
    with dask.config.set(scheduler="threads"):
        est = KMeans(C, random_state=0, max_iter=10).fit(
            da.from_array(X, chunks=(1000, 2)),  # feature blocks are merged
            sample_weight=da.from_array(w, chunks=300))
    ref = KMeans(C, random_state=0, max_iter=10).fit(X, sample_weight=w)
    _compare(ref, est, rtol=1e-8)


def test_clear_errors():
    X, _ = _data()
    X[1500, 1] = np.inf
    with dask.config.set(scheduler="sync"):
        with pytest.raises(ValueError, match="NaN or infinity .*row 1500"):
            KMeans(C).fit(da.from_array(X, chunks=500))
        w = np.ones(N)
        w[77] = -1
        with pytest.raises(ValueError, match="negative .*index 77"):
            KMeans(C).fit(da.from_array(np.abs(np.nan_to_num(X, posinf=0))), sample_weight=da.from_array(w))
        with pytest.raises(ValueError, match="float32 or float64"):
            KMeans(C).fit(da.ones((100, 3), dtype=np.int64))


def test_dask_is_imported_only_when_used():
    code = ("import sys, numpy as np; from truncmix import KMeans; "
            "m = KMeans(2, max_iter=2).fit(np.random.rand(50, 3)); m.predict(np.random.rand(5, 3)); "
            "print(sorted(k for k in sys.modules if k.split('.')[0] in ('dask', 'distributed')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_killed_worker_mid_fit_gives_the_right_answer():
    """A worker process is SIGKILLed after the second iteration, while it holds
    blocks of the persisted per-point state: Dask recomputes them from their
    lineage and the fit ends with the in-memory answer (or raises; never a
    silently wrong model)."""
    X, means = _data()
    kwargs = dict(n_components=C, n_active=2, covariance_type="diag", means_init=means,
                  max_iter=6, tol=0)
    ref = TruncatedGaussianMixture(**kwargs).fit(X)
    with _cluster() as cluster, Client(cluster) as c:
        Xd = da.from_array(X, chunks=(500, D)).persist()
        est = TruncatedGaussianMixture(**kwargs)
        killed = []

        def kill_one_worker(record):
            if record.iteration == 2:
                pids = c.run(os.getpid)
                assert len(pids) == 2
                victim = sorted(pids.values())[0]
                os.kill(victim, signal.SIGKILL)
                killed.append(victim)
            return False

        est._progress = kill_one_worker
        try:
            est.fit(Xd)
        except Exception as exc:  # a clear error is acceptable; a wrong model is not
            assert "KilledWorker" in type(exc).__name__ or "worker" in str(exc).lower(), exc
            return
        assert killed and killed[0] not in c.run(os.getpid).values()  # it did die
    _compare(ref, est, rtol=1e-8)
