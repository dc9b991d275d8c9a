"""Syntax errors of a whole file as short, located, human-readable problems.

tree-sitter finds every ERROR/MISSING node in any bundled language; for Python, CPython's own
`compile()` (in process, nothing is executed) gives the first error its familiar message
("unexpected indent", "'(' was never closed") and decides validity, because the tree-sitter
grammar can lag behind the running Python.
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .languages import ParserCache, language_for_path

if TYPE_CHECKING:  # types only: tree_sitter loads on first parse
    from tree_sitter import Node

_OPENERS = {"(": ")", "[": "]", "{": "}"}
_MAX_TOKEN_CHARS = 24


@dataclass(frozen=True)
class SyntaxProblem:
    """One syntax error: 1-based line and column and a short description."""

    line: int
    column: int
    message: str

    def feedback_line(self) -> str:
        """`SYNTAX ERROR at line 12: unexpected indent (column 5)`."""
        return f"SYNTAX ERROR at line {self.line}: {self.message} (column {self.column})"


class SyntaxChecker:
    """Finds syntax errors in a file's text; holds its own parser cache."""

    def __init__(self, parsers: ParserCache | None = None) -> None:
        self._parsers = parsers or ParserCache()

    def check(self, text: str, language: str, *, limit: int = 5) -> list[SyntaxProblem]:
        """Up to `limit` problems, first one first; [] when the text parses cleanly."""
        if language == "python":
            return self._check_python(text, limit)
        return self._tree_sitter_problems(text, language, limit)

    def check_path(self, text: str, path: str, *, limit: int = 5) -> list[SyntaxProblem]:
        """Like `check`, choosing the grammar from the file extension ([] when none applies)."""
        language = language_for_path(path)
        if language is None:
            return []
        return self.check(text, language, limit=limit)

    def _check_python(self, text: str, limit: int) -> list[SyntaxProblem]:
        first = python_compile_error(text)
        if first is None:
            return []
        problems = [first]
        for problem in self._tree_sitter_problems(text, "python", limit):
            if len(problems) >= limit:
                break
            if problem.line == first.line:
                if first.message == "invalid syntax":  # tree-sitter may know more
                    problems[0] = SyntaxProblem(first.line, first.column, problem.message)
            elif all(problem.line != known.line for known in problems):
                problems.append(problem)
        return sorted(problems, key=lambda p: (p.line, p.column))[:limit]

    def _tree_sitter_problems(self, text: str, language: str, limit: int) -> list[SyntaxProblem]:
        try:
            tree = self._parsers.parse(language, text.encode("utf-8", "surrogatepass"))
        except ValueError:
            return []  # no grammar: nothing to say
        if not tree.root_node.has_error:
            return []
        source = text.encode("utf-8", "surrogatepass")
        problems: list[SyntaxProblem] = []
        seen_lines: set[int] = set()
        for node in error_nodes(tree.root_node):
            line = node.start_point[0] + 1
            if line in seen_lines:
                continue
            seen_lines.add(line)
            column = _column(source, node.start_byte, node.start_point[1]) + 1
            problems.append(SyntaxProblem(line, column, _describe(node)))
            if len(problems) >= limit:
                break
        if not problems:  # has_error but no node found (should not happen): still say so
            problems.append(SyntaxProblem(1, 1, "invalid syntax"))
        return problems


def python_compile_error(text: str) -> SyntaxProblem | None:
    """CPython's message for the first syntax error in `text`, or None when it compiles."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(text, type_comments=False)
    except SyntaxError as exc:
        message = exc.msg or "invalid syntax"
        if isinstance(exc, IndentationError) and message.startswith("unindent does not match"):
            message = "unindent does not match any outer indentation level"
        return SyntaxProblem(exc.lineno or 1, max(1, exc.offset or 1), message)
    except (ValueError, RecursionError, MemoryError) as exc:
        return SyntaxProblem(1, 1, f"cannot be parsed: {type(exc).__name__}: {exc}")
    return None


def error_nodes(root: Node) -> Iterator[Node]:
    """ERROR and MISSING nodes of a tree-sitter tree in document order, not descending into an
    ERROR node (the syntax check, and any caller that asks where a text stops parsing)."""
    stack = [root]
    while stack:
        node = stack.pop()
        if node.is_missing or node.type == "ERROR":
            yield node
            continue
        if node.has_error:
            stack.extend(reversed(node.children))


def _column(source: bytes, start_byte: int, byte_column: int) -> int:
    """tree-sitter columns are bytes; report code points."""
    line_start = start_byte - byte_column
    return len(source[line_start:start_byte].decode("utf-8", "replace"))


def _token_text(node: Node) -> str:
    raw = (node.text or b"").decode("utf-8", "replace").strip()
    first = raw.splitlines()[0] if raw else ""
    return first[:_MAX_TOKEN_CHARS]


def _describe(node: Node) -> str:
    """A short description from the node's context: missing token, unclosed bracket, stray token."""
    if node.is_missing:
        kind = node.type
        return f"missing '{kind}'" if not node.is_named else f"missing {kind.replace('_', ' ')}"
    leaves = list(_leaves(node))
    depth: list[str] = []
    for leaf in leaves:
        if leaf.type in _OPENERS:
            depth.append(leaf.type)
        elif depth and leaf.type == _OPENERS[depth[-1]]:
            depth.pop()
    if depth:
        return f"'{depth[-1]}' was never closed"
    if leaves and leaves[0].type == "indent":
        return "unexpected indent"
    if not leaves:
        return "invalid syntax"
    token = _token_text(leaves[0]) or leaves[0].type
    return f"invalid syntax near '{token}'"


def _leaves(node: Node) -> Iterator[Node]:
    if node.child_count == 0:
        yield node
        return
    for child in node.children:
        yield from _leaves(child)
