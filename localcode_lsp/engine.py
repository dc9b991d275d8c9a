"""One Engine per workspace: the long-lived parts (config, overlay, index, backend, gate,
knowledge) and the handful of calls both front ends use.

Heavy parts (the model, torch, lancedb) are created lazily on first use, never at start-up, so
`initialize` stays fast and `--help` imports nothing heavy.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .cancel import Cancelled, CancelToken
from .config import Config, load_config
from .data import Result, Task, TraceEvent
from .inference.backend import Backend
from .inference.catalogue import AssemblyProgress
from .logs import get_logger
from .workspace import Document, Workspace

if TYPE_CHECKING:  # the parts load lazily (torch, lancedb, tree-sitter): types only here
    from .context.rag import ContextProvider
    from .index import CodeIndex
    from .knowledge import KnowledgeStore
    from .pipeline.completion import CompletionResult
    from .verify import Gate

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
        self._config = config if config is not None else load_config(self.workspace.root,
                                                                     overrides=overrides,
                                                                     trusted=trusted)
        self._backend = backend
        # hears about a catalogue model's one-time assembly (a progress bar, $/progress)
        self.model_progress: AssemblyProgress | None = None
        # A backend handed in (tests, benchmarks) stays across reconfigure; one the engine
        # created from [model] is dropped when [model] changes.
        self._backend_given = backend is not None
        self._shares_cores_with_model = shares_cores_with_model
        self._model_in_process = self._computes_in_process()
        self._lock = threading.RLock()
        self._index: CodeIndex | None = None
        # how many completions ran to their end vs stopped by a cancel (health, load tests)
        self.completion_counts = {"requested": 0, "finished": 0, "cancelled": 0}
        self._gate: Gate | None = None
        self._knowledge: KnowledgeStore | None = None
        # Extra prompt context: the knowledge store's few-shot, docs and error-cache providers
        # may be appended here; the index provider is always used.
        self.context_providers: list[ContextProvider] = []

    def _computes_in_process(self) -> bool:
        if not self._shares_cores_with_model:
            return False
        if self._backend is not None:
            return bool(getattr(self._backend, "in_process", False))
        return self.config.model.backend == "llama.cpp"

    @property
    def root(self) -> Path:
        return self.workspace.root

    @property
    def config(self) -> Config:
        """The configuration every part uses now."""
        return self._config

    @config.setter
    def config(self, config: Config) -> None:
        # `engine.config = new` (what front ends did before `reconfigure`) reaches the parts too
        self.reconfigure(config)

    # --- lazily created collaborators ------------------------------------------------------

    @property
    def backend(self) -> Backend:
        """The model backend, created on first use (loads the model)."""
        with self._lock:
            if self._backend is None:
                from .inference import create_backend

                self._backend = create_backend(self.config, self.workspace.root,
                                               self.model_progress)
            return self._backend

    def backend_loaded(self) -> bool:
        return self._backend is not None

    @property
    def index(self) -> CodeIndex:
        """The codebase index (AST + dependency graph + embeddings)."""
        with self._lock:
            if self._index is None:
                from .index import CodeIndex

                # read on each embedding batch, so a model attached later takes its cores
                self._index = CodeIndex(self.workspace, self.config,
                                        embed_threads=lambda: 1 if self._model_in_process else 0)
            return self._index

    @property
    def gate(self) -> Gate:
        """The verification gate; the diff review reaches the backend only when it runs."""
        with self._lock:
            if self._gate is None:
                from .verify import Gate

                self._gate = Gate(self.workspace, self.config, backend=lambda: self.backend)
            return self._gate

    @property
    def knowledge(self) -> KnowledgeStore | None:
        """The knowledge store (pattern library, error->fix cache, doc fragments); None when
        `[knowledge] enabled = false`."""
        with self._lock:
            settings = self.config.knowledge
            if self._knowledge is None and settings.enabled:
                from .knowledge import KnowledgeStore

                self._knowledge = KnowledgeStore(
                    self.workspace, self.config, index_provider=lambda: self.index,
                    max_bytes=settings.max_mb * 1024 * 1024)
            return self._knowledge

    # --- configuration -----------------------------------------------------------------------

    def reconfigure(self, config: Config, *, trusted: bool | None = None) -> list[str]:
        """Hand a new configuration (and, when given, a new trust decision) to every part.

        The gate and the parts that read their settings on each call get the new `Config`;
        a part built from a setting that changed is dropped and rebuilt on next use: the model
        when [model] changed, the index when its embedder or file limit changed (and the
        knowledge store with it, which holds the index), the knowledge store when [knowledge]
        or the trust changed (it decides at start whether project tools may run). A call in
        flight finishes with the parts it started with. Returns what was rebuilt, for the log.
        """
        closing: list[CodeIndex | KnowledgeStore] = []
        rebuilt: list[str] = []
        with self._lock:
            old, self._config = self._config, config
            trust_changed = trusted is not None and trusted != self.workspace.trusted
            if trust_changed:
                self.workspace.trusted = bool(trusted)
            if config.model != old.model and self._backend is not None \
                    and not self._backend_given:
                self._backend = None  # the next call loads the model [model] names now
                rebuilt.append("model")
            self._model_in_process = self._computes_in_process()
            if self._gate is not None:
                self._gate.config = config  # the gate reads it (and the trust) on every call
            if self._index is not None:
                if (config.index.embedding_model, config.index.max_file_bytes) != \
                        (old.index.embedding_model, old.index.max_file_bytes):
                    closing.append(self._index)
                    self._index = None
                    rebuilt.append("index")
                else:
                    self._index.config = config
            if self._knowledge is not None:
                if config.knowledge != old.knowledge or trust_changed or "index" in rebuilt:
                    closing.append(self._knowledge)
                    self._knowledge = None
                    rebuilt.append("knowledge")
                else:
                    self._knowledge.config = config
        for part in closing:  # outside the lock: closing the index joins its worker
            part.close()
        if rebuilt or trust_changed:
            log.info("reconfigured: rebuilt %s%s", ", ".join(rebuilt) or "nothing",
                     f"; trusted={self.workspace.trusted}" if trust_changed else "")
        return rebuilt

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
        from .pipeline import Collaborators, run_task

        parts = Collaborators(config=self.config, workspace=self.workspace, index=self.index,
                              gate=self.gate, load_backend=lambda: self.backend,
                              knowledge=self._knowledge_or_none(),
                              extra_providers=list(self.context_providers))
        return run_task(parts, task, cancel=cancel or CancelToken(), on_event=on_event)

    def _knowledge_or_none(self) -> KnowledgeStore | None:
        try:
            return self.knowledge
        except Exception as exc:  # a broken store must not break the task
            log.warning("knowledge store unavailable: %s", exc)
            return None

    def complete(self, path_or_uri: str | Path, line: int, column: int, *,
                 cancel: CancelToken | None = None) -> CompletionResult:
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
        outcome = "cancelled" if result.finish_reason == "cancelled" else "finished"
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
        if index is not None:
            index.close()
        knowledge, self._knowledge = self._knowledge, None
        if knowledge is not None:
            knowledge.close()
