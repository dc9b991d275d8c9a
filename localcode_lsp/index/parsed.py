"""One parsed file: text, tree and symbols, kept current by incremental tree-sitter edits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .definitions import derive_symbols
from .facts import FileFacts, derive_facts
from .languages import ParserCache
from .queries import DEF_LANGUAGES, Queries
from .symbols import CLASS, FUNCTION, METHOD, Symbol

if TYPE_CHECKING:  # types only: tree_sitter loads on first parse
    from tree_sitter import Node


@dataclass(frozen=True)
class ByteEdit:
    """An edit in tree-sitter terms: byte offsets and (row, byte column) points."""

    start_byte: int
    old_end_byte: int
    new_end_byte: int
    start_point: tuple[int, int]
    old_end_point: tuple[int, int]
    new_end_point: tuple[int, int]


def _point(source: bytes, offset: int) -> tuple[int, int]:
    row = source.count(b"\n", 0, offset)
    line_start = source.rfind(b"\n", 0, offset) + 1
    return row, offset - line_start


def diff_edit(old: bytes, new: bytes) -> ByteEdit | None:
    """The single edit turning `old` into `new` (common prefix and suffix kept); None if equal."""
    if old == new:
        return None
    limit = min(len(old), len(new))
    low, high = 0, limit  # the longest common prefix, by binary search over memcmp
    while low < high:
        middle = (low + high + 1) // 2
        if old[:middle] == new[:middle]:
            low = middle
        else:
            high = middle - 1
    prefix = low
    low, high = 0, limit - prefix
    while low < high:
        middle = (low + high + 1) // 2
        if old[len(old) - middle:] == new[len(new) - middle:]:
            low = middle
        else:
            high = middle - 1
    suffix = low
    start, old_end, new_end = prefix, len(old) - suffix, len(new) - suffix
    return ByteEdit(start, old_end, new_end, _point(old, start), _point(old, old_end),
                    _point(new, new_end))


class ParsedFile:
    """Text, tree and symbols of one file; facts (imports, calls) derived on demand."""

    def __init__(self, path: str, language: str, source: bytes, parsers: ParserCache,
                 queries: Queries, *, with_names: bool = False) -> None:
        self.path = path
        self.language = language
        self.source = source
        self._parsers = parsers
        self._queries = queries
        self._with_names = with_names
        self.tree = parsers.parse(language, source)
        self._facts: FileFacts | None = None
        if language in DEF_LANGUAGES:  # one query pass for definitions and calls
            found = queries.captures_by_name("all", language, self.tree.root_node)
            self._groups = self._derive(None, found.get("def", []))
            self._facts = derive_facts(self.tree, source, language, queries,
                                       with_names=with_names, captured=found.get("fn", []))
        else:
            self._groups = {}
        self.symbols: list[Symbol] = self._flatten()
        self.incremental_updates = 0
        self.derived_last_edit = len(self.symbols)  # symbols the last edit derived anew

    @property
    def has_error(self) -> bool:
        return bool(self.tree.root_node.has_error)

    def _derive(self, spans: list[tuple[int, int]] | None,
                captured: list[Node] | None = None) -> dict[tuple[int, int], list[Symbol]]:
        groups: dict[tuple[int, int], list[Symbol]] = {}
        for span, symbol in derive_symbols(self.tree, self.source, self.language, self.path,
                                           self._queries, spans, captured):
            groups.setdefault(span, []).append(symbol)
        return groups

    def _flatten(self) -> list[Symbol]:
        symbols = [s for group in self._groups.values() for s in group]
        symbols.sort(key=lambda s: (s.start_byte, -s.end_byte))
        return symbols

    def facts(self) -> FileFacts:
        if self._facts is None:
            self._facts = derive_facts(self.tree, self.source, self.language, self._queries,
                                       with_names=self._with_names)
        return self._facts

    def replace_text(self, new_source: bytes) -> bool:
        """Bring the file to `new_source` with one incremental edit. False when unchanged."""
        edit = diff_edit(self.source, new_source)
        if edit is None:
            return False
        self.apply_edit(edit, new_source)
        return True

    def apply_edit(self, edit: ByteEdit, new_source: bytes) -> None:
        """Apply a known edit: `tree.edit` + reparse with the old tree, then re-derive only the
        symbols that the edit or the parser's changed ranges touch: the top-level nodes they
        touch, or in Python, when all changes fall inside one statement of a class or function
        body, only that statement's definitions and the definitions enclosing it."""
        old_tree = self.tree
        old_tree.edit(
            start_byte=edit.start_byte,
            old_end_byte=edit.old_end_byte,
            new_end_byte=edit.new_end_byte,
            start_point=edit.start_point,
            old_end_point=edit.old_end_point,
            new_end_point=edit.new_end_point,
        )
        new_tree = self._parsers.parse(self.language, new_source, old_tree)
        changed = [(r.start_byte, r.end_byte) for r in old_tree.changed_ranges(new_tree)]
        changed.append((edit.start_byte, edit.new_end_byte))
        byte_delta = edit.new_end_byte - edit.old_end_byte
        line_delta = edit.new_end_point[0] - edit.old_end_point[0]
        old_groups = self._groups
        groups: dict[tuple[int, int], list[Symbol]] = {}
        dirty: list[tuple[int, int]] = []
        refine: list[tuple[tuple[int, int], tuple[int, int], list[Symbol]]] = []
        gap_start = 0
        for top in new_tree.root_node.children:
            start, end = top.start_byte, top.end_byte
            # The gap before a node counts as part of it: a docstring comment (JS) or the
            # indentation of its first line lives there.
            touched = any(a <= end and gap_start <= b for a, b in changed)
            if top.type != "comment":
                gap_start = end
            # An untouched top-level node has the same text and structure as before, so its
            # symbols (none when it had no group) carry over, shifted when after the edit.
            if not touched and end < edit.start_byte:
                previous = old_groups.get((start, end))
                if previous is not None:
                    groups[(start, end)] = previous
                continue
            if not touched and start > edit.new_end_byte \
                    and top.start_point.row > edit.new_end_point[0]:
                previous = old_groups.get((start - byte_delta, end - byte_delta))
                if previous is not None:
                    groups[(start, end)] = [s.shifted(byte_delta, line_delta) for s in previous]
                continue
            previous = old_groups.get((start, end - byte_delta))
            inner = self._inner_span(top, changed) if previous is not None and \
                start <= edit.start_byte and edit.new_end_byte <= end else None
            if inner is None or previous is None:
                dirty.append((start, end))
            else:
                refine.append(((start, end), inner, previous))
        self.tree = new_tree
        self.source = new_source
        self.derived_last_edit = 0
        for span, inner, previous in refine:
            group = self._rederive_inside(span, inner, previous, edit)
            if group is None:
                dirty.append(span)
            else:
                groups[span] = group
        if dirty:
            fresh = self._derive(dirty)
            self.derived_last_edit += sum(len(g) for g in fresh.values())
            groups.update(fresh)
        self._groups = groups
        self.symbols = self._flatten()
        self._facts = None
        self.incremental_updates += 1

    def _inner_span(self, top: Node, changed: list[tuple[int, int]]) -> tuple[int, int] | None:
        """The innermost statement that holds every change, descending through Python class and
        function bodies and through ERROR nodes (an unclosed bracket can turn the rest of the
        file into one), or None."""
        if self.language != "python":
            return None
        low = min(a for a, _ in changed)
        high = max(b for _, b in changed)
        node, found = top, None
        while True:
            if node.type == "ERROR":
                children = node.children
            else:
                definition = _definition_of(node)
                body = definition.child_by_field_name("body") if definition is not None else None
                if body is None or not (body.start_byte <= low and high <= body.end_byte):
                    break
                children = body.children
            child = next((c for c in children if c.start_byte <= low and high <= c.end_byte),
                         None)
            if child is None:
                break
            found = node = child
        return None if found is None else (found.start_byte, found.end_byte)

    def _rederive_inside(self, span: tuple[int, int], inner: tuple[int, int],
                         previous: list[Symbol], edit: ByteEdit) -> list[Symbol] | None:
        """The group of `span` after an edit inside `inner`: symbols before it kept, after it
        shifted, inside it and enclosing it derived again. None when a symbol after it starts
        on the edited line (its indentation may have changed): derive the whole span then."""
        byte_delta = edit.new_end_byte - edit.old_end_byte
        line_delta = edit.new_end_point[0] - edit.old_end_point[0]
        # `inner` in the old text: bytes before the edit did not move, those after it moved by
        # byte_delta. Old symbols overlapping or touching it (inside, enclosing, grown or cut
        # by error recovery: a comment typed at a function's last byte extends the function)
        # are dropped, and the new ones overlapping or touching it derived; the others lie
        # wholly before or after it, where no change reached.
        old_low, old_high = inner[0], inner[1] - byte_delta
        kept: list[Symbol] = []
        for symbol in previous:
            start, end = symbol.decorated_start_byte, symbol.end_byte
            if end < old_low:
                kept.append(symbol)
            elif start > old_high:
                if symbol.decorated_start_line <= edit.old_end_point[0]:
                    return None
                kept.append(symbol.shifted(byte_delta, line_delta))
        fresh = [symbol for _, symbol in derive_symbols(
            self.tree, self.source, self.language, self.path, self._queries, [span],
            inner=inner)]
        group = kept + fresh
        if not _names_still_hold(group, set(map(id, kept))):
            return None
        self.derived_last_edit += len(fresh)
        return group


_DEFINITION_TYPES = frozenset({"class_definition", "function_definition"})


def _names_still_hold(group: list[Symbol], kept: set[int]) -> bool:
    """Whether every kept symbol still has the parent its qualified name and kind say: an edit
    to an enclosing header (`class Cart:` deleted, a class turned into a function) renames
    symbols the edit never touched."""
    ordered = sorted(group, key=lambda s: (s.decorated_start_byte, -s.end_byte))
    stack: list[Symbol] = []
    for symbol in ordered:
        while stack and stack[-1].end_byte < symbol.end_byte:
            stack.pop()
        if id(symbol) in kept:
            container = stack[-1] if stack else None
            parent = container.qualified_name if container is not None else None
            kind = symbol.kind if symbol.kind == CLASS else (
                METHOD if container is not None and container.kind == CLASS else FUNCTION)
            if symbol.parent != parent or symbol.kind != kind:
                return False
        stack.append(symbol)
    return True


def _definition_of(node: Node) -> Node | None:
    """The class or function definition that `node` is (through a decorator), or None."""
    found = node.child_by_field_name("definition") if node.type == "decorated_definition" \
        else node
    return found if found is not None and found.type in _DEFINITION_TYPES else None
