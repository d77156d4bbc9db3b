"""Thread control for BLAS, with the library look-up done once.

The E-step kernels run their tiles in parallel (numba threads), each tile with
a single-threaded matrix product; letting BLAS start its own threads inside
them would oversubscribe the cores. ``threadpoolctl.threadpool_limits`` scans
the loaded libraries on every call (milliseconds). The BLAS libraries are found
once here, and each switch calls their own thread setters directly: a
controller's ``limit`` still gathered every library's info on the way in and
out, about 0.05 ms a switch, a tenth of a small k-means iteration (scratch,
2 000 x 8, C = 10).
"""

from __future__ import annotations

import contextlib

_blas = None


def _blas_libraries():
    """threadpoolctl's controllers of the loaded BLAS libraries (found on the first call)."""
    global _blas
    if _blas is None:
        import scipy.linalg  # noqa: F401  (load SciPy's BLAS before the scan)
        from threadpoolctl import ThreadpoolController

        _blas = [lib for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas"]
    return _blas


@contextlib.contextmanager
def single_threaded_blas():
    """Limit BLAS to one thread for a while; the libraries' own counts come back after."""
    changed = []
    for lib in _blas_libraries():
        before = lib.get_num_threads()
        if before is not None and before != 1:
            lib.set_num_threads(1)
            changed.append((lib, before))
    try:
        yield
    finally:
        for lib, before in changed:
            lib.set_num_threads(before)


@contextlib.contextmanager
def one_numba_thread():
    """Run numba's parallel kernels on the calling thread alone for a while.

    A parallel region waits for all its workers; on a busy machine one of them
    can wait a scheduler slice for a core (measured: 6 ms more than the whole
    work of a small call, at C = 8 000 on the shared 2-core machine).
    """
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(before)
