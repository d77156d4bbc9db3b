"""Kernels for what BLAS cannot express.

The numba kernels live in :mod:`.topk` and :mod:`.accumulate` and are imported
lazily (importing numba costs about a second); :mod:`._reference` holds their
plain NumPy twins, used as test oracles.
"""
