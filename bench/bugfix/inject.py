"""Single-line bugs injected into correct code (the HumanEvalFix recipe).

`candidate_bugs(module, name)` lists every one-line mutation of the function `name` in
`module`, by kind:

  operator            a comparison or arithmetic operator swapped (< for <=, + for -, and/or)
  off_by_one          an integer literal one more (or one less)
  wrong_variable      a local variable read where another one should be
  inverted_condition  an if/while/comprehension test negated
  missing_condition   the last operand of an and/or test dropped
  wrong_return        the returned value changed (another local, a flipped bool, not (...))

Every mutation changes one line, keeps the module parseable, and is deterministic.
`choose_bug` picks one per problem that its tests reject (see bench.bugfix.build).
"""

from __future__ import annotations

import ast
import io
import random
import tokenize
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

KINDS = ("operator", "off_by_one", "wrong_variable", "inverted_condition", "missing_condition",
         "wrong_return")
OPERATOR_SWAPS = {"<": "<=", "<=": "<", ">": ">=", ">=": ">", "==": "!=", "!=": "==",
                  "+": "-", "-": "+", "and": "or", "or": "and", "//": "%", "%": "//"}


@dataclass(frozen=True)
class Bug:
    """One line of the module replaced: `line` is 0-based, `original` and `buggy` the whole
    line's text without its line break."""

    kind: str
    line: int
    original: str
    buggy: str

    def apply(self, module: str) -> str:
        lines = module.split("\n")
        if lines[self.line] != self.original:
            raise ValueError(f"line {self.line + 1} is not {self.original!r}")
        lines[self.line] = self.buggy
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return asdict(self)


def _function(tree: ast.Module, name: str) -> ast.FunctionDef:
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    raise ValueError(f"no top-level function {name!r}")


def _body_lines(function: ast.FunctionDef) -> set[int]:
    """0-based lines of the function's statements, its docstring left out."""
    body = function.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]
    lines: set[int] = set()
    for statement in body:
        lines.update(range(statement.lineno - 1, (statement.end_lineno or statement.lineno)))
    return lines


def _locals(function: ast.FunctionDef) -> list[str]:
    """Parameters and every name the function binds, sorted."""
    names = {a.arg for a in [*function.args.posonlyargs, *function.args.args,
                             *function.args.kwonlyargs]}
    for node in ast.walk(function):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return sorted(names)


class _Lines:
    """The module's lines, with replacement of a single-line node's source by character."""

    def __init__(self, module: str) -> None:
        self.lines = module.split("\n")

    def char_col(self, line: int, byte_col: int) -> int:
        return len(self.lines[line].encode("utf-8")[:byte_col].decode("utf-8", "replace"))

    def single_line(self, node: ast.AST) -> bool:
        return getattr(node, "lineno", None) is not None and node.lineno == node.end_lineno

    def segment(self, node: ast.expr) -> tuple[int, int, int]:
        line = node.lineno - 1
        return (line, self.char_col(line, node.col_offset),
                self.char_col(line, node.end_col_offset or node.col_offset))

    def replace(self, line: int, start: int, end: int, text: str) -> str:
        original = self.lines[line]
        return original[:start] + text + original[end:]


def candidate_bugs(module: str, name: str) -> list[Bug]:
    """Every single-line mutation of function `name`, in a fixed order (kind, line, column),
    each parseable and different from the original."""
    tree = ast.parse(module)
    function = _function(tree, name)
    body = _body_lines(function)
    lines = _Lines(module)
    found: list[Bug] = []
    seen: set[tuple[int, str]] = set()

    def add(kind: str, line: int, buggy: str) -> None:
        original = lines.lines[line]
        if buggy == original or (line, buggy) in seen:
            return
        candidate = Bug(kind, line, original, buggy)
        try:
            ast.parse(candidate.apply(module))
        except SyntaxError:
            return
        seen.add((line, buggy))
        found.append(candidate)

    for kind, generator in _GENERATORS.items():
        for line, buggy in generator(module, function, body, lines):
            add(kind, line, buggy)
    return found


Edits = Iterator[tuple[int, str]]


def _operators(module: str, function: ast.FunctionDef, body: set[int], lines: _Lines) -> Edits:
    for token in tokenize.generate_tokens(io.StringIO(module).readline):
        line = token.start[0] - 1
        if line not in body or token.start[0] != token.end[0]:
            continue
        if (token.type == tokenize.OP or token.string in ("and", "or")) \
                and token.string in OPERATOR_SWAPS:
            yield line, lines.replace(line, token.start[1], token.end[1],
                                      OPERATOR_SWAPS[token.string])


def _off_by_one(module: str, function: ast.FunctionDef, body: set[int], lines: _Lines) -> Edits:
    for node in ast.walk(function):
        if isinstance(node, ast.Constant) and type(node.value) is int \
                and lines.single_line(node) and node.lineno - 1 in body:
            line, start, end = lines.segment(node)
            yield line, lines.replace(line, start, end, str(node.value + 1))
            if node.value > 0:
                yield line, lines.replace(line, start, end, str(node.value - 1))


def _wrong_variable(module: str, function: ast.FunctionDef, body: set[int],
                    lines: _Lines) -> Edits:
    names = _locals(function)
    returns = {id(n.value) for n in ast.walk(function) if isinstance(n, ast.Return) and n.value}
    for node in ast.walk(function):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in names \
                and node.lineno - 1 in body and id(node) not in returns and len(names) > 1:
            other = names[(names.index(node.id) + 1) % len(names)]
            line, start, end = lines.segment(node)
            yield line, lines.replace(line, start, end, other)


def _tests(function: ast.FunctionDef) -> Iterator[ast.expr]:
    for node in ast.walk(function):
        if isinstance(node, ast.If | ast.While | ast.IfExp):
            yield node.test
        elif isinstance(node, ast.comprehension):
            yield from node.ifs


def _inverted(module: str, function: ast.FunctionDef, body: set[int], lines: _Lines) -> Edits:
    for test in _tests(function):
        if lines.single_line(test) and test.lineno - 1 in body:
            line, start, end = lines.segment(test)
            text = lines.lines[line][start:end]
            if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
                yield line, lines.replace(line, start, end, ast.unparse(test.operand))
            else:
                yield line, lines.replace(line, start, end, f"not ({text})")


def _missing(module: str, function: ast.FunctionDef, body: set[int], lines: _Lines) -> Edits:
    for test in _tests(function):
        if isinstance(test, ast.BoolOp) and lines.single_line(test) and test.lineno - 1 in body:
            line, start, end = lines.segment(test)
            kept = [lines.lines[line][s:e] for _, s, e in map(lines.segment, test.values[:-1])]
            joiner = " and " if isinstance(test.op, ast.And) else " or "
            yield line, lines.replace(line, start, end, joiner.join(kept))


def _wrong_return(module: str, function: ast.FunctionDef, body: set[int],
                  lines: _Lines) -> Edits:
    names = _locals(function)
    for node in ast.walk(function):
        if not (isinstance(node, ast.Return) and node.value is not None
                and lines.single_line(node.value) and node.lineno - 1 in body):
            continue
        value = node.value
        line, start, end = lines.segment(value)
        text = lines.lines[line][start:end]
        if isinstance(value, ast.Name) and value.id in names and len(names) > 1:
            replacement = names[(names.index(value.id) + 1) % len(names)]
        elif isinstance(value, ast.Constant) and isinstance(value.value, bool):
            replacement = str(not value.value)
        elif isinstance(value, ast.Constant) and type(value.value) is int:
            replacement = str(value.value + 1)
        elif isinstance(value, ast.Compare | ast.BoolOp):
            replacement = f"not ({text})"
        elif isinstance(value, ast.Call | ast.Subscript | ast.BinOp):
            replacement = f"{text}[::-1]" if isinstance(value, ast.Call) and \
                isinstance(value.func, ast.Name) and value.func.id in ("sorted", "list") \
                else None
            if replacement is None:
                continue
        else:
            continue
        yield line, lines.replace(line, start, end, replacement)


_GENERATORS: dict[str, Callable[..., Edits]] = {
    "operator": _operators, "off_by_one": _off_by_one, "wrong_variable": _wrong_variable,
    "inverted_condition": _inverted, "missing_condition": _missing, "wrong_return": _wrong_return}


def choose_bug(module: str, name: str, number: int, fails: Callable[[str], bool]) -> Bug | None:
    """One bug for problem `number`: the kinds tried in an order rotated by the number (so the
    set mixes kinds), the candidates of a kind in an order shuffled by it; the first one that
    `fails(buggy_module)` confirms is taken. None when no mutation fails the tests."""
    by_kind: dict[str, list[Bug]] = {kind: [] for kind in KINDS}
    for bug in candidate_bugs(module, name):
        by_kind[bug.kind].append(bug)
    rng = random.Random(number)
    for i in range(len(KINDS)):
        kind = KINDS[(number + i) % len(KINDS)]
        bugs = list(by_kind[kind])
        rng.shuffle(bugs)
        for bug in bugs:
            if fails(bug.apply(module)):
                return bug
    return None
