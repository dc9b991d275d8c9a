"""The localcode language server: LSP in, Engine calls out, nothing else.

This class wires the parts together and owns the process's lifetime (exit, the client-process
watch, cleanup). What each part does:

- `session.py`   roots, engines, settings, trust, client abilities, open documents
- `routes.py`    the one table of LSP methods -> handler, inline or background
- `requests.py`  the requests in flight and their cancel tokens
- `protocol.py`  strict JSON-RPC, dispatch by route
- features:      `lifecycle.py`, `sync.py`, `actions.py` (code actions), `commands.py`
                 (executeCommand), `completion.py`, `progress.py`, `configuration.py`,
                 `watched.py` (didChangeWatchedFiles); `edits.py` turns patches into edits.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from .. import __version__
from ..data import Result
from ..logs import get_logger
from .actions import CodeActions
from .client import Client
from .commands import COMMANDS, Commands
from .completion import Completion
from .configuration import Configuration
from .edits import workspace_edit
from .lifecycle import Lifecycle
from .progress import Progress
from .protocol import LocalcodeProtocol
from .requests import RequestRegistry
from .routes import register, routes_table
from .session import EngineFactory, Session, default_engine_factory
from .sync import DocumentSync
from .watched import WatchedFiles

log = get_logger("server")


class LocalcodeServer(LanguageServer):
    """pygls server with one Engine per workspace root.

    `trusted=False` (`localcode serve --untrusted`) keeps every workspace untrusted; None (the
    default) leaves the decision to the client (initializationOptions `"trusted": true`)."""

    def __init__(self, *, engine_factory: EngineFactory = default_engine_factory,
                 trusted: bool | None = None, log_level: str = "INFO") -> None:
        super().__init__("localcode", __version__, protocol_cls=LocalcodeProtocol,
                         text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.protocol: LocalcodeProtocol
        self.log_level = log_level
        self.exit_code: int | None = None
        self._exit_event = threading.Event()
        self._exit_callbacks: list[Callable[[], None]] = []
        self._task_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="localcode-task")
        self._completion_pool = ThreadPoolExecutor(max_workers=1,
                                                   thread_name_prefix="localcode-complete")
        self.client = Client(self.protocol)
        self.requests = RequestRegistry()
        self.session = Session(engine_factory, trusted=trusted, log_to_client=self.client.log)
        self.work_progress = Progress(self.protocol, self.session, self.requests)
        self.sync = DocumentSync(self.session, self.client)
        self.actions = CodeActions(self.session)
        self.commands = Commands(self.session, self.client, self.work_progress, self._task_pool)
        self.completion = Completion(self.session, self.requests, self.work_progress,
                                     self._completion_pool)
        self.configuration = Configuration(self.session, self.client)
        self.watched = WatchedFiles(self.session, self.client, self._task_pool)
        self.lifecycle = Lifecycle(self, self.session, self.client, self.requests,
                                   self.work_progress, self.configuration, self.watched,
                                   self._task_pool)
        self.routes = routes_table(self)
        register(self, self.routes, COMMANDS)

    # --- what other code reads from the server ---------------------------------------------

    @property
    def roots(self) -> list[Path]:
        return self.session.roots

    @roots.setter
    def roots(self, roots: list[Path]) -> None:
        self.session.roots = roots

    @property
    def engines(self) -> dict[Path, Any]:
        return self.session.engines

    def _workspace_edit(self, uri: str, relative: str, engine: Any,
                        result: Result) -> types.WorkspaceEdit:
        """The WorkspaceEdit the server would send for `result` (containment tests)."""
        session = self.session
        return workspace_edit(session.documents, session.encoding,
                              session.client.document_changes, uri, relative, engine, result)

    # --- lifetime ----------------------------------------------------------------------------

    def request_exit(self, code: int) -> None:
        """Stop serving (exit notification, lost client); the transport then exits with `code`."""
        if self.exit_code is None:
            self.exit_code = code
        self._exit_event.set()
        for callback in list(self._exit_callbacks):
            try:
                callback()
            except Exception:
                pass

    def on_exit(self, callback: Callable[[], None]) -> None:
        self._exit_callbacks.append(callback)
        if self._exit_event.is_set():
            callback()

    def close(self) -> None:
        """Cancel all work and release engines (their workers and child processes)."""
        self.requests.cancel_all("server exiting")
        self.session.close()
        self._task_pool.shutdown(wait=False, cancel_futures=True)
        self._completion_pool.shutdown(wait=False, cancel_futures=True)

    def watch_client_process(self, pid: int) -> None:
        """Exit when the editor process that started us is gone (no orphaned servers)."""
        def watch() -> None:
            import psutil

            while not self._exit_event.wait(0.5):
                try:
                    alive = psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"
                except Exception:
                    alive = False
                if not alive:
                    log.warning("the client process %d is gone; exiting", pid)
                    self.request_exit(1)
                    return

        threading.Thread(target=watch, name="localcode-client-watch", daemon=True).start()

    def report_server_error(self, error: Exception, source: Any) -> None:
        """Out-of-band errors go to the log, at most once per distinct problem."""
        text = f"localcode: {type(error).__name__}: {error}"[:500]
        log.error("%s", text)
        self.client.log(text, types.MessageType.Error, once_key=text)
