"""Chunk sources: where the data lives and how its statistics are reduced."""

from .base import Chunk
from .memory import InMemory

__all__ = ["Chunk", "InMemory"]
