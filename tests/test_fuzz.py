"""Fuzzing the model loader and the data readers with hypothesis.

Whatever the bytes, ``truncmix.load`` either returns a model that predicts finite
labels and scores or raises ``ModelFileError``; ``read_data`` either returns a
finite 2-D float table or raises ``DataFileError``. Nothing else escapes.
"""

import io
import json
import os
import tempfile
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import truncmix
from truncmix import KMeans, TruncatedGaussianMixture
from truncmix.exceptions import ModelFileError
from truncmix.io import DataFileError, read_data

RNG = np.random.default_rng(5)
X = np.concatenate([RNG.normal(c, 1.0, size=(40, 2)) for c in ([0, 0], [6, 0])])
#: TRUNCMIX_FUZZ_EXAMPLES=2000 runs a longer, randomised search (the default
#: suite replays the same 60 examples per test, so it is deterministic)
_EXAMPLES = int(os.environ.get("TRUNCMIX_FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=_EXAMPLES or 60, deadline=None, derandomize=not _EXAMPLES,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _model_bytes(model):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.tmx")
        truncmix.save(model.fit(X), path)
        with open(path, "rb") as f:
            return f.read()


SAVED = {
    "full": _model_bytes(TruncatedGaussianMixture(2, covariance_type="full", random_state=0)),
    "kmeans": _model_bytes(KMeans(2, random_state=0)),
}


def _members(blob):
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _zip(members, compression=zipfile.ZIP_STORED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def load_or_refuse(blob, where):
    """Load ``blob``; a success must be a usable model, a failure a ModelFileError."""
    path = os.path.join(where, "fuzz.tmx")
    with open(path, "wb") as f:
        f.write(blob)
    try:
        model = truncmix.load(path)
    except ModelFileError as exc:
        assert path in str(exc)
        return None
    Z = X[:, : model.n_features_in_] if model.n_features_in_ <= 2 else np.zeros((3, model.n_features_in_))
    assert np.isfinite(model.score_samples(Z)).all()
    assert ((0 <= model.predict(Z)) & (model.predict(Z) < model.get_params()[
        "n_clusters" if isinstance(model, KMeans) else "n_components"])).all()
    return model


# ----------------------------------------------------------- the whole file
@pytest.mark.parametrize("kind", sorted(SAVED))
def test_every_truncation_is_refused(kind, tmp_path):
    blob = SAVED[kind]
    assert load_or_refuse(blob, tmp_path) is not None
    for cut in range(0, len(blob), max(1, len(blob) // 97)):
        assert load_or_refuse(blob[:cut], tmp_path) is None, cut


@FUZZ
@given(kind=st.sampled_from(sorted(SAVED)),
       flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)),
                      min_size=1, max_size=8),
       stored=st.booleans())
def test_corrupted_bytes(kind, flips, stored, tmp_path):
    # stored (uncompressed) archives let a flipped byte reach the .npy and JSON
    # parsers; deflated ones exercise the decompressor and the CRC checks
    blob = bytearray(_zip(_members(SAVED[kind])) if stored else SAVED[kind])
    for where, xor in flips:
        blob[int(where * len(blob))] ^= xor
    load_or_refuse(bytes(blob), tmp_path)


# ------------------------------------------------------------ the header
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


@FUZZ
@given(kind=st.sampled_from(sorted(SAVED)), data=st.data())
def test_hand_edited_header(kind, data, tmp_path):
    members = _members(SAVED[kind])
    header = json.loads(members["header.json"])
    table = header if data.draw(st.booleans()) else header["params"]
    key = data.draw(st.sampled_from(sorted(table)) | st.text(max_size=6))
    table[key] = data.draw(JSON)
    members["header.json"] = json.dumps(header)
    load_or_refuse(_zip(members), tmp_path)


# ----------------------------------------------------------- the arrays
ARRAYS = hnp.arrays(
    dtype=st.sampled_from([np.float64, np.float32, np.int64, np.bool_, np.dtype("U3"), np.complex128]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3),
)


@FUZZ
@given(kind=st.sampled_from(sorted(SAVED)), data=st.data())
def test_hand_edited_arrays(kind, data, tmp_path):
    members = _members(SAVED[kind])
    member = data.draw(st.sampled_from(sorted(m for m in members if m.endswith(".npy"))))
    original = np.load(io.BytesIO(members[member]))
    if original.dtype.kind == "f" and original.size and data.draw(st.booleans()):
        # a small edit of the right shape: one entry made NaN, inf, negative or huge
        arr = original.copy()
        arr.flat[data.draw(st.integers(0, original.size - 1))] = data.draw(
            st.sampled_from([np.nan, np.inf, -1.0, 0.0, 1e300]))
    else:
        arr = data.draw(ARRAYS)
    buf = io.BytesIO()
    np.save(buf, arr)
    members[member] = buf.getvalue()
    load_or_refuse(_zip(members), tmp_path)


def test_nan_in_a_covariance_and_a_pickle_are_refused(tmp_path):
    members = _members(SAVED["full"])
    cov = np.load(io.BytesIO(members["attrs/covariances_.npy"]))
    cov[1, 0, 0] = np.nan
    buf = io.BytesIO()
    np.save(buf, cov)
    path = tmp_path / "nan.tmx"
    path.write_bytes(_zip({**members, "attrs/covariances_.npy": buf.getvalue()}))
    with pytest.raises(ModelFileError, match="covariances_ holds NaN or infinite values"):
        truncmix.load(path)
    # a pickle smuggled in as an array parameter
    buf = io.BytesIO()
    np.save(buf, np.array([print], dtype=object), allow_pickle=True)
    header = json.loads(members["header.json"])
    header["array_params"] = ["means_init"]
    path = tmp_path / "pickle.tmx"
    path.write_bytes(_zip({**members, "header.json": json.dumps(header),
                           "params/means_init.npy": buf.getvalue()}))
    with pytest.raises(ModelFileError, match="not a plain numeric array"):
        truncmix.load(path)


# ------------------------------------------------------------ text data
CELLS = st.sampled_from(["1", "-2.5", "3e4", "0", " 7 ", "", "nan", "inf", "-inf", "x", "a b", '"4"',
                         "'5'", "1e999", "0x10", "#", "1,5", "\t", "NA", "é", "1.2.3", "--1"])


@FUZZ
@given(rows=st.lists(st.lists(CELLS, min_size=1, max_size=4), min_size=0, max_size=6),
       sep=st.sampled_from([",", "\t", ";"]), ext=st.sampled_from(["csv", "tsv", "txt"]),
       header=st.sampled_from([None, True, False]), newline=st.sampled_from(["\n", "\r\n"]))
def test_text_reader_returns_finite_tables_or_refuses(rows, sep, ext, header, newline, tmp_path):
    path = tmp_path / f"fuzz.{ext}"
    path.write_bytes(newline.join(sep.join(r) for r in rows).encode("utf-8"))
    check_read(path, header)


@FUZZ
@given(blob=st.binary(max_size=200), ext=st.sampled_from(["csv", "csv.gz", "npy", "parquet"]))
def test_readers_on_random_bytes(blob, ext, tmp_path):
    path = tmp_path / f"fuzz.{ext}"
    path.write_bytes(blob)
    check_read(path, None)


def check_read(path, header):
    try:
        Y, names = read_data(path, header=header)
    except DataFileError as exc:
        assert str(path) in str(exc)
        return
    assert Y.ndim == 2 and Y.shape[0] >= 1 and Y.shape[1] >= 1
    assert Y.dtype == np.float64 and np.isfinite(Y).all()
    assert names is None or len(names) == Y.shape[1]
