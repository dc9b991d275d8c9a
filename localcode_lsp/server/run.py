"""Run a LocalcodeServer over stdio or TCP until `exit`, end of input, or the client is gone.

The process always ends with `os._exit` after a bounded cleanup, so a worker thread stuck in a
long call can never keep it alive (the issue: exit within 3 s, no child process left behind).
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO

from ..logs import get_logger
from .server import LocalcodeServer
from .transport import DEFAULT_MAX_BODY, read_frames, stdio_readers, stream_readers

log = get_logger("server.run")

CLEANUP_TIMEOUT_S = 1.5


class _BinaryWriter:
    """pygls writer over a binary stream (writes are already framed and locked)."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def write(self, data: bytes) -> None:
        self._stream.write(data)
        self._stream.flush()

    def close(self) -> None:
        try:
            self._stream.close()
        except OSError:
            pass


class _SocketWriter:
    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer

    def write(self, data: bytes) -> None:
        self._writer.write(data)

    def close(self) -> None:
        self._writer.close()


def _protect_stdout() -> BinaryIO:
    """The protocol gets a private copy of fd 1; fd 1 itself then points at stderr, so a stray
    print (ours or a C library's) can never corrupt the message stream."""
    protocol_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(protocol_fd, "wb", buffering=0)


async def _serve(server: LocalcodeServer, readline, read, writer, max_body: int) -> None:
    loop = asyncio.get_running_loop()
    protocol = server.protocol
    protocol.loop = loop
    protocol.set_writer(writer)
    exit_requested = loop.create_future()

    def wake() -> None:
        if not exit_requested.done():
            exit_requested.set_result(None)

    def on_exit() -> None:  # any thread
        loop.call_soon_threadsafe(wake)

    server.on_exit(on_exit)

    def on_oversized(length: int) -> None:
        protocol._send_error(None, -32600,
                             f"Invalid request: message of {length} bytes exceeds the "
                             f"{max_body}-byte limit")

    reading = asyncio.ensure_future(read_frames(readline, read, protocol.handle_body,
                                                on_oversized, max_body))
    await asyncio.wait({reading, exit_requested}, return_when=asyncio.FIRST_COMPLETED)
    if not exit_requested.done():
        log.info("end of input from the client")
        server.request_exit(0 if protocol._shutdown and server.exit_code is None else 1)
    # let queued writes (the last responses) go out
    await asyncio.sleep(0)


def _finish(server: LocalcodeServer) -> int:
    """Bounded cleanup, then the exit code."""
    code = server.exit_code if server.exit_code is not None else 1
    cleaner = threading.Thread(target=server.close, daemon=True)
    cleaner.start()
    cleaner.join(CLEANUP_TIMEOUT_S)
    _kill_children()
    for handler in list(get_logger().handlers):
        try:
            handler.flush()
        except Exception:
            pass
    return code


def _kill_children() -> None:
    """Whatever engine subprocesses are still running when the server ends go with it."""
    try:
        import psutil

        children = psutil.Process().children(recursive=True)
    except Exception:
        return
    for child in children:
        try:
            child.kill()
        except Exception:
            pass


def serve_stdio(server: LocalcodeServer, *, max_body: int = DEFAULT_MAX_BODY) -> int:
    """Serve over stdin/stdout; never returns normally (the process exits with the LSP code)."""
    output = _protect_stdout()
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="localcode-stdin")
    readline, read = stdio_readers(sys.stdin.buffer, executor)
    try:
        asyncio.run(_serve(server, readline, read, _BinaryWriter(output), max_body))
    except Exception:
        log.exception("the server loop failed")
        server.request_exit(1)
    code = _finish(server)
    try:
        output.flush()
    except OSError:
        pass
    os._exit(code)


def serve_tcp(server: LocalcodeServer, host: str, port: int, *,
              max_body: int = DEFAULT_MAX_BODY) -> int:
    """Listen on host:port, serve the first client, exit when it leaves."""

    async def main() -> None:
        connected: asyncio.Future = asyncio.get_running_loop().create_future()

        async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if connected.done():
                writer.close()
                return
            connected.set_result(None)
            readline, read = stream_readers(reader)
            await _serve(server, readline, read, _SocketWriter(writer), max_body)
            try:
                await writer.drain()
            except Exception:
                pass
            writer.close()

        listener = await asyncio.start_server(on_client, host, port, limit=16 * 1024)
        address = ", ".join(str(sock.getsockname()) for sock in listener.sockets)
        print(f"localcode: serving LSP on {address}", file=sys.stderr, flush=True)
        async with listener:
            while not server._exit_event.is_set():
                await asyncio.sleep(0.1)

    try:
        asyncio.run(main())
    except Exception:
        log.exception("the TCP server failed")
        server.request_exit(1)
    os._exit(_finish(server))
