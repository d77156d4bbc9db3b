"""Scores of a tile of rows against every mean, fused with their sweep, in explicit vectors.

The exhaustive part of the k-means pass (:func:`~truncmix.kernels.bounds.yinyang_pass_into`)
needs, per row of a tile, the least and second least of ``v = ||mu||^2 - 2 mu . x``
over the means, the place of the least and the least per group of means. A
matrix product followed by a sweep writes the (means, rows) scores to memory and
reads them back, and the BLAS packs the tile and zeroes its output first: at
16 features those cost more than the multiplications (docs/kmeans.md).

Here the dot products of a block of means with 16 rows are accumulated in
vector registers (the rows side by side, one vector per 8 of them in float32),
and each mean's scores go straight into the running least, second least and
group minimum, also in registers. numba does not vectorise that loop nest
(it keeps the accumulators in memory), so the body is written in LLVM IR
through a numba intrinsic; LLVM still chooses the instructions, so it runs on
any x86-64 or other CPU, with 256-bit vectors where the CPU has them.

Rounding: each score is ``fl(norm + fl(sum_d m_d x_d))`` with the sum
accumulated in feature order by multiply-adds (fused or not, as the CPU
prefers): within the same bound as a BLAS product of any order, which the
caller's rounding bound (``_rounding`` in bounds.py) covers.
"""

from __future__ import annotations

import llvmlite.ir as ir
import numba as nb
import numpy as np
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

#: rows scored together (a multiple of every dtype's vector width times its
#: row vectors); tiles are sized in multiples of it
ROWS = 16
#: bytes of means scored against a whole tile at a time (half of a 32 KB L1)
CHUNK_BYTES = 16384
#: per dtype: lanes per vector, row vectors, means per block. Float32: 2 x 8
#: rows and 5 means keep 10 accumulators in the 16 AVX registers (4 and 6
#: means were no faster on Zen 3, scratch); float64: 4 x 4 rows and 2 means
#: (3 means were slower)
_SHAPES = {np.dtype(np.float32): (8, 2, 5), np.dtype(np.float64): (4, 4, 2)}


def _emit_scan(context, builder, sig, args, lanes, row_vectors, block):
    """LLVM IR of :func:`_scan_rows` for one dtype (see there)."""
    arrays = [context.make_array(t)(context, builder, a) for t, a in zip(sig.args[:-3], args[:-3])]
    means, norms, tile, near, least, least2, pos = arrays
    g_start, g_stop, r0 = args[-3:]
    i64, i32 = ir.IntType(64), ir.IntType(32)
    real = context.get_value_type(sig.args[0].dtype)
    vec, ivec = ir.VectorType(real, lanes), ir.VectorType(i32, lanes)
    n_means, D = cgutils.unpack_tuple(builder, means.shape, 2)
    T = cgutils.unpack_tuple(builder, tile.shape, 2)[1]
    G = cgutils.unpack_tuple(builder, near.shape, 2)[0]
    S = builder.sdiv(n_means, G)
    # a * b + c, fused where the CPU has it (either rounding is covered)
    name = f"llvm.fmuladd.v{lanes}{'f32' if sig.args[0].dtype == types.float32 else 'f64'}"
    muladd = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec, [vec] * 3), name)
    zeros = ir.Constant(ivec, [0] * lanes)

    def const(v):
        return ir.Constant(i64, v)

    def splat(value, vtype):
        undef = ir.Constant(vtype, ir.Undefined)
        one = builder.insert_element(undef, value, ir.Constant(i32, 0))
        return builder.shuffle_vector(one, undef, zeros)

    def lanes_at(array, offset, vtype):
        return builder.bitcast(builder.gep(array.data, [offset]), vtype.as_pointer())

    def lesser(a, b):
        return builder.select(builder.fcmp_ordered("<", b, a), b, a)

    # loop-carried vectors live in allocas, which LLVM keeps in registers;
    # the running least, second least and place start from the row's own
    # (the caller initialises them before the first groups)
    inf = ir.Constant(vec, [float("inf")] * lanes)
    best, second, place = [], [], []
    for h in range(row_vectors):
        at = builder.add(r0, const(lanes * h))
        best.append(cgutils.alloca_once(builder, vec))
        builder.store(builder.load(lanes_at(least, at, vec), align=4), best[h])
        second.append(cgutils.alloca_once(builder, vec))
        builder.store(builder.load(lanes_at(least2, at, vec), align=4), second[h])
        place.append(cgutils.alloca_once(builder, ivec))
        builder.store(builder.load(lanes_at(pos, at, ivec), align=4), place[h])
    group_least = [cgutils.alloca_once(builder, vec) for _ in range(row_vectors)]
    acc = [[cgutils.alloca_once(builder, vec) for _ in range(row_vectors)] for _ in range(block)]

    def score_block(q, n):
        """Means q .. q + n - 1 (group-major) against the rows: dot products, then the sweep."""
        for j in range(n):
            for h in range(row_vectors):
                builder.store(ir.Constant(vec, [0.0] * lanes), acc[j][h])
        with cgutils.for_range(builder, D) as loop:
            d = loop.index
            at = builder.add(builder.mul(d, T), r0)
            xs = [builder.load(lanes_at(tile, builder.add(at, const(lanes * h)), vec), align=4)
                  for h in range(row_vectors)]
            for j in range(n):
                qj = builder.add(q, const(j))
                m = splat(builder.load(builder.gep(means.data, [builder.add(builder.mul(qj, D), d)])),
                          vec)
                for h in range(row_vectors):
                    builder.store(builder.call(muladd, [m, xs[h], builder.load(acc[j][h])]),
                                  acc[j][h])
        for j in range(n):
            qj = builder.add(q, const(j))
            norm = splat(builder.load(builder.gep(norms.data, [qj])), vec)
            where = splat(builder.trunc(qj, i32), ivec)
            for h in range(row_vectors):
                s = builder.fadd(norm, builder.load(acc[j][h]))
                b1 = builder.load(best[h])
                # the second least is min(second, max(least, s)); strict
                # comparisons keep the first mean on ties as the least
                above = builder.select(builder.fcmp_ordered("<", b1, s), s, b1)
                builder.store(lesser(builder.load(second[h]), above), second[h])
                smaller = builder.fcmp_ordered("<", s, b1)
                builder.store(builder.select(smaller, s, b1), best[h])
                builder.store(builder.select(smaller, where, builder.load(place[h])), place[h])
                builder.store(lesser(builder.load(group_least[h]), s), group_least[h])

    with cgutils.for_range(builder, builder.sub(g_stop, g_start)) as groups:
        g = builder.add(groups.index, g_start)
        for h in range(row_vectors):
            builder.store(inf, group_least[h])
        start = builder.mul(g, S)
        full = builder.sdiv(S, const(block))
        with cgutils.for_range(builder, full) as blocks:
            score_block(builder.add(start, builder.mul(blocks.index, const(block))), block)
        # the rest of the group in one block of its size (one mean at a time,
        # each multiply-add would wait for the one before)
        rest = builder.sub(S, builder.mul(full, const(block)))
        q = builder.add(start, builder.mul(full, const(block)))
        after = builder.append_basic_block("rest_done")
        switch = builder.switch(rest, after)
        for n in range(1, block):
            case = builder.append_basic_block(f"rest_{n}")
            switch.add_case(const(n), case)
            builder.position_at_end(case)
            score_block(q, n)
            builder.branch(after)
        builder.position_at_end(after)
        for h in range(row_vectors):
            at = builder.add(builder.add(builder.mul(g, T), r0), const(lanes * h))
            builder.store(builder.load(group_least[h]), lanes_at(near, at, vec), align=4)
    for h in range(row_vectors):
        at = builder.add(r0, const(lanes * h))
        builder.store(builder.load(best[h]), lanes_at(least, at, vec), align=4)
        builder.store(builder.load(second[h]), lanes_at(least2, at, vec), align=4)
        builder.store(builder.load(place[h]), lanes_at(pos, at, ivec), align=4)
    return context.get_dummy_value()


@intrinsic
def _scan_rows(typingctx, means, norms, tile, near, least, least2, pos, g_start, g_stop, r0):
    """Groups ``g_start .. g_stop - 1`` against rows ``r0 .. r0 + ROWS - 1``: see :func:`scan_tile`."""
    dtype = np.dtype(means.dtype.name)
    if dtype not in _SHAPES or any(getattr(a, "dtype", None) != means.dtype
                                   for a in (norms, tile, near, least, least2)):
        return None
    # the IR indexes the arrays as C-contiguous blocks: no other layout
    if any(getattr(a, "layout", None) != "C" for a in (means, norms, tile, near, least, least2,
                                                        pos)):
        return None
    if pos.dtype != types.int32:
        return None
    lanes, row_vectors, block = _SHAPES[dtype]
    sig = types.void(means, norms, tile, near, least, least2, pos, types.int64, types.int64,
                     types.int64)

    def codegen(context, builder, sig, args):
        return _emit_scan(context, builder, sig, args, lanes, row_vectors, block)

    return sig, codegen


@nb.njit(nogil=True, cache=True)
def scan_tile(means, norms, tile, filled, near, least, least2, pos):  # pragma: no cover
    """Least, second least and group minima of ``v = norms + means . x`` for a tile's rows.

    ``means`` (G S, D) float32 or float64, C-contiguous, in group-major order
    (mean ``q = g S + j`` is member ``j`` of group ``g``); ``norms`` (G S,)
    their squared norms in the same dtype (+inf for padding); ``tile``
    (D, T) the rows as columns, T a multiple of :data:`ROWS`. For the first
    ``filled`` rows (rounded up to ROWS: the rows after them are scored too,
    whatever they hold) writes ``near[g, r]`` the least ``v`` of group ``g``,
    ``least[r]`` and ``least2[r]`` the least and second least over all means
    and ``pos[r]`` (int32) the ``q`` of the least (the first on ties).
    """
    G = near.shape[0]
    S = means.shape[0] // G
    end = filled + (-filled) % ROWS
    # the compiled loops index without checks: every array must be large enough
    if (G < 1 or S * G != means.shape[0] or norms.shape[0] != means.shape[0]
            or tile.shape[0] != means.shape[1]
            or filled < 0 or end > tile.shape[1] or end > near.shape[1] or end > least.shape[0]
            or end > least2.shape[0] or end > pos.shape[0]):
        raise ValueError("scan_tile: inconsistent array shapes")
    for r in range(end):
        least[r] = np.inf
        least2[r] = np.inf
        pos[r] = 0
    # groups in runs whose means fit in L1 (CHUNK_BYTES), each run against
    # every row of the tile: the means are read from L2 once per run and tile
    # rather than once per 16 rows (256 KB at C = 1 000, D = 64 in float32)
    run = max(1, CHUNK_BYTES // max(1, S * means.shape[1] * means.itemsize))
    for g0 in range(0, G, run):
        g1 = min(G, g0 + run)
        for r0 in range(0, end, ROWS):
            _scan_rows(means, norms, tile, near, least, least2, pos, g0, g1, r0)
