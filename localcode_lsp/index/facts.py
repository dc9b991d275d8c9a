"""Imports and call references of a file, derived from its tree: `Import`, `CallRef` and
`FileFacts` (everything the dependency graph needs from one file, serializable for the AST
cache), `python_imports` (also read by the knowledge store) and `called_names`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .queries import DEF_LANGUAGES, Queries, node_text

if TYPE_CHECKING:  # types only: tree_sitter loads on first parse
    from tree_sitter import Node, Tree


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


# --- imports -------------------------------------------------------------------------------

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
                    module = node_text(source, child)
                    imports.append(Import(module, None, module.split(".")[0], line))
                elif child.type == "aliased_import":
                    module = node_text(source, child.child_by_field_name("name"))
                    alias = node_text(source, child.child_by_field_name("alias"))
                    imports.append(Import(module, None, alias, line))
            continue
        if statement.type == "future_import_statement":
            continue
        module_node = statement.child_by_field_name("module_name")
        module_text = node_text(source, module_node) if module_node is not None else ""
        level = len(module_text) - len(module_text.lstrip("."))
        module = module_text.lstrip(".")
        names = statement.children_by_field_name("name")
        if any(c.type == "wildcard_import" for c in statement.named_children):
            imports.append(Import(module, "*", "*", line, level))
        for child in names:
            if child.type == "aliased_import":
                name = node_text(source, child.child_by_field_name("name"))
                alias = node_text(source, child.child_by_field_name("alias"))
                imports.append(Import(module, name, alias, line, level))
            else:
                name = node_text(source, child)
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
    return node_text(source, node).strip("'\"`")


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
                    imports.append(Import(module, "default", node_text(source, part), line))
                elif part.type == "namespace_import":
                    ident = next((c for c in part.named_children if c.type == "identifier"), None)
                    if ident is not None:
                        imports.append(Import(module, "*", node_text(source, ident), line))
                elif part.type == "named_imports":
                    for spec in part.named_children:
                        if spec.type != "import_specifier":
                            continue
                        name = node_text(source, spec.child_by_field_name("name"))
                        alias_node = spec.child_by_field_name("alias")
                        alias = node_text(source, alias_node) if alias_node is not None else name
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
            if function is None or node_text(source, function) != "require" or arguments is None:
                continue
            strings = [a for a in arguments.named_children if a.type == "string"]
            if strings:
                imports.append(Import(_js_string(source, strings[0]), None,
                                      node_text(source, name_node), line))
    return imports


# --- calls and the facts of a file --------------------------------------------------------

def derive_facts(tree: Tree, source: bytes, language: str, queries: Queries, *,
                 with_names: bool = False, captured: list[Node] | None = None) -> FileFacts:
    """Imports and call references of one file (identifier references too when asked)."""
    if language not in DEF_LANGUAGES:
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
                names.append(CallRef(node_text(source, node), None, node.start_byte,
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
        return node_text(source, fn), None
    if is_python and fn.type == "attribute":
        attribute = fn.child_by_field_name("attribute")
        obj = fn.child_by_field_name("object")
        if attribute is not None:
            return node_text(source, attribute), (node_text(source, obj) if obj is not None else None)
    if not is_python and fn.type == "member_expression":
        prop = fn.child_by_field_name("property")
        obj = fn.child_by_field_name("object")
        if prop is not None:
            return node_text(source, prop), (node_text(source, obj) if obj is not None else None)
    return "", None
