"""Where a generated body goes: split a file around one function and put a new body back.

Lines are 0-based (the index's tree-sitter rows) and broken at "\n" only, as tree-sitter counts
them: `str.splitlines` also breaks at form feeds, "\u2028", "\x85" and a lone "\r", which would
put the body of the function before the target in its place. The function keeps its `def` line and
docstring (the header); everything after the docstring up to the function's last line is the
body that candidates replace. Python is the language this handles in depth; for others the
header ends where the body block starts.
"""

from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass
from typing import Any

from ..data import split_lines
from ..inference.stops import LoopStop, PythonBlockStop, indentation

FUNCTION_KINDS = ("function", "method")


@dataclass(frozen=True)
class FunctionTarget:
    """One function in one file snapshot, split into prefix / old body / suffix."""

    path: str
    name: str
    qualified_name: str
    file_text: str
    start_line: int  # the def line
    header_end: int  # first line after the def line(s) and docstring
    body_end: int  # first line after the function
    def_indent: int  # columns of the def line
    body_indent: str  # leading whitespace of body lines
    is_stub: bool
    version: int | None = None
    symbol: Any = None

    @property
    def lines(self) -> list[str]:
        return split_lines(self.file_text)

    @property
    def prefix(self) -> str:
        """The file up to and including the def line and docstring."""
        text = "".join(self.lines[: self.header_end])
        return text if text.endswith("\n") else text + "\n"

    @property
    def suffix(self) -> str:
        return "".join(self.lines[self.body_end:])

    @property
    def old_body(self) -> str:
        return "".join(self.lines[self.header_end: self.body_end])

    @property
    def function_text(self) -> str:
        return "".join(self.lines[self.start_line: self.body_end])

    def location(self) -> str:
        """`src/config.py:34-58` (1-based, as people read it)."""
        return f"{self.path}:{self.start_line + 1}-{self.body_end}"

    def assemble(self, body: str) -> str:
        """The whole file with `body` in place of the old body."""
        if body and not body.endswith("\n"):
            body += "\n"
        prefix = self.prefix
        return prefix + body + self.suffix

    def with_text(self, file_text: str, body_lines: int) -> FunctionTarget:
        """This target after its body was replaced by one of `body_lines` lines."""
        delta = self.header_end + body_lines - self.body_end
        return FunctionTarget(self.path, self.name, self.qualified_name, file_text,
                              self.start_line, self.header_end, self.body_end + delta,
                              self.def_indent, self.body_indent, False, self.version,
                              self.symbol)


def _docstring_end_line(function_text: str, first_line: int) -> int | None:
    """0-based file line after the docstring statement, using Python's own parser."""
    try:
        module = ast.parse(textwrap.dedent(function_text))
    except SyntaxError:
        return None
    if not module.body or not isinstance(module.body[0], (ast.FunctionDef, ast.AsyncFunctionDef)):
        return None
    function = module.body[0]
    first = function.body[0] if function.body else None
    if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)):
        return first_line + (first.end_lineno or first.lineno)
    return None


def function_target(path: str, file_text: str, symbol: Any, version: int | None = None
                    ) -> FunctionTarget:
    """Split `file_text` around `symbol` (an index Symbol)."""
    lines = split_lines(file_text)
    start = symbol.start_line
    body_end = min(len(lines), symbol.end_line + 1)
    def_indent = indentation(lines[start]) if start < len(lines) else 0
    body_start = max(symbol.body_start_line, start + 1)
    function_text = "".join(lines[start:body_end])
    header_end = _docstring_end_line(function_text, start) if symbol.docstring else None
    if header_end is None:
        header_end = body_start
        if body_start == start:  # one-line def: `def f(): pass`
            header_end = start + 1
    header_end = min(max(header_end, start + 1), body_end)
    body_indent = ""
    for line in lines[start + 1: body_end]:
        if line.strip():
            body_indent = line[: len(line) - len(line.lstrip())]
            break
    if len(body_indent.expandtabs(8)) <= def_indent:
        body_indent = " " * (def_indent + 4)
    return FunctionTarget(path, symbol.name, symbol.qualified_name, file_text, start, header_end,
                          body_end, def_indent, body_indent, bool(symbol.is_stub), version, symbol)


def function_of_task(index: Any, path: str, task: Any) -> Any:
    """The function a Task names by position (`qualified_name`, `symbol_range`), exactly: never
    another one of the same bare name (cursor in `B.__init__` is not `A.__init__`; a method
    `Worker.run` is not a top-level `run`). Of several definitions with that qualified name, the
    one starting at the range's def line, else the nearest. None when the Task names no function
    by position or the file no longer has it."""
    if not task.qualified_name:
        return None
    matches = [s for s in index.symbols(path)
               if getattr(s, "kind", "function") in FUNCTION_KINDS
               and s.qualified_name == task.qualified_name]
    if not matches:
        return None
    if task.symbol_range is None:
        return matches[0]
    start = task.symbol_range[0]
    return min(matches, key=lambda s: abs(s.start_line - start))


class BodyStop:
    """Streaming stop rule for a body that starts on a fresh line: cut at the dedent."""

    def __init__(self, def_indent: int) -> None:
        self._rule = LoopStop(PythonBlockStop(def_indent))

    def cut(self, text: str) -> int | None:
        cut = self._rule.cut("\n" + text)
        return None if cut is None else max(0, cut - 1)


def trim_body(text: str, def_indent: int, body_indent: str) -> str:
    """The generated text cut where the function closes; "" when it is not a body at all."""
    cut = BodyStop(def_indent).cut(text)
    if cut is not None:
        text = text[:cut]
    lines = [line.removesuffix("\r") for line in text.rstrip().split("\n")]
    while lines and not lines[0].strip():
        lines.pop(0)
    if not lines or indentation(lines[0]) <= def_indent:
        return ""
    code = [line for line in lines if line.strip() and not line.strip().startswith("#")]
    if not code:
        return ""
    return "\n".join(lines) + "\n"


def salvage_body(target: FunctionTarget, body: str) -> str | None:
    """A body that does not compile, cut back to its longest run of whole leading lines that
    does (a sample that ran out of tokens mid-statement or rambled into an open string).
    None when the body compiles already, or when nothing with code in it does."""
    if not target.path.endswith((".py", ".pyi")) or _compiles(target.assemble(body)):
        return None
    lines = split_lines(body)
    for end in range(len(lines) - 1, 0, -1):
        kept = "".join(lines[:end])
        code = [line for line in lines[:end] if line.strip()
                and not line.strip().startswith("#")]
        if code and _compiles(target.assemble(kept)):
            return kept
    return None


def _compiles(source: str) -> bool:
    try:
        compile(source, "<candidate>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True
