"""The gate with real ruff and pytest on fixture projects (tests/fixtures/verify_*)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import psutil
import pytest

from localcode_lsp.config import Config, VerificationConfig
from localcode_lsp.data import Candidate
from localcode_lsp.verify import Gate, VerifyRequest
from localcode_lsp.workspace import Workspace

TEST_LINE = re.compile(r"^TEST FAIL: \S.* \u2014 .+$")
TARGET = "calc/ops.py"


def _gate(root: Path, **verification) -> Gate:
    settings = {"diff_review": False, **verification}
    return Gate(Workspace(root), Config(verification=VerificationConfig(**settings)))


def _with_body(original: str, body: str) -> Candidate:
    text = original.replace("    return None\n", body)
    assert text != original
    return Candidate(1, body, text)


@pytest.fixture
def calc(copy_fixture) -> Path:
    return copy_fixture("verify_calc")


def _request(root: Path, **fields) -> VerifyRequest:
    fields.setdefault("symbol", "parse_input")
    return VerifyRequest(TARGET, (root / TARGET).read_text(), task="count the integers", **fields)


def test_passing_candidate_clears_every_gate(calc):
    request = _request(calc)
    body = "    return len([part for part in text.split(',') if part.strip()])\n"
    verdict = _gate(calc).verify(request, _with_body(request.original_text, body))
    assert verdict.passed, verdict.feedback
    assert [g.gate for g in verdict.gates] == ["parse", "safety", "lint", "test"]
    test_gate = verdict.gates[-1]
    assert not test_gate.skipped and test_gate.details["passed"] == 1  # -k parse_input selected one


def test_failing_test_is_digested_to_one_line(calc):
    request = _request(calc)
    verdict = _gate(calc).verify(request, _with_body(request.original_text, "    return 4\n"))
    assert not verdict.passed
    assert verdict.feedback == ["TEST FAIL: test_parse_input \u2014 AssertionError: expected 3, got 4"]
    assert all(TEST_LINE.match(line) for line in verdict.feedback)


def test_syntax_error_stops_before_any_tool(calc):
    request = _request(calc)
    verdict = _gate(calc).verify(request, _with_body(request.original_text, "    return (1\n"))
    assert [g.gate for g in verdict.gates] == ["parse", "safety"]
    assert verdict.feedback[0].startswith("SYNTAX ERROR at line 19: '(' was never closed")


def test_new_lint_error_fails_but_preexisting_one_does_not(calc):
    request = _request(calc)  # ops.py already imports os without using it (F401)
    dirty = _with_body(request.original_text,
                       "    result = 1\n    return len([p for p in text.split(',') if p])\n")
    verdict = _gate(calc, test=False).verify(request, dirty)
    assert not verdict.passed
    assert verdict.feedback == [
        "LINT: F841 local variable 'result' is assigned to but never used (line 19)"]
    lint = verdict.gates[2]
    assert lint.details["original"] == 1 and lint.details["new"] == 1


def test_doctest_in_docstring_runs(calc):
    original = (calc / TARGET).read_text()
    request = VerifyRequest(TARGET, original, symbol="add", task="add")
    gate = _gate(calc)
    broken = original.replace("    return a + b\n", "    return a + b + (a == 2)\n")
    verdict = gate.verify(request, Candidate(2, "x", broken))
    assert verdict.feedback == ["TEST FAIL: doctest add \u2014 add(2, 3) expected 5, got 6"]


def test_doctest_alone_counts_as_tests(tmp_path):
    source = 'def double(x):\n    """Twice x.\n\n    >>> double(4)\n    8\n    """\n    return x\n'
    (tmp_path / "mathy.py").write_text(source)
    request = VerifyRequest("mathy.py", source, symbol="double")
    gate = _gate(tmp_path, lint=False)
    fixed = gate.verify(request, Candidate(1, "x", source.replace("return x", "return 2 * x")))
    assert fixed.passed and fixed.gates[-1].details["doctest"] is True
    wrong = gate.verify(request, Candidate(2, "x", source.replace("return x", "return x + 1")))
    assert wrong.feedback == ["TEST FAIL: doctest double \u2014 double(4) expected 8, got 5"]


def test_project_without_tests_says_so(tmp_path):
    source = "def f(x):\n    return x\n"
    (tmp_path / "lonely.py").write_text(source)
    verdict = _gate(tmp_path, lint=False).verify(
        VerifyRequest("lonely.py", source, symbol="f"), Candidate(1, "x", source.replace("x\n", "x + 1\n")))
    assert verdict.passed
    assert verdict.gates[-1].skipped == "no tests found for f"


def test_broken_suite_is_reported_as_such_not_as_the_candidates_failure(copy_fixture):
    root = copy_fixture("verify_broken")
    original = (root / TARGET).read_text()
    request = VerifyRequest(TARGET, original, symbol="add")
    candidate = Candidate(1, "x", original.replace("    return a + b\n", "    return b + a\n"))
    verdict = _gate(root).verify(request, candidate)
    test_gate = verdict.gates[-1]
    assert verdict.passed, verdict.feedback
    assert test_gate.skipped.startswith("broken test suite: tests/test_ops.py: ModuleNotFoundError")
    # A candidate that breaks the import of the module under test is its own failure.
    renamed = original.replace("def add(a, b):", "def plus(a, b):").replace(">>> add", ">>> plus")
    own = _gate(copy_fixture("verify_calc")).verify(
        VerifyRequest(TARGET, original, symbol="add"), Candidate(2, "x", renamed))
    assert any("(collection)" in line and "ImportError" in line for line in own.feedback), own.feedback


def test_test_refs_from_the_index_are_used_as_given(calc):
    request = _request(calc, test_refs=("tests/test_ops.py::test_add",))
    verdict = _gate(calc).verify(request, _with_body(request.original_text, "    return 4\n"))
    assert verdict.passed  # test_parse_input was not selected
    assert verdict.gates[-1].details["refs"] == ["tests/test_ops.py::test_add"]


def _marked_processes(token: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if token in " ".join(process.info["cmdline"] or []):
            found.append(process)
    return found


@pytest.mark.parametrize("isolation", ["auto", "plain"])
def test_hanging_double_forking_test_is_killed_at_timeout(calc, isolation):
    from localcode_lsp.verify import Sandbox

    token = f"lc-orphan-{uuid.uuid4().hex}"
    (calc / "tests" / "test_hang.py").write_text(f'''
import os, sys, time
from calc.ops import parse_input


def test_parse_input_hangs():
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(600)", "{token}"])
        os._exit(0)
    time.sleep(600)
''')
    gate = _gate(calc, lint=False, test_timeout=3.0, allow_unisolated=isolation == "plain")
    if isolation == "plain":
        gate.sandbox = Sandbox(isolation="plain")
    request = _request(calc, test_refs=("tests/test_hang.py",))
    verdict = gate.verify(request, _with_body(request.original_text, "    return 3\n"))
    assert verdict.feedback == [
        "TEST FAIL: tests \u2014 timed out after 3s (process tree killed)"]
    assert verdict.gates[-1].seconds < 15
    assert _marked_processes(token) == []


def test_tests_cannot_write_outside_the_copy_or_reach_the_network(calc):
    gate = _gate(calc)
    isolated = gate.sandbox.mode != "plain"
    (calc / ".git").mkdir()
    real_home = Path.home()
    token = uuid.uuid4().hex
    outside = {
        "project": calc / f"escaped-{token}.txt",
        "git": calc / ".git" / f"escaped-{token}",
        "home": real_home / f"escaped-{token}.txt",
    }
    (calc / "tests" / "test_escape.py").write_text(f'''
import errno, os, socket
from pathlib import Path
from calc.ops import parse_input


def test_parse_input_escape():
    for target in {[str(p) for p in outside.values()]!r}:
        try:
            Path(target).write_text("escaped")
        except OSError:
            pass
    (Path.home() / "escaped-{token}.txt").write_text("inside the sandbox home")
    assert parse_input("1,2,3") == 3


def test_parse_input_network():
    if not {isolated!r}:
        return
    with socket.socket() as sock:
        sock.settimeout(2)
        try:
            sock.connect(("10.255.255.1", 9))
        except OSError as exc:
            assert exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EPERM), exc
        else:
            raise AssertionError("connected to the outside")
''')
    request = _request(calc, test_refs=("tests/test_escape.py",))
    verdict = gate.verify(request, _with_body(request.original_text,
                                              "    return len(text.split(','))\n"))
    try:
        assert verdict.passed, verdict.feedback
        assert not outside["home"].exists()  # HOME points into the throwaway dir in every mode
        if isolated:
            assert not outside["project"].exists()
            assert not outside["git"].exists()
            assert "network isolation: full" in gate.isolation_description()
        else:
            assert "network isolation: none" in gate.isolation_description()
    finally:
        for path in outside.values():
            path.unlink(missing_ok=True)


def test_verify_all_stops_at_the_first_passing_candidate(calc):
    request = _request(calc)
    original = request.original_text
    candidates = [
        Candidate(1, "x", original.replace("    return None\n", "    return (\n")),
        Candidate(2, "x", original.replace("    return None\n", "    return 4\n")),
        Candidate(3, "x", original.replace("    return None\n", "    return len(text.split(','))\n")),
        Candidate(4, "x", original.replace("    return None\n", "    return 3\n")),
    ]
    verdicts = _gate(calc, lint=False).verify_all(request, candidates)
    assert [v.candidate_id for v in verdicts] == [1, 2, 3]
    assert [v.passed for v in verdicts] == [False, False, True]


def test_type_check_counts_only_errors_the_candidate_introduced(tmp_path):
    """Real mypy: a pre-existing type error is ignored, a new one fails with a TYPE line."""
    root = tmp_path / "typed"
    root.mkdir()
    original = (
        "def length(text: str) -> int:\n"
        "    return None\n"
        "\n\n"
        "def legacy() -> int:\n"
        "    return 'already wrong'\n"
    )
    (root / "typed.py").write_text(original)
    gate = _gate(root, type_check=True, lint=False, test=False)
    request = VerifyRequest("typed.py", original, symbol="length", task="return the length")
    good = original.replace("    return None\n", "    return len(text)\n", 1)
    verdict = gate.verify(request, Candidate(1, "    return len(text)\n", good))
    assert verdict.passed, verdict.feedback
    type_gate = next(g for g in verdict.gates if g.gate == "type")
    assert not type_gate.skipped and type_gate.details["checker"] == "mypy"
    bad = original.replace("    return None\n", "    return text.upper()\n", 1)
    verdict = gate.verify(request, Candidate(2, "    return text.upper()\n", bad))
    assert not verdict.passed
    assert verdict.feedback and all(line.startswith("TYPE ERROR at line 2:")
                                    for line in verdict.feedback), verdict.feedback


REMOVE_VOWELS = '''def remove_vowels(text):
    """Text without its vowels.
    >>> remove_vowels('')
    ''
    >>> remove_vowels("abcdef\\nghijklm")
    'bcdf\\nghjklm'
    >>> remove_vowels('aaBAA')
    'B'
    """
    return text
'''


def test_doctest_with_escaped_line_breaks_still_checks_the_candidate(tmp_path):
    # The docstring is not raw, so its `\n` escapes are real line breaks: doctest alone rejects
    # the whole docstring, and a wrong body used to pass with no example run.
    (tmp_path / "vowels.py").write_text(REMOVE_VOWELS)
    request = VerifyRequest("vowels.py", REMOVE_VOWELS, symbol="remove_vowels")
    gate = _gate(tmp_path, lint=False)
    only_a = REMOVE_VOWELS.replace("    return text\n", "    return text.replace('a', '')\n")
    wrong = gate.verify(request, Candidate(1, "x", only_a))
    assert not wrong.passed
    assert wrong.feedback == [
        "TEST FAIL: doctest remove_vowels \u2014 remove_vowels(\"abcdef\\nghijklm\") expected "
        "'bcdf\\nghjklm', got 'bcdef\\nghijklm'",
        "TEST FAIL: doctest remove_vowels \u2014 remove_vowels('aaBAA') expected 'B', got 'BAA'"]
    right = REMOVE_VOWELS.replace(
        "    return text\n", "    return ''.join(c for c in text if c.lower() not in 'aeiou')\n")
    verdict = gate.verify(request, Candidate(2, "x", right))
    assert verdict.passed, verdict.feedback
    assert verdict.gates[-1].details["passed"] == 3


def test_a_malformed_doctest_is_left_out_and_the_others_run(tmp_path):
    source = ('def double(x):\n    """Twice x.\n\n    >>> double(4)\n    8\n'
              '    >>> double(\n2)\n    4\n    >>> double(0)\n    0\n    """\n    return x\n')
    (tmp_path / "mathy.py").write_text(source)
    request = VerifyRequest("mathy.py", source, symbol="double")
    gate = _gate(tmp_path, lint=False)
    wrong = gate.verify(request, Candidate(1, "x", source.replace("return x", "return x + 1")))
    assert wrong.feedback == ["TEST FAIL: doctest double \u2014 double(4) expected 8, got 5",
                              "TEST FAIL: doctest double \u2014 double(0) expected 0, got 1"]
    fixed = gate.verify(request, Candidate(2, "x", source.replace("return x", "return 2 * x")))
    assert fixed.passed, fixed.feedback
    test_gate = fixed.gates[-1]
    assert test_gate.details["passed"] == 2 and not test_gate.skipped
    assert test_gate.details["unparsed"] == [
        ">>> double( (inconsistent leading whitespace: '2)')"]


def test_a_docstring_whose_only_example_cannot_run_is_not_called_tested(tmp_path):
    source = ('def double(x):\n    """Twice x.\n\n    >>> double(4 +)\n    8\n    """\n'
              '    return x\n')
    (tmp_path / "mathy.py").write_text(source)
    request = VerifyRequest("mathy.py", source, symbol="double")
    verdict = _gate(tmp_path, lint=False).verify(
        request, Candidate(1, "x", source.replace("return x", "return x + 1")))
    assert verdict.passed
    test_gate = verdict.gates[-1]
    assert test_gate.skipped.startswith("no docstring example of double could be run: "
                                        ">>> double(4 +) (SyntaxError: invalid syntax")


def test_doctests_pass_as_their_author_meant_them(tmp_path):
    # `>>> f(x) == y` with no output line, and a value spelled with other quotes: plain doctest
    # rejects every correct body for these (HumanEval/65, 108 and 113 among others).
    source = ('def shout(word):\n    """The word in capitals.\n\n'
              '    >>> shout("ab") == "AB"\n    >>> shout("c")\n    "C"\n'
              '    >>> [shout("d")]\n    ["D"]\n    """\n    return word\n')
    (tmp_path / "loud.py").write_text(source)
    request = VerifyRequest("loud.py", source, symbol="shout")
    gate = _gate(tmp_path, lint=False)
    right = gate.verify(request, Candidate(1, "x", source.replace("return word",
                                                                  "return word.upper()")))
    assert right.passed, right.feedback
    assert right.gates[-1].details["passed"] == 3
    wrong = gate.verify(request, Candidate(2, "x", source.replace("return word",
                                                                  "return word.title()")))
    assert wrong.feedback == [
        "TEST FAIL: doctest shout \u2014 shout(\"ab\") == \"AB\" expected True, got False "
        "(shout('ab') is 'Ab')"]
