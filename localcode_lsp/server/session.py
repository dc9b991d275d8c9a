"""One client session: its workspace roots and their Engines, the configuration the client sent,
the trust decision, what the client can do, and the open documents.

Trust: a workspace runs its own code (tests, linters) only when the client says it is trusted
(`initializationOptions: {"trusted": true}`, what the editors send for a trusted folder) and
`localcode serve --untrusted` was not given. Without a word from the client it is untrusted:
parse-only verification, and its `localcode.toml` sets only harmless keys.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsprotocol import types

from ..config import Config, ConfigError, load_config
from ..logs import get_logger
from ..workspace import OutsideWorkspace, uri_to_path
from .documents import UTF16, DocumentStore

log = get_logger("server.session")

EngineFactory = Callable[..., Any]
# initializationOptions keys that are about the session, not localcode.toml settings
SESSION_KEYS = ("trusted", "explanation_document")


def default_engine_factory(root: Path, *, overrides: dict | None, trusted: bool,
                           config: Config | None = None) -> Any:
    """The real Engine (heavy parts load lazily on first use)."""
    from ..engine import Engine

    return Engine(root, overrides=overrides, trusted=trusted, config=config)


@dataclass
class ClientAbilities:
    """What the client announced in `initialize` (and its initializationOptions)."""

    work_done_progress: bool = False
    pull_configuration: bool = False
    inline_completion: bool = False
    document_changes: bool = True
    watched_files_registration: bool = False
    # the client opens an explain result as a markdown document (no popup needed)
    explanation_document: bool = False

    @classmethod
    def from_capabilities(cls, caps: types.ClientCapabilities) -> ClientAbilities:
        window, workspace, text = caps.window, caps.workspace, caps.text_document
        edit = workspace.workspace_edit if workspace else None
        watched = workspace.did_change_watched_files if workspace else None
        return cls(work_done_progress=bool(window and window.work_done_progress),
                   pull_configuration=bool(workspace and workspace.configuration),
                   inline_completion=bool(text and text.inline_completion),
                   document_changes=bool(edit and edit.document_changes),
                   watched_files_registration=bool(watched and watched.dynamic_registration))


LogToClient = Callable[..., None]


class Session:
    """Roots, engines, settings and trust for one client; the documents it has open."""

    def __init__(self, engine_factory: EngineFactory, *, trusted: bool | None,
                 log_to_client: LogToClient) -> None:
        self.engine_factory = engine_factory
        self._forced_untrusted = trusted is False  # `serve --untrusted`
        self.trusted = bool(trusted)  # until the client says otherwise
        self.log_to_client = log_to_client
        self.documents = DocumentStore()
        self.encoding = UTF16
        self.client = ClientAbilities()
        self.roots: list[Path] = []
        self.engines: dict[Path, Any] = {}
        self.overrides: dict[str, Any] = {}
        self._lock = threading.Lock()

    # --- roots -------------------------------------------------------------------------------

    def add_root(self, uri: str) -> None:
        try:
            path = Path(os.path.realpath(uri_to_path(uri)))
        except OutsideWorkspace:
            return
        if path.is_dir() and path not in self.roots:
            self.roots.append(path)

    def remove_root(self, uri: str) -> Any | None:
        """Forget a folder; returns its Engine (the caller closes it off the event loop)."""
        try:
            path = Path(os.path.realpath(uri_to_path(uri)))
        except OutsideWorkspace:
            return None
        if path in self.roots:
            self.roots.remove(path)
        with self._lock:
            return self.engines.pop(path, None)

    def root_for(self, uri: str) -> Path | None:
        """The innermost workspace root containing `uri`."""
        try:
            path = uri_to_path(uri)
        except OutsideWorkspace:
            return None
        best = None
        for root in self.roots:
            try:
                Path(os.path.realpath(path)).relative_to(root)
            except ValueError:
                continue
            if best is None or len(root.parts) > len(best.parts):
                best = root
        return best

    def engine_for(self, uri: str) -> Any | None:
        """The Engine of the workspace root containing `uri` (created on first use)."""
        root = self.root_for(uri)
        if root is None:
            return None
        with self._lock:
            engine = self.engines.get(root)
            if engine is None:
                engine = self.engine_factory(root, overrides=None, trusted=self.trusted,
                                             config=self.load_config(root))
                self.engines[root] = engine
            return engine

    def open_engines(self) -> list[Any]:
        with self._lock:
            return list(self.engines.values())

    # --- settings ----------------------------------------------------------------------------

    def take_settings(self, settings: Any, *, may_trust: bool = False) -> None:
        """initializationOptions (`may_trust`) or workspace settings: the localcode.toml-shaped
        table, plus the session keys (trust, what the client can show). Workspace settings can
        come from a file in the repository (.vscode/settings.json), so they may lower the trust
        but never raise it."""
        if not isinstance(settings, dict):
            if settings is not None:
                self.log_to_client("localcode: settings must be a table; using defaults",
                                   types.MessageType.Warning, once_key="settings-not-table")
            self.overrides = {}
            return
        if isinstance(settings.get("localcode"), dict):
            settings = settings["localcode"]
        trusted = settings.get("trusted")
        if trusted is False or (trusted is True and may_trust and not self._forced_untrusted):
            self.trusted = trusted
        if isinstance(settings.get("explanation_document"), bool):
            self.client.explanation_document = settings["explanation_document"]
        self.overrides = {k: v for k, v in settings.items() if k not in SESSION_KEYS}

    def load_config(self, root: Path) -> Config:
        """The layered configuration for `root` with the client's settings on top; invalid
        settings give one log line and the next layer down, never a crash."""
        try:
            return load_config(root, overrides=self.overrides or None, trusted=self.trusted)
        except ConfigError as exc:
            self.log_to_client(f"localcode: invalid settings ({exc}); using the defaults",
                               types.MessageType.Warning, once_key=f"config:{exc}")
        try:
            return load_config(root, trusted=self.trusted)
        except ConfigError as exc:
            self.log_to_client(f"localcode: invalid localcode.toml ({exc}); using the defaults",
                               types.MessageType.Warning, once_key=f"config:{exc}")
            return Config()

    def reconfigure(self, roots: list[Path] | None = None) -> None:
        """Reload the configuration of `roots` (default: all) and hand it to their engines."""
        with self._lock:
            engines = [(root, engine) for root, engine in self.engines.items()
                       if roots is None or root in roots]
        for root, engine in engines:
            config = self.load_config(root)
            reconfigure = getattr(engine, "reconfigure", None)
            if reconfigure is not None:
                reconfigure(config, trusted=self.trusted)
            else:  # an engine without reconfigure (test doubles): swap the config it reads
                engine.config = config
        log.info("configuration updated for %d workspace(s)", len(engines))

    def close(self) -> None:
        for engine in self.open_engines():
            try:
                if hasattr(engine, "close"):
                    engine.close()
            except Exception as exc:
                log.warning("closing an engine failed: %s", exc)
