"""Round-trip self checks for a function whose inverse the module already implements.

`decode_cyclic` next to a working `encode_cyclic` must undo it: `decode_cyclic(encode_cyclic(x))
== x` for any input the encoder takes. The same holds for encode/decode written the other way
round, and for the other pairs in `_PAIRS` (`to_json`/`from_json`, `compress`/`decompress`).
The checks are built from the names alone, so they stay conservative:

- both functions are module level and take exactly one required positional argument;
- the partner is implemented (its body is more than a docstring, `pass` or `...`);
- the encoding side's parameter is annotated `str`, `bytes` or `int`, which picks the inputs;
- an input the encoding side raises on is skipped when the check runs (its `guard`), so a
  codec with a narrower domain than the sample inputs rejects nothing.

String inputs are lowercase ASCII letters only: every text codec handles them, while spaces,
digits or capitals fall outside some (a shift cipher over `a`-`z`).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from .examples import Example

# (encoding side, decoding side) as name parts
_PAIRS = (("encode", "decode"), ("encrypt", "decrypt"), ("serialize", "deserialize"),
          ("compress", "decompress"), ("escape", "unescape"), ("quote", "unquote"),
          ("pack", "unpack"), ("dumps", "loads"), ("to", "from"), ("encoded", "decoded"))
_INPUTS = {
    "str": ("''", "'a'", "'abc'", "'hello'", "'abcdefg'", "'thequickbrownfoxjumps'"),
    "bytes": ("b''", "b'a'", "b'hello'", "b'\\x00\\x01\\x7f\\xff'"),
    "int": ("0", "1", "7", "42", "1994"),
}


def inverse_checks(module: ast.Module, name: str) -> list[Example]:
    """Round-trip checks of module-level function `name` against its implemented inverse."""
    functions = {node.name: node for node in module.body
                 if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    target = functions.get(name)
    if target is None or isinstance(target, ast.AsyncFunctionDef) or not _one_argument(target):
        return []
    for partner_name, target_decodes in _partners(name):
        partner = functions.get(partner_name)
        if not isinstance(partner, ast.FunctionDef) or not _one_argument(partner) \
                or not _implemented(partner):
            continue
        encoder, decoder = (partner_name, name) if target_decodes else (name, partner_name)
        encoding = partner if target_decodes else target
        kind = _annotation(encoding)
        if kind is None:
            continue
        return [Example(call=f"{decoder}({encoder}({value}))", expected=value,
                        guard=f"{encoder}({value})") for value in _INPUTS[kind]]
    return []


def _partners(name: str) -> Iterator[tuple[str, bool]]:
    """Names that would be `name`'s inverse, each with whether `name` is the decoding side."""
    parts = name.split("_")
    for encoding, decoding in _PAIRS:
        for index, part in enumerate(parts):
            for mine, theirs, decodes in ((encoding, decoding, False), (decoding, encoding, True)):
                if part == mine:
                    yield "_".join([*parts[:index], theirs, *parts[index + 1:]]), decodes
    # a bare pair: `encode` and `decode`
    for encoding, decoding in _PAIRS:
        if name == encoding:
            yield decoding, False
        elif name == decoding:
            yield encoding, True


def _one_argument(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    required = len(positional) - len(args.defaults)
    required_keyword = sum(default is None for default in args.kw_defaults)
    return required == 1 and bool(positional) and not required_keyword and args.vararg is None


def _implemented(node: ast.FunctionDef) -> bool:
    body = list(node.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]  # the docstring
    for statement in body:
        if isinstance(statement, ast.Pass):
            continue
        if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant) \
                and statement.value.value is Ellipsis:
            continue
        if isinstance(statement, ast.Raise) and "NotImplementedError" in ast.unparse(statement):
            continue
        return True
    return False


def _annotation(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    positional = [*node.args.posonlyargs, *node.args.args]
    annotation = positional[0].annotation if positional else None
    if isinstance(annotation, ast.Name) and annotation.id in _INPUTS:
        return annotation.id
    if isinstance(annotation, ast.Constant) and annotation.value in _INPUTS:
        return str(annotation.value)  # a string annotation: `"str"`
    return None
