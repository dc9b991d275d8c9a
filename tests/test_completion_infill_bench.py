"""The infilling benchmark's task choice and report (no model, no test execution)."""

from __future__ import annotations

from bench.bench_infill import all_tasks, eligible_lines, summarize, tasks_of

PROBLEM = {
    "task_id": "HumanEval/4",
    "prompt": 'def f(xs):\n    """Sum.\n    >>> f([1])\n    1\n    """\n',
    "canonical_solution": ('    # running total\n    total = 0\n\n    """not a docstring line to mask\n'
                           '    either"""\n    for x in xs:\n        total += x\n    return total\n'),
    "entry_point": "f",
}


def test_only_solution_code_lines_are_masked() -> None:
    lines = (PROBLEM["prompt"] + PROBLEM["canonical_solution"]).split("\n")
    chosen = [lines[n].strip() for n in eligible_lines(PROBLEM)]
    assert chosen == ["total = 0", "for x in xs:", "total += x", "return total"]


def test_tasks_are_deterministic_and_keep_the_indentation_at_the_cursor() -> None:
    first, second = tasks_of(PROBLEM), tasks_of(PROBLEM)
    assert first == second and len(first) == 2
    for task in first:
        document = PROBLEM["prompt"] + PROBLEM["canonical_solution"]
        line = document.split("\n")[task["line"]]
        assert task["original"] == line.strip()
        # the masked line keeps its indentation and the cursor sits after it
        assert task["prefix"].endswith("\n" + line[: task["column"]])
        assert task["prefix"] + line.strip() + task["suffix"] == document


def test_halves_split_by_problem_number() -> None:
    odd = dict(PROBLEM, task_id="HumanEval/5")
    assert {t["problem"] for t in all_tasks([PROBLEM, odd], "even")} == {4}
    assert {t["problem"] for t in all_tasks([PROBLEM, odd], "odd")} == {5}
    assert len(all_tasks([PROBLEM, odd], "all")) == 4


def test_summary_compares_arms_on_the_tasks_both_ran() -> None:
    def outcome(passed: bool, text: str = "x", **extra) -> dict:
        return {"passed": passed, "exact": passed, "ms": 100.0, "text": text, **extra}

    report = {"rows": {
        "4/1": {"problem": 4, "empty_passes": False, "raw": outcome(True),
                "localcode": outcome(True, verify_ms=1.0)},
        "4/2": {"problem": 4, "empty_passes": True, "raw": outcome(False),
                "localcode": outcome(False, "", dropped="verification: undefined name y",
                                     verify_ms=2.0, verify_reason="undefined name y",
                                     generated_passed=False)},
        "5/1": {"problem": 5, "empty_passes": False, "raw": outcome(True)},  # not run by both
    }}
    summary = summarize(report)
    assert summary["all"]["tasks"] == 2
    assert summary["even"]["raw"]["passed"] == 1
    assert summary["even"]["localcode"]["verification_dropped"] == 1
    assert summary["even"]["localcode"]["empty"] == 1
    assert summary["even"]["empty_line_passes"] == 1
    assert "odd" not in summary
