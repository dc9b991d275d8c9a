"""Compiled tree-sitter queries per language: the definition and call patterns of the languages
whose symbols the index derives (Python, JavaScript, TypeScript, TSX), compiled once per
`Queries`, and `node_text`, the text of a node that every reader of a tree uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .languages import ParserCache

if TYPE_CHECKING:  # types only: tree_sitter loads on first parse
    from tree_sitter import Node, Query

_DEF_QUERIES = {
    "python": "[(function_definition) (class_definition)] @def",
    "javascript": """[
        (function_declaration) (generator_function_declaration) (class_declaration)
        (method_definition)
        (variable_declarator name: (identifier) value: [(arrow_function) (function_expression)])
    ] @def""",
}
_DEF_QUERIES["typescript"] = _DEF_QUERIES["javascript"].replace(
    "(class_declaration)",
    "(class_declaration) (abstract_class_declaration) (abstract_method_signature)")
_DEF_QUERIES["tsx"] = _DEF_QUERIES["typescript"]

DEF_LANGUAGES = frozenset(_DEF_QUERIES)

_CALL_QUERIES = {
    "python": "(call function: (_) @fn)",
    "javascript": "[(call_expression function: (_) @fn) (new_expression constructor: (_) @fn)]",
}
_CALL_QUERIES["typescript"] = _CALL_QUERIES["tsx"] = _CALL_QUERIES["javascript"]


class Queries:
    """Compiled tree-sitter queries per language (compiled once per CodeIndex)."""

    def __init__(self, parsers: ParserCache) -> None:
        self._parsers = parsers
        self._compiled: dict[tuple[str, str], Query] = {}
        # docstring literal -> cleaned text: a keystroke re-derives the definitions around it,
        # whose docstrings did not change (cleandoc was a sixth of a didChange)
        self.docstrings: dict[bytes, str] = {}

    def get(self, kind: str, language: str) -> Query:
        key = (kind, language)
        query = self._compiled.get(key)
        if query is None:
            from tree_sitter import Query

            if kind == "all":  # definitions and calls in one pass over the tree
                source = _DEF_QUERIES[language] + "\n" + _CALL_QUERIES[language]
            else:
                source = (_DEF_QUERIES if kind == "def" else _CALL_QUERIES)[language]
            query = self._compiled[key] = Query(self._parsers.language(language), source)
        return query

    def captures(self, kind: str, language: str, node: Node, start: int | None = None,
                 end: int | None = None) -> list[Node]:
        found = self.captures_by_name(kind, language, node, start, end)
        nodes: list[Node] = [n for nodes in found.values() for n in nodes]
        nodes.sort(key=lambda n: (n.start_byte, -n.end_byte))
        return nodes

    def captures_by_name(self, kind: str, language: str, node: Node, start: int | None = None,
                         end: int | None = None) -> dict[str, list[Node]]:
        from tree_sitter import QueryCursor

        cursor = QueryCursor(self.get(kind, language))
        if start is not None and end is not None:
            cursor.set_byte_range(start, end)
        return cursor.captures(node)


def node_text(source: bytes, node: Node | None) -> str:
    """The text of `node` in `source` ("" for an absent node)."""
    if node is None:  # an absent field (`child_by_field_name`) reads as no text
        return ""
    return source[node.start_byte:node.end_byte].decode("utf-8", errors="replace")

