"""A bug-fixing problem as a small project: `solution.py` and `tests/test_solution.py`.

The tests are HumanEval's own `check(candidate)` as one pytest test, present in the project as
in a real repository; they run in a subprocess (`python -m pytest`) with the project as cwd.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

MODULE = "solution.py"
TEST_FILE = "tests/test_solution.py"


def module_text(problem: dict) -> str:
    """The correct module: HumanEval's prompt followed by its canonical solution."""
    return problem["prompt"] + problem["canonical_solution"]


def test_text(problem: dict) -> str:
    entry = problem["entry_point"]
    # the tests may call the module's other functions too (HumanEval/50 calls encode_shift)
    return (f"from solution import *  # noqa: F403\nfrom solution import {entry}\n\n"
            + problem["test"] + "\n\n"
            f"def test_{entry}():\n    check({entry})\n")


def write_project(root: Path, problem: dict, module: str) -> None:
    """`root` becomes the project: the module (buggy or not) and the problem's tests."""
    (root / "tests").mkdir(parents=True, exist_ok=True)
    (root / MODULE).write_text(module)
    (root / TEST_FILE).write_text(test_text(problem))


def run_tests(root: Path, timeout: float = 60.0) -> tuple[bool, str]:
    """(passed, pytest's output) for the project's tests; a hang counts as a failure."""
    # the venv's pytest plugins (asyncio, lsp, hypothesis) are no part of these projects and
    # triple pytest's start-up
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "--tb=short", "-p", "no:cacheprovider",
             TEST_FILE], cwd=root, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return False, f"the tests did not finish in {timeout:g} s (an endless loop?)"
    return proc.returncode == 0, proc.stdout + proc.stderr


def failure_digest(output: str, limit: int = 25) -> list[str]:
    """The lines of pytest's output that say what failed: the failing assertion, the `E`
    lines and the `FAILED` summary (at most `limit` lines)."""
    keep = [line.rstrip() for line in output.splitlines()
            if line.startswith(("E ", "FAILED", ">")) or "assert" in line
            or "Error" in line]
    return keep[:limit] or [line for line in output.splitlines() if line.strip()][-limit:]
