"""Put the arms of separate bench.humaneval runs side by side, on the problems they share.

    python -m bench.humaneval.merge RAW.json LOCALCODE.json [PASSK.json ...] --out BOTH.json
    python -m bench.humaneval.merge RAW.json OLD.json NEW.json+agree --out ALL.json

The arms of one model are often run one at a time (two llama.cpp processes on two cores slow
each other down), each into its own file; this keeps the problems every run has, takes each
arm from the run that has it (an arm in two runs is an error: say which one to keep by
leaving the other out, or rename the arms of one run: `RUN.json+SUFFIX` names them
`ARM_SUFFIX`, e.g. two versions of the harness side by side), recounts the totals and writes one report that `--report-only` prints
and plots like any other run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .. import outcome
from .__main__ import arm_totals, save_and_show


def with_suffix(report: dict, suffix: str) -> dict:
    """The run with each arm renamed ARM_SUFFIX (in its totals and rows)."""
    def renamed(arm: str) -> str:
        return f"{arm}_{suffix}"

    rows = [{(key if key == "task_id" else renamed(key)): value for key, value in row.items()}
            for row in report["rows"]]
    return {**report, "rows": rows,
            "totals": {renamed(arm): t for arm, t in report.get("totals", {}).items()}}


def merge(reports: list[dict], names: list[str]) -> dict:
    """One report with every arm of `reports` on the problems all of them have."""
    if len({r.get("model") for r in reports}) > 1:
        models = ", ".join(f"{n}: {r.get('model')}" for n, r in zip(names, reports, strict=True))
        raise SystemExit(f"the runs are of different models ({models})")
    arms: dict[str, str] = {}
    for name, report in zip(names, reports, strict=True):
        for arm in report.get("totals", {}):
            if arm in arms:
                raise SystemExit(f"arm {arm} is in both {arms[arm]} and {name}: leave one out")
            arms[arm] = name
    by_task = [{row["task_id"]: row for row in report["rows"]} for report in reports]
    common = [task for task in by_task[0] if all(task in rows for rows in by_task[1:])]
    rows = []
    for task in common:
        row: dict = {"task_id": task}
        for rows_of_run in by_task:
            row.update({arm: value for arm, value in rows_of_run[task].items()
                        if arm != "task_id" and arm in arms})
        rows.append(row)
    first = reports[0]
    config = next((r["config"] for r in reports if any(a.startswith("harness") for a in
                                                       r.get("totals", {}))), first["config"])
    knowledge = next((r.get("knowledge") for r in reports if r.get("knowledge")), "on")
    merged_arms = tuple(arms)
    return {"problems": len(rows), "model": first.get("model"), "half": first.get("half"),
            "totals": arm_totals(rows, merged_arms),
            "outcome": outcome.totals(rows, merged_arms), "rows": rows, "config": config,
            "knowledge": knowledge, "merged_from": names}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.humaneval.merge")
    parser.add_argument("runs", nargs="+",
                        help="saved runs; RUN.json+SUFFIX renames that run's arms ARM_SUFFIX")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    reports = []
    for name in args.runs:
        path, suffix = Path(name), ""
        if not path.exists() and "+" in name:
            head, _, suffix = name.rpartition("+")
            path = Path(head)
        try:
            report = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            parser.error(f"{path}: expected a saved bench.humaneval run ({exc})")
        reports.append(with_suffix(report, suffix) if suffix else report)
    report = merge(reports, list(args.runs))
    if not report["rows"]:
        parser.error("the runs have no problem in common")
    save_and_show(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
