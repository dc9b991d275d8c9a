"""What each part of the harness earned on a finished HumanEval run, read from its logs.

    python -m bench.humaneval.ablation bench/results/humaneval-1.5b-localcode.json [--json OUT]

A run of the harness_hidden arm logs every candidate it verified: its attempt, which gates
passed, and whether the hidden tests (never shown to the harness) pass it. From that log this
counts, per component, what it won and what it cost, without running the model again:

- first draw: problems the first candidate solved (what a single greedy answer would give);
- more candidates: problems solved by a later candidate of the first attempt;
- feedback retries: problems solved on attempt 1 or later, and the calls the retries spent;
- visible checks (docstring examples): candidates they rightly rejected, correct ones they
  rejected, wrong ones they let through;
- diff review: the same three counts for the review;
- agreement: problems where the vote accepted another candidate than the first that passed the
  gates, and whether that turned a wrong edit right (won) or a right one wrong (harmed);
- knowledge store: few-shot examples and docs served, repairs tried and passed.

A count here is an upper or lower bound, not a rerun: "solved by the first draw" is what the
harness would keep without the component; it cannot say what a run without it would have drawn
instead. The table says so in its notes.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ARM = "harness_hidden"


def gate_marks(summary: str) -> dict[str, str]:
    """'parse ✓, tests ✗, review -' -> {'parse': '✓', 'tests': '✗', 'review': '-'}."""
    marks = {}
    for part in summary.split(","):
        name, _, mark = part.strip().rpartition(" ")
        if name:
            marks[name] = mark
    return marks


def prompt_kind(purpose: str) -> str:
    """'body of f from the file alone (attempt 0)' -> 'body from the file alone'; "" for a log
    written before candidates named their prompt."""
    kind = re.sub(r" \(attempt \d+\)$", "", purpose)
    return re.sub(r"^(\w+) of \S+", r"\1", kind)


def analyse(rows: list[dict]) -> dict:
    """Per component: what it won and what it cost on these rows (see the module doc)."""
    counts = {
        "problems": 0, "solved": 0, "calls": 0, "calls_on_unsolved": 0,
        "first_candidate": 0, "later_candidate_first_attempt": 0, "retry": 0,
        "retry_calls": 0, "repair": 0,
        "checks_rejected_wrong": 0, "checks_rejected_right": 0, "checks_passed_wrong": 0,
        "review_rejected_wrong": 0, "review_rejected_right": 0, "review_passed_wrong": 0,
        "few_shot_served": 0, "docs_served": 0, "knowledge_repairs": 0,
        "lost": 0, "wrong_edits": 0,
        "won_by_prompt": {},  # first-attempt winners, by the prompt that drew them
        # agreement: the accepted candidate is not the first that passed the gates
        "agreement_switched": 0, "agreement_won": 0, "agreement_harmed": 0,
    }
    for row in rows:
        run = row.get(ARM)
        if not run:
            continue
        counts["problems"] += 1
        counts["calls"] += run["calls"]
        counts["lost"] += int(run.get("candidate_solved", False) and not run["passed"])
        counts["wrong_edits"] += int(run.get("edit_wrong", False))
        knowledge = run.get("knowledge") or {}
        session = knowledge.get("session") or {}
        counts["few_shot_served"] += int(session.get("few_shot_served", 0) or 0)
        counts["docs_served"] += int(session.get("docs_served", 0) or 0)
        counts["knowledge_repairs"] += int(knowledge.get("repairs", 0) or 0)
        verified = [v for v in run.get("verdicts", []) if v.get("gates") != "not verified"]
        for verdict in verified:
            marks = gate_marks(verdict["gates"])
            right = bool(verdict.get("hidden_tests"))
            if marks.get("tests") == "✗":
                counts["checks_rejected_right" if right else "checks_rejected_wrong"] += 1
            elif marks.get("tests") == "✓" and not right:
                counts["checks_passed_wrong"] += 1
            if marks.get("review") == "✗":
                counts["review_rejected_right" if right else "review_rejected_wrong"] += 1
            elif marks.get("review") == "✓" and not right:
                counts["review_passed_wrong"] += 1
        first_pass = next((v for v in verified if v.get("passed")), None)
        accepted = next((v for v in verified if v["id"] == run.get("accepted")), None)
        if first_pass is not None and accepted is not None and accepted is not first_pass:
            counts["agreement_switched"] += 1
            right_before, right_after = bool(first_pass.get("hidden_tests")), bool(
                accepted.get("hidden_tests"))
            counts["agreement_won"] += int(right_after and not right_before)
            counts["agreement_harmed"] += int(right_before and not right_after)
        if not run["passed"]:
            counts["calls_on_unsolved"] += run["calls"]
            continue
        counts["solved"] += 1
        winner = accepted or first_pass
        if winner is None:
            continue
        if winner.get("source") == "repair":
            counts["repair"] += 1
        elif winner.get("attempt", 0) > 0:
            counts["retry"] += 1
        else:
            counts["first_candidate" if winner is verified[0]
                   else "later_candidate_first_attempt"] += 1
            if winner.get("prompt"):
                kind = prompt_kind(winner["prompt"])
                counts["won_by_prompt"][kind] = counts["won_by_prompt"].get(kind, 0) + 1
    return counts


def table(counts: dict, title: str) -> str:
    n = counts["problems"] or 1
    lines = [f"{title}: {counts['problems']} problems, {counts['solved']} solved "
             f"({100 * counts['solved'] / n:.1f}%), {counts['calls']} model calls "
             f"({counts['calls_on_unsolved']} on unsolved problems)",
             f"{'component':34} {'won':>5} {'harmed':>7} {'note'}"]

    def line(name: str, won: int, harmed: int | str, note: str) -> None:
        lines.append(f"{name:34} {won:>5} {harmed!s:>7} {note}")

    line("first draw (greedy answer)", counts["first_candidate"], "-",
         "solved by the first candidate verified")
    line("more candidates, first attempt", counts["later_candidate_first_attempt"], "-",
         "solved by a later draw of attempt 0")
    for kind, won in sorted(counts["won_by_prompt"].items(), key=lambda item: -item[1]):
        line(f"  drawn by: {kind}"[:34], won, "-", "first-attempt problems its candidate solved")
    line("feedback retries", counts["retry"], "-",
         f"solved on a retry; calls on unsolved problems {counts['calls_on_unsolved']}")
    line("error->fix repair (knowledge)", counts["repair"], "-",
         f"{counts['knowledge_repairs']} repairs tried")
    line("visible checks (docstring)", counts["checks_rejected_wrong"],
         counts["checks_rejected_right"],
         f"won: wrong candidates rejected; harmed: correct ones rejected "
         f"({counts['lost']} problems lost so); {counts['checks_passed_wrong']} wrong passed")
    line("diff review", counts["review_rejected_wrong"], counts["review_rejected_right"],
         f"{counts['review_passed_wrong']} wrong ones approved")
    line("agreement (vote on probe inputs)", counts["agreement_won"], counts["agreement_harmed"],
         f"accepted another than the first pass on {counts['agreement_switched']} problems")
    line("few-shot / docs served", counts["few_shot_served"], "-",
         f"docs {counts['docs_served']} (HumanEval files have no neighbours to draw on)")
    lines.append(f"edits returned that the hidden tests reject: {counts['wrong_edits']}")
    lines.append("counts are read from the run's log, not from reruns without the component")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.humaneval.ablation")
    parser.add_argument("runs", nargs="+", type=Path,
                        help="saved bench.humaneval runs with the harness_hidden arm")
    parser.add_argument("--json", type=Path, default=None, help="write the counts here too")
    args = parser.parse_args(argv)
    out = {}
    for path in args.runs:
        try:
            report = json.loads(path.read_text())
            rows = report["rows"]
        except (OSError, ValueError, KeyError) as exc:
            parser.error(f"{path}: expected a saved bench.humaneval run ({exc})")
        counts = analyse(rows)
        if not counts["problems"]:
            parser.error(f"{path}: no {ARM} rows in it")
        out[str(path)] = counts
        print(table(counts, f"{path.name} ({report.get('model', '?')}, half "
                            f"{report.get('half', '?')})"))
        print()
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
