"""E-step strategies: how each point's truncated set K_n is searched."""

from .base import ChunkResult, EStep
from .exhaustive import Exhaustive

__all__ = ["ChunkResult", "EStep", "Exhaustive"]
