"""Chunk sources: where the data lives and how its statistics are reduced.

In memory (:class:`InMemory`), out of core (:mod:`.ondisk`: ``.npy``, memory
maps, Parquet, any chunk source) and on a Dask cluster (:mod:`.dask`, imported
only when a Dask array is fitted).
"""

from .base import Chunk
from .memory import InMemory
from .ondisk import ArraySource, NpyFile, ParquetSource, as_chunk_source

__all__ = ["ArraySource", "Chunk", "InMemory", "NpyFile", "ParquetSource", "as_chunk_source",
           "is_dask_array"]


def is_dask_array(X):
    """Whether ``X`` is a ``dask.array.Array`` (without importing Dask)."""
    return type(X).__module__.startswith("dask.array") and hasattr(X, "to_delayed")
