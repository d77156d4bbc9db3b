"""Dirty input and hard data: clear errors, finite parameters, a free energy that never falls.

Complements ``test_validation.py`` (hyper-parameters, sample weights, overflow).
"""

import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import truncmix
from truncmix import KMeans, TruncatedGaussianMixture
from truncmix.em import MONOTONE_RTOL
from truncmix.exceptions import (
    DegenerateComponentWarning,
    DroppedRowsWarning,
    FreeEnergyDecreaseWarning,
)

pytestmark = pytest.mark.usefixtures("one_blas_thread")

RNG = np.random.default_rng(7)
BLOBS = np.concatenate([RNG.normal(c, 0.5, size=(30, 3)) for c in ([0, 0, 0], [4, 4, 0], [0, 5, 5])])


def _with_nonfinite():
    X = BLOBS.copy()
    X[3, 1] = np.nan
    X[10, 2] = np.inf
    X[11, 0] = -np.inf
    return X


# --------------------------------------------------------------- bad input
@pytest.mark.parametrize("cls", [KMeans, TruncatedGaussianMixture])
def test_nonfinite_rows_and_columns_named_with_the_remedy(cls):
    with pytest.raises(ValueError, match=r"NaN or infinity in rows 3, 10, 11 \(of 90\), columns 0, 1, 2") as info:
        cls(2).fit(_with_nonfinite())
    assert "missing='drop'" in str(info.value) and "impute" in str(info.value)


@pytest.mark.parametrize("cls", [KMeans, TruncatedGaussianMixture])
def test_missing_drop_fits_the_other_rows(cls, tmp_path):
    X = _with_nonfinite()
    keep = np.ones(len(X), bool)
    keep[[3, 10, 11]] = False
    with pytest.warns(DroppedRowsWarning, match=r"dropped 3 of 90 rows .*rows 3, 10, 11"):
        est = cls(3, random_state=0, missing="drop").fit(X)
    ref = cls(3, random_state=0).fit(X[keep])
    assert est.n_dropped_ == 3 and ref.n_dropped_ == 0
    np.testing.assert_array_equal(est.predict(X[keep]), ref.predict(X[keep]))
    assert est.lower_bound_ == ref.lower_bound_
    with pytest.warns(DroppedRowsWarning):
        labels = cls(3, random_state=0, missing="drop").fit_predict(X)
    assert labels.shape == (90,) and (labels[~keep] == -1).all()
    np.testing.assert_array_equal(labels[keep], ref.predict(X[keep]))
    if cls is KMeans:
        np.testing.assert_array_equal(est.labels_, labels)
    # predict labels such rows -1, as fit_predict does; scoring them is refused, naming them
    np.testing.assert_array_equal(est.predict(X), labels)
    with pytest.raises(ValueError, match=r"rows 3, 10, 11 \(of 90\).*remove or impute"):
        est.predict_proba(X)
    with pytest.raises(ValueError, match="NaN"):
        est.score_samples(X[[3]])
    with pytest.raises(ValueError, match=r"row 3 \(of 5\), column 1;"):
        ref.predict(X[:5])  # missing="raise"
    loaded = truncmix.load(truncmix.save(est, tmp_path / "m.tmx"))
    assert loaded.missing == "drop" and loaded.n_dropped_ == 3


def test_missing_drop_with_nothing_left():
    X = np.full((5, 2), np.nan)
    with pytest.raises(ValueError, match="every row"):
        KMeans(1, missing="drop").fit(X)
    X = BLOBS[:6].copy()
    X[:3, 0] = np.nan
    w = np.array([1, 1, 1, 0, 0, 0.0])
    with pytest.warns(DroppedRowsWarning), pytest.raises(ValueError, match="positive sample_weight"):
        KMeans(1, missing="drop").fit(X, sample_weight=w)
    with pytest.raises(ValueError, match="'missing' parameter"):
        KMeans(1, missing="ignore").fit(BLOBS)


@pytest.mark.parametrize("X, message", [
    (np.zeros((0, 3)), "0 sample"),
    (np.zeros((5, 0)), "0 feature"),
    (np.arange(5.0), "Reshape your data"),
    ([[1.0, 2.0], [3.0]], "ragged"),
    (np.array([["a", "b"], ["c", "d"]]), "could not convert string to float"),
    (np.ones((2, 2)) + 1j, "[Cc]omplex"),
])
@pytest.mark.parametrize("cls", [KMeans, TruncatedGaussianMixture])
def test_malformed_arrays(cls, X, message):
    with pytest.raises(ValueError, match=message):
        cls(1).fit(X)


@pytest.mark.parametrize("cls", [KMeans, TruncatedGaussianMixture])
def test_one_sample_and_one_feature(cls):
    one = cls(1).fit(BLOBS[:1])
    assert np.isfinite(one.score(BLOBS[:1])) and one.predict(BLOBS[:1]).tolist() == [0]
    with pytest.raises(ValueError, match="n_samples=1 should be >= .*=2"):
        cls(2).fit(BLOBS[:1])
    col = cls(3, random_state=0).fit(BLOBS[:, :1])
    assert col.n_features_in_ == 1 and np.isfinite(col.score_samples(BLOBS[:, :1])).all()


@pytest.mark.parametrize("cls", [KMeans, TruncatedGaussianMixture])
def test_wrong_number_of_features_at_predict(cls):
    est = cls(2, random_state=0).fit(BLOBS)
    for method in ("predict", "predict_proba", "score_samples", "score"):
        with pytest.raises(ValueError, match="X has 2 features, but .* is expecting 3 features"):
            getattr(est, method)(BLOBS[:, :2])


@pytest.mark.parametrize("init", ["k-means++", "random"])
def test_fewer_weighted_samples_than_components(init):
    w = np.r_[np.ones(3), np.zeros(87)]
    with pytest.raises(ValueError, match="only 3 of the 90 samples have a positive sample_weight, "
                                         "fewer than n_components=4"):
        TruncatedGaussianMixture(4, init=init).fit(BLOBS, sample_weight=w)
    est = TruncatedGaussianMixture(3, init=init, random_state=0).fit(BLOBS, sample_weight=w)
    assert np.isfinite(est.means_).all()


def test_sample_weight_of_the_wrong_length():
    with pytest.raises(ValueError, match=r"sample_weight.shape == \(89,\), expected \(90,\)"):
        KMeans(2).fit(BLOBS, sample_weight=np.ones(89))


@pytest.mark.parametrize("cls", [KMeans, TruncatedGaussianMixture])
def test_integer_float32_and_noncontiguous_inputs(cls):
    ints = np.round(BLOBS * 10).astype(np.int64)
    a = cls(3, random_state=0).fit(ints)
    b = cls(3, random_state=0).fit(ints.astype(np.float64))
    np.testing.assert_array_equal(a.predict(ints), b.predict(ints))
    assert a.lower_bound_ == b.lower_bound_
    wide = np.asfortranarray(np.repeat(BLOBS, 2, axis=1))[:, ::2]
    assert not wide.flags.c_contiguous and not wide.flags.f_contiguous
    c = cls(3, random_state=0).fit(wide)
    d = cls(3, random_state=0).fit(np.ascontiguousarray(wide))
    assert c.lower_bound_ == d.lower_bound_
    f32 = cls(3, random_state=0).fit(BLOBS.astype(np.float32))
    d64 = cls(3, random_state=0).fit(BLOBS)
    np.testing.assert_array_equal(f32.predict(BLOBS.astype(np.float32)), d64.predict(BLOBS))
    assert f32.lower_bound_ == pytest.approx(d64.lower_bound_, rel=1e-5)


@pytest.mark.parametrize("scale, dtype", [(1e-160, np.float64), (1e-300, np.float64), (1e-30, np.float32)])
def test_data_whose_variances_underflow_are_refused(scale, dtype):
    with pytest.raises(ValueError, match=r"X spans at most .* variances of such .* underflow.*Rescale"):
        KMeans(2).fit((BLOBS * scale).astype(dtype))
    # a single such column is fine (its variance is floored), as is data with no spread at all
    check_fit(TruncatedGaussianMixture(2, random_state=0), np.c_[BLOBS, BLOBS[:, 0] * 1e-200])
    check_fit(TruncatedGaussianMixture(2, random_state=0), np.full((10, 2), 1e-200))


def test_sample_weights_far_from_one():
    with pytest.raises(ValueError, match=r"sample_weight sums to 9e\+301 .*divide them by their largest"):
        TruncatedGaussianMixture(2).fit(BLOBS, sample_weight=np.full(90, 1e300))
    tiny = TruncatedGaussianMixture(2, random_state=0).fit(BLOBS, sample_weight=np.full(90, 1e-300))
    unit = TruncatedGaussianMixture(2, random_state=0).fit(BLOBS)
    np.testing.assert_allclose(tiny.means_, unit.means_, rtol=1e-10)
    assert tiny.lower_bound_ == pytest.approx(unit.lower_bound_, rel=1e-10)


@pytest.mark.parametrize("container", [sp.csr_matrix, sp.csc_array, sp.coo_matrix])
def test_sparse_input_is_refused_with_the_remedy(container):
    X = container(np.where(BLOBS > 1, BLOBS, 0.0))
    with pytest.raises(TypeError, match=r"sparse matrix of shape \(90, 3\).*X.toarray\(\)"):
        TruncatedGaussianMixture(2).fit(X)
    est = KMeans(2, random_state=0).fit(X.toarray())
    with pytest.raises(TypeError, match="sparse"):
        est.predict(X)


# ---------------------------------------------------------------- hard data
def _hard_sets():
    rng = np.random.default_rng(3)
    base = rng.standard_normal((24, 3))
    pairs = np.repeat(rng.standard_normal((6, 3)) * 10, 2, axis=0) + 1e-3 * rng.standard_normal((12, 3))
    return {
        "duplicated": np.repeat(base, 4, axis=0),
        "constant column": np.c_[base, np.full(24, 3.0)],
        "scaled 1e-12 and 1e12": base * np.array([1e-12, 1.0, 1e12]),
        "all identical": np.full((20, 3), 7.0),
        "two-point clusters": pairs,
        "D > N": rng.standard_normal((8, 30)),
    }


HARD = _hard_sets()
MODELS = {
    "kmeans": lambda C: KMeans(C, random_state=0, max_iter=50),
    "isotropic": lambda C: TruncatedGaussianMixture(C, covariance_type="isotropic", random_state=0, max_iter=50),
    "spherical C'=2": lambda C: TruncatedGaussianMixture(C, covariance_type="spherical", n_active=2,
                                                         random_state=0, max_iter=50),
    "diag equal": lambda C: TruncatedGaussianMixture(C, weights="equal", random_state=0, max_iter=50),
    "tied": lambda C: TruncatedGaussianMixture(C, covariance_type="tied", random_state=0, max_iter=50),
    "full C'=1": lambda C: TruncatedGaussianMixture(C, covariance_type="full", n_active=1,
                                                    random_state=0, max_iter=50),
    "full": lambda C: TruncatedGaussianMixture(C, covariance_type="full", random_state=0, max_iter=50),
    "kmeans neighbourhood": lambda C: KMeans(C, search="neighbourhood", n_neighbors=2, random_state=0,
                                             max_iter=50),
    "diag C'=2 neighbourhood": lambda C: TruncatedGaussianMixture(
        C, n_active=2, search="neighbourhood", n_neighbors=2, random_state=0, max_iter=50),
}
PARAMS = ("cluster_centers_", "sigma2_", "inertia_", "weights_", "means_", "covariances_",
          "precisions_", "precisions_cholesky_", "lower_bound_", "free_energy_history_")


def _distinct(X):
    return np.unique(X, axis=0).shape[0]


def check_fit(est, X):
    """Fit; assert finite parameters, a monotone free energy and named empty components."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(X)
    for name in PARAMS:
        if hasattr(est, name):
            assert np.isfinite(getattr(est, name)).all(), name
    assert np.isfinite(est.score_samples(X)).all()
    fe = est.free_energy_history_
    drop = np.diff(fe)
    assert (drop >= -MONOTONE_RTOL * np.maximum(np.abs(fe[:-1]), 1.0)).all(), fe
    degenerate = [str(w.message) for w in caught if issubclass(w.category, DegenerateComponentWarning)]
    for r in est.history_:
        if r.n_relocated or r.n_removed:
            assert any(f"iteration {r.iteration}: component(s) [" in m for m in degenerate), degenerate
    return degenerate


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("data", sorted(HARD))
def test_hard_data_gives_finite_monotone_fits(data, model):
    X = HARD[data]
    N, distinct = X.shape[0], _distinct(X)
    for C in sorted({1, 2, 5, N}):
        degenerate = check_fit(MODELS[model](C), X)
        if C > distinct:
            assert any(f"only {distinct} distinct point" in m for m in degenerate), degenerate


def _degenerate_messages(fit):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit()
    return [str(w.message) for w in caught if issubclass(w.category, DegenerateComponentWarning)]


def test_emptied_components_are_named():
    X = np.full((20, 2), 3.0)
    with pytest.warns(DegenerateComponentWarning) as record:
        km = KMeans(4, random_state=0).fit(X)
    messages = [str(w.message) for w in record]
    assert any("only 1 distinct point(s)" in m and "n_clusters=4" in m for m in messages)
    assert any(re.search(r"component\(s\) \[1\] received no points and were re-seeded", m) for m in messages)
    assert any("component(s) [1, 2, 3] of the fitted model hold no data" in m for m in messages)
    assert (km.cluster_centers_ == 3.0).all() and km.inertia_ == 0.0 and np.isfinite(km.sigma2_)
    g = TruncatedGaussianMixture(4, n_active=1, random_state=0)
    messages = _degenerate_messages(lambda: g.fit(X))
    assert any("component(s) [1, 2, 3] received no points and were removed" in m for m in messages)
    np.testing.assert_array_equal(g.weights_, [1, 0, 0, 0])


def test_more_components_than_distinct_points_fits_with_a_warning():
    X = np.repeat(BLOBS[:3], 10, axis=0)
    for est in (KMeans(5, random_state=0), TruncatedGaussianMixture(5, random_state=0)):
        messages = _degenerate_messages(lambda: est.fit(X))
        assert "only 3 distinct point(s) with positive weight" in messages[0]
        assert len(np.unique(est.predict(X))) == 3
    # zero-weight rows do not count as distinct points
    w = np.r_[np.ones(30), np.zeros(20)]
    X2 = np.r_[X, RNG.standard_normal((20, 3))]
    messages = _degenerate_messages(lambda: KMeans(4, random_state=0).fit(X2, sample_weight=w))
    assert "only 3 distinct" in messages[0]
    assert _degenerate_messages(lambda: KMeans(3, random_state=0).fit(X)) == []  # exactly as many


def test_nonfinite_columns_named_as_in_the_dataframe():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(BLOBS, columns=["height", "width", "depth"])
    df.iloc[[4, 9], 1] = np.nan
    with pytest.raises(ValueError, match=r"rows 4, 9 \(of 90\), column 'width'"):
        TruncatedGaussianMixture(2).fit(df)
    with pytest.warns(DroppedRowsWarning, match="dropped 2 of 90 rows .*column 'width'"):
        est = TruncatedGaussianMixture(2, random_state=0, missing="drop").fit(df)
    assert est.predict(df)[[4, 9]].tolist() == [-1, -1]


def test_swap_moves_skip_removed_components():
    # four distinct points, some weights zero: four components are removed in the
    # first iteration; swap moves then must not use them as fallbacks (their
    # log-weight is -inf, and the loss of a swap became NaN)
    X = np.repeat(np.array([[-1.209, -0.489, 0.255, 1.365], [0.011, -1.797, 1.309, -0.356],
                            [1.831, -0.937, -0.325, 0.327], [-1.015, -0.936, 0.856, 1.005]]), 4, axis=0)
    w = np.array([2., 0, 2, 1, 2, 0, 1, 0, 1, 0, 0, 2, 2, 1, 1, 0])
    est = TruncatedGaussianMixture(8, n_active=1, search="neighbourhood", n_neighbors=3, init="random",
                                   random_state=39, max_iter=30)
    messages = _degenerate_messages(lambda: est.fit(X, sample_weight=w))  # RuntimeWarnings are errors
    assert any("were removed" in m for m in messages)
    assert np.isfinite(est.means_).all() and (est.weights_ > 0).sum() == 4


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_small_problems_fit_or_refuse_clearly(data):
    """Any small data set and settings: finite, monotone fits, or a ValueError saying why."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    N, D = data.draw(st.integers(1, 30)), data.draw(st.integers(1, 5))
    kind = data.draw(st.sampled_from(["normal", "rounded", "scaled", "repeated"]))
    X = {"normal": lambda: rng.standard_normal((N, D)),
         "rounded": lambda: np.round(rng.standard_normal((N, D))),
         "scaled": lambda: rng.standard_normal((N, D)) * 10.0 ** rng.integers(-12, 12, size=D),
         "repeated": lambda: np.repeat(rng.standard_normal((max(1, N // 4), D)), 4, axis=0)}[kind]()
    C = data.draw(st.integers(1, X.shape[0]))
    common = dict(random_state=data.draw(st.integers(0, 99)), max_iter=30,
                  search=data.draw(st.sampled_from(["exhaustive", "neighbourhood"])),
                  n_neighbors=data.draw(st.integers(1, 3)))
    if data.draw(st.booleans()):
        est = KMeans(C, **common)
    else:
        est = TruncatedGaussianMixture(
            C, covariance_type=data.draw(st.sampled_from(["isotropic", "spherical", "diag", "tied", "full"])),
            n_active=data.draw(st.none() | st.integers(1, C)),
            weights=data.draw(st.sampled_from(["learned", "equal"])),
            init=data.draw(st.sampled_from(["k-means++", "random", "k-means"])), **common)
    weights = None
    if data.draw(st.booleans()):
        weights = rng.integers(0, 3, size=X.shape[0]).astype(float)
        weights[0] = max(weights[0], 1.0)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            est.fit(X, sample_weight=weights)
    except ValueError as exc:
        assert "positive sample_weight" in str(exc) and weights is not None
        return
    assert not [w for w in caught if issubclass(w.category, (RuntimeWarning, FreeEnergyDecreaseWarning))]
    for name in PARAMS:
        if hasattr(est, name):
            assert np.isfinite(getattr(est, name)).all(), name
    fe = est.free_energy_history_
    assert (np.diff(fe) >= -MONOTONE_RTOL * np.maximum(np.abs(fe[:-1]), 1.0)).all(), fe
    assert np.isfinite(est.score_samples(X)).all()


@pytest.mark.parametrize("shape", [(1, 3), (7, 16), (1000, 16), (1001, 16), (999, 300), (5000, 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_column_extremes_equal_numpy(shape, dtype):
    from truncmix._validation import column_extremes

    X = np.random.default_rng(0).normal(size=shape).astype(dtype)
    for data in (X, X[::2], np.asfortranarray(X)):
        lo, hi = column_extremes(data)
        np.testing.assert_array_equal(lo, data.min(axis=0).astype(np.float64))
        np.testing.assert_array_equal(hi, data.max(axis=0).astype(np.float64))
