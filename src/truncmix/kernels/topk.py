"""Top-C' selection with a log-sum-exp normalisation (numba).

Two entry points share one row routine:

- :func:`top_k_softmax_into` selects from log-joints already computed (any
  covariance type);
- :func:`fused_estep_into` computes the log-joints itself, tile by tile: one small
  matrix product per tile of rows (single-threaded BLAS, tiles in parallel),
  then the selection while the tile is still in cache. No n x C array is
  written to memory unless every component is kept (exact EM), where the
  posteriors are the output.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .vexp import exp_shifted_into


@nb.njit(inline="always")
def _select_row(row, k, K_out, q_out):  # pragma: no cover - compiled
    """Keep the k largest of ``row``; write indices and softmax; return the lse.

    Ties keep the smaller index first; the output is ordered best first.
    """
    C = row.shape[0]
    vals = np.empty(k)
    idx = np.empty(k, np.int32)
    filled = 0
    for c in range(C):
        v = row[c]
        if filled < k:
            pos = filled
            filled += 1
        elif v > vals[k - 1]:
            pos = k - 1
        else:
            continue
        # insertion: move strictly smaller values down; equal values stay ahead
        while pos > 0 and vals[pos - 1] < v:
            vals[pos] = vals[pos - 1]
            idx[pos] = idx[pos - 1]
            pos -= 1
        vals[pos] = v
        idx[pos] = c
    for j in range(k):
        q_out[j] = vals[j]
        K_out[j] = idx[j]
    return _softmax_row(q_out)


#: the argmax of a long row runs in LANES independent lanes (vectorisable);
#: for short rows the plain scan is faster
LANES = 8
LANE_MIN_COMPONENTS = 256


@nb.njit(inline="always")
def _argmax_lanes(g, bias, tops, idxs):  # pragma: no cover - compiled
    """``argmax_c g[c] + bias[c]`` and its value; ties go to the smaller index."""
    C = g.shape[0]
    for lane in range(LANES):
        tops[lane] = -np.inf
        idxs[lane] = 0
    main = C - C % LANES
    for c0 in range(0, main, LANES):
        for lane in range(LANES):
            v = np.float64(g[c0 + lane]) + bias[c0 + lane]
            better = v > tops[lane]
            tops[lane] = v if better else tops[lane]
            idxs[lane] = (c0 + lane) if better else idxs[lane]
    top = -np.inf
    best = 0
    for lane in range(LANES):
        if tops[lane] > top or (tops[lane] == top and idxs[lane] < best):
            top = tops[lane]
            best = idxs[lane]
    for c in range(main, C):
        v = np.float64(g[c]) + bias[c]
        if v > top:
            top = v
            best = c
    return best, top


@nb.njit(inline="always")
def _softmax_row(row):  # pragma: no cover - compiled
    """Normalise ``row`` in place to exp(row - lse); return the lse."""
    C = row.shape[0]
    top = -np.inf
    for c in range(C):
        if row[c] > top:
            top = row[c]
    total = 0.0
    for c in range(C):
        e = np.exp(row[c] - top) if row[c] > -np.inf else 0.0
        row[c] = e
        total += e
    for c in range(C):
        row[c] /= total
    return top + np.log(total)


@nb.njit(inline="always")
def _softmax_dense(row, scratch, bits):  # pragma: no cover - compiled
    """:func:`_softmax_row` for a whole row of C entries, with the vectorised exp."""
    C = row.shape[0]
    top = -np.inf
    for c in range(C):
        top = max(top, row[c])
    total = exp_shifted_into(row, top, scratch, bits)
    for c in range(C):
        row[c] = scratch[c] / total
    return top + np.log(total)


@nb.njit(parallel=True, cache=True, nogil=True)
def top_k_softmax_into(log_joint, k, K, q, lse):  # pragma: no cover - compiled
    """Keep the ``k`` largest entries of each row of ``log_joint``.

    IN:  log_joint (n, C) float64, k int.
    OUT: K (n, k) int32, best first, ties to the smaller index;
         q (n, k) float64, the softmax over the kept entries;
         lse (n,) float64, the log-sum-exp over the kept entries.
    """
    n = log_joint.shape[0]
    for i in nb.prange(n):
        lse[i] = _select_row(log_joint[i], k, K[i], q[i])


def top_k_softmax(log_joint, k):
    """Allocate the outputs and run :func:`top_k_softmax_into`."""
    log_joint = np.ascontiguousarray(log_joint, dtype=np.float64)
    n = log_joint.shape[0]
    K = np.empty((n, k), np.int32)
    q = np.empty((n, k))
    lse = np.empty(n)
    top_k_softmax_into(log_joint, k, K, q, lse)
    return K, q, lse


@nb.njit(parallel=True, cache=True, nogil=True)
def fused_estep_into(X, B, bias, row_coef, cap, squares, k, tile, K, q, lse):  # pragma: no cover
    """Log-joints by tiled matrix products, then top-k and softmax per row.

    For each row x the log-joint of component c is

        l(c, x) = min(a(x) . B[:, c] + bias[c] + row_coef[c] ||x||^2, cap[c])

    with ``a(x) = x`` or, if ``squares``, ``a(x) = [x, x * x]``. The cap is the
    log-joint at zero distance: it clamps the rounding of the expanded form.

    IN:  X (n, D) float32/float64, C-contiguous; B (D or 2D, C), X's dtype;
         bias, row_coef, cap (C,) float64; squares bool; k int (k = C: dense);
         tile int, rows per matrix product.
    OUT: dense (k = C): q (n, C) posteriors, K unused;
         else K (n, k) int32 best first, q (n, k);
         lse (n,) float64 log-sum-exp over the kept components.
    """
    n, D = X.shape
    C = B.shape[1]
    dense = k == C
    need_sq = False
    uniform = True
    for c in range(C):
        if row_coef[c] != 0.0:
            need_sq = True
        if row_coef[c] != row_coef[0]:
            uniform = False
    n_tiles = (n + tile - 1) // tile
    for t in nb.prange(n_tiles):
        s = t * tile
        e = min(n, s + tile)
        if squares:
            A = np.empty((e - s, 2 * D), X.dtype)
            for i in range(e - s):
                for d in range(D):
                    v = X[s + i, d]
                    A[i, d] = v
                    A[i, D + d] = v * v
            G = np.dot(A, B)
        else:
            G = np.dot(X[s:e], B)
        row = np.empty(C)
        bits = np.empty(C, np.int64)
        tops = np.empty(LANES)
        idxs = np.empty(LANES, np.int64)
        for i in range(e - s):
            xsq = 0.0
            if need_sq:
                for d in range(D):
                    xd = np.float64(X[s + i, d])
                    xsq += xd * xd
            if dense:
                out = q[s + i]
                for c in range(C):
                    v = np.float64(G[i, c]) + bias[c] + row_coef[c] * xsq
                    out[c] = v if v < cap[c] else cap[c]
                lse[s + i] = _softmax_dense(out, row, bits)
            elif k == 1 and uniform:
                # the row term is the same for every component: rank without it
                if C >= LANE_MIN_COMPONENTS:
                    best, top = _argmax_lanes(G[i], bias, tops, idxs)
                else:
                    best = 0
                    top = -np.inf
                    for c in range(C):
                        v = np.float64(G[i, c]) + bias[c]
                        if v > top:
                            top = v
                            best = c
                v = top + row_coef[0] * xsq
                K[s + i, 0] = best
                q[s + i, 0] = 1.0
                lse[s + i] = v if v < cap[best] else cap[best]
            else:
                for c in range(C):
                    v = np.float64(G[i, c]) + bias[c] + row_coef[c] * xsq
                    row[c] = v if v < cap[c] else cap[c]
                lse[s + i] = _select_row(row, k, K[s + i], q[s + i])


@nb.njit(parallel=True, cache=True, nogil=True)
def fused_full_estep_into(X, P, M, bias, k, tile, K, q, lse):  # pragma: no cover
    """As :func:`fused_estep_into`, for a full covariance per component.

    ``l(c, x) = bias[c] - ||x P_c - M[c]||^2 / 2`` with all whitenings stacked in
    one matrix ``P = [P_1 ... P_C]`` (D, C D): one product per tile serves
    every component.

    IN:  X (n, D); P (D, C*D) in X's dtype; M (C, D) float64 (= mu_c P_c);
         bias (C,) float64; k; tile.
    OUT: as :func:`fused_estep_into`.
    """
    n, D = X.shape
    C = M.shape[0]
    dense = k == C
    n_tiles = (n + tile - 1) // tile
    for t in nb.prange(n_tiles):
        s = t * tile
        e = min(n, s + tile)
        G = np.dot(X[s:e], P)
        row = np.empty(C)
        scratch = np.empty(C)
        bits = np.empty(C, np.int64)
        for i in range(e - s):
            out = q[s + i] if dense else row
            for c in range(C):
                acc = 0.0
                base = c * D
                for d in range(D):
                    y = np.float64(G[i, base + d]) - M[c, d]
                    acc += y * y
                out[c] = bias[c] - 0.5 * acc
            if dense:
                lse[s + i] = _softmax_dense(out, scratch, bits)
            else:
                lse[s + i] = _select_row(out, k, K[s + i], q[s + i])


@nb.njit(cache=True, nogil=True)
def scaled_transpose(means, variances):  # pragma: no cover - compiled
    """``(means / variances[:, None]).T`` as a C-contiguous (D, C) float64 array.

    Blocks of 64 components: each block's rows are read once and its columns
    written in 64-element runs. NumPy's strided copy of the transpose took
    5.6 ms at C = 8 000, D = 64, this 0.7 ms (the same values).
    """
    C, D = means.shape
    out = np.empty((D, C))
    for c0 in range(0, C, 64):
        c1 = min(C, c0 + 64)
        for d in range(D):
            for c in range(c0, c1):
                out[d, c] = means[c, d] / variances[c]
    return out


def tile_rows(n_components):
    """Rows per tile: the tile's products (``n_columns`` each) should stay in L2."""
    return int(min(1024, max(8, (1 << 18) // max(n_components, 1))))


@nb.njit(parallel=True, cache=True, nogil=True)
def fused_dense_stats_into(X, weights, B, bias, row_coef, cap, squares, vector, tile, n_blocks,
                           lse, labels, resp, sums):  # pragma: no cover
    """Exact E-step and its statistics in one pass, without an n x C output.

    Each tile of rows gets its log-joints as in :func:`fused_estep_into`, their
    softmax (the posteriors, kept only for the tile), and adds
    ``sum_n w_n q_n(c) z_n`` to its block's sums by one product, with
    ``z_n = [x_n, x_n^2]`` (``vector``: per-feature squares) or
    ``[x_n, ||x_n||^2]``.

    IN:  X (n, D); weights (n,) float64; B, bias, row_coef, cap, squares as in
         :func:`fused_estep_into`; vector bool; tile rows per product;
         n_blocks row blocks (a function of n only: reproducible sums).
    OUT: lse (n,); labels (n,) int64, each row's most probable component;
         resp (n_blocks, C) and sums (n_blocks, C, D + D or D + 1), float64,
         added to.
    """
    n, D = X.shape
    C = B.shape[1]
    W = sums.shape[2]
    need_sq = False
    for c in range(C):
        if row_coef[c] != 0.0:
            need_sq = True
    for blk in nb.prange(n_blocks):
        s0 = (n * blk) // n_blocks
        e0 = (n * (blk + 1)) // n_blocks
        q = np.empty((tile, C))
        Z = np.empty((tile, W))
        scratch = np.empty(C)
        bits = np.empty(C, np.int64)
        A = np.empty((tile, 2 * D), X.dtype) if squares else np.empty((0, 0), X.dtype)
        for s in range(s0, e0, tile):
            e = min(e0, s + tile)
            m = e - s
            if squares:
                for i in range(m):
                    for d in range(D):
                        v = X[s + i, d]
                        A[i, d] = v
                        A[i, D + d] = v * v
                G = np.dot(A[:m], B)
            else:
                G = np.dot(X[s:e], B)
            for i in range(m):
                xsq = 0.0
                for d in range(D):
                    xd = np.float64(X[s + i, d])
                    Z[i, d] = xd
                    if vector:
                        Z[i, D + d] = xd * xd
                    xsq += xd * xd
                if not vector:
                    Z[i, D] = xsq
                row = q[i]
                for c in range(C):
                    v = np.float64(G[i, c]) + bias[c]
                    if need_sq:
                        v += row_coef[c] * xsq
                    row[c] = v if v < cap[c] else cap[c]
                best = 0
                for c in range(1, C):
                    if row[c] > row[best]:
                        best = c
                labels[s + i] = best
                lse[s + i] = _softmax_dense(row, scratch, bits)
                w = weights[s + i]
                for c in range(C):
                    row[c] *= w
                    resp[blk, c] += row[c]
            part = np.dot(q[:m].T, Z[:m])
            for c in range(C):
                for j in range(W):
                    sums[blk, c, j] += part[c, j]


@nb.njit(cache=True, nogil=True)
def kth_lowest(values, weights, k):  # pragma: no cover - compiled
    """The k-th lowest of ``values`` over the rows of positive weight (+inf if fewer).

    One pass with a bounded max-heap of the k lowest so far: a value at or above
    the heap's top is dismissed by one comparison, so the pass costs O(n) for
    the few values that enter.

    IN:  values (n,) float64; weights (n,) float64; k >= 1.
    OUT: float.
    """
    heap = np.empty(k)
    m = 0
    for i in range(values.shape[0]):
        if not weights[i] > 0.0:
            continue
        v = values[i]
        if m < k:
            # sift up
            j = m
            m += 1
            while j > 0:
                parent = (j - 1) // 2
                if heap[parent] >= v:
                    break
                heap[j] = heap[parent]
                j = parent
            heap[j] = v
        elif v < heap[0]:
            # replace the top, sift down
            j = 0
            while True:
                child = 2 * j + 1
                if child >= k:
                    break
                if child + 1 < k and heap[child + 1] > heap[child]:
                    child += 1
                if heap[child] <= v:
                    break
                heap[j] = heap[child]
                j = child
            heap[j] = v
    return heap[0] if m == k else np.inf
