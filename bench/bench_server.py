"""Language-server benchmarks: `initialize` round trip and inlineCompletion latency through the
server vs the same completion called in process (same document states, same positions).

Loads the model: run under the model lock, e.g.
    flock /tmp/lc/model.lock .venv/bin/python bench/bench_server.py
Writes a table to stdout and JSON to bench/results/server.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROJECT = REPO / "tests" / "fixtures" / "server_project"
SERVER = [sys.executable, "-m", "localcode_lsp", "serve"]
# typed one character per step inside `add`, after the docstring (one request per keystroke)
TYPED = "    total = a + b  # the sum of both numbers"


class Client:
    """Minimal stdio LSP client (reader thread, id-matched responses)."""

    def __init__(self, command: list[str], cwd: Path) -> None:
        self.process = subprocess.Popen(command, cwd=cwd, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.responses: dict = {}
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        self.next_id = 0

    def _read(self) -> None:
        stream = self.process.stdout
        while True:
            header = b""
            while not header.endswith(b"\r\n\r\n"):
                byte = stream.read(1)
                if not byte:
                    return
                header += byte
            length = int(header.split(b"Content-Length:")[1].split(b"\r\n")[0])
            message = json.loads(stream.read(length))
            if "id" in message and "method" not in message:
                with self.cond:
                    self.responses[message["id"]] = message
                    self.cond.notify_all()
            elif "id" in message:  # a server request (progress create, applyEdit): accept it
                self.send({"jsonrpc": "2.0", "id": message["id"], "result": None})

    def send(self, message: dict) -> None:
        body = json.dumps(message).encode()
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.process.stdin.flush()

    def request(self, method: str, params, timeout: float = 120) -> dict:
        self.next_id += 1
        msg_id = self.next_id
        self.send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        deadline = time.monotonic() + timeout
        with self.cond:
            while msg_id not in self.responses:
                if not self.cond.wait(max(0.0, deadline - time.monotonic())):
                    raise TimeoutError(method)
            return self.responses.pop(msg_id)

    def notify(self, method: str, params) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def close(self) -> None:
        try:
            self.request("shutdown", None, timeout=10)
            self.notify("exit", None)
            self.process.wait(5)
        except Exception:
            self.process.kill()


def steps(text: str) -> list[tuple[str, int, int]]:
    """(document text, line, column) for each keystroke of TYPED on a new line in `add`."""
    lines = text.split("\n")
    anchor = next(i for i, line in enumerate(lines) if "Return the sum" in line) + 1
    result = []
    for count in range(1, len(TYPED) + 1):
        new_lines = lines[:anchor] + [TYPED[:count]] + lines[anchor:]
        result.append(("\n".join(new_lines), anchor, count))
    return result


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def bench_initialize(root: Path, runs: int) -> dict:
    cold, round_trips = [], []
    for _ in range(runs):
        started = time.monotonic()
        client = Client(SERVER, root)
        # the first answer (-32002) says the process is up and reading
        client.request("localcode/ping", {})
        ready = time.monotonic()
        t0 = time.monotonic()
        client.request("initialize", {"processId": os.getpid(), "rootUri": root.as_uri(),
                                      "capabilities": {}})
        round_trips.append((time.monotonic() - t0) * 1000)
        cold.append((time.monotonic() - started) * 1000)
        del ready
        client.close()
    return {"round_trip_ms_p50": statistics.median(round_trips),
            "round_trip_ms_max": max(round_trips),
            "spawn_to_initialized_ms_p50": statistics.median(cold), "runs": runs}


def bench_direct(root: Path, text: str, states: list) -> list[float]:
    sys.path.insert(0, str(REPO))
    from localcode_lsp.engine import Engine

    engine = Engine(root)
    engine.open_document("pkg/calc.py", states[0][0], 1, "python")
    engine.complete("pkg/calc.py", states[0][1], states[0][2])  # load the model
    engine.index.wait_idle()  # both arms time completions, not the embedder's first load
    timings = []
    for version, (state, line, column) in enumerate(states, start=2):
        engine.update_document("pkg/calc.py", state, version)
        started = time.monotonic()
        engine.complete("pkg/calc.py", line, column)
        timings.append((time.monotonic() - started) * 1000)
    engine.close()
    return timings


def bench_server(root: Path, text: str, states: list) -> list[float]:
    client = Client(SERVER, root)
    client.request("initialize", {"processId": os.getpid(), "rootUri": root.as_uri(),
                                  "capabilities": {}})
    client.notify("initialized", {})
    uri = (root / "pkg" / "calc.py").as_uri()
    client.notify("textDocument/didOpen", {"textDocument": {
        "uri": uri, "languageId": "python", "version": 1, "text": states[0][0]}})

    def inline(line: int, column: int) -> dict:
        return client.request("textDocument/inlineCompletion", {
            "textDocument": {"uri": uri}, "position": {"line": line, "character": column},
            "context": {"triggerKind": 2}})

    inline(states[0][1], states[0][2])  # load the model
    sys.path.insert(0, str(REPO / "tests"))
    from server_helpers import wait_for_steady_rss  # the load test's settled-memory wait

    wait_for_steady_rss(client.process.pid)  # the server's index loads its embedder meanwhile
    timings = []
    for version, (state, line, column) in enumerate(states, start=2):
        client.notify("textDocument/didChange", {
            "textDocument": {"uri": uri, "version": version},
            "contentChanges": [{"text": state}]})
        started = time.monotonic()
        response = inline(line, column)
        timings.append((time.monotonic() - started) * 1000)
        if "error" in response:
            raise RuntimeError(response["error"])
    client.close()
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--init-runs", type=int, default=5)
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "server.json")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    workdir = Path(tempfile.mkdtemp(prefix="localcode-bench-server-"))
    root = workdir / "project"
    shutil.copytree(PROJECT, root)
    text = (root / "pkg" / "calc.py").read_text()
    states = steps(text)

    init = bench_initialize(root, args.init_runs)
    direct = bench_direct(root, text, states)
    served = bench_server(root, text, states)
    shutil.rmtree(workdir, ignore_errors=True)

    result = {
        "initialize": init,
        "inline_completion": {
            "requests": len(states),
            "direct_ms_p50": statistics.median(direct), "direct_ms_p95": pct(direct, 0.95),
            "server_ms_p50": statistics.median(served), "server_ms_p95": pct(served, 0.95),
        },
        "goals": {"initialize_round_trip_ms": 300, "server_over_direct_p50": 1.10},
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
    }
    inline = result["inline_completion"]
    inline["overhead_p50"] = inline["server_ms_p50"] / max(inline["direct_ms_p50"], 1e-9)
    inline["overhead_p95"] = inline["server_ms_p95"] / max(inline["direct_ms_p95"], 1e-9)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")

    print(f"{'measure':44} {'value':>12}")
    print(f"{'initialize round trip p50 / max (ms)':44} "
          f"{init['round_trip_ms_p50']:7.1f} / {init['round_trip_ms_max']:.1f}")
    print(f"{'spawn -> initialize answered p50 (ms)':44} {init['spawn_to_initialized_ms_p50']:12.1f}")
    print(f"{'inline completion direct p50 / p95 (ms)':44} "
          f"{inline['direct_ms_p50']:7.1f} / {inline['direct_ms_p95']:.1f}")
    print(f"{'inline completion via server p50 / p95 (ms)':44} "
          f"{inline['server_ms_p50']:7.1f} / {inline['server_ms_p95']:.1f}")
    print(f"{'server / direct (p50, p95)':44} "
          f"{inline['overhead_p50']:7.2f}x / {inline['overhead_p95']:.2f}x")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
