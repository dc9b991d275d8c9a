"""Probe calls: inputs near a docstring's own examples, for comparing what candidates do.

A candidate that passes the docstring's examples can still be wrong on every other input. When a
function has no tests but those examples, two candidates drawn from different prompts that both
pass are compared on inputs the examples suggest: each example's literal arguments, changed one
at a time (a number one up or down, a list shorter, reversed or empty, a string cut or
swapped). Where they behave alike the pass is trusted; where they differ, more candidates vote
(`pipeline.verify`). Only literals are changed, so a probe call is as safe to evaluate as the
example it came from; what the function does with it runs in the sandbox like any test.

The examples' own inputs are left out: every passing candidate already agrees there.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .examples import Example

MAX_PROBES = 24
_MAX_MAGNITUDE = 10**6
_MAX_LENGTH = 64
_DOCTEST_SOURCE = re.compile(r"^\s*>>>\s?(.*)$")
_DOCTEST_MORE = re.compile(r"^\s*\.\.\.\s?(.*)$")


@dataclass(frozen=True)
class ProbeCall:
    """One call of the target: positional and keyword arguments as literal sources."""

    args: tuple[str, ...]
    kwargs: tuple[tuple[str, str], ...] = ()

    def source(self, name: str) -> str:
        parts = [*self.args, *(f"{key}={value}" for key, value in self.kwargs)]
        return f"{name}({', '.join(parts)})"

    def as_record(self) -> dict[str, Any]:
        return {"args": list(self.args), "kwargs": dict(self.kwargs)}


def probe_calls(docstring: str, name: str, examples: Sequence[Example] = (),
                limit: int = MAX_PROBES) -> list[ProbeCall]:
    """Calls of `name` near the literal calls its docstring shows (doctest lines and prose
    `examples`), at most `limit`, the examples' own calls left out; [] when it shows none."""
    short = name.rsplit(".", 1)[-1]
    shown: list[tuple[list[Any], list[tuple[str, Any]]]] = []
    for source in [*_doctest_sources(docstring), *(example.call for example in examples)]:
        for call in _calls_of(source, short):
            literal = _literal_arguments(call)
            if literal is not None and literal not in shown:
                shown.append(literal)
    seen = {_key(args, kwargs) for args, kwargs in shown}
    # every example's first change of every argument, then the second changes, and so on:
    # a short list of probes still touches every argument of every example
    per_slot: list[list[tuple[list[Any], list[tuple[str, Any]]]]] = []
    for args, kwargs in shown:
        for i, value in enumerate(args):
            per_slot.append([([*args[:i], changed, *args[i + 1:]], kwargs)
                             for changed in variants(value)])
        for j, (key, value) in enumerate(kwargs):
            per_slot.append([(args, [*kwargs[:j], (key, changed), *kwargs[j + 1:]])
                             for changed in variants(value)])
    probes: list[ProbeCall] = []
    depth = max((len(slot) for slot in per_slot), default=0)
    for level in range(depth):
        for slot in per_slot:
            if level >= len(slot) or len(probes) >= limit:
                continue
            args, kwargs = slot[level]
            key = _key(args, kwargs)
            if key in seen:
                continue
            seen.add(key)
            probes.append(ProbeCall(tuple(repr(a) for a in args),
                                    tuple((k, repr(v)) for k, v in kwargs)))
    return probes


def variants(value: Any) -> list[Any]:
    """Literals near `value` of the same kind, most telling first; [] for a kind not changed."""
    out: list[Any]
    if isinstance(value, bool):
        out = [not value]
    elif isinstance(value, int):
        out = [value + 1, value - 1, 0, -value, 2 * value + 1]
        out = [v for v in out if abs(v) <= _MAX_MAGNITUDE]
    elif isinstance(value, float):
        out = [value + 0.5, -value, 0.0, 2 * value]
        out = [v for v in out if math.isfinite(v)]
    elif isinstance(value, str):
        out = [value[:-1], "", value[::-1], value + value[:1], value[1:], value.swapcase()]
    elif isinstance(value, (list, tuple)):
        kind = type(value)
        out = [kind(value[:-1]), kind(), kind(value[::-1]), kind([*value, *value[:1]]),
               kind(value[1:])]
        if value:
            out += [kind([changed, *value[1:]]) for changed in variants(value[0])[:2]]
    elif isinstance(value, dict):
        items = list(value.items())
        out = [dict(items[:-1]), {}]
    else:
        return []
    unique: list[Any] = []
    for v in out:
        if _size(v) <= _MAX_LENGTH and not _same(v, value) and not any(_same(v, u)
                                                                      for u in unique):
            unique.append(v)
    return unique


def _doctest_sources(docstring: str) -> list[str]:
    """The source of each `>>>` example (with its `...` continuation lines)."""
    sources: list[str] = []
    current: list[str] | None = None
    for line in docstring.splitlines():
        start = _DOCTEST_SOURCE.match(line)
        more = _DOCTEST_MORE.match(line)
        if start:
            if current:
                sources.append("\n".join(current))
            current = [start.group(1)]
        elif more and current is not None:
            current.append(more.group(1))
        else:
            if current:
                sources.append("\n".join(current))
            current = None
    if current:
        sources.append("\n".join(current))
    return sources


def _calls_of(source: str, name: str) -> list[ast.Call]:
    try:
        tree = ast.parse(source.strip(), mode="exec")
    except SyntaxError:
        return []
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name) and node.func.id == name]


def _literal_arguments(call: ast.Call) -> tuple[list[Any], list[tuple[str, Any]]] | None:
    """The call's arguments as values when every one is a literal whose repr reads back
    (no `*args`, no `**kwargs`, no NaN)."""
    if any(isinstance(arg, ast.Starred) for arg in call.args) or any(
            kw.arg is None for kw in call.keywords):
        return None
    try:
        args = [ast.literal_eval(arg) for arg in call.args]
        kwargs = [(str(kw.arg), ast.literal_eval(kw.value)) for kw in call.keywords]
        if any(not _same(ast.literal_eval(repr(value)), value)
               for value in [*args, *(v for _, v in kwargs)]):
            return None
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    return args, kwargs


def _key(args: list[Any], kwargs: list[tuple[str, Any]]) -> str:
    return repr((args, kwargs))


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and repr(a) == repr(b)


def _size(value: Any) -> int:
    if isinstance(value, (str, list, tuple, dict)):
        return len(value)
    return 0
