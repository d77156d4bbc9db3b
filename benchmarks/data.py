"""Benchmark data: synthetic mixtures generated from seeds, shared starting parameters, public data sets.

Nothing is downloaded. Synthetic data is a mixture of C Gaussian blobs whose
centres are spread over a few noise widths, so clusters overlap (the EM work is
real, and the GMM is not trivially one-hot). The starting parameters every
library receives come from one function, so "same initial means" holds by
construction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .harness import REPO

#: spread of the cluster centres, in units of the (unit) within-cluster noise
CENTRE_SCALE = 1.5
#: rows generated per block (bounds the float64 temporaries of generation)
BLOCK = 65536


def blobs(n_samples, n_features, n_centers, dtype=np.float64, seed=0):
    """A mixture of Gaussian blobs, generated block by block straight into ``dtype``.

    Parameters
    ----------
    n_samples, n_features, n_centers : int
    dtype : numpy dtype
    seed : int

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), C-contiguous, ``dtype``
    labels : ndarray of shape (n_samples,), int32
        The generating blob of each row.

    Notes
    -----
    Generation never holds more than one ``BLOCK x n_features`` float64 block
    besides the output, so the peak memory of a process that generates its data
    is the data size plus a few MB (the memory suite relies on this).
    """
    X = np.empty((n_samples, n_features), dtype=dtype)
    return X, blobs_into(X, n_centers, seed)


def blobs_into(X, n_centers, seed=0):
    """Fill ``X`` (an array or a ``numpy.memmap`` file) with the rows of :func:`blobs`.

    Returns the generating blob of each row (int32).
    """
    n_samples, n_features = X.shape
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_centers, n_features)) * CENTRE_SCALE
    labels = rng.integers(0, n_centers, size=n_samples).astype(np.int32)
    for s in range(0, n_samples, BLOCK):
        e = min(s + BLOCK, n_samples)
        block = rng.standard_normal((e - s, n_features))
        block += centres[labels[s:e]]
        X[s:e] = block
    return labels


@dataclass(frozen=True)
class Start:
    """Starting parameters handed identically to every library.

    Attributes
    ----------
    means : ndarray of shape (C, D), float64
        C distinct rows of the data (fixed seed).
    weights : ndarray of shape (C,)
        Equal weights.
    variances : ndarray of shape (D,)
        Per-feature variance used for the initial precisions (the within-blob
        variance of the generator, 1, unless given otherwise).
    """

    means: np.ndarray
    weights: np.ndarray
    variances: np.ndarray

    def precisions(self, covariance_type):
        """``precisions_init`` in scikit-learn's form for ``covariance_type``."""
        C, D = self.means.shape
        p = 1.0 / self.variances
        if covariance_type == "spherical":
            return np.full(C, float(np.mean(p)))
        if covariance_type == "diag":
            return np.tile(p, (C, 1))
        if covariance_type == "tied":
            return np.diag(p)
        if covariance_type == "full":
            return np.broadcast_to(np.diag(p), (C, D, D)).copy()
        raise ValueError(f"no precisions_init for covariance_type={covariance_type!r}")

    def means_as(self, dtype):
        """The initial means in ``dtype`` (k-means libraries take them in the data's dtype)."""
        return np.ascontiguousarray(self.means, dtype=dtype)


def start(X, n_components, seed=1, variances=None):
    """Shared starting parameters: C distinct data rows as means, equal weights, unit variances.

    Parameters
    ----------
    X : ndarray of shape (N, D)
    n_components : int
    seed : int
    variances : ndarray of shape (D,), optional

    Returns
    -------
    Start
    """
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(X.shape[0], size=n_components, replace=False))
    means = X[idx].astype(np.float64)
    D = X.shape[1]
    v = np.ones(D) if variances is None else np.asarray(variances, dtype=np.float64)
    return Start(means, np.full(n_components, 1.0 / n_components), v)


# ------------------------------------------------------------- public data sets
def variants(n_samples, n_features, n_components, dtypes):
    """The blob data of one shape in each dtype, with one shared start.

    Yields ``(dtype, X, start)``: the data are drawn once in float64 (seed 0) and
    cast, so every dtype and library sees the same points and initial means.
    """
    X64, _ = blobs(n_samples, n_features, n_components, np.float64, seed=0)
    st = start(X64, n_components, seed=1)
    for dtype in dtypes:
        yield dtype, (X64 if dtype == "float64" else X64.astype(dtype)), st


def default_data_dir():
    """``../shared/data`` relative to the repository root."""
    return (REPO.parent / "shared" / "data").resolve()


def load_manifest(data_dir):
    """The ``manifest.json`` of a data folder, or None when the folder or manifest is missing.

    Parameters
    ----------
    data_dir : str or Path

    Returns
    -------
    dict or None
    """
    path = Path(data_dir) / "manifest.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def load_dataset(data_dir, entry):
    """Load one manifest entry: ``X`` (float64) and reference labels (int, -1 = noise).

    Parameters
    ----------
    data_dir : str or Path
    entry : dict
        One element of ``manifest["datasets"]``.

    Returns
    -------
    X : ndarray of shape (N, D)
    labels : ndarray of shape (N,)
    """
    data_dir = Path(data_dir)
    files = entry["files"]
    data = next(f for f in files if ".data." in f)
    lab = next(f for f in files if ".labels." in f)
    X = np.loadtxt(data_dir / data, delimiter=",", ndmin=2)
    y = np.loadtxt(data_dir / lab, dtype=int, ndmin=1)
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"{entry['name']}: {X.shape[0]} rows but {y.shape[0]} labels")
    return X, y
