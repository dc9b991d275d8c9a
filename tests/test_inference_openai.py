"""`OpenAIBackend` against a real OpenAI-compatible server on loopback (llama_cpp.server, marked
`model`) and against an Ollama-shaped and a vLLM-shaped server (stdlib HTTP servers in this file)
that refuse any request without the model name and the `Authorization` header they were started
with, as those servers (or the proxy in front of them) do."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from support.model_prompts import COMMENT_FIRST_PROMPT

from localcode_lsp.cancel import CancelToken
from localcode_lsp.config import load_config
from localcode_lsp.inference import BackendError, OpenAIBackend, create_backend
from localcode_lsp.inference.grammar import YES_NO_GRAMMAR, parse_yes_no
from localcode_lsp.inference.stops import stop_rule_for


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(model_path: Path, tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("llama_cpp.server.app", reason="llama-cpp-python[server] extras missing")
    port = _free_port()
    # a file, not a pipe: the server logs enough at start-up to fill a pipe and block
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model_path), "--host",
         "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "2"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"llama_cpp.server exited: {log_path.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(url + "/v1/models", timeout=1).read()
            break
        except OSError:
            time.sleep(0.3)
    else:
        process.kill()
        pytest.fail("llama_cpp.server did not start within 90 s")
    yield url
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


@pytest.mark.model
def test_completion_tokens_and_grammar(server: str, isolated_home: Path, tmp_path: Path) -> None:
    (tmp_path / "localcode.toml").write_text(
        f'[model]\nbackend = "openai"\nurl = "{server}/v1"\nrequest_timeout = 30\n')
    backend = create_backend(load_config(tmp_path), tmp_path)
    assert isinstance(backend, OpenAIBackend)
    assert backend.tokenizer_exact  # /extras/tokenize
    assert backend.count_tokens("def add(a, b):") == len(backend.tokenize("def add(a, b):"))
    result = backend.complete("import math\n\n\ndef circle_area(radius):\n    ", max_tokens=24,
                              stop=["\n"])
    assert result.text.strip() and "\n" not in result.text and result.prompt_tokens > 5
    answer = backend.complete("Is 2 larger than 1? Answer yes or no:", grammar=YES_NO_GRAMMAR,
                              max_tokens=4, temperature=0.7, seed=2)
    parse_yes_no(answer.text)
    assert backend.info.name
    # code_first travels as a GBNF grammar (no logits hook over HTTP)
    body = backend.complete(COMMENT_FIRST_PROMPT, max_tokens=16, code_first="#")
    assert body.text.lstrip() and not body.text.lstrip().startswith("#"), body.text
    # llama_cpp.server names itself (owned_by "me"); a base gemma is not an instruct model
    assert backend.server_kind == "llama_cpp.server" and backend.info.kind == "base"
    # chat through /v1/chat/completions; no real prefill there, so it is asked for and stripped
    answer = backend.chat([{"role": "user", "content": "Write the number 7."}], max_tokens=8,
                          prefill="The number:")
    assert answer.completion_tokens > 0 and not answer.text.startswith("The number:")


@pytest.mark.model
def test_fim_falls_back_and_structure_stops(server: str) -> None:
    backend = OpenAIBackend(server, timeout=30)
    prefix = "import math\n\n\ndef circle_area(radius):\n    "
    result = backend.fim(prefix, "\n\ndef main():\n    pass\n", max_tokens=64,
                         stop_rule=stop_rule_for("python", prefix))
    # llama_cpp.server has no /infill and gemma no FIM tokens: prefix completion
    assert backend.info.fim is None and not backend._has_infill
    assert result.text.strip() and "def main" not in result.text
    assert result.finish_reason in ("structure", "stop", "length")
    # samples with a suffix are infills too, falling back the same way
    samples = backend.candidates(prefix, 2, max_tokens=48, temperature=0.7,
                                 suffix="\n\ndef main():\n    pass\n",
                                 stop_rule=stop_rule_for("python", prefix))
    assert samples and all("def main" not in sample.text for sample in samples)


@pytest.mark.model
def test_cancel_and_candidates(server: str) -> None:
    backend = OpenAIBackend(server, timeout=30)
    token = CancelToken()
    threading.Timer(0.5, token.cancel).start()
    started = time.monotonic()
    result = backend.complete("Once upon a time", max_tokens=800, temperature=0.9, cancel=token)
    assert result.finish_reason == "cancelled" and time.monotonic() - started < 3
    candidates = backend.candidates("def add(a, b):\n    ", 3, max_tokens=12, temperature=0.9)
    assert 1 <= len(candidates) and sum(c.votes for c in candidates) == 3


# --- Ollama-shaped and vLLM-shaped servers ---------------------------------------------------

OLLAMA_MODEL = "qwen2.5-coder:1.5b"
VLLM_MODEL = "Qwen/Qwen2.5-Coder-1.5B-Instruct"
API_KEY = "sk-team-7f3a"
KEY_ENV = "LOCALCODE_TEST_API_KEY"


class FakeModelServer:
    """A loopback OpenAI-compatible server shaped like Ollama or vLLM. It answers only requests
    that carry `Authorization: Bearer <key>` (401 otherwise) and name its model (404 for another
    name, 400 for none), lists itself in `GET /v1/models` with the server's own `owned_by`, and
    streams server-sent events. vLLM refuses `suffix` on /v1/completions, as the real one does.
    `slow` streams one token every 50 ms for a long time (to watch a cancel close the stream)."""

    OWNED_BY = {"ollama": "library", "vllm": "vllm", "generic": "organization-owner"}

    def __init__(self, flavour: str, model: str, key: str = API_KEY) -> None:
        self.flavour, self.model, self.key = flavour, model, key
        self.requests: list[dict[str, Any]] = []
        self.refused: list[tuple[str, int, str]] = []
        self.client_closed = threading.Event()
        self.slow = False
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake.handle(self, None)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                fake.handle(self, json.loads(self.rfile.read(length) or b"{}"))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # --- protocol

    def reply(self, handler: BaseHTTPRequestHandler, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def refuse(self, handler: BaseHTTPRequestHandler, status: int, message: str) -> None:
        self.refused.append((handler.path, status, message))
        self.reply(handler, status, {"error": {"message": message, "code": status}})

    def handle(self, handler: BaseHTTPRequestHandler, body: dict[str, Any] | None) -> None:
        self.requests.append({"path": handler.path, "body": body,
                              "authorization": handler.headers.get("Authorization")})
        if handler.headers.get("Authorization") != f"Bearer {self.key}":
            return self.refuse(handler, 401, "invalid or missing API key")
        if handler.path == "/v1/models" and body is None:
            return self.reply(handler, 200, {"object": "list", "data": [
                {"id": self.model, "object": "model", "owned_by": self.OWNED_BY[self.flavour]}]})
        if handler.path == "/tokenize" and self.flavour == "vllm" and body is not None:
            if body.get("model") != self.model:
                return self.refuse(handler, 404, f"model {body.get('model')!r} not found")
            tokens = list(range(len(body["prompt"].split())))
            return self.reply(handler, 200, {"tokens": tokens, "count": len(tokens)})
        if handler.path not in ("/v1/completions", "/v1/chat/completions") or body is None:
            return self.refuse(handler, 404, f"no route {handler.path}")
        if "model" not in body:
            return self.refuse(handler, 400, "model is required")
        if body["model"] != self.model:
            return self.refuse(handler, 404, f"model {body['model']!r} not found")
        if handler.path == "/v1/completions":
            if "suffix" in body and self.flavour == "vllm":
                return self.refuse(handler, 400, "suffix is not currently supported")
            text = self.completion_text(body)
            chunk = lambda piece: {"choices": [{"text": piece, "index": 0,  # noqa: E731
                                                "finish_reason": None}]}
        else:
            text = self.chat_text(body)
            chunk = lambda piece: {"choices": [{"delta": {"content": piece},  # noqa: E731
                                                "index": 0, "finish_reason": None}]}
        self.stream(handler, text, chunk)

    def completion_text(self, body: dict[str, Any]) -> str:
        if "suffix" in body or "<|fim_prefix|>" in body["prompt"]:
            return "return a + b"
        return " world"

    def chat_text(self, body: dict[str, Any]) -> str:
        last = body["messages"][-1]
        if last["role"] == "assistant":  # a real prefill: the server continues that turn
            return "    return a + b\n```\n"
        if "Begin your answer with exactly this text:" in last["content"]:
            prefill = last["content"].rsplit("exactly this text:\n", 1)[1]
            return prefill + "    return a + b\n```\n"  # echoes what it was asked to begin with
        return "Hello."

    def stream(self, handler: BaseHTTPRequestHandler, text: str, chunk: Any) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Connection", "close")
        handler.end_headers()
        pieces = [text[i:i + 4] for i in range(0, len(text), 4)]
        if self.slow:
            pieces = ["tok "] * 400
        try:
            for piece in pieces:
                handler.wfile.write(f"data: {json.dumps(chunk(piece))}\n\n".encode())
                handler.wfile.flush()
                if self.slow:
                    time.sleep(0.05)
            final = chunk("")
            final["choices"][0]["finish_reason"] = "stop"
            handler.wfile.write(f"data: {json.dumps(final)}\n\ndata: [DONE]\n\n".encode())
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.client_closed.set()  # the client closed the stream: generation stops here
        handler.close_connection = True

    def generation_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests
                if r["path"] in ("/v1/completions", "/v1/chat/completions")]


@pytest.fixture
def ollama():
    server = FakeModelServer("ollama", OLLAMA_MODEL)
    yield server
    server.close()


@pytest.fixture
def vllm():
    server = FakeModelServer("vllm", VLLM_MODEL)
    yield server
    server.close()


def remote_project(tmp_path: Path, url: str, model: str, key_env: str = KEY_ENV) -> Path:
    project = tmp_path / "project"
    project.mkdir(parents=True, exist_ok=True)
    (project / "localcode.toml").write_text(
        f'[model]\nbackend = "openai"\nurl = "{url}/v1"\nmodel = "{model}"\n'
        f'api_key_env = "{key_env}"\nrequest_timeout = 10\n')
    return project


def test_ollama_requests_name_the_model_and_carry_the_key(
        ollama: FakeModelServer, tmp_path: Path, isolated_home: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, API_KEY)
    project = remote_project(tmp_path, ollama.url, OLLAMA_MODEL)
    backend = create_backend(load_config(project), project)
    assert isinstance(backend, OpenAIBackend)
    assert backend.complete("hello", max_tokens=4).text == " world"
    # FIM: Ollama renders `suffix` with the model's own FIM template
    infill = backend.fim("def add(a, b):\n    ", "\n\nprint(add(1, 2))\n", max_tokens=16)
    assert infill.text == "return a + b"
    fim_request = ollama.generation_requests()[-1]
    assert fim_request["path"] == "/v1/completions"
    assert fim_request["body"]["suffix"] == "\n\nprint(add(1, 2))\n"
    # chat with a prefill: sent as the final, partial assistant turn that Ollama continues
    answer = backend.chat([{"role": "system", "content": "You write Python."},
                           {"role": "user", "content": "Implement add."}],
                          max_tokens=32, prefill="```python\n", grammar='root ::= "x"')
    assert answer.text == "    return a + b\n```\n"
    chat_request = ollama.generation_requests()[-1]["body"]
    assert chat_request["messages"][-1] == {"role": "assistant", "content": "```python\n"}
    assert chat_request["grammar"] == 'root ::= "x"' and chat_request["stream"] is True
    info = backend.info
    assert info.name == OLLAMA_MODEL and info.kind == "instruct" and info.fim == "suffix"
    # every request, /v1/models included, named the model where it has a body and was keyed
    assert ollama.refused == []
    assert all(r["authorization"] == f"Bearer {API_KEY}" for r in ollama.requests)
    assert all(r["body"]["model"] == OLLAMA_MODEL for r in ollama.generation_requests())


def test_the_fake_servers_refuse_what_the_real_ones_refuse(ollama: FakeModelServer) -> None:
    """Without the key, or with another model name, the request fails with the server's answer
    in the message (so a user sees 401 or 'not found', not a hang)."""
    keyless = OpenAIBackend(ollama.url, timeout=5, model=OLLAMA_MODEL)
    with pytest.raises(BackendError, match="HTTP 401"):
        keyless.complete("hello", max_tokens=4)
    wrong = OpenAIBackend(ollama.url, timeout=5, model="llama3:8b", api_key=API_KEY)
    with pytest.raises(BackendError, match=r"HTTP 404.*llama3:8b"):
        wrong.complete("hello", max_tokens=4)
    # no [model] model: the server's own (only) model is named, discovered from /v1/models
    discovered = OpenAIBackend(ollama.url, timeout=5, api_key=API_KEY)
    assert discovered.complete("hello", max_tokens=4).text == " world"
    assert ollama.generation_requests()[-1]["body"]["model"] == OLLAMA_MODEL


def test_missing_key_variable_is_named(tmp_path: Path, isolated_home: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    project = remote_project(tmp_path, "http://127.0.0.1:9", OLLAMA_MODEL)
    with pytest.raises(BackendError, match=f"environment variable {KEY_ENV} is not set"):
        create_backend(load_config(project), project)


def test_vllm_fim_falls_back_to_the_template_and_prefill_continues(
        vllm: FakeModelServer) -> None:
    backend = OpenAIBackend(vllm.url + "/v1", timeout=5, model=VLLM_MODEL, api_key=API_KEY)
    first = backend.fim("def add(a, b):\n    ", "\n\nx = 1\n", max_tokens=16)
    # vLLM answered 400 to `suffix` once; the Qwen FIM template (from the model name) followed
    assert first.text == "return a + b"
    assert backend.tokenizer_exact and backend.count_tokens("a b c") == 3  # vLLM's /tokenize
    assert vllm.refused == [("/v1/completions", 400, "suffix is not currently supported")]
    prompt = vllm.generation_requests()[-1]["body"]["prompt"]
    assert prompt == "<|fim_prefix|>def add(a, b):\n    <|fim_suffix|>\n\nx = 1\n<|fim_middle|>"
    before = len(vllm.generation_requests())
    assert backend.fim("def f():\n    ", "\n", max_tokens=8).text == "return a + b"
    assert len(vllm.generation_requests()) == before + 1  # suffix is not asked again
    # vLLM continues the final assistant turn only when told to
    answer = backend.chat([{"role": "user", "content": "Implement add."}], max_tokens=32,
                          prefill="```python\n")
    body = vllm.generation_requests()[-1]["body"]
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
    assert body["messages"][-1] == {"role": "assistant", "content": "```python\n"}
    assert answer.text == "    return a + b\n```\n"
    assert backend.info.kind == "instruct" and backend.info.fim == "qwen"
    assert all(r["authorization"] == f"Bearer {API_KEY}" for r in vllm.requests)


def test_prefill_without_server_support_is_asked_for_and_stripped() -> None:
    server = FakeModelServer("generic", "some-model")
    try:
        backend = OpenAIBackend(server.url, timeout=5, model="some-model", api_key=API_KEY)
        answer = backend.chat([{"role": "user", "content": "Implement add."}], max_tokens=32,
                              prefill="```python\n")
        sent = server.generation_requests()[-1]["body"]["messages"]
        assert [m["role"] for m in sent] == ["user"]  # no assistant turn the server would close
        assert sent[-1]["content"].endswith("exactly this text:\n```python\n")
        assert answer.text == "    return a + b\n```\n"  # the echoed prefill is stripped
    finally:
        server.close()


def test_cancel_closes_the_stream(ollama: FakeModelServer) -> None:
    ollama.slow = True
    backend = OpenAIBackend(ollama.url, timeout=5, model=OLLAMA_MODEL, api_key=API_KEY)
    token = CancelToken()
    threading.Timer(0.3, token.cancel).start()
    started = time.monotonic()
    result = backend.chat([{"role": "user", "content": "Write a novel."}], max_tokens=4000,
                          cancel=token)
    assert result.finish_reason == "cancelled" and time.monotonic() - started < 2
    # the server noticed the closed connection while it was still streaming (400 x 50 ms)
    assert ollama.client_closed.wait(5)


def doctor(project: Path, env: dict[str, str]) -> tuple[int, dict[str, Any]]:
    done = subprocess.run([sys.executable, "-m", "localcode_lsp", "doctor", "--project",
                           str(project), "--json"], capture_output=True, text=True, timeout=120,
                          env=env)
    return done.returncode, json.loads(done.stdout)


def test_doctor_reports_the_model_an_ollama_server_serves(
        ollama: FakeModelServer, tmp_path: Path, isolated_home: Path) -> None:
    project = remote_project(tmp_path, ollama.url, OLLAMA_MODEL)
    env = dict(os.environ, LOCALCODE_CONFIG_HOME=str(isolated_home), **{KEY_ENV: API_KEY})
    _, report = doctor(project, env)
    model = next(c for c in report["checks"] if c["name"] == "model")
    assert model["ok"] is True, model
    assert OLLAMA_MODEL in model["detail"] and "ollama" in model["detail"]
    assert KEY_ENV in model["detail"]  # where the key came from, never the key
    assert API_KEY not in json.dumps(report)
    assert report["model"]["served"] == [OLLAMA_MODEL]
    assert ollama.requests[-1]["path"] == "/v1/models"
    assert ollama.requests[-1]["authorization"] == f"Bearer {API_KEY}"
    # the table a person reads says the same
    human = subprocess.run([sys.executable, "-m", "localcode_lsp", "doctor", "--project",
                            str(project)], capture_output=True, text=True, timeout=120,
                           env=dict(env, COLUMNS="200"))
    assert OLLAMA_MODEL in human.stdout and "on ollama at" in human.stdout, human.stdout
    # without the key in the environment: a failing check that names the variable
    env.pop(KEY_ENV)
    status, report = doctor(project, env)
    model = next(c for c in report["checks"] if c["name"] == "model")
    assert status == 1 and model["ok"] is False and KEY_ENV in model["detail"]
    # a model name the server does not serve: the check lists what it does serve
    other = remote_project(tmp_path / "other", ollama.url, "qwen2.5-coder:7b")
    status, report = doctor(other, dict(env, **{KEY_ENV: API_KEY}))
    model = next(c for c in report["checks"] if c["name"] == "model")
    assert status == 1 and "does not serve 'qwen2.5-coder:7b'" in model["detail"]
    assert OLLAMA_MODEL in model["detail"]


def test_gpu_offload_is_reported_as_it_really_is() -> None:
    """doctor's GPU offload line: a CPU-only llama.cpp build offloads nothing, whatever
    n_gpu_layers asks; a GPU build offloads what is asked, up to the model's layers."""
    from localcode_lsp.inference.buildinfo import LlamaBuild, llama_build, offloaded_layers

    cpu = LlamaBuild(installed=True, gpu_offload=False)
    gpu = LlamaBuild(installed=True, gpu_offload=True)
    layers, sentence = offloaded_layers(cpu, -1, 28)
    assert layers == 0 and sentence.startswith("none: this llama.cpp build is CPU-only")
    assert "offloads 0 of 28 layers" in sentence
    assert offloaded_layers(gpu, -1, 28)[0] == 28
    assert offloaded_layers(gpu, 10, 28) == (10, "10 of 28 layers (n_gpu_layers = 10)")
    assert offloaded_layers(gpu, 99, 28)[0] == 28
    assert offloaded_layers(gpu, 0, 28)[0] == 0
    build = llama_build()  # this machine's build (portable, CPU-only)
    if build.installed:
        assert build.gpu_offload is False
