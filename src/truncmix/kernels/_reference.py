"""Plain NumPy twins of the numba kernels.

They are slow and allocate freely; their only job is to be obviously right, so
that the tests can compare every kernel against them.
"""

from __future__ import annotations

import numpy as np

from .. import _constants as const


def top_k_softmax(log_joint, k):
    """Keep the ``k`` largest log-joints of every row and normalise them.

    Parameters
    ----------
    log_joint : ndarray of shape (n, C)
    k : int

    Returns
    -------
    K : ndarray of shape (n, k), int32
        Component indices, best first; ties go to the smaller index.
    q : ndarray of shape (n, k), float64
        Truncated posteriors over ``K``.
    lse : ndarray of shape (n,), float64
        ``log sum_{c in K_n} exp log_joint[n, c]``.
    """
    log_joint = np.asarray(log_joint, dtype=np.float64)
    # A stable sort of -l orders by value, then by index among equal values.
    order = np.argsort(-log_joint, axis=1, kind="stable")[:, :k]
    values = np.take_along_axis(log_joint, order, axis=1)
    top = values[:, :1]
    with np.errstate(invalid="ignore"):
        shifted = np.exp(values - top)
    shifted[~np.isfinite(values)] = 0.0
    total = shifted.sum(axis=1, keepdims=True)
    q = shifted / total
    lse = top[:, 0] + np.log(total[:, 0])
    return order.astype(np.int32), q, lse


def accumulate(X, weights, K, q, anchors, moment, shared, n_components):
    """Weighted statistics of the truncated posteriors about ``anchors``.

    Parameters
    ----------
    X : ndarray of shape (n, D)
    weights : ndarray of shape (n,)
    K : ndarray of shape (n, k), int
    q : ndarray of shape (n, k)
    anchors : ndarray of shape (C, D)
        The moments are taken about these points (the previous means).
    moment : int
        ``MOMENT_SCALAR`` (sum of squared norms), ``MOMENT_VECTOR`` (per feature)
        or ``MOMENT_MATRIX`` (outer products).
    shared : bool
        For ``MOMENT_MATRIX`` only: sum the outer products over components.
    n_components : int

    Returns
    -------
    resp, first, second : ndarrays
        ``sum r``, ``sum r (x - a)`` and the second moment of ``x - a``.
    """
    X = np.asarray(X, dtype=np.float64)
    C, D = n_components, X.shape[1]
    r = weights[:, None] * q
    resp = np.zeros(C)
    first = np.zeros((C, D))
    if moment == const.MOMENT_SCALAR:
        second = np.zeros(C)
    elif moment == const.MOMENT_VECTOR:
        second = np.zeros((C, D))
    elif shared:
        second = np.zeros((D, D))
    else:
        second = np.zeros((C, D, D))
    for j in range(K.shape[1]):
        for c in np.unique(K[:, j]):
            rows = K[:, j] == c
            rc = r[rows, j]
            diff = X[rows] - anchors[c]
            resp[c] += rc.sum()
            first[c] += rc @ diff
            if moment == const.MOMENT_SCALAR:
                second[c] += rc @ (diff * diff).sum(axis=1)
            elif moment == const.MOMENT_VECTOR:
                second[c] += rc @ (diff * diff)
            elif shared:
                second += (diff * rc[:, None]).T @ diff
            else:
                second[c] += (diff * rc[:, None]).T @ diff
    return resp, first, second


# --------------------------------------------------------- neighbourhood E-step
_U64 = (1 << 64) - 1
_GOLDEN, _MIX1, _MIX2 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


def _splitmix(z):
    z = (z + _GOLDEN) & _U64
    x = z
    x = ((x ^ (x >> 30)) * _MIX1) & _U64
    x = ((x ^ (x >> 27)) * _MIX2) & _U64
    return z, x ^ (x >> 31)


def _row_stream(seed, pass_index, row):
    z = (seed * _MIX1 + pass_index * _MIX2) & _U64
    z, _ = _splitmix(z)
    return z ^ ((row * _GOLDEN) & _U64)


def candidates(K_prev_row, table, n_random, seed, pass_index, row, k):
    """The candidate set of one point, in the order the kernel builds it."""
    C = table.shape[0]
    members = []
    for c in table[K_prev_row].reshape(-1):
        if int(c) not in members:
            members.append(int(c))
    need = min(C, max(len(members) + n_random, k))
    state = _row_stream(seed, pass_index, row)
    tries = 0
    while len(members) < need and tries < 8 * (need + 1):
        state, r = _splitmix(state)
        tries += 1
        if r % C not in members:
            members.append(r % C)
    return members


def neighbourhood_estep(Y, M, prec, cap, P3, K_prev, table, n_random, seed, pass_index, start, k):
    """Twin of :func:`truncmix.kernels.neighbourhood.neighbourhood_estep_into`.

    Returns ``K, q, lse`` and, per row, the list of (candidate, gap) pairs.
    """
    n = Y.shape[0]
    K = np.empty((n, k), np.int32)
    q = np.empty((n, k))
    lse = np.empty(n)
    pairs = []
    for i in range(n):
        members = np.array(candidates(K_prev[i], table, n_random, seed, pass_index, start + i, k))
        y = np.asarray(Y[i], dtype=np.float64)
        if P3 is None:
            values = cap[members] - 0.5 * ((y - M[members]) ** 2 * prec[members]).sum(axis=1)
        else:
            z = np.einsum("d,cde->ce", y, P3[members]) - M[members]
            values = cap[members] - 0.5 * (z * z).sum(axis=1)
        order = np.lexsort((members, -values))[:k]
        K[i] = members[order]
        top = values[order[0]]
        e = np.where(values[order] > -np.inf, np.exp(values[order] - top), 0.0)
        q[i] = e / e.sum()
        lse[i] = top + np.log(e.sum())
        best = K[i, 0]
        pairs.append([(int(c), top - v) for c, v in zip(members, values)
                      if c != best and v > -np.inf])
    return K, q, lse, pairs


def neighbour_table(best, pairs, weights, old, alive, capacity):
    """Twin of ``tally_into`` followed by ``choose_neighbours``."""
    C, G = old.shape
    seen = [dict() for _ in range(C)]  # insertion-ordered: the first `capacity` kept
    for b, row, w in zip(best, pairs, weights):
        if w == 0:
            continue
        for c, g in row:
            slot = seen[b]
            if c in slot:
                slot[c][0] += w * g
                slot[c][1] += w
            elif len(slot) < capacity:
                slot[c] = [w * g, w]
    score = [dict() for _ in range(C)]  # the smaller mean gap of either direction
    for b in range(C):
        for c, (s, n) in seen[b].items():
            if n > 0:
                for x, y in ((b, c), (c, b)):
                    score[x][y] = min(score[x].get(y, np.inf), s / n)
    new = np.empty_like(old)
    for b in range(C):
        ranked = sorted((v, c) for c, v in score[b].items() if alive[c] and c != b)
        row = [b] + [c for _, c in ranked][: G - 1]
        for c in old[b]:
            if len(row) == G:
                break
            if c not in row:
                row.append(int(c))
        c = 0
        while len(row) < G:
            if c not in row:
                row.append(c)
            c += 1
        new[b] = row
    return new


# ------------------------------------------------------------------- seedings
def greedy_kmeans_pp(X, w, n_components, n_trials, first_u, uniforms):
    """Twin of :func:`truncmix.kernels.seeding.greedy_kmeans_pp` (direct distances)."""
    X = np.asarray(X, dtype=np.float64)
    m = X.shape[0]
    cum = np.cumsum(w)
    chosen = [min(int(np.searchsorted(cum, first_u * cum[-1], side="right")), m - 1)]
    closest = ((X - X[chosen[0]]) ** 2).sum(axis=1)
    for s in range(1, n_components):
        cum = np.cumsum(w * closest)
        cands = [min(int(np.searchsorted(cum, u * cum[-1], side="right")), m - 1)
                 for u in uniforms[s - 1]]
        d2 = ((X[None, :, :] - X[cands][:, None, :]) ** 2).sum(axis=2)  # (T, m)
        pots = (w * np.minimum(closest, d2)).sum(axis=1)
        best = int(np.argmin(pots))
        chosen.append(cands[best])
        closest = np.minimum(closest, d2[best])
    return np.array(chosen)


def afk_mc2_chains(X, w, q, first, proposals, uniforms):
    """Twin of :func:`truncmix.kernels.seeding.afk_mc2_chains`."""
    X = np.asarray(X, dtype=np.float64)
    chosen = [first]
    for i in range(proposals.shape[0]):
        def dist(row):
            return w[row] * ((X[chosen] - X[row]) ** 2).sum(axis=1).min()

        x = proposals[i, 0]
        dx = dist(x)
        for j in range(1, proposals.shape[1]):
            y = proposals[i, j]
            dy = dist(y)
            if dx == 0.0 or dy * q[x] > uniforms[i, j] * dx * q[y]:
                x, dx = y, dy
        chosen.append(x)
    return np.array(chosen)


def lloyd_pass(X, weights, means, alive):
    """Lloyd's assignment by exact distances, and its isotropic statistics.

    The twin of :func:`truncmix.kernels.bounds.yinyang_pass_into` (whatever its
    bounds): each point goes to the live mean at the smallest unexpanded
    float64 distance, ties to the smaller index.

    Returns
    -------
    labels : ndarray (n,) int32
    dist2 : ndarray (n,) squared distance to the chosen mean
    resp, first, second : sum w, sum w (x - mu_c), sum w ||x - mu_c||^2 per component
    """
    X = np.asarray(X, dtype=np.float64)
    diff = X[:, None, :] - means[None, :, :]
    d2 = np.einsum("ncd,ncd->nc", diff, diff)
    d2[:, ~alive] = np.inf
    labels = np.argmin(d2, axis=1).astype(np.int32)  # first minimum: smaller index
    dist2 = d2[np.arange(X.shape[0]), labels]
    C, D = means.shape
    resp = np.bincount(labels, weights=weights, minlength=C).astype(np.float64)
    first = np.zeros((C, D))
    np.add.at(first, labels, weights[:, None] * (X - means[labels]))
    second = np.bincount(labels, weights=weights * dist2, minlength=C).astype(np.float64)
    return labels, dist2, resp, first, second


def group_lower_bounds(X, means, alive, labels, group_of, n_groups):
    """Per point and group, the exact smallest distance to the members other than the label."""
    X = np.asarray(X, dtype=np.float64)
    d = np.sqrt(np.einsum("ncd,ncd->nc", X[:, None] - means[None], X[:, None] - means[None]))
    d[:, ~alive] = np.inf
    d[np.arange(X.shape[0]), labels] = np.inf
    out = np.full((X.shape[0], n_groups), np.inf)
    for g in range(n_groups):
        cols = group_of == g
        if cols.any():
            out[:, g] = d[:, cols].min(axis=1)
    return out
