"""workspace/didChangeWatchedFiles: the server registers (dynamically, after `initialized`) for
`**/localcode.toml`, whose change reconfigures that workspace's engine, and for the source files
the index knows, whose changes on disk (a git checkout, a formatter, another tool) reindex them.
Files open in the editor are left alone: the editor's text wins over the disk."""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from lsprotocol import types

from ..config import CONFIG_FILENAME
from ..logs import get_logger
from ..workspace import OutsideWorkspace, uri_to_path
from .client import Client
from .session import Session

log = get_logger("server.watched")

REGISTRATION_ID = "localcode-watched-files"


def source_globs() -> list[str]:
    """`**/*.{py,pyi,...}`: the extensions the index parses (imported late: the index package
    pulls in tree-sitter, which the server does not load before it needs to)."""
    from ..index.languages import EXTENSIONS

    suffixes = sorted({suffix.lstrip(".") for suffix in EXTENSIONS if suffix != ".toml"})
    return [f"**/*.{{{','.join(suffixes)}}}"]


class WatchedFiles:
    """Reconfigure on localcode.toml changes, reindex source files changed on disk."""

    def __init__(self, session: Session, client: Client, pool: Executor) -> None:
        self._session = session
        self._client = client
        self._pool = pool

    async def register(self) -> None:
        """client/registerCapability for the watchers (clients with dynamic registration)."""
        if not self._session.client.watched_files_registration:
            return
        watchers = [types.FileSystemWatcher(glob_pattern=f"**/{CONFIG_FILENAME}")]
        watchers += [types.FileSystemWatcher(glob_pattern=glob) for glob in source_globs()]
        registration = types.Registration(
            id=REGISTRATION_ID, method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
            register_options=types.DidChangeWatchedFilesRegistrationOptions(watchers=watchers))
        try:
            await self._client.request(types.CLIENT_REGISTER_CAPABILITY,
                                       types.RegistrationParams(registrations=[registration]),
                                       10.0)
        except Exception as exc:
            log.info("the client did not register the file watchers: %r", exc)

    async def did_change(self, params: types.DidChangeWatchedFilesParams) -> None:
        config_roots: list[Path] = []
        changed: dict[Path, list[tuple[str, bool]]] = {}  # root -> [(relative, deleted)]
        for event in params.changes or []:
            root = self._session.root_for(event.uri)
            if root is None:
                continue
            try:
                path = Path(uri_to_path(event.uri))
            except OutsideWorkspace:
                continue
            if path.name == CONFIG_FILENAME:
                if path.parent == root and root not in config_roots:
                    config_roots.append(root)
                continue
            if self._session.documents.get(event.uri) is not None:
                continue  # open in the editor: its text is the truth, not the disk's
            deleted = event.type == types.FileChangeType.Deleted
            changed.setdefault(root, []).append((event.uri, deleted))
        if config_roots:
            log.info("localcode.toml changed in %s", [str(r) for r in config_roots])
            self._session.reconfigure(config_roots)
        for root, files in changed.items():
            engine = self._session.engine_for(root.as_uri())
            if engine is not None:
                await asyncio.get_running_loop().run_in_executor(
                    self._pool, reindex, engine, files)


def reindex(engine: Any, files: list[tuple[str, bool]]) -> None:
    """Hand each changed file's disk text to the index; a deletion rebuilds the AST index
    (incremental: unchanged files come from its cache)."""
    index = engine.index
    if any(deleted for _, deleted in files):
        index.build(embeddings=False)
        return
    for uri, _ in files:
        try:
            relative = engine.workspace.relative(uri)
            text = engine.workspace.snapshot(relative).text
            index.update_document(relative, text)
        except (OutsideWorkspace, OSError, UnicodeDecodeError, ValueError) as exc:
            log.info("not reindexed: %s (%s)", uri, exc)
