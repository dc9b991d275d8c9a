"""Examples written in prose inside a docstring, turned into checks the gate can run.

Docstrings often show behaviour without doctest's `>>>` syntax:

    search([4, 1, 2, 2, 3, 1]) == 2
    will_it_fly([3, 2, 3], 9) ➞ True
    anti_shuffle('Hi') returns 'Hi'
    decimal_to_binary(15)   # returns "db1111db"

`docstring_examples` finds calls of the target itself with literal arguments, followed by an
arrow-like operator and a literal value. It is deliberately conservative: a wrong check would
reject every correct candidate, while a missed one only costs a check. Arguments and values must
be Python literals (`ast.literal_eval`); anything else (names, arithmetic, prose) is skipped.
A bare `=` is weak evidence (docstrings also use it for definitions like `tri(1) = 3`): those
examples are dropped when their values disagree in type with the others.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

# Longest first, so that `==>` is not read as `==` followed by `>`.
_STRONG = ("==>", "=>", "==", "->", "\u279e", "\u2192", "\u27f6", "should return", "should be",
           "returns", "return", "gives", "outputs", "output")
_WEAK = ("=",)
_OPERATOR = re.compile(
    r"[ \t]*(?:#[ \t]*)?("
    + "|".join(re.escape(op) + (r"\b" if op[-1].isalpha() else "") for op in _STRONG + _WEAK)
    + r")[ \t]*")
_CLEAN_REST = re.compile(r"^\s*(?:[.,;:!]?\s*(?:#.*|\(.*\)\s*[.,;]?)?)?$")
_BARE_TOKEN = re.compile(r"-?(?:\d[\d_]*\.?\d*(?:[eE][-+]?\d+)?|\.\d+)|[A-Za-z_]\w*")
_WORD_VALUES = {"true": "True", "false": "False", "null": "None", "none": "None"}
_MAX_EXAMPLES = 20


@dataclass(frozen=True)
class Example:
    """One `call -> expected` check; `alternatives` are other accepted values (sources)."""

    call: str  # exact source (a call may span lines inside its brackets)
    expected: str
    alternatives: tuple[str, ...] = ()
    line: int = 0  # 1-based line inside the docstring
    weak: bool = False

    @property
    def display(self) -> str:
        """The call on one line, for feedback."""
        return one_line(self.call)

    def as_record(self) -> dict[str, object]:
        return {"call": self.call, "display": self.display, "want": one_line(self.expected),
                "expected": [self.expected, *self.alternatives], "line": self.line}


def one_line(source: str) -> str:
    """`source` with its line breaks (and the indentation around them) as single spaces."""
    return re.sub(r"[ \t]*\n\s*", " ", source)


def docstring_examples(docstring: str, name: str) -> list[Example]:
    """The checks `docstring` states about function `name` (its bare name)."""
    if not docstring or not name.isidentifier():
        return []
    found: list[Example] = []
    seen: set[str] = set()
    for match in re.finditer(rf"(?<![\w.]){re.escape(name)}\s*\(", docstring):
        start = match.start()
        line_start = docstring.rfind("\n", 0, start) + 1
        if docstring[line_start:start].lstrip().startswith((">>>", "...")):
            continue  # doctest's own syntax: doctest runs it
        example = _example_at(docstring, start, match.end() - 1, name)
        if example is None or example.call in seen:
            continue
        seen.add(example.call)
        found.append(example)
        if len(found) >= _MAX_EXAMPLES:
            break
    return _consistent(found)


def _example_at(text: str, start: int, open_paren: int, name: str) -> Example | None:
    close = _balanced_end(text, open_paren)
    if close is None:
        return None
    call = text[start:close]
    if not _literal_call(call, name):
        return None
    operator = _OPERATOR.match(text, close)
    if operator is None:
        return None
    op = operator.group(1)
    line_end = text.find("\n", operator.end())
    line_end = len(text) if line_end < 0 else line_end
    value = _value_at(text, operator.end(), line_end, weak=op in _WEAK)
    if value is None:
        return None
    expected, alternatives = value
    line = text.count("\n", 0, start) + 1
    return Example(call, expected, alternatives, line, weak=op in _WEAK)


def _value_at(text: str, start: int, line_end: int, *, weak: bool
              ) -> tuple[str, tuple[str, ...]] | None:
    """The literal value starting at `start`, when what follows it on the line is clean."""
    parsed = _literal_token(text, start)
    if parsed is not None:
        source, end = parsed
        if _CLEAN_REST.match(_rest_of_line(text, end)):
            return _normalized(source)
    if weak:
        return None  # `f(2) = 1 + (2 / 2) = 2` is a derivation, not an example
    # `f(x) == 1 + 9 + 0 = 10`: a worked sum whose last `= value` is the result
    line = text[start:line_end]
    last = line.rfind("=")
    if last < 0 or line[last - 1:last] in ("=", "!", "<", ">"):
        return None
    parsed = _literal_token(text, start + last + 1)
    if parsed is None:
        return None
    source, end = parsed
    if end > line_end or not _CLEAN_REST.match(_rest_of_line(text, end)):
        return None
    return _normalized(source)


def _rest_of_line(text: str, start: int) -> str:
    end = text.find("\n", start)
    return text[start:] if end < 0 else text[start:end]


def _normalized(source: str) -> tuple[str, tuple[str, ...]] | None:
    word = _WORD_VALUES.get(source.lower())
    if word is not None:
        return word, ()
    try:
        value = ast.literal_eval(source)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    alternatives: tuple[str, ...] = ()
    # `("Venus")` in prose usually means a one-element tuple
    if source.startswith("(") and not isinstance(value, tuple):
        alternatives = (f"({source[1:-1].strip()},)",)
    return source, alternatives


def _literal_token(text: str, start: int) -> tuple[str, int] | None:
    """(source, end) of one literal-looking token at `start` (after spaces)."""
    i = start
    while i < len(text) and text[i] in " \t":
        i += 1
    if i >= len(text):
        return None
    first = text[i]
    if first in "([{":
        end = _balanced_end(text, i)
    elif first in "'\"":
        end = _string_end(text, i)
    else:
        m = _BARE_TOKEN.match(text, i)
        end = m.end() if m else None
        if end is not None and text[end - 1] == "." and m is not None:
            end -= 1  # `should return 16.`: the full stop ends the sentence
    if end is None:
        return None
    source = text[i:end]
    try:
        ast.literal_eval(source)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        if source.lower() not in _WORD_VALUES:
            return None
    return source, end


def _literal_call(call: str, name: str) -> bool:
    try:
        node = ast.parse(call, mode="eval").body
    except SyntaxError:
        return False
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == name):
        return False
    try:
        for arg in [*node.args, *(k.value for k in node.keywords)]:
            if isinstance(arg, ast.Starred):
                return False
            ast.literal_eval(arg)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return all(k.arg is not None for k in node.keywords)


def _balanced_end(text: str, open_at: int) -> int | None:
    """Index after the bracket matching the one at `open_at` (quotes respected)."""
    pairs = {"(": ")", "[": "]", "{": "}"}
    stack: list[str] = []
    i = open_at
    while i < len(text):
        ch = text[i]
        if ch in "'\"":
            end = _string_end(text, i)
            if end is None:
                return None
            i = end
            continue
        if ch in pairs:
            stack.append(pairs[ch])
        elif ch in ")]}":
            if not stack or stack.pop() != ch:
                return None
            if not stack:
                return i + 1
        i += 1
    return None


def _string_end(text: str, quote_at: int) -> int | None:
    quote = text[quote_at]
    i = quote_at + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == quote:
            return i + 1
        if text[i] == "\n":
            return None
        i += 1
    return None


def _kind(example: Example) -> str:
    try:
        value = ast.literal_eval(example.expected)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return "?"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


def _consistent(examples: list[Example]) -> list[Example]:
    """Drop weak (`=`) examples whose value types disagree with the strong ones or with each
    other: `tri(1) = 3` beside `tri(3) = [1, 3, 2, 8]` is a definition, not an example."""
    weak = [e for e in examples if e.weak]
    if not weak:
        return examples
    strong_kinds = {_kind(e) for e in examples if not e.weak}
    weak_kinds = {_kind(e) for e in weak}
    if (strong_kinds and not weak_kinds <= strong_kinds) or len(weak_kinds) > 1:
        return [e for e in examples if not e.weak]
    return examples
