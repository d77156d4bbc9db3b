"""Model files, data readers and writers, atomic writes.

Model files (``.tmx``)
    A zip archive holding ``header.json`` (format name and version, estimator
    class, hyper-parameters, library version, the list of stored arrays) and one
    ``.npy`` file per fitted attribute (``attrs/<name>.npy``) or array-valued
    hyper-parameter (``params/<name>.npy``). Arrays are read with
    ``numpy.load(allow_pickle=False)``, and everything is validated (known format
    version and class, no unknown members, shapes, dtypes, finite values,
    weights summing to one, positive variances, positive-definite matrices)
    before a model is built. Nothing is ever unpickled.

Data files
    ``.npy``; ``.csv`` / ``.tsv`` (optionally ``.gz``; a header row is detected,
    or forced with ``header=True``); ``.parquet`` (needs pyarrow). Output format
    follows the file extension too.

Every file is written atomically: to a temporary file in the target's
directory, then moved over the target with :func:`os.replace`, so a reader
never sees half a file and an interrupted write leaves the old file in place.
"""

from __future__ import annotations

import contextlib
import gzip
import io as _io
import json
import os
import tempfile
import warnings
import zipfile
import zlib
from dataclasses import fields as _dc_fields
from datetime import datetime, timezone

import numpy as np

from .exceptions import DroppedRowsWarning, ModelFileError

#: the ``format`` string in every model file's header
FORMAT_NAME = "truncmix-model"
#: the model file format version this library writes
FORMAT_VERSION = 1
#: versions this library can read
SUPPORTED_VERSIONS = (1,)
#: largest header we accept (a header is a few kilobytes)
_MAX_HEADER_BYTES = 1 << 20

__all__ = [
    "DataFileError",
    "FORMAT_VERSION",
    "atomic_write",
    "load",
    "read_data",
    "save",
    "write_array",
]


class DataFileError(ValueError):
    """A data file is missing, unreadable, or not a numeric table."""


# --------------------------------------------------------------- atomic writes
def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _mkstemp(path, directory):
    try:
        return tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise OSError(f"{path}: cannot write ({exc.strerror or exc})") from None


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Open a temporary file beside ``path``; on success move it over ``path``.

    Parameters
    ----------
    path : str or os.PathLike
        The file to (re)place.
    mode : {"wb", "w"}, default="wb"
        Binary or text (UTF-8) mode.

    Yields
    ------
    file object
        Write to it; it is flushed, synced and renamed to ``path`` when the
        ``with`` block ends without an exception, and removed otherwise.
    """
    with atomic_path(path) as tmp:
        with open(tmp, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": ""})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path`` for writers that want a file name.

    The temporary file is moved over ``path`` when the block succeeds and
    removed otherwise.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = _mkstemp(path, directory)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# ----------------------------------------------------------------- model files
# Fitted attributes per class: name -> kind. "history" is the list of
# IterationRecord, stored as one float64 table.
_ATTRIBUTES = {
    "KMeans": {
        "cluster_centers_": "matrix",
        "sigma2_": "positive",
        "inertia_": "nonnegative",
        "n_iter_": "count",
        "converged_": "bool",
        "lower_bound_": "float",
        "free_energy_history_": "vector",
        "n_features_in_": "count",
    },
    "TruncatedGaussianMixture": {
        "weights_": "vector",
        "means_": "matrix",
        "covariances_": "covariance",
        "precisions_": "covariance",
        "precisions_cholesky_": "covariance",
        "n_iter_": "count",
        "converged_": "bool",
        "lower_bound_": "float",
        "free_energy_history_": "vector",
        "n_features_in_": "count",
    },
}
_OPTIONAL = ("feature_names_in_", "history_", "n_dropped_")
_COUNT_PARAM = {"KMeans": "n_clusters", "TruncatedGaussianMixture": "n_components"}


def _classes():
    from .estimators import KMeans, TruncatedGaussianMixture

    return {"KMeans": KMeans, "TruncatedGaussianMixture": TruncatedGaussianMixture}


def _class_name(model):
    for name, cls in _classes().items():
        if isinstance(model, cls):
            return name
    raise TypeError(
        f"can only save truncmix.KMeans or truncmix.TruncatedGaussianMixture; got {type(model).__name__}"
    )


def _npy_bytes(array):
    buf = _io.BytesIO()
    np.save(buf, np.asarray(array), allow_pickle=False)
    return buf.getvalue()


def _json_param(name, value):
    """A JSON-able form of a hyper-parameter, or raise TypeError."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float, np.integer, np.floating, np.bool_)):
        return value.item() if hasattr(value, "item") else value
    raise TypeError(type(value).__name__)


def save(model, path, *, metadata=None):
    """Save a fitted truncmix estimator to a ``.tmx`` model file (atomically).

    Parameters
    ----------
    model : KMeans or TruncatedGaussianMixture
        A fitted estimator.
    path : str or os.PathLike
        Where to write; conventionally ending in ``.tmx``.
    metadata : dict, optional
        JSON-able extra information stored in the header under ``"metadata"``
        (the command line records the training data's file, shape and columns).

    Returns
    -------
    path : str

    Notes
    -----
    Hyper-parameters go into the JSON header; array-valued ones (``init``,
    ``means_init``, ...) are stored as arrays. A ``random_state`` that is a
    RandomState or Generator instance cannot be stored: it is saved as None and
    the header says so under ``"dropped_params"``.
    """
    from sklearn.utils.validation import check_is_fitted

    from . import __version__
    from .history import IterationRecord

    name = _class_name(model)
    check_is_fitted(model)
    params, array_params, dropped = {}, {}, {}
    for key, value in model.get_params(deep=False).items():
        if isinstance(value, (np.ndarray, list, tuple)):
            arr = np.asarray(value)
            if arr.dtype.kind not in "biuf":
                raise TypeError(f"cannot save parameter {key!r}: not a numeric array")
            array_params[key] = arr
            params[key] = None
            continue
        try:
            params[key] = _json_param(key, value)
        except TypeError as exc:
            if key == "random_state":
                params[key] = None
                dropped[key] = f"a {exc} instance cannot be stored; saved as None"
            else:
                raise TypeError(f"cannot save parameter {key!r} of type {exc}") from None
    members = {}
    for attr in _ATTRIBUTES[name]:
        members[f"attrs/{attr}.npy"] = _npy_bytes(getattr(model, attr))
    if hasattr(model, "feature_names_in_"):
        members["attrs/feature_names_in_.npy"] = _npy_bytes(
            np.asarray(model.feature_names_in_, dtype=str)
        )
    if hasattr(model, "n_dropped_"):
        members["attrs/n_dropped_.npy"] = _npy_bytes(np.int64(model.n_dropped_))
    history_fields = None
    if getattr(model, "history_", None):
        history_fields = [f.name for f in _dc_fields(IterationRecord)]
        table = np.array(
            [[float(getattr(r, f)) for f in history_fields] for r in model.history_],
            dtype=np.float64,
        )
        members["attrs/history_.npy"] = _npy_bytes(table)
    for key, arr in array_params.items():
        members[f"params/{key}.npy"] = _npy_bytes(arr)
    header = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "class": name,
        "library_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "params": params,
        "array_params": sorted(array_params),
        "dropped_params": dropped,
        "history_fields": history_fields,
        "members": sorted(members),
        "metadata": metadata or {},
    }
    path = os.fspath(path)
    with atomic_write(path, "wb") as f:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("header.json", json.dumps(header, indent=1, allow_nan=False))
            for member, data in members.items():
                zf.writestr(member, data)
    return path


def read_header(path):
    """The JSON header of a model file, checked for format, version and class.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    dict

    Raises
    ------
    ModelFileError
    """
    path = os.fspath(path)
    with _open_model(path) as zf:
        return _header(zf, path)


@contextlib.contextmanager
def _open_model(path):
    if not os.path.exists(path):
        raise ModelFileError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ModelFileError(f"{path}: is a directory, not a model file")
    try:
        zf = zipfile.ZipFile(path, "r")
    except _ZIP_ERRORS as exc:
        raise ModelFileError(f"{path}: not a truncmix model file (not a zip archive: {exc})") from None
    with zf:
        yield zf


def _header(zf, path):
    try:
        info = zf.getinfo("header.json")
    except KeyError:
        raise ModelFileError(f"{path}: not a truncmix model file (no header.json)") from None
    if info.file_size > _MAX_HEADER_BYTES:
        raise ModelFileError(f"{path}: header.json is implausibly large ({info.file_size} bytes)")
    raw = _member_bytes(zf, info, path)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ModelFileError(f"{path}: header.json is not valid JSON ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{path}: not a truncmix model file (header format is not {FORMAT_NAME!r})")
    version = header.get("format_version")
    if version not in SUPPORTED_VERSIONS:
        raise ModelFileError(
            f"{path}: model file format version {version!r} is not supported by this truncmix "
            f"(reads {', '.join(map(str, SUPPORTED_VERSIONS))}); it was written by truncmix "
            f"{header.get('library_version', '?')}"
        )
    if not isinstance(header.get("class"), str) or header["class"] not in _ATTRIBUTES:
        raise ModelFileError(f"{path}: unknown estimator class {header.get('class')!r}")
    if not isinstance(header.get("params"), dict):
        raise ModelFileError(f"{path}: header has no 'params' table")
    for key in ("array_params", "history_fields"):
        value = header.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise ModelFileError(f"{path}: header entry {key!r} must be a list of names")
    if not isinstance(header.get("metadata") or {}, dict):
        raise ModelFileError(f"{path}: header entry 'metadata' must be a table")
    return header


#: what a damaged zip member can raise while it is read: a bad CRC or header,
#: a corrupt deflate stream, flags claiming encryption or an unknown method
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError,
               RuntimeError, ValueError)


def _member_bytes(zf, member, path):
    """The bytes of one archive member; a damaged member is a ModelFileError."""
    name = member.filename if isinstance(member, zipfile.ZipInfo) else member
    try:
        return zf.read(member)
    except _ZIP_ERRORS as exc:
        raise ModelFileError(f"{path}: {name} is corrupt ({exc})") from None


def _read_npy(zf, member, path):
    raw = _member_bytes(zf, member, path)
    try:
        return np.load(_io.BytesIO(raw), allow_pickle=False)
    except ValueError as exc:
        raise ModelFileError(f"{path}: {member} is not a plain numeric array ({exc})") from None
    except (OSError, EOFError) as exc:
        raise ModelFileError(f"{path}: {member} is corrupt ({exc})") from None


def load(path):
    """Load a model saved by :func:`save`, validating it before use.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    KMeans or TruncatedGaussianMixture
        A fitted estimator that predicts, scores and samples exactly as the
        saved one did.

    Raises
    ------
    ModelFileError
        The file is missing, not a model file, of an unknown format version or
        class, has unknown or missing members, or holds arrays of the wrong
        shape or dtype, non-finite values, weights that do not sum to one,
        non-positive variances or covariance matrices that are not positive
        definite.
    """
    path = os.fspath(path)
    with _open_model(path) as zf:
        header = _header(zf, path)
        name = header["class"]
        cls = _classes()[name]
        known_params = cls().get_params(deep=False)
        params = dict(header["params"])
        unknown = sorted(set(params) - set(known_params))
        if unknown:
            raise ModelFileError(
                f"{path}: parameter(s) {', '.join(unknown)} unknown to {name} in this truncmix "
                f"(file written by truncmix {header.get('library_version', '?')}); upgrade truncmix"
            )
        array_params = header.get("array_params") or []
        expected = {f"attrs/{a}.npy" for a in _ATTRIBUTES[name]}
        optional = {f"attrs/{a}.npy" for a in _OPTIONAL}
        allowed = expected | optional | {f"params/{p}.npy" for p in array_params}
        present = set(zf.namelist()) - {"header.json"}
        bad = sorted(present - allowed)
        if bad:
            raise ModelFileError(f"{path}: unexpected member(s) {', '.join(bad)}")
        missing = sorted(expected - present)
        if missing:
            raise ModelFileError(f"{path}: missing member(s) {', '.join(missing)}")
        for p in array_params:
            if p not in known_params:
                raise ModelFileError(f"{path}: array parameter {p!r} unknown to {name}")
            member = f"params/{p}.npy"
            if member not in present:
                raise ModelFileError(f"{path}: missing member {member}")
            arr = _read_npy(zf, member, path)
            if arr.dtype.kind not in "biuf" or not np.isfinite(arr).all():
                raise ModelFileError(f"{path}: parameter {p} must hold finite numbers")
            params[p] = arr
        attrs = {m[len("attrs/"):-4]: _read_npy(zf, m, path) for m in present if m.startswith("attrs/")}
    try:
        model = cls(**params)
        from ._validation import check_params

        check_params(model)
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: invalid hyper-parameters: {exc}") from None
    values = _validate_attributes(name, model, attrs, header, path)
    for key, value in values.items():
        setattr(model, key, value)
    return model


def _scalar(arr, key, path, kind):
    if arr.shape != ():
        raise ModelFileError(f"{path}: {key} must be a scalar; got shape {arr.shape}")
    if kind == "bool":
        if arr.dtype != np.bool_:
            raise ModelFileError(f"{path}: {key} must be a boolean; got dtype {arr.dtype}")
        return bool(arr)
    if kind == "count":
        if arr.dtype.kind not in "iu" or arr < 0:
            raise ModelFileError(f"{path}: {key} must be a non-negative integer")
        return int(arr)
    if arr.dtype.kind != "f" or not np.isfinite(arr):
        raise ModelFileError(f"{path}: {key} must be a finite float")
    value = float(arr)
    if kind == "positive" and not value > 0:
        raise ModelFileError(f"{path}: {key} must be > 0; got {value}")
    if kind == "nonnegative" and value < 0:
        raise ModelFileError(f"{path}: {key} must be >= 0; got {value}")
    return value


def _float_array(arr, key, path, shape):
    if arr.dtype.kind != "f":
        raise ModelFileError(f"{path}: {key} must be a float array; got dtype {arr.dtype}")
    if shape is not None and arr.shape != shape:
        raise ModelFileError(f"{path}: {key} has shape {arr.shape}; expected {shape}")
    if not np.isfinite(arr).all():
        raise ModelFileError(f"{path}: {key} holds NaN or infinite values")
    return arr.astype(np.float64, copy=False)


_COV_SHAPES = {
    "isotropic": lambda C, D: (),
    "spherical": lambda C, D: (C,),
    "diag": lambda C, D: (C, D),
    "tied": lambda C, D: (D, D),
    "full": lambda C, D: (C, D, D),
}


def _validate_attributes(name, model, attrs, header, path):
    """Checked, typed values for every fitted attribute of ``model``."""
    from .model.covariance import COVARIANCE_TYPES

    out = {}
    D = _scalar(attrs["n_features_in_"], "n_features_in_", path, "count")
    if D < 1:
        raise ModelFileError(f"{path}: n_features_in_ must be >= 1")
    out["n_features_in_"] = D
    C = int(getattr(model, _COUNT_PARAM[name]))
    for key in ("n_iter_", "converged_", "lower_bound_"):
        out[key] = _scalar(attrs[key], key, path, _ATTRIBUTES[name][key])
    fe = attrs["free_energy_history_"]
    if fe.ndim != 1:
        raise ModelFileError(f"{path}: free_energy_history_ must be 1-D")
    out["free_energy_history_"] = _float_array(fe, "free_energy_history_", path, None)
    if name == "KMeans":
        out["cluster_centers_"] = _float_array(attrs["cluster_centers_"], "cluster_centers_", path, (C, D))
        out["sigma2_"] = _scalar(attrs["sigma2_"], "sigma2_", path, "positive")
        out["inertia_"] = _scalar(attrs["inertia_"], "inertia_", path, "nonnegative")
    else:
        cov_type = model.covariance_type
        w = _float_array(attrs["weights_"], "weights_", path, (C,))
        if (w < 0).any() or not abs(w.sum() - 1.0) < 1e-6:
            raise ModelFileError(f"{path}: weights_ must be non-negative and sum to 1; sum is {w.sum()!r}")
        out["weights_"] = w
        out["means_"] = _float_array(attrs["means_"], "means_", path, (C, D))
        shape = _COV_SHAPES[cov_type](C, D)
        for key in ("covariances_", "precisions_", "precisions_cholesky_"):
            out[key] = _float_array(attrs[key], key, path, shape)
        cov = out["covariances_"]
        if cov_type in ("isotropic", "spherical", "diag"):
            if not (cov > 0).all():
                raise ModelFileError(f"{path}: covariances_ must be > 0 ({cov_type})")
        else:
            if not np.allclose(cov, np.swapaxes(cov, -1, -2), rtol=1e-10, atol=0):
                raise ModelFileError(f"{path}: covariances_ are not symmetric")
            try:
                np.linalg.cholesky(cov)
            except np.linalg.LinAlgError:
                raise ModelFileError(f"{path}: covariances_ are not positive definite") from None
        ref = COVARIANCE_TYPES[cov_type].from_covariances(cov, C, D)
        for key, expected in (("precisions_cholesky_", ref.precisions_cholesky),
                              ("precisions_", ref.precisions)):
            scale = np.max(np.abs(expected))
            if not np.allclose(out[key], expected, rtol=1e-6, atol=1e-9 * scale):
                raise ModelFileError(f"{path}: {key} does not match covariances_")
        if cov_type == "isotropic":
            for key in ("covariances_", "precisions_", "precisions_cholesky_"):
                out[key] = float(out[key])
    if "feature_names_in_" in attrs:
        names = attrs["feature_names_in_"]
        if names.dtype.kind != "U" or names.shape != (D,):
            raise ModelFileError(f"{path}: feature_names_in_ must be {D} strings")
        out["feature_names_in_"] = names.astype(object)
    if "n_dropped_" in attrs:
        out["n_dropped_"] = _scalar(attrs["n_dropped_"], "n_dropped_", path, "count")
    if "history_" in attrs:
        out["history_"] = _history(attrs["history_"], header.get("history_fields"), path)
    return out


def _history(table, fields, path):
    from .history import IterationRecord

    known = {f.name: f.type for f in _dc_fields(IterationRecord)}
    if not isinstance(fields, list) or table.ndim != 2 or table.shape[1] != len(fields):
        raise ModelFileError(f"{path}: history_ does not match its field list")
    if table.dtype.kind != "f":
        raise ModelFileError(f"{path}: history_ must be a float table")
    records = []
    for row in table:
        kwargs = {}
        for f, value in zip(fields, row):
            if f not in known:
                continue
            if known[f] != "float":
                if not (np.isfinite(value) and value == int(value)):
                    raise ModelFileError(f"{path}: history_ field {f} must hold integers; got {value!r}")
                value = int(value)
            kwargs[f] = float(value) if known[f] == "float" else value
        try:
            records.append(IterationRecord(**kwargs))
        except TypeError as exc:
            raise ModelFileError(f"{path}: history_ is incomplete ({exc})") from None
    return records


# ---------------------------------------------------------------- data readers
def _suffixes(path):
    """``(format, gzipped)`` from a file name: ('csv', True) for data.csv.gz."""
    name = os.path.basename(os.fspath(path)).lower()
    gz = name.endswith(".gz")
    if gz:
        name = name[:-3]
    ext = name.rsplit(".", 1)[-1] if "." in name else ""
    return ext, gz


def _parse_columns(spec):
    if spec is None:
        return None
    if isinstance(spec, str):
        spec = [s.strip() for s in spec.split(",") if s.strip()]
    out = []
    for s in spec:
        if isinstance(s, (int, np.integer)):
            out.append(int(s))
        elif isinstance(s, str) and s.lstrip("-").isdigit():
            out.append(int(s))
        else:
            out.append(str(s))
    if not out:
        raise DataFileError("--columns is empty")
    return out


def _resolve_columns(path, wanted, names, n_cols):
    """Column indices for ``wanted`` (names or 0-based indices)."""
    idx = []
    for w in wanted:
        if isinstance(w, int):
            if not -n_cols <= w < n_cols:
                raise DataFileError(f"{path}: column index {w} out of range (the file has {n_cols} columns)")
            idx.append(w % n_cols)
        else:
            if names is None:
                raise DataFileError(f"{path}: column {w!r} asked for by name but the file has no header")
            if w not in names:
                raise DataFileError(
                    f"{path}: no column named {w!r} (columns: {', '.join(names[:12])}"
                    f"{', ...' if len(names) > 12 else ''})"
                )
            idx.append(names.index(w))
    return idx


def _is_number(s):
    try:
        float(s)
    except ValueError:
        return False
    return True


def _open_text(path, gz):
    return gzip.open(path, "rt", encoding="utf-8") if gz else open(path, encoding="utf-8")


def read_data(path, *, columns=None, header=None, dtype=np.float64, missing="raise"):
    """Read a numeric table from ``.npy``, ``.csv``/``.tsv`` (maybe ``.gz``) or ``.parquet``.

    Parameters
    ----------
    path : str or os.PathLike
    columns : str or list of (str or int), optional
        Columns to keep, by name (needs a header) or 0-based index; a string is
        split at commas (``"0,2,5"`` or ``"height,width"``).
    header : bool or None, default=None
        Whether a text file starts with a header row; None detects it (a first
        row with any non-numeric field is a header).
    dtype : numpy dtype, default=float64
    missing : {"raise", "drop"}, default="raise"
        Rows with an empty field, NaN or an infinite value: an error naming the
        first, or dropped with a :class:`~truncmix.exceptions.DroppedRowsWarning`.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    names : list of str or None
        Column names when the file has them.

    Raises
    ------
    DataFileError
        Naming the file and the problem: missing, unknown format, not numeric,
        NaN or infinite values, no rows.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataFileError(f"{path}: no such file")
    if os.path.isdir(path):
        raise DataFileError(f"{path}: is a directory")
    ext, gz = _suffixes(path)
    wanted = _parse_columns(columns)
    if ext == "npy" and not gz:
        X, names = _read_npy_data(path, wanted)
    elif ext in ("csv", "tsv", "txt"):
        X, names = _read_text(path, gz, "\t" if ext == "tsv" else ",", wanted, header, missing)
    elif ext == "parquet" and not gz:
        X, names = _read_parquet(path, wanted)
    else:
        raise DataFileError(
            f"{path}: unknown data format; use .npy, .csv, .tsv (optionally .gz) or .parquet"
        )
    X = np.asarray(X)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise DataFileError(f"{path}: expected a 2-D table; got an array of shape {X.shape}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise DataFileError(f"{path}: no data (shape {X.shape})")
    try:
        X = X.astype(dtype, copy=False)
    except (TypeError, ValueError) as exc:
        raise DataFileError(f"{path}: not numeric ({exc})") from None
    bad = ~np.isfinite(X)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        rows = bad.any(axis=1)
        where = (f"{int(bad.sum())} missing, NaN or infinite value(s) in {int(rows.sum())} of "
                 f"{X.shape[0]} rows, first at row {r}, column {names[c] if names else c}")
        if missing != "drop":
            raise DataFileError(f"{path}: {where} (--missing drop leaves such rows out)")
        if rows.all():
            raise DataFileError(f"{path}: {where}: no complete row is left")
        warnings.warn(DroppedRowsWarning(f"{path}: dropped the rows with {where}", int(rows.sum())),
                      stacklevel=2)
        X = X[~rows]
    return X, names


def _read_npy_data(path, wanted):
    try:
        X = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise DataFileError(f"{path}: not a plain numeric .npy array ({exc})") from None
    except (OSError, EOFError) as exc:
        raise DataFileError(f"{path}: cannot read ({exc})") from None
    if X.dtype.kind not in "biuf":
        raise DataFileError(f"{path}: array dtype {X.dtype} is not numeric")
    if X.ndim == 1:
        X = X[:, None]
    if wanted is not None and X.ndim == 2:
        X = X[:, _resolve_columns(path, wanted, None, X.shape[1])]
    return X, None


def _float_or_nan(text):
    """A text field as a float; an empty field is a missing value (NaN)."""
    text = text.strip()
    return float(text) if text else np.nan


def _read_text(path, gz, delimiter, wanted, header, missing="raise"):
    try:
        with _open_text(path, gz) as f:
            first = ""
            for line in f:
                if line.strip() and not line.lstrip().startswith("#"):
                    first = line
                    break
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise DataFileError(f"{path}: cannot read ({exc})") from None
    if not first:
        raise DataFileError(f"{path}: the file is empty")
    fields = [s.strip().strip('"').strip("'") for s in first.rstrip("\r\n").split(delimiter)]
    if len(fields) == 1 and delimiter == "," and "\t" in first:
        delimiter = "\t"
        fields = [s.strip() for s in first.rstrip("\r\n").split(delimiter)]
    if header is None:
        header = not all(_is_number(s) for s in fields)
    names = fields if header else None
    usecols = None if wanted is None else _resolve_columns(path, wanted, names, len(fields))
    if names is not None and usecols is not None:
        names = [names[i] for i in usecols]
    skip = _header_row(path, gz) + 1 if header else 0
    try:
        with _open_text(path, gz) as f, warnings.catch_warnings():
            # a file with no data rows is reported below, not as numpy's warning
            warnings.filterwarnings("ignore", "loadtxt: input contained no data")
            X = np.loadtxt(f, delimiter=delimiter, skiprows=skip, usecols=usecols, ndmin=2,
                           dtype=np.float64, comments="#", quotechar='"',
                           converters=_float_or_nan if missing == "drop" else None)
    except ValueError as exc:
        msg = str(exc).splitlines()[0]
        if "string ''" in msg:
            hint = "; an empty field is a missing value: --missing drop leaves such rows out"
        else:
            hint = "" if wanted is not None else "; pick numeric columns with --columns"
        raise DataFileError(f"{path}: not a numeric table ({msg}){hint}") from None
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataFileError(f"{path}: cannot read ({exc})") from None
    if names is not None and X.size and X.shape[1] != len(names):
        raise DataFileError(
            f"{path}: the header row has {len(names)} fields but the data rows have {X.shape[1]}"
        )
    return X, names


def _header_row(path, gz):
    """0-based line number of the header (the first line that is not blank or a comment)."""
    with _open_text(path, gz) as f:
        for i, line in enumerate(f):
            if line.strip() and not line.lstrip().startswith("#"):
                return i
    return 0


def _read_parquet(path, wanted):
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataFileError(
            f"{path}: reading .parquet needs pyarrow (pip install 'truncmix[parquet]')"
        ) from None
    try:
        schema = pq.read_schema(path)
    except Exception as exc:  # pyarrow raises its own error types
        raise DataFileError(f"{path}: not a readable parquet file ({exc})") from None
    names = list(schema.names)
    idx = list(range(len(names))) if wanted is None else _resolve_columns(path, wanted, names, len(names))
    cols = [names[i] for i in idx]
    table = pq.read_table(path, columns=cols)
    arrays = []
    for name, col in zip(cols, table.columns):
        import pyarrow.types as pat

        if not (pat.is_integer(col.type) or pat.is_floating(col.type) or pat.is_boolean(col.type)):
            hint = "" if wanted is not None else "; pick numeric columns with --columns"
            raise DataFileError(f"{path}: column {name!r} has type {col.type}, not numeric{hint}")
        arrays.append(col.to_numpy(zero_copy_only=False).astype(np.float64))
    if not arrays:
        raise DataFileError(f"{path}: no columns")
    return np.column_stack(arrays), cols


# ---------------------------------------------------------------- data writers
def write_array(path, array, *, columns=None):
    """Write a 1-D or 2-D array; the format follows the extension; atomic.

    Parameters
    ----------
    path : str or os.PathLike
        ``.npy``, ``.csv``, ``.tsv`` (optionally ``.gz``) or ``.parquet``.
    array : ndarray of shape (n,) or (n, k)
    columns : list of str, optional
        Column names (header row for text, field names for parquet). Ignored by
        ``.npy``.

    Returns
    -------
    path : str
    """
    path = os.fspath(path)
    array = np.asarray(array)
    ext, gz = _suffixes(path)
    if ext == "npy" and not gz:
        with atomic_write(path, "wb") as f:
            np.save(f, array, allow_pickle=False)
    elif ext in ("csv", "tsv", "txt"):
        delimiter = "\t" if ext == "tsv" else ","
        if gz:
            with atomic_write(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb") as gzf:
                text = _io.TextIOWrapper(gzf, encoding="utf-8", newline="")
                write_text_table(text, array, columns, delimiter)
                text.flush()
                text.detach()
        else:
            with atomic_write(path, "w") as f:
                write_text_table(f, array, columns, delimiter)
    elif ext == "parquet" and not gz:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise DataFileError(f"{path}: writing .parquet needs pyarrow (pip install 'truncmix[parquet]')") from None
        a2 = array[:, None] if array.ndim == 1 else array
        names = list(columns) if columns is not None else [f"x{i}" for i in range(a2.shape[1])]
        table = pa.table({n: a2[:, i] for i, n in enumerate(names)})
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp)
    else:
        raise DataFileError(f"{path}: unknown output format; use .npy, .csv, .tsv (optionally .gz) or .parquet")
    return path


def write_text_table(f, array, columns=None, delimiter=","):
    """Write ``array`` as delimited text to an open text file (e.g. stdout).

    Integers are written as integers; floats as the shortest text that reads
    back to the same float.
    """
    array = np.asarray(array)
    if columns is not None:
        f.write(delimiter.join(columns) + "\n")
    if array.dtype.kind in "biu":
        np.savetxt(f, array, fmt="%d", delimiter=delimiter)
        return
    # Python's float repr: the shortest text that reads back to the same float
    rows = array.astype(np.float64).reshape(array.shape[0], -1).tolist()
    f.writelines(delimiter.join(map(repr, row)) + "\n" for row in rows)
