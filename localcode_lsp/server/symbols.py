"""Which function the cursor is in, from the text alone (works on code that does not parse).

The server needs this only to decide which code actions to offer and to name the target; the
engine locates the symbol precisely from its own index.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DEF = re.compile(r"^([ \t]*)(?:async[ \t]+)?def[ \t]+([A-Za-z_]\w*)")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_STUB_LINES = re.compile(r"^(pass|\.\.\.|raise NotImplementedError\b.*)$")


@dataclass(frozen=True)
class FunctionSpan:
    """A function definition: its name, first and last line, and whether its body is a stub."""

    name: str
    start_line: int
    end_line: int
    is_stub: bool


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def enclosing_function(text: str, line: int, language_id: str = "python") -> FunctionSpan | None:
    """The innermost Python function containing `line` (None outside any function)."""
    if language_id not in ("python", ""):
        return None
    lines = _LINE_BREAK.split(text)
    if not 0 <= line < len(lines):
        return None
    for start in range(line, -1, -1):
        match = _DEF.match(lines[start])
        if not match:
            continue
        indent = len(match.group(1))
        end = start
        body: list[str] = []
        signature_done = lines[start].rstrip().endswith(":")
        for number in range(start + 1, len(lines)):
            current = lines[number]
            if not current.strip():
                continue
            if signature_done and _indent(current) <= indent:
                break
            if not signature_done:
                signature_done = current.rstrip().endswith(":")
            else:
                body.append(current.strip())
            end = number
        if start <= line <= end:
            return FunctionSpan(match.group(2), start, end, _is_stub(body))
        if not body and all(not lines[n].strip() for n in range(end + 1, line + 1)):
            return FunctionSpan(match.group(2), start, line, True)  # an empty stub being written
    return None


def _is_stub(body: list[str]) -> bool:
    statements = list(body)
    if statements and statements[0][:3] in ('"""', "'''"):
        quote = statements[0][:3]
        first = statements.pop(0)
        if not (len(first) >= 6 and first.endswith(quote)):
            while statements and not statements.pop(0).endswith(quote):
                pass
    return all(_STUB_LINES.match(statement) for statement in statements)
