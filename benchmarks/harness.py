"""Timing machinery shared by the benchmark suites: threads, environment, per-iteration times, the GEMM floor.

Every suite measures truncmix and its competitors *interleaved in one process*
under the same thread limit, and reports ratios measured in the same run. This
module holds the pieces that make that fair:

- :func:`limit_threads` caps BLAS/OpenMP (threadpoolctl), numba and faiss at the
  same thread count;
- :func:`environment` records what the numbers depend on (BLAS build and kernel,
  library versions, the ``OPENBLAS_*`` variables, the load average, the state of
  the truncmix checkout);
- :func:`per_iteration` times fits with two iteration counts and turns them into a
  per-iteration time that does not contain initialisation or the final E-step;
- :func:`gemm_floor` times the bare ``X @ M.T`` product of the same shape and
  dtype, the fastest of the ways tried: the floor any distance-based iteration
  has to pay.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import gc
import os
import platform
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numba
import numpy as np

#: the repository root (``benchmarks/..``)
REPO = Path(__file__).resolve().parent.parent

#: environment variables that change OpenBLAS's speed on the project's machines
OPENBLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


# --------------------------------------------------------------------- threads
@contextlib.contextmanager
def limit_threads(n_threads):
    """Cap every thread pool the estimators use at ``n_threads``.

    Parameters
    ----------
    n_threads : int
        Threads for BLAS and OpenMP (through threadpoolctl), numba's parallel
        kernels (``numba.set_num_threads``) and faiss (``omp_set_num_threads``).

    Yields
    ------
    dict
        What was set: ``{"threadpoolctl": n, "numba": n or None, "faiss": n or None}``.
    """
    from threadpoolctl import threadpool_limits

    state = {"threadpoolctl": n_threads, "numba": None, "faiss": None}
    previous_numba = None
    try:
        import numba

        previous_numba = numba.get_num_threads()
        numba.set_num_threads(min(n_threads, numba.config.NUMBA_NUM_THREADS))
        state["numba"] = numba.get_num_threads()
    except ImportError:  # pragma: no cover - numba is a dependency of truncmix
        pass
    faiss = optional_faiss()
    if faiss is not None:
        faiss.omp_set_num_threads(n_threads)
        state["faiss"] = n_threads
    try:
        with threadpool_limits(limits=n_threads):
            yield state
    finally:
        if previous_numba is not None:
            import numba

            numba.set_num_threads(previous_numba)


def optional_faiss():
    """The ``faiss`` module when the ``bench`` extra is installed, else None."""
    try:
        import faiss
    except ImportError:
        return None
    return faiss


# ----------------------------------------------------------------- environment
def environment(n_threads):
    """What the measured times depend on, for the JSON and the markdown.

    Parameters
    ----------
    n_threads : int
        The thread limit the run uses.

    Returns
    -------
    dict
        Date, command line, host, Python and library versions,
        ``threadpool_info()`` taken inside the thread limit, whether
        ``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE`` were set, the load average
        and the git state of the checkout (uncommitted changes under ``src/``
        mean the numbers are not those of the recorded commit).
    """
    from threadpoolctl import threadpool_info

    import sklearn

    import truncmix

    versions = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "truncmix": getattr(truncmix, "__version__", "?"),
    }
    for name in ("scipy", "numba", "threadpoolctl", "psutil"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            versions[name] = None
    faiss = optional_faiss()
    versions["faiss"] = getattr(faiss, "__version__", None) if faiss is not None else None

    with limit_threads(n_threads):
        pools = threadpool_info()
    blas = [
        {k: p.get(k) for k in ("internal_api", "prefix", "version", "architecture",
                               "threading_layer", "num_threads", "filepath")}
        for p in pools if p.get("user_api") == "blas"
    ]
    numpy_blas = _numpy_blas(blas)
    return {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, "-m", "benchmarks", *sys.argv[1:]]),
        "host": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "loadavg_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        },
        "threads": n_threads,
        "versions": versions,
        "numpy_blas": numpy_blas,
        "threadpool_info": pools,
        "openblas_variables": {v: os.environ.get(v) for v in OPENBLAS_VARIABLES},
        "openblas_variables_set": any(v in os.environ for v in OPENBLAS_VARIABLES),
        "git": git_state(),
    }


def _numpy_blas(blas):
    """The BLAS numpy itself calls (the one in ``numpy.libs``), else the first found."""
    for b in blas:
        if "numpy" in (b.get("filepath") or ""):
            return b
    return blas[0] if blas else None


def git_state():
    """Commit of the checkout and whether ``src/`` or ``benchmarks/`` have uncommitted changes."""
    def run(*args):
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                                  timeout=20).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    return {
        "commit": run("rev-parse", "HEAD"),
        "branch": run("rev-parse", "--abbrev-ref", "HEAD"),
        "src_dirty": bool(run("status", "--porcelain", "--", "src")),
        "benchmarks_dirty": bool(run("status", "--porcelain", "--", "benchmarks")),
    }


# --------------------------------------------------------------------- timing
@dataclass
class Fit:
    """One timed fit.

    Attributes
    ----------
    seconds : float
        Wall time of the whole ``fit`` call.
    n_iter : int
        Iterations the estimator reports (``n_iter_``).
    extra : dict
        Anything else the fit function returned (objective, in-loop times...).
    """

    seconds: float
    n_iter: int
    extra: dict = field(default_factory=dict)


def timed(fn):
    """Run ``fn()`` after a garbage collection and time it.

    Parameters
    ----------
    fn : callable
        Returns ``(n_iter, extra_dict)``.

    Returns
    -------
    Fit
    """
    gc.collect()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        n_iter, extra = fn()
        seconds = time.perf_counter() - t0
    return Fit(seconds, int(n_iter), dict(extra))


def per_iteration(runners, m1, m2, repeats, log=print):
    """Per-iteration times by the two-iteration-count difference method, interleaved.

    Each runner is fitted with ``max_iter=m1`` and ``max_iter=m2`` (tol=0, same
    start) in every repeat; the order of the runners rotates from repeat to
    repeat so that none always runs first after a quiet or busy moment. The
    per-iteration time of a runner is

        (best time at m2 - best time at m1) / (n_iter at m2 - n_iter at m1),

    which removes what both fits share: validation, initialisation, the final
    E-step and anything else done once per fit. The per-repeat differences are
    kept too, and give a median of per-repeat ratios as a second estimate.

    Parameters
    ----------
    runners : dict of str to callable
        ``runners[name](max_iter)`` fits once and returns ``(n_iter, extra)``.
    m1, m2 : int
        The two iteration counts, ``m1 < m2``.
    repeats : int
    log : callable

    Returns
    -------
    dict of str to dict
        Per runner: ``per_iter`` (seconds), ``per_iter_repeats`` (list),
        ``fit_m1`` / ``fit_m2`` (best whole-fit seconds), ``n_iter`` ([m1 run,
        m2 run]), ``times_m1`` / ``times_m2`` (all repeats), ``extra`` (of the
        last m2 fit) and ``valid`` (False when the estimator stopped early so
        that the two counts coincide, or when the noise made the difference
        non-positive; ``per_iter`` then falls back to ``fit_m2 / n_iter``).
    """
    names = list(runners)
    raw = {n: {"m1": [], "m2": []} for n in names}
    for r in range(repeats):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            f1 = timed(lambda: runners[name](m1))
            f2 = timed(lambda: runners[name](m2))
            raw[name]["m1"].append(f1)
            raw[name]["m2"].append(f2)
            log(f"    {name:<24s} repeat {r + 1}: m={m1}: {f1.seconds:8.3f} s ({f1.n_iter} it)"
                f"   m={m2}: {f2.seconds:8.3f} s ({f2.n_iter} it)")
    out = {}
    for name in names:
        f1s, f2s = raw[name]["m1"], raw[name]["m2"]
        n1, n2 = f1s[-1].n_iter, f2s[-1].n_iter
        best1 = min(f.seconds for f in f1s)
        best2 = min(f.seconds for f in f2s)
        valid = n2 > n1 and best2 > best1
        per_iter = (best2 - best1) / (n2 - n1) if valid else best2 / max(n2, 1)
        reps = [
            (b.seconds - a.seconds) / (b.n_iter - a.n_iter) if b.n_iter > a.n_iter else float("nan")
            for a, b in zip(f1s, f2s)
        ]
        out[name] = {
            "per_iter": per_iter,
            "per_iter_repeats": reps,
            "fit_m1": best1,
            "fit_m2": best2,
            "n_iter": [n1, n2],
            "times_m1": [f.seconds for f in f1s],
            "times_m2": [f.seconds for f in f2s],
            "extra": f2s[-1].extra,
            "extras": [f.extra for f in f1s + f2s],
            "valid": bool(valid),
        }
    return out


def median_ratio(a, b):
    """Median over repeats of ``a[i] / b[i]`` (per-repeat per-iteration times).

    Repeats where either difference is not a positive finite time (the noise of
    a busy machine made the m2 fit faster than the m1 fit) are left out.
    """
    r = [x / y for x, y in zip(a, b) if np.isfinite(x) and np.isfinite(y) and x > 0 and y > 0]
    return float(np.median(r)) if r else float("nan")


# ---------------------------------------------------------------------- floor
#: rows per tile of the tiled way of :func:`gemm_floor`
FLOOR_TILES = (128, 256, 512)


@numba.njit(parallel=True, nogil=True)
def _tile_products(tiles, M, out):  # pragma: no cover - compiled
    """``M @ tiles[t]`` for every (D, T) tile; blocks of tiles run in parallel threads."""
    n_tiles = tiles.shape[0]
    n_blocks = out.shape[0]
    for blk in numba.prange(n_blocks):
        o = out[blk]
        for t in range(n_tiles * blk // n_blocks, n_tiles * (blk + 1) // n_blocks):
            np.dot(M, tiles[t], o)


def gemm_floor(X, M, repeats=10, chunk_rows=8192):
    """Time of the bare distance product ``X @ M.T`` for this shape and dtype.

    Three ways are timed, best of ``repeats`` each, and the fastest is the
    floor: one product writing the whole (N, C) matrix; the product chunk by
    chunk into one reused (chunk_rows, C) buffer (what a chunked E-step does,
    without the page faults of a fresh N x C array); and tiles of
    :data:`FLOOR_TILES` rows, each ``M @ tile`` with the rows laid out as
    columns (laid out before the timing), one block of tiles per thread with
    single-threaded BLAS calls (as truncmix's k-means pass multiplies: at few
    features BLAS runs faster so than on the one large product, up to twice as
    fast at 1M x 16).

    Parameters
    ----------
    X : ndarray of shape (N, D)
    M : ndarray of shape (C, D), same dtype as X
    repeats : int
    chunk_rows : int

    Returns
    -------
    dict
        ``seconds`` (the floor), ``whole``, ``chunked`` and ``tiles`` (best
        seconds of each way; ``tiles`` the best tile size), ``gflops`` (at the
        floor, 2 N D C flops).
    """
    MT = np.ascontiguousarray(M.T)
    N, D = X.shape
    C = M.shape[0]

    def whole():
        return X @ MT

    buf = np.empty((min(chunk_rows, N), C), dtype=X.dtype)

    def chunked():
        for s in range(0, N, chunk_rows):
            e = min(s + chunk_rows, N)
            np.matmul(X[s:e], MT, out=buf[: e - s])

    def timed(fn):
        fn()  # warm up
        ts = []
        for _ in range(repeats):
            gc.collect()
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return min(ts)

    best = {"whole": timed(whole), "chunked": timed(chunked)}
    from truncmix._threads import single_threaded_blas

    Mc = np.ascontiguousarray(M)
    tiled = []
    for T in FLOOR_TILES:
        n_tiles = -(-N // T)
        padded = np.zeros((n_tiles * T, D), X.dtype)
        padded[:N] = X
        tiles = np.ascontiguousarray(padded.reshape(n_tiles, T, D).transpose(0, 2, 1))
        del padded
        out = np.empty((min(32, n_tiles), C, T), X.dtype)

        def by_tiles(tiles=tiles, out=out):
            with single_threaded_blas():
                _tile_products(tiles, Mc, out)

        tiled.append(timed(by_tiles))
        del tiles, out
    best["tiles"] = min(tiled)
    seconds = min(best.values())
    return {"seconds": seconds, "whole": best["whole"], "chunked": best["chunked"],
            "tiles": best["tiles"], "gflops": 2.0 * N * D * C / seconds / 1e9}


def fmt_seconds(s):
    """``s`` seconds as a short human string (ms below 1 s)."""
    if s is None or not np.isfinite(s):
        return "n/a"
    return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"
