"""A small persistent key -> JSON-value cache with LRU eviction under a byte cap.

Everything under `.localcode/knowledge/` is a cache: a missing file starts empty, a corrupt or
foreign file is logged once and rebuilt, a full disk loses only the write. Writes are atomic
(temporary file + `os.replace`), so a crash never leaves half a file for the next start, and
take the directory's exclusive lock (another localcode process may flush the same file). A
cache whose directory is reached through a symbolic link (a committed `.localcode` pointing
elsewhere) is neither read nor written: it runs empty, with one message.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..logs import get_logger
from ..workspace import state_lock

log = get_logger("knowledge")

SCHEMA_VERSION = 1


class JsonCache:
    """Entries `key -> value` persisted in one JSON file, evicted least-recently-used first.

    `max_bytes` bounds the serialized file; `get` refreshes an entry's recency. The file is
    loaded lazily on first access and written by `flush` (or `set(..., flush=True)`).
    """

    def __init__(self, path: Path, *, kind: str, max_bytes: int) -> None:
        self.path = Path(path)
        self.kind = kind
        self.max_bytes = max(1024, int(max_bytes))
        self._entries: dict[str, dict[str, Any]] | None = None
        self._dirty = False
        self._lock = threading.RLock()
        self.evictions = 0
        self.rebuilt = False
        self.refused = False  # reached through a link: never read or written

    # --- loading ---------------------------------------------------------------------------

    def _through_link(self) -> bool:
        """Whether the cache's directory is reached through a link (then: no cache)."""
        parent = os.path.abspath(self.path.parent)
        if os.path.realpath(parent) == parent:
            return False
        if not self.refused:
            self.refused = True
            log.warning("knowledge cache %s is reached through a symbolic link: not read or "
                        "written (running without it)", self.path)
        return True

    def _load(self) -> dict[str, dict[str, Any]]:
        if self._entries is not None:
            return self._entries
        entries: dict[str, dict[str, Any]] = {}
        if self._through_link():
            self._entries = entries
            return entries
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raw = None
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("knowledge cache %s unreadable (%s); rebuilding", self.path, exc)
            raw = None
            self.rebuilt = True
        if raw is not None:
            try:
                data = json.loads(raw)
                if (not isinstance(data, dict) or data.get("schema") != SCHEMA_VERSION
                        or data.get("kind") != self.kind or not isinstance(data.get("entries"), dict)):
                    raise ValueError("not a localcode knowledge cache of this version")
                for key, entry in data["entries"].items():
                    if (isinstance(entry, dict) and "value" in entry
                            and isinstance(entry.get("used"), (int, float))):
                        entries[str(key)] = entry
                    else:
                        raise ValueError(f"malformed entry {key!r}")
            except (ValueError, TypeError, RecursionError) as exc:
                log.warning("knowledge cache %s is corrupt (%s); rebuilding", self.path, exc)
                entries = {}
                self.rebuilt = True
                self._dirty = True
        self._entries = entries
        return entries

    # --- access ----------------------------------------------------------------------------

    def get(self, key: str, default: Any = None, *, touch: bool = True) -> Any:
        with self._lock:
            entry = self._load().get(key)
            if entry is None:
                return default
            if touch:
                entry["used"] = time.time()
                self._dirty = True
            return entry["value"]

    def set(self, key: str, value: Any, *, flush: bool = False) -> None:
        with self._lock:
            self._load()[key] = {"value": value, "used": time.time()}
            self._dirty = True
        if flush:
            self.flush()

    def delete(self, key: str) -> None:
        with self._lock:
            if self._load().pop(key, None) is not None:
                self._dirty = True

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return key in self._load()

    def __len__(self) -> int:
        with self._lock:
            return len(self._load())

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._load())

    def items(self) -> Iterator[tuple[str, Any]]:
        """A snapshot of (key, value) pairs; does not refresh recency."""
        with self._lock:
            snapshot = [(k, e["value"]) for k, e in self._load().items()]
        return iter(snapshot)

    # --- persistence -------------------------------------------------------------------------

    def _serialize(self, entries: dict[str, dict[str, Any]]) -> str:
        return json.dumps({"schema": SCHEMA_VERSION, "kind": self.kind, "entries": entries},
                          ensure_ascii=False, separators=(",", ":"))

    def _evict(self, entries: dict[str, dict[str, Any]]) -> str:
        payload = self._serialize(entries)
        if len(payload.encode("utf-8")) <= self.max_bytes:
            return payload
        sizes = {k: len(json.dumps(e, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
                 + len(k) + 6 for k, e in entries.items()}
        total = len(payload.encode("utf-8"))
        for key in sorted(entries, key=lambda k: entries[k]["used"]):
            if total <= self.max_bytes:
                break
            total -= sizes[key]
            del entries[key]
            self.evictions += 1
        payload = self._serialize(entries)
        log.info("knowledge cache %s: evicted least recently used entries (%d left)",
                 self.path.name, len(entries))
        return payload

    def flush(self) -> None:
        """Write the entries if anything changed; errors are logged, never raised."""
        with self._lock:
            if self._entries is None or not self._dirty:
                return
            payload = self._evict(self._entries)
            if self._through_link():
                return
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with state_lock(self.path.parent, exclusive=True, timeout=2.0) as locked:
                    if not locked:
                        return  # another process is writing: this write is lost, not mixed
                    fd, tmp = tempfile.mkstemp(dir=self.path.parent,
                                               prefix=f".{self.path.name}.")
                    try:
                        with os.fdopen(fd, "w", encoding="utf-8") as handle:
                            handle.write(payload)
                        os.replace(tmp, self.path)
                    except BaseException:
                        Path(tmp).unlink(missing_ok=True)
                        raise
                self._dirty = False
            except OSError as exc:
                log.warning("knowledge cache %s not written: %s", self.path, exc)

    def clear(self) -> None:
        with self._lock:
            self._entries = {}
            self._dirty = True

    def size_bytes(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0
