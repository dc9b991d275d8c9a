"""Symbols derived from tree-sitter trees: which nodes are definitions in each language
(Python; JavaScript/TypeScript), their names qualified by the enclosing scopes ("Class.method"),
signatures, docstrings and whether they are stubs; `parse_symbols`/`function_at` for text the
index does not hold (library sources, candidates).
"""

from __future__ import annotations

import ast
import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .languages import ParserCache
from .queries import DEF_LANGUAGES, Queries, node_text
from .symbols import CLASS, FUNCTION, METHOD, Symbol, enclosing_function, encode_source

if TYPE_CHECKING:  # types only: tree_sitter loads on first parse
    from tree_sitter import Node, Tree

DOCSTRING_MEMO_SIZE = 20_000

_PY_CLASS_TYPES = frozenset({"class_definition"})
_JS_CLASS_TYPES = frozenset({"class_declaration", "abstract_class_declaration", "class"})
_JS_FUNCTION_VALUES = frozenset({"arrow_function", "function_expression"})


# --- per language: docstrings and stubs ----------------------------------------------------

def _leading_whitespace(source: bytes, node: Node) -> str:
    line_start = node.start_byte - node.start_point.column
    line_end = source.find(b"\n", line_start)
    line = source[line_start:line_end if line_end >= 0 else len(source)]
    stripped = line.lstrip(b" \t")
    return line[: len(line) - len(stripped)].decode("utf-8", errors="replace")


def _python_string_value(text: str) -> str:
    if text[:1] in ("'", '"') and "\\" not in text:
        # a plain literal without prefix or escapes is its own value: no parser needed (the
        # common docstring; literal_eval compiles each one, a tenth of the index build)
        quote = text[:3] if text[:3] in ('"""', "'''") else text[:1]
        if len(text) >= 2 * len(quote) and text.endswith(quote):
            return inspect.cleandoc(text[len(quote):-len(quote)])
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        value = text.strip("rbuRBUfF").strip("\"'")
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return inspect.cleandoc(str(value))


def _python_docstring(source: bytes, body: Node, memo: dict[bytes, str]) -> str:
    for child in body.named_children:
        if child.type == "comment":
            continue
        if child.type == "expression_statement" and child.named_child_count == 1:
            child = child.named_children[0]  # older grammars wrap expressions in a statement
        if child.type not in ("string", "concatenated_string"):
            return ""
        raw = source[child.start_byte:child.end_byte]
        value = memo.get(raw)
        if value is None:
            text = raw.decode("utf-8", errors="replace")
            value = _python_string_value(text if child.type == "string" else f"({text})")
            if len(memo) >= DOCSTRING_MEMO_SIZE:
                memo.clear()
            memo[raw] = value
        return value
    return ""


def _python_is_stub(source: bytes, body: Node) -> bool:
    statements = [c for c in body.named_children if c.type != "comment"]
    if not statements:
        return True  # no body yet: a definition being written
    for statement in statements:
        if statement.type == "pass_statement":
            continue
        inner = statement
        if statement.type == "expression_statement" and statement.named_child_count == 1:
            inner = statement.named_children[0]
        if inner.type in ("string", "ellipsis", "concatenated_string"):
            continue
        if statement.type == "raise_statement" and "NotImplementedError" in node_text(source, statement):
            continue
        return False
    return True


def _js_docstring(source: bytes, node: Node) -> str:
    anchor = node
    while anchor.parent is not None and anchor.parent.type in ("export_statement",):
        anchor = anchor.parent
    previous = anchor.prev_sibling
    if previous is None or previous.type != "comment":
        return ""
    if previous.end_point.row + 1 < anchor.start_point.row:
        return ""
    text = node_text(source, previous)
    if text.startswith("/*"):
        lines = text[2:-2].splitlines()
        cleaned = [line.strip().lstrip("*").strip() for line in lines]
        return "\n".join(line for line in cleaned if line).strip()
    return text.lstrip("/").strip()


def _js_is_stub(source: bytes, body: Node | None) -> bool:
    if body is None or body.type != "statement_block":
        return False
    statements = [c for c in body.named_children if c.type != "comment"]
    if not statements:
        return True
    return len(statements) == 1 and statements[0].type == "throw_statement"


# --- symbol derivation ---------------------------------------------------------------------

@dataclass
class _Def:
    """A captured definition node with the node that spans it and its body."""

    node: Node  # the node whose range is the symbol (def / declaration)
    name_node: Node
    body: Node | None
    scope_ids: tuple[int, ...]  # node ids that identify this scope for nested definitions
    kind_hint: str  # "class" or "function"


def _python_def(node: Node) -> _Def | None:
    name = node.child_by_field_name("name")
    body = node.child_by_field_name("body")
    if name is None or body is None:
        return None
    kind = CLASS if node.type in _PY_CLASS_TYPES else FUNCTION
    return _Def(node, name, body, (node.id,), kind)


def _js_def(node: Node) -> _Def | None:
    if node.type == "variable_declarator":
        value = node.child_by_field_name("value")
        name = node.child_by_field_name("name")
        if value is None or name is None or value.type not in _JS_FUNCTION_VALUES:
            return None
        outer = node
        parent = node.parent
        if parent is not None and parent.type in ("lexical_declaration", "variable_declaration") \
                and parent.named_child_count == 1:
            outer = parent
        return _Def(outer, name, value.child_by_field_name("body"),
                    (node.id, value.id, outer.id), FUNCTION)
    name = node.child_by_field_name("name")
    body = node.child_by_field_name("body")
    if name is None:
        return None
    kind = CLASS if node.type in _JS_CLASS_TYPES else FUNCTION
    return _Def(node, name, body, (node.id,), kind)


def _decorated(node: Node) -> Node:
    """A Python definition's decorated_definition parent, or the node itself."""
    parent = node.parent
    return parent if parent is not None and parent.type == "decorated_definition" else node


def top_level_ancestor(node: Node) -> Node:
    """The child of the root node that contains `node`."""
    current = node
    while current.parent is not None and current.parent.parent is not None:
        current = current.parent
    return current


def derive_symbols(tree: Tree, source: bytes, language: str, path: str, queries: Queries,
                   spans: list[tuple[int, int]] | None = None,
                   captured: list[Node] | None = None,
                   inner: tuple[int, int] | None = None) -> list[tuple[tuple[int, int], Symbol]]:
    """Symbols of the file, each with the (start, end) bytes of its top-level node.

    With `spans`, only definitions inside those top-level node spans are derived. With `inner`
    (a byte range inside one of them), only the definitions inside it and those enclosing it
    (whose ranges and qualified names it decides) are.
    """
    if language not in DEF_LANGUAGES:
        return []
    is_python = language == "python"
    make_def = _python_def if is_python else _js_def
    root = tree.root_node
    if inner is not None:  # every definition inside, enclosing or touching the range
        low, high = inner
        nodes = [n for n in queries.captures("def", language, root, max(0, low - 1), high + 1)
                 if n.end_byte >= low and _decorated(n).start_byte <= high]
    elif spans is not None:  # one pass over their extent; the loop below keeps the spans'
        nodes = queries.captures("def", language, root, min(a for a, _ in spans),
                                 max(b for _, b in spans)) if spans else []
    elif captured is not None:
        nodes = sorted(captured, key=lambda n: (n.start_byte, -n.end_byte))
    else:
        nodes = queries.captures("def", language, root)
    wanted = set(spans or ())
    seen: set[int] = set()
    scopes: dict[int, tuple[str, str]] = {}  # node id -> (qualified name, kind)
    result: list[tuple[tuple[int, int], Symbol]] = []
    for def_node in nodes:
        if def_node.id in seen:
            continue
        seen.add(def_node.id)
        definition = make_def(def_node)
        if definition is None:
            continue
        node = definition.node
        top = top_level_ancestor(node)
        top_span = (top.start_byte, top.end_byte)
        if spans is not None and top_span not in wanted:
            continue
        parent_name: str | None = None
        parent_kind = ""
        ancestor = node.parent
        while ancestor is not None:
            found = scopes.get(ancestor.id)
            if found is not None:
                parent_name, parent_kind = found
                break
            ancestor = ancestor.parent
        name = node_text(source, definition.name_node)
        qualified = f"{parent_name}.{name}" if parent_name else name
        if definition.kind_hint == CLASS:
            kind = CLASS
        elif parent_kind == CLASS:
            kind = METHOD
        else:
            kind = FUNCTION
        for scope_id in definition.scope_ids:
            scopes[scope_id] = (qualified, kind)
        decorated = _decorated(node) if is_python else node
        body = definition.body
        if body is not None:
            body_start_byte, body_start_line = body.start_byte, body.start_point.row
            header_end = body.start_byte
            if is_python:
                for child in node.children:
                    if child.type == ":" and child.end_byte <= body.start_byte:
                        header_end = child.end_byte
            signature = source[node.start_byte:header_end].decode("utf-8", "replace").rstrip()
            if not is_python and signature.endswith("=>"):
                signature = signature[:-2].rstrip()
        else:
            body_start_byte, body_start_line = node.end_byte, node.end_point.row
            signature = node_text(source, node).split("\n", 1)[0]
        if is_python:
            docstring = _python_docstring(source, body, queries.docstrings) \
                if body is not None else ""
            is_stub = _python_is_stub(source, body) if body is not None else False
        else:
            docstring = _js_docstring(source, node)
            is_stub = _js_is_stub(source, body)
        symbol = Symbol(
            name=name,
            qualified_name=qualified,
            kind=kind,
            path=path,
            start_line=node.start_point.row,
            end_line=node.end_point.row,
            start_byte=node.start_byte,
            end_byte=node.end_byte,
            signature=signature,
            docstring=docstring,
            body_start_line=body_start_line,
            body_start_byte=body_start_byte,
            indent=_leading_whitespace(source, node),
            parent=parent_name,
            is_stub=is_stub,
            decorated_start_line=decorated.start_point.row,
            decorated_start_byte=decorated.start_byte,
            language=language,
        )
        result.append((top_span, symbol))
    return result


# --- text the index does not hold ----------------------------------------------------------

def parse_symbols(text: str, language: str, path: str = "", *,
                  parsers: ParserCache | None = None,
                  queries: Queries | None = None) -> list[Symbol]:
    """The functions, methods and classes of `text` in source order (nested ones included),
    parsed on the spot: for text the index does not hold (library sources, candidates).
    Pass a long-lived `parsers`/`queries` pair when calling often (queries compile once)."""
    if language not in DEF_LANGUAGES:
        return []
    parsers = parsers if parsers is not None else ParserCache()
    queries = queries if queries is not None else Queries(parsers)
    source = encode_source(text)
    tree = parsers.parse(language, source)
    symbols = [symbol for _, symbol in derive_symbols(tree, source, language, path, queries)]
    symbols.sort(key=lambda s: (s.start_byte, -s.end_byte))
    return symbols


def function_at(text: str, language: str, line: int, column: int, path: str = "", *,
                parsers: ParserCache | None = None,
                queries: Queries | None = None) -> Symbol | None:
    """`enclosing_function` for text the index does not hold (parsed on the spot)."""
    symbols = parse_symbols(text, language, path, parsers=parsers, queries=queries)
    return enclosing_function(symbols, encode_source(text), line, column)
