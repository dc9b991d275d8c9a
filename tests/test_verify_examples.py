"""Prose examples in docstrings become checks; projects without a ruff config get the
correctness rules only (real ruff and the real doctest runner)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from localcode_lsp.config import Config, VerificationConfig
from localcode_lsp.data import Candidate
from localcode_lsp.verify import Gate, VerifyRequest
from localcode_lsp.verify.examples import Parameter, docstring_examples, function_parameters
from localcode_lsp.verify.lint import has_ruff_config, ruff_rule_args
from localcode_lsp.workspace import Workspace


def _pairs(docstring: str, name: str) -> list[tuple[str, str]]:
    return [(e.call, e.expected) for e in docstring_examples(docstring, name)]


@pytest.mark.parametrize(("line", "expected"), [
    ("search([4, 1, 2, 2, 3, 1]) == 2", ("search([4, 1, 2, 2, 3, 1])", "2")),
    ("search([1]) ==> -1", ("search([1])", "-1")),
    ("search('a b') => 'ab'", ("search('a b')", "'ab'")),
    ("search([3], 9) \u279e True", ("search([3], 9)", "True")),
    ("search('Hi') returns 'Hi'", ("search('Hi')", "'Hi'")),
    ("search(15)   # returns \"db1111db\"", ("search(15)", '"db1111db"')),
    ("search(148, 412) should return 16.", ("search(148, 412)", "16")),
    ("search(1, 4) => true", ("search(1, 4)", "True")),
    ("search([1, 3, 2, 0]) == 1 + 9 + 0 + 0 = 10", ("search([1, 3, 2, 0])", "10")),
    ("search([5]) -> [5]  (a single element)", ("search([5])", "[5]")),
    ("search(12, 15) = 14", ("search(12, 15)", "14")),
])
def test_prose_example_forms(line, expected):
    assert _pairs(f"Do it.\n    {line}\n", "search") == [expected]


@pytest.mark.parametrize("line", [
    "search(x) == 2",  # not a literal argument
    "search([1]) == a list",  # not a literal value
    "search([1]) == 1 + 2 and more",  # arithmetic without a result
    "research([1]) == 2",  # another function
    "self.search([1]) == 2",  # a method of something else
    "search([1]) is fast",  # no operator
    ">>> search([1]) == 2",  # doctest's own syntax: doctest runs it
    'search(["a", "bb"]) == ""a"',  # broken quoting
])
def test_not_an_example(line):
    assert _pairs(f"{line}\n", "search") == []


def test_multiline_call_and_parenthesised_single_value():
    docstring = ('get_row([\n      [1, 2],\n      [1, 1]\n    ], 1) == [(0, 0), (1, 0)]\n'
                 'bf("Earth", "Mercury") ==> ("Venus")\n')
    [row] = docstring_examples(docstring, "get_row")
    assert row.call == "get_row([\n      [1, 2],\n      [1, 1]\n    ], 1)"
    assert row.display == "get_row([ [1, 2], [1, 1] ], 1)" and row.expected == "[(0, 0), (1, 0)]"
    spaced = docstring_examples('pad(["a  b",\n     "c"]) == "a  b c"\n', "pad")
    assert spaced[0].call == 'pad(["a  b",\n     "c"])'  # spaces inside strings are kept
    [venus] = docstring_examples(docstring, "bf")
    assert venus.expected == '("Venus")' and venus.alternatives == ('("Venus",)',)


def test_weak_equals_that_disagree_in_type_are_definitions():
    docstring = ("Defined by:\n    tri(1) = 3\n    tri(n) = 1 + n / 2, if n is even.\n"
                 "    tri(4) = 3\nExamples:\n    tri(3) = [1, 3, 2, 8]\n")
    assert docstring_examples(docstring, "tri") == []
    strong = docstring + "    tri(0) == [1]\n"
    assert _pairs(strong, "tri") == [("tri(0)", "[1]")]


def _params(signature: str) -> tuple[Parameter, ...]:
    node = ast.parse(f"def f({signature}): pass").body[0]
    assert isinstance(node, ast.FunctionDef)
    return function_parameters(node)


def _named(docstring: str, name: str, signature: str) -> list[tuple[str, str]]:
    return [(e.call, e.expected) for e in docstring_examples(docstring, name, _params(signature))]


def test_input_output_blocks_become_calls_in_parameter_order():
    docstring = ("Example 1:\n\n    Input: arr = [-3, -4, 5], k = 3\n    Output: [-4, -3, 5]\n\n"
                 "Example 2:\n    Input: k = 2, arr = [4, -4, 4]\n\n    Output: [4, 4]\n"
                 "    Explanation: the two largest.\n")
    assert _named(docstring, "maximum", "arr, k") == [
        ("maximum([-3, -4, 5], 3)", "[-4, -3, 5]"), ("maximum([4, -4, 4], 2)", "[4, 4]")]
    bare = "Input: [4,2,3]\nOutput: [2, 1]  # the smallest even value\nInput: []\nOutput: []\n"
    assert _named(bare, "pluck", "arr") == [("pluck([4,2,3])", "[2, 1]"), ("pluck([])", "[]")]
    assert _named("Input: 1, 2\nOutput: 3\n", "add", "a, b") == [("add(1, 2)", "3")]


def test_for_sentences_take_the_value_after_the_last_result_phrase():
    docstring = ('For s = "abcde", c = "ae", the result should be (\'bcd\',False)\n'
                 'For s = "abcdef", c = "b"  the result should be (\'acdef\',False)\n'
                 'For N = 1000, the sum of digits will be 1 the output should be "1".\n')
    assert _named(docstring, "reverse_delete", "s, c") == [
        ('reverse_delete("abcde", "ae")', "(\'bcd\',False)"),
        ('reverse_delete("abcdef", "b")', "(\'acdef\',False)")]
    assert _named(docstring, "solve", "N") == [("solve(1000)", '"1"')]


def test_named_arguments_skip_gaps_by_keyword_and_respect_positional_only():
    docstring = "Input: text = 'a b', sep = ','\nOutput: 'a b'\n"
    assert _named(docstring, "split", "text, limit=2, sep=' '") == [
        ("split('a b', sep=',')", "'a b'")]
    assert _named(docstring, "split", "text, /, limit=2, *, sep=' '") == [
        ("split('a b', sep=',')", "'a b'")]
    assert _named(docstring, "split", "text, sep, /") == [("split('a b', ',')", "'a b'")]
    # after the gap `sep` would need its name, which a positional-only parameter has not
    assert _named(docstring, "split", "text, limit=2, sep=' ', /") == []
    assert _named("Input: 'a b'\nOutput: 'a b'\n", "split", "*, text") == []


@pytest.mark.parametrize(("docstring", "signature"), [
    ("Input: arr = [1], n = 2\nOutput: [1]\n", "arr, k"),  # `n` is no parameter
    ("Input: arr = [1]\nOutput: [1]\n", "arr, k"),  # required `k` missing
    ("Input: [1]\nOutput: [1]\n", "arr, k"),  # too few values
    ("Input: [1]\n\nThen something else.\nOutput: [1]\n", "arr"),  # Output is not next
    ("Input: [1]\nOutput: a sorted list\n", "arr"),  # prose value
    ("Input: [1] and more\nOutput: [1]\n", "arr"),  # prose after the input
    ("Input: true\nOutput: 1\n", "flag"),  # a prose word, not an argument
    ("Input: [1]\nOutput: [1]\n", "*values"),  # *args: a name could mean anything
    ("For i = 0 the result should be 1\n", "n"),  # a loop variable, not a parameter
    ("For n = 3 we compute 1 + 2 = 3\n", "n"),  # a derivation, no result phrase
    ("For n = 3 it returns 6 because 1 + 2 + 3 = 6\n", "n"),  # the value does not end it
])
def test_not_a_named_argument_example(docstring, signature):
    assert _named(docstring, "f", signature) == []


def test_the_same_example_in_two_forms_counts_once():
    docstring = "f(2) == 4\nInput: 2\nOutput: 4\nFor x = 2 the output should be 4\n"
    assert _named(docstring, "f", "x") == [("f(2)", "4")]


SOURCE = '''def search(lst):
    """The first even number, or -1.

    search([1, 2, 4]) == 2
    search([3]) -> -1
    """
    return -1
'''


def _gate(root: Path) -> Gate:
    return Gate(Workspace(root), Config(verification=VerificationConfig(diff_review=False)))


def test_gate_runs_prose_examples_as_tests(tmp_path):
    (tmp_path / "finder.py").write_text(SOURCE)
    request = VerifyRequest("finder.py", SOURCE, symbol="search", task="implement search")
    gate = _gate(tmp_path)
    good = SOURCE.replace("    return -1\n",
                          "    for x in lst:\n        if x % 2 == 0:\n            return x\n"
                          "    return -1\n")
    verdict = gate.verify(request, Candidate(1, "x", good))
    assert verdict.passed, verdict.feedback
    test = verdict.gates[-1]
    assert test.details["examples"] == 2 and test.details["passed"] == 2
    wrong = SOURCE.replace("    return -1\n", "    return lst[0]\n")
    verdict = gate.verify(request, Candidate(2, "x", wrong))
    assert verdict.feedback == [
        "TEST FAIL: example search \u2014 search([1, 2, 4]) expected 2, got 1",
        "TEST FAIL: example search \u2014 search([3]) expected -1, got 3"]
    crashing = SOURCE.replace("    return -1\n", "    return lst[5]\n")
    verdict = gate.verify(request, Candidate(3, "x", crashing))
    assert verdict.feedback[0] == ("TEST FAIL: example search \u2014 search([1, 2, 4]) raised "
                                   "IndexError: list index out of range")


def test_a_call_spanning_lines_runs_as_written(tmp_path):
    source = ('def pad(words):\n    """Join with two spaces.\n\n    pad(["a",\n         "b"]) '
              '== "a  b"\n    """\n    return ""\n')
    (tmp_path / "pads.py").write_text(source)
    request = VerifyRequest("pads.py", source, symbol="pad", task="implement pad")
    gate = _gate(tmp_path)
    good = gate.verify(request, Candidate(1, "x", source.replace('return ""',
                                                                 'return "  ".join(words)')))
    assert good.passed, good.feedback
    bad = gate.verify(request, Candidate(2, "x", source.replace('return ""',
                                                                'return " ".join(words)')))
    assert bad.feedback == [
        "TEST FAIL: example pad \u2014 pad([\"a\", \"b\"]) expected \"a  b\", got 'a b'"]


def test_float_examples_compare_with_a_tolerance(tmp_path):
    source = ('def area(a, b):\n    """Half the product.\n\n    area(3, 4) == 6.00\n    """\n'
              '    return 0\n')
    (tmp_path / "geo.py").write_text(source)
    request = VerifyRequest("geo.py", source, symbol="area", task="implement area")
    verdict = _gate(tmp_path).verify(request, Candidate(1, "x", source.replace(
        "return 0", "return a * b / 2")))
    assert verdict.passed, verdict.feedback


def test_style_rules_only_with_a_project_ruff_config(tmp_path):
    source = 'def f(x):\n    """Doc."""\n    return 0\n'
    candidate = source.replace("return 0", "if x:\n        return 1\n    else:\n        return None")
    (tmp_path / "mod.py").write_text(source)
    request = VerifyRequest("mod.py", source, symbol="f", task="implement f")
    assert ruff_rule_args(tmp_path, "mod.py") == ["--select", "E9,F,PLE"]
    verdict = _gate(tmp_path).verify(request, Candidate(1, "x", candidate))
    assert verdict.passed, verdict.feedback  # ruff's wider defaults would flag RET505
    unused = source.replace("return 0", "result = 1\n    return 0")
    verdict = _gate(tmp_path).verify(request, Candidate(2, "x", unused))
    assert verdict.feedback == [
        "LINT: F841 local variable 'result' is assigned to but never used (line 3)"]

    (tmp_path / "pyproject.toml").write_text('[tool.ruff.lint]\nselect = ["RET"]\n')
    assert has_ruff_config(tmp_path, "mod.py") and ruff_rule_args(tmp_path, "mod.py") == []
    verdict = _gate(tmp_path).verify(request, Candidate(3, "x", candidate))
    assert not verdict.passed and verdict.feedback[0].startswith("LINT: RET505")


def test_ruff_config_lookup_stops_at_the_workspace_root(tmp_path):
    (tmp_path / "ruff.toml").write_text("")
    project = tmp_path / "project"
    (project / "pkg").mkdir(parents=True)
    assert not has_ruff_config(project, "pkg/mod.py")
    (project / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    assert not has_ruff_config(project, "pkg/mod.py")
    (project / "pkg" / ".ruff.toml").write_text("")
    assert has_ruff_config(project, "pkg/mod.py")


def test_gate_runs_input_output_examples_with_the_target_parameters(tmp_path):
    source = ('def maximum(arr, k):\n    """The k largest, sorted.\n\n'
              '    Input: arr = [-3, -4, 5], k = 3\n    Output: [-4, -3, 5]\n\n'
              '    For arr = [4, -4, 4], k = 2 the output should be [4, 4]\n    """\n'
              '    return []\n')
    (tmp_path / "tops.py").write_text(source)
    request = VerifyRequest("tops.py", source, symbol="maximum", task="implement maximum")
    gate = _gate(tmp_path)
    good = gate.verify(request, Candidate(1, "x", source.replace(
        "return []", "return sorted(sorted(arr)[len(arr) - k:])")))
    assert good.passed, good.feedback
    assert good.gates[-1].details["examples"] == 2
    bad = gate.verify(request, Candidate(2, "x", source.replace("return []",
                                                                "return sorted(arr)[:k]")))
    assert bad.feedback == [
        "TEST FAIL: example maximum \u2014 maximum([4, -4, 4], 2) expected [4, 4], got [-4, 4]"]


def test_examples_of_an_async_function_compare_the_awaited_value(tmp_path):
    source = 'async def double(x):\n    """double(3) == 6"""\n    return 0\n'
    (tmp_path / "aio.py").write_text(source)
    request = VerifyRequest("aio.py", source, symbol="double", task="implement double")
    gate = _gate(tmp_path)
    assert gate.verify(request, Candidate(1, "x", source.replace("return 0",
                                                                 "return x * 2"))).passed
    wrong = gate.verify(request, Candidate(2, "x", source.replace("return 0", "return x")))
    assert wrong.feedback == ["TEST FAIL: example double \u2014 double(3) expected 6, got 3"]


def _renamed(docstring: str, name: str, signature: str, module: str = "") -> list[tuple[str, str]]:
    from localcode_lsp.verify.examples import bound_names

    bound = bound_names(ast.parse(module + f"\ndef {name}({signature}): pass\n"))
    return [(e.call, e.expected)
            for e in docstring_examples(docstring, name, _params(signature), bound)]


def test_examples_under_an_old_name_check_the_renamed_function():
    docstring = ("A list of letter grades.\n\n    Example:\n"
                 "    grade_equation([4.0, 3, 1.7]) ==> ['A+', 'B', 'C-']\n"
                 "    assert grade_equation([]) => []\n")
    assert _renamed(docstring, "letter_grades", "grades") == [
        ("letter_grades([4.0, 3, 1.7])", "['A+', 'B', 'C-']"), ("letter_grades([])", "[]")]
    [example] = docstring_examples("Example:\n    old(1, 2) == 3\n", "add", _params("a, b"),
                                   {"add", "a", "b"})
    assert (example.call, example.line) == ("add(1, 2)", 2)


@pytest.mark.parametrize(("docstring", "signature", "module"), [
    # the function's own examples: any other name is another function
    ("add(1, 2) == 3\nhelper(1) == 2\n", "a, b", ""),
    # a helper the module defines or imports, or a builtin, is that function
    ("helper(1, 2) == 3\n", "a, b", "def helper(a, b): return a + b\n"),
    ("twice(1, 2) == 3\n", "a, b", "from tools import twice\n"),
    ("sorted([2, 1]) == [1, 2]\n", "a, b=0", ""),
    # anything may come from a star import
    ("old(1, 2) == 3\n", "a, b", "from tools import *\n"),
    # two unknown names: which one is this function?
    ("old(1, 2) == 3\nolder(1, 2) == 3\n", "a, b", ""),
    # a call that does not fit the parameters
    ("old(1) == 3\n", "a, b", ""),
    ("old(1, 2, 3) == 3\n", "a, b", ""),
    ("old(1, c=2) == 3\n", "a, b", ""),
    # `=` is how a docstring defines a mathematical function
    ("where g(1) = 3\n", "a", ""),
])
def test_not_an_old_name_example(docstring, signature, module):
    name = "add"
    assert _renamed(docstring, name, signature, module) == (
        [("add(1, 2)", "3")] if docstring.startswith("add(") else [])


def test_gate_checks_an_old_name_example_against_the_target(tmp_path):
    source = ('def evens(values):\n    """The even values.\n\n'
              '    only_even([1, 2, 4]) ==> [2, 4]\n    """\n    return []\n')
    (tmp_path / "nums.py").write_text(source)
    request = VerifyRequest("nums.py", source, symbol="evens", task="implement evens")
    gate = _gate(tmp_path)
    good = gate.verify(request, Candidate(1, "x", source.replace(
        "return []", "return [v for v in values if v % 2 == 0]")))
    assert good.passed, good.feedback
    assert good.gates[-1].details["examples"] == 1
    bad = gate.verify(request, Candidate(2, "x", source.replace("return []", "return values")))
    assert bad.feedback == [
        "TEST FAIL: example evens \u2014 evens([1, 2, 4]) expected [2, 4], got [1, 2, 4]"]
    # the project defines only_even in another file: the example is about that function
    elsewhere = VerifyRequest("nums.py", source, symbol="evens", task="implement evens",
                              defined_elsewhere=frozenset({"only_even"}))
    untested = gate.verify(elsewhere, Candidate(3, "x", source.replace("return []",
                                                                       "return values")))
    assert untested.passed and untested.gates[-1].skipped == "no tests found for evens"
