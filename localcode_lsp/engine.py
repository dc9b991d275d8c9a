"""One Engine per workspace: the long-lived parts (config, overlay, index, backend, gate,
knowledge) and the handful of calls both front ends use.

Heavy parts (the model, torch, lancedb) are created lazily on first use, never at start-up, so
`initialize` stays fast and `--help` imports nothing heavy.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .cancel import Cancelled, CancelToken
from .config import Config, load_config
from .data import Result, Task, TraceEvent
from .inference.backend import Backend
from .logs import get_logger
from .workspace import Document, Workspace

log = get_logger("engine")

EventSink = Callable[[TraceEvent], None]


class Engine:
    """The shared core behind the language server and the CLI."""

    def __init__(
        self,
        root: Path | str,
        *,
        config: Config | None = None,
        overrides: Mapping[str, Any] | None = None,
        trusted: bool = True,
        backend: Backend | None = None,
        shares_cores_with_model: bool = True,
    ) -> None:
        """`shares_cores_with_model=False` for index-only work (`localcode index`/`search`):
        embeddings may then use every core; otherwise they take one thread when the model runs
        in this process, so the model keeps its cores."""
        self.workspace = Workspace(root, trusted=trusted)
        self.config = config if config is not None else load_config(self.workspace.root,
                                                                    overrides=overrides)
        self._backend = backend
        self._model_in_process = shares_cores_with_model and (
            getattr(backend, "in_process", False) if backend is not None
            else self.config.model.backend == "llama.cpp")
        self._lock = threading.RLock()
        self._index: Any = None
        # how many completions ran to their end vs stopped by a cancel (health, load tests)
        self.completion_counts = {"requested": 0, "finished": 0, "cancelled": 0}
        self._gate: Any = None
        self._knowledge: Any = None
        # Extra prompt context (context.rag.ContextProvider): the knowledge store appends its
        # few-shot, docs and error-cache providers here; the index provider is always used.
        self.context_providers: list[Any] = []

    @property
    def root(self) -> Path:
        return self.workspace.root

    # --- lazily created collaborators ------------------------------------------------------

    @property
    def backend(self) -> Backend:
        """The model backend, created on first use (loads the model)."""
        with self._lock:
            if self._backend is None:
                from .inference import create_backend

                self._backend = create_backend(self.config, self.workspace.root)
            return self._backend

    def backend_loaded(self) -> bool:
        return self._backend is not None

    @property
    def index(self) -> Any:
        """The codebase index (AST + dependency graph + embeddings)."""
        with self._lock:
            if self._index is None:
                from .index import CodeIndex

                threads = 1 if self._model_in_process else 0
                self._index = CodeIndex(self.workspace, self.config,
                                        embed_threads=lambda: threads)
            return self._index

    @property
    def gate(self) -> Any:
        """The verification gate; the diff review reaches the backend only when it runs."""
        with self._lock:
            if self._gate is None:
                from .verify import Gate

                self._gate = Gate(self.workspace, self.config, backend=lambda: self.backend)
            return self._gate

    @property
    def knowledge(self) -> Any:
        """The knowledge store (pattern library, error->fix cache, doc fragments); None when
        `[knowledge] enabled = false`."""
        with self._lock:
            settings = getattr(self.config, "knowledge", None)
            if self._knowledge is None and getattr(settings, "enabled", True):
                from .knowledge import KnowledgeStore

                self._knowledge = KnowledgeStore(
                    self.workspace, self.config, index_provider=lambda: self.index,
                    max_bytes=int(getattr(settings, "max_mb", 32)) * 1024 * 1024)
            return self._knowledge

    # --- documents ---------------------------------------------------------------------------

    def open_document(self, path_or_uri: str | Path, text: str, version: int | None = None,
                      language_id: str = "") -> Document:
        document = self.workspace.open_document(path_or_uri, text, version, language_id)
        self.index.update_document(document.path, text)
        return document

    def update_document(self, path_or_uri: str | Path, text: str,
                        version: int | None = None) -> Document:
        document = self.workspace.update_document(path_or_uri, text, version)
        self.index.update_document(document.path, text)
        return document

    def close_document(self, path_or_uri: str | Path) -> None:
        self.workspace.close_document(path_or_uri)

    # --- the calls front ends make ---------------------------------------------------------

    def implement(self, task: Task, *, cancel: CancelToken | None = None,
                  on_event: EventSink | None = None) -> Result:
        """Run the pipeline FSM on one task; the result carries verified patches or says why not."""
        from .pipeline import run_task

        return run_task(self, task, cancel=cancel or CancelToken(), on_event=on_event)

    def complete(self, path_or_uri: str | Path, line: int, column: int, *,
                 cancel: CancelToken | None = None) -> Any:
        """One fill-in-the-middle completion at a position (inline completion, `localcode complete`)."""
        from .pipeline.completion import complete_at

        with self._lock:
            self.completion_counts["requested"] += 1
        try:
            result = complete_at(self, path_or_uri, line, column, cancel=cancel or CancelToken())
        except Cancelled:
            with self._lock:
                self.completion_counts["cancelled"] += 1
            raise
        outcome = "cancelled" if getattr(result, "finish_reason", "") == "cancelled" else "finished"
        with self._lock:
            self.completion_counts[outcome] += 1
        return result

    def health(self) -> dict[str, Any]:
        """What `localcode doctor` reports, as a JSON-able dict."""
        from .doctor import collect_health

        report = collect_health(self.workspace.root, config=self.config, engine=self)
        with self._lock:
            report["completions"] = dict(self.completion_counts)
        return report

    def close(self) -> None:
        """Release the index's background workers and files."""
        index, self._index = self._index, None
        if index is not None and hasattr(index, "close"):
            index.close()
        knowledge, self._knowledge = self._knowledge, None
        if knowledge is not None:
            knowledge.close()
