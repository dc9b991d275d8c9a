"""Doctest text mended before the runner reads it, and the runner's per-example fallback."""

from __future__ import annotations

import doctest

from localcode_lsp.verify.doctests import mend_line_breaks

# HumanEval/51's docstring as `ast.get_docstring` returns it: the `\n` escapes of a non-raw
# docstring became real line breaks, left of the prompt.
BROKEN = (
    "remove_vowels is a function that takes string and returns string without vowels.\n"
    ">>> remove_vowels('')\n"
    "''\n"
    '>>> remove_vowels("abcdef\nghijklm")\n'
    "'bcdf\nghjklm'\n"
    ">>> remove_vowels('abcdef')\n"
    "'bcdf'\n"
)


def _indented(text: str) -> str:
    return "\n".join("    " + line if line.startswith((">>>", "'")) else line
                     for line in text.split("\n"))


def test_escaped_line_breaks_are_written_back():
    broken = _indented(BROKEN)
    try:
        doctest.DocTestParser().get_examples(broken)
    except ValueError as exc:
        assert "inconsistent leading whitespace" in str(exc)
    else:
        raise AssertionError("the unmended docstring should be rejected by doctest")
    mended = mend_line_breaks(broken)
    examples = doctest.DocTestParser().get_examples(mended)
    assert [(e.source, e.want) for e in examples] == [
        ("remove_vowels('')\n", "''\n"),
        ('remove_vowels("abcdef\\nghijklm")\n', "'bcdf\\nghjklm'\n"),
        ("remove_vowels('abcdef')\n", "'bcdf'\n"),
    ]


def test_several_breaks_in_one_string_and_an_indented_continuation():
    text = '    >>> f("a\nb\n    c")\n    \'x\'\n'
    assert mend_line_breaks(text) == '    >>> f("a\\nb\\n    c")\n    \'x\'\n'


def test_well_formed_docstrings_are_left_alone():
    texts = [
        "    >>> f('a')\n    'b'\n",
        "    >>> print('line one\\nline two')\n    line one\n    line two\n",
        "    >>> print(\"it's\")\n    it's\n    and prose after it\n",
        '    >>> f("""a\n    ... b""")\n    1\n',
        "    >>> f('a')  # it's a comment\n    1\n",
        "    >>> x = 'a' + \\\n    ...     'b'\n",
        "Prose that isn't an example: don't touch 'this\nor that'.\n",
    ]
    for text in texts:
        assert mend_line_breaks(text) == text, text


def test_a_want_is_mended_only_left_of_its_prompt():
    text = "    >>> print(\"it's\")\n    it's\n    more output\n"
    assert mend_line_breaks(text) == text
    left = "    >>> f()\n    'a\nb'\n"
    assert mend_line_breaks(left) == "    >>> f()\n    'a\\nb'\n"
