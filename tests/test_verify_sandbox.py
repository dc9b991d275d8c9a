"""The sandbox on its own: timeout, cancel, process-tree kill, limits, isolation report."""

from __future__ import annotations

import sys
import threading
import time
import uuid

import psutil
import pytest

from localcode_lsp.cancel import CancelToken
from localcode_lsp.verify import Limits, Sandbox, run_sandboxed

MODES = ["auto", "plain"]


def _sandbox(mode: str, **kwargs) -> Sandbox:
    return Sandbox(isolation=None if mode == "auto" else mode, **kwargs)


def _alive(token: str) -> list[int]:
    return [p.pid for p in psutil.process_iter(["cmdline"])
            if token in " ".join(p.info["cmdline"] or [])]


SPAWNER = """
import os, sys, time
token = sys.argv[1]
for _ in range(20):  # a bounded fork storm, each child in its own session
    if os.fork() == 0:
        os.setsid()
        os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(600)", token])
print("spawned", flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("mode", MODES)
def test_timeout_kills_every_descendant(tmp_path, mode):
    token = f"lc-sbx-{uuid.uuid4().hex}"
    result = _sandbox(mode).run([sys.executable, "-c", SPAWNER, token], tmp_path, timeout=2)
    assert result.timed_out and result.returncode is None
    assert "spawned" in result.stdout
    assert 1.5 < result.seconds < 10
    assert _alive(token) == []


def test_cancel_stops_the_run_quickly(tmp_path):
    token = CancelToken()
    threading.Timer(0.5, token.cancel).start()
    started = time.monotonic()
    result = run_sandboxed([sys.executable, "-c", "import time; time.sleep(60)"], tmp_path,
                           timeout=30, cancel=token)
    assert result.cancelled and time.monotonic() - started < 5


def test_output_exit_code_and_stdin(tmp_path):
    result = Sandbox().run([sys.executable, "-c", "import sys; print(sys.stdin.read().upper()); "
                            "import os; print(os.environ['HOME']); sys.exit(3)"],
                           tmp_path, timeout=20, stdin_text="hello")
    assert result.returncode == 3 and not result.ok
    lines = result.stdout.splitlines()
    assert lines[0] == "HELLO"
    assert lines[1] != str(psutil.Process().environ().get("HOME"))  # a temporary HOME


def test_file_size_limit_applies(tmp_path):
    code = ("import sys\ntry:\n    open('big', 'wb').write(b'x' * (3 * 1024 * 1024))\n"
            "except OSError as exc:\n    print('blocked', exc.errno)\n")
    result = Sandbox().run([sys.executable, "-c", code], tmp_path, timeout=20,
                           limits=Limits(file_size_mb=1), writable=tmp_path)
    assert "blocked" in result.stdout or result.returncode != 0
    assert (not (tmp_path / "big").exists()) or (tmp_path / "big").stat().st_size <= 1024 * 1024


def test_missing_executable_is_an_error_not_a_crash(tmp_path):
    result = Sandbox(isolation="plain").run(["/nonexistent/tool"], tmp_path, timeout=5)
    assert result.error and not result.ok


def test_isolation_description_names_the_mode():
    assert "network isolation: none" in Sandbox(isolation="plain").isolation_description()
    description = Sandbox().isolation_description()
    assert description.split(":")[0] in ("bubblewrap", "unshare", "plain process group")
