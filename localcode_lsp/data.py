"""The data that flows through the engine: Task -> Context -> Candidate -> Verdict -> Result."""

from __future__ import annotations

import difflib
import time
from dataclasses import dataclass, field
from typing import Any, Literal

Intent = Literal["edit", "explain", "fix", "generate"]
INTENTS: tuple[str, ...] = ("edit", "explain", "fix", "generate")


@dataclass(frozen=True)
class Position:
    """Zero-based line and column in Python string units (code points)."""

    line: int
    column: int = 0


@dataclass(frozen=True)
class Task:
    """One unit of work for the pipeline, as a front end describes it."""

    path: str | None = None  # workspace-relative (or absolute inside the root)
    position: Position | None = None
    symbol: str | None = None
    # Targeting by position: the enclosing function as the index sees it at `position`
    # (qualified name such as "Worker.run", and its 0-based [def line, end line) range).
    # When set, LOCATE takes exactly this function, never another one of the same bare name.
    qualified_name: str | None = None
    symbol_range: tuple[int, int] | None = None
    instruction: str = ""
    intent: Intent | None = None  # set when the front end already knows (code actions)
    diagnostics: tuple[str, ...] = ()  # fix intent: the problems at the cursor, one per line
    # The rolling session summary (context.SessionSummary.render()) from earlier turns of a
    # terminal session; the pipeline passes it to prompts' `summary` section.
    session_summary: str = ""


@dataclass(frozen=True)
class TextEdit:
    """Replace [start, end) with `new_text`; positions in code points."""

    start: Position
    end: Position
    new_text: str


@dataclass(frozen=True)
class Patch:
    """A change to one file inside the workspace, computed against one document version."""

    path: str  # workspace-relative, "/" separated
    before: str
    after: str
    version: int | None = None  # the editor's document version; None = disk

    def edits(self) -> list[TextEdit]:
        """A minimal list of line-level edits turning `before` into `after`."""
        return minimal_edits(self.before, self.after)

    def unified_diff(self, context: int = 3) -> str:
        return "".join(
            difflib.unified_diff(
                split_lines(self.before),
                split_lines(self.after),
                fromfile=f"a/{self.path}",
                tofile=f"b/{self.path}",
                n=context,
            )
        )


def split_lines(text: str) -> list[str]:
    """Lines with their ends, broken at "\n" only: the one line model of the engine (tree-sitter
    counts rows this way). `str.splitlines` also breaks at form feeds, "\u2028", "\x85" and a
    lone "\r", which would shift every line number after them."""
    lines = text.split("\n")
    ends = [line + "\n" for line in lines[:-1]]
    return ends + [lines[-1]] if lines[-1] else ends


def minimal_edits(before: str, after: str) -> list[TextEdit]:
    """Line-granular edits from a SequenceMatcher diff; positions refer to `before`."""
    old_lines = split_lines(before)
    new_lines = split_lines(after)
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    edits: list[TextEdit] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        start = _line_start(old_lines, i1)
        end = _line_start(old_lines, i2)
        edits.append(TextEdit(start, end, "".join(new_lines[j1:j2])))
    return edits


def _line_start(lines: list[str], index: int) -> Position:
    if index < len(lines):
        return Position(index, 0)
    if not lines:
        return Position(0, 0)
    last = lines[-1]
    if last.endswith("\n"):
        return Position(len(lines), 0)
    return Position(len(lines) - 1, len(last))


def apply_edits(text: str, edits: list[TextEdit]) -> str:
    """Apply non-overlapping edits (any order) to `text`."""
    lines = split_lines(text)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))

    def offset(pos: Position) -> int:
        if pos.line >= len(lines):
            return len(text)
        return min(offsets[pos.line] + pos.column, offsets[pos.line + 1])

    result = text
    for edit in sorted(edits, key=lambda e: (e.start.line, e.start.column), reverse=True):
        a, b = offset(edit.start), offset(edit.end)
        result = result[:a] + edit.new_text + result[b:]
    return result


@dataclass
class Candidate:
    """One generated fragment and the whole target file it produces."""

    id: int
    text: str  # the fragment the model (or a cache) produced
    file_text: str  # the target file with the fragment applied
    attempt: int = 0  # 0 = first generation, n = n-th retry
    source: str = "model"  # "model" | "salvaged" (cut back until it compiles) | "cache" | "repair"
    seed: int | None = None
    tokens: int = 0
    prompt: str = ""  # the purpose of the prompt that drew it ("" = not drawn by the model)


@dataclass
class GateResult:
    """One gate's outcome for one candidate."""

    gate: str  # "parse" | "lint" | "type" | "test" | "review" | "safety"
    passed: bool
    feedback: list[str] = field(default_factory=list)  # structured lines for the retry prompt
    skipped: str = ""  # why the gate did not run ("" = it ran)
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Verdict:
    """All gate results for one candidate, in gate order."""

    candidate_id: int
    gates: list[GateResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)

    @property
    def feedback(self) -> list[str]:
        return [line for g in self.gates for line in g.feedback]

    def rank_key(self) -> tuple[int, ...]:
        """Higher is better: parses > lint > tests > others; used for best-of-N."""
        by_name = {g.gate: g for g in self.gates}

        def ok(name: str) -> int:
            gate = by_name.get(name)
            return 1 if gate is None or gate.passed else 0

        return (ok("parse"), ok("safety"), ok("lint"), ok("test"), ok("type"), ok("review"))

    def summary(self) -> str:
        """`parse ✓, lint ✓, tests ✓` style."""
        labels = {"test": "tests", "type": "types"}
        parts = []
        for g in self.gates:
            mark = "-" if g.skipped else ("✓" if g.passed else "✗")
            parts.append(f"{labels.get(g.gate, g.gate)} {mark}")
        return ", ".join(parts)


@dataclass
class TraceEvent:
    """One step of the pipeline, as progress reports and the terminal show it."""

    state: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)

    def line(self) -> str:
        return f"[{self.state}] {self.message}"


ResultStatus = Literal["verified", "applied", "no_candidate", "explained", "cancelled", "error"]


@dataclass
class Result:
    """What a pipeline run returns to a front end."""

    status: ResultStatus
    patches: list[Patch] = field(default_factory=list)
    explanation: str = ""
    message: str = ""
    verdicts: list[Verdict] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)
    trace: list[TraceEvent] = field(default_factory=list)
    model_calls: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status in ("verified", "applied", "explained")

    def untested_note(self) -> str:
        """`not tested: no tests found for f (checked: parse, lint, review)` for each verified
        step that no test or docstring example covered; "" when all were tested."""
        notes = []
        for entry in self.stats.get("untested", []):
            checked = ", ".join(entry.get("checked", [])) or "nothing"
            notes.append(f"not tested: {entry['reason']} (checked: {checked})")
        return "; ".join(notes)
