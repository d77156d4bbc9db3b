"""The exhaustive E-step: score every component, keep the best C'."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import replace

import numpy as np
from scipy.special import logsumexp

from .._constants import MOMENT_SCALAR, MOMENT_VECTOR
from .base import ChunkResult, EStep


#: rows per tile, at least, of a call run on one thread (see ``serial_evals``)
SERIAL_TILE = 128


class Exhaustive(EStep):
    """Score all C components and keep each point's best C'.

    With ``n_active=None`` (or C) this is the exact E-step of EM and the free
    energy is the log-likelihood; with ``n_active=1`` and an isotropic,
    equal-weight mixture it is Lloyd's assignment step.

    For every covariance type but "full" the scores come from the fused kernel
    (:func:`truncmix.kernels.topk.fused_estep_into`): one matrix product per
    tile of rows, selection while the tile is in cache. "full" needs a product
    per component and goes through :meth:`Mixture.log_joint`.

    Parameters
    ----------
    n_active : int or None
    dense_stats : bool
        For exact EM (every component kept) with the isotropic, spherical or
        diag types, compute the M-step's statistics tile by tile in the same
        kernel and keep no n x C posteriors (:func:`fused_dense_stats_into`);
        the fit's E-step uses this, callers that need ``q`` do not.
    cache_form : bool
        Keep the last mixture's linear form (its coefficients in the data's
        dtype) for the next call with the same mixture object. For callers
        that search a few rows per chunk, such as the neighbourhood search's
        rescues: at C = 8 000, D = 64 making the form took about 4 ms, more
        than scoring a hundred rows. The mixture must not be changed in place
        in between (the fit never does).
    serial_evals : int
        Calls of at most this many evaluations (rows x C) run on one thread,
        in tiles of at least :data:`SERIAL_TILE` rows: for a few rows the
        parallel region's start costs more than their work.
    """

    def __init__(self, n_active, dense_stats=False, cache_form=False, serial_evals=0):
        super().__init__(n_active)
        self.dense_stats = dense_stats
        self.cache_form = cache_form
        self.serial_evals = serial_evals
        self._cached = None

    def _linear_form(self, mixture, dtype):
        """``mixture``'s linear form, with ``B`` in ``dtype``; cached if asked."""
        if self.cache_form and self._cached is not None:
            held, held_dtype, form = self._cached
            if held is mixture and held_dtype == dtype:
                return form
        form = mixture.covariance.linear_form(mixture.means, mixture.log_weights)
        if form is not None:
            form = replace(form, B=np.ascontiguousarray(form.B, dtype=dtype))
        if self.cache_form:
            self._cached = (mixture, dtype, form)  # holds the mixture: no id reuse
        return form

    def update(self, X, mixture, K_prev, start=0, weights=None):
        n, C = X.shape[0], mixture.n_components
        k = self.kept(C)
        cov = mixture.covariance
        form = self._linear_form(mixture, X.dtype)
        if form is None:
            stacked = cov.stacked_form(mixture.means, mixture.log_weights)
            if stacked is None:
                return self._from_log_joint(mixture.log_joint(X), k)
            return self._full(X, stacked, k, C)
        from .._threads import one_numba_thread, single_threaded_blas
        from ..kernels.topk import fused_estep_into, tile_rows

        if (self.dense_stats and k == C and form.transform is None
                and cov.moment in (MOMENT_SCALAR, MOMENT_VECTOR)):
            return self._dense_stats(X, form, cov.moment, mixture.means, weights)
        if form.transform is not None:
            X = np.ascontiguousarray(X @ form.transform.astype(X.dtype, copy=False))
        dense = k == C
        K = np.empty((1, 1) if dense else (n, k), np.int32)
        q = np.empty((n, C) if dense else (n, k))
        lse = np.empty(n)
        tile = tile_rows(C)
        serial = n * C <= self.serial_evals
        if serial:
            # one thread streams B once per tile: larger tiles (at C = 8 000,
            # 100 rows: 1.5 ms in one tile of 128 against 2.2 ms in tiles of 32)
            tile = max(tile, SERIAL_TILE)
        # tiles run in parallel threads, each with a single-threaded product
        with single_threaded_blas(), (one_numba_thread() if serial else nullcontext()):
            fused_estep_into(
                np.ascontiguousarray(X), form.B, form.bias, form.row_coef, form.cap,
                form.squares, k, tile, K, q, lse,
            )
        return ChunkResult(None if dense else K, q, lse, n * C)

    @staticmethod
    def _dense_stats(X, form, moment, anchors, weights):
        """Exact E-step with its statistics, tile by tile (no n x C posteriors)."""
        from .._threads import single_threaded_blas
        from ..kernels.bounds import pass_blocks
        from ..kernels.topk import fused_dense_stats_into, tile_rows
        from ..stats import moments_about

        n, D = X.shape
        C = form.B.shape[1]
        vector = moment == MOMENT_VECTOR
        blocks = pass_blocks(n)
        weights = np.ones(n) if weights is None else np.ascontiguousarray(weights, np.float64)
        lse = np.empty(n)
        best = np.empty(n, np.int64)
        resp = np.zeros((blocks, C))
        sums = np.zeros((blocks, C, 2 * D if vector else D + 1))
        with single_threaded_blas():
            fused_dense_stats_into(
                np.ascontiguousarray(X), weights, np.ascontiguousarray(form.B, dtype=X.dtype),
                form.bias, form.row_coef, form.cap, form.squares, vector, tile_rows(C), blocks,
                lse, best, resp, sums,
            )
        stats = moments_about(resp.sum(axis=0), sums.sum(axis=0), anchors, moment)
        return ChunkResult(None, None, lse, n * C, moments=(moment, *stats), best=best)

    @staticmethod
    def _full(X, stacked, k, C):
        """Fused E-step for one full covariance per component."""
        from .._threads import single_threaded_blas
        from ..kernels.topk import fused_full_estep_into, tile_rows

        P, M, bias = stacked
        n = X.shape[0]
        dense = k == C
        K = np.empty((1, 1) if dense else (n, k), np.int32)
        q = np.empty((n, C) if dense else (n, k))
        lse = np.empty(n)
        with single_threaded_blas():
            fused_full_estep_into(
                np.ascontiguousarray(X), P.astype(X.dtype, copy=False), M, bias, k,
                tile_rows(P.shape[1]), K, q, lse,
            )
        return ChunkResult(None if dense else K, q, lse, n * C)

    @staticmethod
    def _from_log_joint(log_joint, k):
        n, C = log_joint.shape
        if k == C:
            lse = logsumexp(log_joint, axis=1)
            q = np.exp(log_joint - lse[:, None])
            return ChunkResult(None, q, lse, n * C)
        if k == 1:
            best = np.argmax(log_joint, axis=1)
            lse = log_joint[np.arange(n), best]
            return ChunkResult(best.astype(np.int32)[:, None], np.ones((n, 1)), lse, n * C)
        from ..kernels.topk import top_k_softmax

        K, q, lse = top_k_softmax(log_joint, k)
        return ChunkResult(K, q, lse, n * C)
