"""Scatter-accumulation of sufficient statistics for sparse posteriors (numba)."""

from __future__ import annotations

import numba as nb
import numpy as np

from .._constants import MOMENT_MATRIX, MOMENT_SCALAR, MOMENT_VECTOR


#: reassociation lets the sums over features vectorise (the squared norm of the
#: scalar moment was a chain of dependent additions): at C = 8 000, D = 64 a
#: block of 107 000 rows took 7 instead of 13 ms, at C = 1 000 3 instead of 6
_FAST = {"reassoc", "contract"}


@nb.njit(cache=True, nogil=True, fastmath=_FAST)
def accumulate_into(X, weights, K, q, anchors, moment, shared, resp, first, second):  # pragma: no cover
    """Add the weighted moments of ``x - anchors[c]`` for every kept (n, c).

    IN:  X (n, D) float32/64; weights (n,); K (n, k) int32; q (n, k);
         anchors (C, D) float64; moment: MOMENT_* code; shared: sum the
         MOMENT_MATRIX outer products over components (into second[0]).
    OUT: resp (C,), first (C, D), second (C, 1, 1) | (C, D, 1) | (C or 1, D, D)
         for the three moments, all float64, added to (not overwritten).
    """
    n, D = X.shape
    k = K.shape[1]
    diff = np.empty(D)
    for i in range(n):
        wi = weights[i]
        if wi == 0.0:
            continue
        for j in range(k):
            r = wi * q[i, j]
            if r == 0.0:
                continue
            c = K[i, j]
            resp[c] += r
            if moment == MOMENT_SCALAR:
                s = 0.0
                for d in range(D):
                    t = X[i, d] - anchors[c, d]
                    first[c, d] += r * t
                    s += t * t
                second[c, 0, 0] += r * s
            elif moment == MOMENT_VECTOR:
                for d in range(D):
                    t = X[i, d] - anchors[c, d]
                    first[c, d] += r * t
                    second[c, d, 0] += r * t * t
            else:
                for d in range(D):
                    diff[d] = X[i, d] - anchors[c, d]
                    first[c, d] += r * diff[d]
                t = 0 if shared else c
                for a in range(D):
                    ra = r * diff[a]
                    for b in range(a, D):
                        second[t, a, b] += ra * diff[b]


@nb.njit(cache=True, nogil=True, fastmath=_FAST)
def centred_sums_into(X, weights, ref, s1, s2):  # pragma: no cover - compiled
    """Add ``sum_n w_n (x_n - ref)`` to ``s1`` and ``sum_n w_n (x_n - ref)^2`` to ``s2``.

    Per feature, in float64, one pass without temporaries (NumPy's
    ``(X - ref) * w`` and a column sum took 68 ms at 1 000 000 x 16 in
    blocks, this about 10 ms). IN: X (n, D) float32/64; weights (n,) float64,
    empty for unit weights; ref (D,) float64. OUT: s1, s2 (D,) float64.
    """
    n, D = X.shape
    unit = weights.shape[0] == 0
    for i in range(n):
        w = 1.0 if unit else weights[i]
        for d in range(D):
            t = np.float64(X[i, d]) - ref[d]
            s1[d] += w * t
            s2[d] += w * t * t


def accumulate(X, weights, K, q, anchors, moment, shared, n_components):
    """Allocate float64 statistics and run :func:`accumulate_into`.

    Returns ``(resp, first, second)`` with the same meaning and shapes as
    :func:`truncmix.kernels._reference.accumulate`.
    """
    C, D = n_components, X.shape[1]
    X = np.ascontiguousarray(X)
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    K = np.ascontiguousarray(K, dtype=np.int32)
    q = np.ascontiguousarray(q, dtype=np.float64)
    anchors = np.ascontiguousarray(anchors, dtype=np.float64)
    # one 3-D layout for every moment, so the kernel compiles once per dtype
    if moment == MOMENT_SCALAR:
        shape = (C, 1, 1)
    elif moment == MOMENT_VECTOR:
        shape = (C, D, 1)
    else:
        shape = (1 if shared else C, D, D)
    n = X.shape[0]
    # Row blocks accumulate into their own buffers on threads (the kernel
    # releases the GIL) and are summed in block order: the block count depends
    # only on n and C, so results do not depend on the number of threads.
    n_blocks = max(1, min(BLOCKS, n // MIN_BLOCK_ROWS, n // (MIN_ROWS_PER_COMPONENT * C)))
    if 8 * n_blocks * (C * (D + 1) + int(np.prod(shape))) > BLOCK_MEMORY:
        n_blocks = 1
    bounds = np.linspace(0, n, n_blocks + 1).astype(int)
    parts = [(np.zeros(C), np.zeros((C, D)), np.zeros(shape)) for _ in range(n_blocks)]

    def run(b):
        sl = slice(bounds[b], bounds[b + 1])
        accumulate_into(X[sl], weights[sl], K[sl], q[sl], anchors, moment, shared, *parts[b])

    if n_blocks == 1:
        run(0)
    else:
        list(_executor().map(run, range(n_blocks)))
    resp, first, second = parts[0]
    for r, f, s2 in parts[1:]:
        resp += r
        first += f
        second += s2
    if moment == MOMENT_SCALAR:
        second = second[:, 0, 0]
    elif moment == MOMENT_VECTOR:
        second = second[:, :, 0]
    else:
        # only the upper triangle was accumulated
        second = np.triu(second) + np.swapaxes(np.triu(second, 1), -1, -2)
        if shared:
            second = second[0]
    return resp, first, second


#: row blocks per call, their minimum size, and the memory their buffers may take
BLOCKS = 4
MIN_BLOCK_ROWS = 8192
#: rows per block and component below which blocks stop paying: each block
#: zeroes, fills and adds a (C, D) buffer, which at large C leaves the cache.
#: At C = 8 000, D = 64 (4 MiB per buffer) one block took 11-13 ms per
#: 107 000 rows, two 14-20 ms and four 23-54 ms on the shared 2-core machine;
#: at C = 1 000 four blocks stay (5-6 ms)
MIN_ROWS_PER_COMPONENT = 64
BLOCK_MEMORY = 64 * 2**20

_pool = None


def _executor():
    global _pool
    if _pool is None:
        import os
        from concurrent.futures import ThreadPoolExecutor

        _pool = ThreadPoolExecutor(max_workers=min(BLOCKS, os.cpu_count() or 1),
                                   thread_name_prefix="truncmix-accumulate")
    return _pool
