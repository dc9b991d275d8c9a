"""Attacks on the sandbox itself, in every mode this machine has (CI must have them all):
code inside remounting the read-only filesystem writable, connecting to a host unix socket under
/tmp, /run or the user's runtime dir, reading the host's process list, a run outliving the server
that started it, and an orphan that left both the process group and the marker variable.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

import psutil
import pytest
from support.sandbox_modes import ISOLATED_MODES, require_mode

from localcode_lsp.verify import Sandbox

ALL_MODES = [*ISOLATED_MODES, "plain"]


def _alive(token: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if token in " ".join(process.info["cmdline"] or []) and \
                    process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except psutil.Error:
            continue
    return found


def _wait_gone(token: str, seconds: float) -> list[psutil.Process]:
    deadline = time.monotonic() + seconds
    while _alive(token) and time.monotonic() < deadline:
        time.sleep(0.1)
    return _alive(token)


@pytest.fixture
def project(tmp_path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "module.py").write_text("x = 1\n")
    return root


# --- item 1: nothing inside can regain write access ---------------------------------------------


REMOUNT_ATTACK = """
import os, subprocess, sys
project = sys.argv[1]
for target in (project, "/", os.path.dirname(project)):
    for options in ("remount,bind,rw", "remount,rw"):
        subprocess.run(["mount", "-o", options, target], capture_output=True)
    # unmounting the read-only bind would uncover the writable mount below it
    subprocess.run(["umount", "-l", target], capture_output=True)
for path in (os.path.join(project, "pwned.txt"), os.path.join(project, "module.py")):
    try:
        with open(path, "a") as handle:
            handle.write("pwned\\n")
        print("WROTE", path)
    except OSError as exc:
        print("refused", path, exc)
"""


@pytest.mark.parametrize("mode", ISOLATED_MODES)
def test_code_inside_cannot_remount_the_project_writable(project, mode):
    require_mode(mode)
    sandbox = Sandbox(protect=[project], isolation=mode)
    result = sandbox.run([sys.executable, "-c", REMOUNT_ATTACK, str(project)], project,
                         timeout=30)
    assert result.error == "", result.error
    assert "WROTE" not in result.stdout, result.stdout + result.stderr
    assert not (project / "pwned.txt").exists()
    assert (project / "module.py").read_text() == "x = 1\n"


@pytest.mark.parametrize("mode", ISOLATED_MODES)
def test_no_capability_is_left_inside(project, mode):
    require_mode(mode)
    script = ("import re; s = open('/proc/self/status').read(); "
              "print(re.search(r'CapEff:\\s*(\\w+)', s).group(1), "
              "re.search(r'CapBnd:\\s*(\\w+)', s).group(1), "
              "re.search(r'NoNewPrivs:\\s*(\\w+)', s).group(1))")
    result = Sandbox(protect=[project], isolation=mode).run(
        [sys.executable, "-c", script], project, timeout=30)
    effective, bounding, no_new_privs = result.stdout.split()
    assert int(effective, 16) == 0 and int(bounding, 16) == 0, result.stdout
    assert no_new_privs == "1"


HOSTILE_CONFTEST = '''
import os, subprocess
real_root = open(os.path.join(os.path.dirname(__file__), "real_root.txt")).read().strip()
for options in ("remount,bind,rw", "remount,rw"):
    subprocess.run(["mount", "-o", options, real_root], capture_output=True)
    subprocess.run(["mount", "-o", options, "/"], capture_output=True)
try:
    with open(os.path.join(real_root, "calc", "ops.py"), "a") as handle:
        handle.write("\\nPWNED = True\\n")
except OSError:
    pass
'''


@pytest.mark.parametrize("mode", ISOLATED_MODES)
def test_hostile_conftest_cannot_write_to_the_real_project(copy_fixture, mode):
    """Through the gate: the project's own conftest remounts and writes to the real tree."""
    require_mode(mode)
    from localcode_lsp.config import Config, VerificationConfig
    from localcode_lsp.data import Candidate
    from localcode_lsp.verify import Gate, VerifyRequest
    from localcode_lsp.workspace import Workspace

    root = copy_fixture("verify_calc")
    (root / "conftest.py").write_text(HOSTILE_CONFTEST)
    (root / "real_root.txt").write_text(str(root))
    before = (root / "calc" / "ops.py").read_text()
    gate = Gate(Workspace(root), Config(verification=VerificationConfig(
        diff_review=False, lint=False)))
    gate.sandbox = Sandbox(protect=gate.sandbox._protect, isolation=mode)
    text = before.replace("    return None\n", "    return 3\n", 1)
    assert text != before
    request = VerifyRequest("calc/ops.py", before, symbol="parse_input", task="parse",
                            test_refs=("tests/test_ops.py",))
    gate.verify(request, Candidate(1, "    return 3\n", text))
    assert (root / "calc" / "ops.py").read_text() == before


# --- item 3: no host unix socket, no host process list ------------------------------------------


CONNECT = """
import socket, sys
for path in sys.argv[1:]:
    client = socket.socket(socket.AF_UNIX)
    try:
        client.connect(path)
        print("CONNECTED", path)
    except OSError as exc:
        print("refused", path, exc)
"""


@pytest.mark.parametrize("mode", ISOLATED_MODES)
def test_host_unix_sockets_under_tmp_run_and_runtime_dir_are_unreachable(project, mode,
                                                                         monkeypatch):
    require_mode(mode)
    listeners = []
    paths = []
    made = []
    bases = [Path("/tmp"), Path("/run")]
    runtime = Path(tempfile.mkdtemp(prefix="lc-runtime-", dir="/var/tmp"))
    made.append(runtime)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    try:
        for base in bases:
            if not os.access(base, os.W_OK):
                continue
            directory = Path(tempfile.mkdtemp(prefix="lc-sock-", dir=base))
            made.append(directory)
            paths.append(directory / "agent.sock")
        paths.append(runtime / "bus")
        for path in paths:
            listener = socket.socket(socket.AF_UNIX)
            listener.bind(str(path))
            listener.listen(4)
            os.chmod(path, 0o777)
            listeners.append(listener)
        result = Sandbox(protect=[project], isolation=mode).run(
            [sys.executable, "-c", CONNECT, *map(str, paths)], project, timeout=30)
        assert "CONNECTED" not in result.stdout, result.stdout
        assert result.stdout.count("refused") == len(paths), result.stdout + result.stderr
    finally:
        for listener in listeners:
            listener.close()
        for directory in made:
            subprocess.run(["rm", "-rf", str(directory)], check=False)


@pytest.mark.parametrize("mode", ISOLATED_MODES)
def test_credentials_and_agent_sockets_in_home_are_hidden(project, tmp_path, mode, monkeypatch):
    require_mode(mode)
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text("PRIVATE KEY\n")
    (home / "notes.txt").write_text("readable\n")
    monkeypatch.setenv("HOME", str(home))
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(home / ".ssh" / "agent.sock"))
    listener.listen(1)
    try:
        script = textwrap.dedent(f"""
            import os, socket
            home = {str(home)!r}
            print("notes", os.path.exists(os.path.join(home, "notes.txt")))
            print("key", os.path.exists(os.path.join(home, ".ssh", "id_ed25519")))
            client = socket.socket(socket.AF_UNIX)
            try:
                client.connect(os.path.join(home, ".ssh", "agent.sock"))
                print("CONNECTED")
            except OSError:
                print("refused")
        """)
        result = Sandbox(protect=[project, home], isolation=mode).run(
            [sys.executable, "-c", script], project, timeout=30)
    finally:
        listener.close()
    assert result.stdout.split() == ["notes", "True", "key", "False", "refused"], \
        result.stdout + result.stderr


@pytest.mark.parametrize("mode", ISOLATED_MODES)
def test_host_processes_are_invisible(project, mode):
    require_mode(mode)
    token = f"lc-visible-{uuid.uuid4().hex}"
    host = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", token])
    try:
        script = textwrap.dedent("""
            import os, sys
            token = sys.stdin.read().strip()  # not on our own command line
            seen = []
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    if token in open(f"/proc/{pid}/cmdline").read():
                        seen.append(pid)
                except OSError:
                    pass
            print("SEEN" if seen else "unseen", len(os.listdir("/proc")))
        """)
        result = Sandbox(protect=[project], isolation=mode).run(
            [sys.executable, "-c", script], project, timeout=30, stdin_text=token)
        assert result.stdout.startswith("unseen"), result.stdout + result.stderr
    finally:
        host.kill()
        host.wait()


# --- item 4: the whole tree dies with the server; orphans are swept -----------------------------


SERVER = """
import sys, threading
from localcode_lsp.verify import Sandbox
mode, cwd, token = sys.argv[1:4]
script = (
    "import os, subprocess, sys, time\\n"
    "subprocess.Popen(['setsid', 'env', '-i', sys.executable, '-c', "
    "'import time; time.sleep(120)', sys.argv[1]])\\n"
    "time.sleep(120)\\n")
Sandbox(protect=[cwd], isolation=mode).run([sys.executable, "-c", script, token], cwd,
                                           timeout=120)
"""


@pytest.mark.parametrize("mode", ALL_MODES)
def test_the_whole_tree_dies_with_the_server(project, mode):
    require_mode(mode)
    token = f"lc-orphan-{uuid.uuid4().hex}"
    server = subprocess.Popen([sys.executable, "-c", SERVER, mode, str(project), token],
                              cwd=Path(__file__).resolve().parents[1])
    try:
        deadline = time.monotonic() + 30
        while len(_alive(token)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(_alive(token)) >= 2, "the sandboxed run never started its processes"
        server.send_signal(signal.SIGKILL)  # the server dies without any cleanup of its own
        server.wait()
        survivors = _wait_gone(token, 10)
        for process in survivors:
            process.kill()
        assert survivors == []
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


@pytest.mark.parametrize("mode", ALL_MODES)
def test_setsid_orphan_with_a_cleared_environment_is_swept(project, mode):
    """`(setsid env -i sleep N &)`: out of the process group, without the marker variable."""
    require_mode(mode)
    token = f"lc-sweep-{uuid.uuid4().hex}"
    script = (f"(setsid env -i {sys.executable} -c 'import time; time.sleep(120)' {token} "
              f"</dev/null >/dev/null 2>&1 &); sleep 0.5; exit 0")
    result = Sandbox(protect=[project], isolation=mode).run(["sh", "-c", script], project,
                                                          timeout=30)
    assert result.returncode == 0, result.stderr
    survivors = _wait_gone(token, 2)
    for process in survivors:
        process.kill()
    assert survivors == []


def test_plain_mode_result_says_it_was_not_isolated(project):
    result = Sandbox(isolation="plain").run(["true"], project, timeout=10)
    assert result.isolation == "plain"
    assert "NOT ISOLATED" in Sandbox(isolation="plain").isolation_description()


@pytest.mark.parametrize("allowed", [False, True])
def test_doctor_shows_plain_mode_and_what_is_not_isolated(tmp_path, monkeypatch, allowed):
    from localcode_lsp.config import Config, VerificationConfig
    from localcode_lsp.doctor import build_report

    monkeypatch.setattr(Sandbox, "_probe", lambda self: "plain")
    config = Config(verification=VerificationConfig(allow_unisolated=allowed))
    report = build_report(tmp_path, config=config)
    check = next(c for c in report.checks if c.name == "sandbox")
    assert report.info["isolation"] == "plain"
    assert "NOT ISOLATED" in check.detail and "network" in check.detail
    assert check.ok is allowed
    assert ("RUN anyway" in check.detail) is allowed
    assert allowed or "allow_unisolated" in check.hint


@pytest.mark.parametrize("mode", ISOLATED_MODES)
def test_doctor_names_the_isolation_mode(tmp_path, monkeypatch, mode):
    require_mode(mode)
    from localcode_lsp.doctor import build_report

    monkeypatch.setattr(Sandbox, "_probe", lambda self: mode)
    report = build_report(tmp_path)
    check = next(c for c in report.checks if c.name == "sandbox")
    assert check.ok and check.detail.startswith(mode)
    assert report.info["isolation"] == mode


@pytest.mark.parametrize("mode", ISOLATED_MODES)
def test_an_interpreter_under_a_hidden_dir_still_runs_inside(tmp_path, mode):
    """A checkout in /tmp has its venv in /tmp, which the sandbox hides behind an empty tmpfs:
    the running interpreter's environment must stay visible (read-only), or no tool runs."""
    require_mode(mode)
    venv = Path(tempfile.mkdtemp(prefix="localcode-venv-", dir="/tmp")) / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages",
                    str(venv)], check=True, timeout=120)
    repo = Path(__file__).resolve().parent.parent
    import site

    paths = [str(repo), *site.getsitepackages()]  # localcode and its dependencies
    script = textwrap.dedent(f"""
        import sys
        sys.path[:0] = {paths!r}
        from pathlib import Path
        from localcode_lsp.verify import Sandbox
        result = Sandbox(isolation={mode!r}).run(
            [sys.executable, "-c", "print('inside ok')"], Path({str(tmp_path)!r}), timeout=30)
        print(result.isolation, repr(result.error), result.stdout.strip(), result.returncode)
    """)
    done = subprocess.run([str(venv / "bin" / "python"), "-c", script], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "inside ok" in done.stdout and done.stdout.split()[0] == mode, done.stdout
