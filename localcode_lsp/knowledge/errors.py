"""The error -> fix cache and the deterministic repairs that run before a retry asks the model.

A verified retry (failing candidate, its structured feedback, the passing fix) is stored under a
normalized error signature: the rule code or exception type, the message with names taken out,
and the shape of the failing line with names abstracted, e.g.
`F821 undefined-name | return <NAME>.<ATTR>(...)`. Before the next retry:

1. deterministic repairs, no inference: an undefined name resolved to an import (learned from an
   earlier fix, the standard library, or a workspace symbol), an unused variable or import
   removed, and ruff's safe autofixes when a tool runner is available;
2. otherwise the closest past fix becomes a `feedback` example for the model.
"""

from __future__ import annotations

import difflib
import keyword
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..logs import get_logger
from . import syntax
from .storage import JsonCache

log = get_logger("knowledge.errors")

MAX_EXAMPLES_PER_SIGNATURE = 3

# Names that live in a standard-library module and are commonly used bare.
STDLIB_MEMBERS: dict[str, str] = {
    **{n: "typing" for n in ("Any", "Callable", "Dict", "List", "Optional", "Set", "Tuple",
                             "Union", "Iterable", "Iterator", "Sequence", "Mapping",
                             "Generator", "TypeVar", "Generic", "Protocol", "Literal",
                             "NamedTuple", "TypedDict", "cast", "overload", "Final",
                             "ClassVar", "DefaultDict", "Type", "NoReturn")},
    **{n: "collections" for n in ("defaultdict", "Counter", "OrderedDict", "deque",
                                  "namedtuple", "ChainMap")},
    **{n: "dataclasses" for n in ("dataclass", "field", "asdict", "astuple", "replace")},
    **{n: "functools" for n in ("reduce", "partial", "lru_cache", "wraps", "cache",
                                "cached_property", "total_ordering", "cmp_to_key")},
    **{n: "itertools" for n in ("chain", "groupby", "islice", "permutations", "combinations",
                                "product", "accumulate", "zip_longest", "count", "cycle",
                                "repeat", "starmap", "takewhile", "dropwhile")},
    **{n: "math" for n in ("sqrt", "floor", "ceil", "gcd", "inf", "pi", "isclose", "log",
                           "factorial", "comb", "prod")},
    "Path": "pathlib", "PurePath": "pathlib", "datetime": "datetime", "date": "datetime",
    "timedelta": "datetime", "Enum": "enum", "IntEnum": "enum", "auto": "enum",
    "Decimal": "decimal", "Fraction": "fractions", "heappush": "heapq", "heappop": "heapq",
    "heapify": "heapq", "bisect_left": "bisect", "bisect_right": "bisect", "insort": "bisect",
    "deepcopy": "copy", "pprint": "pprint", "sleep": "time", "ABC": "abc",
    "abstractmethod": "abc", "contextmanager": "contextlib", "suppress": "contextlib",
    "StringIO": "io", "BytesIO": "io", "randint": "random", "choice": "random",
    "shuffle": "random", "uuid4": "uuid", "sha256": "hashlib", "md5": "hashlib",
}
# Conventional aliases: `np` is numpy everywhere.
CONVENTIONAL_ALIASES: dict[str, str] = {
    "np": "import numpy as np", "pd": "import pandas as pd", "plt": "import matplotlib.pyplot as plt",
    "tf": "import tensorflow as tf", "nx": "import networkx as nx", "sp": "import scipy as sp",
}

_FEEDBACK_KIND = re.compile(r"^\s*(LINT|SYNTAX ERROR|TEST FAIL|TEST ERROR|TYPE|TYPE ERROR|"
                            r"REVIEW|SAFETY|PARSE|ERROR)\b[:\s]*", re.IGNORECASE)
_RULE = re.compile(r"\b([A-Z]{1,4}\d{3,4})\b")
_EXCEPTION = re.compile(r"\b([A-Z][A-Za-z]*(?:Error|Exception|Exit|Interrupt|Warning))\b")
_LINE = re.compile(r"(?:\bline\s+|:)(\d+)(?::\d+)?\b", re.IGNORECASE)
_QUOTED = re.compile(r"[`'\"]([A-Za-z_][\w.]*)[`'\"]")
_STRING = re.compile(r"(?:[rbfuRBFU]{0,2})(\"\"\"[\s\S]*?\"\"\"|'''[\s\S]*?'''|\"(?:\\.|[^\"\\])*\"|'(?:\\.|[^'\\])*')")
_NUMBER = re.compile(r"\b\d+(?:\.\d+)?\b")
_BUILTINS = set(dir(__builtins__) if not isinstance(__builtins__, dict) else __builtins__)


@dataclass(frozen=True)
class ErrorFact:
    """One structured feedback line, taken apart."""

    kind: str  # "lint" | "syntax" | "test" | "type" | "other"
    code: str  # "F821", "NameError", "SYNTAX", ...
    message: str
    names: tuple[str, ...]
    line: int | None  # 1-based, when the line said so
    raw: str


def parse_feedback(line: str) -> ErrorFact:
    """`LINT: F821 Undefined name `json`` -> ErrorFact(kind="lint", code="F821", names=("json",))."""
    kind_match = _FEEDBACK_KIND.match(line)
    label = kind_match.group(1).upper() if kind_match else ""
    rest = line[kind_match.end():] if kind_match else line
    kind = ("lint" if label == "LINT" else "syntax" if label in ("SYNTAX ERROR", "PARSE")
            else "test" if label.startswith("TEST") else "type" if label.startswith("TYPE")
            else "other")
    rule = _RULE.search(rest)
    exception = _EXCEPTION.search(rest)
    if kind == "syntax":
        code = "SYNTAX"
    elif rule and kind in ("lint", "type", "other"):
        code = rule.group(1)
    elif exception:
        code = exception.group(1)
    elif rule:
        code = rule.group(1)
    else:
        code = label or "ERROR"
    line_match = _LINE.search(rest)
    names = tuple(dict.fromkeys(_QUOTED.findall(rest)))
    message = rest
    if rule:
        message = message.replace(rule.group(0), "", 1)
    return ErrorFact(kind, code, message.strip(" :-—"), names,
                     int(line_match.group(1)) if line_match else None, line.strip())


def _slug(fact: ErrorFact) -> str:
    message = _QUOTED.sub("", fact.message)
    message = re.sub(r"\bline\s+\d+(:\d+)?", "", message, flags=re.IGNORECASE)
    message = _STRING.sub("", message)
    message = _NUMBER.sub("", message)
    if fact.kind == "test":
        # `TEST FAIL: test_x — AssertionError: ...`: the test name is not part of the error.
        message = message.split(fact.code, 1)[-1] if fact.code in message else ""
    words = [w.lower() for w in re.findall(r"[A-Za-z]+", message)][:5]
    return "-".join(words)


def abstract_line(line: str) -> str:
    """`data = json.loads(raw, 3)` -> `<NAME> = <NAME>.<ATTR>(...)`: the shape, names gone."""
    text = line.strip()
    text = _STRING.sub("<STR>", text)
    text = _NUMBER.sub("<NUM>", text)
    out: list[str] = []
    index = 0
    depth = 0
    inside = False
    for match in re.finditer(r"[A-Za-z_][A-Za-z0-9_]*|<STR>|<NUM>|\S", text):
        token = match.group(0)
        index = match.start()
        if token == "(":
            if depth == 0:
                out.append("(")
                inside = False
            depth += 1
            continue
        if token == ")":
            depth = max(0, depth - 1)
            if depth == 0:
                out.append("...)" if inside else ")")
            continue
        if depth:
            inside = True
            continue
        if token in ("<STR>", "<NUM>") or keyword.iskeyword(token) or not token[0].isalpha() \
                and token[0] != "_":
            out.append(token)
        elif index > 0 and text[index - 1] == ".":
            out.append("<ATTR>")
        elif token in _BUILTINS:
            out.append(token)
        else:
            out.append("<NAME>")
    shape = " ".join(out)
    shape = re.sub(r" ?\. ?", ".", shape).replace("( ", "(").replace(" (", "(")
    return shape


def failing_line(fact: ErrorFact, text: str) -> str:
    """The source line an error points at: by line number, else the first line naming its name."""
    lines = text.splitlines()
    if fact.line is not None and 1 <= fact.line <= len(lines):
        return lines[fact.line - 1]
    for name in fact.names:
        head = name.split(".")[0]
        pattern = re.compile(rf"(?<![\w.]){re.escape(head)}\b")
        for source_line in lines:
            stripped = source_line.strip()
            if pattern.search(source_line) and not stripped.startswith(("#", "import ", "from ")):
                return source_line
    return ""


def error_signature(fact: ErrorFact, text: str) -> str:
    """Normalized signature: code, message slug and the abstract shape of the failing line."""
    shape = abstract_line(failing_line(fact, text)) if text else ""
    return f"{fact.code} {_slug(fact)} | {shape}".strip()


@dataclass
class Repair:
    """A deterministic repair: the new file text and what was done (for the trace)."""

    text: str
    actions: list[str] = field(default_factory=list)
    signatures: list[str] = field(default_factory=list)


def _is_undefined_name(fact: ErrorFact) -> bool:
    return fact.code in ("F821", "NameError") or (
        fact.code in ("reportUndefinedVariable", "name-defined")) or (
        "undefined name" in fact.message.lower() or "is not defined" in fact.message.lower())


def insert_import(text: str, statement: str) -> str:
    """`statement` added after the module docstring, `__future__` imports and top-level imports."""
    if any(line.strip() == statement for line in text.splitlines()):
        return text
    lines = text.splitlines(keepends=True)
    tree = syntax.parse(text)
    insert_at = 0
    after_docstring = False
    for node in tree.root_node.named_children:
        if node.type in ("import_statement", "import_from_statement", "future_import_statement"):
            insert_at = node.end_point[0] + 1
            after_docstring = False
        elif node.type == "expression_statement" and node.named_child_count == 1 \
                and node.named_children[0].type == "string" and insert_at == 0 \
                and node.start_point[0] == 0:
            insert_at = node.end_point[0] + 1
            after_docstring = True
        elif node.type == "string" and insert_at == 0 and node.start_point[0] == 0:
            insert_at = node.end_point[0] + 1
            after_docstring = True
        elif node.type == "comment" and insert_at == node.start_point[0]:
            continue
        else:
            break
    newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
    if insert_at > 0 and insert_at <= len(lines) and not lines[insert_at - 1].endswith(("\n", "\r")):
        lines[insert_at - 1] += newline
    block = (newline if after_docstring else "") + statement + newline
    if insert_at == 0 and lines and lines[0].strip():
        block += newline if not lines[0].lstrip().startswith(("import ", "from ")) else ""
    lines.insert(insert_at, block)
    return "".join(lines)


def remove_unused_variable(text: str, name: str, line_no: int | None) -> str | None:
    """`x = f()` -> `f()`, `x = 3` -> removed; None when the assignment is not a simple one."""
    lines = text.splitlines(keepends=True)
    pattern = re.compile(rf"^(\s*){re.escape(name)}\s*(?::\s*[^=]+)?=(?!=)\s*(.+?)\s*$")
    indices = [line_no - 1] if line_no and 0 < line_no <= len(lines) else range(len(lines))
    for index in indices:
        match = pattern.match(lines[index].rstrip("\r\n"))
        if not match:
            continue
        indent, value = match.group(1), match.group(2)
        if value.endswith(("(", "[", "{", "\\", ",")) or value.count("(") != value.count(")"):
            return None  # a multi-line expression: leave it to the model
        ending = lines[index][len(lines[index].rstrip("\r\n")):]
        if "(" in value:
            lines[index] = f"{indent}{value}{ending}"
        else:
            next_indent = None
            for following in lines[index + 1:]:
                if following.strip():
                    next_indent = len(following) - len(following.lstrip())
                    break
            previous_indent = None
            for before in reversed(lines[:index]):
                if before.strip():
                    previous_indent = len(before) - len(before.lstrip())
                    break
            alone = (previous_indent is not None and previous_indent < len(indent)
                     and (next_indent is None or next_indent < len(indent)))
            lines[index] = f"{indent}pass{ending}" if alone else ""
        return "".join(lines)
    return None


def remove_unused_import(text: str, name: str, line_no: int | None) -> str | None:
    """Drop `name` from the import that binds it (the whole line when it was the only name)."""
    lines = text.splitlines(keepends=True)
    short = name.split(".")[-1] if " as " not in name else name.split(" as ")[-1]
    for fact in syntax.imports_in_source(text):
        bound = fact.alias
        full = f"{fact.module}.{fact.name}" if fact.name else fact.module
        if name not in (bound, full, fact.module) and short != bound:
            continue
        if line_no is not None and fact.line != line_no - 1:
            continue
        source_line = lines[fact.line]
        stripped = source_line.strip()
        if "(" in stripped or stripped.endswith("\\") or ";" in stripped:
            return None
        siblings = [f for f in syntax.imports_in_source(text) if f.line == fact.line]
        if len(siblings) == 1:
            lines[fact.line] = ""
        else:
            head, _, names = source_line.partition(" import ")
            kept = [part.strip() for part in names.strip().split(",")
                    if part.strip().split(" as ")[-1].strip() != bound]
            ending = source_line[len(source_line.rstrip("\r\n")):]
            lines[fact.line] = f"{head} import {', '.join(kept)}{ending}"
        return "".join(lines)
    return None


# (file text, file name, rule codes) -> fixed text or None; the codes are what the fixes may
# touch when the project has no ruff configuration of its own
ToolRunner = Callable[[str, str, Sequence[str]], str | None]


class ErrorFixCache:
    """Learned fixes keyed by error signature, plus the deterministic repairs."""

    def __init__(self, cache: JsonCache, *, resolve_workspace_import: Callable[[str], str | None]
                 | None = None, ruff_fix: ToolRunner | None = None) -> None:
        self.cache = cache
        self.resolve_workspace_import = resolve_workspace_import
        self.ruff_fix = ruff_fix

    # --- learning ----------------------------------------------------------------------------

    def record_fix(self, failing_text: str, feedback: list[str], fixed_text: str) -> list[str]:
        """Store a verified retry; returns the signatures it was filed under."""
        if not feedback or failing_text == fixed_text:
            return []
        diff = [line for line in difflib.unified_diff(
            failing_text.splitlines(), fixed_text.splitlines(), lineterm="", n=0)
            if not line.startswith(("---", "+++", "@@"))]
        added_imports = {f.alias: _import_statement(f)
                         for f in syntax.imports_in_source(fixed_text, deep=True)}
        for existing in syntax.imports_in_source(failing_text, deep=True):
            added_imports.pop(existing.alias, None)
        signatures = []
        for raw in feedback:
            fact = parse_feedback(raw)
            signature = error_signature(fact, failing_text)
            entry = self.cache.get(f"sig:{signature}", touch=False) or {
                "code": fact.code, "signature": signature, "examples": [], "seen": 0}
            example = {"feedback": raw[:300], "failing": failing_line(fact, failing_text)[:200],
                       "diff": diff[:12]}
            examples = [e for e in entry.get("examples", []) if e.get("diff") != example["diff"]]
            entry["examples"] = ([example] + examples)[:MAX_EXAMPLES_PER_SIGNATURE]
            entry["seen"] = int(entry.get("seen", 0)) + 1
            self.cache.set(f"sig:{signature}", entry)
            signatures.append(signature)
            if _is_undefined_name(fact):
                for name in fact.names:
                    statement = added_imports.get(name.split(".")[0])
                    if statement:
                        self.cache.set(f"import:{name.split('.')[0]}", statement)
        self.cache.flush()
        return signatures

    # --- deterministic repairs -------------------------------------------------------------

    def resolve_import(self, name: str) -> tuple[str, str] | None:
        """(import statement, where it came from) for an undefined `name`, or None."""
        learned = self.cache.get(f"import:{name}")
        if isinstance(learned, str):
            return learned, "learned"
        if name in CONVENTIONAL_ALIASES:
            return CONVENTIONAL_ALIASES[name], "convention"
        if name in sys.stdlib_module_names and not name.startswith("_"):
            return f"import {name}", "stdlib"
        if name in STDLIB_MEMBERS:
            return f"from {STDLIB_MEMBERS[name]} import {name}", "stdlib"
        if self.resolve_workspace_import is not None:
            statement = self.resolve_workspace_import(name)
            if statement:
                return statement, "workspace"
        return None

    def try_repair(self, text: str, feedback: list[str], *,
                   filename: str = "candidate.py") -> Repair | None:
        """Repair `text` (a whole file) for the given feedback without a model; None if nothing."""
        current = text
        repair = Repair(text)
        needs_ruff = False
        facts = [parse_feedback(raw) for raw in feedback]
        # Line-addressed edits first, bottom up, so earlier ones do not shift later line numbers;
        # imports (which insert lines at the top) last.
        facts.sort(key=lambda f: (_is_undefined_name(f), -(f.line or 0)))
        for fact in facts:
            before = current
            if _is_undefined_name(fact) and fact.names:
                head = fact.names[0].split(".")[0]
                bound = {f.alias for f in syntax.imports_in_source(current)}
                if head in bound:
                    continue
                resolved = self.resolve_import(head)
                if resolved:
                    statement, origin = resolved
                    current = insert_import(current, statement)
                    repair.actions.append(f"added `{statement}` ({origin})")
            elif fact.code == "F841" and fact.names:
                fixed = remove_unused_variable(current, fact.names[0], fact.line)
                if fixed is not None:
                    current = fixed
                    repair.actions.append(f"removed unused variable `{fact.names[0]}`")
                else:
                    needs_ruff = True
            elif fact.code == "F401" and fact.names:
                fixed = remove_unused_import(current, fact.names[0], fact.line)
                if fixed is not None:
                    current = fixed
                    repair.actions.append(f"removed unused import `{fact.names[0]}`")
                else:
                    needs_ruff = True
            elif fact.kind == "lint" and fact.code[:1] in ("I", "F", "E", "W", "UP"):
                needs_ruff = True
            if current != before:
                repair.signatures.append(error_signature(fact, text))
        if (needs_ruff or repair.actions) and self.ruff_fix is not None:
            codes = sorted({f.code for f in facts if f.kind == "lint" and f.code})
            if any(action.startswith("added `") for action in repair.actions):
                codes.append("I")  # put the added import where isort would
            try:
                fixed = self.ruff_fix(current, filename, codes)
            except Exception as exc:  # the tool is optional: a repair without it still stands
                log.debug("ruff --fix unavailable: %s", exc)
                fixed = None
            if fixed and fixed != current:
                current = fixed
                repair.actions.append("applied ruff safe fixes")
        if current == text:
            return None
        repair.text = current
        return repair

    # --- examples for the model ------------------------------------------------------------

    def closest_fixes(self, feedback: list[str], text: str, limit: int = 2) -> list[dict[str, Any]]:
        """Past fixes for the same or the most similar error signatures, best first."""
        found: list[tuple[float, dict[str, Any]]] = []
        entries = None
        for raw in feedback:
            fact = parse_feedback(raw)
            signature = error_signature(fact, text)
            exact = self.cache.get(f"sig:{signature}")
            if isinstance(exact, dict) and exact.get("examples"):
                found.append((1.0, exact))
                continue
            if entries is None:
                entries = [v for k, v in self.cache.items() if k.startswith("sig:")]
            best: tuple[float, dict[str, Any]] | None = None
            for entry in entries:
                if not isinstance(entry, dict) or entry.get("code") != fact.code:
                    continue
                ratio = difflib.SequenceMatcher(a=signature, b=entry.get("signature", "")).ratio()
                if ratio >= 0.6 and (best is None or ratio > best[0]):
                    best = (ratio, entry)
            if best is not None:
                self.cache.get(f"sig:{best[1]['signature']}")  # refresh its recency
                found.append(best)
        found.sort(key=lambda item: -item[0])
        unique: list[dict[str, Any]] = []
        for _, entry in found:
            if entry not in unique:
                unique.append(entry)
        return unique[:limit]

    def feedback_examples(self, feedback: list[str], text: str, limit: int = 2) -> list[str]:
        """Past fixes rendered as short `feedback` lines for the retry prompt."""
        lines: list[str] = []
        for entry in self.closest_fixes(feedback, text, limit):
            example = entry["examples"][0]
            lines.append(f"PAST FIX for {entry['signature']}:")
            lines.extend(f"  {d}" for d in example.get("diff", [])[:8])
        return lines


def _import_statement(fact: syntax.ImportFact) -> str:
    if fact.name:
        alias = f" as {fact.alias}" if fact.alias != fact.name else ""
        return f"from {fact.module} import {fact.name}{alias}"
    alias = f" as {fact.alias}" if fact.alias != fact.module.split(".")[0] else ""
    return f"import {fact.module}{alias}"
