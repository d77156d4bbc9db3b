"""Fitting on a Dask cluster: blocks of rows stay on the workers, statistics travel.

Each pass builds one graph: the E-step (mixture, strategy and whatever it keeps,
e.g. a neighbour table) is one key that every block task depends on, so the
scheduler sends it once to each worker; every block computes its
:class:`~truncmix.stats.SufficientStats` and its new truncated sets; the
statistics are summed by a tree reduction and fetched, the truncated sets are
persisted as a Dask array that stays on the workers. The graph runs on the
active ``distributed.Client`` if there is one, else on Dask's default scheduler.

If a worker dies, Dask recomputes what it held from the lineage (the blocks of
the state go back to the pass that made them); a task that keeps killing
workers ends the fit with ``distributed.KilledWorker``.

This module imports Dask; :mod:`truncmix` imports it only when fitting or
scoring a Dask array.
"""

from __future__ import annotations

import sys
import threading

import dask
import dask.array as da
import numpy as np
from dask import delayed

from .. import _validation as v
from .base import (Backend, Chunk, FirstPass, FitData, draw_positions, pick_rows,
                   rows_per_chunk, seed_draws)

#: fan-in of the tree reduction of the statistics
SPLIT_EVERY = 8

#: one block at a time per process: the E-step kernels already use all of the
#: process's threads, and concurrent parallel kernels would oversubscribe them
_BLOCK_LOCK = threading.Lock()


def _sum(*parts):
    total = parts[0]
    for p in parts[1:]:
        total = total + p
    return total


def _sum_first(*pairs):
    return _sum(*[p[0] for p in pairs])


def tree_sum(parts):
    """A Delayed of ``sum(parts)`` reduced in a tree of fan-in :data:`SPLIT_EVERY`."""
    parts = list(parts)
    while len(parts) > 1:
        parts = [delayed(_sum, pure=True)(*parts[i : i + SPLIT_EVERY])
                 for i in range(0, len(parts), SPLIT_EVERY)]
    return parts[0]


def _result(persisted):
    """The value of a persisted Delayed: straight from its future on a cluster
    (no second graph to submit), else computed."""
    futures = []
    if "distributed" in sys.modules:
        from distributed import futures_of

        futures = futures_of(persisted)
    return futures[0].result() if len(futures) == 1 else persisted.compute()


def _limit_threads():
    """On a ``distributed`` worker, let the kernels use the worker's threads only."""
    try:
        from distributed import get_worker

        n = get_worker().state.nthreads
    except (ImportError, ValueError, AttributeError):
        return
    import numba

    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))


def _block_stats(fn, X, weights, K, start, offset, chunk_size, n_components, width=None):
    """Run ``fn`` (chunk -> SufficientStats) over one block; return (stats, new K block).

    ``fn`` writes each chunk's new truncated sets into ``chunk.K`` (the
    driver's ``update_state``); the chunks here are views of a private copy of
    the block's state, which is returned as the block of the next state. The
    input block is never written: Dask may need it again to recompute. A
    missing block with a ``width`` is a fresh one (-1: unknown).
    """
    if K is None:
        K = None if width is None else np.full((X.shape[0], width), -1, np.int32)
    else:
        K = np.array(K, dtype=np.int32)
    n, D = X.shape
    off = offset.astype(X.dtype)
    step = rows_per_chunk(n, D, n_components, chunk_size)
    total = 0
    with _BLOCK_LOCK:
        _limit_threads()
        for s in range(0, n, step):
            e = min(s + step, n)
            w = np.ones(e - s) if weights is None else np.asarray(weights[s:e], dtype=np.float64)
            chunk = Chunk(int(start) + s, np.subtract(X[s:e], off, dtype=X.dtype), w,
                          None if K is None else K[s:e])
            total = total + fn(chunk)
    return total, K


class BlockState:
    """The per-point state of a :class:`DaskBackend`: one Delayed block per row block.

    The blocks are persisted on the workers after each pass (None: not made
    yet, all -1); :meth:`array` is the same state as a Dask array.
    """

    def __init__(self, shape, blocks):
        self.shape = tuple(shape)
        self.blocks = list(blocks)

    def array(self, sizes):
        """The state as a Dask array of the given row blocks."""
        k = self.shape[1]
        return da.concatenate([
            da.full((int(n), k), -1, dtype=np.int32) if b is None
            else da.from_delayed(b, shape=(int(n), k), dtype=np.int32)
            for b, n in zip(self.blocks, sizes)
        ])


class DaskBackend(Backend):
    """Blocks of rows of a Dask array, each shifted by ``offset`` where it lives.

    Parameters
    ----------
    X : dask.array.Array (N, D)
        One block along the features.
    weights : dask.array.Array (N,) or None
        Chunked as X's rows; None for unit weights.
    offset : ndarray (D,)
    chunk_size : int or None
        Rows per E-step chunk inside a block.
    """

    def __init__(self, X, weights, offset, chunk_size=None):
        self.X = X
        self.weights = weights
        self.offset = np.asarray(offset, dtype=X.dtype).astype(np.float64)
        self.chunk_size = chunk_size
        self.state = None
        sizes = X.chunks[0]
        self.starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self.sizes = np.asarray(sizes, dtype=np.int64)

    def allocate_state(self, shape):
        """Per-point truncated sets (-1: unknown), one block per row block of X."""
        self.state = None if shape is None else BlockState(shape, [None] * len(self.sizes))

    def blocks(self):
        """``(X block, weights block or None, start)`` Delayed triples, in row order."""
        xs = self.X.to_delayed().ravel()
        ws = [None] * len(xs) if self.weights is None else self.weights.to_delayed().ravel()
        return list(zip(xs, ws, self.starts))

    def map_reduce(self, fn, n_components):
        """Run ``fn`` on every block where it lives; persist the new state; return the sum."""
        fn_key = delayed(fn, pure=False)  # one key: sent once per worker, not once per block
        width = None if self.state is None else self.state.shape[1]
        ks = [None] * len(self.sizes) if self.state is None else self.state.blocks
        parts = [
            delayed(_block_stats, pure=False)(
                fn_key, x, w, k, start, self.offset, self.chunk_size, n_components, width)
            for (x, w, start), k in zip(self.blocks(), ks)
        ]
        # the first level of the tree takes the statistics out of the (stats, K) pairs
        total = tree_sum([delayed(_sum_first, pure=False)(*parts[i : i + SPLIT_EVERY])
                          for i in range(0, len(parts), SPLIT_EVERY)])
        if self.state is None:
            return total.compute()
        # the state stays on the workers, block by block; only the statistics
        # come back. No graph optimisation: it would rename (and rerun) tasks.
        total, *blocks = dask.persist(total, *[p[1] for p in parts], optimize_graph=False)
        self.state = BlockState(self.state.shape, blocks)
        return _result(total)

    def labels(self, estep, mixture):
        """Labels of the last pass: each point's best kept component (a persisted Dask array)."""
        if self.state is not None:
            return self.state.array(self.sizes)[:, 0].astype(np.int64).persist()
        # every component kept: the label is the argmax of the exact posterior,
        # as in the in-memory final pass
        return map_rows(self.X, lambda x, m: estep.update(x, m, None).labels, mixture,
                        lambda m, dtype: self.offset, (), np.int64, self.n_features,
                        shifted=True).persist()

    def moments(self, full=True):
        """Weighted mean and covariance, float64, in one tree-reduced pass that validates."""
        ref = np.asarray(self.X[0].compute(), dtype=np.float64)
        total = tree_sum([delayed(FirstPass.of_block)(x, w, s, ref, full)
                          for x, w, s in self.blocks()]).compute()
        total.check(self.X.dtype, self.n_features)
        return total.moments(ref)

    def seed_rows(self, n_components, random_state):
        """Rows to seed from and their weights, as :meth:`OnDisk.seed_rows`."""
        n_draws = seed_draws(self.n_samples, n_components)
        if self.n_samples <= n_draws:
            X, w = dask.compute(self.X, self.weights)
            return X, (np.ones(self.n_samples) if w is None else w)
        if self.weights is None:
            totals = self.sizes.astype(np.float64)
        else:
            totals = np.array(dask.compute(*[delayed(np.sum)(w) for _, w, _ in self.blocks()]))
        cum = np.concatenate([[0.0], np.cumsum(totals)])
        positions = draw_positions(cum[-1], n_draws, random_state)
        picks = []
        for b, (x, w, _) in enumerate(self.blocks()):
            lo, hi = np.searchsorted(positions, [cum[b], cum[b + 1]])
            if hi > lo:
                picks.append(delayed(_pick)(x, w, positions[lo:hi] - cum[b]))
        picked = dask.compute(*picks)
        return (np.concatenate([p[0] for p in picked]),
                np.concatenate([p[1] for p in picked]))


def _pick(X, weights, positions):
    rows, counts = pick_rows(weights, X.shape[0], positions)
    return np.array(X[rows]), counts.astype(np.float64)


def _apply_rows(X, fn, mixture, offset):
    with _BLOCK_LOCK:
        _limit_threads()
        return fn(np.subtract(X, offset.astype(X.dtype), dtype=X.dtype), mixture)


def check_array(X, n_features=None):
    """Light validation of a Dask array: 2-D, float32/64, known chunks; one block of features."""
    if X.ndim != 2:
        raise ValueError(f"Expected 2D data, got a Dask array of shape {X.shape}")
    if X.dtype not in (np.float32, np.float64):
        raise ValueError(f"Dask input must be float32 or float64; got {X.dtype} (use X.astype)")
    if any(np.isnan(c) for c in X.chunks[0]):
        raise ValueError("X has unknown chunk sizes; call X.compute_chunk_sizes() first")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"X has {X.shape[1]} features, but the model is expecting "
                         f"{n_features} features as input.")
    return X if X.numblocks[1] == 1 else X.rechunk({1: -1})


def map_rows(X, fn, mixture, offset_of, out_shape, dtype, n_features, shifted=False):
    """``fn(shifted block, shifted mixture)`` on every block: a Dask array of the results.

    ``offset_of(mixture, dtype)`` gives the scoring shift (the estimators'
    rule); with ``shifted`` the mixture is already in those coordinates.
    """
    X = check_array(X, n_features)
    offset = np.asarray(offset_of(mixture, X.dtype), dtype=np.float64)
    m = mixture if shifted else mixture.shifted(offset)
    if out_shape == ():
        return X.map_blocks(_apply_rows, fn, m, offset, dtype=dtype, drop_axis=1)
    return X.map_blocks(_apply_rows, fn, m, offset, dtype=dtype,
                        chunks=(X.chunks[0], *[(n,) for n in out_shape]))


class DaskData(FitData):
    """A Dask array as the estimators fit it (see :class:`~truncmix.backends.base.FitData`).

    Parameters
    ----------
    X : dask.array.Array (N, D), float32 or float64
    sample_weight : None, array-like (N,) or dask.array.Array (N,)
    chunk_size : int or None
    """

    def __init__(self, X, sample_weight=None, chunk_size=None):
        X = check_array(X)
        super().__init__(X, None, chunk_size, X.shape, X.dtype)
        rows = (X.chunks[0],)
        if isinstance(sample_weight, da.Array):
            if sample_weight.shape != (self.n_samples,):
                raise ValueError(f"sample_weight.shape == {sample_weight.shape}, expected "
                                 f"{(self.n_samples,)}: one weight per sample")
            # checked for finite, non-negative values in the first pass
            self.weights = sample_weight.astype(np.float64).rechunk(rows)
        elif sample_weight is not None:
            w = v.check_sample_weight(sample_weight, self.n_samples)
            self.weights = da.from_array(w, chunks=rows)

    def backend(self, offset, centre=False):
        # blocks are shifted where they live, on every pass: no centred copy
        return DaskBackend(self.data, self.weights, offset, self.chunk_size)

    def final_pass(self, run, mixture, backend):
        stats = run.finish(backend=backend, mixture=mixture)
        return stats, backend.labels(run.estep, mixture)
