"""Fast tests of the verification gate's pieces: no subprocess except where stated."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from localcode_lsp.config import Config, VerificationConfig
from localcode_lsp.data import Candidate, GateResult, Verdict
from localcode_lsp.index.syntax import SyntaxChecker
from localcode_lsp.inference.backend import Completion
from localcode_lsp.verify import Gate, VerifyRequest, digest_pytest, digest_ruff, rank
from localcode_lsp.verify.lint import Diagnostic, introduced
from localcode_lsp.verify.testrun import digest_junit
from localcode_lsp.workspace import Workspace

SYNTAX_LINE = re.compile(r"^SYNTAX ERROR at line \d+: .+ \(column \d+\)$")
LINT_LINE = re.compile(r"^LINT: [A-Z]+\d+ .+ \(line \d+\)$")
TEST_LINE = re.compile(r"^TEST FAIL: \S.* \u2014 .+$")

ORIGINAL = '''def add(a, b):
    """Add.

    >>> add(1, 2)
    3
    """
    return a + b
'''


def _candidate(text: str, cid: int = 1) -> Candidate:
    return Candidate(cid, text, text)


def _gate(root: Path, *, trusted: bool = True, review: bool = False, backend=None) -> Gate:
    config = Config(verification=VerificationConfig(diff_review=review))
    return Gate(Workspace(root, trusted=trusted), config,
                backend=(lambda: backend) if backend is not None else None)


# --- parse ------------------------------------------------------------------------------------


def test_python_syntax_errors_are_located_and_described():
    checker = SyntaxChecker()
    indent = checker.check("x = 1\n    y = 2\n", "python")
    assert len(indent) == 1
    assert indent[0].feedback_line().startswith("SYNTAX ERROR at line 2: unexpected indent (column ")
    unclosed = checker.check("def f():\n    return (1 +\n", "python")
    assert unclosed[0].line == 2 and "never closed" in unclosed[0].message
    assert checker.check(ORIGINAL, "python") == []


def test_other_languages_use_tree_sitter():
    checker = SyntaxChecker()
    problems = checker.check("const x = ;\nlet y = (1 + 2;\n", "javascript")
    assert [p.line for p in problems] == [1, 2]
    assert problems[1].message == "missing ')'"
    assert all(SYNTAX_LINE.match(p.feedback_line()) for p in problems)
    assert checker.check("function f(a) { return a + 1; }\n", "javascript") == []


@pytest.mark.parametrize("text, expected", [
    ("", "BAD CANDIDATE: empty"),
    ("   \n", "BAD CANDIDATE: empty"),
    ("def f():\n    return 1\x00\n", "BAD CANDIDATE: binary content"),
    ("x = 1\n" * 40_000, "BAD CANDIDATE: too large"),
    (ORIGINAL, "BAD CANDIDATE: no change"),
])
def test_bad_candidates_fail_parse_with_a_clear_line(tmp_path, text, expected):
    gate = _gate(tmp_path)
    verdict = gate.verify(VerifyRequest("m.py", ORIGINAL), _candidate(text))
    assert not verdict.passed
    assert verdict.gates[0].gate == "parse"
    assert verdict.feedback[0].startswith(expected)


def test_wrong_language_candidate_fails_parse(tmp_path):
    gate = _gate(tmp_path, trusted=False)
    js = "function add(a, b) {\n  return a + b;\n}\n"
    verdict = gate.verify(VerifyRequest("m.py", ORIGINAL), _candidate(js))
    assert not verdict.passed
    assert verdict.feedback and all(SYNTAX_LINE.match(line) for line in verdict.feedback)


# --- safety -----------------------------------------------------------------------------------


def test_candidate_editing_tests_or_config_is_tampering(tmp_path):
    gate = _gate(tmp_path, trusted=False)
    test_text = "def test_x():\n    assert True\n"
    verdict = gate.verify(VerifyRequest("tests/test_m.py", "def test_x():\n    assert False\n"),
                          _candidate(test_text))
    assert not verdict.passed
    assert verdict.feedback == ["TAMPERING: candidate edits tests/config: tests/test_m.py"]
    extra = gate.verify(VerifyRequest("m.py", ORIGINAL, extra_files={"conftest.py": "x = 1\n"}),
                        _candidate(ORIGINAL.replace("a + b", "b + a")))
    assert extra.feedback == ["TAMPERING: candidate edits tests/config: conftest.py"]
    allowed = gate.verify(VerifyRequest("tests/test_m.py", "def test_x():\n    assert False\n",
                                        allow_protected_edits=True), _candidate(test_text))
    assert allowed.passed


# --- untrusted --------------------------------------------------------------------------------


def test_untrusted_workspace_spawns_nothing(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a subprocess was started in an untrusted workspace")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    monkeypatch.setattr(subprocess, "run", refuse)
    (tmp_path / "test_m.py").write_text("def test_add():\n    assert False\n")
    gate = Gate(Workspace(tmp_path, trusted=False),
                Config(verification=VerificationConfig(type_check=True, diff_review=True)),
                backend=lambda: pytest.fail("the model was asked in an untrusted workspace"))
    verdict = gate.verify(VerifyRequest("m.py", ORIGINAL, symbol="add", task="add numbers"),
                          _candidate(ORIGINAL.replace("a + b", "b + a")))
    assert verdict.passed
    by_gate = {g.gate: g for g in verdict.gates}
    assert by_gate["parse"].passed and not by_gate["parse"].skipped
    for name in ("lint", "type", "test", "review"):
        assert by_gate[name].skipped == "workspace not trusted"
    broken = gate.verify(VerifyRequest("m.py", ORIGINAL), _candidate("def add(:\n"))
    assert not broken.passed


# --- lint matching --------------------------------------------------------------------------


def test_only_introduced_lint_diagnostics_count():
    original = "import os\n\n\ndef f():\n    return 1\n"
    candidate = "import os\n\n\ndef f():\n    x = 2\n    return 1\n\n\ndef g():\n    return 2\n"
    before = [Diagnostic("F401", "`os` imported but unused", 1, 8)]
    after = [Diagnostic("F401", "`os` imported but unused", 1, 8),
             Diagnostic("F841", "Local variable `x` is assigned to but never used", 5, 5)]
    new = introduced(before, after, original, candidate)
    assert [d.code for d in new] == ["F841"]
    assert new[0].lint_line() == "LINT: F841 local variable 'x' is assigned to but never used (line 5)"
    # A pre-existing diagnostic that moved down because lines were inserted above it still matches.
    shifted_original = "def f():\n    return 1\n\nimport os\n"
    shifted = "def f():\n    y = 1\n    return y\n\nimport os\n"
    moved = introduced([Diagnostic("F401", "`os` imported but unused", 4, 8)],
                       [Diagnostic("F401", "`os` imported but unused", 5, 8)],
                       shifted_original, shifted)
    assert moved == []


def test_digest_ruff_formats_lines():
    output = ('[{"code": "F841", "message": "Local variable `result` is assigned to but never used",'
              ' "location": {"row": 12, "column": 5}}]')
    lines = digest_ruff(output)
    assert lines == ["LINT: F841 local variable 'result' is assigned to but never used (line 12)"]
    assert all(LINT_LINE.match(line) for line in lines)
    with pytest.raises(ValueError):
        digest_ruff("not json")


# --- pytest digestion -------------------------------------------------------------------------


JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="0"
failures="1" skipped="0" tests="2"><testcase classname="tests.test_ops" name="test_add" time="0.001"/>
<testcase classname="tests.test_ops" name="test_parse_input" time="0.001"><failure
message="AssertionError: expected 3, got None&#10;assert None == 3">def test_parse_input():
E   AssertionError: expected 3, got None</failure></testcase>
<testcase classname="tests.test_other" name="tests.test_other" time="0"><error message="collection failure">
E   ModuleNotFoundError: No module named 'nope'</error></testcase></testsuite></testsuites>"""


def test_digest_pytest_junit_and_terminal_output():
    outcome = digest_junit(JUNIT)
    assert outcome.passed == 1 and outcome.failed == 1
    assert outcome.failures == ["TEST FAIL: test_parse_input \u2014 AssertionError: expected 3, got None"]
    assert outcome.collection_errors == {
        "tests/test_other.py": "ModuleNotFoundError: No module named 'nope'"}
    lines = digest_pytest(JUNIT)
    assert lines[0] == "TEST FAIL: test_parse_input \u2014 AssertionError: expected 3, got None"
    terminal = ("F.\n=== short test summary info ===\n"
                "FAILED tests/test_ops.py::test_parse_input - AssertionError: expected 3, got None\n"
                "1 failed, 1 passed in 0.01s\n")
    assert digest_pytest(terminal) == [
        "TEST FAIL: test_parse_input \u2014 AssertionError: expected 3, got None"]
    assert all(TEST_LINE.match(line) for line in digest_pytest(terminal))


# --- ranking ----------------------------------------------------------------------------------


def _verdict(cid: int, *, parse=True, lint=True, test=True, changed=1) -> Verdict:
    return Verdict(cid, [GateResult("parse", parse),
                         GateResult("safety", True, details={"changed_lines": changed}),
                         GateResult("lint", lint), GateResult("test", test)])


def test_rank_orders_parse_then_lint_then_tests_then_shortest_diff():
    verdicts = [
        _verdict(1, parse=False),
        _verdict(2, lint=False, test=True),
        _verdict(3, lint=True, test=False),
        _verdict(4, changed=9),
        _verdict(5, changed=2),
        _verdict(6, changed=2),
    ]
    assert [v.candidate_id for v in rank(verdicts)] == [5, 6, 4, 3, 2, 1]


# --- review ------------------------------------------------------------------------------------


@dataclass
class ScriptedBackend:
    """Answers the review with a fixed word and records the call."""

    answer: str
    calls: list = None  # type: ignore[assignment]

    def complete(self, prompt, *, max_tokens=256, stop=(), temperature=0.0, seed=None,
                 grammar=None, cancel=None):
        self.calls = (self.calls or []) + [dict(prompt=prompt, grammar=grammar,
                                                max_tokens=max_tokens, temperature=temperature)]
        return Completion(self.answer)

    def count_tokens(self, text):
        return len(text) // 4 + 1


def test_diff_review_is_one_grammar_constrained_call(tmp_path, monkeypatch):
    from localcode_lsp.verify import gate as gate_module

    monkeypatch.setattr(gate_module.Gate, "_lint_gate",
                        lambda self, *a: GateResult("lint", True))
    monkeypatch.setattr(gate_module.Gate, "_test_gate",
                        lambda self, *a: GateResult("test", True))
    for answer, passed in (("yes", True), ("no", False)):
        backend = ScriptedBackend(answer)
        gate = _gate(tmp_path, review=True, backend=backend)
        verdict = gate.verify(VerifyRequest("m.py", ORIGINAL, task="subtract instead of add"),
                              _candidate(ORIGINAL.replace("a + b", "a - b")))
        assert verdict.passed is passed
        (call,) = backend.calls
        assert "root ::=" in call["grammar"] and call["max_tokens"] == 2
        assert "subtract instead of add" in call["prompt"] and "-    return a + b" in call["prompt"]
        if not passed:
            assert verdict.feedback[0].startswith("REVIEW: ")
