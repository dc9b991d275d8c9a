"""Hypothesis against the real server process over stdio: hostile frames (liveness within 1 s
after every 100, no popups, bounded RSS, no model loaded) and incremental sync under the three
position encodings, checked against an independent reference model.

CI runs ~1,500 fuzz frames; `LOCALCODE_STRESS=1` (make stress) runs 10,000.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from server_helpers import read_message

from localcode_lsp.index.embedding import EMBED_DEBOUNCE_SECONDS

REPO_ROOT = Path(__file__).parent.parent
STRESS = os.environ.get("LOCALCODE_STRESS") == "1"
REAL_SERVER = [sys.executable, "-m", "localcode_lsp", "serve"]
PROBE_SERVER = [sys.executable, str(REPO_ROOT / "tests/fixtures/reliability_probe/probe_server.py")]
# Model and embedder point nowhere: any code path that would load either fails fast and visibly.
NO_MODELS_TOML = """
[model]
path = "/nonexistent/localcode-reliability.gguf"
[index]
embedding_model = "/nonexistent/localcode-reliability-embedder"
"""


class RawLsp:
    """A minimal LSP client over the server's pipes; a reader thread collects every message."""

    def __init__(self, command: list[str], env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, env=env, cwd=str(REPO_ROOT))
        self.messages: list[dict] = []
        self._by_id: dict[str, list[dict]] = {}
        self._cond = threading.Condition()
        self._write = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while (message := read_message(self.process.stdout)) is not None:
            with self._cond:
                self.messages.append(message)
                if "method" not in message:
                    self._by_id.setdefault(json.dumps(message.get("id")), []).append(message)
                self._cond.notify_all()

    def send_raw(self, frame: bytes) -> None:
        with self._write:
            self.process.stdin.write(frame)
            self.process.stdin.flush()

    def send(self, message: dict) -> None:
        body = json.dumps(message).encode()
        self.send_raw(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def request(self, msg_id, method: str, params=None) -> None:
        message = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)

    def notify(self, method: str, params=None) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def response(self, msg_id, timeout: float = 10.0) -> dict:
        key = json.dumps(msg_id)
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._by_id.get(key):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no response to {msg_id!r} within {timeout} s")
                self._cond.wait(left)
            return self._by_id[key][0]

    def responses(self, msg_id) -> list[dict]:
        with self._cond:
            return list(self._by_id.get(json.dumps(msg_id), []))

    def notifications(self, method: str) -> list[dict]:
        with self._cond:
            return [m for m in self.messages if m.get("method") == method]

    def initialize(self, root: Path, capabilities: dict | None = None) -> dict:
        self.request("init", "initialize", {"processId": None, "rootUri": root.as_uri(),
                                             "capabilities": capabilities or {}})
        response = self.response("init", timeout=30)
        self.notify("initialized", {})
        return response

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.request("bye", "shutdown")
                self.response("bye", timeout=5)
                self.notify("exit")
                self.process.wait(5)
            except (TimeoutError, OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()


def no_models_env(tmp_path: Path) -> dict[str, str]:
    """Environment for a server that must never load a model (config home with bogus paths)."""
    home = tmp_path / "config-home"
    home.mkdir(exist_ok=True)
    (home / "localcode.toml").write_text(NO_MODELS_TOML)
    env = dict(os.environ, LOCALCODE_CONFIG_HOME=str(home), HF_HUB_OFFLINE="1")
    return env


def loaded_model_files(pid: int) -> list[str]:
    """Model weights (GGUF, safetensors) or torch mapped into the process (`localcode.health`
    may import llama_cpp for its build report; the weights are what must not load)."""
    try:
        maps = psutil.Process(pid).memory_maps()
    except psutil.Error:
        return []
    return [m.path for m in maps if m.path.endswith((".gguf", ".safetensors"))
            or "libtorch" in m.path]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "mod.py").write_text("def add(a, b):\n    return a + b\n")
    return root


# --- hostile frames ----------------------------------------------------------------------------

METHODS = ["textDocument/codeAction", "textDocument/inlineCompletion", "textDocument/completion",
           "workspace/executeCommand", "initialize", "initialized", "textDocument/didOpen",
           "textDocument/didChange", "textDocument/didClose", "textDocument/didSave",
           "$/cancelRequest", "$/setTrace", "workspace/didChangeConfiguration",
           "window/workDoneProgress/cancel", "no/such/method", "", "exit!", "$/x"]
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70),
                      st.floats(allow_nan=False, allow_infinity=False),
                      st.text(max_size=20))
json_value = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)
ids = st.one_of(st.integers(-2 ** 70, 2 ** 70), st.text(max_size=12), st.none(),
                st.floats(allow_nan=False, allow_infinity=False), st.booleans(),
                st.lists(st.integers(), max_size=2))
hostile_text = st.lists(st.sampled_from(
    list("ab \t\n\r()=:") + ["\r\n", "😀", "𝔘", "é", "中", "\u2028", "\x0c", "\x00", "\ufeff"]),
    max_size=60).map("".join)


def _position(draw) -> dict:
    big = st.one_of(st.integers(0, 5), st.integers(-5, -1), st.integers(2 ** 31, 2 ** 64),
                    st.just(10 ** 6))
    return {"line": draw(big), "character": draw(big)}


@st.composite
def hostile_frame(draw, number: int = 0) -> tuple[bytes, bytes, object]:
    """(header prefix, body with a {root} placeholder, id an answer is owed to or "none")."""
    kind = draw(st.integers(0, 9))
    doc_uri = draw(st.sampled_from(["file://{root}/pkg/mod.py", "file://{root}/pkg/new.py",
                                    "file:///etc/passwd", "untitled:Untitled-1",
                                    "file://{root}/../x.py", "file://{root}/.git/config"]))
    owed: object = "none"
    if kind == 0:  # not JSON, or JSON that is not an object
        body = draw(st.one_of(st.binary(max_size=80), st.sampled_from(
            [b"{", b"[]", b"null", b"\xff\xfe", b'{"jsonrpc": "2.0"', b"[" * 3000,
             b'"s"', b"12", b'{"jsonrpc":"2.0","id":1,"method":"x"' + b"}" * 2])))
    elif kind == 1:  # random method, random id, random params
        msg_id = draw(ids)
        body = json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": draw(st.sampled_from(METHODS)),
                           "params": draw(json_value)}).encode()
        if isinstance(msg_id, (int, str)) and not isinstance(msg_id, bool):
            owed = msg_id
    elif kind == 2:  # notification without id, random params
        body = json.dumps({"jsonrpc": "2.0", "method": draw(st.sampled_from(METHODS)),
                           "params": draw(json_value)}).encode()
    elif kind == 3:  # notification methods sent with an id (must be answered -32600, once)
        msg_id = f"n{number}-{draw(st.integers(0, 10 ** 9))}"
        body = json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": draw(st.sampled_from(
            ["textDocument/didOpen", "textDocument/didChange", "initialized", "$/cancelRequest"])),
            "params": {}}).encode()
        owed = msg_id
    elif kind == 4:  # wrong envelope: bad jsonrpc versions, shutdown and exit included
        msg_id = draw(st.integers(0, 2 ** 40))
        body = json.dumps({"jsonrpc": draw(st.sampled_from(["1.0", 2, None, "2"])), "id": msg_id,
                           "method": draw(st.sampled_from(["shutdown", "exit", "initialize"]))}
                          ).encode()
        owed = msg_id
    elif kind == 5:  # didOpen with astral-plane / CRLF / NUL text
        body = json.dumps({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
            "textDocument": {"uri": doc_uri, "languageId": draw(st.sampled_from(
                ["python", "", "javascript", 7])), "version": draw(st.integers(-3, 2 ** 40)),
                "text": draw(hostile_text)}}}).encode()
    elif kind == 6:  # didChange with ranges past the end, reversed, negative
        changes = [{"range": {"start": _position(draw), "end": _position(draw)},
                    "text": draw(hostile_text)} for _ in range(draw(st.integers(0, 3)))]
        if draw(st.booleans()):
            changes.append({"text": draw(hostile_text)})
        body = json.dumps({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
            "textDocument": {"uri": doc_uri, "version": draw(st.integers(-1, 2 ** 40))},
            "contentChanges": changes}}).encode()
    elif kind == 7:  # requests with plausible shapes but bad positions or foreign uris
        msg_id = f"q{number}-{draw(st.integers(0, 10 ** 9))}"
        method = draw(st.sampled_from(["textDocument/codeAction", "textDocument/inlineCompletion",
                                       "textDocument/completion", "workspace/executeCommand"]))
        position = _position(draw)
        if method == "workspace/executeCommand":
            params = {"command": draw(st.sampled_from(["localcode.implement", "localcode.fix",
                                                       "localcode.explain", "localcode.nope"])),
                      "arguments": draw(st.sampled_from([
                          [], None, [{"uri": "file:///etc/passwd", "position": position}],
                          [{"uri": doc_uri, "position": {"line": -1, "character": 0}}],
                          [{"uri": 5}], [1, 2]]))}
        else:
            # positions are out of range (never a valid completion: that would run the model)
            position = {"line": 10 ** 6 + draw(st.integers(0, 9)), "character": 0}
            params = {"textDocument": {"uri": doc_uri}, "position": position,
                      "range": {"start": position, "end": position},
                      "context": draw(st.sampled_from([{"diagnostics": []}, {}, None,
                                                       {"triggerKind": 99}]))}
        body = json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": method,
                           "params": params}).encode()
        owed = msg_id
    elif kind == 8:  # responses to requests the server never sent
        body = json.dumps({"jsonrpc": "2.0", "id": draw(ids), draw(st.sampled_from(
            ["result", "error"])): draw(json_value)}).encode()
    else:  # cancel requests for ids that do not exist, with odd params
        body = json.dumps({"jsonrpc": "2.0", "method": "$/cancelRequest",
                           "params": {"id": draw(ids)}}).encode()
    prefix = b""
    if draw(st.integers(0, 60)) == 0:
        prefix += b"X-Garbage: 1\r\n\r\n"  # a header block without Content-Length
    if draw(st.integers(0, 40)) == 0:
        prefix += b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n"
    return prefix, body, owed


def framed(prefix: bytes, body: bytes, root: Path) -> bytes:
    """The frame with the workspace root filled in (before Content-Length is computed)."""
    body = body.replace(b"{root}", str(root).encode())
    return prefix + b"Content-Length: %d\r\n\r\n" % len(body) + body


def test_hostile_frames_against_the_real_server(project, tmp_path):
    """Batches of 100 hostile frames; after each, a request answered within 1 s."""
    batches = 100 if STRESS else 15
    client = RawLsp(REAL_SERVER, env=no_models_env(tmp_path))
    try:
        client.initialize(project)
        client.request("warm", "workspace/executeCommand",
                       {"command": "localcode.health", "arguments": []})
        client.response("warm", timeout=60)
        # warm-up: one open and edited document and its debounced background index pass (opens
        # lancedb, fails to find the embedder): one-time costs, not growth. The edit is what
        # schedules the pass: the server indexed the workspace at start, so opening a file
        # whose text did not change gives the index nothing new to embed.
        text = (project / "pkg/mod.py").read_text()
        client.notify("textDocument/didOpen", {"textDocument": {
            "uri": (project / "pkg/mod.py").as_uri(), "languageId": "python", "version": 1,
            "text": text}})
        client.notify("textDocument/didChange", {
            "textDocument": {"uri": (project / "pkg/mod.py").as_uri(), "version": 2},
            "contentChanges": [{"text": text + "# warm\n"}]})
        time.sleep(EMBED_DEBOUNCE_SECONDS + 2.0)
        server = psutil.Process(client.process.pid)
        rss: list[int] = []
        owed: list[str] = []
        probes = iter(range(10 ** 9))
        latencies: list[float] = []

        # no shrinking: the server is stateful, a replayed smaller batch proves nothing
        @settings(max_examples=batches, deadline=None, database=None, derandomize=not STRESS,
                  phases=[Phase.generate], suppress_health_check=list(HealthCheck))
        @given(st.lists(hostile_frame(), min_size=100, max_size=100))
        def batch(frames):
            for prefix, body, msg_id in frames:
                client.send_raw(framed(prefix, body, project))
                if msg_id != "none":
                    owed.append(json.dumps(msg_id))
            probe = f"probe-{next(probes)}"
            started = time.monotonic()
            client.request(probe, "textDocument/codeAction", {
                "textDocument": {"uri": "file:///nowhere.py"},
                "range": {"start": {"line": 0, "character": 0},
                          "end": {"line": 0, "character": 0}},
                "context": {"diagnostics": []}})
            client.response(probe, timeout=1.0)
            latencies.append(time.monotonic() - started)
            rss.append(server.memory_info().rss)

        batch()
        assert client.process.poll() is None, "the server died"
        # every request with a usable id got exactly one answer (hypothesis may repeat ids)
        time.sleep(0.5)
        for key in set(owed):
            wanted = json.loads(key)
            assert len(client.responses(wanted)) >= 1, f"no answer to {key}"
            assert len(client.responses(wanted)) <= owed.count(key), f"extra answers to {key}"
        assert client.notifications("window/showMessage") == []
        assert client.notifications("window/showMessageRequest") == []
        assert not loaded_model_files(server.pid), "a model was loaded while fuzzing"
        time.sleep(EMBED_DEBOUNCE_SECONDS + 1.0)  # let the last debounced index pass run
        # the first batch pays one-time costs (tree-sitter grammars, config layers)
        growth = server.memory_info().rss - rss[0]
        assert growth < 20 * 1024 * 1024, f"RSS grew {growth / 1e6:.1f} MB: {[round(r / 1e6) for r in rss]}"
        print(f"fuzz: {batches * 100} frames, RSS after each batch (MB): "
              f"{[round(r / 1e6) for r in rss]}, max probe latency {max(latencies) * 1000:.0f} ms, "
              f"RSS growth {growth / 1e6:.1f} MB")
    finally:
        client.close()


def test_lifecycle_out_of_order(project, tmp_path):
    """Requests before initialize, a second initialize, shutdown twice, requests after shutdown,
    then exit: each answered with its code, exit code 0."""
    client = RawLsp(REAL_SERVER, env=no_models_env(tmp_path))
    client.notify("textDocument/didOpen", {"textDocument": {
        "uri": (project / "pkg/mod.py").as_uri(), "languageId": "python", "version": 1,
        "text": "x = 1\n"}})
    client.request(1, "textDocument/codeAction", {})
    assert client.response(1)["error"]["code"] == -32002
    client.request(2, "shutdown")
    assert client.response(2)["error"]["code"] == -32002
    client.initialize(project)
    client.notify("initialized", {})  # a second initialized: ignored
    client.request(3, "initialize", {"processId": None, "rootUri": None, "capabilities": {}})
    assert client.response(3)["error"]["code"] == -32600
    client.request(4, "shutdown")
    assert client.response(4)["result"] is None
    client.request(5, "shutdown")
    assert client.response(5)["error"]["code"] == -32600
    client.request(6, "textDocument/completion", {})
    assert client.response(6)["error"]["code"] == -32600
    client.notify("exit")
    assert client.process.wait(5) == 0
    assert client.notifications("window/showMessage") == []


# --- incremental sync property -----------------------------------------------------------------

ALPHABET = ["a", "b", "x", " ", "\n", "\r\n", "\r", "é", "中", "😀", "𝔘", "\t", "\u2028"]
doc_text = st.lists(st.sampled_from(ALPHABET), max_size=30).map("".join)
LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _reference_lines(text: str) -> list[tuple[int, str]]:
    """(start offset, content without its break) of every LSP line; independent of the server's
    code: split by scanning, not by regex offsets."""
    lines, start, i = [], 0, 0
    while i < len(text):
        if text[i] == "\r" and text[i + 1:i + 2] == "\n":
            lines.append((start, text[start:i]))
            i += 2
            start = i
        elif text[i] in "\r\n":
            lines.append((start, text[start:i]))
            i += 1
            start = i
        else:
            i += 1
    lines.append((start, text[start:]))
    return lines


def _width(char: str, encoding: str) -> int:
    return len(char.encode({"utf-8": "utf-8", "utf-16": "utf-16-le", "utf-32": "utf-32-le"}
                           [encoding])) // {"utf-8": 1, "utf-16": 2, "utf-32": 4}[encoding]


def reference_offset(text: str, line: int, character: int, encoding: str) -> int | None:
    """Code-point offset of an LSP position (clamped to the line end), None when the line does
    not exist."""
    lines = _reference_lines(text)
    if not 0 <= line < len(lines):
        return None
    start, content = lines[line]
    units = 0
    for index, char in enumerate(content):
        if units >= character:
            return start + index
        units += _width(char, encoding)
    return start + len(content)


def _boundaries(text: str, encoding: str) -> list[tuple[int, int]]:
    """Every valid (line, character) position, plus a past-the-line-end one per line."""
    positions = []
    for number, (_, content) in enumerate(_reference_lines(text)):
        units = 0
        positions.append((number, 0))
        for char in content:
            units += _width(char, encoding)
            positions.append((number, units))
        positions.append((number, units + 3))
    return positions


@st.composite
def edit_batches(draw, encoding: str, initial: str):
    """A sequence of didChange batches over a document, with the reference text after each."""
    text = initial
    steps = []
    for _ in range(draw(st.integers(1, 6))):
        changes = []
        expected = text
        rejected = False
        for _ in range(draw(st.integers(1, 3))):
            positions = _boundaries(expected, encoding)
            if draw(st.integers(0, 7)) == 0:
                line_count = len(_reference_lines(expected))
                start = (line_count + draw(st.integers(0, 3)), 0)
                end = start
                rejected = True
            else:
                a, b = draw(st.sampled_from(positions)), draw(st.sampled_from(positions))
                start, end = min(a, b), max(a, b)
            new_text = draw(doc_text)
            changes.append({"range": {"start": {"line": start[0], "character": start[1]},
                                      "end": {"line": end[0], "character": end[1]}},
                            "text": new_text})
            if not rejected:
                s = reference_offset(expected, *start, encoding)
                e = reference_offset(expected, *end, encoding)
                assert s is not None and e is not None and s <= e
                expected = expected[:s] + new_text + expected[e:]
        if not rejected:
            text = expected
        steps.append((changes, text, rejected))
    return steps


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "utf-32"])
def test_incremental_sync_matches_the_reference_model(project, tmp_path, encoding):
    """Random edit sequences through the real server; its document and the engine overlay both
    equal the reference text; out-of-range batches are rejected whole and logged."""
    client = RawLsp(PROBE_SERVER, env=no_models_env(tmp_path))
    counter = iter(range(10 ** 9))
    rejected_batches = 0
    try:
        result = client.initialize(project, {"general": {"positionEncodings": [encoding]}})
        assert result["result"]["capabilities"]["positionEncoding"] == encoding

        @settings(max_examples=300 if STRESS else 40, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(st.data())
        def check(data):
            nonlocal rejected_batches
            number = next(counter)
            initial = data.draw(doc_text)
            uri = (project / "pkg" / f"doc{number}.py").as_uri()
            client.notify("textDocument/didOpen", {"textDocument": {
                "uri": uri, "languageId": "python", "version": 1, "text": initial}})
            version = 1
            for changes, expected, rejected in data.draw(edit_batches(encoding, initial)):
                version += 1
                client.notify("textDocument/didChange", {
                    "textDocument": {"uri": uri, "version": version},
                    "contentChanges": changes})
                rejected_batches += rejected
                msg_id = f"text-{number}-{version}"
                client.request(msg_id, "reliability/documentText", {"uri": uri})
                answer = client.response(msg_id)["result"]
                assert answer["text"] == expected, (changes, answer["text"], expected)
                assert answer["overlay"] == expected
            client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})

        check()
        if rejected_batches:
            warnings = [m for m in client.notifications("window/logMessage")
                        if "rejected" in m["params"]["message"]]
            assert warnings, "an out-of-range edit was rejected silently"
            log_file = project / ".localcode" / "logs" / "localcode.log"
            assert "rejected didChange" in log_file.read_text()
        assert client.notifications("window/showMessage") == []
    finally:
        client.close()


@settings(max_examples=600 if STRESS else 150, deadline=None)
@given(data=st.data(), encoding=st.sampled_from(["utf-8", "utf-16", "utf-32"]))
def test_document_store_matches_the_reference_model(data, encoding):
    """The same property on the server's DocumentStore directly (more examples, no process)."""
    from lsprotocol import types

    from localcode_lsp.server.documents import DocumentStore, RangeError

    initial = data.draw(doc_text)
    store = DocumentStore()
    store.open("u", initial, 1)
    current = initial
    for number, (changes, expected, rejected) in enumerate(
            data.draw(edit_batches(encoding, initial))):
        lsp_changes = [types.TextDocumentContentChangePartial(
            range=types.Range(start=types.Position(**c["range"]["start"]),
                              end=types.Position(**c["range"]["end"])), text=c["text"])
            for c in changes]
        if rejected:
            with pytest.raises(RangeError):
                store.change("u", number + 2, lsp_changes, encoding)
        else:
            store.change("u", number + 2, lsp_changes, encoding)
            current = expected
        assert store.get("u").text == current
