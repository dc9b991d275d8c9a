"""GBNF grammars for every structured model output, and the parsers that read them back.

Each grammar has a parser here; a grammar-constrained completion that finished (not cut by
max_tokens) always parses. The parsers raise `GrammarParseError` otherwise, never guess.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..data import INTENTS


class GrammarParseError(ValueError):
    """Text that does not have the structure its grammar promised."""


def gbnf_literal(text: str) -> str:
    """A GBNF string literal for `text` (quotes, backslashes and control characters escaped)."""
    escaped = (text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
               .replace("\r", "\\r").replace("\t", "\\t"))
    return f'"{escaped}"'


def alternatives_grammar(options: Sequence[str]) -> str:
    """`root ::= "a" | "b" | ...` for a fixed set of strings."""
    if not options:
        raise ValueError("a choice grammar needs at least one option")
    return "root ::= " + " | ".join(gbnf_literal(o) for o in options) + "\n"


INTENT_GRAMMAR = alternatives_grammar(INTENTS)
YES_NO_GRAMMAR = alternatives_grammar(("yes", "no"))

LINE_RANGE_GRAMMAR = """\
root ::= "L" num "-L" num
num ::= [1-9] [0-9]{0,4}
"""


def choice_grammar(labels: Sequence[str]) -> str:
    """One of N labelled options; the model answers with the label only."""
    if len(set(labels)) != len(labels):
        raise ValueError(f"choice labels must be distinct: {list(labels)}")
    return alternatives_grammar(labels)


def option_labels(count: int) -> list[str]:
    """A, B, C, ... for `count` options (then A1, B1, ... past 26)."""
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return [letters[i % 26] + (str(i // 26) if i >= 26 else "") for i in range(count)]


_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def python_function_grammar(name: str, *, indent: str = "    ", max_body_lines: int = 80) -> str:
    """Exactly one Python function definition named `name`.

    Structure enforced: optional decorators, `def name(params)` (`async def` allowed), optional
    return annotation, `:`, newline, a first body line with content indented by `indent`, then
    up to `max_body_lines` body lines that are blank or indented at least `indent`. The text of
    a body line is free: Python validity is the verification gate's job, not the grammar's.
    """
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a Python identifier: {name!r}")
    ind = gbnf_literal(indent)
    return f"""\
root ::= decorator{{0,3}} ("async ")? "def " {gbnf_literal(name)} "(" params ")" ret? ":" "\\n" first rest
decorator ::= "@" [A-Za-z_] [^\\n]* "\\n"
params ::= ([^()\\n] | "(" [^()\\n]* ")")*
ret ::= " -> " [A-Za-z_] [A-Za-z0-9_.,| \\[\\]]{{0,40}}
first ::= {ind} [^ \\t\\n] [^\\n]* "\\n"
rest ::= line{{0,{max_body_lines}}}
line ::= ({ind} [^\\n]*)? "\\n"
"""


# Two blank lines inside a function body mean the model has moved on: stop there.
ENVELOPE_STOPS = ("\n\n\n",)


# --- parsers ----------------------------------------------------------------------------------


def parse_alternative(text: str, options: Sequence[str]) -> str:
    value = text.strip()
    if value not in options:
        raise GrammarParseError(f"expected one of {list(options)}, got {text!r}")
    return value


def parse_intent(text: str) -> str:
    return parse_alternative(text, INTENTS)


def parse_yes_no(text: str) -> bool:
    return parse_alternative(text, ("yes", "no")) == "yes"


def parse_choice(text: str, labels: Sequence[str]) -> str:
    return parse_alternative(text, labels)


_LINE_RANGE = re.compile(r"^L([1-9][0-9]*)-L([1-9][0-9]*)$")


def parse_line_range(text: str) -> tuple[int, int]:
    """`L12-L30` -> (12, 30); a reversed range is put in order."""
    match = _LINE_RANGE.match(text.strip())
    if not match:
        raise GrammarParseError(f"expected a line range like L12-L30, got {text!r}")
    a, b = int(match.group(1)), int(match.group(2))
    return (a, b) if a <= b else (b, a)


@dataclass(frozen=True)
class FunctionEnvelope:
    """A parsed edit envelope: the function's text and whether Python itself accepts it."""

    name: str
    text: str
    body_lines: int
    valid_python: bool


def parse_python_function(text: str, name: str, *, complete_lines_only: bool = False) -> FunctionEnvelope:
    """Check the edit-envelope structure: decorators, `def name(...)...:`, an indented body.

    `complete_lines_only` drops a trailing unfinished line first (for a text cut by max_tokens).
    """
    import ast

    if complete_lines_only and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    index = 0
    while index < len(lines) and lines[index].startswith("@"):
        index += 1
    if index >= len(lines):
        raise GrammarParseError(f"no def line for {name!r}")
    header = re.match(rf"^(async )?def {re.escape(name)}\(.*\)( -> [^:]+)?:$", lines[index])
    if not header:
        raise GrammarParseError(f"expected 'def {name}(...):', got {lines[index]!r}")
    body = lines[index + 1:]
    if not body or not body[0].strip() or not body[0].startswith((" ", "\t")):
        raise GrammarParseError(f"function {name!r} has no indented body")
    for line in body:
        if line.strip() and not line.startswith((" ", "\t")):
            raise GrammarParseError(f"line outside the function body: {line!r}")
    function_text = "\n".join(lines) + "\n"
    try:
        ast.parse(function_text)
        valid = True
    except SyntaxError:
        valid = False
    return FunctionEnvelope(name, function_text, sum(1 for b in body if b.strip()), valid)
