"""What the index keeps on disk under `<root>/.localcode/index/`: the schema stamp and the AST
cache (each file's symbols and facts by size and mtime). Everything there is a cache: a schema
mismatch wipes the directory (the lancedb table under it included) and a damaged AST cache is
rebuilt, each with one log line.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..logs import get_logger
from .facts import FileFacts
from .records import FileRecord
from .symbols import Symbol

log = get_logger("index")

SCHEMA_VERSION = 1


class IndexDirectory:
    """The index's directory: the schema check (once) and the AST cache."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._schema_checked = False
        self._cache_loaded = False
        self._cache: dict[str, Any] = {}

    @property
    def schema_file(self) -> Path:
        return self.directory / "schema.json"

    @property
    def ast_cache_file(self) -> Path:
        return self.directory / "ast_cache.json"

    def ensure_schema(self, embedding_model: str) -> bool:
        """Check the stamp once per index: on a mismatch (another schema version or embedding
        model, or an unreadable stamp) wipe the directory. True when it was wiped."""
        if self._schema_checked:
            return False
        self._schema_checked = True
        wanted = {"version": SCHEMA_VERSION, "embedding_model": embedding_model}
        found: Any = None
        wiped = False
        if self.schema_file.exists():
            try:
                found = json.loads(self.schema_file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                found = "unreadable"
        if found is not None and found != wanted:
            log.warning("index schema changed (%s -> %s): rebuilding %s", found, wanted,
                        self.directory)
            shutil.rmtree(self.directory, ignore_errors=True)
            wiped = True
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self.schema_file.write_text(json.dumps(wanted), encoding="utf-8")
        except OSError as exc:
            log.warning("cannot write the index directory %s: %s", self.directory, exc)
        return wiped

    def load_ast_cache(self) -> None:
        """Read the AST cache (once); an unreadable one is dropped with a warning."""
        if self._cache_loaded:
            return
        self._cache_loaded = True
        if not self.ast_cache_file.exists():
            return
        try:
            data = json.loads(self.ast_cache_file.read_text(encoding="utf-8"))
            if data.get("version") != SCHEMA_VERSION:
                raise ValueError(f"version {data.get('version')}")
            self._cache = data["files"]
            if not isinstance(self._cache, dict):
                raise ValueError("files is not a table")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("AST cache %s is unreadable (%s): rebuilding it", self.ast_cache_file,
                        exc)
            self._cache = {}

    def save_ast_cache(self, records: Iterable[FileRecord]) -> None:
        """Write the records' symbols and facts; a file the editor has open keeps the entry of
        its disk text (the cache describes the disk)."""
        entries = {}
        for record in records:
            if record.from_overlay:
                previous = self._cache.get(record.path)
                if previous is not None:
                    entries[record.path] = previous
                continue
            entries[record.path] = {
                "size": record.size,
                "mtime_ns": record.mtime_ns,
                "language": record.language,
                "symbols": [list(vars(s).values()) for s in record.symbols],
                "facts": record.current_facts().to_dict(),
            }
        self._cache = entries
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            temporary = self.ast_cache_file.with_suffix(".tmp")
            temporary.write_text(json.dumps({"version": SCHEMA_VERSION, "files": entries},
                                            separators=(",", ":")), encoding="utf-8")
            temporary.replace(self.ast_cache_file)
        except OSError as exc:
            log.warning("cannot write the AST cache %s: %s", self.ast_cache_file, exc)

    def cached_record(self, path: str, size: int, mtime_ns: int,
                      source: bytes) -> FileRecord | None:
        """The record of a file from the AST cache, or None when the cache does not hold this
        size and mtime (or holds it damaged)."""
        entry = self._cache.get(path)
        if not isinstance(entry, dict) or entry.get("size") != size \
                or entry.get("mtime_ns") != mtime_ns:
            return None
        try:
            symbols = [Symbol(*row) for row in entry["symbols"]]
            facts = FileFacts.from_dict(entry["facts"])
        except (TypeError, KeyError, ValueError):
            return None
        return FileRecord(path, entry.get("language"), size, mtime_ns, source, symbols, facts)
