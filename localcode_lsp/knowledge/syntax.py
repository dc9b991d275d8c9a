"""Python source facts the knowledge store needs, read with tree-sitter (no import, no execution).

Used for library sources (documentation fragments), for the project's own files when no index
symbols are at hand, and for candidate text (imports and calls of a target). tree-sitter is
error-tolerant, so a candidate that does not parse still yields its imports and calls.
"""

from __future__ import annotations

import ast
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

_parser_local = threading.local()  # tree-sitter parsers are not thread-safe; one per thread


def _parser() -> Any:
    parser = getattr(_parser_local, "parser", None)
    if parser is None:
        from tree_sitter_language_pack import get_parser

        parser = get_parser("python")
        _parser_local.parser = parser
    return parser


def parse(source: str | bytes) -> Any:
    """The tree-sitter tree of Python `source`."""
    data = source.encode("utf-8", "surrogateescape") if isinstance(source, str) else source
    return _parser().parse(data)


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


def _text(node: Any) -> str:
    return node.text.decode("utf-8", "surrogateescape") if node is not None else ""


def _docstring_of(block: Any) -> str:
    if block is None:
        return ""
    for child in block.named_children:
        node = child
        if node.type == "expression_statement" and node.named_child_count == 1:
            node = node.named_children[0]
        if node.type == "string":
            raw = _text(node)
            try:
                value = ast.literal_eval(raw)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                value = raw.strip("\"'rbuRBU")
            return value if isinstance(value, str) else ""
        if node.type == "comment":
            continue
        return ""
    return ""


def _is_stub(block: Any) -> bool:
    if block is None:
        return True
    for child in block.named_children:
        node = child
        if node.type == "comment" or node.type == "pass_statement":
            continue
        if node.type == "expression_statement" and node.named_child_count == 1:
            node = node.named_children[0]
        if node.type in ("string", "ellipsis"):
            continue
        if node.type == "raise_statement" and "NotImplementedError" in _text(node):
            continue
        return False
    return True


def _calls_in(node: Any) -> tuple[str, ...]:
    found: list[str] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type == "call":
            function = current.child_by_field_name("function")
            if function is not None and function.type in ("identifier", "attribute"):
                name = _text(function)
                if re.fullmatch(r"[A-Za-z_][\w.]*", name) and name not in found:
                    found.append(name)
        stack.extend(reversed(current.children))
    return tuple(found)


def _params(parameters: Any) -> tuple[tuple[str, ...], int]:
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


def _walk_definitions(node: Any, scope: list[str], in_class: bool,
                      source_lines: list[str]) -> Iterator[Definition]:
    for child in node.named_children:
        decorators: list[str] = []
        definition = child
        if child.type == "decorated_definition":
            decorators = [_text(d).lstrip("@").strip() for d in child.named_children
                          if d.type == "decorator"]
            definition = child.child_by_field_name("definition") or child.named_children[-1]
        if definition.type not in ("function_definition", "class_definition"):
            continue
        name = _text(definition.child_by_field_name("name"))
        if not name:
            continue
        body = definition.child_by_field_name("body")
        header_end = body.start_byte if body is not None else definition.end_byte
        header = definition.text[: header_end - definition.start_byte].decode(
            "utf-8", "surrogateescape").rstrip()
        header = re.sub(r"\s*:\s*$", "", header)
        header = re.sub(r"\s+", " ", header)
        qualified = ".".join([*scope, name])
        start = child.start_point[0]
        end = child.end_point[0] if child.end_point[1] > 0 else child.end_point[0] - 1
        text = "\n".join(source_lines[start:end + 1])
        if definition.type == "function_definition":
            params, annotated = _params(definition.child_by_field_name("parameters"))
            yield Definition(
                name=name, qualified_name=qualified,
                kind="method" if in_class else "function",
                start_line=start, end_line=end, signature=header,
                docstring=_docstring_of(body), decorators=tuple(decorators),
                params=params, annotated=annotated,
                returns=_text(definition.child_by_field_name("return_type")),
                is_async=header.startswith("async "), is_stub=_is_stub(body),
                calls=_calls_in(body) if body is not None else (), text=text,
            )
        else:
            superclasses = definition.child_by_field_name("superclasses")
            bases = tuple(_text(b) for b in superclasses.named_children) if superclasses else ()
            yield Definition(
                name=name, qualified_name=qualified, kind="class",
                start_line=start, end_line=end, signature=header,
                docstring=_docstring_of(body), decorators=tuple(decorators),
                params=(), annotated=0, returns="", is_async=False,
                is_stub=_is_stub(body), calls=(), text=text, bases=bases,
            )
            if body is not None:
                yield from _walk_definitions(body, [*scope, name], True, source_lines)


_MODULE_LEVEL_BLOCKS = ("if_statement", "try_statement", "block", "else_clause", "except_clause",
                       "finally_clause", "elif_clause")


def _imports(root: Any, deep: bool = False) -> list[ImportFact]:
    facts: list[ImportFact] = []
    stack = list(root.named_children)
    while stack:
        node = stack.pop(0)
        if node.type not in ("import_statement", "import_from_statement") and (
                deep or node.type in _MODULE_LEVEL_BLOCKS):
            stack[0:0] = list(node.named_children)
            continue
        line = node.start_point[0]
        if node.type == "import_statement":
            for item in node.named_children:
                if item.type == "dotted_name":
                    module = _text(item)
                    facts.append(ImportFact(module, "", module.split(".")[0], line))
                elif item.type == "aliased_import":
                    module = _text(item.child_by_field_name("name"))
                    alias = _text(item.child_by_field_name("alias"))
                    facts.append(ImportFact(module, "", alias or module, line))
        elif node.type == "import_from_statement":
            module_node = node.child_by_field_name("module_name")
            module = _text(module_node)
            for item in node.named_children:
                if item is module_node or (module_node is not None and item.id == module_node.id):
                    continue
                if item.type == "dotted_name":
                    name = _text(item)
                    facts.append(ImportFact(module, name, name, line))
                elif item.type == "aliased_import":
                    name = _text(item.child_by_field_name("name"))
                    alias = _text(item.child_by_field_name("alias"))
                    facts.append(ImportFact(module, name, alias or name, line))
                elif item.type == "wildcard_import":
                    facts.append(ImportFact(module, "*", "*", line))
    return facts


def module_facts(source: str) -> ModuleFacts:
    """Definitions (nested classes' methods included) and imports of one Python module."""
    tree = parse(source)
    lines = source.splitlines()
    facts = ModuleFacts()
    facts.definitions = list(_walk_definitions(tree.root_node, [], False, lines))
    facts.imports = _imports(tree.root_node)
    for item in facts.imports:
        if item.name and item.name != "*":
            facts.exports[item.alias] = item.module
    return facts


def calls_in_source(source: str) -> tuple[str, ...]:
    """Every called name or attribute chain in `source` (a fragment or a whole file)."""
    return _calls_in(parse(source).root_node)


def imports_in_source(source: str, *, deep: bool = False) -> list[ImportFact]:
    """Module-level imports (`deep`: also those inside functions and classes)."""
    return _imports(parse(source).root_node, deep)
