"""Shared test fixtures."""

import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture(scope="module")
def one_blas_thread():
    """One BLAS/OpenMP thread for modules of small problems.

    Their matrices are tiny: extra threads only add synchronisation, which on a
    busy 2-core machine made small fits 10-100x slower and run times erratic.
    Results do not depend on the thread count.
    """
    with threadpool_limits(limits=1):
        yield
