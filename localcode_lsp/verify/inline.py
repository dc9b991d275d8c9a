"""Verified inline completion: a suggestion is checked in place before the editor shows it.

Two checks, both in process and in a few milliseconds (no subprocess, nothing executed):

- **Syntax**: the enclosing block (the top-level statement around the cursor: a function, a
  class, or one module-level statement) is parsed with tree-sitter before and after the
  insertion. The suggestion is rejected when the "after" parse has an error (an ERROR or
  MISSING node) on a line that had none before. Errors the user's own half-typed line already
  had do not count, nor do errors elsewhere in the file.
- **Names** (Python): every name the suggestion reads must be bound in scope: the module's
  bindings (imports, defs, classes, assignments, also those below the cursor), the enclosing
  functions' parameters and locals, enclosing class bodies, names the suggestion binds itself
  and builtins. The check is conservative: it only rejects a name that is certainly undefined.
  Attribute names (`obj.anything`) and keyword-argument names are never judged; a
  `from m import *` turns the check off; when the block does not parse cleanly after the
  insertion (the scopes may be wrong) a name only has to occur somewhere else in the file.

`verify_suggestion` keeps the longest prefix of whole lines that passes both checks (a
single-line suggestion is kept or dropped).
"""

from __future__ import annotations

import builtins
import re
import time
from dataclasses import dataclass, field
from typing import Any

from ..index.languages import ParserCache
from ..index.syntax import error_nodes

# names every module has without binding them
MODULE_DUNDERS = frozenset({"__name__", "__file__", "__doc__", "__spec__", "__loader__",
                            "__package__", "__builtins__", "__path__", "__annotations__",
                            "__debug__", "__dict__", "__class__", "__qualname__", "__module__"})
BUILTIN_NAMES = frozenset(dir(builtins)) | MODULE_DUNDERS

# statements that continue the top-level statement above them at column 0
_CONTINUATIONS = ("else", "elif", "except", "finally", "case", ")", "]", "}")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_STAR_IMPORT = re.compile(r"^[ \t]*from[ \t]+[\w.]+[ \t]+import[ \t]+\*", re.MULTILINE)

# node types whose `left` (or similar) child binds names
_BINDING_FIELDS = {
    "assignment": ("left",),
    "augmented_assignment": ("left",),
    "for_statement": ("left",),
    "for_in_clause": ("left",),
    "named_expression": ("name",),
    "as_pattern": ("alias",),
    "with_item": (),
}
# node types all of whose identifiers bind (imports, global/nonlocal, match patterns, aliases)
_BINDING_SUBTREES = frozenset({"import_statement", "import_from_statement",
                               "future_import_statement", "global_statement",
                               "nonlocal_statement", "case_pattern", "as_pattern_target",
                               "type_parameter", "lambda_parameters", "parameters"})
_SCOPES = frozenset({"function_definition", "class_definition"})


@dataclass
class InlineVerdict:
    """What verification did to one suggestion."""

    text: str  # what may be shown ("" = dropped)
    original: str
    reason: str = ""  # why (part of) it was rejected; "" = accepted whole
    milliseconds: float = 0.0
    undefined: list[str] = field(default_factory=list)

    @property
    def trimmed(self) -> bool:
        return bool(self.text) and self.text != self.original

    @property
    def dropped(self) -> bool:
        return not self.text and bool(self.original)


class InlineVerifier:
    """Checks suggestions in place; holds its own tree-sitter parsers (one per thread)."""

    def __init__(self, parsers: ParserCache | None = None) -> None:
        self._parsers = parsers or ParserCache()

    def verify(self, document: str, offset: int, suggestion: str,
               language: str) -> InlineVerdict:
        """The longest whole-line prefix of `suggestion` (inserted at character `offset` of
        `document`) that adds no syntax error and reads no undefined name."""
        started = time.perf_counter()
        verdict = InlineVerdict(suggestion, suggestion)
        if not suggestion.strip() or not self._has_grammar(language):
            verdict.milliseconds = (time.perf_counter() - started) * 1000
            return verdict
        context = _Context(self, document, offset, language)
        lines = suggestion.split("\n")
        first_reason = ""
        for keep in range(len(lines), 0, -1):
            text = "\n".join(lines[:keep])
            if keep < len(lines):
                text = text.rstrip()
            if not text.strip():
                continue
            reason, undefined = context.problem(text)
            if not reason:
                verdict.text = text
                break
            if not first_reason:
                first_reason, verdict.undefined = reason, undefined
        else:
            verdict.text = ""
        verdict.reason = first_reason if verdict.text != suggestion else ""
        verdict.milliseconds = (time.perf_counter() - started) * 1000
        return verdict

    def _has_grammar(self, language: str) -> bool:
        if not language:
            return False
        try:
            self._parsers.parser(language)
        except ValueError:
            return False
        return True

    def parse(self, language: str, text: str) -> Any:
        return self._parsers.parse(language, text.encode("utf-8", "surrogatepass"))


class _Context:
    """The parts of one verification shared by every prefix tried."""

    def __init__(self, verifier: InlineVerifier, document: str, offset: int,
                 language: str) -> None:
        self.verifier = verifier
        self.language = language
        self.python = language == "python"
        if self.python:
            start, end = enclosing_block(document, offset)
        else:
            start, end = 0, len(document)
        self.block_before = document[start:end]
        self.block_span = (start, end)
        self.cursor = offset - start  # in the block
        self.document = document
        self.block_start_line = document.count("\n", 0, start)
        before_tree = verifier.parse(language, self.block_before)
        self.errors_before = _error_lines(before_tree.root_node)
        self._module_names: frozenset[str] | None = None
        self._star_import: bool | None = None
        self._outside_words: frozenset[str] | None = None

    def problem(self, suggestion: str) -> tuple[str, list[str]]:
        """("", []) when `suggestion` passes; else why, and the undefined names."""
        after = self.block_before[:self.cursor] + suggestion + self.block_before[self.cursor:]
        tree = self.verifier.parse(self.language, after)
        root = tree.root_node
        inserted_end = _byte_len(after[:self.cursor + len(suggestion)])
        inserted_start = _byte_len(after[:self.cursor])
        added_lines = suggestion.count("\n")
        cursor_line = self.block_before.count("\n", 0, self.cursor)
        new_errors = []
        for line, byte, missing in _error_points(root):
            if byte < inserted_start:
                mapped = line  # compared by line: the user's half-typed line may err already
            elif byte > inserted_end or (byte == inserted_end and not missing):
                mapped = line - added_lines
            else:
                # an error inside the suggestion, or something missing right after it
                new_errors.append(cursor_line)
                continue
            if mapped not in self.errors_before:
                new_errors.append(mapped)
        if new_errors:
            line = self.block_start_line + min(new_errors) + 1
            return f"adds a syntax error at line {line}", []
        if not self.python:
            return "", []
        undefined = self._undefined(root, after, suggestion, inserted_start, inserted_end)
        if undefined:
            return f"undefined name{'s' if len(undefined) > 1 else ''} " \
                   f"{', '.join(undefined)}", undefined
        return "", []

    # --- names -----------------------------------------------------------------------------

    def _undefined(self, root: Any, after: str, suggestion: str, start: int,
                   end: int) -> list[str]:
        reads = [node for node in _identifiers_in(root, start, end) if _is_read(node)]
        if not reads:
            return []
        names = {_text(node) for node in reads} - BUILTIN_NAMES - {"_"}
        if not names:
            return []
        if root.has_error:
            # scopes from a broken parse are unreliable: only a name found nowhere else counts
            rest = after[:self.cursor] + " " + after[self.cursor + len(suggestion):]
            words = self.outside_words | set(_WORD.findall(rest))
            return sorted(n for n in names if n not in words
                          and n not in _bound_anywhere(root) and not self.star_import)
        missing = []
        block_module = _scope_bindings(root)
        for node in reads:
            name = _text(node)
            if name not in names or name in missing:
                continue
            visible = set(block_module)
            scope = node.parent
            while scope is not None:
                if scope.type in _SCOPES or scope.type == "lambda":
                    visible |= _scope_bindings(scope)
                scope = scope.parent
            if name not in visible:
                missing.append(name)
        if missing:  # only now parse the whole file for its module-level names
            if self.star_import:
                return []
            missing = [name for name in missing if not self.module_binds(name)]
        return sorted(missing)

    def module_binds(self, name: str) -> bool:
        """Whether the module binds `name`: a name the rest of the file never mentions is
        certainly not; a plain `def name`, `class name`, `name =` or an import line naming it
        at column 0 certainly is; anything else asks the full parse."""
        start, end = self.block_span
        word = re.compile(rf"(?<![\w.]){re.escape(name)}\b")
        if not word.search(self.document, 0, start) and not word.search(self.document, end):
            return False
        plain = re.compile(rf"^(?:(?:async[ \t]+)?def[ \t]+{re.escape(name)}\b|class[ \t]+"
                           rf"{re.escape(name)}\b|(?:from|import)[ \t][^\n#]*\b"
                           rf"{re.escape(name)}\b|{re.escape(name)}[ \t]*(?::|=[^=]|,))",
                           re.MULTILINE)
        if plain.search(self.document):
            return True
        return name in self.module_names

    @property
    def module_names(self) -> frozenset[str]:
        """Module-level bindings of the whole document (as it was before the insertion)."""
        if self._module_names is None:
            tree = self.verifier.parse("python", self.document)
            self._module_names = frozenset(_scope_bindings(tree.root_node))
        return self._module_names

    @property
    def star_import(self) -> bool:
        """`from m import *` anywhere: every name may be bound, the name check is off."""
        if self._star_import is None:
            self._star_import = bool(_STAR_IMPORT.search(self.document))
        return self._star_import

    @property
    def outside_words(self) -> frozenset[str]:
        if self._outside_words is None:
            start, end = self.block_span
            outside = self.document[:start] + "\n" + self.document[end:]
            self._outside_words = frozenset(_WORD.findall(outside))
        return self._outside_words


# --- blocks and errors ---------------------------------------------------------------------

def enclosing_block(document: str, offset: int) -> tuple[int, int]:
    """(start, end) character offsets of the top-level Python statement around `offset`:
    from the nearest line at column 0 above (with its decorators and comments) to the next
    one below that starts a new statement."""
    lines = document.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    cursor_line = max(0, min(len(lines) - 1, document.count("\n", 0, offset)))
    if not lines:
        return 0, len(document)

    def top_level(index: int) -> bool:
        line = lines[index]
        return bool(line.strip()) and not line[0].isspace() and not line.lstrip().startswith(
            _CONTINUATIONS) and not line.startswith("#")

    first = cursor_line
    while first > 0 and not top_level(first):
        first -= 1
    while first > 0 and (lines[first - 1].startswith(("@", "#"))):
        first -= 1
    last = cursor_line + 1
    while last < len(lines) and not top_level(last):
        last += 1
    while last > cursor_line + 1 and lines[last - 1].startswith(("@", "#")):
        last -= 1  # the next definition's decorators and comments belong to it
    return starts[first], starts[last]


def _error_points(root: Any) -> list[tuple[int, int, bool]]:
    """(row, start byte, is MISSING) of every ERROR / MISSING node (index.syntax's walk)."""
    return [(node.start_point[0], node.start_byte, bool(node.is_missing))
            for node in error_nodes(root)]


def _error_lines(root: Any) -> frozenset[int]:
    return frozenset(row for row, _, _ in _error_points(root))


def _byte_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


# --- names ---------------------------------------------------------------------------------

def _text(node: Any) -> str:
    return (node.text or b"").decode("utf-8", "replace")


def _identifiers_in(root: Any, start: int, end: int) -> list[Any]:
    """Identifier nodes overlapping the byte range [start, end)."""
    found = []
    stack = [root]
    while stack:
        node = stack.pop()
        if node.end_byte <= start or node.start_byte >= end:
            continue
        if node.type == "identifier":
            found.append(node)
            continue
        stack.extend(node.children)
    return found


def _field_of(node: Any) -> str | None:
    parent = node.parent
    if parent is None:
        return None
    for index, child in enumerate(parent.children):
        if child.id == node.id:
            return parent.field_name_for_child(index)
    return None


def _is_read(node: Any) -> bool:
    """Whether an identifier reads a variable (not an attribute, keyword or definition name)."""
    parent = node.parent
    if parent is None:
        return True
    kind = parent.type
    field_name = _field_of(node)
    if kind == "attribute" and field_name == "attribute":
        return False
    if kind == "keyword_argument" and field_name == "name":
        return False
    if kind in ("function_definition", "class_definition") and field_name == "name":
        return False
    if kind in ("dotted_name", "aliased_import", "relative_import"):
        return False
    ancestor = parent
    while ancestor is not None:
        if ancestor.type in _BINDING_SUBTREES or ancestor.type in (
                "import_statement", "import_from_statement"):
            return False
        if ancestor.type in _SCOPES or ancestor.type in ("module", "block"):
            break
        ancestor = ancestor.parent
    return True


def _scope_bindings(scope: Any) -> set[str]:
    """Names bound directly in `scope` (a module, function, class or lambda): its parameters,
    assignment targets, imports, loop and `as` targets, nested def/class names. Comprehension
    and lambda variables count for the enclosing scope too (an over-approximation: the check
    must never reject a bound name)."""
    names: set[str] = set()
    stack: list[tuple[Any, bool]] = []
    if scope.type in _SCOPES:
        for child_field in ("parameters", "type_parameters"):
            child = scope.child_by_field_name(child_field)
            if child is not None:
                stack.append((child, True))
        body = scope.child_by_field_name("body")
        if body is not None:
            stack.append((body, False))
    elif scope.type == "lambda":
        child = scope.child_by_field_name("parameters")
        if child is not None:
            stack.append((child, True))
        body = scope.child_by_field_name("body")
        if body is not None:
            stack.append((body, False))
    else:
        stack.append((scope, False))
    while stack:
        node, binding = stack.pop()
        kind = node.type
        if kind == "identifier":
            if binding:
                names.add(_text(node))
            continue
        if kind in _SCOPES:
            name = node.child_by_field_name("name")
            if name is not None:
                names.add(_text(name))
            continue  # its body is its own scope
        if binding and kind in ("attribute", "subscript"):
            continue  # `a.b = 1` binds nothing
        if kind in ("default_parameter", "typed_default_parameter"):
            name = node.child_by_field_name("name")
            if name is not None:
                names.add(_text(name))
            continue
        if kind == "typed_parameter":
            for child in node.children:
                if child.type in ("identifier", "list_splat_pattern",
                                  "dictionary_splat_pattern"):
                    stack.append((child, True))
            continue
        if kind == "keyword_argument":
            value = node.child_by_field_name("value")
            if value is not None:
                stack.append((value, binding))
            continue
        if kind in _BINDING_SUBTREES:
            binding = True
        fields = _BINDING_FIELDS.get(kind)
        for index, child in enumerate(node.children):
            child_binding = binding
            if fields and node.field_name_for_child(index) in fields:
                child_binding = True
            if kind == "except_clause" and child.type == "identifier":
                child_binding = True  # `except E as e` (grammar versions differ)
            stack.append((child, child_binding))
    return names


def _bound_anywhere(root: Any) -> set[str]:
    """Every name bound anywhere in `root`, nested scopes included."""
    names = _scope_bindings(root)
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type in _SCOPES or node.type == "lambda":
            names |= _scope_bindings(node)
        stack.extend(node.children)
    return names
