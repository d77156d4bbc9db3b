"""Thread control for BLAS, with the library look-up done once.

The E-step kernels run their tiles in parallel (numba threads), each tile with
a single-threaded matrix product; letting BLAS start its own threads inside
them would oversubscribe the cores. ``threadpoolctl.threadpool_limits`` scans
the loaded libraries on every call (milliseconds); a cached controller makes
the switch cost microseconds.
"""

from __future__ import annotations

import contextlib

_controller = None


def single_threaded_blas():
    """A context manager limiting BLAS to one thread."""
    global _controller
    if _controller is None:
        import scipy.linalg  # noqa: F401  (load SciPy's BLAS before the scan)
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")


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
