"""workspace/executeCommand: implement, fix, explain (the pipeline on the function under the
cursor) and health. One table maps each command to its handler.

The Task comes from `targeting.task_at_position`, the builder the CLI uses too: the function
around the position as the AST index sees it. The intent is the pipeline's to decide
(UNDERSTAND), except where the command names it (explain, fix).

Results: implement/fix apply a `workspace/applyEdit` (the editors keep undo) and answer
`{"status", "applied", "message", "files"}`; explain answers `{"kind": "explanation", "title",
"markdown"}`, which the editors open as a markdown document (a client that did not say it can
gets a short popup as well); no verified candidate is a warning popup with the best candidate's
gate summary.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from typing import Any, TypeGuard

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams

from ..data import Intent, Result, Task
from ..logs import get_logger
from ..targeting import task_at_position
from ..workspace import OutsideWorkspace
from .client import Client
from .documents import RangeError, engine_position, offset_of
from .edits import failure_message, workspace_edit
from .progress import Progress, assembly_reporter
from .requests import Request, await_engine
from .session import Session

log = get_logger("server.commands")

CMD_IMPLEMENT = "localcode.implement"
CMD_FIX = "localcode.fix"
CMD_EXPLAIN = "localcode.explain"
CMD_HEALTH = "localcode.health"
COMMANDS = (CMD_IMPLEMENT, CMD_FIX, CMD_EXPLAIN, CMD_HEALTH)
# what each pipeline command tells UNDERSTAND (None: UNDERSTAND decides)
_INTENTS: dict[str, Intent | None] = {CMD_IMPLEMENT: None, CMD_FIX: "fix", CMD_EXPLAIN: "explain"}
SHORT_POPUP = 300  # characters of an explanation shown as a popup to clients without documents


def parse_target(arguments: Sequence[Any] | None) -> tuple[str, int, int, str, list[str]]:
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


def explanation_result(result: Result, task: Task) -> dict[str, Any]:
    """The explain command's answer: a markdown document for the editor to open."""
    text = result.explanation or result.message or "(no explanation)"
    where = task.qualified_name or task.path or "selection"
    return {"kind": "explanation", "title": f"localcode: explain {where}",
            "markdown": f"# {where}\n\n{text.strip()}\n", "status": result.status,
            "applied": False}


class Commands:
    """Runs the localcode commands; the work goes to `pool`, never the event loop."""

    def __init__(self, session: Session, client: Client, progress: Progress,
                 pool: Executor) -> None:
        self._session = session
        self._client = client
        self._progress = progress
        self._pool = pool
        self._table: dict[str, Callable[[types.ExecuteCommandParams, Request],
                                        Awaitable[Any]]] = {
            CMD_IMPLEMENT: self._pipeline, CMD_FIX: self._pipeline, CMD_EXPLAIN: self._pipeline,
            CMD_HEALTH: self._health,
        }

    async def execute(self, params: types.ExecuteCommandParams, request: Request) -> Any:
        """workspace/executeCommand: validates the arguments (-32602), then runs the command."""
        handler = self._table.get(params.command)
        if handler is None:
            raise JsonRpcInvalidParams(f"Invalid params: unknown command {params.command!r}")
        return await handler(params, request)

    async def _health(self, params: types.ExecuteCommandParams, request: Request) -> Any:
        arguments = params.arguments
        uri = None
        if arguments and isinstance(arguments[0], dict) \
                and isinstance(arguments[0].get("uri"), str):
            uri = arguments[0]["uri"]
        if uri is None and self._session.roots:
            uri = self._session.roots[0].as_uri()
        engine = self._session.engine_for(uri) if uri else None
        if engine is None:
            raise JsonRpcInvalidParams("Invalid params: no workspace folder is open")
        return await asyncio.get_running_loop().run_in_executor(self._pool, engine.health)

    def task_for(self, command: str, engine: Any, uri: str, line: int, character: int,
                 instruction: str = "", diagnostics: Sequence[str] = ()
                 ) -> tuple[Task, str, int | None]:
        """The Task for a command at an LSP position (the same as the CLI's for that file and
        position), the document's workspace-relative path and its version."""
        document = self._session.documents.get(uri)
        try:
            relative = engine.workspace.relative(uri)
            text = document.text if document else engine.workspace.snapshot(uri).text
            offset = offset_of(text, line, character, self._session.encoding)
        except (OutsideWorkspace, OSError, RangeError) as exc:
            raise JsonRpcInvalidParams(f"Invalid params: {exc}") from None
        where = engine_position(text, offset)  # lines at "\n" only, as the index counts them
        intent = "fix" if diagnostics and command == CMD_IMPLEMENT else _INTENTS[command]
        task = task_at_position(engine.index, relative, where.line, where.column,
                                instruction=instruction, intent=intent,
                                diagnostics=diagnostics)
        return task, relative, document.version if document else None

    async def _pipeline(self, params: types.ExecuteCommandParams, request: Request) -> Any:
        uri, line, character, instruction, diagnostics = parse_target(params.arguments)
        engine = self._session.engine_for(uri)
        if engine is None:
            raise JsonRpcInvalidParams(f"Invalid params: {uri} is not inside a workspace folder")
        task, relative, _ = self.task_for(params.command, engine, uri, line, character,
                                          instruction, diagnostics)
        title = "localcode: explain" if params.command == CMD_EXPLAIN else \
            "localcode: implement/fix"
        token = await self._progress.begin(title, params.work_done_token, request)
        started = time.monotonic()
        try:
            on_event = self._progress.sink(token)
            report = self._progress.reporter(token)

            def work() -> Result:
                loaded = getattr(engine, "backend_loaded", None)
                if loaded is not None and not loaded():
                    report("loading the model (assembled from its parts on first use)")
                    if hasattr(engine, "model_progress"):
                        engine.model_progress = assembly_reporter(report)
                    engine.backend  # noqa: B018  (the property loads it)
                return engine.implement(task, cancel=request.cancel, on_event=on_event)

            future = asyncio.get_running_loop().run_in_executor(self._pool, work)
            result: Result = await await_engine(request, future)
            log.info("%s on %s: %s in %.1f s", params.command, relative, result.status,
                     time.monotonic() - started)
            return await self._deliver(params.command, uri, relative, engine, task, result)
        finally:
            self._progress.end(token)

    async def _deliver(self, command: str, uri: str, relative: str, engine: Any, task: Task,
                       result: Result) -> dict[str, Any]:
        if result.status == "explained" or command == CMD_EXPLAIN:
            answer = explanation_result(result, task)
            if not self._session.client.explanation_document:
                text = answer["markdown"].split("\n", 2)[-1].strip()
                short = text if len(text) <= SHORT_POPUP else text[:SHORT_POPUP - 1] + "…"
                self._client.show(short, types.MessageType.Info)
            return answer
        if result.status in ("verified", "applied") and result.patches:
            session = self._session
            edit = workspace_edit(session.documents, session.encoding,
                                  session.client.document_changes, uri, relative, engine, result)
            try:
                response = await self._client.apply_edit(edit)
            except (TimeoutError, JsonRpcException) as exc:
                message = f"localcode: the editor did not apply the edit ({exc})"
                self._client.show(message, types.MessageType.Warning)
                return {"status": result.status, "applied": False, "message": message}
            applied = bool(getattr(response, "applied", False))
            message = result.message or "localcode: verified change applied"
            if not applied:
                reason = getattr(response, "failure_reason", None) or "no reason given"
                message = f"localcode: the editor refused the edit ({reason})"
                self._client.show(message, types.MessageType.Warning)
            elif note := result.untested_note():  # applied, but nothing ran its behaviour
                self._client.show(f"localcode: applied; {note}", types.MessageType.Info)
            return {"status": "applied" if applied else result.status, "applied": applied,
                    "message": message, "files": [patch.path for patch in result.patches]}
        message = failure_message(result)
        self._client.show(message, types.MessageType.Warning)
        return {"status": result.status, "applied": False, "message": message}
