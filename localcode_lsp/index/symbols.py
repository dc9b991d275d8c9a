"""What a definition is and which one holds a position: the one function finder.

`Symbol` (a function, method or class with its ranges, signature, docstring and stub flag),
`encode_source` (the UTF-8 bytes every offset counts in), and the position finder
(`line_starts`, `byte_offset`, `innermost`, `enclosing_function`) that the server's code
actions, the CLI, LOCATE and the dependency graph all ask (through
`CodeIndex.enclosing_function` when the file is indexed). Symbols are derived from trees in
`definitions.py`; imports and calls in `facts.py`. Lines are 0-based, byte offsets refer to the
UTF-8 text.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

FUNCTION, METHOD, CLASS = "function", "method", "class"


@dataclass(frozen=True)
class Symbol:
    """A function, method or class definition.

    `start_*` is the `def`/`class`/`function` line itself; `decorated_start_*` includes the
    decorators (equal to `start_*` without any). `indent` is the leading whitespace of the
    definition line. `body_start_*` is where the body block begins (its first statement).
    """

    name: str
    qualified_name: str  # "Class.method" inside its file
    kind: str  # "function" | "method" | "class"
    path: str
    start_line: int
    end_line: int
    start_byte: int
    end_byte: int
    signature: str
    docstring: str
    body_start_line: int
    body_start_byte: int
    indent: str
    parent: str | None
    is_stub: bool
    decorated_start_line: int = -1
    decorated_start_byte: int = -1
    language: str = "python"

    def shifted(self, byte_delta: int, line_delta: int) -> Symbol:
        """The same symbol moved by an edit that happened entirely before it.

        Every keystroke shifts every symbol below it, so this is on the didChange hot path:
        copying the instance dict is ~5x cheaper than dataclasses.replace (which re-runs the
        frozen __init__), and the fields are plain values.
        """
        moved = object.__new__(Symbol)
        values = dict(self.__dict__)
        for key in ("start_line", "end_line", "body_start_line", "decorated_start_line"):
            values[key] += line_delta
        for key in ("start_byte", "end_byte", "body_start_byte", "decorated_start_byte"):
            values[key] += byte_delta
        moved.__dict__.update(values)
        return moved

    def contains(self, byte_offset: int) -> bool:
        return self.decorated_start_byte <= byte_offset <= self.end_byte

    @property
    def line_range(self) -> tuple[int, int]:
        """0-based [definition line, line after the last one): what `Task.symbol_range` holds."""
        return (self.start_line, self.end_line + 1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- the bytes every offset refers to ------------------------------------------------------

def encode_source(text: str) -> bytes:
    """The UTF-8 bytes of `text` that symbol byte offsets refer to: undecodable bytes a file
    was read with (surrogate escapes) go back to those bytes; any other lone surrogate (a
    client's broken UTF-16) becomes "?", so encoding never fails."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        pass
    try:
        return text.encode("utf-8", errors="surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", errors="replace")


# --- which definition holds a position ---------------------------------------------------
# The one function finder: the server's code actions, the CLI, LOCATE and the dependency graph
# all ask these (through `CodeIndex.enclosing_function` when the file is indexed).

def line_starts(source: bytes) -> list[int]:
    """Byte offset of the start of every line of `source`."""
    starts = [0]
    position = source.find(b"\n")
    while position >= 0:
        starts.append(position + 1)
        position = source.find(b"\n", position + 1)
    return starts


def byte_offset(source: bytes, line: int, column: int,
                starts: list[int] | None = None) -> int | None:
    """The byte offset of a 0-based (line, column in code points) position in UTF-8 `source`;
    a column past the line's end clamps to it, a line outside the text gives None."""
    starts = starts if starts is not None else line_starts(source)
    if line < 0 or line >= len(starts) or column < 0:
        return None
    line_start = starts[line]
    line_end = starts[line + 1] - 1 if line + 1 < len(starts) else len(source)
    text = source[line_start:line_end].decode("utf-8", errors="replace")
    return line_start + min(len(text[:column].encode("utf-8", errors="replace")),
                            line_end - line_start)


def innermost(symbols: Iterable[Symbol], offset: int, *,
              functions_only: bool = False) -> Symbol | None:
    """The innermost symbol whose range (decorators included, end inclusive: a cursor right
    after the last character is still inside) contains the byte `offset`."""
    best: Symbol | None = None
    for symbol in symbols:
        if functions_only and symbol.kind == CLASS:
            continue
        if symbol.decorated_start_byte <= offset <= symbol.end_byte:
            if best is None or symbol.start_byte >= best.start_byte:
                best = symbol
    return best


def enclosing_function(symbols: Iterable[Symbol], source: bytes, line: int, column: int, *,
                       starts: list[int] | None = None) -> Symbol | None:
    """The innermost function or method containing 0-based (line, column) of `source` (column
    in code points), or None at module level. The Symbol carries the qualified name
    ("Worker.run"), `line_range` and `is_stub`.

    A function whose body is still empty (`def f():` being written) also holds the blank
    lines below its header: that is where the cursor stands to ask for its body."""
    starts = starts if starts is not None else line_starts(source)
    offset = byte_offset(source, line, column, starts)
    if offset is None:
        return None
    functions = [s for s in symbols if s.kind != CLASS]
    found = innermost(functions, offset)
    line_end = starts[line + 1] if line + 1 < len(starts) else len(source)
    for symbol in functions:
        if symbol.language == "python" and symbol.body_start_byte >= symbol.end_byte \
                and symbol.end_byte <= offset \
                and not source[symbol.end_byte:line_end].strip() \
                and (found is None or symbol.start_byte >= found.start_byte):
            found = symbol
    return found
