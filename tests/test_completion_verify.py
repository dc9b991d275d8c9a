"""Verified inline completion: crafted suggestions checked in place (no model here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from localcode_lsp.cancel import CancelToken
from localcode_lsp.config import Config
from localcode_lsp.engine import Engine
from localcode_lsp.inference.fim import TEMPLATES
from localcode_lsp.pipeline.completion import complete_at, completion_layout
from localcode_lsp.verify.inline import InlineVerifier, enclosing_block
from tests.support.scripted_backend import ScriptedBackend

MODULE = '''import os
from collections import defaultdict as dd

LIMIT = 10


def helper(items, scale=2, *rest, key=None, **options):
    total = 0
    for item in items:
        total += item
    CURSOR
    return total


class Box:
    size = 3

    def grow(self, by: int) -> int:
        return self.size + by


def later(x):
    return x
'''


def verify(suggestion: str, module: str = MODULE, language: str = "python"):
    offset = module.index("CURSOR")
    document = module.replace("CURSOR", "", 1)
    return InlineVerifier().verify(document, offset, suggestion, language)


@pytest.mark.parametrize("suggestion", [
    "total += len(rest) + LIMIT",  # params (*rest), module constant, builtin
    "total = os.path.join(key, str(scale))",  # import, keyword-only param
    "total = dd(list)",  # an `as` import
    "total = later(total)",  # a function defined further down
    "total = [x * scale for x in items if x]",  # comprehension variables
    "total = Box().grow(by=total)",  # keyword-argument names are not read
    "total = options.anything.at_all()",  # attributes of a defined name are never judged
    "print(__name__, total)",
    "result = total\n    total = result * 2",  # a name the suggestion binds itself
])
def test_valid_suggestions_are_shown_whole(suggestion: str) -> None:
    verdict = verify(suggestion)
    assert verdict.text == suggestion
    assert verdict.reason == ""


@pytest.mark.parametrize("suggestion,reason", [
    ("total = compute_total(items)", "undefined name compute_total"),
    ("total = undefined_thing.attribute", "undefined name undefined_thing"),
    ("total = by * 2", "undefined name by"),  # a parameter of another function
    ("total = self.size", "undefined name self"),  # `self` outside a method
])
def test_undefined_names_are_rejected(suggestion: str, reason: str) -> None:
    verdict = verify(suggestion)
    assert verdict.text == ""
    assert verdict.dropped
    assert verdict.reason == reason


@pytest.mark.parametrize("suggestion", [
    "total = max(items",  # a bracket never closed swallows the lines below
    "total = = 3",
    "return total)",
    "def",
])
def test_syntax_breaking_suggestions_are_rejected(suggestion: str) -> None:
    verdict = verify(suggestion)
    assert verdict.text == ""
    assert verdict.reason.startswith("adds a syntax error"), verdict.reason


def test_multiline_suggestion_is_trimmed_to_its_longest_valid_prefix() -> None:
    suggestion = "total *= scale\n    total += LIMIT\n    total = missing(total)\n    total += 1"
    verdict = verify(suggestion)
    assert verdict.text == "total *= scale\n    total += LIMIT"
    assert verdict.trimmed
    assert verdict.undefined == ["missing"]


def test_unclosed_bracket_on_a_later_line_trims_that_line() -> None:
    verdict = verify("total *= scale\n    total = sorted(items")
    assert verdict.text == "total *= scale"


def test_method_scope_sees_self_and_parameters() -> None:
    module = MODULE.replace("    CURSOR\n", "").replace(
        "        return self.size + by", "        CURSOR\n        return self.size + by")
    assert verify("by = self.size * by", module).text == "by = self.size * by"
    assert verify("by = total", module).reason == "undefined name total"


def test_errors_already_in_the_file_do_not_count() -> None:
    # another function is half typed: its error is not the suggestion's fault
    module = MODULE + "\n\ndef broken(:\n    pass\n"
    assert verify("total += LIMIT", module).text == "total += LIMIT"
    # the user's own half-typed line: completing it is fine
    module = MODULE.replace("    CURSOR", "    total = (CURSOR")
    assert verify("total + 1)", module).text == "total + 1)"


def test_star_import_turns_the_name_check_off() -> None:
    module = "from math import *\n\n\ndef f(x):\n    return CURSOR\n"
    assert verify("floor(x) + anything_else", module).text == "floor(x) + anything_else"


def test_a_name_in_a_completed_identifier_is_checked() -> None:
    # the user typed "hel", the model finishes the name: `helper` exists, `helpme` does not
    module = MODULE.replace("    CURSOR", "    total = helCURSOR")
    assert verify("per(items)", module).text == "per(items)"
    assert verify("pme(items)", module).reason == "undefined name helpme"


def test_other_languages_get_the_syntax_check_only() -> None:
    module = "function f(a) {\n  const b = CURSOR;\n  return b;\n}\n"
    assert verify("a + whatever", module, "javascript").text == "a + whatever"
    assert verify("a + (1", module, "javascript").text == ""
    assert verify("x = 1", module, "no-such-language").text == "x = 1"  # no grammar: unchecked


def test_enclosing_block_is_the_top_level_statement_around_the_cursor() -> None:
    document = MODULE.replace("CURSOR", "")
    offset = document.index("    return total")
    start, end = enclosing_block(document, offset)
    block = document[start:end]
    assert block.startswith("def helper(")
    assert "return total" in block and "class Box" not in block


# --- the inline completion path ----------------------------------------------------------

def engine_with(tmp_path: Path, text: str, backend) -> Engine:
    (tmp_path / "mod.py").write_text(text)
    return Engine(tmp_path, config=Config(), backend=backend)


def test_complete_at_drops_a_suggestion_with_an_undefined_name(tmp_path: Path) -> None:
    text = MODULE.replace("    CURSOR", "    total = ")
    engine = engine_with(tmp_path, text, ScriptedBackend(outputs=["compute(items)\n"]))
    line = text[: text.index("total = \n")].count("\n")
    result = complete_at(engine, "mod.py", line, len("    total = "))
    assert result.text == ""
    assert result.dropped == "verification: undefined name compute"
    assert result.details["verification"]["original"] == "compute(items)"


def test_complete_at_keeps_a_valid_suggestion(tmp_path: Path) -> None:
    text = MODULE.replace("    CURSOR", "    total = ")
    engine = engine_with(tmp_path, text, ScriptedBackend(outputs=["sum(items) * scale\n"]))
    line = text[: text.index("total = \n")].count("\n")
    result = complete_at(engine, "mod.py", line, len("    total = "))
    assert result.text == "sum(items) * scale"
    assert result.dropped == ""


@dataclass
class InProcessFim(ScriptedBackend):
    """A scripted model "in process" with Qwen's FIM tokens: the pipeline lays out the prompt."""

    in_process: bool = True
    prompts: list[str] = field(default_factory=list)
    stops: list[list[str]] = field(default_factory=list)

    def complete(self, prompt, *, stop=(), **kwargs):
        self.prompts.append(prompt)
        self.stops.append(list(stop))
        return super().complete(prompt, stop=(), **kwargs)


def test_psm_line_layout_keeps_the_prompt_stable_while_typing(tmp_path: Path) -> None:
    backend = InProcessFim(fim_template="qwen", default="per(items)")
    assert completion_layout(backend, "psm-line") == "psm-line"
    assert completion_layout(ScriptedBackend(fim_template="qwen"), "psm-line") == "psm"  # a server
    assert completion_layout(ScriptedBackend(), "psm-line") == "none"  # no FIM tokens
    for typed in ("    total = he", "    total = hel"):  # one keystroke
        text = MODULE.replace("    CURSOR", typed)
        engine = engine_with(tmp_path, text, backend)
        line = text[: text.index(typed)].count("\n")
        complete_at(engine, "mod.py", line, len(typed), layout="psm-line")
    first, second = backend.prompts
    # documented order, the hole opened at the line's start, the typed text begins the middle
    assert first.startswith("<|fim_prefix|>import os\n")
    assert "total += item\n<|fim_suffix|>\n    return total\n" in first
    assert first.endswith("<|fim_middle|>    total = he")
    # the keystroke only appends to the prompt: llama.cpp reuses the KV cache of all the rest
    assert second == first + "l"
    sentinels = TEMPLATES["qwen"].stop_strings()
    assert backend.stops[0][-len(sentinels):] == sentinels


@pytest.mark.parametrize("layout,expected", [
    ("psm", "<|fim_prefix|>a\n  b<|fim_suffix|>c<|fim_middle|>"),
    ("psm-line", "<|fim_prefix|>a\n<|fim_suffix|>c<|fim_middle|>  b"),
    ("spm", "<|fim_suffix|>c<|fim_prefix|>a\n  b<|fim_middle|>"),
    ("psm-line", "<|fim_prefix|>a\n<|fim_suffix|>c<|fim_middle|>"),  # blanks: the model's
])
def test_fim_layouts(layout: str, expected: str) -> None:
    prefix = "a\n    " if expected.endswith("<|fim_middle|>") and layout == "psm-line" else "a\n  b"
    assert TEMPLATES["qwen"].format_layout(prefix, "c", layout) == expected
    with pytest.raises(ValueError, match="unknown FIM layout"):
        TEMPLATES["qwen"].format_layout("a", "c", "nope")


@pytest.mark.parametrize("layout", ["psm", "psm-line"])
def test_sentinels_never_reach_the_suggestion(tmp_path: Path, layout: str) -> None:
    backend = InProcessFim(fim_template="qwen",
                           default="sum(items)<|endoftext|><|file_sep|>junk")
    text = MODULE.replace("    CURSOR", "    total = ")
    engine = engine_with(tmp_path, text, backend)
    line = text[: text.index("total = \n")].count("\n")
    result = complete_at(engine, "mod.py", line, len("    total = "), layout=layout)
    assert result.text == "sum(items)"
    if layout == "psm-line":  # the prompt is laid out here: every sentinel is a stop string
        for token in TEMPLATES["qwen"].sentinels:
            assert token in backend.stops[0]


def test_a_cancelled_completion_shows_nothing(tmp_path: Path) -> None:
    text = MODULE.replace("    CURSOR", "    total = ")
    engine = engine_with(tmp_path, text, InProcessFim(fim_template="qwen", default="sum(items)"))
    cancel = CancelToken()
    cancel.cancel("superseded")
    line = text[: text.index("total = \n")].count("\n")
    result = complete_at(engine, "mod.py", line, len("    total = "), cancel=cancel)
    assert result.text == ""
    assert result.dropped == "cancelled"


def test_multiline_suggestion_stops_where_it_repeats_the_code_below(tmp_path: Path) -> None:
    text = "def f(items):\n    \n    return total\n"
    backend = ScriptedBackend(outputs=["total = sum(items)\n    return total\n"])
    engine = engine_with(tmp_path, text, backend)
    result = complete_at(engine, "mod.py", 1, 4)
    assert result.multiline
    assert result.text == "total = sum(items)"


def test_blanks_typed_before_the_cursor_are_not_suggested_twice(tmp_path: Path) -> None:
    # the prompt stops before the line's indentation; the model writes it and it is removed
    backend = InProcessFim(fim_template="qwen", default="    total *= scale\n")
    text = MODULE.replace("    CURSOR", "    ")
    engine = engine_with(tmp_path, text, backend)
    line = text[: text.index("    \n    return total")].count("\n")
    result = complete_at(engine, "mod.py", line, 4, layout="psm-line")
    assert backend.prompts[0].endswith("<|fim_middle|>")
    assert result.text == "total *= scale"
