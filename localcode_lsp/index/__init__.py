"""The codebase index: tree-sitter AST index, dependency graph and embedding index in lancedb.

The engine creates one `CodeIndex` per workspace lazily; see `core.py`.
"""

from __future__ import annotations

from .chunks import Chunk
from .core import CodeIndex, IndexStats
from .facts import Import
from .graph import TestRef
from .languages import ParserCache, language_for_path
from .search import SearchHit
from .store import EmbeddingModelError, resolve_embedding_model
from .symbols import Symbol

__all__ = [
    "Chunk",
    "CodeIndex",
    "EmbeddingModelError",
    "Import",
    "IndexStats",
    "ParserCache",
    "SearchHit",
    "Symbol",
    "TestRef",
    "language_for_path",
    "resolve_embedding_model",
]
