"""Doctest text as its author meant it, before the doctest runner reads it.

A docstring that is not a raw string turns `\\n` inside an example's string into a real line
break, so `>>> remove_vowels("abcdef\\nghijklm")` reaches doctest as two lines, the second
left of its prompt. Doctest rejects the whole docstring for that ("inconsistent leading
whitespace") and no example of it runs. `mend_line_breaks` writes such breaks back as `\\n`:
a break is mended only where the text before it ends inside a single-quoted string, which a
real line break cannot do in Python source nor in a `repr`.
"""

from __future__ import annotations

_PROMPTS = (">>>", "...")


def mend_line_breaks(docstring: str) -> str:
    """The docstring with line breaks inside an example's string literals written as `\\n`."""
    lines = docstring.split("\n")
    mended: list[str] = []
    indent: int | None = None  # the prompt's column while inside an example, else None
    previous_is_source = False
    for line in lines:
        stripped = line.lstrip()
        lead = len(line) - len(stripped)
        if mended and indent is not None:
            before = mended[-1].lstrip()
            if previous_is_source:
                text = before[3:]
                # a source line ending inside a string: the break came from an escape
                if _ends_inside_string(text):
                    mended[-1] += "\\n" + line
                    continue
            elif lead < indent and stripped and _ends_inside_string(before):
                # a want line left of its prompt that ends inside a quoted value
                mended[-1] += "\\n" + line
                continue
        if not stripped:
            indent, previous_is_source = None, False
        elif stripped.startswith(_PROMPTS[0]) or (indent is not None
                                                  and stripped.startswith(_PROMPTS[1])
                                                  and previous_is_source):
            if stripped.startswith(_PROMPTS[0]):
                indent = lead
            previous_is_source = True
        else:
            previous_is_source = False
        mended.append(line)
    return "\n".join(mended)


def _ends_inside_string(text: str) -> bool:
    """Whether `text`, read as Python, ends inside a single-quoted string literal.

    A triple-quoted string may span lines legitimately, so text holding one counts as not
    inside; a backslash at the end continues the string on purpose.
    """
    quote = ""
    index = 0
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\":
                index += 2
                continue
            if char == quote:
                quote = ""
        elif char == "#":
            return False
        elif char in "'\"":
            if text.startswith(char * 3, index):
                return False
            quote = char
        index += 1
    return bool(quote) and not text.endswith("\\")
