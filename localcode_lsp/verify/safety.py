"""The checks that need no subprocess: may this candidate be judged (and run) at all?

This module owns the rules a candidate must meet before anything runs: it is not a bad
candidate (`bad_candidate_problem`: empty, enormous, binary or unchanged), it edits no
protected file (`is_protected_path`: tool configuration, and test code as
`index.languages.is_test_path` says) and no file other than the target, and it adds no risky
call the task did not ask for (`safety_gate`, on `lint.introduced_risky_calls`).
"""

from __future__ import annotations

import re
from fnmatch import fnmatch
from pathlib import PurePosixPath
from typing import Any

from ..data import Candidate, GateResult
from ..index.languages import is_test_path, language_for_path
from . import lint as lint_mod
from .request import VerifyRequest

MAX_CANDIDATE_BYTES = 200 * 1024

# Files whose edit would change what "passing" means.
PROTECTED_NAMES = frozenset({
    "pyproject.toml", "setup.cfg", "setup.py", "tox.ini", "pytest.ini", "conftest.py",
    "localcode.toml", "ruff.toml", ".ruff.toml", "mypy.ini", ".mypy.ini", ".flake8", "noxfile.py",
    "package.json", "tsconfig.json", "pyrightconfig.json", ".pre-commit-config.yaml",
})
PROTECTED_PATTERNS = (".eslintrc*", "eslint.config.*", "jest.config.*", "vitest.config.*")


def is_protected_path(path: str) -> bool:
    """True for test files and tool configuration (editing them could fake a pass)."""
    name = PurePosixPath(path).name
    if name in PROTECTED_NAMES or any(fnmatch(name, pattern) for pattern in PROTECTED_PATTERNS):
        return True
    return is_test_path(path)


def bad_candidate_problem(request: VerifyRequest, candidate: Candidate) -> str:
    """A `BAD CANDIDATE: ...` line for empty, enormous, binary or unchanged candidates."""
    text, file_text = candidate.text, candidate.file_text
    if not text.strip() or not file_text.strip():
        return "BAD CANDIDATE: empty (the model produced no code)"
    for label, value in (("fragment", text), ("file", file_text)):
        if "\x00" in value:
            line = value.count("\n", 0, value.index("\x00")) + 1
            return f"BAD CANDIDATE: binary content (NUL byte in the {label} at line {line})"
    fragment_bytes = len(text.encode("utf-8", "surrogatepass"))
    growth = len(file_text.encode("utf-8", "surrogatepass")) - \
        len(request.original_text.encode("utf-8", "surrogatepass"))
    if fragment_bytes > MAX_CANDIDATE_BYTES or growth > MAX_CANDIDATE_BYTES:
        size = max(fragment_bytes, growth) // 1024
        return (f"BAD CANDIDATE: too large ({size} KB, limit {MAX_CANDIDATE_BYTES // 1024} KB)")
    try:
        file_text.encode("utf-8")
    except UnicodeEncodeError:
        return "BAD CANDIDATE: binary content (not valid text)"
    if file_text == request.original_text and not request.extra_files \
            and not request.base_files and not request.as_is:
        # (a caller may need no change of its own after a step)
        return "BAD CANDIDATE: no change (the file is identical to the original)"
    return ""


def safety_gate(request: VerifyRequest, candidate: Candidate) -> GateResult:
    """The safety gate: no edit of a protected file or of a file other than the target, and no
    risky call (processes, files, sockets) the candidate adds unless the task asks for it."""
    changed = _changed_lines(request.original_text, candidate.file_text)
    for text in request.extra_files.values():
        changed += len(text.splitlines())
    details: dict[str, Any] = {"changed_lines": changed}
    feedback = []
    if is_protected_path(request.path) and not request.allow_protected_edits:
        feedback.append(f"TAMPERING: candidate edits tests/config: {request.path}")
    for path in request.extra_files:
        if path == request.path:
            continue
        if is_protected_path(path):
            feedback.append(f"TAMPERING: candidate edits tests/config: {path}")
        else:
            feedback.append(f"TAMPERING: candidate edits a file other than the target: {path}")
    if (request.language or language_for_path(request.path)) == "python":
        risky = [(name, line) for name, line in lint_mod.introduced_risky_calls(
            request.original_text, candidate.file_text) if not _asked_for(name, request.task)]
        if risky:
            details["risky_calls"] = [name for name, _ in risky]
        feedback += [f"UNSAFE: candidate calls {name.lstrip('.')} (line {line}): code under "
                     f"test must not start or end processes, change files or open sockets "
                     f"unless the task asks for it" for name, line in risky[:3]]
    return GateResult("safety", not feedback, feedback=feedback, details=details)


def _changed_lines(before: str, after: str) -> int:
    import difflib

    matcher = difflib.SequenceMatcher(a=before.splitlines(), b=after.splitlines(), autojunk=False)
    return sum(max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in matcher.get_opcodes()
               if tag != "equal")


def _asked_for(call: str, task: str) -> bool:
    """Whether the task names what a risky call does (`subprocess`, `os.system`, `rmtree`...),
    so a change the user asked for is not refused for doing it."""
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", task.lower()))
    parts = [part.lower() for part in call.strip(".").split(".") if part and part != "os"]
    return any(part.strip("_") in words or part in words for part in parts)
