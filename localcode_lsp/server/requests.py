"""The one registry of requests in flight: each has a CancelToken from the moment it arrives.

`$/cancelRequest`, `window/workDoneProgress/cancel`, a newer completion for the same document,
`shutdown` and exit all cancel through here; nothing else holds a request's token. Work on the
engine is awaited with `await_engine`, which answers RequestCancelled within CANCEL_GRACE_S of a
cancel whether or not the engine has stopped yet (the engine keeps its cancelled token).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from pygls.exceptions import JsonRpcRequestCancelled

from ..cancel import Cancelled, CancelToken
from ..logs import get_logger

log = get_logger("server.requests")

# A cancelled request is answered when the engine stops or after this long, whichever is first
# (the budget is 200 ms); the engine keeps its cancelled token either way.
CANCEL_GRACE_S = 0.02


@dataclass(eq=False)
class Request:
    """One request from the client while it is in flight."""

    id: Any
    method: str
    cancel: CancelToken = field(default_factory=CancelToken)
    task: asyncio.Future[Any] | None = None  # a background handler's task
    # While the handler waits on the engine, a cancel reaches it through the token (the engine
    # stops, then the handler answers -32800); otherwise the handler's task itself is cancelled.
    awaiting_engine: bool = False


class RequestRegistry:
    """Requests by id, their cancel tokens, and the keys that link other things to them
    (a work-done progress token, "the completion for this document")."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[Any, Request] = {}
        self._by_key: dict[Hashable, Request] = {}

    def begin(self, msg_id: Any, method: str) -> Request:
        request = Request(msg_id, method)
        with self._lock:
            self._by_id[msg_id] = request
        return request

    def end(self, request: Request) -> None:
        with self._lock:
            if self._by_id.get(request.id) is request:
                del self._by_id[request.id]
            for key in [k for k, r in self._by_key.items() if r is request]:
                del self._by_key[key]

    def get(self, msg_id: Any) -> Request | None:
        with self._lock:
            return self._by_id.get(msg_id)

    def cancel(self, msg_id: Any, reason: str = "cancelled by the client") -> bool:
        """`$/cancelRequest`: False for an id not in flight."""
        request = self.get(msg_id)
        if request is None:
            return False
        self._cancel(request, reason)
        return True

    def link(self, key: Hashable, request: Request, *, supersede: str | None = None) -> None:
        """Link `key` to `request`; with `supersede`, the request linked to it before is
        cancelled for that reason (a newer completion for the same document)."""
        with self._lock:
            previous = self._by_key.get(key)
            self._by_key[key] = request
        if supersede is not None and previous is not None and previous is not request:
            previous.cancel.cancel(supersede)

    def cancel_linked(self, key: Hashable, reason: str) -> bool:
        """Cancel the request linked to `key` (a progress token's cancel button)."""
        with self._lock:
            request = self._by_key.get(key)
        if request is None:
            return False
        self._cancel(request, reason)
        return True

    def cancel_all(self, reason: str) -> None:
        with self._lock:
            requests = list(self._by_id.values())
        for request in requests:
            request.cancel.cancel(reason)

    @staticmethod
    def _cancel(request: Request, reason: str) -> None:
        request.cancel.cancel(reason)
        if not request.awaiting_engine and request.task is not None and not request.task.done():
            request.task.cancel()


async def await_engine(request: Request, future: asyncio.Future[Any]) -> Any:
    """Wait for engine work started for `request`; once its token is cancelled, give the engine
    CANCEL_GRACE_S to stop, then answer RequestCancelled either way."""
    loop = asyncio.get_running_loop()
    cancelled = loop.create_future()

    def wake() -> None:
        if not cancelled.done():
            cancelled.set_result(None)

    def on_cancel() -> None:  # any thread
        loop.call_soon_threadsafe(wake)

    request.awaiting_engine = True
    unregister = request.cancel.on_cancel(on_cancel)
    try:
        await asyncio.wait({future, cancelled}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        unregister()
        request.awaiting_engine = False
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
    if request.cancel.cancelled or getattr(result, "status", "") == "cancelled":
        raise JsonRpcRequestCancelled("Request cancelled")
    return result
