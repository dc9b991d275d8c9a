"""JSON-RPC hygiene on top of pygls' LanguageServerProtocol.

Stock pygls 2.1.1 structures messages inside `json.loads` (a bad parameter loses the request id,
so the client never gets an answer), drops requests silently after `shutdown`, answers nothing
before `initialize`, puts tracebacks into error `data`, shows out-of-band errors as popups, and
cancels only the outer future of a command. This class takes raw bodies instead and guarantees:
exactly one response per request id, -32700 / -32600 / -32601 / -32602 / -32002 / -32603 codes
as the spec says, and cancellation that reaches the engine through a CancelToken per request.

Methods in the server's routes table (routes.py) are dispatched here, by their route: inline
or as a background task, each request registered with its cancel token in the server's
RequestRegistry before its handler runs. pygls keeps the lifecycle (initialize, shutdown).
"""

from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import Future
from functools import partial
from typing import TYPE_CHECKING, Any, TypeGuard

import attrs
from lsprotocol import types
from lsprotocol.types import ResponseError, ResponseErrorMessage
from pygls.exceptions import JsonRpcException
from pygls.protocol import LanguageServerProtocol, lsp_method
from pygls.protocol.json_rpc import JsonRPCNotification, JsonRPCRequestMessage, MsgId

from ..logs import get_logger
from .routes import BACKGROUND, INLINE, Route

if TYPE_CHECKING:
    from .server import LocalcodeServer

log = get_logger("server.protocol")

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_NOT_INITIALIZED = -32002
REQUEST_CANCELLED = -32800
CONTENT_MODIFIED = -32801


def _is_valid_id(value: Any) -> TypeGuard[int | str]:
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def _short(exc: BaseException, limit: int = 300) -> str:
    text = str(exc).replace("\n", " ").strip() or type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "..."


class LocalcodeProtocol(LanguageServerProtocol):
    """LanguageServerProtocol fed raw message bodies, with strict JSON-RPC and LSP lifecycle."""

    _server: LocalcodeServer

    def __init__(self, server: Any, converter: Any) -> None:
        super().__init__(server, converter)
        self._initialize_seen = False
        self._write_lock = threading.Lock()
        self.loop: asyncio.AbstractEventLoop | None = None

    # --- entry point -------------------------------------------------------------------------

    def handle_body(self, body: bytes) -> None:
        """Handle one framed message body (whatever bytes the client sent)."""
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            log.warning("unparsable message (%d bytes): %s", len(body), _short(exc, 120))
            self._send_error(None, PARSE_ERROR, "Parse error: the message is not valid JSON")
            return
        if not isinstance(data, dict):
            self._send_error(None, INVALID_REQUEST,
                             "Invalid request: expected a JSON object (batches are not supported)")
            return
        has_id = "id" in data
        msg_id = data.get("id")
        method = data.get("method")
        reply_id = msg_id if _is_valid_id(msg_id) else None
        if data.get("jsonrpc") != "2.0":
            if has_id or method is not None:
                self._send_error(reply_id, INVALID_REQUEST, 'Invalid request: "jsonrpc" must be "2.0"')
            return
        if method is None:
            if has_id and _is_valid_id(msg_id) and ("result" in data or "error" in data):
                self._handle_client_response(msg_id, data)
            else:
                log.warning("ignoring a message with neither a method nor a valid response id")
            return
        if not isinstance(method, str):
            if has_id:
                self._send_error(reply_id, INVALID_REQUEST, 'Invalid request: "method" must be a string')
            return
        if has_id:
            if not _is_valid_id(msg_id):
                self._send_error(None, INVALID_REQUEST,
                                 'Invalid request: "id" must be an integer or a string')
                return
            self._dispatch_request(msg_id, method, data.get("params"))
        else:
            self._dispatch_notification(method, data.get("params"))

    # --- requests ----------------------------------------------------------------------------

    def _dispatch_request(self, msg_id: MsgId, method: str, params: Any) -> None:
        if self._shutdown:
            self._send_error(msg_id, INVALID_REQUEST, "Invalid request: the server is shutting down")
            return
        if method == types.INITIALIZE:
            if self._initialize_seen:
                self._send_error(msg_id, INVALID_REQUEST, "Invalid request: already initialized")
                return
        elif not self._initialize_seen:
            self._send_error(msg_id, SERVER_NOT_INITIALIZED, "Server not initialized")
            return
        if self.fm.builtin_features.get(method) is None and self.fm.features.get(method) is None:
            self._send_error(msg_id, METHOD_NOT_FOUND, f"Method not found: {method[:200]}")
            return
        message_type = self.get_message_type(method) or JsonRPCRequestMessage
        if attrs.has(message_type) and "id" not in attrs.fields_dict(message_type):
            self._send_error(msg_id, INVALID_REQUEST,
                             f"Invalid request: {method} is a notification, not a request")
            return
        raw: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if params is not None:
            raw["params"] = params
        try:
            message = self._converter.structure(raw, message_type)
        except Exception as exc:  # cattrs raises many kinds for wrong shapes
            self._send_error(msg_id, INVALID_PARAMS, f"Invalid params for {method}: {_short(exc)}")
            return
        if method == types.INITIALIZE:
            self._initialize_seen = True
        route = self._server.routes.get(method)
        if route is not None and route.mode in (INLINE, BACKGROUND):
            self._run_request(msg_id, route, message.params)
        else:
            self.handle_message(message)

    def _run_request(self, msg_id: MsgId, route: Route, params: Any) -> None:
        """Run a routed request: registered (with its cancel token) before its handler runs,
        answered exactly once when it ends."""
        request = self._server.requests.begin(msg_id, route.method)
        done = partial(self._end_request, request)
        if route.mode == BACKGROUND:
            task = asyncio.ensure_future(route.handler(params, request))
            request.task = task
            task.add_done_callback(done)
            return
        future: Future[Any] = Future()
        try:
            future.set_result(route.handler(params, request))
        except Exception as exc:
            future.set_exception(exc)
        done(future)

    def _end_request(self, request: Any, future: Future[Any]) -> None:
        self._server.requests.end(request)
        self._send_handler_result(future, msg_id=request.id)

    def _handle_client_response(self, msg_id: MsgId, data: dict[str, Any]) -> None:
        future = self._request_futures.get(msg_id)
        if future is None:
            log.debug("response to an unknown request id %r", msg_id)
            return
        message: Any
        try:
            if "error" in data:
                message = self._converter.structure(data, ResponseErrorMessage)
            else:
                response_type = self._result_types.get(msg_id) or None
                if response_type is None:
                    self._request_futures.pop(msg_id, None)
                    future.set_result(data.get("result"))
                    return
                message = self._converter.structure(data, response_type)
        except Exception as exc:
            self._request_futures.pop(msg_id, None)
            self._result_types.pop(msg_id, None)
            if not future.done():
                future.set_exception(JsonRpcException(f"malformed response: {_short(exc)}"))
            return
        self._result_types.pop(msg_id, None)
        self.handle_message(message)

    # --- notifications -----------------------------------------------------------------------

    def _dispatch_notification(self, method: str, params: Any) -> None:
        if method == types.EXIT:
            self._server.request_exit(0 if self._shutdown else 1)
            return
        if self._shutdown:
            return
        if method == types.CANCEL_REQUEST:
            request_id = params.get("id") if isinstance(params, dict) else None
            if _is_valid_id(request_id):
                self._handle_cancel_notification(request_id)
            return
        if not self._initialize_seen:
            log.debug("dropping notification %s before initialize", method[:200])
            return
        if self.fm.builtin_features.get(method) is None and self.fm.features.get(method) is None:
            if not method.startswith("$/"):
                log.info("ignoring notification for unknown method %s", method[:200])
            return
        message_type = self.get_message_type(method) or JsonRPCNotification
        raw: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            raw["params"] = params
        try:
            message = self._converter.structure(raw, message_type)
        except Exception as exc:
            log.warning("ignoring %s with invalid params: %s", method, _short(exc))
            return
        route = self._server.routes.get(method)
        if route is not None and route.mode in (INLINE, BACKGROUND):
            self._run_notification(route, message.params)
        else:
            self.handle_message(message)

    def _run_notification(self, route: Route, params: Any) -> None:
        try:
            if route.mode == INLINE:
                route.handler(params)
                return
            task = asyncio.ensure_future(route.handler(params))
            task.add_done_callback(partial(self._notification_done, route.method))
        except Exception as exc:
            self._notification_failed(route.method, exc)

    def _notification_done(self, method: str, task: asyncio.Future[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._notification_failed(method, task.exception())

    def _notification_failed(self, method: str, exc: BaseException | None) -> None:
        log.error("handling %s failed: %r", method, exc)
        if isinstance(exc, Exception):
            self._server.report_server_error(exc, None)

    def _handle_cancel_notification(self, msg_id: MsgId) -> None:
        """Cancel a request through the registry: engine work stops through its token (the
        handler then answers -32800); a handler not waiting on the engine is cancelled."""
        if self._server.requests.cancel(msg_id):
            return
        future = self._request_futures.get(msg_id)
        if future is not None and not future.done():
            future.cancel()

    # --- lifecycle: exit is handled in _dispatch_notification ---------------------------------

    @lsp_method(types.EXIT)
    def lsp_exit(self, *args: Any) -> None:  # type: ignore[override]  # not a generator: exits
        self._server.request_exit(0 if self._shutdown else 1)

    # --- responses ---------------------------------------------------------------------------

    def _send_handler_result(self, future: Future[Any], *, msg_id: MsgId) -> None:
        """Exactly one response per request; errors carry a message, never a traceback."""
        self._request_futures.pop(msg_id, None)
        if future.cancelled():
            self._send_error(msg_id, REQUEST_CANCELLED, "Request cancelled")
            return
        exc = future.exception()
        if exc is None:
            self._send_response(msg_id, result=future.result())
        elif isinstance(exc, JsonRpcException):
            data = exc.data if not (isinstance(exc.data, dict) and "traceback" in exc.data) else None
            self._send_error(msg_id, exc.code, exc.message, data)
        elif isinstance(exc, (asyncio.CancelledError,)):
            self._send_error(msg_id, REQUEST_CANCELLED, "Request cancelled")
        else:
            log.error("request %r failed", msg_id, exc_info=(type(exc), exc, exc.__traceback__))
            self._send_error(msg_id, INTERNAL_ERROR,
                             f"Internal error: {type(exc).__name__}: {_short(exc)}")

    def _send_error(self, msg_id: MsgId | None, code: int, message: str, data: Any = None) -> None:
        error = ResponseError(code=code, message=message, data=data)
        self._send_response(msg_id, error=error)

    def _send_response(self, msg_id: Any, result: Any = None, error: Any = None) -> None:
        if error is not None and msg_id is None:
            # JSON-RPC wants "id": null here; the lsprotocol converter would drop the key
            response: Any = {"jsonrpc": "2.0", "id": None, "error": {
                "code": error.code, "message": error.message}}
        elif error is not None:
            response = ResponseErrorMessage(id=msg_id, error=error)
        else:
            response_type = self._result_types.pop(msg_id, None)
            response = (response_type(id=msg_id, result=result, jsonrpc="2.0") if response_type
                        else {"jsonrpc": "2.0", "id": msg_id, "result": result})
        try:
            body = json.dumps(response, default=self._serialize_message)
        except Exception as exc:
            log.error("cannot serialize the response to %r: %s", msg_id, _short(exc))
            body = json.dumps({"jsonrpc": "2.0", "id": msg_id, "error": {
                "code": INTERNAL_ERROR, "message": "Internal error: unserializable result"}})
        self._write_body(body)

    def _send_data(self, data: Any) -> None:
        if not data:
            return
        try:
            body = json.dumps(data, default=self._serialize_message)
        except Exception as exc:
            log.error("cannot serialize an outgoing message: %s", _short(exc))
            return
        self._write_body(body)

    def _write_body(self, body: str) -> None:
        """Frame and write; safe from any thread (worker threads report progress)."""
        log.debug("send %s", body[:2000])
        raw = body.encode("utf-8")
        frame = b"Content-Length: %d\r\n\r\n" % len(raw) + raw
        writer = self.writer
        if writer is None:
            return
        loop = self.loop
        if loop is not None and not loop.is_closed():
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is not loop:
                loop.call_soon_threadsafe(self._write_frame, frame)
                return
        self._write_frame(frame)

    def _write_frame(self, frame: bytes) -> None:
        writer = self.writer
        if writer is None:
            return
        try:
            with self._write_lock:
                writer.write(frame)
        except (BrokenPipeError, ConnectionError, ValueError, OSError):
            log.warning("the client connection is gone; stopping")
            self._server.request_exit(1)
