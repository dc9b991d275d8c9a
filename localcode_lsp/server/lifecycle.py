"""The session's lifecycle: initialize (client abilities, roots, settings, trust), initialized
(pull settings, register file watchers, index each workspace under progress), workspace folders
added and removed, shutdown."""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from typing import Any

from lsprotocol import types
from pygls.capabilities import ServerCapabilitiesBuilder

from ..logs import get_logger
from .client import Client
from .configuration import Configuration
from .progress import Progress
from .requests import RequestRegistry
from .session import ClientAbilities, Session
from .watched import WatchedFiles

log = get_logger("server.lifecycle")


class Lifecycle:
    """initialize / initialized / didChangeWorkspaceFolders / shutdown."""

    def __init__(self, server: Any, session: Session, client: Client, requests: RequestRegistry,
                 progress: Progress, configuration: Configuration, watched: WatchedFiles,
                 pool: Executor) -> None:
        self._server = server  # exit handling and the client-process watch
        self._session = session
        self._client = client
        self._requests = requests
        self._progress = progress
        self._configuration = configuration
        self._watched = watched
        self._pool = pool
        self._initialized = False

    def initialize(self, params: types.InitializeParams) -> None:
        session = self._session
        caps = params.capabilities
        encoding = ServerCapabilitiesBuilder.choose_position_encoding(caps)
        session.encoding = str(getattr(encoding, "value", encoding))
        session.client = ClientAbilities.from_capabilities(caps)
        roots = [folder.uri for folder in params.workspace_folders or []]
        if params.root_uri:
            roots.append(params.root_uri)
        elif params.root_path:
            from pathlib import Path

            roots.append(Path(params.root_path).as_uri())
        for uri in roots:
            session.add_root(uri)
        session.take_settings(params.initialization_options, may_trust=True)
        if session.roots:
            from ..logs import setup_logging
            from ..workspace import state_dir_problem

            # a committed `.localcode` link is never followed: then the log goes to stderr only
            root = session.roots[0]
            log_dir = None if state_dir_problem(root) else root / ".localcode"
            setup_logging(log_dir, self._server.log_level, stderr=True)
        if params.process_id is not None and params.process_id > 0:
            self._server.watch_client_process(params.process_id)
        log.info("initialized: roots=%s encoding=%s progress=%s trusted=%s",
                 [str(r) for r in session.roots], session.encoding,
                 session.client.work_done_progress, session.trusted)

    async def initialized(self, params: types.InitializedParams) -> None:
        if self._initialized:
            return  # the notification once more (a confused or hostile client): nothing to do
        self._initialized = True
        if not self._session.trusted:
            self._client.log("localcode: this workspace is not trusted: verification only "
                             "parses candidates and localcode.toml sets only harmless keys "
                             '(an editor trusts it with initializationOptions {"trusted": true})',
                             types.MessageType.Info, once_key="untrusted")
        if self._session.client.pull_configuration:
            await self._configuration.pull()
        await self._watched.register()
        await asyncio.gather(*(self._first_index(root.as_uri()) for root in self._session.roots))

    async def _first_index(self, uri: str) -> None:
        engine = self._session.engine_for(uri)
        if engine is not None:
            await self._progress.first_index(engine, self._pool)

    def folders_changed(self, params: types.DidChangeWorkspaceFoldersParams) -> None:
        """Folders added get an Engine on first use; folders removed release theirs."""
        for folder in params.event.removed or []:
            engine = self._session.remove_root(folder.uri)
            if engine is not None and hasattr(engine, "close"):
                self._pool.submit(engine.close)
        for folder in params.event.added or []:
            self._session.add_root(folder.uri)

    def shutdown(self, *args: Any) -> None:
        self._requests.cancel_all("server shutting down")
