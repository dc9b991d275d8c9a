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

Given the function's parameters, two forms that name the arguments instead of writing a call
count as well (the call is built from them, in parameter order):

    Input: arr = [-3, -4, 5], k = 3          Input: [4, 2, 3]
    Output: [-4, -3, 5]                      Output: [2, 1]

    For s = "abcde", c = "ae", the result should be ('bcd', False)

Every name must be a parameter and every required parameter must be given.

A docstring that never calls its own function but shows examples of one other name that
neither the module binds nor the project defines (the function was renamed, the docstring was
copied) states the function's behaviour under the old name: `grade_equation([4.0, 3]) ==>
['A+', 'B']` in the docstring of `numerical_letter_grade` checks
`numerical_letter_grade([4.0, 3])`. Only strong operators count there, and every call must fit
the function's parameters.
"""

from __future__ import annotations

import ast
import builtins
import keyword
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

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
class Parameter:
    """One parameter of the target: how it may be passed, whether it must be."""

    name: str
    required: bool = True
    positional: bool = True
    keyword: bool = True


def function_parameters(node: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[Parameter, ...]:
    """The parameters of a parsed function; () when it also takes `*args` or `**kwargs` (a
    named argument could then mean anything)."""
    args = node.args
    if args.vararg is not None or args.kwarg is not None:
        return ()
    positional = [*args.posonlyargs, *args.args]
    first_default = len(positional) - len(args.defaults)
    params = [Parameter(a.arg, required=i < first_default, keyword=a not in args.posonlyargs)
              for i, a in enumerate(positional)]
    params += [Parameter(a.arg, required=default is None, positional=False)
               for a, default in zip(args.kwonlyargs, args.kw_defaults, strict=True)]
    return tuple(params)


def bound_names(tree: ast.AST) -> set[str]:
    """Every name `tree` binds anywhere (definitions, imports, assignments, parameters);
    "*" when it star-imports."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
    return names


@dataclass(frozen=True)
class Example:
    """One `call -> expected` check; `alternatives` are other accepted values (sources)."""

    call: str  # exact source (a call may span lines inside its brackets)
    expected: str
    alternatives: tuple[str, ...] = ()
    line: int = 0  # 1-based line inside the docstring
    weak: bool = False
    guard: str = ""  # a source evaluated first: when it raises, the check is skipped

    @property
    def display(self) -> str:
        """The call on one line, for feedback."""
        return one_line(self.call)

    def as_record(self) -> dict[str, object]:
        return {"call": self.call, "display": self.display, "want": one_line(self.expected),
                "expected": [self.expected, *self.alternatives], "line": self.line,
                "guard": self.guard}


def one_line(source: str) -> str:
    """`source` with its line breaks (and the indentation around them) as single spaces."""
    return re.sub(r"[ \t]*\n\s*", " ", source)


def docstring_examples(docstring: str, name: str, parameters: Sequence[Parameter] = (),
                       bound: Collection[str] | None = None) -> list[Example]:
    """The checks `docstring` states about function `name` (its bare name); with its
    `parameters`, also the `Input:`/`Output:` and `For x = ..., the result should be` forms;
    with the names `bound` by the module or defined elsewhere in the project ("*" for a star
    import), the examples of a function's old name when the docstring shows none of its own."""
    if not docstring or not name.isidentifier():
        return []
    found: list[Example] = []
    seen: set[str] = set()
    if parameters:
        for named in _named_argument_examples(docstring, name, parameters):
            key = _call_key(named.call)
            if key not in seen and len(found) < _MAX_EXAMPLES:
                seen.add(key)
                found.append(named)
    for match in re.finditer(rf"(?<![\w.]){re.escape(name)}\s*\(", docstring):
        start = match.start()
        if _on_doctest_line(docstring, start):
            continue  # doctest's own syntax: doctest runs it
        if len(found) >= _MAX_EXAMPLES:
            break
        example = _example_at(docstring, start, match.end() - 1, name)
        if example is None or _call_key(example.call) in seen:
            continue
        seen.add(_call_key(example.call))
        found.append(example)
    if not found and parameters and bound is not None:
        found = _renamed_examples(docstring, name, parameters, bound)
    found.sort(key=lambda e: e.line)
    return _consistent(found)


def _on_doctest_line(docstring: str, position: int) -> bool:
    """Whether `position` follows a `>>>` or `...` prompt on its line."""
    line_start = docstring.rfind("\n", 0, position) + 1
    return docstring[line_start:position].lstrip().startswith((">>>", "..."))


def _call_key(call: str) -> str:
    """One spelling of a call, so the same example in two forms counts once."""
    try:
        return ast.unparse(ast.parse(call, mode="eval"))
    except (SyntaxError, ValueError, RecursionError):
        return call


_CALLED_NAME = re.compile(r"(?<![\w.])([A-Za-z_]\w*)\s*\(")


def called_names(docstring: str) -> set[str]:
    """The bare names `docstring` writes calls of (`f(` but not `obj.f(`)."""
    return {match.group(1) for match in _CALLED_NAME.finditer(docstring)}


def _renamed_examples(docstring: str, name: str, parameters: Sequence[Parameter],
                      bound: Collection[str]) -> list[Example]:
    """Examples of the one unbound name the docstring calls, as calls of `name`; none when
    there are two such names (which one is the function?) or a call does not fit."""
    if "*" in bound:
        return []  # a star import may bind any name
    by_name: dict[str, list[Example]] = {}
    for match in _CALLED_NAME.finditer(docstring):
        other = match.group(1)
        if (other == name or other in bound or keyword.iskeyword(other)
                or hasattr(builtins, other)):
            continue
        if _on_doctest_line(docstring, match.start()):
            continue
        example = _example_at(docstring, match.start(), match.end() - 1, other)
        if example is not None and not example.weak:
            by_name.setdefault(other, []).append(example)
    if len(by_name) != 1:
        return []
    [(other, examples)] = by_name.items()
    renamed: list[Example] = []
    seen: set[str] = set()
    for example in examples:
        call = name + example.call[len(other):]
        if not _fits(call, parameters):
            return []
        key = _call_key(call)
        if key not in seen and len(renamed) < _MAX_EXAMPLES:
            seen.add(key)
            renamed.append(replace(example, call=call))
    return renamed


def _fits(call: str, parameters: Sequence[Parameter]) -> bool:
    """Whether a literal call passes every required parameter and nothing unknown."""
    node = ast.parse(call, mode="eval").body
    if not isinstance(node, ast.Call):
        return False
    positional = [p for p in parameters if p.positional]
    if len(node.args) > len(positional):
        return False
    given = {p.name for p in positional[:len(node.args)]}
    keywords = {p.name for p in parameters if p.keyword}
    for argument in node.keywords:
        if argument.arg not in keywords or argument.arg in given:
            return False
        given.add(argument.arg)
    return all(p.name in given for p in parameters if p.required)


_INPUT = re.compile(r"^[ \t]*(?:[-*][ \t]*)?input[ \t]*:[ \t]*", re.IGNORECASE | re.MULTILINE)
_OUTPUT_LINE = re.compile(r"\n(?:[ \t]*\n)*[ \t]*(?:[-*][ \t]*)?output[ \t]*:[ \t]*",
                          re.IGNORECASE)
_FOR = re.compile(r"(?<![\w.])for[ \t]+(?=[A-Za-z_]\w*[ \t]*=(?!=))", re.IGNORECASE)
# What may introduce the value in a `For x = ...` sentence; the last one on the line counts.
_FOR_RESULT = re.compile(
    r"(?:(?:the[ \t]+)?(?:output|result|answer|return[ \t]+value)[ \t]+"
    r"(?:should[ \t]+be|will[ \t]+be|is)|should[ \t]+return|should[ \t]+be|returns|"
    r"==>|=>|->|==|\u279e|\u2192)[ \t]*:?[ \t]*", re.IGNORECASE)
_ASSIGNMENT = re.compile(r"[ \t]*([A-Za-z_]\w*)[ \t]*=(?!=)[ \t]*")
_ARGUMENT_GLUE = re.compile(r"[ \t]*(?:,|and\b)[ \t]*")
_COMMA = re.compile(r"[ \t]*,[ \t]*")


def _named_argument_examples(docstring: str, name: str,
                             parameters: Sequence[Parameter]) -> list[Example]:
    found: list[Example] = []
    for match in _INPUT.finditer(docstring):
        example = _input_output_at(docstring, match.end(), name, parameters)
        if example is not None:
            found.append(example)
    for match in _FOR.finditer(docstring):
        example = _for_sentence_at(docstring, match.end(), name, parameters)
        if example is not None:
            found.append(example)
    return found


def _input_output_at(text: str, start: int, name: str,
                     parameters: Sequence[Parameter]) -> Example | None:
    """`Input: <arguments>` and, on the next non-blank line, `Output: <value>`."""
    parsed = _assignments(text, start)
    if parsed is not None:
        given, end = parsed
        arguments = _arguments(given, parameters)
    else:
        literals = _literal_list(text, start)
        if literals is None:
            return None
        values, end = literals
        arguments = _positional_arguments(values, parameters)
    if arguments is None or not _CLEAN_REST.match(_rest_of_line(text, end)):
        return None
    line_end = text.find("\n", end)
    output = _OUTPUT_LINE.match(text, line_end) if line_end >= 0 else None  # next non-blank
    if output is None:
        return None
    line_end = text.find("\n", output.end())
    return _named_example(text, start, output.end(), len(text) if line_end < 0 else line_end,
                          f"{name}({arguments})")


def _for_sentence_at(text: str, start: int, name: str,
                     parameters: Sequence[Parameter]) -> Example | None:
    """`For a = 1, b = 2 the output should be 3`: the value after the line's last result
    phrase, which must end the line."""
    parsed = _assignments(text, start)
    if parsed is None:
        return None
    given, end = parsed
    arguments = _arguments(given, parameters)
    if arguments is None:
        return None
    line_end = text.find("\n", end)
    line_end = len(text) if line_end < 0 else line_end
    phrases = list(_FOR_RESULT.finditer(text, end, line_end))
    if not phrases:
        return None
    return _named_example(text, start, phrases[-1].end(), line_end, f"{name}({arguments})")


def _named_example(text: str, start: int, value_start: int, line_end: int,
                   call: str) -> Example | None:
    """The example `call -> the literal at value_start`, which must end its line; `start` is
    where the arguments begin (for the line number)."""
    value = _value_at(text, value_start, line_end, weak=True)
    if value is None:
        return None
    expected, alternatives = value
    return Example(call, expected, alternatives, text.count("\n", 0, start) + 1)


def _assignments(text: str, start: int) -> tuple[dict[str, str], int] | None:
    """`a = 1, b = "x" and c = [2]` at `start`: ({name: literal source}, end)."""
    given: dict[str, str] = {}
    position = start
    while True:
        assignment = _ASSIGNMENT.match(text, position)
        if assignment is None:
            break
        literal = _python_literal(text, assignment.end())
        if literal is None:
            return None
        name = assignment.group(1)
        if name in given:
            return None
        given[name] = literal[0]
        position = literal[1]
        glue = _ARGUMENT_GLUE.match(text, position)
        if glue is None or _ASSIGNMENT.match(text, glue.end()) is None:
            break
        position = glue.end()
    return (given, position) if given else None


def _literal_list(text: str, start: int) -> tuple[list[str], int] | None:
    """`[4, 2, 3]` or `1, 2` at `start`: the literals' sources and where they end."""
    values: list[str] = []
    position = start
    while True:
        literal = _python_literal(text, position)
        if literal is None:
            return None
        values.append(literal[0])
        position = literal[1]
        comma = _COMMA.match(text, position)
        if comma is None or _python_literal(text, comma.end()) is None:
            return values, position
        position = comma.end()


def _python_literal(text: str, start: int) -> tuple[str, int] | None:
    """Like `_literal_token`, without prose words (`true`, `none`): an argument is code."""
    literal = _literal_token(text, start)
    if literal is None or (literal[0].lower() in _WORD_VALUES
                           and literal[0] not in ("True", "False", "None")):
        return None
    return literal


def _arguments(given: dict[str, str], parameters: Sequence[Parameter]) -> str | None:
    """The argument list for named values: positional while the parameters come in order,
    keywords after a gap; None when a name is unknown or a required parameter is missing."""
    names = {p.name for p in parameters}
    if not set(given) <= names or any(p.required and p.name not in given for p in parameters):
        return None
    parts: list[str] = []
    by_keyword = False
    for parameter in parameters:
        if parameter.name not in given:
            by_keyword = True
            continue
        if parameter.positional and not by_keyword:
            parts.append(given[parameter.name])
        elif parameter.keyword:
            parts.append(f"{parameter.name}={given[parameter.name]}")
        else:
            return None
    return ", ".join(parts)


def _positional_arguments(values: list[str], parameters: Sequence[Parameter]) -> str | None:
    """Bare values in parameter order, when their number fits the positional parameters."""
    positional = [p for p in parameters if p.positional]
    required = [p for p in parameters if p.required]
    if any(not p.positional for p in required):
        return None
    if not len(required) <= len(values) <= len(positional):
        return None
    return ", ".join(values)


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
