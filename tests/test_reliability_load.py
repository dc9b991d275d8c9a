"""Load: a burst of inline completion requests against the real server and model.

Each new request for a document supersedes the previous one, so of 50 requests sent at once
exactly one decode may run to its end; every request still gets exactly one answer and the
server's memory stays flat.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import psutil
import pytest
from server_helpers import wait_for_steady_rss
from test_reliability_protocol import RawLsp

pytestmark = [pytest.mark.model, pytest.mark.timeout(300)]

BURST = int(os.environ.get("LOCALCODE_LOAD_BURST", "50"))
SERVER = [sys.executable, "-m", "localcode_lsp", "serve"]


def health(client: RawLsp, msg_id: str) -> dict:
    client.request(msg_id, "workspace/executeCommand",
                   {"command": "localcode.health", "arguments": []})
    response = client.response(msg_id, timeout=120)
    assert "result" in response, response
    return response["result"]["completions"]


def test_burst_of_inline_completions_runs_one_decode(tmp_path: Path, isolated_home: Path,
                                                     model_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    source = "def add(a, b):\n    \"\"\"Return the sum of a and b.\"\"\"\n    return \n"
    (root / "calc.py").write_text(source)
    env = dict(os.environ, LOCALCODE_CONFIG_HOME=str(isolated_home))
    client = RawLsp(SERVER, env=env)
    try:
        client.initialize(root)
        uri = (root / "calc.py").as_uri()
        client.notify("textDocument/didOpen", {"textDocument": {
            "uri": uri, "languageId": "python", "version": 1, "text": source}})
        params = {"textDocument": {"uri": uri}, "position": {"line": 2, "character": 11},
                  "context": {"triggerKind": 2}}
        client.request("warm", "textDocument/inlineCompletion", params)
        assert "result" in client.response("warm", timeout=180)  # loads the model once
        wait_for_steady_rss(client.process.pid)
        # three bursts: memory after the last equals memory after the first (each generation
        # used to leave ~3 MB of sampler memory behind until a full garbage collection)
        rss = []
        for burst in ("a", "b", "c"):
            before = health(client, f"{burst}-h1")
            for number in range(BURST):
                client.request(f"{burst}{number}", "textDocument/inlineCompletion", params)
            answers = [client.response(f"{burst}{number}", timeout=120) for number in range(BURST)]
            for number, answer in enumerate(answers):
                assert len(client.responses(f"{burst}{number}")) == 1, f"{burst}{number} twice"
                assert "result" in answer or answer["error"]["code"] == -32800, answer
            last = answers[-1]
            assert "result" in last and last["result"]["items"], last
            after = health(client, f"{burst}-h2")
            assert after["requested"] - before["requested"] == BURST
            assert after["finished"] - before["finished"] == 1, (before, after)
            assert after["cancelled"] - before["cancelled"] == BURST - 1, (before, after)
            rss.append(psutil.Process(client.process.pid).memory_info().rss)
        assert rss[-1] - rss[0] < 20 * 1024 * 1024, rss
        assert not client.notifications("window/showMessage")
    finally:
        client.close()
