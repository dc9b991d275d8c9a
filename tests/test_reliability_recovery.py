"""Crash recovery of `.localcode/`: `localcode index` killed with SIGKILL mid-build, then run
again, gives the same index a clean build gives, with no crash; a truncated or corrupted cache
file or lancedb table is rebuilt with exactly one log line."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).parent.parent


def _project(root: Path, files: int) -> Path:
    for number in range(files):
        package = root / f"pkg{number % 10}"
        package.mkdir(parents=True, exist_ok=True)
        (package / f"mod{number}.py").write_text("\n\n".join(
            f'def func_{number}_{k}(value):\n    """Step {k} of module {number}."""\n'
            f"    return value * {k} + {number}\n" for k in range(6)) + "\n")
    return root


def _index(root: Path, env: dict[str, str], *extra: str, timeout: float = 240
           ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "localcode_lsp", "index", "--project",
                           str(root), "--json", *extra], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=str(REPO_ROOT))


def _stats(completed: subprocess.CompletedProcess) -> dict:
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout[completed.stdout.index("{"):])


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    home = tmp_path / "config-home"
    home.mkdir()
    return dict(os.environ, LOCALCODE_CONFIG_HOME=str(home), HF_HUB_OFFLINE="1")


def _kill_during_build(root: Path, env: dict[str, str], extra: tuple[str, ...],
                       after: float, started_when: Path | None = None) -> None:
    """Start `localcode index`, wait `after` seconds (counted from when `started_when`
    exists, if given), then SIGKILL it. A build that finishes first (the timing came from a
    clean run, and runs vary) is started again, killed sooner."""
    for _ in range(4):
        process = subprocess.Popen([sys.executable, "-m", "localcode_lsp", "index",
                                    "--project", str(root), *extra],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   env=env, cwd=str(REPO_ROOT))
        if started_when is not None:
            limit = time.monotonic() + 120
            while not started_when.exists() and process.poll() is None \
                    and time.monotonic() < limit:
                time.sleep(0.05)
        deadline = time.monotonic() + after
        while time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            return
        shutil.rmtree(root / ".localcode", ignore_errors=True)
        after *= 0.6
    raise AssertionError("the build always finished before it could be killed")


@pytest.mark.parametrize("fraction", [0.6, 0.9])
def test_sigkill_during_ast_indexing_then_restart(tmp_path, env, fraction):
    root = _project(tmp_path / "proj", 1500)
    clean = tmp_path / "clean"
    shutil.copytree(root, clean)
    started = time.monotonic()
    expected = _stats(_index(clean, env, "--no-embeddings"))
    duration = time.monotonic() - started
    _kill_during_build(root, env, ("--no-embeddings",), duration * fraction)
    restarted = _stats(_index(root, env, "--no-embeddings"))
    assert (restarted["files"], restarted["symbols"], restarted["chunks"]) == (
        expected["files"], expected["symbols"], expected["chunks"])
    again = _stats(_index(root, env, "--no-embeddings"))
    assert again["parsed_now"] == 0 and again["symbols"] == expected["symbols"]


@pytest.mark.embeddings
def test_sigkill_during_embedding_then_restart(tmp_path, env):
    root = _project(tmp_path / "proj", 120)
    # lancedb opens once the AST pass is done; then torch loads and it embeds. Time a clean
    # build of a copy, then kill the real one 60% of the way from lancedb opening to the end,
    # so the kill lands mid-embedding on a quiet and on a loaded machine alike.
    clean = tmp_path / "clean"
    shutil.copytree(root, clean)
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "localcode_lsp", "index", "--project",
                                str(clean)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env=env, cwd=str(REPO_ROOT))
    opened = None
    while process.poll() is None:
        if opened is None and (clean / ".localcode/index/lancedb").exists():
            opened = time.monotonic()
        time.sleep(0.02)
    assert process.returncode == 0
    opened = opened or started
    embedding_seconds = time.monotonic() - opened
    _kill_during_build(root, env, (), 0.6 * embedding_seconds,
                       started_when=root / ".localcode/index/lancedb")
    restarted = _stats(_index(root, env))
    assert restarted["files"] == 120 and restarted["chunks"] > 0
    assert restarted["table_rows"] == restarted["chunks"]
    again = _stats(_index(root, env))
    assert again["embedded_now"] == 0 and again["table_rows"] == restarted["chunks"]


def _log_lines(root: Path, needle: str) -> list[str]:
    log = root / ".localcode" / "logs" / "localcode.log"
    if not log.exists():
        return []
    return [line for line in log.read_text().splitlines() if needle in line]


@pytest.mark.parametrize("damage", ["truncate", "garbage", "wrong_shape"])
def test_damaged_ast_cache_is_rebuilt_with_one_log_line(tmp_path, env, damage):
    root = _project(tmp_path / "proj", 30)
    expected = _stats(_index(root, env, "--no-embeddings"))
    cache = root / ".localcode" / "index" / "ast_cache.json"
    data = cache.read_bytes()
    cache.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"\x00\xff" * 64,
                       "wrong_shape": b'{"version": 1, "files": [1, 2]}'}[damage])
    before = len(_log_lines(root, "AST cache"))
    rebuilt = _stats(_index(root, env, "--no-embeddings"))
    assert rebuilt["symbols"] == expected["symbols"] and rebuilt["parsed_now"] == 30
    assert len(_log_lines(root, "AST cache")) - before == 1
    json.loads(cache.read_text())  # written back whole


@pytest.mark.embeddings
def test_damaged_lancedb_table_is_rebuilt_with_one_log_line(tmp_path, env):
    root = _project(tmp_path / "proj", 12)
    expected = _stats(_index(root, env))
    tables = root / ".localcode" / "index" / "lancedb"
    damaged = 0
    for path in tables.rglob("*"):
        if path.is_file() and path.suffix in (".lance", ".manifest", ".txn"):
            path.write_bytes(path.read_bytes()[: max(1, path.stat().st_size // 3)])
            damaged += 1
    assert damaged
    log = root / ".localcode" / "logs" / "localcode.log"
    before = log.read_text().count("\n") if log.exists() else 0
    rebuilt = _stats(_index(root, env))
    assert rebuilt["table_rows"] == expected["table_rows"] and rebuilt["rebuilt"]
    new_lines = log.read_text().splitlines()[before:]
    warnings = [line for line in new_lines if "WARNING" in line or "ERROR" in line]
    assert len(warnings) == 1, warnings
