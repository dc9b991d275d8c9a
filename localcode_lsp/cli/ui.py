"""Terminal rendering for the session: stage lines, coloured diffs, status lines, index progress.

Everything that comes from the model or the project is printed as plain `Text`, never as rich
markup, so `[LOCATE]` or a `[bold]` inside code is shown as written.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from rich.console import Console
from rich.text import Text

from ..data import Patch, Result, TraceEvent

PREFIX = "localcode: "
PREFIX_STYLE = "bold cyan"


def make_console(*, color: bool | None = None) -> Console:
    """A console for the session; colour follows the terminal unless forced."""
    if color is None:
        return Console(highlight=False, soft_wrap=True)
    return Console(highlight=False, soft_wrap=True, force_terminal=color, no_color=not color)


def say(console: Console, message: str, style: str = "") -> None:
    """One `localcode: ...` line."""
    line = Text(PREFIX, style=PREFIX_STYLE)
    line.append(message, style=style)
    console.print(line)


def stage_line(console: Console, event: TraceEvent) -> None:
    """`localcode: [LOCATE] Found parse_config at src/config.py:34-58`."""
    line = Text(PREFIX, style=PREFIX_STYLE)
    line.append(f"[{event.state}]", style=_state_style(event.state))
    line.append(f" {event.message}")
    console.print(line)


def _state_style(state: str) -> str:
    return {"VERIFY": "bold green", "CANCELLED": "bold yellow", "ERROR": "bold red",
            "FAILED": "bold red"}.get(state.upper(), "bold magenta")


def diff_lines(patch: Patch) -> Iterator[tuple[str, str]]:
    """(text, style) for each line of the patch's unified diff, file headers dropped."""
    for raw in patch.unified_diff().splitlines():
        if raw.startswith(("--- ", "+++ ")):
            continue
        if raw.startswith("@@"):
            yield raw, "cyan"
        elif raw.startswith("+"):
            yield raw, "green"
        elif raw.startswith("-"):
            yield raw, "red"
        elif raw.startswith("\\"):
            yield raw, "dim"
        else:
            yield raw, ""


def print_diff(console: Console, patches: list[Patch]) -> None:
    """The original design's look: the path, then coloured hunks, indented."""
    for patch in patches:
        console.print(Text(f"  {patch.path}", style="bold"))
        for text, style in diff_lines(patch):
            console.print(Text(f"  {text}", style=style))
        console.print()


def print_explanation(console: Console, text: str) -> None:
    for line in text.rstrip().splitlines() or [""]:
        console.print(Text(f"  {line}"))


def model_call_count(result: Result) -> int:
    stats_calls = result.stats.get("model_calls") if isinstance(result.stats, dict) else None
    if isinstance(stats_calls, int):
        return max(stats_calls, len(result.model_calls))
    return len(result.model_calls)


def status_line(console: Console, result: Result | None, seconds: float,
                outcome: str = "") -> None:
    """`model calls: 7 · 12.4 s · verified` after each task."""
    parts = []
    if result is not None:
        parts.append(f"model calls: {model_call_count(result)}")
        if result.candidates:
            parts.append(f"candidates: {len(result.candidates)}")
    parts.append(f"{seconds:.1f} s")
    parts.append(outcome or (result.status if result is not None else "error"))
    console.print(Text("  " + " · ".join(parts), style="dim"))


def describe_stats(stats: Any) -> str:
    """A one-line summary of whatever the index's build returned (IndexStats or a dict)."""
    if stats is None:
        return "index up to date"
    if hasattr(stats, "as_dict"):
        stats = stats.as_dict()
    elif hasattr(stats, "__dataclass_fields__"):
        stats = {name: getattr(stats, name) for name in stats.__dataclass_fields__}
    if not isinstance(stats, dict):
        return str(stats)
    if "files" in stats and "parsed_now" in stats:
        text = (f"index: {stats['files']} files ({stats.get('parsed_now', 0)} parsed, "
                f"{stats.get('parsed_cached', 0)} cached)")
        if stats.get("symbols"):
            text += f", {stats['symbols']} symbols"
        if stats.get("embeddings", True) and "chunks" in stats:
            text += (f", {stats['chunks']} chunks ({stats.get('embedded_now', 0)} embedded, "
                     f"{stats.get('embedded_reused', 0)} reused)")
        return text
    shown = []
    for key, value in stats.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            continue
        if isinstance(value, float):
            value = f"{value:.1f}"
        shown.append(f"{key.replace('_', ' ')}: {value}")
    return ", ".join(shown) if shown else "index up to date"


class IndexProgress:
    """A rich progress bar on a terminal; a few plain lines otherwise. Use as a context manager
    and pass `update` as the index's progress callback `(done, total, path)`."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._progress: Any = None
        self._task_id: Any = None
        self._last_plain = 0.0
        self.update: Callable[[int, int, str], None] = self._update

    def __enter__(self) -> IndexProgress:
        if self.console.is_terminal:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                TextColumn("[bold cyan]indexing[/]"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), TextColumn("{task.fields[path]}", markup=False),
                console=self.console, transient=True,
            )
            self._progress.start()
            self._task_id = self._progress.add_task("index", total=None, path="")
        return self

    def _update(self, done: int, total: int, path: str = "") -> None:
        if self._progress is not None:
            self._progress.update(self._task_id, completed=done, total=total or None,
                                  path=str(path)[-60:])
            return
        now = time.monotonic()
        if done == total or now - self._last_plain > 2.0:
            self._last_plain = now
            say(self.console, f"indexing {done}/{total} files")

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
