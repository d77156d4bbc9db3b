"""Out-of-core fits (.npy paths, memory maps, Parquet, chunk sources) equal in-memory fits."""

import glob
import os
import tempfile

import numpy as np
import pytest

from truncmix import KMeans, TruncatedGaussianMixture
from truncmix.backends import base, ondisk
from truncmix.backends.ondisk import ArraySource, ParquetSource

pytestmark = [
    pytest.mark.usefixtures("one_blas_thread"),
    # short fits (tol=0, few iterations); float32 truncated fits may dip by rounding,
    # in memory as out of core: the comparison is what is tested
    pytest.mark.filterwarnings("ignore::truncmix.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore::truncmix.exceptions.FreeEnergyDecreaseWarning"),
]

N, D, C = 3000, 5, 6

#: (id, estimator class, kwargs). E-step variants are added here (e.g. the
#: neighbourhood search) and every test below runs them too.
CASES = [
    # out of core k-means runs Lloyd's products; in memory the default would be
    # the bounded search (same labels, free energies from exact distances)
    ("kmeans", KMeans, dict(n_clusters=C, max_iter=30, algorithm="lloyd")),
    ("gmm-diag-c2", TruncatedGaussianMixture,
     dict(n_components=C, n_active=2, covariance_type="diag", max_iter=15, tol=0)),
    ("gmm-full-exact", TruncatedGaussianMixture,
     dict(n_components=C, covariance_type="full", max_iter=8, tol=0)),
    # the neighbourhood search; swap moves need the data in memory, so off here
    ("kmeans-neighbourhood", KMeans,
     dict(n_clusters=C, max_iter=30, search="neighbourhood", n_neighbors=3, swaps=0)),
    ("gmm-diag-c2-neighbourhood", TruncatedGaussianMixture,
     dict(n_components=C, n_active=2, covariance_type="diag", max_iter=15, tol=0,
          search="neighbourhood", n_neighbors=3, n_random=1)),
]


def _data(dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((C, D)) * 4
    X = centres[rng.integers(0, C, N)] + rng.standard_normal((N, D))
    return (X + 100.0).astype(dtype)  # far from the origin: centring matters


def _fitted(est):
    """Every fitted quantity the comparison checks."""
    out = {"lower_bound_": est.lower_bound_, "n_iter_": est.n_iter_,
           "free_energy_history_": est.free_energy_history_}
    for name in ("cluster_centers_", "inertia_", "sigma2_", "means_", "weights_", "covariances_"):
        if hasattr(est, name):
            out[name] = getattr(est, name)
    return out


def assert_same_fit(a, b, rtol):
    fa, fb = _fitted(a), _fitted(b)
    assert fa.keys() == fb.keys()
    for name in fa:
        np.testing.assert_allclose(fb[name], fa[name], rtol=rtol, atol=0, err_msg=name)


def _labels(est, X):
    return np.asarray(est.labels_) if hasattr(est, "labels_") else est.predict(X)


@pytest.fixture
def on_disk(monkeypatch):
    """Every per-point array on disk, whatever its size."""
    monkeypatch.setattr(ondisk, "STATE_BUDGET", 0)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_npy_file_fit_equals_in_memory(case, dtype, tmp_path, on_disk):
    _, cls, kwargs = case
    X = _data(dtype)
    path = tmp_path / "X.npy"
    np.save(path, X)
    # k-means++ seeding on all rows in both paths (N is below the sample size)
    ref = cls(random_state=3, chunk_size=700, **kwargs).fit(X)
    est = cls(random_state=3, chunk_size=700, **kwargs).fit(str(path))
    assert_same_fit(ref, est, rtol=1e-10)
    if hasattr(est, "labels_"):
        # the labels went to a memory-mapped temporary file
        assert isinstance(est.labels_, np.memmap)
        np.testing.assert_array_equal(est.labels_, ref.labels_)
    np.testing.assert_array_equal(est.predict(path), ref.predict(X))
    np.testing.assert_allclose(est.score_samples(path), ref.score_samples(X), rtol=1e-10)
    np.testing.assert_allclose(est.predict_proba(path), ref.predict_proba(X), rtol=1e-9, atol=1e-12)
    assert est.n_features_in_ == D
    assert est.bic(path) == pytest.approx(ref.bic(X), rel=1e-10)


def test_given_means_and_sample_weights(tmp_path, on_disk):
    X = _data()
    w = np.random.default_rng(1).integers(0, 4, N).astype(np.float64)
    path = tmp_path / "X.npy"
    np.save(path, X)
    means = X[:C] + 0.5
    kw = dict(n_components=C, covariance_type="spherical", means_init=means, max_iter=10, tol=0)
    ref = TruncatedGaussianMixture(**kw).fit(X, sample_weight=w)
    est = TruncatedGaussianMixture(**kw).fit(path, sample_weight=w)
    assert_same_fit(ref, est, rtol=1e-10)


def test_memmap_input_goes_out_of_core(tmp_path, monkeypatch, on_disk):
    X = _data()
    np.save(tmp_path / "X.npy", X)
    mm = np.load(tmp_path / "X.npy", mmap_mode="r")
    ref = KMeans(C, random_state=0).fit(X)
    small = KMeans(C, random_state=0).fit(mm)  # below the threshold: an ordinary array
    assert not isinstance(small.labels_, np.memmap)
    monkeypatch.setattr(ondisk, "OUT_OF_CORE_MIN_BYTES", 0)
    est = KMeans(C, random_state=0).fit(mm)
    assert isinstance(est.labels_, np.memmap)
    assert_same_fit(ref, est, rtol=1e-10)
    assert_same_fit(ref, small, rtol=1e-10)


class IrregularBlocks:
    """A chunk source whose blocks have sizes unrelated to the requested rows."""

    def __init__(self, X):
        self.X, self.shape, self.dtype = X, X.shape, X.dtype

    def blocks(self, rows):
        sizes = [1, 17, 400, 3, 999]
        start, i = 0, 0
        while start < self.shape[0]:
            stop = min(start + sizes[i % len(sizes)], self.shape[0])
            yield self.X[start:stop]
            start, i = stop, i + 1


@pytest.mark.parametrize("case", CASES[:2], ids=[c[0] for c in CASES[:2]])
def test_chunk_source_and_parquet_equal_in_memory(case, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    _, cls, kwargs = case
    X = _data(np.float32)
    ref = cls(random_state=5, chunk_size=512, **kwargs).fit(X)
    est = cls(random_state=5, chunk_size=512, **kwargs).fit(IrregularBlocks(X))
    assert_same_fit(ref, est, rtol=1e-10)
    path = tmp_path / "X.parquet"
    table = pa.table({f"f{j}": X[:, j] for j in range(D)})
    pq.write_table(table, path, row_group_size=777)
    source = ParquetSource(path)
    assert source.shape == (N, D) and source.dtype == np.float32
    est = cls(random_state=5, chunk_size=512, **kwargs).fit(str(path))
    assert_same_fit(ref, est, rtol=1e-10)
    np.testing.assert_array_equal(est.predict(path), ref.predict(X))


def test_seeding_on_a_sample(tmp_path, monkeypatch):
    """Above the sample size, k-means++ runs on weighted draws: deterministic, valid."""
    monkeypatch.setattr(base, "SEED_SAMPLE_ROWS", 200)
    X = _data()
    path = tmp_path / "X.npy"
    np.save(path, X)
    w = np.ones(N)
    w[: N // 2] = 0.0  # rows of zero weight can never be drawn
    source = ondisk.as_chunk_source(str(path))
    backend = ondisk.OnDisk(source, w, np.zeros(D), chunk_size=300)
    rows, counts = backend.seed_rows(C, np.random.RandomState(0))
    assert counts.sum() == 200 and len(rows) == len(counts) <= 200
    first_half = {tuple(r) for r in X[: N // 2]}
    assert not any(tuple(r) in first_half for r in rows)
    a = KMeans(C, random_state=0, max_iter=5).fit(path)
    b = KMeans(C, random_state=0, max_iter=5).fit(path)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    g = TruncatedGaussianMixture(C, init="k-means", random_state=0, max_iter=5).fit(path)
    assert np.isfinite(g.lower_bound_)


def test_clear_errors(tmp_path):
    X = _data()
    X[1234, 2] = np.nan
    np.save(tmp_path / "nan.npy", X)
    with pytest.raises(ValueError, match="NaN or infinity .*row 1234"):
        KMeans(C).fit(tmp_path / "nan.npy")
    np.save(tmp_path / "int.npy", np.arange(30).reshape(10, 3))
    with pytest.raises(ValueError, match="float32 or float64"):
        KMeans(2).fit(tmp_path / "int.npy")
    np.save(tmp_path / "small.npy", np.zeros((3, 2)))
    with pytest.raises(ValueError, match="n_samples=3 should be >= n_clusters=4"):
        KMeans(4).fit(tmp_path / "small.npy")
    with pytest.raises(ValueError, match=r"\.npy or \.parquet"):
        KMeans(2).fit(str(tmp_path / "data.csv"))
    est = KMeans(2, max_iter=3).fit(np.random.default_rng(0).standard_normal((50, 4)))
    with pytest.raises(ValueError, match="X has 2 features"):
        est.predict(tmp_path / "small.npy")


def _rss_file():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssFile:"):
                return int(line.split()[1]) * 1024
    pytest.skip("no RssFile in /proc/self/status")  # pragma: no cover - Linux only


@pytest.mark.parametrize("how", ["npy path", "memmap view"])
def test_reading_a_file_keeps_its_pages_out_of_the_resident_set(tmp_path, how):
    rows, cols = 1_000_000, 16  # 64 MB of float32
    path = tmp_path / "big.npy"
    np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, cols))[:] = 1.0
    if how == "npy path":
        source = ondisk.as_chunk_source(str(path))
        assert isinstance(source, ondisk.NpyFile)  # plain reads, no mapping
    else:
        view = np.load(path, mmap_mode="r")[1:]  # a view: read through the mapping
        source = ondisk.ArraySource(view)
    before, peak, total = _rss_file(), 0, 0.0
    for block in source.blocks(2_000):  # 128 KB blocks: page leaks at the joins would add up
        total += float(block[:, 0].sum())
        peak = max(peak, _rss_file() - before)
    assert total == source.shape[0]
    assert peak < 12 * 2**20, f"resident file pages grew by {peak / 2**20:.0f} MB"


def test_spilled_state_is_an_unnamed_file():
    state = ondisk.spill_array((100_000, 3), np.int32, fill=-1, budget=0)
    assert isinstance(state, ondisk.SpillFile)
    state[10:12] = np.arange(6).reshape(2, 3)
    np.testing.assert_array_equal(state[9:13], [[-1] * 3, [0, 1, 2], [3, 4, 5], [-1] * 3])
    arr = ondisk.as_array(state)
    assert isinstance(arr, np.memmap) and arr[11, 2] == 5 and arr[-1, -1] == -1
    # the file has no name: nothing is left behind in the temporary directory
    assert not glob.glob(os.path.join(tempfile.gettempdir(), "truncmix-state-*"))
