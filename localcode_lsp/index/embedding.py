"""Keeping the lancedb rows in step with the chunks: `sync_embeddings` (embed only the chunks
whose content hash has no vector yet, rewrite the rows of the files whose chunks changed) and
`EmbeddingWorker`, the debounced background thread that does it after edits so that an edit
never waits for the embedding model. Which files and chunks to sync is `CodeIndex`'s business
(`core.py`); the model and the table are `store.py`'s.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from ..cancel import CancelToken
from ..logs import get_logger
from .chunks import Chunk
from .store import Embedder, EmbeddingModelError, VectorStore

log = get_logger("index")

EMBED_DEBOUNCE_SECONDS = 0.75
EMBED_BATCH = 64
WRITE_BATCH_FILES = 64
WORKER_THREAD_NAME = "localcode-index-embed"

Progress = Callable[[int, int, str], None]


def sync_embeddings(store: VectorStore, wanted: dict[str, list[Chunk]],
                    embedder: Callable[[], Embedder], threads: Callable[[], int],
                    progress: Progress | None = None,
                    cancel: CancelToken | None = None) -> tuple[int, int]:
    """Make the rows of each path in `wanted` match its chunks (an empty list removes the
    path's rows). The model (`embedder()`) is loaded only when a chunk needs a vector; `threads`
    answers the torch threads per encode call. Returns (embedded now, reused)."""
    changed = {p: chunks for p, chunks in wanted.items()
               if {c.id for c in chunks} != store.ids(p)}
    missing: dict[str, str] = {}
    reused = 0
    for chunks in wanted.values():
        for chunk in chunks:
            if store.vector(chunk.content_hash) is None:
                missing.setdefault(chunk.content_hash, chunk.embedding_text)
            else:
                reused += 1
    embedded = 0
    vectors: dict[str, Any] = {}
    if missing:
        model = embedder()
        # similar lengths batched together: a batch is padded to its longest text
        items = sorted(missing.items(), key=lambda item: len(item[1]))
        for start in range(0, len(items), EMBED_BATCH):
            if cancel is not None:
                cancel.raise_if_cancelled()
            batch = items[start:start + EMBED_BATCH]
            matrix = model.encode([text for _, text in batch], threads=threads())
            for (digest, _), vector in zip(batch, matrix, strict=True):
                vectors[digest] = vector
            embedded += len(batch)
            if progress is not None:
                progress(embedded, len(items), "embedding")
    paths_changed = list(changed)
    for start in range(0, len(paths_changed), WRITE_BATCH_FILES):
        batch_paths = paths_changed[start:start + WRITE_BATCH_FILES]
        store.write({p: changed[p] for p in batch_paths}, vectors)
    if len(paths_changed) > WRITE_BATCH_FILES:
        store.compact()
    return embedded, reused


class EmbeddingWorker:
    """A background thread that calls `sync(paths)` for the paths scheduled at least
    `debounce_seconds` ago; `on_model_error` hears an `EmbeddingModelError`.

    The thread ends once nothing is pending and a new one starts with the next schedule. A
    thread that ran torch keeps an OpenMP thread pool for as long as it lives, and torch and
    llama.cpp share one libgomp: with more pooled threads than cores, libgomp stops spinning at
    barriers and every llama.cpp graph node pays a futex wake-up (measured: generation at 26
    instead of 42 tokens/s on 2 cores while an idle worker was alive).
    """

    def __init__(self, sync: Callable[[list[str]], object],
                 on_model_error: Callable[[Exception], None],
                 debounce_seconds: float = EMBED_DEBOUNCE_SECONDS) -> None:
        self._sync = sync
        self._on_model_error = on_model_error
        self.debounce_seconds = debounce_seconds
        self._pending: dict[str, float] = {}
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._busy = False

    @property
    def pending(self) -> int:
        """How many paths wait for their debounce to pass."""
        return len(self._pending)

    def schedule(self, path: str) -> None:
        """Embed `path` once it has not changed for `debounce_seconds` (nothing once stopped)."""
        with self._cond:
            if self._stopping:
                return
            self._pending[path] = time.monotonic() + self.debounce_seconds
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name=WORKER_THREAD_NAME,
                                                daemon=True)
                self._thread.start()
            self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping:
                    now = time.monotonic()
                    due = [p for p, at in self._pending.items() if at <= now]
                    if due:
                        break
                    if not self._pending:
                        self._thread = None
                        return
                    self._cond.wait(min(self._pending.values()) - now)
                if self._stopping:
                    return
                for path in due:
                    del self._pending[path]
                self._busy = True
            try:
                self._sync(due)
            except EmbeddingModelError as exc:
                self._on_model_error(exc)
            except Exception:
                log.exception("background embedding update failed")
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Block until nothing is pending or running (the debounce is cut short); False when
        `timeout` passed first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                if self._pending:
                    for path in self._pending:
                        self._pending[path] = min(self._pending[path], time.monotonic())
                    self._cond.notify_all()
                self._cond.wait(min(remaining, 0.1))
        return True

    def stop(self) -> list[str]:
        """Stop for good: the thread ends (joined, 30 s at most) without syncing what was still
        pending; returns those paths."""
        with self._cond:
            pending = list(self._pending)
            self._pending.clear()
            self._stopping = True
            self._cond.notify_all()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=30)
        return pending
