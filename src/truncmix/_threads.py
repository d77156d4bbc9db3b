"""Thread control for BLAS, with the library look-up done once.

The E-step kernels run their tiles in parallel (numba threads), each tile with
a single-threaded matrix product; letting BLAS start its own threads inside
them would oversubscribe the cores. ``threadpoolctl.threadpool_limits`` scans
the loaded libraries on every call (milliseconds); a cached controller makes
the switch cost microseconds.
"""

from __future__ import annotations

_controller = None


def single_threaded_blas():
    """A context manager limiting BLAS to one thread."""
    global _controller
    if _controller is None:
        import scipy.linalg  # noqa: F401  (load SciPy's BLAS before the scan)
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")
