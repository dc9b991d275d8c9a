"""The one function finder (index.symbols): which function or method holds a position, with
its qualified name and line range, the same from the index and from text parsed on the spot."""

from __future__ import annotations

from pathlib import Path

import pytest

from localcode_lsp.config import Config
from localcode_lsp.index import CodeIndex
from localcode_lsp.index.definitions import function_at, parse_symbols
from localcode_lsp.index.symbols import Symbol, encode_source
from localcode_lsp.workspace import Workspace

SOURCE = '''\
import functools


class Worker:
    """Does work."""

    @functools.cache
    def run(self, job):
        def step(x):
            return x + 1
        return step(job)

    def todo(self):
        """Not yet."""
        raise NotImplementedError


def helper(a, b):  # é ✓
    return a + b
'''


def _at(line: int, column: int) -> Symbol:
    found = function_at(SOURCE, "python", line, column, "w.py")
    assert found is not None, (line, column)
    return found


def _name_at(line: int, column: int) -> str | None:
    found = function_at(SOURCE, "python", line, column, "w.py")
    return found.qualified_name if found is not None else None


def test_qualified_name_and_range_of_a_method() -> None:
    found = _at(10, 8)  # `return step(job)` inside Worker.run
    assert (found.qualified_name, found.kind, found.path) == ("Worker.run", "method", "w.py")
    assert found.line_range == (7, 11)  # the def line .. one past `return step(job)`
    assert found.decorated_start_line == 6
    assert not found.is_stub


def test_innermost_wins_and_the_decorator_belongs_to_the_method() -> None:
    assert _at(9, 12).qualified_name == "Worker.run.step"
    assert _at(6, 4).qualified_name == "Worker.run"  # on `@functools.cache`


def test_stub_end_of_line_and_module_level() -> None:
    todo = _at(14, 200)  # a column past the end clamps to the line's end: still inside
    assert todo.qualified_name == "Worker.todo" and todo.is_stub
    assert _name_at(4, 4) is None  # the class docstring: inside a class, not a function
    assert _name_at(0, 0) is None
    assert _name_at(99, 0) is None


def test_columns_count_code_points_not_bytes() -> None:
    line = SOURCE.splitlines()[17]
    assert line.index("✓") == 23 and len(line.encode()) > len(line)
    assert _at(17, 23).qualified_name == "helper"
    assert _at(18, 4).qualified_name == "helper"


def test_typescript_functions_and_methods() -> None:
    text = "class A {\n  go(x: number) {\n    return x;\n  }\n}\nconst f = (y) => {\n  return y;\n};\n"
    names = [getattr(function_at(text, language, line, column), "qualified_name", None)
             for language, line, column in (("typescript", 2, 4), ("typescript", 6, 2),
                                            ("rust", 0, 0))]
    assert names == ["A.go", "f", None]  # no symbols for rust


def test_index_and_text_agree(tmp_path: Path) -> None:
    (tmp_path / "w.py").write_text(SOURCE)
    index = CodeIndex(Workspace(tmp_path), Config())
    try:
        for line in range(len(SOURCE.splitlines())):
            for column in (0, 4, 12, 40):
                from_index = index.enclosing_function("w.py", line, column)
                assert (from_index.qualified_name if from_index else None) == \
                    _name_at(line, column), (line, column)
    finally:
        index.close()


@pytest.mark.parametrize("language", ["python", "javascript"])
def test_parse_symbols_lists_nested_definitions_in_order(language: str) -> None:
    text = ("def a():\n    def b():\n        pass\n" if language == "python"
            else "function a() {\n  function b() {}\n}\n")
    assert [s.qualified_name for s in parse_symbols(text, language)] == ["a", "a.b"]


@pytest.mark.parametrize("text, line, column, expected", [
    ("def f():\n", 1, 0, "f"),
    ("def f():\n    ", 1, 4, "f"),
    ("def f(a):\n    \n\ndef g():\n    pass\n", 2, 0, "f"),
    ("def f(a):\n    \n\ndef g():\n    pass\n", 3, 0, "g"),
    ("class A:\n    def m(self):\n        \n    def n(self): pass\n", 2, 8, "A.m"),
    ("def outer():\n    def inner():\n        \n    return 1\n", 2, 8, "outer.inner"),
    ("def outer():\n    x = 1\n    \n    return 1\n", 2, 4, "outer"),
    ("def f():\n    \nx = 1\n", 2, 0, None),
])
def test_a_function_being_written_holds_the_blank_lines_below_it(
        text: str, line: int, column: int, expected: str | None) -> None:
    """The cursor under a `def f():` with no body yet is where one asks for that body (the
    server's old regex finder knew this; the AST finder must too)."""
    found = function_at(text, "python", line, column)
    assert (found.qualified_name if found else None) == expected
    if found is not None and found.qualified_name != "outer":
        assert found.is_stub


def test_text_with_broken_surrogates_still_parses() -> None:
    """A lone surrogate (a client's broken UTF-16) or an undecodable byte read from disk must
    not make the finder raise; offsets after it still land in the right function."""
    text = 'x = "\ud800"\ny = "\udcff"\n\n\ndef f():\n    return 1\n'
    found = function_at(text, "python", 5, 4)
    assert found is not None and found.qualified_name == "f"
    assert encode_source("a\udcffb") == b"a\xffb"  # an escaped byte goes back to that byte
    assert encode_source("a\ud800b") == b"a?b"
