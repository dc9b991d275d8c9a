"""The interactive session in a real pseudo-terminal (pexpect) and behind pipes, driven by a
scripted engine (tests/fixtures/session_fake) so the terminal behaviour is tested without the
model. The real-model session test is in test_session_model.py."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

FIXTURES = Path(__file__).parent / "fixtures"
LOCALCODE = [sys.executable, "-m", "localcode_lsp"]
PROMPT = "you:"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
TIMEOUT = 60


def session_env(config_home: Path, log: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=os.pathsep.join([str(FIXTURES / "session_fake"), env.get("PYTHONPATH", "")]),
        LOCALCODE_TEST_ENGINE_FACTORY="session_fake_engine:create",
        LOCALCODE_CONFIG_HOME=str(config_home),
        PROMPT_TOOLKIT_NO_CPR="1",
        TERM="xterm-256color",
    )
    if log is not None:
        env["SESSION_FAKE_LOG"] = str(log)
    return env


@pytest.fixture
def project(copy_fixture, isolated_home) -> Path:
    return copy_fixture("session_project")


@pytest.fixture
def spawn(project: Path, isolated_home: Path, tmp_path: Path):
    children: list[pexpect.spawn] = []

    def start(*extra: str) -> pexpect.spawn:
        child = pexpect.spawn(LOCALCODE[0], LOCALCODE[1:] + ["--project", str(project), *extra],
                              env=session_env(isolated_home, tmp_path / "tasks.jsonl"),
                              encoding="utf-8", timeout=TIMEOUT, dimensions=(50, 140))
        children.append(child)
        child.expect(PROMPT)
        return child

    yield start
    for child in children:
        if child.isalive():
            child.terminate(force=True)


def leave(child: pexpect.spawn) -> int:
    child.sendeof()
    child.expect("bye")
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus


def run_task_to_apply(child: pexpect.spawn, task: str) -> str:
    child.sendline(task)
    child.expect(r"\[LOCATE\]\S* Found parse_config at src/config.py")
    child.expect(r"\[GENERATE\]\S* Producing 5 candidates")
    child.expect(r"\[VERIFY\]\S* Candidate 3 passes")
    child.expect("Here's the diff:")
    child.expect(r"Apply\? \[y/n\]")
    return ANSI.sub("", child.before)


def test_yes_applies_atomically_and_ctrl_d_exits_zero(spawn, project: Path) -> None:
    target = project / "src" / "config.py"
    inode = target.stat().st_ino
    child = spawn()
    shown = run_task_to_apply(child, "add input validation to the parse_config function")
    assert "src/config.py" in shown
    assert "@@ -5,6 +5,8 @@" in shown
    assert "+    if not isinstance(raw, str):" in shown
    child.sendline("y")
    child.expect("applied src/config.py")
    child.expect(r"model calls: 7 \S+ [0-9.]+ s \S+ applied")
    child.expect(PROMPT)
    assert leave(child) == 0
    assert "    if not isinstance(raw, str):\n" in target.read_text()
    assert target.stat().st_ino != inode
    history = (project / ".localcode" / "history").read_text()
    assert "add input validation to the parse_config function" in history


def test_no_leaves_the_file_byte_identical(spawn, project: Path) -> None:
    target = project / "src" / "config.py"
    original = target.read_bytes()
    stat_before = target.stat()
    child = spawn()
    run_task_to_apply(child, "add input validation to the parse_config function")
    child.sendline("n")
    child.expect("not applied; the files are unchanged")
    child.expect(PROMPT)
    assert leave(child) == 0
    assert target.read_bytes() == original
    assert target.stat().st_ino == stat_before.st_ino
    assert target.stat().st_mtime_ns == stat_before.st_mtime_ns


def test_file_edited_while_asking_is_refused(spawn, project: Path) -> None:
    target = project / "src" / "config.py"
    child = spawn()
    run_task_to_apply(child, "add input validation to the parse_config function")
    edited = target.read_text() + "\n# the user typed this meanwhile\n"
    target.write_text(edited)
    child.sendline("y")
    child.expect("not applied")
    child.expect("changed on disk since localcode read it")
    child.expect(PROMPT)
    assert leave(child) == 0
    assert target.read_text() == edited


def test_ctrl_c_during_generate_cancels_and_session_goes_on(spawn, project: Path) -> None:
    original = (project / "src" / "config.py").read_bytes()
    child = spawn()
    child.sendline("slow: add input validation to parse_config")
    child.expect(r"\[GENERATE\]\S* Producing 5 candidates")
    child.sendintr()
    child.expect(r"\[CANCELLED\]\S* task cancelled", timeout=15)
    child.expect(r"cancelled")
    child.expect(PROMPT)
    assert child.isalive()
    child.sendline("explain parse_config")  # the session still works after the cancel
    child.expect("parse_config turns a JSON string into a dict.")
    child.expect(re.escape("It does not validate its input [yet]."))  # not taken as markup
    child.expect(PROMPT)
    assert leave(child) == 0
    assert (project / "src" / "config.py").read_bytes() == original


def test_prompt_commands_ctrl_c_and_errors(spawn, tmp_path: Path) -> None:
    child = spawn()
    child.sendintr()  # Ctrl-C at the prompt drops the line, like a shell
    child.expect(PROMPT)
    child.sendline("/help")
    child.expect("/summary")
    child.expect(PROMPT)
    child.sendline("crash please")
    child.expect(r"\[ERROR\]\S* scripted failure inside the pipeline")
    child.expect(PROMPT)
    child.sendline("fail: add validation")
    child.expect("no candidate passed verification after 3 retries")
    child.expect(r"no verified candidate")
    child.expect(PROMPT)
    child.sendline("/summary")
    child.expect("crash please: failed with an error")
    child.expect("fail: add validation: no verified candidate")
    child.expect(PROMPT)
    child.sendline("/quit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    tasks = (tmp_path / "tasks.jsonl").read_text().splitlines()
    assert len(tasks) == 2
    # the second task carried the rolling summary of the first
    assert "crash please: failed with an error" in tasks[1]


# --- without a terminal -------------------------------------------------------------------


def run_piped(project: Path, config_home: Path, stdin: str) -> subprocess.CompletedProcess:
    return subprocess.run(LOCALCODE + ["--project", str(project)], input=stdin, text=True,
                          capture_output=True, timeout=TIMEOUT, env=session_env(config_home))


def test_piped_end_of_input_answers_no(project: Path, isolated_home: Path) -> None:
    target = project / "src" / "config.py"
    original = target.read_bytes()
    done = run_piped(project, isolated_home, "add input validation to parse_config\n")
    assert done.returncode == 0, done.stderr
    assert "[VERIFY] Candidate 3 passes" in done.stdout
    assert "+    if not isinstance(raw, str):" in done.stdout
    assert "\x1b[" not in done.stdout  # no colour codes into a pipe
    assert "not applied" in done.stdout
    assert target.read_bytes() == original


def test_piped_needs_an_explicit_yes(project: Path, isolated_home: Path) -> None:
    target = project / "src" / "config.py"
    done = run_piped(project, isolated_home,
                     "add input validation to parse_config\nmaybe\ny\nexplain parse_config\n")
    assert done.returncode == 0, done.stderr
    assert "please answer y or n" in done.stdout
    assert "applied src/config.py" in done.stdout
    assert "parse_config turns a JSON string into a dict." in done.stdout
    assert "if not isinstance(raw, str):" in target.read_text()


def test_missing_project_is_a_usage_error(tmp_path: Path, isolated_home: Path) -> None:
    done = subprocess.run(LOCALCODE + ["--project", str(tmp_path / "nope")], input="",
                          text=True, capture_output=True, timeout=TIMEOUT,
                          env=session_env(isolated_home))
    assert done.returncode == 2
    assert "does not exist" in done.stderr


# --- a terminal that behaves like a real one ------------------------------------------------
# prompt_toolkit asks the terminal where the cursor is (CPR, ESC[6n) and real terminals answer
# (ESC[row;colR); Enter arrives as \r. The tests above switch CPR off; these answer it, and the
# scripted engine takes seconds per task ("sleepy"), as the real model does.

CPR_REQUEST = "\x1b[6n"
CPR_ANSWER = "\x1b[1;1R"


class Terminal:
    """A pexpect child driven like a terminal emulator: every CPR request is answered."""

    def __init__(self, child: pexpect.spawn) -> None:
        self.child = child

    def expect(self, pattern: str, timeout: float = TIMEOUT) -> str:
        while True:
            index = self.child.expect([re.escape(CPR_REQUEST), pattern], timeout=timeout)
            if index == 0:
                self.child.send(CPR_ANSWER)
                continue
            return ANSI.sub("", self.child.before)

    def quiet_for(self, seconds: float, *patterns: str) -> bool:
        """True when none of `patterns` shows up within `seconds` (CPR requests answered)."""
        try:
            self.expect("|".join(patterns), timeout=seconds)
        except pexpect.TIMEOUT:
            return True
        return False

    def type(self, text: str) -> None:
        self.child.send(text)


@pytest.fixture
def terminal(project: Path, isolated_home: Path, tmp_path: Path):
    children: list[pexpect.spawn] = []

    def start() -> Terminal:
        env = session_env(isolated_home, tmp_path / "tasks.jsonl")
        env.pop("PROMPT_TOOLKIT_NO_CPR")
        env["SESSION_FAKE_SECONDS"] = "3"
        child = pexpect.spawn(LOCALCODE[0], LOCALCODE[1:] + ["--project", str(project)],
                              env=env, encoding="utf-8", timeout=TIMEOUT, dimensions=(50, 140))
        children.append(child)
        term = Terminal(child)
        term.expect(PROMPT)
        return term

    yield start
    for child in children:
        if child.isalive():
            child.terminate(force=True)


SLEEPY_TASK = "sleepy: add input validation to the parse_config function\r"


def test_real_terminal_y_and_enter_applies(terminal, project: Path) -> None:
    target = project / "src" / "config.py"
    term = terminal()
    term.type(SLEEPY_TASK)
    term.expect(r"\[VERIFY\]\S* Candidate 3 passes")
    term.expect(r"Apply\? \[y/n\]")
    term.type("y\r")
    term.expect("applied src/config.py")
    term.expect(PROMPT)
    assert "    if not isinstance(raw, str):\n" in target.read_text()


def test_real_terminal_n_and_enter_leaves_the_file_byte_identical(terminal, project: Path) -> None:
    target = project / "src" / "config.py"
    original = target.read_bytes()
    term = terminal()
    term.type(SLEEPY_TASK)
    term.expect(r"Apply\? \[y/n\]")
    term.type("n\r")
    term.expect("not applied; the files are unchanged")
    term.expect(PROMPT)
    assert target.read_bytes() == original


def test_keys_typed_before_the_question_are_neither_yes_nor_no(terminal, project: Path) -> None:
    """A `y` typed while the model works (before the diff is on screen) must not apply the diff
    unseen, and must not silently become "no": it is dropped, said so, and the question waits."""
    target = project / "src" / "config.py"
    original = target.read_bytes()
    term = terminal()
    term.type(SLEEPY_TASK)
    term.expect(r"\[GENERATE\]\S* Producing 5 candidates")
    term.type("y\r")  # while the task still runs
    term.expect("ignored keys typed before the diff was shown")
    term.expect(r"Apply\? \[y/n\]")
    assert term.quiet_for(1.5, "applied", "please answer")  # it waits for a real answer
    assert target.read_bytes() == original
    term.type("y\r")
    term.expect("applied src/config.py")
    assert "    if not isinstance(raw, str):\n" in target.read_text()


@pytest.mark.model
@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_real_model_session_in_a_real_terminal(copy_fixture, isolated_home: Path,
                                               tmp_path: Path) -> None:
    """The default model (no scripted engine), CPR answered, Enter as \\r: `n` leaves the file
    byte-identical, then `y` applies the same task's diff."""
    project = copy_fixture("session_model")
    target = project / "src" / "mathutil.py"
    original = target.read_bytes()
    env = dict(os.environ, LOCALCODE_CONFIG_HOME=str(isolated_home), TERM="xterm-256color")
    for name in ("PROMPT_TOOLKIT_NO_CPR", "LOCALCODE_TEST_ENGINE_FACTORY"):
        env.pop(name, None)
    child = pexpect.spawn(LOCALCODE[0], LOCALCODE[1:] + ["--project", str(project)], env=env,
                          encoding="utf-8", timeout=600, dimensions=(50, 140))
    transcript = tmp_path / "transcript.txt"
    child.logfile_read = transcript.open("w", encoding="utf-8")
    term = Terminal(child)
    task = "implement the square_of function in src/mathutil.py\r"
    try:
        term.expect(PROMPT)
        term.type(task)
        term.expect(r"Apply\? \[y/n\]")
        term.type("n\r")
        term.expect("not applied; the files are unchanged", timeout=60)
        term.expect(PROMPT, timeout=60)
        assert target.read_bytes() == original
        term.type(task)
        term.expect(r"Apply\? \[y/n\]")
        term.type("y\r")
        term.expect("applied src/mathutil.py", timeout=60)
        term.expect(PROMPT, timeout=60)
        assert "raise NotImplementedError" not in target.read_text()
        tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                               cwd=project, capture_output=True, text=True, timeout=120)
        assert tests.returncode == 0, tests.stdout + tests.stderr  # the applied code passes
        child.sendeof()
        child.expect(pexpect.EOF, timeout=60)
    except (pexpect.TIMEOUT, pexpect.EOF):
        child.logfile_read.flush()
        print(ANSI.sub("", transcript.read_text(encoding="utf-8"))[-6000:])
        raise
    finally:
        if child.isalive():
            child.terminate(force=True)
