"""Digest tool output into short structured lines and keep a rolling session summary.

The model never sees raw pytest or ruff output, only one line per problem, deduplicated and
capped; and it never sees raw conversation history, only the summary the harness maintains.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

MAX_LINE_CHARS = 200


def shorten(line: str, limit: int = MAX_LINE_CHARS) -> str:
    """One line, whitespace collapsed, cut with an ellipsis."""
    flat = re.sub(r"\s+", " ", line).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def digest_feedback(lines: Iterable[str], *, limit: int = 6) -> list[str]:
    """Structured feedback lines (SYNTAX ERROR / LINT / TEST FAIL ...), deduplicated, shortened,
    at most `limit` of them, first seen first."""
    seen: set[str] = set()
    out: list[str] = []
    for raw in lines:
        line = shorten(str(raw))
        if not line or line in seen:
            continue
        seen.add(line)
        out.append(line)
        if len(out) >= limit:
            break
    return out


def digest_tool_output(text: str, *, limit: int = 6) -> list[str]:
    """Raw tool output (pytest, ruff, tracebacks) reduced to its error-looking lines."""
    pattern = re.compile(
        r"(Error|error:|FAILED|failed|assert|Exception|SyntaxError|Traceback|E\s{2,}|\b[A-Z]\d{3,4}\b)"
    )
    picked = [line for line in text.splitlines() if pattern.search(line)]
    return digest_feedback(picked or text.splitlines()[-limit:], limit=limit)


@dataclass
class SummaryEntry:
    """One finished task, as the summary remembers it."""

    task: str
    target: str
    outcome: str
    files: tuple[str, ...] = ()


@dataclass
class SessionSummary:
    """Rolling, structured memory of a session, updated by the harness after each turn."""

    max_entries: int = 8
    entries: list[SummaryEntry] = field(default_factory=list)
    facts: dict[str, str] = field(default_factory=dict)

    def record(self, task: str, target: str, outcome: str, files: Iterable[str] = ()) -> None:
        self.entries.append(SummaryEntry(shorten(task, 80), target, outcome, tuple(files)))
        if len(self.entries) > self.max_entries:
            dropped = len(self.entries) - self.max_entries
            earlier = int(self.facts.get("earlier tasks", "0")) + dropped
            self.facts["earlier tasks"] = str(earlier)
            self.entries = self.entries[dropped:]

    def record_result(self, task: str, result: object) -> None:
        """Update from a pipeline `Result` (duck-typed to keep this module free of cycles)."""
        status = getattr(result, "status", "?")
        patches = getattr(result, "patches", []) or []
        target = str(getattr(result, "stats", {}).get("target", ""))
        self.record(task, target, status, [p.path for p in patches])

    def render(self) -> str:
        """Comment lines for a prompt's `summary` section ("" when nothing happened yet)."""
        if not self.entries and not self.facts:
            return ""
        lines = ["# Session so far:"]
        for key, value in self.facts.items():
            lines.append(f"# - {key}: {value}")
        for entry in self.entries:
            files = f" [{', '.join(entry.files)}]" if entry.files else ""
            target = f" ({entry.target})" if entry.target else ""
            lines.append(f"# - {entry.task}{target}: {entry.outcome}{files}")
        return "\n".join(lines) + "\n"
