"""Model files (save / load / validation), data readers and writers, atomic writes."""

import gzip
import io
import json
import os
import zipfile

import numpy as np
import pytest

import truncmix
from truncmix import KMeans, TruncatedGaussianMixture
from truncmix.exceptions import ModelFileError
from truncmix.io import DataFileError, atomic_write, read_data, read_header, write_array

RNG = np.random.default_rng(0)
X = np.concatenate([RNG.normal(c, 1.0, size=(150, 3)) for c in ([0, 0, 0], [5, 5, 0], [0, 6, 4])])

MODELS = [KMeans(3, random_state=0)] + [
    TruncatedGaussianMixture(3, covariance_type=c, n_active=2, random_state=1)
    for c in ("isotropic", "spherical", "diag", "tied", "full")
] + [TruncatedGaussianMixture(3, covariance_type="diag", weights="equal", random_state=2)]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: getattr(m, "covariance_type", "kmeans"))
def test_round_trip_predicts_identically(model, tmp_path):
    model.fit(X)
    path = truncmix.save(model, tmp_path / "m.tmx")
    loaded = truncmix.load(path)
    assert type(loaded) is type(model)
    assert loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(loaded.score_samples(X), model.score_samples(X))
    np.testing.assert_array_equal(loaded.sample(20)[0], model.sample(20)[0])
    np.testing.assert_array_equal(loaded.free_energy_history_, model.free_energy_history_)
    assert len(loaded.history_) == len(model.history_)
    np.testing.assert_equal([r.as_dict() for r in loaded.history_], [r.as_dict() for r in model.history_])
    assert loaded.n_iter_ == model.n_iter_ and loaded.converged_ == model.converged_
    assert loaded.bic(X) == model.bic(X)


def test_array_params_feature_names_and_dropped_random_state(tmp_path):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    means = X[[0, 150, 300]]
    model = TruncatedGaussianMixture(3, means_init=means, random_state=np.random.RandomState(0)).fit(df)
    truncmix.save(model, tmp_path / "m.tmx")
    loaded = truncmix.load(tmp_path / "m.tmx")
    np.testing.assert_array_equal(loaded.means_init, means)
    assert list(loaded.feature_names_in_) == ["a", "b", "c"]
    np.testing.assert_array_equal(loaded.predict(df), model.predict(df))
    header = read_header(tmp_path / "m.tmx")
    assert loaded.random_state is None and "random_state" in header["dropped_params"]
    assert header["format_version"] == 1 and header["library_version"] == truncmix.__version__


def test_save_refuses_unfitted_and_foreign(tmp_path):
    from sklearn.exceptions import NotFittedError
    from sklearn.mixture import GaussianMixture

    with pytest.raises(NotFittedError):
        truncmix.save(KMeans(2), tmp_path / "m.tmx")
    with pytest.raises(TypeError, match="GaussianMixture"):
        truncmix.save(GaussianMixture(2).fit(X), tmp_path / "m.tmx")
    assert not os.listdir(tmp_path)


# ------------------------------------------------------------ tampered files
@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    full = TruncatedGaussianMixture(3, covariance_type="full", random_state=0).fit(X)
    truncmix.save(full, d / "full.tmx")
    with zipfile.ZipFile(d / "full.tmx") as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _write(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _npy(a, **kw):
    buf = io.BytesIO()
    np.save(buf, a, **kw)
    return buf.getvalue()


def _arr(members, name):
    return np.load(io.BytesIO(members[f"attrs/{name}.npy"]))


def _with(members, **changes):
    out = dict(members)
    for name, value in changes.items():
        out[f"attrs/{name}.npy"] = _npy(value)
    return out


def _header(members, **changes):
    h = json.loads(members["header.json"])
    h.update(changes)
    return {**members, "header.json": json.dumps(h)}


def _bad_covariance(members):
    cov = _arr(members, "covariances_").copy()
    cov[1] = np.diag([1.0, -1.0, 1.0])
    return _with(members, covariances_=cov)


def _asymmetric(members):
    cov = _arr(members, "covariances_").copy()
    cov[0, 0, 1] += 0.5
    return _with(members, covariances_=cov)


def _nan_means(members):
    m = _arr(members, "means_").copy()
    m[2, 1] = np.nan
    return _with(members, means_=m)


def _pickled(members):
    out = dict(members)
    out["attrs/means_.npy"] = _npy(np.array([{"x": 1}], dtype=object), allow_pickle=True)
    return out


def _other_precisions(members):
    return _with(members, precisions_=2 * _arr(members, "precisions_"))


TAMPERS = {
    "format version": (lambda m: _header(m, format_version=99), "format version 99"),
    "unknown class": (lambda m: _header(m, **{"class": "Evil"}), "unknown estimator class"),
    "not truncmix": (lambda m: _header(m, format="other"), "not a truncmix model"),
    "unknown param": (lambda m: _header(m, params={**json.loads(m["header.json"])["params"], "x": 1}),
                      "unknown to TruncatedGaussianMixture"),
    "bad param": (lambda m: _header(m, params={**json.loads(m["header.json"])["params"],
                                               "covariance_type": "weird"}), "invalid hyper-parameters"),
    "extra member": (lambda m: {**m, "attrs/evil.npy": _npy(np.zeros(1))}, "unexpected member"),
    "missing member": (lambda m: {k: v for k, v in m.items() if "weights_" not in k}, "missing member"),
    "no header": (lambda m: {k: v for k, v in m.items() if k != "header.json"}, "no header.json"),
    "weights sum": (lambda m: _with(m, weights_=_arr(m, "weights_") * 2), "sum to 1"),
    "negative weight": (lambda m: _with(m, weights_=np.array([1.2, -0.1, -0.1])), "non-negative"),
    "means shape": (lambda m: _with(m, means_=np.zeros((4, 3))), "shape"),
    "nan": (_nan_means, "NaN"),
    "not positive definite": (_bad_covariance, "positive definite"),
    "asymmetric": (_asymmetric, "symmetric"),
    "precisions": (_other_precisions, "precisions_ does not match"),
    "pickle": (_pickled, "not a plain numeric array"),
    "int means": (lambda m: _with(m, means_=np.zeros((3, 3), dtype=np.int64)), "float"),
    "n_features": (lambda m: _with(m, n_features_in_=np.float64(3)), "n_features_in_"),
}


@pytest.mark.parametrize("case", sorted(TAMPERS))
def test_tampered_files_are_rejected(case, saved, tmp_path):
    # the untampered members load
    truncmix.load(_write(tmp_path / "ok.tmx", saved))
    tamper, message = TAMPERS[case]
    path = _write(tmp_path / "bad.tmx", tamper(saved))
    with pytest.raises(ModelFileError, match=message) as info:
        truncmix.load(path)
    assert str(path) in str(info.value)


def test_not_a_zip_or_missing(tmp_path):
    (tmp_path / "text.tmx").write_text("not a model")
    with pytest.raises(ModelFileError, match="not a zip"):
        truncmix.load(tmp_path / "text.tmx")
    with pytest.raises(ModelFileError, match="no such file"):
        truncmix.load(tmp_path / "absent.tmx")


def test_tied_and_diag_validation(tmp_path):
    diag = TruncatedGaussianMixture(2, covariance_type="diag", random_state=0).fit(X)
    truncmix.save(diag, tmp_path / "d.tmx")
    with zipfile.ZipFile(tmp_path / "d.tmx") as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    cov = _arr(members, "covariances_").copy()
    cov[0, 0] = 0.0
    with pytest.raises(ModelFileError, match="> 0"):
        truncmix.load(_write(tmp_path / "bad.tmx", _with(members, covariances_=cov)))


# ------------------------------------------------------------ atomic writes
def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(target, "w") as f:
            f.write("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]
    with atomic_write(target, "w") as f:
        f.write("new")
    assert target.read_text() == "new" and os.listdir(tmp_path) == ["out.txt"]


def test_write_to_missing_directory_names_the_target(tmp_path):
    with pytest.raises(OSError, match="nodir"):
        write_array(tmp_path / "nodir" / "x.npy", np.zeros(3))


# ------------------------------------------------------------ data readers
@pytest.mark.parametrize("name", ["d.npy", "d.csv", "d.tsv", "d.csv.gz", "d.tsv.gz", "d.parquet"])
def test_write_then_read_is_exact(name, tmp_path):
    write_array(tmp_path / name, X, columns=["a", "b", "c"])
    Y, names = read_data(tmp_path / name)
    np.testing.assert_array_equal(Y, X)
    assert names == (None if name.endswith(".npy") else ["a", "b", "c"])


def test_header_detection_and_columns(tmp_path):
    p = tmp_path / "h.csv"
    p.write_text("# a comment\nx,y,label\n1,2,3\n4,5,6\n")
    Y, names = read_data(p)
    assert names == ["x", "y", "label"] and Y.tolist() == [[1, 2, 3], [4, 5, 6]]
    Y, names = read_data(p, columns="y,0")
    assert names == ["y", "x"] and Y.tolist() == [[2, 1], [5, 4]]
    q = tmp_path / "n.csv"
    q.write_text("1,2\n3,4\n")
    assert read_data(q)[0].shape == (2, 2) and read_data(q)[1] is None
    assert read_data(q, header=True)[0].tolist() == [[3, 4]]
    with pytest.raises(DataFileError, match="no header"):
        read_data(q, columns="x")


def test_gzipped_tsv_by_hand(tmp_path):
    p = tmp_path / "g.tsv.gz"
    with gzip.open(p, "wt") as f:
        f.write("1\t2\n3\t4\n5\t6\n")
    assert read_data(p, columns=[1])[0].ravel().tolist() == [2, 4, 6]


@pytest.mark.parametrize("content,message", [
    ("a,b\n1,2\n3,\n", "not a numeric table"),
    ("a,b\n1,2\n3,nan\n", "row 1, column b"),
    ("a,species\n1,setosa\n", "--columns"),
    ("", "empty"),
    ("1,2\n3,4\n5,6,7\n", "number of columns changed from 2 to 3"),
    ("a,b,c\n1,2\n", "header row has 3 fields but the data rows have 2"),
    ("a,b\n1,2\n3,\n", "an empty field is a missing value: --missing drop"),
    ("a,b\n", r"no data \(shape"),
    ("a;b\n1;2\n", "not a numeric table"),
])
def test_bad_text_files(content, message, tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text(content)
    with pytest.raises(DataFileError, match=message) as info:
        read_data(p)
    assert "bad.csv" in str(info.value)


def test_other_reader_errors(tmp_path):
    with pytest.raises(DataFileError, match="no such file"):
        read_data(tmp_path / "nope.csv")
    (tmp_path / "x.xlsx").write_text("?")
    with pytest.raises(DataFileError, match="unknown data format"):
        read_data(tmp_path / "x.xlsx")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataFileError, match="obj.npy"):
        read_data(tmp_path / "obj.npy")
    with pytest.raises(DataFileError, match="no column named 'z'"):
        write_array(tmp_path / "c.parquet", X, columns=["a", "b", "c"])
        read_data(tmp_path / "c.parquet", columns="a,z")


def test_parquet_rejects_text_columns(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"x": [1.0, 2.0], "name": ["a", "b"]}), tmp_path / "t.parquet")
    with pytest.raises(DataFileError, match="'name'"):
        read_data(tmp_path / "t.parquet")
    assert read_data(tmp_path / "t.parquet", columns="x")[0].ravel().tolist() == [1.0, 2.0]
