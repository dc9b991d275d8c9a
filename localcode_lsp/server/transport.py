"""Base-protocol framing (`Content-Length` headers) with hard limits, over stdio or TCP.

A header line longer than MAX_HEADER_LINE or a body larger than `max_body` is refused without
allocating it: the body is drained in small chunks and answered with one -32600 error.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable

from ..logs import get_logger

log = get_logger("server.transport")

MAX_HEADER_LINE = 8 * 1024
MAX_HEADERS = 32
DEFAULT_MAX_BODY = 64 * 1024 * 1024
_DRAIN_CHUNK = 64 * 1024
_CONTENT_LENGTH = re.compile(rb"^content-length:\s*(\d{1,20})\s*$", re.IGNORECASE)

ReadLine = Callable[[int], Awaitable[bytes]]
ReadExactly = Callable[[int], Awaitable[bytes]]


class FrameTooLarge(Exception):
    """A Content-Length above the server's limit (the body was skipped, not read)."""

    def __init__(self, length: int) -> None:
        super().__init__(f"message of {length} bytes exceeds the limit")
        self.length = length


async def read_frames(readline: ReadLine, read: ReadExactly,
                      on_body: Callable[[bytes], None],
                      on_oversized: Callable[[int], None],
                      max_body: int = DEFAULT_MAX_BODY) -> None:
    """Read framed messages until end of input; `read(n)` may return fewer bytes only at EOF."""
    while True:
        length: int | None = None
        header_count = 0
        while True:
            line = await readline(MAX_HEADER_LINE + 2)
            if not line:
                return  # end of input
            if not line.endswith(b"\n"):
                # an over-long header line: skip the rest of it
                log.warning("header line longer than %d bytes; skipping it", MAX_HEADER_LINE)
                while line and not line.endswith(b"\n"):
                    line = await readline(MAX_HEADER_LINE + 2)
                if not line:
                    return
                length = None
                continue
            stripped = line.strip()
            if not stripped:
                if length is not None:
                    break
                continue  # blank line without a Content-Length: keep looking
            header_count += 1
            if header_count > MAX_HEADERS:
                log.warning("too many header lines; resynchronising")
                header_count = 0
                length = None
                continue
            match = _CONTENT_LENGTH.match(stripped)
            if match:
                length = int(match.group(1))
            elif not stripped.lower().startswith(b"content-type:"):
                log.debug("ignoring header line %r", stripped[:80])
        if length > max_body:
            log.warning("refusing a %d-byte message (limit %d)", length, max_body)
            remaining = length
            while remaining > 0:
                chunk = await read(min(remaining, _DRAIN_CHUNK))
                if not chunk:
                    return
                remaining -= len(chunk)
            on_oversized(length)
            continue
        body = await read(length) if length else b""
        if len(body) < length:
            return  # end of input in the middle of a body
        on_body(body)


def stdio_readers(stream, executor) -> tuple[ReadLine, ReadExactly]:
    """Async readline/read over a blocking binary stream, run on a dedicated thread."""

    def read_all(n: int) -> bytes:
        parts: list[bytes] = []
        remaining = n
        while remaining > 0:
            chunk = stream.read(remaining)
            if not chunk:
                break
            parts.append(chunk)
            remaining -= len(chunk)
        return b"".join(parts)

    async def readline(limit: int) -> bytes:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(executor, stream.readline, limit)
        except (OSError, ValueError):
            return b""

    async def read(n: int) -> bytes:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(executor, read_all, n)
        except (OSError, ValueError):
            return b""

    return readline, read


def stream_readers(reader: asyncio.StreamReader) -> tuple[ReadLine, ReadExactly]:
    """Async readline/read over an asyncio StreamReader (TCP)."""

    async def readline(limit: int) -> bytes:
        try:
            return await reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            return exc.partial
        except asyncio.LimitOverrunError as exc:
            # no newline within the stream's limit: hand back a chunk without one
            return await reader.read(max(1, min(exc.consumed, limit)))
        except (ConnectionError, OSError):
            return b""

    async def read(n: int) -> bytes:
        try:
            return await reader.readexactly(n)
        except asyncio.IncompleteReadError as exc:
            return exc.partial
        except (ConnectionError, OSError):
            return b""

    return readline, read
