"""Sandbox escape attempts as real pytest runs through the gate (tests/fixtures/
reliability_escape): a setsid daemon left behind by a passing test, a fork bomb, writes to the
real HOME and to system paths, network connections (host loopback and outside), and a disk
filler. Each must be contained, stopped at its limit, leave zero processes, and write nothing
outside the throwaway copy. test_verify_gate.py already covers the hanging double fork.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import socket
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psutil
import pytest
from support.sandbox_modes import ISOLATED_MODES, require_mode

from localcode_lsp.config import Config, VerificationConfig
from localcode_lsp.data import Candidate
from localcode_lsp.verify import Gate, Sandbox, VerifyRequest
from localcode_lsp.workspace import Workspace

TARGET = "esc/ops.py"
ALL_MODES = [*ISOLATED_MODES, "plain"]


@pytest.fixture
def escape(copy_fixture, tmp_path, monkeypatch) -> tuple[Path, str]:
    # throwaway copies go to a private temp dir, so leftovers are ours alone to count
    copies = tmp_path / "copies"
    copies.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(copies))
    root = copy_fixture("reliability_escape")
    token = "lcesc" + uuid.uuid4().hex[:10]  # 15 characters: fits /proc/<pid>/comm
    (root / "token.txt").write_text(token)
    (root / "outside.txt").write_text(f"{root}\n{root.parent}\n")
    return root, token


def _gate(root: Path, mode: str, timeout: float) -> Gate:
    gate = Gate(Workspace(root), Config(verification=VerificationConfig(
        diff_review=False, lint=False, test_timeout=timeout,
        allow_unisolated=mode == "plain")))
    # the same protected paths as the gate's own sandbox, in the mode under test
    gate.sandbox = Sandbox(protect=gate.sandbox._protect, isolation=mode)
    return gate


def _verify(gate: Gate, root: Path, test_file: str):
    original = (root / TARGET).read_text()
    candidate = Candidate(1, "    return x * 2\n", original.replace("return None", "return x * 2"))
    request = VerifyRequest(TARGET, original, symbol="double", task="double x",
                            test_refs=(f"tests/{test_file}",))
    started = time.monotonic()
    verdict = gate.verify(request, candidate)
    return verdict, time.monotonic() - started


def _survivors(token: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        try:
            if process.info["name"] == token[:15] or token in " ".join(
                    process.info["cmdline"] or []):
                if process.status() != psutil.STATUS_ZOMBIE:
                    found.append(process)
        except psutil.Error:
            continue
    return found


def _copies() -> list[Path]:
    return list(Path(tempfile.gettempdir()).iterdir())


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and ".localcode" not in p.parts}


def _mode_or_skip(mode: str) -> None:
    require_mode(mode)  # a skip here, a failure in CI


@pytest.mark.parametrize("mode", ALL_MODES)
def test_setsid_daemon_of_a_passing_test_is_killed(escape, mode):
    _mode_or_skip(mode)
    root, token = escape
    verdict, _ = _verify(_gate(root, mode, 20.0), root, "test_daemon.py")
    assert verdict.passed, verdict.feedback
    assert _survivors(token) == []
    assert _copies() == []  # the throwaway copy is gone


@pytest.mark.parametrize("mode", ALL_MODES)
def test_fork_bomb_is_contained_and_killed_at_the_timeout(escape, mode):
    _mode_or_skip(mode)
    root, token = escape
    before = _digest(root)
    verdict, seconds = _verify(_gate(root, mode, 3.0), root, "test_forkbomb.py")
    assert not verdict.passed
    assert any("timed out after 3s" in line for line in verdict.feedback), verdict.feedback
    assert seconds < 20
    deadline = time.monotonic() + 3
    while _survivors(token) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _survivors(token) == []
    assert _digest(root) == before


@pytest.mark.parametrize("mode", ISOLATED_MODES)
def test_writes_outside_the_copy_are_refused(escape, mode):
    _mode_or_skip(mode)
    root, token = escape
    before = _digest(root)
    gate = _gate(root, mode, 20.0)
    verdict, _ = _verify(gate, root, "test_writes.py")
    real_home = Path(pwd.getpwuid(os.getuid()).pw_dir)
    places = [real_home, Path("/tmp"), Path("/var/tmp"), Path("/etc"), Path("/dev/shm"),
              root, root.parent]
    escaped = [place / f"lc-escape-{token}" for place in places
               if (place / f"lc-escape-{token}").exists()]
    for path in escaped:
        path.unlink()
    assert verdict.passed, verdict.feedback
    assert escaped == []
    assert _digest(root) == before


@pytest.mark.parametrize("mode", ISOLATED_MODES)
def test_network_is_unreachable_including_the_host_loopback(escape, mode):
    _mode_or_skip(mode)
    root, _ = escape
    accepted: list[bytes] = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        listener.settimeout(0.2)
        (root / "port.txt").write_text(str(listener.getsockname()[1]))
        stop = threading.Event()

        def accept() -> None:
            while not stop.is_set():
                try:
                    connection, _ = listener.accept()
                except OSError:
                    continue
                with connection:
                    accepted.append(connection.recv(64))

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        try:
            verdict, _ = _verify(_gate(root, mode, 20.0), root, "test_network.py")
        finally:
            stop.set()
            thread.join(2)
    assert verdict.passed, verdict.feedback
    assert accepted == []


@pytest.mark.parametrize("mode", ALL_MODES)
def test_disk_filler_stops_at_the_file_size_limit(escape, mode):
    _mode_or_skip(mode)
    root, _ = escape
    verdict, seconds = _verify(_gate(root, mode, 30.0), root, "test_fill_disk.py")
    assert not verdict.passed
    assert seconds < 30  # stopped by RLIMIT_FSIZE, not by the timeout
    assert not any("timed out" in line for line in verdict.feedback), verdict.feedback
    assert not (root / "huge.bin").exists()
    assert _copies() == []
