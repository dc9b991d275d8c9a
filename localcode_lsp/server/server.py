"""The localcode language server: LSP in, Engine calls out, nothing else.

initializationOptions (and the `localcode` section of workspace settings) are a nested table in
the shape of localcode.toml, e.g. `{"generation": {"candidates": 3}}`, optionally wrapped as
`{"localcode": {...}}`; the extra key `"trusted": false` lowers trust (parse-only verification)
for editors with a workspace-trust model. Invalid settings give one window/logMessage and the
defaults, never a crash.

Editors show the results of commands like this: implement/fix applies a `workspace/applyEdit`
(VS Code and Neovim both apply it and keep undo); explain is a `window/showMessage` (VS Code: a
notification; Neovim: the message area) and the command's return value `{"explanation": ...}`;
no verified candidate is a warning showMessage with the best candidate's gate summary.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeGuard

from lsprotocol import types
from pygls.capabilities import ServerCapabilitiesBuilder
from pygls.exceptions import (
    JsonRpcContentModified,
    JsonRpcException,
    JsonRpcInvalidParams,
    JsonRpcRequestCancelled,
)
from pygls.lsp.server import LanguageServer

from .. import __version__
from ..cancel import Cancelled, CancelToken
from ..config import Config, ConfigError, load_config
from ..data import Position, Result, Task, TraceEvent
from ..logs import get_logger
from ..workspace import OutsideWorkspace, uri_to_path
from .documents import (
    UTF16,
    DocumentStore,
    OpenDocument,
    RangeError,
    code_point_column,
    engine_edit_offsets,
    line_starts,
    offset_of,
    position_of,
)
from .protocol import LocalcodeProtocol
from .symbols import enclosing_function

log = get_logger("server")

CMD_IMPLEMENT = "localcode.implement"
CMD_FIX = "localcode.fix"
CMD_EXPLAIN = "localcode.explain"
CMD_HEALTH = "localcode.health"
COMMANDS = (CMD_IMPLEMENT, CMD_FIX, CMD_EXPLAIN, CMD_HEALTH)
# A cancelled request is answered when the engine stops or after this long, whichever is first
# (the budget is 200 ms); the engine keeps its cancelled token either way.
CANCEL_GRACE_S = 0.02
_NON_CONFIG_KEYS = ("trusted",)

EngineFactory = Callable[..., Any]


def default_engine_factory(root: Path, *, overrides: dict | None, trusted: bool,
                           config: Config | None = None) -> Any:
    """The real Engine (heavy parts load lazily on first use)."""
    from ..engine import Engine

    return Engine(root, overrides=overrides, trusted=trusted, config=config)


class LocalcodeServer(LanguageServer):
    """pygls server with one Engine per workspace root."""

    def __init__(self, *, engine_factory: EngineFactory = default_engine_factory,
                 trusted: bool = True, log_level: str = "INFO") -> None:
        super().__init__("localcode", __version__, protocol_cls=LocalcodeProtocol,
                         text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.protocol: LocalcodeProtocol
        self.engine_factory = engine_factory
        self.trusted = trusted
        self.log_level = log_level
        self.documents = DocumentStore()
        self.encoding = UTF16
        self.roots: list[Path] = []
        self.engines: dict[Path, Any] = {}
        self.overrides: dict[str, Any] = {}
        self.exit_code: int | None = None
        self._exit_event = threading.Event()
        self._exit_callbacks: list[Callable[[], None]] = []
        self._engine_lock = threading.Lock()
        self._task_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="localcode-task")
        self._completion_pool = ThreadPoolExecutor(max_workers=1,
                                                   thread_name_prefix="localcode-complete")
        self._completion_tokens: dict[str, CancelToken] = {}
        self._progress_tokens: dict[Any, CancelToken] = {}
        self._active_progress: set[Any] = set()
        self._reported: set[str] = set()
        self._client_progress = False
        self._client_pull_config = False
        self._client_inline = False
        self._client_document_changes = True
        self._register_features()

    # --- lifecycle ---------------------------------------------------------------------------

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

    def cancel_everything(self, reason: str) -> None:
        for token in list(self.protocol.cancel_tokens.values()):
            token.cancel(reason)
        for token in list(self._completion_tokens.values()):
            token.cancel(reason)

    def close(self) -> None:
        """Cancel all work and release engines (their workers and child processes)."""
        self.cancel_everything("server exiting")
        for engine in list(self.engines.values()):
            try:
                if hasattr(engine, "close"):
                    engine.close()
            except Exception as exc:
                log.warning("closing an engine failed: %s", exc)
        self._task_pool.shutdown(wait=False, cancel_futures=True)
        self._completion_pool.shutdown(wait=False, cancel_futures=True)

    def _watch_client_process(self, pid: int) -> None:
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

    # --- messages to the client --------------------------------------------------------------

    def log_to_client(self, message: str, level: types.MessageType = types.MessageType.Info,
                      once_key: str | None = None) -> None:
        """window/logMessage (the editor's log, not a popup); `once_key` reports a problem once."""
        if once_key is not None:
            if once_key in self._reported or len(self._reported) >= 1000:
                return  # reported already (or a flood of distinct problems: the log has them)
            self._reported.add(once_key)
        self.protocol.notify(types.WINDOW_LOG_MESSAGE,
                             types.LogMessageParams(type=level, message=message))

    def report_server_error(self, error: Exception, source: Any) -> None:
        """Out-of-band errors go to the log, at most once per distinct problem."""
        text = f"localcode: {type(error).__name__}: {error}"[:500]
        log.error("%s", text)
        self.log_to_client(text, types.MessageType.Error, once_key=text)

    def show(self, message: str, level: types.MessageType) -> None:
        """A popup: only for the outcome of something the user asked for."""
        self.protocol.notify(types.WINDOW_SHOW_MESSAGE,
                             types.ShowMessageParams(type=level, message=message))

    # --- engines and configuration -----------------------------------------------------------

    def _settings_to_overrides(self, settings: Any) -> dict[str, Any]:
        if not isinstance(settings, dict):
            if settings is not None:
                self.log_to_client("localcode: settings must be a table; using defaults",
                                   types.MessageType.Warning, once_key="settings-not-table")
            return {}
        if isinstance(settings.get("localcode"), dict):
            settings = settings["localcode"]
        if settings.get("trusted") is False:
            self.trusted = False
        return {k: v for k, v in settings.items() if k not in _NON_CONFIG_KEYS}

    def _load_config(self, root: Path, overrides: dict[str, Any]) -> Config:
        try:
            return load_config(root, overrides=overrides or None)
        except ConfigError as exc:
            self.log_to_client(f"localcode: invalid settings ({exc}); using the defaults",
                               types.MessageType.Warning, once_key=f"config:{exc}")
        try:
            return load_config(root)
        except ConfigError as exc:
            self.log_to_client(f"localcode: invalid localcode.toml ({exc}); using the defaults",
                               types.MessageType.Warning, once_key=f"config:{exc}")
            return Config()

    def root_for(self, uri: str) -> Path | None:
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
        with self._engine_lock:
            engine = self.engines.get(root)
            if engine is None:
                config = self._load_config(root, self.overrides)
                engine = self.engine_factory(root, overrides=None, trusted=self.trusted,
                                             config=config)
                self.engines[root] = engine
            return engine

    def apply_settings(self, settings: Any) -> None:
        """New settings from the client: validate, then swap each engine's config."""
        self.overrides = self._settings_to_overrides(settings)
        with self._engine_lock:
            for root, engine in self.engines.items():
                engine.config = self._load_config(root, self.overrides)
        log.info("configuration updated")

    async def pull_configuration(self) -> None:
        """workspace/configuration for the `localcode` section (clients that support it)."""
        if not self.roots:
            return
        items = [types.ConfigurationItem(section="localcode", scope_uri=self.roots[0].as_uri())]
        try:
            result = await asyncio.wait_for(
                self.protocol.send_request_async(types.WORKSPACE_CONFIGURATION,
                                                 types.ConfigurationParams(items=items)), 5.0)
        except Exception as exc:
            log.info("workspace/configuration failed: %r", exc)
            return
        if isinstance(result, (list, tuple)) and result:
            self.apply_settings(result[0] if result[0] is not None else {})

    # --- registration ------------------------------------------------------------------------

    def _register_features(self) -> None:
        self.feature(types.INITIALIZE)(_plain(self._on_initialize))
        self.feature(types.INITIALIZED)(_plain(self._on_initialized))
        self.feature(types.SHUTDOWN)(_plain(self._on_shutdown))
        self.feature(types.TEXT_DOCUMENT_DID_OPEN)(_plain(self._on_did_open))
        self.feature(types.TEXT_DOCUMENT_DID_CHANGE)(_plain(self._on_did_change))
        self.feature(types.TEXT_DOCUMENT_DID_SAVE,
                     types.SaveOptions(include_text=False))(_plain(self._on_did_save))
        self.feature(types.TEXT_DOCUMENT_DID_CLOSE)(_plain(self._on_did_close))
        self.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)(_plain(self._on_did_change_configuration))
        self.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)(
            _plain(self._on_workspace_folders))
        self.feature(types.WINDOW_WORK_DONE_PROGRESS_CANCEL)(_plain(self._on_progress_cancel))
        self.feature(types.TEXT_DOCUMENT_CODE_ACTION, types.CodeActionOptions(
            code_action_kinds=[types.CodeActionKind.QuickFix, types.CodeActionKind.RefactorRewrite],
        ))(_plain(self._on_code_action))
        self.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION,
                     types.InlineCompletionOptions())(_plain(self._on_inline_completion))
        self.feature(types.TEXT_DOCUMENT_COMPLETION,
                     types.CompletionOptions(trigger_characters=[]))(_plain(self._on_completion))
        for name in COMMANDS:
            self.command(name)(_advertised_only)

    def _on_initialize(self, params: types.InitializeParams) -> None:
        caps = params.capabilities
        encoding = ServerCapabilitiesBuilder.choose_position_encoding(caps)
        self.encoding = str(getattr(encoding, "value", encoding))
        window = caps.window
        self._client_progress = bool(window and window.work_done_progress)
        workspace = caps.workspace
        self._client_pull_config = bool(workspace and workspace.configuration)
        edit_caps = workspace.workspace_edit if workspace else None
        self._client_document_changes = bool(edit_caps and edit_caps.document_changes)
        text_caps = caps.text_document
        self._client_inline = bool(text_caps and text_caps.inline_completion)
        roots: list[str] = []  # URIs
        for folder in params.workspace_folders or []:
            roots.append(folder.uri)
        if params.root_uri:
            roots.append(params.root_uri)
        elif params.root_path:
            roots.append(Path(params.root_path).as_uri())
        for uri in roots:
            self._add_root(uri)
        self.overrides = self._settings_to_overrides(params.initialization_options)
        if self.roots:
            from ..logs import setup_logging

            setup_logging(self.roots[0] / ".localcode", self.log_level, stderr=True)
        if params.process_id is not None and params.process_id > 0:
            self._watch_client_process(params.process_id)
        log.info("initialized: roots=%s encoding=%s progress=%s", [str(r) for r in self.roots],
                 self.encoding, self._client_progress)

    def _add_root(self, uri: str) -> None:
        try:
            path = Path(os.path.realpath(uri_to_path(uri)))
        except OutsideWorkspace:
            return
        if path.is_dir() and path not in self.roots:
            self.roots.append(path)

    def _on_workspace_folders(self, params: types.DidChangeWorkspaceFoldersParams) -> None:
        """Folders added get an Engine on first use; folders removed release theirs."""
        for folder in params.event.removed or []:
            try:
                path = Path(os.path.realpath(uri_to_path(folder.uri)))
            except OutsideWorkspace:
                continue
            if path in self.roots:
                self.roots.remove(path)
            with self._engine_lock:
                engine = self.engines.pop(path, None)
            if engine is not None and hasattr(engine, "close"):
                self._task_pool.submit(engine.close)
        for folder in params.event.added or []:
            self._add_root(folder.uri)

    def _on_initialized(self, params: types.InitializedParams) -> None:
        if self._client_pull_config:
            asyncio.ensure_future(self.pull_configuration())

    def _on_shutdown(self, *args: Any) -> None:
        self.cancel_everything("server shutting down")

    # --- document sync -----------------------------------------------------------------------

    def _on_did_open(self, params: types.DidOpenTextDocumentParams) -> None:
        item = params.text_document
        self.documents.open(item.uri, item.text, item.version, item.language_id)
        self._feed_engine(item.uri, item.text, item.version, item.language_id, opened=True)

    def _on_did_change(self, params: types.DidChangeTextDocumentParams) -> None:
        uri = params.text_document.uri
        try:
            document = self.documents.change(uri, params.text_document.version,
                                             list(params.content_changes), self.encoding)
        except KeyError:
            log.warning("didChange for a document that is not open: %s", uri)
            return
        except RangeError as exc:
            log.warning("rejected didChange for %s: %s", uri, exc)
            self.log_to_client(f"localcode: rejected an edit outside {uri}: {exc}; "
                               "the document may be out of sync until it is reopened",
                               types.MessageType.Warning, once_key=f"range:{uri}")
            return
        self._feed_engine(uri, document.text, document.version, "", opened=False)

    def _on_did_save(self, params: types.DidSaveTextDocumentParams) -> None:
        self._schedule_embeddings(params.text_document.uri, saved=True)

    def _on_did_close(self, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        self.documents.close(uri)
        engine = self.engine_for(uri)
        if engine is not None:
            try:
                engine.close_document(uri)
            except OutsideWorkspace:
                pass

    def _feed_engine(self, uri: str, text: str, version: int, language_id: str,
                     opened: bool) -> None:
        """Overlay + AST index, synchronously (both are cheap); errors are logged once."""
        engine = self.engine_for(uri)
        if engine is None:
            return
        try:
            if opened:
                engine.open_document(uri, text, version, language_id)
            else:
                engine.update_document(uri, text, version)
        except OutsideWorkspace:
            return
        except Exception as exc:
            # the overlay must hold the text even when indexing fails
            log.warning("indexing %s failed: %s", uri, exc, exc_info=True)
            self.log_to_client(f"localcode: indexing failed ({type(exc).__name__}: {exc})",
                               types.MessageType.Warning, once_key=f"index:{type(exc).__name__}")
            try:
                if opened:
                    engine.workspace.open_document(uri, text, version, language_id)
                else:
                    engine.workspace.update_document(uri, text, version)
            except Exception:
                pass

    def _schedule_embeddings(self, uri: str, *, saved: bool) -> None:
        """On save with `[index] update_on_save`, hand the saved text to the index again: it
        refreshes the AST now and the embeddings on its own debounced background worker."""
        if not saved:
            return
        engine = self.engine_for(uri)
        document = self.documents.get(uri)
        if engine is None or document is None or not engine.config.index.update_on_save:
            return
        self._feed_engine(uri, document.text, document.version, "", opened=False)

    async def _on_did_change_configuration(self, params: types.DidChangeConfigurationParams
                                           ) -> None:
        if self._client_pull_config:
            await self.pull_configuration()
        else:
            self.apply_settings(params.settings)

    def _on_progress_cancel(self, params: types.WorkDoneProgressCancelParams) -> None:
        token = self._progress_tokens.get(params.token)
        if token is not None:
            token.cancel("cancelled from the progress UI")

    # --- code actions and commands -----------------------------------------------------------

    def _on_code_action(self, params: types.CodeActionParams) -> list[types.CodeAction] | None:
        uri = params.text_document.uri
        document = self.documents.get(uri)
        if document is None or self.root_for(uri) is None:
            return None
        position = params.range.start
        try:
            line_column = code_point_column(document.text, position.line, position.character,
                                            self.encoding)
        except RangeError:
            return None
        del line_column
        span = enclosing_function(document.text, position.line, document.language_id)
        if span is None and document.language_id in ("python", ""):
            return None
        argument: dict[str, Any] = {"uri": uri, "position": {"line": position.line,
                                                            "character": position.character}}
        diagnostics = [d.message for d in params.context.diagnostics or []]
        where = f" `{span.name}`" if span else ""
        actions = []
        only = params.context.only
        if diagnostics:
            fix_argument = dict(argument, diagnostics=diagnostics)
            actions.append(types.CodeAction(
                title=f"localcode: implement/fix this{where}",
                kind=types.CodeActionKind.QuickFix,
                command=types.Command(title="localcode: fix", command=CMD_FIX,
                                      arguments=[fix_argument])))
        else:
            actions.append(types.CodeAction(
                title=f"localcode: implement/fix this{where}",
                kind=types.CodeActionKind.RefactorRewrite,
                command=types.Command(title="localcode: implement", command=CMD_IMPLEMENT,
                                      arguments=[argument])))
        actions.append(types.CodeAction(
            title=f"localcode: explain this{where}",
            kind=types.CodeActionKind.Empty,
            command=types.Command(title="localcode: explain", command=CMD_EXPLAIN,
                                  arguments=[argument])))
        if only:
            actions = [a for a in actions if a.kind is not None and any(
                str(a.kind).startswith(str(kind)) for kind in only)]
        return actions

    async def execute_command(self, params: types.ExecuteCommandParams) -> Any:
        """workspace/executeCommand: validates the arguments (-32602), then runs the engine."""
        if params.command not in COMMANDS:
            raise JsonRpcInvalidParams(f"Invalid params: unknown command {params.command!r}")
        if params.command == CMD_HEALTH:
            return await self._health(params.arguments)
        uri, line, character, instruction, diagnostics = _parse_target(params.arguments)
        return await self._run_task(params.command, uri, line, character, instruction,
                                    diagnostics, params.work_done_token)

    async def _health(self, arguments: Sequence[Any] | None) -> Any:
        uri = None
        if arguments and isinstance(arguments[0], dict) and isinstance(arguments[0].get("uri"),
                                                                       str):
            uri = arguments[0]["uri"]
        if uri is None and self.roots:
            uri = self.roots[0].as_uri()
        engine = self.engine_for(uri) if uri else None
        if engine is None:
            raise JsonRpcInvalidParams("Invalid params: no workspace folder is open")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._task_pool, engine.health)

    async def _run_task(self, command: str, uri: str, line: int, character: int,
                        instruction: str, diagnostics: list[str], work_done_token: Any) -> Any:
        engine = self.engine_for(uri)
        if engine is None:
            raise JsonRpcInvalidParams(f"Invalid params: {uri} is not inside a workspace folder")
        document = self.documents.get(uri)
        try:
            relative = engine.workspace.relative(uri)
            text = document.text if document else engine.workspace.snapshot(uri).text
        except (OutsideWorkspace, OSError) as exc:
            raise JsonRpcInvalidParams(f"Invalid params: {exc}") from None
        try:
            column = code_point_column(text, line, character, self.encoding)
        except RangeError as exc:
            raise JsonRpcInvalidParams(f"Invalid params: {exc}") from None
        version = document.version if document else None
        span = enclosing_function(text, line, document.language_id if document else "python")
        if command == CMD_EXPLAIN:
            intent = "explain"
        elif command == CMD_FIX or diagnostics:
            intent = "fix"
        else:
            intent = "generate" if span is not None and span.is_stub else "edit"
        task = Task(path=relative, position=Position(line, column),
                    symbol=span.name if span else None, instruction=instruction,
                    intent=intent, diagnostics=tuple(diagnostics))  # type: ignore[arg-type]
        cancel = CancelToken()
        msg_id = self.protocol.msg_id
        if msg_id is not None:
            self.protocol.cancel_tokens[msg_id] = cancel
        title = {"explain": "localcode: explain"}.get(intent, "localcode: implement/fix")
        progress = await self._progress_begin(title, work_done_token, cancel)
        started = time.monotonic()
        try:
            on_event = self._progress_sink(progress)
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(
                self._task_pool, lambda: engine.implement(task, cancel=cancel, on_event=on_event))
            result: Result = await self._await_engine(future, cancel)
            log.info("%s on %s: %s in %.1f s", command, relative, result.status,
                     time.monotonic() - started)
            return await self._deliver(command, uri, relative, version, engine, result)
        finally:
            if msg_id is not None:
                self.protocol.cancel_tokens.pop(msg_id, None)
            self._progress_end(progress)

    async def _await_engine(self, future: asyncio.Future, cancel: CancelToken) -> Any:
        """Wait for engine work; once cancelled, give it CANCEL_GRACE_S to stop, then answer
        RequestCancelled either way."""
        loop = asyncio.get_running_loop()
        cancelled = loop.create_future()

        def wake() -> None:
            if not cancelled.done():
                cancelled.set_result(None)

        def on_cancel() -> None:  # any thread
            loop.call_soon_threadsafe(wake)

        unregister = cancel.on_cancel(on_cancel)
        try:
            await asyncio.wait({future, cancelled}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            unregister()
        if not future.done():
            cancelled_at = time.monotonic()
            try:
                await asyncio.wait_for(asyncio.shield(future), CANCEL_GRACE_S)
            except TimeoutError:
                future.add_done_callback(lambda _: log.info(
                    "cancelled engine work stopped after %.0f ms",
                    (time.monotonic() - cancelled_at) * 1000))
                log.warning("engine work still running %.0f ms after cancellation; answering "
                            "the request now", CANCEL_GRACE_S * 1000)
            except Exception:
                pass
            raise JsonRpcRequestCancelled("Request cancelled")
        try:
            result = future.result()
        except Cancelled:
            raise JsonRpcRequestCancelled("Request cancelled") from None
        if cancel.cancelled or getattr(result, "status", "") == "cancelled":
            raise JsonRpcRequestCancelled("Request cancelled")
        return result

    async def _deliver(self, command: str, uri: str, relative: str, version: int | None,
                       engine: Any, result: Result) -> dict[str, Any]:
        if result.status == "explained" or command == CMD_EXPLAIN:
            text = result.explanation or result.message or "(no explanation)"
            self.show(text, types.MessageType.Info)
            return {"status": result.status, "applied": False, "explanation": text}
        if result.status in ("verified", "applied") and result.patches:
            edit = self._workspace_edit(uri, relative, engine, result)
            try:
                response = await asyncio.wait_for(self.workspace_apply_edit_async(
                    types.ApplyWorkspaceEditParams(edit=edit, label="localcode")), 60.0)
            except (TimeoutError, JsonRpcException) as exc:
                message = f"localcode: the editor did not apply the edit ({exc})"
                self.show(message, types.MessageType.Warning)
                return {"status": result.status, "applied": False, "message": message}
            applied = bool(getattr(response, "applied", False))
            message = result.message or "localcode: verified change applied"
            if not applied:
                reason = getattr(response, "failure_reason", None) or "no reason given"
                message = f"localcode: the editor refused the edit ({reason})"
                self.show(message, types.MessageType.Warning)
            elif note := result.untested_note():  # applied, but nothing ran its behaviour
                self.show(f"localcode: applied; {note}", types.MessageType.Info)
            return {"status": "applied" if applied else result.status, "applied": applied,
                    "message": message,
                    "files": [patch.path for patch in result.patches]}
        message = failure_message(result)
        self.show(message, types.MessageType.Warning)
        return {"status": result.status, "applied": False, "message": message}

    def _workspace_edit(self, uri: str, relative: str, engine: Any,
                        result: Result) -> types.WorkspaceEdit:
        """Versioned TextDocumentEdits from minimal diffs; ContentModified when the document
        moved on since the snapshot; refuses any path outside the workspace."""
        document_edits: list[types.TextDocumentEdit] = []
        changes: dict[str, list[types.TextEdit]] = {}
        for patch in result.patches:
            try:
                engine.workspace.resolve(patch.path)
            except OutsideWorkspace as exc:
                raise JsonRpcInvalidParams(f"refusing an edit outside the workspace: {exc}"
                                           ) from None
            patch_uri = uri if patch.path == relative else engine.workspace.uri(patch.path)
            current = self.documents.get(patch_uri)
            if current is not None:
                if current.version != patch.version or current.text != patch.before:
                    raise JsonRpcContentModified(
                        f"Content modified: {patch.path} changed (version {current.version}) "
                        f"since localcode read it (version {patch.version}); not applied")
            else:
                disk = engine.workspace.snapshot(patch.path).text
                if disk != patch.before:
                    raise JsonRpcContentModified(
                        f"Content modified: {patch.path} changed on disk; not applied")
            edits = lsp_edits(patch.before, patch.edits(), self.encoding)
            document_edits.append(types.TextDocumentEdit(
                text_document=types.OptionalVersionedTextDocumentIdentifier(
                    uri=patch_uri, version=current.version if current else None),
                edits=edits))
            changes[patch_uri] = list(edits)
        if self._client_document_changes:
            return types.WorkspaceEdit(document_changes=document_edits)
        return types.WorkspaceEdit(changes=changes)

    # --- progress ----------------------------------------------------------------------------

    async def _progress_begin(self, title: str, client_token: Any,
                              cancel: CancelToken) -> Any | None:
        if client_token is None and not self._client_progress:
            return None
        token = client_token
        if token is None:
            token = f"localcode-{uuid.uuid4()}"
            try:
                await asyncio.wait_for(self.protocol.send_request_async(
                    types.WINDOW_WORK_DONE_PROGRESS_CREATE,
                    types.WorkDoneProgressCreateParams(token=token)), 5.0)
            except Exception as exc:
                log.info("the client refused a progress token: %s", exc)
                return None
        self._progress_tokens[token] = cancel
        self._active_progress.add(token)
        self.protocol.notify(types.PROGRESS, types.ProgressParams(
            token=token, value=types.WorkDoneProgressBegin(title=title, cancellable=True,
                                                           message="starting")))
        return token

    def _progress_sink(self, token: Any | None) -> Callable[[TraceEvent], None]:
        loop = asyncio.get_running_loop()

        def sink(event: TraceEvent) -> None:
            if token is None or loop.is_closed():
                return
            message = progress_message(event)
            loop.call_soon_threadsafe(self._progress_report, token, message)

        return sink

    def _progress_report(self, token: Any, message: str) -> None:
        if token in self._active_progress:
            self.protocol.notify(types.PROGRESS, types.ProgressParams(
                token=token, value=types.WorkDoneProgressReport(message=message)))

    def _progress_end(self, token: Any | None) -> None:
        if token is None or token not in self._active_progress:
            return
        self._active_progress.discard(token)
        self._progress_tokens.pop(token, None)
        self.protocol.notify(types.PROGRESS, types.ProgressParams(
            token=token, value=types.WorkDoneProgressEnd()))

    # --- completion --------------------------------------------------------------------------

    async def _complete(self, uri: str, position: types.Position) -> tuple[str, OpenDocument,
                                                                           int] | None:
        """One engine completion for the cursor; None when there is nothing to offer."""
        document = self.documents.get(uri)
        engine = self.engine_for(uri) if document else None
        if document is None or engine is None:
            return None
        starts = line_starts(document.text)
        try:
            offset = offset_of(document.text, position.line, position.character, self.encoding,
                               starts)
        except RangeError as exc:
            raise JsonRpcInvalidParams(f"Invalid params: {exc}") from None
        column = offset - starts[position.line]
        previous = self._completion_tokens.get(uri)
        if previous is not None:
            previous.cancel("superseded by a newer completion request")
        cancel = CancelToken()
        self._completion_tokens[uri] = cancel
        msg_id = self.protocol.msg_id
        if msg_id is not None:
            self.protocol.cancel_tokens[msg_id] = cancel
        try:
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(
                self._completion_pool,
                lambda: engine.complete(uri, position.line, column, cancel=cancel))
            try:
                result = await self._await_engine(future, cancel)
            except JsonRpcRequestCancelled:
                if cancel.reason.startswith("superseded"):
                    return None
                raise
        finally:
            if self._completion_tokens.get(uri) is cancel:
                del self._completion_tokens[uri]
            if msg_id is not None:
                self.protocol.cancel_tokens.pop(msg_id, None)
        text = getattr(result, "text", None) or ""
        current = self.documents.get(uri)
        if current is None or current.version != document.version:
            return None  # the user kept typing: this suggestion is for old text
        if not useful_suggestion(text, document.text[offset:]):
            return None
        return text, document, offset

    async def _on_inline_completion(self, params: types.InlineCompletionParams
                                    ) -> types.InlineCompletionList | None:
        completed = await self._complete(params.text_document.uri, params.position)
        if completed is None:
            return types.InlineCompletionList(items=[])
        text, _, _ = completed
        return types.InlineCompletionList(items=[types.InlineCompletionItem(
            insert_text=text, range=types.Range(start=params.position, end=params.position))])

    async def _on_completion(self, params: types.CompletionParams) -> types.CompletionList:
        empty = types.CompletionList(is_incomplete=True, items=[])
        if self._client_inline:
            return empty  # the client asks textDocument/inlineCompletion: do not run twice
        completed = await self._complete(params.text_document.uri, params.position)
        if completed is None:
            return empty
        text, document, offset = completed
        word = re.search(r"[A-Za-z0-9_]*$", document.text[max(0, offset - 200):offset])
        prefix = word.group(0) if word else ""
        start_line, start_character = position_of(document.text, offset - len(prefix),
                                                  self.encoding)
        label = (prefix + text).splitlines()[0].strip() if (prefix + text).strip() else text
        return types.CompletionList(is_incomplete=True, items=[types.CompletionItem(
            label=label[:80] or "localcode",
            kind=types.CompletionItemKind.Snippet,
            detail="localcode",
            filter_text=prefix + text,
            sort_text="0",
            insert_text_format=types.InsertTextFormat.PlainText,
            text_edit=types.TextEdit(range=types.Range(
                start=types.Position(line=start_line, character=start_character),
                end=params.position), new_text=prefix + text))])


# --- helpers (pure, unit-tested) ------------------------------------------------------------

def _plain(method: Callable[..., Any]) -> Callable[..., Any]:
    """A plain function around a bound method (pygls sets attributes on handlers)."""
    if asyncio.iscoroutinefunction(method):
        async def async_handler(*args: Any) -> Any:
            return await method(*args)

        return async_handler

    def handler(*args: Any) -> Any:
        return method(*args)

    return handler


def _advertised_only(*args: Any) -> None:
    """Placeholder so pygls advertises the command; LocalcodeServer.execute_command runs it."""
    raise JsonRpcInvalidParams("Invalid params: command handled elsewhere")


def _parse_target(arguments: Sequence[Any] | None) -> tuple[str, int, int, str, list[str]]:
    """`[{uri, position: {line, character}, instruction?, diagnostics?}]` or -32602."""
    def bad(why: str) -> JsonRpcInvalidParams:
        return JsonRpcInvalidParams(f"Invalid params: {why}; expected "
                                    '[{"uri": ..., "position": {"line": n, "character": n}}]')

    if not isinstance(arguments, (list, tuple)) or len(arguments) != 1 \
            or not isinstance(arguments[0], dict):
        raise bad("one argument object is required")
    argument = arguments[0]
    uri = argument.get("uri")
    position = argument.get("position")
    if not isinstance(uri, str) or not uri:
        raise bad('"uri" must be a string')
    if not isinstance(position, dict):
        raise bad('"position" must be an object')
    line, character = position.get("line"), position.get("character")
    if not (_is_position_number(line) and _is_position_number(character)):
        raise bad("line and character must be non-negative integers")
    instruction = argument.get("instruction", "")
    if not isinstance(instruction, str):
        raise bad('"instruction" must be a string')
    diagnostics = argument.get("diagnostics", [])
    if not isinstance(diagnostics, (list, tuple)) or not all(isinstance(d, str) for d in diagnostics):
        raise bad('"diagnostics" must be a list of strings')
    return uri, line, character, instruction[:4000], list(diagnostics[:20])


def _is_position_number(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**31


def lsp_edits(before: str, edits: list, encoding: str) -> list[types.TextEdit]:
    """Engine TextEdits (code points, engine line model) -> LSP TextEdits in `encoding`."""
    starts = line_starts(before)
    result = []
    for edit in edits:
        start, end = engine_edit_offsets(before, edit)
        start_line, start_character = position_of(before, start, encoding, starts)
        end_line, end_character = position_of(before, end, encoding, starts)
        result.append(types.TextEdit(
            range=types.Range(start=types.Position(line=start_line, character=start_character),
                              end=types.Position(line=end_line, character=end_character)),
            new_text=edit.new_text))
    return result


def useful_suggestion(suggestion: str, text_after_cursor: str) -> bool:
    """False for empty suggestions and for ones that only repeat what follows the cursor."""
    if not suggestion.strip():
        return False
    if text_after_cursor.startswith(suggestion):
        return False
    rest_of_line = text_after_cursor.split("\n", 1)[0]
    return not (rest_of_line.strip() and suggestion.strip() == rest_of_line.strip())


def progress_message(event: TraceEvent) -> str:
    """`GENERATE: 3 candidates` style progress text from a pipeline event."""
    parts = [f"{event.state}: {event.message}".strip()]
    data = event.data or {}
    for key in ("candidates", "candidate", "passed", "attempt"):
        if key in data and isinstance(data[key], (int, str)):
            parts.append(f"{key} {data[key]}")
    return " · ".join(parts)[:200]


def failure_message(result: Result) -> str:
    """Why nothing was applied, with the best candidate's gate summary and first feedback."""
    lines = [result.message or f"localcode: no verified candidate ({result.status})"]
    if result.verdicts:
        best = max(result.verdicts, key=lambda verdict: verdict.rank_key())
        lines.append(f"best candidate: {best.summary()}")
        lines.extend(best.feedback[:3])
    return "\n".join(line for line in lines if line)[:1500]
