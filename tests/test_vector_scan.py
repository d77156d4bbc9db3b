"""The fused score-and-sweep of a tile (kernels/vector_scan.py).

Oracles: the scores recomputed in float64 (the kernel's must lie within the
rounding bound of a dot product of D terms), and integer-valued data, whose
scores every dtype computes exactly: there the least, second least, group
minima and the place of the least (the first in group-major order) must be
exactly NumPy's.
"""

import numpy as np
import pytest

from truncmix.kernels.vector_scan import ROWS, scan_tile


def layout(rng, G, S, D, T, dtype, integer, dead=()):
    """Group-major means, their norms (+inf for ``dead``) and a (D, T) tile."""
    P = G * S
    if integer:
        means = rng.integers(-3, 4, (P, D)).astype(dtype)
        tile = rng.integers(-3, 4, (D, T)).astype(dtype)
    else:
        means = rng.standard_normal((P, D)).astype(dtype)
        tile = (rng.standard_normal((D, T)) + 0.5).astype(dtype)
    norms = (means.astype(np.float64) ** 2).sum(axis=1).astype(dtype) / 4
    norms[list(dead)] = np.inf
    return means, norms, tile


def exact_scores(means, norms, tile):
    """(P, T) scores ``norms + means . x`` in float64 (+inf rows stay +inf)."""
    return norms.astype(np.float64)[:, None] + means.astype(np.float64) @ tile.astype(np.float64)


def scan(means, norms, tile, filled, G):
    T = tile.shape[1]
    dtype = means.dtype
    near = np.full((G, T), np.nan, dtype)
    least, least2 = np.full(T, np.nan, dtype), np.full(T, np.nan, dtype)
    pos = np.full(T, -7, np.int32)
    scan_tile(means, norms, tile, filled, near, least, least2, pos)
    return near, least, least2, pos


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("G,S,D", [(1, 100, 16), (1, 7, 3), (5, 9, 33), (3, 6, 64), (4, 1, 5),
                                   (2, 13, 1)])
def test_integer_scores_are_exact_and_the_first_least_is_placed(dtype, G, S, D):
    rng = np.random.default_rng(G * 1000 + S * 10 + D)
    T = 3 * ROWS
    means, norms, tile = layout(rng, G, S, D, T, dtype, integer=True, dead=[S - 1])
    filled = T - 5
    near, least, least2, pos = scan(means, norms, tile, filled, G)
    v = exact_scores(means, norms, tile)[:, :filled]
    order = np.sort(v, axis=0)
    np.testing.assert_array_equal(least[:filled], order[0])
    np.testing.assert_array_equal(least2[:filled], order[1])
    np.testing.assert_array_equal(near[:, :filled], v.reshape(G, S, filled).min(axis=1))
    # first in group-major order on ties (integer data has many)
    np.testing.assert_array_equal(pos[:filled], np.argmin(v, axis=0))
    # past ``filled``: the rest of its ROWS block is written, nothing after
    end = filled + (-filled) % ROWS
    assert np.isnan(least[end:]).all() and (pos[end:] == -7).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("G,S,D", [(1, 100, 16), (1, 100, 32), (50, 10, 64), (7, 3, 20)])
def test_scores_are_within_the_dot_product_rounding_bound(dtype, G, S, D):
    rng = np.random.default_rng(D + S)
    T = 4 * ROWS
    means, norms, tile = layout(rng, G, S, D, T, dtype, integer=False)
    near, least, least2, pos = scan(means, norms, tile, T, G)
    v = exact_scores(means, norms, tile)
    # a dot product of D terms and the sum with the norm, any order
    u = np.finfo(dtype).eps / 2
    err = (D + 2) * u * (np.abs(means.astype(np.float64)) @ np.abs(tile.astype(np.float64))
                         + norms.astype(np.float64)[:, None])
    bound = err.max(axis=0)
    order = np.sort(v, axis=0)
    assert (np.abs(least - order[0]) <= bound).all()
    assert (np.abs(least2 - order[1]) <= bound).all()
    near_exact = v.reshape(G, S, T).min(axis=1)
    assert (np.abs(near - near_exact) <= bound).all()
    # the placed mean's exact score is within twice the bound of the least
    assert (v[pos, np.arange(T)] <= order[0] + 2 * bound).all()
    assert (least2 >= least).all()


def test_the_rows_are_scored_in_blocks_of_ROWS_whatever_tile_width():
    rng = np.random.default_rng(5)
    means, norms, tile = layout(rng, 2, 5, 8, 5 * ROWS, np.float32, integer=True)
    whole = scan(means, norms, tile, 5 * ROWS, 2)
    for filled in (1, ROWS, ROWS + 1, 3 * ROWS - 1):
        part = scan(means, norms, tile, filled, 2)
        for a, b in zip(part[1:], whole[1:]):
            np.testing.assert_array_equal(a[:filled], b[:filled])
        np.testing.assert_array_equal(part[0][:, :filled], whole[0][:, :filled])


def test_pass_tiles_hold_whole_blocks_of_ROWS():
    # scan_tile scores up to the next multiple of ROWS past the filled rows:
    # the k-means pass's tiles must have that many columns
    from truncmix.kernels.bounds import pass_tile

    assert all(pass_tile(C) % ROWS == 0 for C in [1, 2, 15, 16, 100, 511, 1000, 8000, 10**6])


@pytest.mark.parametrize("change", ["tile_short", "means_not_groups", "norms_short", "features"])
def test_inconsistent_shapes_raise_instead_of_reading_past_the_arrays(change):
    rng = np.random.default_rng(9)
    G, S, D, T = 2, 5, 8, 2 * ROWS
    means, norms, tile = layout(rng, G, S, D, T, np.float32, integer=True)
    filled = T
    if change == "tile_short":
        filled = T + 1  # rounds up past the tile's columns
    elif change == "means_not_groups":
        means, norms = means[:-1].copy(), norms[:-1].copy()
    elif change == "norms_short":
        norms = norms[:-1].copy()
    else:
        tile = np.ascontiguousarray(tile[:-1])
    with pytest.raises(ValueError, match="inconsistent array shapes"):
        scan(means, norms, tile, filled, G)


def test_strided_arrays_are_refused_at_compile_time():
    rng = np.random.default_rng(10)
    means, norms, tile = layout(rng, 1, 4, 8, 2 * ROWS, np.float32, integer=True)
    wide = np.zeros((8, 4 * ROWS), np.float32)
    wide[:, ::2] = tile
    with pytest.raises(Exception, match="(?i)typing|resolution|scan_rows"):
        scan(means, norms, wide[:, ::2], 2 * ROWS, 1)
