"""Python source facts the knowledge store needs, read with tree-sitter (no import, no execution).

Used for library sources (documentation fragments), for the project's own files when no index
symbols are at hand, and for candidate text (imports and calls of a target). tree-sitter is
error-tolerant, so a candidate that does not parse still yields its imports and calls.

Which definitions a module holds, their names, ranges, docstrings and stubs, and its imports
come from the index's one finder (`index.symbols`, derived by `index.definitions`, imports by
`index.facts`); this module adds what only the knowledge store asks about a definition
(parameters, decorators, bases, the calls in its body).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..index.definitions import derive_symbols
from ..index.facts import Import, called_names, python_imports
from ..index.languages import ParserCache
from ..index.queries import Queries
from ..index.symbols import CLASS, Symbol, encode_source

if TYPE_CHECKING:  # types only: tree_sitter loads on first parse
    from tree_sitter import Node, Tree


@functools.cache
def _tools() -> tuple[ParserCache, Queries]:
    """One parser cache (a parser per thread) and compiled queries for the process: mining
    calls this per file, and compiling the queries each time would cost more than parsing."""
    parsers = ParserCache()
    return parsers, Queries(parsers)


def _encode(source: str | bytes) -> bytes:
    return encode_source(source) if isinstance(source, str) else source


def parse(source: str | bytes) -> Tree:
    """The tree-sitter tree of Python `source`."""
    return _tools()[0].parse("python", _encode(source))


@dataclass(frozen=True)
class Definition:
    """One function, method or class, as the source spells it."""

    name: str
    qualified_name: str
    kind: str  # "function" | "method" | "class"
    start_line: int  # 0-based, first decorator line included
    end_line: int  # 0-based, inclusive
    signature: str  # header without the trailing colon: "def loads(s, *, cls=None)"
    docstring: str
    decorators: tuple[str, ...]
    params: tuple[str, ...]  # parameter names without self/cls, stars kept: ("a", "*args")
    annotated: int  # how many parameters carry an annotation
    returns: str  # return annotation text ("" when none)
    is_async: bool
    is_stub: bool  # body is only a docstring, `pass` or `...`
    calls: tuple[str, ...]  # called names and attribute chains ("json.loads", "helper")
    text: str  # the whole definition, decorators included
    bases: tuple[str, ...] = ()  # classes only


@dataclass
class ImportFact:
    """`import a.b as c` -> ImportFact(module="a.b", name="", alias="c")."""

    module: str  # dotted, leading dots kept for relative imports
    name: str  # imported member for `from m import name` ("" for `import m`)
    alias: str  # the local name it binds
    line: int  # 0-based


@dataclass
class ModuleFacts:
    definitions: list[Definition] = field(default_factory=list)
    imports: list[ImportFact] = field(default_factory=list)
    exports: dict[str, str] = field(default_factory=dict)  # `__all__`-less re-exports: name -> module


def _text(node: Node | None) -> str:
    return (node.text or b"").decode("utf-8", "surrogateescape") if node is not None else ""


def _params(parameters: Node | None) -> tuple[tuple[str, ...], int]:
    names: list[str] = []
    annotated = 0
    if parameters is None:
        return (), 0
    for param in parameters.named_children:
        kind = param.type
        if kind == "identifier":
            name = _text(param)
        elif kind in ("typed_parameter", "typed_default_parameter", "default_parameter"):
            ident = param.child_by_field_name("name") or next(
                (c for c in param.named_children
                 if c.type in ("identifier", "list_splat_pattern", "dictionary_splat_pattern")),
                None)
            name = _text(ident)
            if kind != "default_parameter":
                annotated += 1
        elif kind in ("list_splat_pattern", "dictionary_splat_pattern"):
            name = _text(param)
        elif kind in ("keyword_separator", "positional_separator"):
            continue
        else:
            name = _text(param)
        if name in ("self", "cls"):
            continue
        names.append(name)
    return tuple(names), annotated


def _definition_node(root: Node, symbol: Symbol) -> Node | None:
    """The function_definition / class_definition node the index found `symbol` at."""
    node = root.descendant_for_byte_range(symbol.start_byte, symbol.end_byte)
    while node is not None and not (node.type in ("function_definition", "class_definition")
                                    and node.start_byte == symbol.start_byte):
        node = node.parent
    return node


def _definition(symbol: Symbol, node: Node, data: bytes, source_lines: list[str]) -> Definition:
    """The knowledge store's view of one definition the index found."""
    outer = node.parent if node.parent is not None \
        and node.parent.type == "decorated_definition" else node
    decorators = tuple(_text(d).lstrip("@").strip() for d in outer.named_children
                       if d.type == "decorator") if outer is not node else ()
    header = re.sub(r"\s+", " ", re.sub(r"\s*:\s*$", "", symbol.signature))
    start = symbol.decorated_start_line
    end = outer.end_point[0] if outer.end_point[1] > 0 else outer.end_point[0] - 1
    text = "\n".join(source_lines[start:end + 1])
    body = node.child_by_field_name("body")
    if symbol.kind == CLASS:
        superclasses = node.child_by_field_name("superclasses")
        bases = tuple(_text(b) for b in superclasses.named_children) if superclasses else ()
        return Definition(
            name=symbol.name, qualified_name=symbol.qualified_name, kind=CLASS,
            start_line=start, end_line=end, signature=header, docstring=symbol.docstring,
            decorators=decorators, params=(), annotated=0, returns="", is_async=False,
            is_stub=symbol.is_stub, calls=(), text=text, bases=bases)
    params, annotated = _params(node.child_by_field_name("parameters"))
    queries = _tools()[1]
    return Definition(
        name=symbol.name, qualified_name=symbol.qualified_name, kind=symbol.kind,
        start_line=start, end_line=end, signature=header, docstring=symbol.docstring,
        decorators=decorators, params=params, annotated=annotated,
        returns=_text(node.child_by_field_name("return_type")),
        is_async=header.startswith("async "), is_stub=symbol.is_stub,
        calls=called_names(queries, "python", body, data) if body is not None else (),
        text=text)


def _import_fact(item: Import) -> ImportFact:
    return ImportFact("." * item.level + item.module, item.name or "", item.bound, item.line)


def module_facts(source: str) -> ModuleFacts:
    """Definitions (module level, classes and their methods, nested classes' too; not the
    functions inside functions) and imports of one Python module."""
    parsers, queries = _tools()
    data = _encode(source)
    tree = parsers.parse("python", data)
    lines = source.splitlines()
    symbols = [symbol for _, symbol in derive_symbols(tree, data, "python", "", queries)]
    symbols.sort(key=lambda s: (s.start_byte, -s.end_byte))
    kinds = {s.qualified_name: s.kind for s in symbols}
    facts = ModuleFacts()
    for symbol in symbols:
        # a definition inside a function is that function's business, not the module's
        owner = symbol.parent
        if owner is not None and not (kinds.get(owner) == CLASS and _reachable(owner, kinds)):
            continue
        node = _definition_node(tree.root_node, symbol)
        if node is not None:
            facts.definitions.append(_definition(symbol, node, data, lines))
    facts.imports = [_import_fact(item) for item in python_imports(tree.root_node, data)]
    for item in facts.imports:
        if item.name and item.name != "*":
            facts.exports[item.alias] = item.module
    return facts


def _reachable(qualified: str, kinds: dict[str, str]) -> bool:
    """True when every enclosing scope of `qualified` is a class (or the module)."""
    parts = qualified.split(".")
    return all(kinds.get(".".join(parts[:n])) == CLASS for n in range(1, len(parts)))


def calls_in_source(source: str) -> tuple[str, ...]:
    """Every called name or attribute chain in `source` (a fragment or a whole file)."""
    parsers, queries = _tools()
    data = _encode(source)
    return called_names(queries, "python", parsers.parse("python", data).root_node, data)


def imports_in_source(source: str, *, deep: bool = False) -> list[ImportFact]:
    """Module-level imports (`deep`: also those inside functions and classes)."""
    data = _encode(source)
    tree = _tools()[0].parse("python", data)
    return [_import_fact(item) for item in python_imports(tree.root_node, data, deep=deep)]
