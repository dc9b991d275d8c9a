"""Work-done progress: a request's own (implement/fix/explain, cancellable from the editor's
progress UI), and progress the server creates for slow work nobody asked for by name: loading
(and, on first use, assembling) the model, and the first index of a workspace.

Progress is sent only to clients that announced `window.workDoneProgress` (or passed a token).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

from lsprotocol import types

from ..data import TraceEvent
from ..logs import get_logger
from .requests import Request, RequestRegistry
from .session import Session

log = get_logger("server.progress")

T = TypeVar("T")
Report = Callable[[str], None]
REPORT_INTERVAL_S = 0.2  # at most five reports a second from a busy loop (indexing)


def progress_message(event: TraceEvent) -> str:
    """`GENERATE: 3 candidates` style progress text from a pipeline event."""
    parts = [f"{event.state}: {event.message}".strip()]
    data = event.data or {}
    for key in ("candidates", "candidate", "passed", "attempt"):
        if key in data and isinstance(data[key], (int, str)):
            parts.append(f"{key} {data[key]}")
    return " · ".join(parts)[:200]


def assembly_reporter(report: Report) -> Callable[[str, int, int], None]:
    """An engine's `model_progress` hook (a catalogue model assembled from its parts on first
    use: message, bytes done, bytes in all) as progress reports, one per percent at most."""
    last = [-1]

    def on_assembly(message: str, done: int, total: int) -> None:
        percent = min(100, done * 100 // total) if total > 0 else 100
        if percent != last[0]:
            last[0] = percent
            report(f"{message} {percent}%")

    return on_assembly


class Progress:
    """`$/progress` begin/report/end, `window/workDoneProgress/create` and `/cancel`."""

    def __init__(self, protocol: Any, session: Session, requests: RequestRegistry) -> None:
        self._protocol = protocol
        self._session = session
        self._requests = requests
        self._active: set[Any] = set()
        self._loading: dict[int, None] = {}  # engines whose model load is being shown

    # --- a request's progress ----------------------------------------------------------------

    async def begin(self, title: str, client_token: Any, request: Request | None,
                    *, cancellable: bool = True) -> Any | None:
        """Start progress (the client's token, or one the server creates); None when the client
        shows no progress. The editor's cancel button cancels `request`."""
        if client_token is None and not self._session.client.work_done_progress:
            return None
        token = client_token
        if token is None:
            token = f"localcode-{uuid.uuid4()}"
            try:
                await asyncio.wait_for(self._protocol.send_request_async(
                    types.WINDOW_WORK_DONE_PROGRESS_CREATE,
                    types.WorkDoneProgressCreateParams(token=token)), 5.0)
            except Exception as exc:
                log.info("the client refused a progress token: %s", exc)
                return None
        if request is not None:
            self._requests.link(("progress", token), request)
        self._active.add(token)
        self._protocol.notify(types.PROGRESS, types.ProgressParams(
            token=token, value=types.WorkDoneProgressBegin(
                title=title, cancellable=cancellable and request is not None,
                message="starting")))
        return token

    def sink(self, token: Any | None) -> Callable[[TraceEvent], None]:
        """A pipeline event sink that reports each event (from any thread)."""
        report = self.reporter(token)
        return lambda event: report(progress_message(event))

    def reporter(self, token: Any | None) -> Report:
        """`report(message)` callable from any thread; a no-op without a token."""
        loop = asyncio.get_running_loop()

        def report(message: str) -> None:
            if token is not None and not loop.is_closed():
                loop.call_soon_threadsafe(self.report, token, message)

        return report

    def report(self, token: Any, message: str) -> None:
        if token in self._active:
            self._protocol.notify(types.PROGRESS, types.ProgressParams(
                token=token, value=types.WorkDoneProgressReport(message=message)))

    def end(self, token: Any | None, message: str | None = None) -> None:
        if token is None or token not in self._active:
            return
        self._active.discard(token)
        self._protocol.notify(types.PROGRESS, types.ProgressParams(
            token=token, value=types.WorkDoneProgressEnd(message=message)))

    def cancel(self, params: types.WorkDoneProgressCancelParams) -> None:
        """window/workDoneProgress/cancel: the editor's cancel button."""
        self._requests.cancel_linked(("progress", params.token), "cancelled from the progress UI")

    # --- progress the server starts ----------------------------------------------------------

    async def run(self, title: str, work: Callable[[Report], T], pool: Executor) -> T:
        """Run `work(report)` on `pool` under a progress the server creates."""
        token = await self.begin(title, None, None, cancellable=False)
        report = self.reporter(token)
        started = time.monotonic()
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, work, report)
        finally:
            self.end(token, f"done in {time.monotonic() - started:.1f} s")

    async def around_model_load(self, engine: Any, call: Awaitable[T]) -> T:
        """Await `call` (engine work that needs the model) under a "loading the model" progress
        when `engine` has not loaded it yet: the first call loads (and on first use assembles)
        it. The load happens where the engine needs it, never ahead: a call that returns early
        loads nothing. Engines that do not say whether they loaded are left alone."""
        loaded = getattr(engine, "backend_loaded", None)
        key = id(engine)
        if loaded is None or loaded() or key in self._loading:
            return await call
        self._loading[key] = None  # this call shows the progress; concurrent ones do not
        try:
            try:
                token = await self.begin("localcode: loading the model", None, None,
                                         cancellable=False)
            except BaseException:  # cancelled while asking the client for a token
                if asyncio.iscoroutine(call):
                    call.close()
                raise
            if token is not None:
                self.report(token, "loading the model (assembled from its parts on first use)")
                if hasattr(engine, "model_progress"):
                    engine.model_progress = assembly_reporter(self.reporter(token))
            try:
                return await call
            finally:
                self.end(token)
        finally:
            self._loading.pop(key, None)

    async def first_index(self, engine: Any, pool: Executor) -> None:
        """Build the AST index of a new workspace under progress (files parsed so far)."""
        index = getattr(engine, "index", None)
        if index is None or not hasattr(index, "build"):
            return

        def build(report: Report) -> Any:
            last = [0.0]

            def on_file(done: int, total: int, path: str) -> None:
                now = time.monotonic()
                if now - last[0] >= REPORT_INTERVAL_S or done == total:
                    last[0] = now
                    report(f"{done}/{total} files")

            return index.build(on_file, embeddings=False)

        try:
            await self.run("localcode: indexing", build, pool)
        except Exception as exc:  # the index also builds lazily on first use
            log.warning("indexing the workspace failed: %s", exc)
