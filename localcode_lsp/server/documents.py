"""Open documents as the editor sees them, and position conversion between LSP encodings.

LSP positions count columns in the negotiated encoding (UTF-16 code units unless the client
offered UTF-8 or UTF-32); the engine counts code points. Lines end at "\\n", "\\r\\n" or "\\r" only
(not at the other characters Python's `str.splitlines` treats as line breaks). The engine counts
lines at "\\n" only (as tree-sitter does, `data.split_lines`): `engine_position` and
`engine_edit_offsets` convert between the two, so a lone "\\r" in a file shifts nothing.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from ..data import Position, TextEdit, split_lines

UTF8, UTF16, UTF32 = "utf-8", "utf-16", "utf-32"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class RangeError(ValueError):
    """A position or range that does not exist in the document."""


def line_starts(text: str) -> list[int]:
    """Offsets (code points) where each LSP line starts; always at least one line."""
    return [0] + [match.end() for match in _LINE_BREAK.finditer(text)]


def _line_text(text: str, starts: list[int], line: int) -> str:
    end = starts[line + 1] if line + 1 < len(starts) else len(text)
    return _LINE_BREAK.sub("", text[starts[line]:end])


def units(char: str, encoding: str) -> int:
    """How many units of `encoding` one code point takes."""
    if encoding == UTF32:
        return 1
    code = ord(char)
    if encoding == UTF8:
        return 1 if code < 0x80 else 2 if code < 0x800 else 3 if code < 0x10000 else 4
    return 2 if code > 0xFFFF else 1


def column_to_code_points(line_text: str, column: int, encoding: str) -> int:
    """An encoding column -> code-point index in the line (clamped to the line end, per LSP)."""
    if encoding == UTF32:
        return min(column, len(line_text))
    seen = 0
    for index, char in enumerate(line_text):
        if seen >= column:
            return index
        seen += units(char, encoding)
    return len(line_text)


def code_points_to_column(line_text: str, index: int, encoding: str) -> int:
    """A code-point index in the line -> column in `encoding`."""
    prefix = line_text[:index]
    if encoding == UTF32:
        return len(prefix)
    return sum(units(char, encoding) for char in prefix)


def offset_of(text: str, line: int, character: int, encoding: str,
              starts: list[int] | None = None) -> int:
    """Absolute code-point offset of an LSP position; RangeError when the line does not exist."""
    starts = starts if starts is not None else line_starts(text)
    if line < 0 or character < 0:
        raise RangeError(f"negative position {line}:{character}")
    if line >= len(starts):
        raise RangeError(f"line {line} is past the end of the document ({len(starts)} lines)")
    return starts[line] + column_to_code_points(_line_text(text, starts, line), character, encoding)


def position_of(text: str, offset: int, encoding: str,
                starts: list[int] | None = None) -> tuple[int, int]:
    """Absolute code-point offset -> (line, character in `encoding`)."""
    starts = starts if starts is not None else line_starts(text)
    offset = max(0, min(offset, len(text)))
    line = _bisect_right(starts, offset) - 1
    return line, code_points_to_column(_line_text(text, starts, line), offset - starts[line],
                                       encoding)


def code_point_column(text: str, line: int, character: int, encoding: str) -> int:
    """The engine's column (code points) for an LSP position."""
    starts = line_starts(text)
    return offset_of(text, line, character, encoding, starts) - starts[line]


def _bisect_right(values: list[int], x: int) -> int:
    low, high = 0, len(values)
    while low < high:
        mid = (low + high) // 2
        if x < values[mid]:
            high = mid
        else:
            low = mid + 1
    return low


def engine_position(text: str, offset: int) -> Position:
    """An absolute code-point offset as the engine's (line, column): lines end at "\\n" only."""
    offset = max(0, min(offset, len(text)))
    line_start = text.rfind("\n", 0, offset) + 1
    return Position(text.count("\n", 0, offset), offset - line_start)


def engine_edit_offsets(before: str, edit: TextEdit) -> tuple[int, int]:
    """Absolute offsets of an engine TextEdit, using the engine's own line model
    (`data.split_lines`, as `data.apply_edits` does)."""
    lines = split_lines(before)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))

    def offset(line: int, column: int) -> int:
        if line >= len(lines):
            return len(before)
        return min(offsets[line] + column, offsets[line + 1])

    return offset(edit.start.line, edit.start.column), offset(edit.end.line, edit.end.column)


@dataclass(frozen=True)
class OpenDocument:
    """An immutable snapshot of one open document."""

    uri: str
    text: str
    version: int
    language_id: str = ""


class DocumentStore:
    """The server's copy of every open document, updated by incremental didChange."""

    def __init__(self) -> None:
        self._documents: dict[str, OpenDocument] = {}
        self._lock = threading.Lock()

    def open(self, uri: str, text: str, version: int, language_id: str = "") -> OpenDocument:
        document = OpenDocument(uri, text, version, language_id)
        with self._lock:
            self._documents[uri] = document
        return document

    def get(self, uri: str) -> OpenDocument | None:
        with self._lock:
            return self._documents.get(uri)

    def close(self, uri: str) -> OpenDocument | None:
        with self._lock:
            return self._documents.pop(uri, None)

    def change(self, uri: str, version: int, changes: list, encoding: str) -> OpenDocument:
        """Apply didChange content changes in order. All or nothing: a change whose range does not
        exist raises RangeError and leaves the document as it was."""
        with self._lock:
            current = self._documents.get(uri)
        if current is None:
            raise KeyError(uri)
        text = current.text
        for change in changes:
            change_range = getattr(change, "range", None)
            if change_range is None:
                text = change.text
                continue
            starts = line_starts(text)
            start = offset_of(text, change_range.start.line, change_range.start.character,
                              encoding, starts)
            end = offset_of(text, change_range.end.line, change_range.end.character,
                            encoding, starts)
            if end < start:
                raise RangeError(f"range end {change_range.end} is before its start")
            text = text[:start] + change.text + text[end:]
        document = OpenDocument(uri, text, version, current.language_id)
        with self._lock:
            self._documents[uri] = document
        return document
