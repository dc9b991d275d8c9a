"""Symbols, imports and call references derived from tree-sitter trees; incremental re-parse.

Python is first-class; JavaScript/TypeScript get symbols, imports and calls; every other language
in the pack only parses (syntax checks). Lines are 0-based, byte offsets refer to the UTF-8 text.
"""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from .languages import ParserCache

if TYPE_CHECKING:  # types only: tree_sitter loads on first parse
    from tree_sitter import Node, Query, Tree

FUNCTION, METHOD, CLASS = "function", "method", "class"
DOCSTRING_MEMO_SIZE = 20_000


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


@dataclass(frozen=True)
class Import:
    """One name bound by an import statement.

    `import a.b` -> module "a.b", name None, bound "a"; `from .m import x as y` -> module "m",
    level 1, name "x", bound "y"; JS `import {a as b} from './x'` -> module "./x", name "a".
    """

    module: str
    name: str | None
    bound: str
    line: int
    level: int = 0


@dataclass(frozen=True)
class CallRef:
    """A call (or, in test files, a bare name reference) at a byte offset."""

    name: str
    qualifier: str | None  # "self", "mod", "obj" for `x.name(...)`; None for a bare call
    byte: int
    line: int


@dataclass
class FileFacts:
    """Everything the dependency graph needs from one file (serializable for the AST cache)."""

    imports: list[Import] = field(default_factory=list)
    calls: list[CallRef] = field(default_factory=list)
    names: list[CallRef] = field(default_factory=list)  # identifier references (test files)

    def to_dict(self) -> dict[str, Any]:
        return {
            "imports": [list(vars(i).values()) for i in self.imports],
            "calls": [list(vars(c).values()) for c in self.calls],
            "names": [list(vars(c).values()) for c in self.names],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FileFacts:
        return cls(
            imports=[Import(*row) for row in data.get("imports", [])],
            calls=[CallRef(*row) for row in data.get("calls", [])],
            names=[CallRef(*row) for row in data.get("names", [])],
        )


# --- queries -------------------------------------------------------------------------------

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

_PY_CLASS_TYPES = frozenset({"class_definition"})
_JS_CLASS_TYPES = frozenset({"class_declaration", "abstract_class_declaration", "class"})
_JS_FUNCTION_VALUES = frozenset({"arrow_function", "function_expression"})


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


# --- helpers -------------------------------------------------------------------------------

def _text(source: bytes, node: Node | None) -> str:
    if node is None:  # an absent field (`child_by_field_name`) reads as no text
        return ""
    return source[node.start_byte:node.end_byte].decode("utf-8", errors="replace")


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
        if statement.type == "raise_statement" and "NotImplementedError" in _text(source, statement):
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
    text = _text(source, previous)
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
    if language not in _DEF_QUERIES:
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
        name = _text(source, definition.name_node)
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
            signature = _text(source, node).split("\n", 1)[0]
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


def parse_symbols(text: str, language: str, path: str = "", *,
                  parsers: ParserCache | None = None,
                  queries: Queries | None = None) -> list[Symbol]:
    """The functions, methods and classes of `text` in source order (nested ones included),
    parsed on the spot: for text the index does not hold (library sources, candidates).
    Pass a long-lived `parsers`/`queries` pair when calling often (queries compile once)."""
    if language not in _DEF_QUERIES:
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


# --- imports and calls ---------------------------------------------------------------------

def python_imports(root: Node, source: bytes, *, deep: bool = False) -> list[Import]:
    """The imports of a Python tree at module level, in if/try/with blocks included (`deep`:
    also those inside functions and classes), in source order."""
    imports: list[Import] = []
    for statement in _import_statements(root, ("import_statement", "import_from_statement",
                                                "future_import_statement"), deep=deep):
        line = statement.start_point.row
        if statement.type == "import_statement":
            for child in statement.named_children:
                if child.type == "dotted_name":
                    module = _text(source, child)
                    imports.append(Import(module, None, module.split(".")[0], line))
                elif child.type == "aliased_import":
                    module = _text(source, child.child_by_field_name("name"))
                    alias = _text(source, child.child_by_field_name("alias"))
                    imports.append(Import(module, None, alias, line))
            continue
        if statement.type == "future_import_statement":
            continue
        module_node = statement.child_by_field_name("module_name")
        module_text = _text(source, module_node) if module_node is not None else ""
        level = len(module_text) - len(module_text.lstrip("."))
        module = module_text.lstrip(".")
        names = statement.children_by_field_name("name")
        if any(c.type == "wildcard_import" for c in statement.named_children):
            imports.append(Import(module, "*", "*", line, level))
        for child in names:
            if child.type == "aliased_import":
                name = _text(source, child.child_by_field_name("name"))
                alias = _text(source, child.child_by_field_name("alias"))
                imports.append(Import(module, name, alias, line, level))
            else:
                name = _text(source, child)
                imports.append(Import(module, name, name.split(".")[-1], line, level))
    return imports


def _import_statements(root: Node, types: tuple[str, ...], *, deep: bool = False) -> list[Node]:
    """Import statements at module level or nested in if/try blocks (`deep`: anywhere)."""
    found: list[Node] = []
    stack = list(reversed(root.named_children))
    while stack:
        node = stack.pop()
        if node.type in types:
            found.append(node)
        elif deep or node.type in ("if_statement", "try_statement", "else_clause",
                                   "except_clause", "finally_clause", "block", "elif_clause",
                                   "with_statement", "export_statement"):
            stack.extend(reversed(node.named_children))
    return found


def _js_string(source: bytes, node: Node) -> str:
    return _text(source, node).strip("'\"`")


def _js_imports(root: Node, source: bytes) -> list[Import]:
    imports: list[Import] = []
    for statement in _import_statements(root, ("import_statement", "lexical_declaration",
                                                "variable_declaration")):
        line = statement.start_point.row
        if statement.type == "import_statement":
            source_node = statement.child_by_field_name("source")
            if source_node is None:
                continue
            module = _js_string(source, source_node)
            clause = next((c for c in statement.named_children if c.type == "import_clause"), None)
            if clause is None:
                imports.append(Import(module, None, "", line))
                continue
            for part in clause.named_children:
                if part.type == "identifier":
                    imports.append(Import(module, "default", _text(source, part), line))
                elif part.type == "namespace_import":
                    ident = next((c for c in part.named_children if c.type == "identifier"), None)
                    if ident is not None:
                        imports.append(Import(module, "*", _text(source, ident), line))
                elif part.type == "named_imports":
                    for spec in part.named_children:
                        if spec.type != "import_specifier":
                            continue
                        name = _text(source, spec.child_by_field_name("name"))
                        alias_node = spec.child_by_field_name("alias")
                        alias = _text(source, alias_node) if alias_node is not None else name
                        imports.append(Import(module, name, alias, line))
            continue
        for declarator in statement.named_children:
            if declarator.type != "variable_declarator":
                continue
            value = declarator.child_by_field_name("value")
            name_node = declarator.child_by_field_name("name")
            if value is None or value.type != "call_expression" or name_node is None:
                continue
            function = value.child_by_field_name("function")
            arguments = value.child_by_field_name("arguments")
            if function is None or _text(source, function) != "require" or arguments is None:
                continue
            strings = [a for a in arguments.named_children if a.type == "string"]
            if strings:
                imports.append(Import(_js_string(source, strings[0]), None,
                                      _text(source, name_node), line))
    return imports


def derive_facts(tree: Tree, source: bytes, language: str, queries: Queries, *,
                 with_names: bool = False, captured: list[Node] | None = None) -> FileFacts:
    """Imports and call references of one file (identifier references too when asked)."""
    if language not in _DEF_QUERIES:
        return FileFacts()
    root = tree.root_node
    is_python = language == "python"
    imports = python_imports(root, source) if is_python else _js_imports(root, source)
    calls: list[CallRef] = []
    if captured is None:
        captured = queries.captures("call", language, root)
    for fn in captured:
        name, qualifier = _callee_name(fn, source, is_python)
        if name:
            calls.append(CallRef(name, qualifier, fn.start_byte, fn.start_point.row))
    names: list[CallRef] = []
    if with_names:
        stack = [root]
        while stack:
            node = stack.pop()
            if node.type == "identifier":
                names.append(CallRef(_text(source, node), None, node.start_byte,
                                     node.start_point.row))
            elif node.child_count:
                stack.extend(node.children)
    return FileFacts(imports, calls, names)


def called_names(queries: Queries, language: str, node: Node, source: bytes) -> tuple[str, ...]:
    """Each name or attribute chain called under `node` ("helper", "json.loads"), once, in
    source order; calls of anything else (`f()()`, `x[0]()`) are left out."""
    found: dict[str, None] = {}
    for fn in queries.captures("call", language, node):
        name, qualifier = _callee_name(fn, source, language == "python")
        if not name:
            continue
        dotted = f"{qualifier}.{name}" if qualifier else name
        if _DOTTED_NAME.fullmatch(dotted):
            found.setdefault(dotted, None)
    return tuple(found)


_DOTTED_NAME = re.compile(r"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*")


def _callee_name(fn: Node, source: bytes, is_python: bool) -> tuple[str, str | None]:
    if fn.type == "identifier":
        return _text(source, fn), None
    if is_python and fn.type == "attribute":
        attribute = fn.child_by_field_name("attribute")
        obj = fn.child_by_field_name("object")
        if attribute is not None:
            return _text(source, attribute), (_text(source, obj) if obj is not None else None)
    if not is_python and fn.type == "member_expression":
        prop = fn.child_by_field_name("property")
        obj = fn.child_by_field_name("object")
        if prop is not None:
            return _text(source, prop), (_text(source, obj) if obj is not None else None)
    return "", None
