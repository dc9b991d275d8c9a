"""Shared pieces of the outcome benchmarks (HumanEval, bug fixing, a real repository).

Each benchmark writes one JSON report whose `rows` hold one entry per problem, and in it one
dict per arm with at least: passed, calls, seconds, edit_returned, edit_wrong. This module
holds what they share: the model options, the tune/report split, one chat turn (the backend's
own chat call, or ChatML rendered by hand where the backend has none yet), code-block
extraction, totals, the table, the plot, atomic JSON writes and a time budget per run.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import os
import re
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from localcode_lsp.config import Config
from localcode_lsp.inference.backend import ChatMessage, Completion

HALVES = ("all", "tune", "report")
QWEN_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """--model, --model-name, --half, --minutes: the options every outcome benchmark takes."""
    parser.add_argument("--model", default="", help="a GGUF file (wins over --model-name)")
    parser.add_argument("--model-name", default="",
                        help="a catalogue entry (`localcode models`), e.g. "
                             "qwen2.5-coder-1.5b-instruct")
    parser.add_argument("--half", choices=HALVES, default="all",
                        help="tune: the even-numbered problems (tune the harness on these); "
                             "report: the odd-numbered ones (report these); all: every problem")
    parser.add_argument("--minutes", type=float, default=0.0,
                        help="stop cleanly between problems after this many minutes "
                             "(0 = no limit); go on later with --resume")


def add_set_arguments(parser: argparse.ArgumentParser, arms: tuple[str, ...], data: Path,
                      out: Path) -> None:
    """The options of a benchmark over a fixed problem set run through the harness: which arms,
    how many problems, the harness's candidates and retries, resuming, the set, the report."""
    parser.add_argument("--arms", default=",".join(arms))
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--candidates", type=int, default=5)
    parser.add_argument("--retries", type=int, default=3)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--data", type=Path, default=data)
    parser.add_argument("--out", type=Path, default=out)
    parser.add_argument("--report-only", action="store_true")


def with_model(config: Config, path: str = "", name: str = "") -> Config:
    """`config` loading the model at `path` (absolute), or the catalogue entry `name`."""
    if path:
        resolved = Path(path).expanduser().resolve()
        if not resolved.is_file():
            raise SystemExit(f"--model: no such file: {resolved}")
        return dataclasses.replace(config, model=dataclasses.replace(config.model,
                                                                     path=str(resolved)))
    if name:
        return dataclasses.replace(config, model=dataclasses.replace(config.model, name=name,
                                                                     path=""))
    return config


def in_half(number: int, half: str) -> bool:
    """The fixed split: problem numbers that are even tune the harness, odd ones are reported."""
    if half not in HALVES:
        raise ValueError(f"half must be one of {', '.join(HALVES)}, not {half!r}")
    return half == "all" or (number % 2 == 0) == (half == "tune")


def render_chatml(messages: Sequence[ChatMessage], prefill: str = "") -> str:
    """Qwen's ChatML rendering of `messages` (its default system turn first when none is given),
    ending inside the assistant's turn after `prefill`."""
    turns = list(messages)
    if not turns or turns[0]["role"] != "system":
        turns.insert(0, {"role": "system", "content": QWEN_SYSTEM})
    text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in turns)
    return text + "<|im_start|>assistant\n" + prefill


def chat(backend: Any, messages: Sequence[ChatMessage], *, prefill: str = "",
         max_tokens: int = 512, temperature: float = 0.0, seed: int | None = None,
         stop: Sequence[str] = ()) -> Completion:
    """One assistant turn: the backend's own `chat` where it has one, else the turns rendered
    as ChatML and continued by `complete` (right for Qwen models only)."""
    if callable(getattr(backend, "chat", None)):
        return backend.chat(messages, prefill=prefill, max_tokens=max_tokens,
                            temperature=temperature, seed=seed, stop=stop)
    return backend.complete(render_chatml(messages, prefill), max_tokens=max_tokens,
                            temperature=temperature, seed=seed,
                            stop=(*stop, "<|im_end|>", "<|endoftext|>"))


_FENCE = re.compile(r"```[ \t]*([\w+-]*)[ \t]*\n(.*?)(?:\n[ \t]*```|\Z)", re.S)


def code_block(text: str, *, prefilled: bool = False) -> str:
    """The code of a model's answer: the first fenced block (with `prefilled`, the answer
    itself began inside an opened fence and runs up to its closing fence); the whole text
    when there is no fence."""
    if prefilled:
        end = re.search(r"^[ \t]*```", text, re.M)
        return text[: end.start()] if end else text
    match = _FENCE.search(text)
    return match.group(2).rstrip("\n") + "\n" if match else text


def sanitize(code: str) -> str:
    """The definitions of a chat answer's code, as EvalPlus's sanitizer keeps them: imports,
    functions, classes and top-level assignments; the model's own example calls, asserts and
    `if __name__ == "__main__":` blocks dropped (a wrong assert of its own must not fail a right
    function). Code that does not parse is returned as it is."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return code
    kept = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
            ast.Assign, ast.AnnAssign)
    lines = code.splitlines()
    parts = []
    for node in tree.body:
        if isinstance(node, kept):
            first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
            parts.append("\n".join(lines[first - 1:node.end_lineno]))
    return "\n\n".join(parts) + "\n" if parts else ""


def outcome(passed: bool, calls: int, seconds: float, *, returned: bool, **extra: Any) -> dict:
    """One arm's row: solved by the tests, model calls, wall seconds, whether an edit came back
    and whether that edit is wrong (returned but the tests reject it)."""
    return {"passed": bool(passed), "calls": int(calls), "seconds": round(seconds, 3),
            "edit_returned": bool(returned), "edit_wrong": bool(returned and not passed),
            **extra}


def totals(rows: Sequence[dict], arms: Sequence[str]) -> dict[str, dict]:
    """Per arm over the rows that ran it: problems, solved, model calls, wall seconds, median
    seconds per problem, calls per solved problem, edits returned and how many are wrong."""
    result = {}
    for arm in arms:
        present = [row[arm] for row in rows if arm in row]
        passed = sum(int(r["passed"]) for r in present)
        calls = sum(int(r["calls"]) for r in present)
        seconds = [float(r["seconds"]) for r in present]
        result[arm] = {
            "problems": len(present), "passed": passed, "model_calls": calls,
            "seconds": round(sum(seconds), 3),
            "median_seconds": round(statistics.median(seconds), 3) if seconds else 0.0,
            "calls_per_solved": round(calls / passed, 2) if passed else None,
            "edits": sum(int(r.get("edit_returned", False)) for r in present),
            "wrong_edits": sum(int(r.get("edit_wrong", False)) for r in present)}
    return result


def table(title: str, arm_totals: dict[str, dict]) -> str:
    """A plain-text table of `totals`."""
    lines = [title, f"{'arm':<22} {'solved':>11} {'rate':>6} {'calls':>6} {'calls/solved':>12} "
                    f"{'median s':>8} {'total s':>8} {'edits':>5} {'wrong':>5}"]
    for arm, t in arm_totals.items():
        rate = t["passed"] / t["problems"] if t["problems"] else 0.0
        per_solved = f"{t['calls_per_solved']:.1f}" if t["calls_per_solved"] else "-"
        lines.append(f"{arm:<22} {t['passed']:>5}/{t['problems']:<5} {rate:>6.1%} "
                     f"{t['model_calls']:>6} {per_solved:>12} {t['median_seconds']:>8.1f} "
                     f"{t['seconds']:>8.0f} {t['edits']:>5} {t['wrong_edits']:>5}")
    return "\n".join(lines)


def plot(title: str, arm_totals: dict[str, dict], path: Path) -> None:
    """Bars per arm: solved (of the problems it ran), model calls, median seconds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = list(arm_totals)
    colors = ["#888", "#a72", "#27a", "#2a7", "#7a2", "#a27", "#555"]
    colors = (colors * (1 + len(arms) // len(colors)))[: len(arms)]
    panels = [("passed", "solved"), ("wrong_edits", "wrong edits returned"),
              ("model_calls", "model calls"), ("median_seconds", "median s per problem")]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4.5))
    for axis, (key, label) in zip(axes, panels, strict=True):
        values = [arm_totals[arm][key] for arm in arms]
        bars = axis.bar(arms, values, color=colors)
        if key == "passed":
            labels = [f"{v}/{arm_totals[a]['problems']}" for v, a in zip(values, arms, strict=True)]
        else:
            labels = [f"{v:.3g}" for v in values]
        axis.bar_label(bars, labels=labels)
        axis.set_ylim(0, max(1, max(values, default=1)) * 1.18)
        axis.set_title(label)
        axis.tick_params(axis="x", rotation=30, labelsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def show(name: str, report: dict, out: Path) -> None:
    """Print `report`'s table and draw its plot beside `out` (same name, .png), titled
    "`name`, <model>, half <half>"."""
    title = f"{name}, {report['model']}, half {report['half']}"
    print(table(title, report["totals"]))
    plot(title, report["totals"], out.with_suffix(".png"))


def show_saved(name: str, out: Path) -> None:
    """--report-only: the report saved at `out` shown as `show` does, its totals recounted from
    its rows first (the file itself is left as it is)."""
    report = json.loads(out.read_text())
    report["totals"] = totals(report["rows"], tuple(report["totals"]))
    show(name, report, out)


def save_json(path: Path, report: dict) -> None:
    """Write `report` atomically: a run killed mid-write leaves the previous file whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(report, indent=1, default=str))
    tmp.replace(path)


def load_rows(path: Path, resume: bool) -> list[dict]:
    """The rows already in `path` when resuming, else none."""
    if resume and path.exists():
        return list(json.loads(path.read_text()).get("rows", []))
    return []


@dataclasses.dataclass
class Budget:
    """A run's time limit in minutes (0 = none), checked between problems."""

    minutes: float = 0.0
    started: float = dataclasses.field(default_factory=time.monotonic)

    def spent(self) -> bool:
        return self.minutes > 0 and time.monotonic() - self.started > self.minutes * 60


def report(meta: dict, rows: list[dict], arms: Sequence[str]) -> dict:
    """The JSON report: the run's settings, the totals per arm and the rows."""
    return {**meta, "problems": len(rows), "totals": totals(rows, arms), "rows": rows}


def run_problems(problems: Sequence[dict], arms: Sequence[str],
                 run_arm: Callable[[dict, str], dict], out: Path, meta: dict, *,
                 resume: bool = False, minutes: float = 0.0) -> dict:
    """Run every arm on every problem (keyed by "task_id"), saving the report after each
    problem; with `resume` the rows already in `out` are kept and their problems skipped;
    with `minutes` the run stops cleanly between problems once that time is spent."""
    rows = load_rows(out, resume)
    if rows:
        print(f"resuming after {len(rows)} problems", flush=True)
    done = {row["task_id"] for row in rows}
    budget = Budget(minutes)
    ran = 0
    for problem in problems:
        if problem["task_id"] in done:
            continue
        if ran and budget.spent():  # between problems: each invocation runs at least one
            print(f"--minutes {minutes:g} spent: stopping; go on with --resume", flush=True)
            break
        row: dict = {"task_id": problem["task_id"]}
        for arm in arms:
            row[arm] = run_arm(problem, arm)
        rows.append(row)
        ran += 1
        marks = " ".join(f"{arm}={'✓' if row[arm]['passed'] else '✗'}"
                         f"({row[arm]['calls']}c {row[arm]['seconds']:.0f}s)" for arm in arms)
        print(f"[{len(rows)}/{len(problems)}] {problem['task_id']}: {marks}", flush=True)
        save_json(out, report(meta, rows, arms))
    result = report(meta, rows, arms)
    save_json(out, result)
    return result
