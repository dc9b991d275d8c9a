"""Invisible characters in source text: Unicode tag characters (U+E0000-U+E007F, which can
spell hidden instructions), bidi controls (U+202A-U+202E, U+2066-U+2069, U+200E/F, U+061C) and
zero-width characters. They are reported before prompting and stripped from every prompt, so
text a reviewer cannot see never reaches the model."""

from __future__ import annotations

import re
import unicodedata

INVISIBLE = re.compile(
    "[\U000E0000-\U000E007F\u202A-\u202E\u2066-\u2069\u200B-\u200F\u2060-\u2064\u061C"
    "\u180E\uFEFF\u00AD]")


def find_invisible(text: str) -> list[tuple[int, list[str]]]:
    """(1-based line, sorted code point labels) for every line holding invisible characters."""
    found = []
    for number, line in enumerate(text.split("\n"), start=1):
        chars = set(INVISIBLE.findall(line))
        if chars:
            found.append((number, sorted(_label(c) for c in chars)))
    return found


def strip_invisible(text: str) -> str:
    """`text` without invisible characters."""
    return INVISIBLE.sub("", text)


def _label(char: str) -> str:
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}" + (f" {name}" if name else "")
