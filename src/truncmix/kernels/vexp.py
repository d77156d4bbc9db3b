"""A vectorised ``exp`` for the softmax of a row of log-joints (numba).

numba's ``np.exp`` is a scalar libm call (about 10 ns); an exact E-step takes
N x C of them, more than the matrix product that made the log-joints. This one
is written so that LLVM vectorises it: ``exp(x) = 2^k exp(r)`` with
``k = round(x / ln 2)`` and ``|r| <= ln(2) / 2``, ``exp(r)`` by its degree-13
Taylor polynomial (truncation error below 1e-17 relative), ``2^k`` built in the
exponent bits. The result is within a few units in the last place of libm's.
Arguments below -708 (where ``2^k`` would be subnormal) and -inf take the
scalar path.
"""

from __future__ import annotations

import numba as nb
import numpy as np

_INV_LN2 = 1.4426950408889634
# ln 2 split so that k * _LN2_HI is exact for |k| < 2^11
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
#: below this the scale 2^k would be subnormal: the scalar exp is used
_LOW = -708.0


#: adding 1.5 * 2^52 rounds to an integer, which then sits in the low bits
_SHIFTER = 6755399441055744.0
_SHIFTER_BITS = 0x4338000000000000


@nb.njit(fastmath={"contract", "nsz", "arcp"})
def _reduced(row, top, out, kd):  # pragma: no cover - compiled
    """exp(r) into ``out`` and the shifted k into ``kd`` (no reassociation:
    the two-part reduction must stay as written)."""
    for c in range(row.shape[0]):
        x = max(row[c] - top, _LOW)
        t = x * _INV_LN2 + _SHIFTER
        k = t - _SHIFTER
        r = (x - k * _LN2_HI) - k * _LN2_LO
        p = 1.0 / 6227020800.0
        p = p * r + 1.0 / 479001600.0
        p = p * r + 1.0 / 39916800.0
        p = p * r + 1.0 / 3628800.0
        p = p * r + 1.0 / 362880.0
        p = p * r + 1.0 / 40320.0
        p = p * r + 1.0 / 5040.0
        p = p * r + 1.0 / 720.0
        p = p * r + 1.0 / 120.0
        p = p * r + 1.0 / 24.0
        p = p * r + 1.0 / 6.0
        p = p * r + 0.5
        p = p * r + 1.0
        p = p * r + 1.0
        out[c] = p
        kd[c] = t


@nb.njit(fastmath={"contract", "nsz", "arcp", "nnan", "reassoc"})
def _scaled_sum(row, top, out, bits):  # pragma: no cover - compiled
    """``out *= 2^k``; returns (sum of out, least row - top)."""
    C = row.shape[0]
    for c in range(C):
        bits[c] = (bits[c] - _SHIFTER_BITS + 1023) << 52
    scale = bits.view(np.float64)
    total = 0.0
    least = 0.0
    for c in range(C):
        out[c] *= scale[c]
        total += out[c]
        least = min(least, row[c] - top)
    return total, least


@nb.njit
def exp_shifted_into(row, top, out, bits):  # pragma: no cover - compiled
    """``out[c] = exp(row[c] - top)`` for every c; returns their sum.

    IN:  row (C,) float64, values <= top (or -inf); top float64 finite.
    OUT: out (C,) float64; bits (C,) int64 scratch.
    """
    _reduced(row, top, out, bits.view(np.float64))
    total, least = _scaled_sum(row, top, out, bits)
    if least < _LOW:
        # rare: tiny or -inf entries, by the scalar exp; then the sum again
        total = 0.0
        for c in range(row.shape[0]):
            d = row[c] - top
            if d < _LOW:
                out[c] = np.exp(d) if d > -np.inf else 0.0
            total += out[c]
    return total
