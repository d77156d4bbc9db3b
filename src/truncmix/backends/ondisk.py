"""Data on disk, read chunk by chunk on every pass: ``.npy`` files, memory maps, Parquet.

Nothing here holds more than one chunk of the data. The per-point state (the
truncated sets K, and the labels of the final pass) stays in memory while it is
small and goes to an unlinked temporary file (:class:`SpillFile`) above
:data:`STATE_BUDGET`.

A *chunk source* is any object with ``shape`` (N, D), ``dtype`` and a method
``blocks(rows)`` that yields the rows in order as 2-D ndarrays of at most
``rows`` rows each (any sizes; they are re-blocked here). The ones provided:
:class:`NpyFile` (``.npy`` files and whole-file memory maps, read with
``pread``), :class:`ArraySource` (anything sliceable by rows: views of memory
maps, ``h5py.Dataset``, ``zarr.Array``) and :class:`ParquetSource`.
"""

from __future__ import annotations

import mmap
import os
import tempfile

import numpy as np

from .base import (Backend, Chunk, FirstPass, FitData, draw_positions, moment_rows,
                   pick_rows, rows_per_chunk, seed_draws)

#: per-point arrays (K, labels, predictions) larger than this many bytes are
#: kept in a temporary file instead of in memory
STATE_BUDGET = 32 * 2**20

#: bytes filled at a time in a spilled array (bounds the resident pages)
FILL_ROWS_BYTES = 16 * 2**20

#: a ``numpy.memmap`` smaller than this is fitted like any in-memory array
OUT_OF_CORE_MIN_BYTES = 256 * 2**20


# ------------------------------------------------------------------ sources
class ArraySource:
    """Rows of an array that can be sliced by rows without loading the rest.

    Parameters
    ----------
    array : numpy.memmap, h5py.Dataset, zarr.Array or similar
        Shape (N, D), dtype float32 or float64.
    """

    def __init__(self, array):
        self.array = array
        self.shape = tuple(int(n) for n in array.shape)
        self.dtype = np.dtype(array.dtype)

    def blocks(self, rows):
        """Yield consecutive blocks of at most ``rows`` rows."""
        for start in range(0, self.shape[0], rows):
            rows_view = self.array[start : start + rows]
            yield np.asarray(rows_view)
            # the reader is done with the block: let its pages go, so the
            # resident size stays one chunk whatever N is
            drop_pages(rows_view)


class NpyFile:
    """Rows of a C-ordered ``.npy`` file (or a whole-file ``numpy.memmap``), read with ``pread``.

    Plain file reads go through the page cache without mapping the file into
    the process, so nothing of the file counts in its resident size.

    Parameters
    ----------
    path : str
    offset : int
        Byte offset of the first row in the file.
    shape : (N, D)
    dtype : numpy dtype
    """

    def __init__(self, path, offset, shape, dtype):
        self.path, self.offset = os.fspath(path), int(offset)
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)

    @classmethod
    def open(cls, path):
        """The source of a ``.npy`` file, from its header."""
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                    else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read(f)
            offset = f.tell()
        if fortran and len(shape) > 1:
            raise ValueError(f"{path!r} is Fortran-ordered; out-of-core reading needs C order "
                             "(np.save(path, np.ascontiguousarray(X)))")
        if dtype.hasobject:
            raise ValueError(f"{path!r} holds Python objects")
        return cls(path, offset, shape, dtype)

    def blocks(self, rows):
        """Yield consecutive blocks of at most ``rows`` rows, each a fresh array."""
        row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        fd = os.open(self.path, os.O_RDONLY)
        try:
            for start in range(0, self.shape[0], rows):
                out = np.empty((min(rows, self.shape[0] - start), *self.shape[1:]), self.dtype)
                _pread_into(fd, out, self.offset + start * row_bytes)
                yield out
        finally:
            os.close(fd)


def _pread_into(fd, out, offset):
    view = memoryview(out).cast("B")
    done = 0
    while done < len(view):
        n = os.preadv(fd, [view[done:]], offset + done)
        if n <= 0:
            raise OSError(f"unexpected end of file at byte {offset + done}")
        done += n


class ParquetSource:
    """Rows of a Parquet file read by record batches (``pyarrow``).

    Parameters
    ----------
    path : str or os.PathLike
    columns : list of str or None
        The feature columns, in order; None takes every column. All must be
        floating point; the source is float32 if they all are, else float64.
    """

    def __init__(self, path, columns=None):
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.path = os.fspath(path)
        schema = pq.read_schema(self.path)
        self.columns = list(schema.names if columns is None else columns)
        types = [schema.field(c).type for c in self.columns]
        if not all(pa.types.is_floating(t) for t in types):
            bad = [c for c, t in zip(self.columns, types) if not pa.types.is_floating(t)]
            raise ValueError(f"Parquet columns {bad} are not floating point; pass columns=")
        self.dtype = np.dtype(np.float32 if all(t == pa.float32() for t in types) else np.float64)
        self.shape = (pq.ParquetFile(self.path).metadata.num_rows, len(self.columns))

    def blocks(self, rows):
        """Yield consecutive record batches as (n, D) arrays."""
        import pyarrow.parquet as pq

        with pq.ParquetFile(self.path) as pf:
            for batch in pf.iter_batches(batch_size=rows, columns=self.columns):
                out = np.empty((batch.num_rows, len(self.columns)), dtype=self.dtype)
                for j in range(len(self.columns)):
                    # nulls become NaN, which the first pass reports
                    out[:, j] = batch.column(j).to_numpy(zero_copy_only=False)
                yield out


def as_chunk_source(X):
    """The chunk source for an out-of-core input, or None for in-memory data.

    Out of core: a path to a ``.npy`` (memory-mapped) or ``.parquet`` file, a
    ``numpy.memmap`` of at least :data:`OUT_OF_CORE_MIN_BYTES`, an ``h5py`` or
    ``zarr`` array, or any object with ``shape``, ``dtype`` and ``blocks``.
    """
    if isinstance(X, (str, os.PathLike)):
        path = os.fspath(X)
        if path.endswith(".npy"):
            return NpyFile.open(path)
        if path.endswith((".parquet", ".pq")):
            return ParquetSource(path)
        raise ValueError(f"cannot read {path!r}: expected a .npy or .parquet file")
    if isinstance(X, np.memmap):
        if X.nbytes < OUT_OF_CORE_MIN_BYTES:
            return None
        if isinstance(X.base, mmap.mmap) and X.flags.c_contiguous and X.filename:
            # the whole mapping, as opened: read the file itself
            return NpyFile(X.filename, X.offset, X.shape, X.dtype)
        return ArraySource(X)
    if hasattr(X, "blocks") and hasattr(X, "shape") and hasattr(X, "dtype"):
        return X
    if type(X).__module__.split(".")[0] in ("h5py", "zarr"):
        return ArraySource(X)
    return None


def check_source(source, min_rows=1):
    """Light validation of a source: 2-D, float32 or float64, enough rows."""
    if len(source.shape) != 2:
        raise ValueError(f"Expected 2D data, got an array of shape {source.shape}")
    if source.dtype not in (np.float32, np.float64):
        raise ValueError(
            f"out-of-core data must be float32 or float64; got {source.dtype} "
            "(convert the file, or load it and pass an array)"
        )
    if source.shape[0] < min_rows or source.shape[1] < 1:
        raise ValueError(f"Found array with shape {source.shape}; a minimum of {min_rows} "
                         "sample(s) and 1 feature is required")


def iter_rows(source, step):
    """``(start, block)`` pairs of exactly ``step`` rows (the last may be shorter)."""
    pending, n_pending, start = [], 0, 0
    for block in source.blocks(step):
        pending.append(block)
        n_pending += block.shape[0]
        while n_pending >= step:
            joined = pending[0] if len(pending) == 1 else np.concatenate(pending)
            yield start, joined[:step]
            start += step
            rest = joined[step:]
            pending, n_pending = ([rest] if rest.shape[0] else []), rest.shape[0]
    if n_pending:
        yield start, pending[0] if len(pending) == 1 else np.concatenate(pending)


# ------------------------------------------------------------- spilled state
#: bytes before a released slice that are released too: reading the next slice
#: maps the page-cache pages around a fault (64 KiB on Linux by default), which
#: brings back the tail of the slice released just before
FAULT_AROUND_MARGIN = 256 * 2**10


def drop_pages(view):
    """Release the resident pages of a contiguous slice of a ``numpy.memmap``.

    The data stays in the file (shared mappings only; copy-on-write ones are
    left alone); reading it again faults it back in. Without this the pages of
    a file read once would all count in the process's resident size. Pages up
    to :data:`FAULT_AROUND_MARGIN` before the slice go too (callers walk their
    arrays forwards, so those belong to slices they are done with).
    """
    if not (isinstance(view, np.memmap) and view.flags.c_contiguous and view.nbytes):
        return
    mm = getattr(view, "_mmap", None)
    if mm is None or view.mode == "c" or not hasattr(mm, "madvise"):
        return
    base = np.frombuffer(mm, dtype=np.uint8).__array_interface__["data"][0]
    pos = view.__array_interface__["data"][0] - base
    first = max(0, pos - FAULT_AROUND_MARGIN)
    first -= first % mmap.PAGESIZE
    end = min(len(mm), pos + view.nbytes)
    # shared mapping: written pages stay in the page cache and reach the file
    # from there, so dropping them from this process loses nothing
    mm.madvise(mmap.MADV_DONTNEED, first, end - first)


class SpillFile:
    """A per-point array in an unlinked temporary file, read and written by rows.

    While the fit runs, rows go through ``pread``/``pwrite`` (page cache only,
    nothing mapped into the process); :meth:`array` maps the finished file as
    a ``numpy.memmap`` for the caller. The file has no name: it disappears with
    the last reference to it, whatever happens to the fit.
    """

    def __init__(self, shape, dtype, fill=None):
        self.shape, self.dtype = tuple(int(n) for n in shape), np.dtype(dtype)
        self.row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        self.file = tempfile.TemporaryFile(prefix="truncmix-state-")
        self.file.truncate(self.shape[0] * self.row_bytes)
        if fill is not None:
            step = max(1, FILL_ROWS_BYTES // max(1, self.row_bytes))
            block = np.full((min(step, self.shape[0]), *self.shape[1:]), fill, self.dtype)
            for s in range(0, self.shape[0], step):
                self.write(s, block[: min(step, self.shape[0] - s)])

    def read(self, start, stop):
        """Rows ``start:stop`` as a fresh array."""
        out = np.empty((stop - start, *self.shape[1:]), self.dtype)
        _pread_into(self.file.fileno(), out, start * self.row_bytes)
        return out

    def write(self, start, values):
        """Write ``values`` as the rows from ``start``."""
        view = memoryview(np.ascontiguousarray(values, dtype=self.dtype)).cast("B")
        done, offset = 0, start * self.row_bytes
        while done < len(view):
            done += os.pwrite(self.file.fileno(), view[done:], offset + done)

    def __setitem__(self, rows, values):
        self.write(rows.start, values)

    def __getitem__(self, rows):
        return self.read(*rows.indices(self.shape[0])[:2])

    def array(self):
        """The whole array, memory-mapped (the mapping keeps the file alive)."""
        return np.memmap(self.file, dtype=self.dtype, mode="r+", shape=self.shape)


def spill_array(shape, dtype, fill=None, budget=None):
    """A per-point array: an ndarray when small, else a :class:`SpillFile`.

    Both take ``a[start:stop] = values``; :func:`as_array` gives the result.
    """
    budget = STATE_BUDGET if budget is None else budget
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    if nbytes <= budget or nbytes == 0:
        return np.empty(shape, dtype) if fill is None else np.full(shape, fill, dtype)
    return SpillFile(shape, dtype, fill)


def as_array(a):
    """An ndarray (a ``numpy.memmap`` for a :class:`SpillFile`)."""
    return a.array() if isinstance(a, SpillFile) else a


# ------------------------------------------------------------------ backend
class OnDisk(Backend):
    """Chunks of a chunk source, read on every pass and shifted by ``offset``.

    Parameters
    ----------
    source : chunk source
    weights : ndarray (N,) float64 or None
        None for unit weights (no N-sized array is made).
    offset : ndarray (D,)
    chunk_size : int or None
    """

    def __init__(self, source, weights, offset, chunk_size=None):
        self.source = source
        self.weights = weights
        self.offset = np.asarray(offset, dtype=source.dtype).astype(np.float64)
        self.chunk_size = chunk_size
        self.state = None

    @property
    def data(self):
        return self.source

    def allocate_state(self, shape):
        """Per-point truncated sets (-1: unknown), in a :class:`SpillFile` above :data:`STATE_BUDGET`."""
        self.state = None if shape is None else spill_array(shape, np.int32, fill=-1)

    def _weights(self, start, stop):
        return np.ones(stop - start) if self.weights is None else self.weights[start:stop]

    def _blocks(self, n_components=None):
        """``(start, rows, weights)``: E-step chunks for ``n_components``, else moment blocks."""
        step = (moment_rows(self.n_samples, self.n_features, self.chunk_size)
                if n_components is None
                else rows_per_chunk(self.n_samples, self.n_features, n_components, self.chunk_size))
        for start, block in iter_rows(self.source, step):
            yield start, block, self._weights(start, start + block.shape[0])

    def chunks(self, n_components):
        """Yield the data as :class:`Chunk` objects, in row order."""
        offset = self.offset.astype(self.source.dtype)
        spilled = isinstance(self.state, SpillFile)
        for start, block, w in self._blocks(n_components):
            stop = start + block.shape[0]
            X = np.subtract(block, offset, dtype=self.source.dtype)
            K = None if self.state is None else self.state[start:stop]
            yield Chunk(start, X, w, K)
            if spilled:  # the E-step wrote its new sets into the block read
                self.state.write(start, K)

    def moments(self, full=True):
        """Weighted mean and covariance, float64, in one pass that also validates the data.

        The same blocks and sums as :meth:`InMemory.moments` (about the first
        row), so the results agree with the in-memory fit's to the last bit.
        """
        blocks = self.source.blocks(1)
        ref = np.asarray(next(blocks)[0], dtype=np.float64)
        blocks.close()
        total = sum(FirstPass.of_block(b, w, s, ref, full) for s, b, w in self._blocks())
        total.check(self.source.dtype, self.n_features)
        return total.moments(ref)

    def seed_rows(self, n_components, random_state):
        """Rows to seed from, and their weights (all rows when N is small).

        Above :func:`seed_draws` rows, that many rows are drawn with
        probability proportional to their weight (with replacement, in one
        pass); the sample's weights are the draw counts.
        """
        n_draws = seed_draws(self.n_samples, n_components)
        if self.n_samples <= n_draws:
            parts = list(self._blocks(n_components))
            return (np.concatenate([b for _, b, _ in parts]),
                    np.concatenate([w for _, _, w in parts]))
        W = self.n_samples if self.weights is None else float(self.weights.sum())
        positions = draw_positions(W, n_draws, random_state)
        rows, counts, before = [], [], 0.0
        for start, block, w in self._blocks(n_components):
            total = float(w.sum()) if self.weights is not None else float(block.shape[0])
            lo, hi = np.searchsorted(positions, [before, before + total])
            if hi > lo:
                local, cnt = pick_rows(None if self.weights is None else w, block.shape[0],
                                       positions[lo:hi] - before)
                rows.append(np.array(block[local]))
                counts.append(cnt.astype(np.float64))
            before += total
        return np.concatenate(rows), np.concatenate(counts)


class OnDiskData(FitData):
    """A chunk source as the estimators fit it (see :class:`~truncmix.backends.base.FitData`).

    Parameters
    ----------
    source : chunk source
    weights : ndarray (N,) float64 or None
    chunk_size : int or None
    """

    def __init__(self, source, weights, chunk_size=None):
        super().__init__(source, weights, chunk_size, source.shape, source.dtype)

    def backend(self, offset, centre=False):
        # no centred copy out of core: every chunk is shifted as it is read
        return OnDisk(self.data, self.weights, offset, self.chunk_size)

    def new_labels(self):
        return spill_array((self.n_samples,), np.int64)

    def final_pass(self, run, mixture, backend):
        stats, labels = super().final_pass(run, mixture, backend)
        return stats, as_array(labels)
