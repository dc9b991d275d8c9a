"""One file as the index holds it: `FileRecord` (text, symbols, facts, the parsed tree once the
editor has it open, search chunks and line starts cut on demand), `parse_record` (a record from
disk or overlay text), and the editor's edits applied to a record incrementally (`retext`,
`apply_edit`). Which records the index holds and what an edit invalidates around them is
`CodeIndex`'s business (`core.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..logs import get_logger
from .chunks import Chunk, chunk_file
from .facts import FileFacts
from .languages import SYMBOL_LANGUAGES, ParserCache, is_pytest_file, language_for_path
from .parsed import ByteEdit, ParsedFile, _point
from .queries import Queries
from .symbols import Symbol, byte_offset, line_starts

log = get_logger("index")


@dataclass
class FileRecord:
    """What the index holds of one file. `parsed` (the tree, kept current by incremental edits)
    exists once the editor has sent the file's text; `from_overlay` says the text is the
    editor's, not the disk's."""

    path: str
    language: str | None
    size: int
    mtime_ns: int
    source: bytes
    symbols: list[Symbol] = field(default_factory=list)
    facts: FileFacts | None = None
    parsed: ParsedFile | None = None
    from_overlay: bool = False
    chunks: list[Chunk] | None = None
    line_starts: list[int] | None = None

    def current_facts(self) -> FileFacts:
        if self.parsed is not None:
            return self.parsed.facts()
        return self.facts or FileFacts()

    def search_chunks(self) -> list[Chunk]:
        """The file's search chunks, cut on first use after a change."""
        if self.chunks is None:
            text = self.source.decode("utf-8", errors="replace")
            self.chunks = chunk_file(self.path, text, self.symbols, self.language) \
                if self.language is not None else []
        return self.chunks

    def starts(self) -> list[int]:
        """Byte offsets of the line starts, computed on first use after a change."""
        if self.line_starts is None:
            self.line_starts = line_starts(self.source)
        return self.line_starts

    def byte_offset(self, line: int, column: int) -> int | None:
        return byte_offset(self.source, line, column, self.starts())

    # --- the editor's edits ----------------------------------------------------------------

    def retext(self, source: bytes, parsers: ParserCache, queries: Queries) -> bool:
        """Bring the record to the editor's whole new text with one incremental tree edit (a
        record without a tree yet parses its previous text first). True when the text
        changed; the record then holds the new text and symbols."""
        if self.parsed is None:
            assert self.language is not None
            # known file without a tree yet: parse its previous text, then edit
            self.parsed = ParsedFile(self.path, self.language, self.source, parsers, queries,
                                     with_names=is_pytest_file(self.path))
            if not self.parsed.replace_text(source):
                self.from_overlay = True
                return False
        elif not self.parsed.replace_text(source):
            return False
        self.edited(source)
        return True

    def apply_edit(self, start_byte: int, old_end_byte: int, new_end_byte: int,
                   replacement: bytes, start_point: tuple[int, int] | None = None,
                   old_end_point: tuple[int, int] | None = None,
                   new_end_point: tuple[int, int] | None = None) -> None:
        """Apply one known edit to the tree: bytes [start_byte, old_end_byte) are replaced by
        `replacement`. The record must have its tree (`parsed`)."""
        assert self.parsed is not None
        old = self.source
        if not 0 <= start_byte <= old_end_byte <= len(old):
            raise ValueError(f"edit range {start_byte}..{old_end_byte} is outside "
                             f"the {len(old)}-byte document {self.path}")
        new_source = old[:start_byte] + replacement + old[old_end_byte:]
        edit = ByteEdit(start_byte, old_end_byte, new_end_byte,
                        start_point or _point(old, start_byte),
                        old_end_point or _point(old, old_end_byte),
                        new_end_point or _point(new_source, new_end_byte))
        self.parsed.apply_edit(edit, new_source)
        self.edited(new_source)

    def edited(self, source: bytes) -> None:
        """The tree now holds `source`: take its symbols, drop what was cut from the old text."""
        assert self.parsed is not None
        self.source = source
        self.size = len(source)
        self.symbols = self.parsed.symbols
        self.facts = None
        self.from_overlay = True
        self.chunks = None
        self.line_starts = None


def parse_record(path: str, source: bytes, size: int, mtime_ns: int, parsers: ParserCache,
                 queries: Queries, *, keep_tree: bool, from_overlay: bool = False) -> FileRecord:
    """The record of `source` (the tree kept when `keep_tree`: an open document)."""
    language = language_for_path(path)
    record = FileRecord(path, language, size, mtime_ns, source, from_overlay=from_overlay)
    if language is None:
        return record
    try:
        parsed = ParsedFile(path, language, source, parsers, queries,
                            with_names=is_pytest_file(path))
    except ValueError as exc:  # no grammar for this language in the pack
        log.debug("not parsed: %s (%s)", path, exc)
        record.language = None
        return record
    record.symbols = parsed.symbols
    if language in SYMBOL_LANGUAGES:
        record.facts = parsed.facts()
    if keep_tree:
        record.parsed = parsed
    return record
