"""Raw-stream tests of the real server process: lifecycle, exit codes, and thousands of
malformed or hostile frames (no popups, every request answered, bounded memory)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from server_helpers import FAKE_SERVER, read_message


class RawClient:
    """A minimal LSP client over the server process's pipes (reads on a thread)."""

    def __init__(self, command: list[str] = FAKE_SERVER) -> None:
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL)
        self.messages: list[dict] = []
        self._lock = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while (message := read_message(self.process.stdout)) is not None:
            with self._lock:
                self.messages.append(message)
                self._lock.notify_all()

    def send_raw(self, body: bytes, header: bytes | None = None) -> None:
        frame = (header if header is not None else b"Content-Length: %d\r\n\r\n" % len(body))
        self.process.stdin.write(frame + body)
        self.process.stdin.flush()

    def send(self, message: dict) -> None:
        self.send_raw(json.dumps(message).encode())

    def response(self, msg_id, timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for message in self.messages:
                    if "method" not in message and message.get("id") == msg_id:
                        return message
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no response to {msg_id!r}")
                self._lock.wait(left)

    def responses(self, msg_id) -> list[dict]:
        with self._lock:
            return [m for m in self.messages if "method" not in m and m.get("id") == msg_id]

    def initialize(self, root: Path, process_id: int | None = None) -> dict:
        self.send({"jsonrpc": "2.0", "id": "init", "method": "initialize", "params": {
            "processId": process_id, "rootUri": root.as_uri(), "capabilities": {}}})
        response = self.response("init")
        self.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
        return response


@pytest.fixture
def project(copy_fixture, isolated_home) -> Path:
    return copy_fixture("server_project")


def test_lifecycle_error_codes_and_exit_code_zero(project):
    client = RawClient()
    client.send({"jsonrpc": "2.0", "id": 1, "method": "textDocument/hover", "params": {}})
    assert client.response(1)["error"]["code"] == -32002
    assert "result" in client.initialize(project)
    client.send({"jsonrpc": "2.0", "id": 2, "method": "initialize", "params": {
        "processId": None, "rootUri": None, "capabilities": {}}})
    assert client.response(2)["error"]["code"] == -32600
    client.send({"jsonrpc": "2.0", "id": 3, "method": "no/such/method", "params": {}})
    assert client.response(3)["error"]["code"] == -32601
    client.send({"jsonrpc": "2.0", "id": 4, "method": "textDocument/codeAction",
                 "params": {"textDocument": 7}})
    error = client.response(4)["error"]
    assert error["code"] == -32602 and "data" not in error
    client.send({"jsonrpc": "2.0", "id": 5, "method": "shutdown"})
    assert client.response(5)["result"] is None
    client.send({"jsonrpc": "2.0", "id": 6, "method": "workspace/executeCommand",
                 "params": {"command": "localcode.health", "arguments": []}})
    assert client.response(6)["error"]["code"] == -32600
    client.send({"jsonrpc": "2.0", "method": "exit"})
    assert client.process.wait(5) == 0


def test_exit_without_shutdown_is_code_one(project):
    client = RawClient()
    client.initialize(project)
    client.send({"jsonrpc": "2.0", "method": "exit"})
    assert client.process.wait(5) == 1


def test_stdin_closed_exits_quickly_without_children(project):
    client = RawClient()
    client.initialize(project)
    server = psutil.Process(client.process.pid)
    started = time.monotonic()
    client.process.stdin.close()
    client.process.wait(3)
    assert time.monotonic() - started < 3
    assert not [c for c in psutil.Process().children(recursive=True)
                if c.pid != client.process.pid and c.ppid() == server.pid]


def test_client_process_gone_exits_within_three_seconds(project):
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    client = RawClient()
    client.initialize(project, process_id=parent.pid)
    parent.kill()
    parent.wait()
    started = time.monotonic()
    client.process.wait(3.5)
    assert time.monotonic() - started < 3


def test_oversized_content_length_is_refused_without_allocation(project):
    client = RawClient()
    client.initialize(project)
    rss_before = psutil.Process(client.process.pid).memory_info().rss
    huge = 80 * 1024 * 1024  # above the 64 MiB default limit: drained in chunks, not held
    chunk = b" " * (1024 * 1024)
    client.process.stdin.write(b"Content-Length: %d\r\n\r\n" % huge)
    for _ in range(huge // len(chunk)):
        client.process.stdin.write(chunk)
    client.process.stdin.flush()
    client.send({"jsonrpc": "2.0", "id": "after", "method": "workspace/executeCommand",
                 "params": {"command": "localcode.health", "arguments": []}})
    assert client.response("after", timeout=30)["result"]["ok"] is True
    assert any(m.get("error", {}).get("code") == -32600 and m.get("id") is None
               for m in client.messages)
    growth = psutil.Process(client.process.pid).memory_info().rss - rss_before
    assert growth < 40 * 1024 * 1024, growth
    client.process.kill()


def hostile_frames(seed: int, count: int):
    """(frame bytes, request id or None) pairs: broken JSON, wrong types, huge and negative ids,
    unknown methods, wrong-shaped params, lifecycle out of order (a second initialize, a
    shutdown with a broken envelope; a valid shutdown would end the session, which the lifecycle
    test covers)."""
    rng = random.Random(seed)
    methods = ["textDocument/codeAction", "textDocument/inlineCompletion",
               "textDocument/completion", "workspace/executeCommand", "initialize",
               "textDocument/didChange", "textDocument/didOpen", "$/cancelRequest",
               "workspace/didChangeConfiguration", "no/such", "$/weird", "", "exit!"]
    shapes = [None, 1, "x", [], [1, 2], {}, {"textDocument": None},
              {"textDocument": {"uri": 5}, "position": {"line": -1, "character": "a"}},
              {"command": "localcode.implement", "arguments": [{"uri": "file:///etc/passwd",
                                                               "position": {"line": 0,
                                                                            "character": 0}}]},
              {"command": "localcode.nope"}, {"settings": {"localcode": {"x": {"y": 1}}}},
              {"textDocument": {"uri": "file:///nowhere.py", "version": 2},
               "contentChanges": [{"range": {"start": {"line": 9, "character": 0},
                                             "end": {"line": 0, "character": 0}}, "text": "z"}]},
              {"id": 10 ** 30}]
    ids = [0, -1, 2 ** 63, -(2 ** 70), 10 ** 40, "", "id", 1.5, None, True, [], {}]
    for number in range(count):
        kind = rng.randrange(8)
        msg_id = None
        if kind == 0:
            body = rng.choice([b"{", b"[]", b"null", b"\xff\xfe", b'{"jsonrpc": "2.0"',
                               b"[" * 5000, b'"str"', b"12"])
        elif kind == 1:
            body = json.dumps({"jsonrpc": rng.choice(["1.0", 2, None]), "id": number,
                               "method": "shutdown"}).encode()
            msg_id = number
        elif kind == 2:
            raw_id = rng.choice(ids)
            body = json.dumps({"jsonrpc": "2.0", "id": raw_id, "method": rng.choice(methods),
                               "params": rng.choice(shapes)}).encode()
            if isinstance(raw_id, (int, str)) and not isinstance(raw_id, bool):
                msg_id = raw_id
        elif kind == 3:
            body = json.dumps({"jsonrpc": "2.0", "method": rng.choice(methods),
                               "params": rng.choice(shapes)}).encode()
        elif kind == 4:
            body = json.dumps({"jsonrpc": "2.0", "id": f"r{number}", "method":
                               rng.choice(methods[:4]), "params": rng.choice(shapes)}).encode()
            msg_id = f"r{number}"
        elif kind == 5:
            body = json.dumps({"jsonrpc": "2.0", "id": f"resp{number}", "result": [1]}).encode()
        elif kind == 6:
            body = json.dumps({"jsonrpc": "2.0", "method": 42, "id": f"m{number}"}).encode()
            msg_id = f"m{number}"
        else:
            body = json.dumps({"jsonrpc": "2.0", "id": f"u{number}",
                               "method": f"custom/{number}", "params": {}}).encode()
            msg_id = f"u{number}"
        if msg_id is not None and rng.random() < 0.02:
            yield b"Content-Type: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body, msg_id
        else:
            yield b"Content-Length: %d\r\n\r\n" % len(body) + body, msg_id
        if rng.random() < 0.01:
            yield b"Garbage-Header\r\n\r\n", None


def test_hostile_frames_do_not_break_the_server(project):
    client = RawClient()
    client.initialize(project)
    server = psutil.Process(client.process.pid)
    client.send({"jsonrpc": "2.0", "id": "warm", "method": "workspace/executeCommand",
                 "params": {"command": "localcode.health", "arguments": []}})
    client.response("warm")
    rss_before = server.memory_info().rss
    expected: list = []
    for frame, msg_id in hostile_frames(seed=7, count=3000):
        client.process.stdin.write(frame)
        if msg_id is not None:
            expected.append(msg_id)
    client.process.stdin.flush()
    client.send({"jsonrpc": "2.0", "id": "still-alive", "method": "workspace/executeCommand",
                 "params": {"command": "localcode.health", "arguments": []}})
    assert client.response("still-alive", timeout=60)["result"]["ok"] is True
    # every request with a usable id got exactly one answer (ids may repeat in the stream)
    for msg_id in set(map(json.dumps, expected)):
        wanted = json.loads(msg_id)
        sent = sum(1 for e in expected if json.dumps(e) == msg_id)
        assert len(client.responses(wanted)) == sent, msg_id
    popups = [m for m in client.messages if m.get("method") == "window/showMessage"]
    assert not popups
    growth = server.memory_info().rss - rss_before
    assert growth < 50 * 1024 * 1024, growth
    client.send({"jsonrpc": "2.0", "id": "bye", "method": "shutdown"})
    client.response("bye")
    client.send({"jsonrpc": "2.0", "method": "exit"})
    assert client.process.wait(5) == 0


def test_tcp_transport_serves_one_client(project):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "localcode_lsp", "serve", "--tcp",
                                f"127.0.0.1:{port}"], stderr=subprocess.PIPE)
    try:
        assert b"serving LSP" in process.stderr.readline()
        connection = socket.create_connection(("127.0.0.1", port), timeout=10)
        stream = connection.makefile("rwb")

        def call(message: dict) -> dict | None:
            body = json.dumps(message).encode()
            stream.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
            stream.flush()
            if "id" not in message:
                return None
            header = b""
            while not header.endswith(b"\r\n\r\n"):
                header += stream.read(1)
            length = int(header.split(b"Content-Length:")[1].split(b"\r\n")[0])
            return json.loads(stream.read(length))

        answer = call({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "processId": None, "rootUri": project.as_uri(), "capabilities": {}}})
        assert answer["result"]["serverInfo"]["name"] == "localcode"
        assert call({"jsonrpc": "2.0", "id": 2, "method": "shutdown"})["result"] is None
        call({"jsonrpc": "2.0", "method": "exit"})
        assert process.wait(5) == 0
        connection.close()
    finally:
        if process.poll() is None:
            process.kill()
