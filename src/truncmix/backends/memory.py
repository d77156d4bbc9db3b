"""Data held in memory as one NumPy array, read in chunks of rows."""

from __future__ import annotations

import numpy as np

from .base import Backend, Chunk, FirstPass, FitData, moment_rows, rows_per_chunk


class InMemory(Backend):
    """Chunks of an in-memory array, each shifted by ``offset``.

    Parameters
    ----------
    X : ndarray (N, D), float32 or float64
    weights : ndarray (N,), float64
    offset : ndarray (D,)
        Subtracted from every chunk (the driver works in centred coordinates).
    chunk_size : int or None
        Rows per chunk; None chooses it from the working-memory budget.
    centre_once : bool
        Shift a private copy of the whole array once (one more copy of the data
        in memory, as scikit-learn's KMeans makes) instead of shifting every
        chunk on every pass. The fit does this; scoring new data does not.
    """

    def __init__(self, X, weights, offset, chunk_size=None, centre_once=False):
        self.weights = np.asarray(weights, dtype=np.float64)
        # rounded to X's dtype, so the shift applied to chunks and to means agree
        self.offset = np.asarray(offset, dtype=X.dtype).astype(np.float64)
        self.chunk_size = chunk_size
        self.state = None
        self.centred = centre_once
        self.X = np.subtract(X, self.offset.astype(X.dtype), dtype=X.dtype) if centre_once else X

    def allocate_state(self, shape):
        """Per-point truncated sets, initialised to -1 (unknown); None for no state."""
        self.state = None if shape is None else np.full(shape, -1, dtype=np.int32)

    def sharing_rows(self):
        """A backend over the same (already shifted) rows, weights and offset,
        with a per-point state of its own (none yet): a second fit on the same
        data without another copy or pass."""
        other = object.__new__(InMemory)
        other.__dict__.update(self.__dict__)
        other.state = None
        return other

    def chunks(self, n_components):
        """Yield the data as :class:`Chunk` objects, in row order."""
        step = rows_per_chunk(self.n_samples, self.n_features, n_components, self.chunk_size)
        offset = self.offset.astype(self.X.dtype)
        for start in range(0, self.n_samples, step):
            stop = min(start + step, self.n_samples)
            if self.centred:
                X = self.X[start:stop]
            else:
                X = np.subtract(self.X[start:stop], offset, dtype=self.X.dtype)
            K = None if self.state is None else self.state[start:stop]
            yield Chunk(start, X, self.weights[start:stop], K)

    def moments(self, full=True):
        """Weighted mean and covariance of the data as given, float64, in one pass.

        Sums are taken about the first row (a data point, so within the data's
        spread of the mean: no cancellation of large numbers). With
        ``full=False`` only the variances are computed and the covariance
        returned is diagonal (all the diagonal covariance types need).
        Call it on a backend that is not centred (the mean is what is needed).
        """
        D = self.n_features
        ref = np.asarray(self.X[0], dtype=np.float64)
        step = moment_rows(self.n_samples, D, self.chunk_size)
        total = sum(
            FirstPass.of_block(self.X[s : s + step], self.weights[s : s + step], s, ref, full,
                               check=False)
            for s in range(0, self.n_samples, step)
        )
        return total.moments(ref)


class MemoryData(FitData):
    """An in-memory array as the estimators fit it (see :class:`~truncmix.backends.base.FitData`)."""

    def __init__(self, X, weights, chunk_size=None):
        super().__init__(X, weights, chunk_size, X.shape, X.dtype)

    def backend(self, offset, centre=False):
        return InMemory(self.data, self.weights, offset, self.chunk_size, centre_once=centre)

    def seed_rows(self, n_components, random_state):
        """Seeding sees every row."""
        return self.data, self.weights
