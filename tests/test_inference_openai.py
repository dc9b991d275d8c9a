"""`OpenAIBackend` against a real OpenAI-compatible server on loopback: llama_cpp.server."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from support.model_prompts import COMMENT_FIRST_PROMPT

from localcode_lsp.cancel import CancelToken
from localcode_lsp.config import load_config
from localcode_lsp.inference import OpenAIBackend, create_backend
from localcode_lsp.inference.grammar import YES_NO_GRAMMAR, parse_yes_no
from localcode_lsp.inference.stops import stop_rule_for

pytestmark = pytest.mark.model

pytest.importorskip("llama_cpp.server.app", reason="llama-cpp-python[server] extras missing")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(model_path: Path, tmp_path_factory: pytest.TempPathFactory):
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


def test_fim_falls_back_and_structure_stops(server: str) -> None:
    backend = OpenAIBackend(server, timeout=30)
    prefix = "import math\n\n\ndef circle_area(radius):\n    "
    result = backend.fim(prefix, "\n\ndef main():\n    pass\n", max_tokens=64,
                         stop_rule=stop_rule_for("python", prefix))
    assert backend._has_infill is False  # llama_cpp.server has no /infill: prefix completion
    assert result.text.strip() and "def main" not in result.text
    assert result.finish_reason in ("structure", "stop", "length")
    # samples with a suffix are infills too, falling back the same way
    samples = backend.candidates(prefix, 2, max_tokens=48, temperature=0.7,
                                 suffix="\n\ndef main():\n    pass\n",
                                 stop_rule=stop_rule_for("python", prefix))
    assert samples and all("def main" not in sample.text for sample in samples)


def test_cancel_and_candidates(server: str) -> None:
    backend = OpenAIBackend(server, timeout=30)
    token = CancelToken()
    threading.Timer(0.5, token.cancel).start()
    started = time.monotonic()
    result = backend.complete("Once upon a time", max_tokens=800, temperature=0.9, cancel=token)
    assert result.finish_reason == "cancelled" and time.monotonic() - started < 3
    candidates = backend.candidates("def add(a, b):\n    ", 3, max_tokens=12, temperature=0.9)
    assert 1 <= len(candidates) and sum(c.votes for c in candidates) == 3
