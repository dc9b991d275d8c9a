"""The Task a front end builds from a file position: the function around it, as the AST index
sees it (its qualified name and line range), so LOCATE edits exactly that function.

Both front ends call this: the language server for a code action or command at the cursor, and
`localcode run --file F --line N`. For the same file and position they build the same Task. The
intent is left to UNDERSTAND unless the front end was told it (explain, fix, `--intent`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from .data import Intent, Position, Task


class FunctionFinder(Protocol):
    """The one function finder (index.CodeIndex): the innermost function at a position."""

    def enclosing_function(self, rel_path: str, line: int, column: int) -> Any: ...


def task_at_position(index: FunctionFinder, path: str, line: int, column: int, *,
                     instruction: str = "", intent: Intent | None = None,
                     diagnostics: Sequence[str] = ()) -> Task:
    """The Task for `path` (workspace-relative) at 0-based `line`, `column` (code points, lines
    broken at "\\n" only, as tree-sitter counts them).

    Inside a function the Task names it by qualified name ("Worker.run") and by its range
    `(def line, end line + 1)`; at module level it carries the position alone (LOCATE then
    decides: new code for a generate intent, an error otherwise)."""
    symbol = index.enclosing_function(path, line, column)
    common: dict[str, Any] = {
        "path": path, "position": Position(line, column), "instruction": instruction,
        "intent": intent, "diagnostics": tuple(diagnostics),
    }
    if symbol is None:
        return Task(**common)
    return Task(symbol=symbol.qualified_name, qualified_name=symbol.qualified_name,
                symbol_range=(symbol.start_line, symbol.end_line + 1), **common)
