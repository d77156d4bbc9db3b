"""What every backend provides to the EM driver."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: default working-set budget for one chunk's work arrays, in bytes
DEFAULT_WORKING_MEMORY = 128 * 2**20


@dataclass
class Chunk:
    """One block of rows as the E-step sees it.

    Attributes
    ----------
    start : int
        Global index of the first row.
    X : ndarray (n, D)
        The rows, shifted by the backend's offset (a private copy).
    weights : ndarray (n,), float64
    K : ndarray (n, C') int32 or None
        A writable view of the per-point state for these rows.
    """

    start: int
    X: np.ndarray
    weights: np.ndarray
    K: np.ndarray | None


def rows_per_chunk(n_samples, n_features, n_components, chunk_size=None,
                   working_memory=DEFAULT_WORKING_MEMORY):
    """Rows per chunk: ``chunk_size`` if given, else what fits the memory budget.

    A chunk holds a few (n, C) float64 work arrays (log-joints, posteriors) and a
    shifted copy of its rows.
    """
    if chunk_size is not None:
        return max(1, min(int(chunk_size), n_samples))
    per_row = 8 * (4 * n_components + 2 * n_features)
    return max(1, min(n_samples, working_memory // per_row))
