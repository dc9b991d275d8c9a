"""The real session, end to end: a pseudo-terminal (pexpect), the real index, pipeline, gates and
the default model (Qwen2.5-Coder-1.5B-Instruct), on tests/fixtures/session_model (a stub
`square_of` with a test that the gate runs, and that runs again on the applied file).

One spawned session does everything so the model and index load once: a task whose diff is
refused with `n` (file byte-identical), the same task applied with `y` (new inode, tests pass),
Ctrl-C during GENERATE back to the prompt, and Ctrl-D exiting 0.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

pytestmark = [pytest.mark.model, pytest.mark.embeddings, pytest.mark.slow, pytest.mark.timeout(600)]

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
PROMPT = "you:"
TASK = "implement the square_of function in src/mathutil.py"


def spawn_session(project: Path, config_home: Path, transcript: Path) -> pexpect.spawn:
    env = dict(os.environ, LOCALCODE_CONFIG_HOME=str(config_home), PROMPT_TOOLKIT_NO_CPR="1",
               TERM="xterm-256color")
    env.pop("LOCALCODE_TEST_ENGINE_FACTORY", None)
    child = pexpect.spawn(sys.executable, ["-m", "localcode_lsp", "--project", str(project)],
                          env=env, encoding="utf-8", timeout=240, dimensions=(60, 160))
    child.logfile_read = transcript.open("w", encoding="utf-8")  # read it when a step fails
    return child


def expect_diff(child: pexpect.spawn) -> str:
    """Wait for the stage lines and the diff of a verified `square_of`; return the text shown."""
    child.expect(r"\[LOCATE\]\S* Found square_of at src/mathutil.py:\d+")
    child.expect(r"\[GENERATE\]\S* Producing \d+ (more )?candidates?")
    child.expect(r"\[VERIFY\]\S* Candidate \d+ passes \(parse ✓")
    child.expect("Here's the diff:")
    child.expect(r"Apply\? \[y/n\]")
    return ANSI.sub("", child.before)


def test_real_session_apply_refuse_cancel_and_leave(copy_fixture, isolated_home,
                                                    tmp_path: Path) -> None:
    project = copy_fixture("session_model")
    target = project / "src" / "mathutil.py"
    original = target.read_bytes()
    inode = target.stat().st_ino

    transcript = tmp_path / "transcript.txt"
    child = spawn_session(project, isolated_home, transcript)
    try:
        child.expect(PROMPT)  # after the first index build

        child.sendline(TASK)
        shown = expect_diff(child)
        assert "src/mathutil.py" in shown
        assert "-    raise NotImplementedError" in shown
        child.sendline("n")
        child.expect("not applied; the files are unchanged")
        child.expect(r"model calls: [1-9]\d*")
        child.expect(PROMPT)
        assert target.read_bytes() == original
        assert target.stat().st_ino == inode

        child.sendline(TASK)
        shown = expect_diff(child)
        added = [line for line in shown.splitlines() if line.strip().startswith("+ ")
                 or line.strip().startswith("+    ")]
        assert added, shown
        child.sendline("y")
        child.expect("applied src/mathutil.py")
        child.expect(PROMPT)
        text = target.read_text()
        assert "raise NotImplementedError" not in text
        assert target.stat().st_ino != inode
        for line in added:  # what the diff showed is what the file now holds
            assert line.strip()[1:].strip() in text
        tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                               cwd=project, capture_output=True, text=True, timeout=120)
        assert tests.returncode == 0, tests.stdout + tests.stderr  # the applied code passes

        child.sendline("rewrite the negate_value function in src/mathutil.py to subtract x from zero")
        child.expect(r"\[PLAN\]")  # GENERATE (or DIAGNOSE) starts right after the PLAN line
        child.sendintr()
        # the model may read "rewrite ... to" as a fix (DIAGNOSE runs the tests first) or an
        # edit (GENERATE): either way Ctrl-C lands while the task is working
        child.expect(r"Cancelled during (GENERATE|DIAGNOSE)", timeout=60)
        child.expect(r"\[CANCELLED\]\S* task cancelled")
        child.expect(PROMPT)
        assert child.isalive()

        child.sendeof()
        child.expect("bye")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0
    except (pexpect.TIMEOUT, pexpect.EOF, AssertionError):
        child.logfile_read.flush()
        print(ANSI.sub("", transcript.read_text(encoding="utf-8")))
        raise
    finally:
        if child.isalive():
            child.terminate(force=True)
    assert "raise NotImplementedError" not in target.read_text()
