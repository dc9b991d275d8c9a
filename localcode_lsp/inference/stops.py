"""Structural stop rules: cut a completion where its block closes, not merely where tokens run out.

A rule is fed the text generated so far (after every decoded token) and answers the offset at
which the text must be cut, or None to go on. The same rule trims a finished text afterwards
(`trim`), which is how remote backends use it.

- Python: the block closes at the first non-blank line (outside strings and brackets) whose
  indentation is at or left of the enclosing block's header (`def`, `if`, ...).
- Loops: a small model that lost the thread repeats itself (`x += 1` forever, the same two
  lines over and over) until max_tokens. `LoopStop` wraps any rule and also cuts when the last
  complete lines are one short block repeated, keeping the first copy; the block ends where the
  model began to loop, and verification judges what is left.
- C-family: brace balance. The block closes when a `}` would take the depth below zero (the
  enclosing block's own closing brace: cut before it), or, with `single_block=True`, when a
  block opened by the completion returns to depth zero (cut after its `}`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .backend import StopRule

C_FAMILY = frozenset({"c", "cpp", "java", "javascript", "typescript", "tsx", "rust", "go",
                      "csharp", "kotlin", "swift", "php", "scala", "dart"})


def indentation(line: str) -> int:
    """Width of the leading whitespace (tabs count to the next multiple of 8)."""
    expanded = line.expandtabs(8)
    return len(expanded) - len(expanded.lstrip(" "))


@dataclass
class PythonBlockStop:
    """Stop when a line dedents to or past `block_indent` (the header's indentation).

    `line_prefix` is the text of the cursor line before the cursor: the line it starts is never
    judged (it belongs to the document), only the lines the completion begins.
    """

    block_indent: int
    line_prefix: str = ""

    def cut(self, text: str) -> int | None:
        full = self.line_prefix + text
        offset_shift = len(self.line_prefix)
        state = _PyScanState()
        line_start = 0
        first = True
        for line in full.splitlines(keepends=True):
            judged = not first and state.depth == 0 and state.quote is None
            first = False
            if judged:
                content = line.strip()
                if content and indentation(line) <= self.block_indent:
                    return max(0, line_start - offset_shift)
            state.scan(line)
            line_start += len(line)
        return None

    def trim(self, text: str) -> str:
        """`text` without the lines after the block closed (and no trailing blank lines then)."""
        cut = self.cut(text)
        if cut is None:
            return text
        kept = text[:cut].rstrip()
        return kept + "\n" if kept else ""


class _PyScanState:
    """Tracks bracket depth and open triple-quoted strings across lines (enough for stopping)."""

    def __init__(self) -> None:
        self.depth = 0
        self.quote: str | None = None  # an open triple quote

    def scan(self, line: str) -> None:
        i, n = 0, len(line)
        while i < n:
            if self.quote is not None:
                end = line.find(self.quote, i)
                if end == -1:
                    return
                i = end + 3
                self.quote = None
                continue
            ch = line[i]
            if ch == "#":
                return
            if line.startswith(('"""', "'''"), i):
                self.quote = line[i:i + 3]
                i += 3
                continue
            if ch in "\"'":
                end = i + 1
                while end < n and line[end] != ch and line[end] != "\n":
                    end += 2 if line[end] == "\\" else 1
                i = end + 1
                continue
            if ch in "([{":
                self.depth += 1
            elif ch in ")]}":
                self.depth = max(0, self.depth - 1)
            i += 1


@dataclass
class BraceBlockStop:
    """Stop on brace balance (strings, chars and comments skipped)."""

    single_block: bool = False

    def cut(self, text: str) -> int | None:
        depth = 0
        opened = False
        i, n = 0, len(text)
        while i < n:
            ch = text[i]
            if text.startswith("//", i):
                newline = text.find("\n", i)
                if newline == -1:
                    return None
                i = newline
                continue
            if text.startswith("/*", i):
                end = text.find("*/", i + 2)
                if end == -1:
                    return None
                i = end + 2
                continue
            if ch in "\"'`":
                end = i + 1
                while end < n and text[end] != ch:
                    end += 2 if text[end] == "\\" else 1
                i = end + 1
                continue
            if ch == "{":
                depth += 1
                opened = True
            elif ch == "}":
                depth -= 1
                if depth < 0:
                    return i
                if depth == 0 and opened and self.single_block:
                    return i + 1
            i += 1
        return None

    def trim(self, text: str) -> str:
        cut = self.cut(text)
        return text if cut is None else text[:cut].rstrip() + ("\n" if cut else "")


def loop_cut(text: str, *, max_period: int = 4) -> int | None:
    """Offset after the first copy of a block that the tail of `text` repeats, or None.

    Only complete lines count. A single line must appear 4 times in a row (`0,` rows of a table
    are real code three times more often than a loop is), a block of 2 to `max_period` lines 3
    times; a block made only of blank lines never counts.
    """
    lines = text.split("\n")[:-1]  # the last piece is not a complete line yet
    for period in range(1, max_period + 1):
        copies = 4 if period == 1 else 3
        span = period * copies
        if len(lines) < span:
            break
        block = lines[-period:]
        if not any(line.strip() for line in block):
            continue
        if all(lines[len(lines) - period * (k + 1): len(lines) - period * k] == block
               for k in range(1, copies)):
            start = len(lines) - span  # walk back to the first copy of the run
            while start >= period and lines[start - period: start] == block:
                start -= period
            return sum(len(line) + 1 for line in lines[: start + period])
    return None


@dataclass
class LoopStop:
    """`inner`'s cut, or the end of the first copy once the completion starts looping."""

    inner: StopRule | None = None

    def cut(self, text: str) -> int | None:
        cut = self.inner.cut(text) if self.inner is not None else None
        looped = loop_cut(text if cut is None else text[:cut])
        return cut if looped is None else looped

    def trim(self, text: str) -> str:
        cut = self.cut(text)
        return text if cut is None else text[:cut]


def python_block_indent(prefix: str) -> int | None:
    """Indentation of the block header enclosing the end of `prefix` (None at module level).

    Walks back from the cursor line to the nearest non-blank line that ends with ':' and is
    indented less than the cursor's body line, e.g. `def f():` -> its indentation.
    """
    lines = prefix.split("\n")
    cursor_indent = indentation(lines[-1])
    for line in reversed(lines[:-1]):
        stripped = line.split("#", 1)[0].strip() if "#" in line else line.strip()
        if not stripped:
            continue
        indent = indentation(line)
        if stripped.endswith(":") and indent < max(cursor_indent, 1):
            return indent
        if indent == 0:
            return None  # a module-level statement: the cursor is not inside a block
        cursor_indent = min(cursor_indent, indent) if cursor_indent else indent
    return None


def stop_rule_for(language: str, prefix: str, *, single_block: bool = False):
    """The structural stop rule for a completion at the end of `prefix`, or None."""
    language = language.lower()
    if language == "python":
        indent = python_block_indent(prefix)
        if indent is None:
            return LoopStop()
        return LoopStop(PythonBlockStop(indent, prefix.rsplit("\n", 1)[-1]))
    if language in C_FAMILY:
        return LoopStop(BraceBlockStop(single_block=single_block))
    return LoopStop()
