"""Inline completion at a cursor: the COMPLETE state, shared by the server and `localcode complete`.

Prompt order is stable-first so llama.cpp's prefix reuse keeps working while the user types:
extra context sections (from the index, when a caller passes them), then the document's head
(the import block), then the document from a line boundary that only moves in steps of
`TAIL_STEP_LINES` lines, up to the cursor. The suffix after the cursor goes to the backend's FIM
template (or, for a model without FIM tokens, steers where generation stops).

The FIM prompt is laid out as `FIM_LAYOUT` says (`inference.fim.FimTemplate.format_layout`):
"psm", the documented prefix-suffix-middle order with the hole at the cursor, is the default:
it is what the model was trained on and it matched raw FIM on HumanEval infilling. Its cost:
a keystroke at the cursor changes the prompt before the suffix, so the suffix window is
evaluated again on every keystroke (`SUFFIX_MAX_LINES` bounds it). "psm-line" (the hole opened
at the line's start, the typed text after the middle marker) only appends to the prompt while
typing, and suffix-first "spm" too, but Qwen2.5-Coder answered "spm" with nothing or garbage
(`bench/bench_infill.py`), and with "psm-line" a cursor inside a word gets continuations that
break the word (`shape.ar` + `ra()`, `bench/bench_inference.py`); its infilling pass rate is
not measured yet. The in-process layouts other than "psm"
apply only to a model in process; every sentinel of the template stops generation and never
reaches the text.

Multi-line when the cursor starts an empty block body (the line after `def f():`, `if x:`, or a
`{`), single-line otherwise. A suggestion that merely repeats the text after the cursor is
dropped. Then it is verified in place (`verify.inline`): the longest prefix of whole lines that
adds no syntax error to the enclosing block and reads no undefined name is shown, or nothing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..cancel import CancelToken
from ..index.languages import language_for_path
from ..inference.backend import Completion
from ..inference.fim import TEMPLATES, strip_sentinels, suffix_stop_line
from ..inference.stops import C_FAMILY, stop_rule_for
from ..verify.inline import InlineVerifier

TAIL_STEP_LINES = 32
HEAD_MAX_LINES = 40
SUFFIX_MAX_LINES = 40
SINGLE_LINE_MAX_TOKENS = 48
MULTI_LINE_MAX_TOKENS = 192
FIM_LAYOUT = "psm"  # one of inference.fim.FIM_LAYOUTS; see the module docstring


@dataclass(frozen=True)
class ContextSection:
    """Extra prompt context (e.g. signatures from the index), placed before the document."""

    title: str
    text: str


@dataclass
class CompletionResult:
    """What an inline completion returns to a front end."""

    text: str
    prompt_tokens: int = 0
    evaluated_tokens: int = 0
    milliseconds: float = 0.0
    multiline: bool = False
    finish_reason: str = "stop"
    truncated: bool = False
    dropped: str = ""  # why a generated suggestion was discarded ("" = kept)
    path: str = ""
    line: int = 0  # zero-based
    column: int = 0  # zero-based, code points
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"text": self.text, "prompt_tokens": self.prompt_tokens,
                "evaluated_tokens": self.evaluated_tokens, "ms": round(self.milliseconds, 1),
                "multiline": self.multiline, "finish_reason": self.finish_reason,
                "truncated": self.truncated, "dropped": self.dropped, "path": self.path,
                "line": self.line, "column": self.column}


def language_of(path: str) -> str:
    return language_for_path(path) or ""


def split_at(text: str, line: int, column: int) -> tuple[str, str]:
    """(prefix, suffix) at a zero-based position; positions past the end clamp to it."""
    lines = text.splitlines(keepends=True)
    if line < 0 or column < 0:
        raise ValueError(f"negative position {line}:{column}")
    if line >= len(lines):
        if line == len(lines) and (not lines or lines[-1].endswith(("\n", "\r"))):
            return text, ""
        raise ValueError(f"line {line} is past the end of the document ({len(lines)} lines)")
    content = lines[line].rstrip("\r\n")
    if column > len(content):
        raise ValueError(f"column {column} is past the end of line {line} ({len(content)} chars)")
    offset = sum(len(x) for x in lines[:line]) + column
    return text[:offset], text[offset:]


def starts_block_body(prefix: str, suffix: str, language: str) -> bool:
    """True when the cursor sits on an empty line that opens a block body."""
    current = prefix.rsplit("\n", 1)[-1]
    rest_of_line = suffix.split("\n", 1)[0]
    if current.strip() or rest_of_line.strip():
        return False
    for previous in reversed(prefix.split("\n")[:-1]):
        stripped = previous.split("#", 1)[0].strip() if language == "python" else previous.strip()
        if not stripped:
            continue
        if language == "python":
            return stripped.endswith(":")
        if language in C_FAMILY:
            return stripped.endswith("{")
        return False
    return False


def build_prefix_prompt(prefix: str, sections: Sequence[ContextSection], count_tokens,
                        budget: int) -> tuple[str, bool]:
    """Stable-first prompt text ending exactly at the cursor; (text, truncated)."""
    header = "".join(f"{_comment(s.title)}\n{s.text.rstrip()}\n\n" for s in sections if s.text)
    if count_tokens(header + prefix) <= budget:
        return header + prefix, False
    lines = prefix.splitlines(keepends=True)
    head_end = _head_lines(lines)
    head = "".join(lines[:head_end])
    room = budget - count_tokens(header + head)
    # the tail starts on a multiple of TAIL_STEP_LINES so it stays put while the user types
    start = max(head_end, len(lines) - 1)
    start -= start % TAIL_STEP_LINES
    start = max(start, head_end)
    while start > head_end:
        candidate = max(head_end, start - TAIL_STEP_LINES)
        if count_tokens("".join(lines[candidate:])) > room:
            break
        start = candidate
    tail = "".join(lines[start:])
    while count_tokens(tail) > room and "\n" in tail[:-1]:  # the cursor line block alone is big
        tail = tail[tail.index("\n") + 1:]
    return header + head + tail, True


def _comment(title: str) -> str:
    return f"# {title}"


def _head_lines(lines: list[str]) -> int:
    """The file head: leading comments, docstring and import lines (at most HEAD_MAX_LINES)."""
    end = 0
    for index, line in enumerate(lines[:HEAD_MAX_LINES]):
        stripped = line.strip()
        if (not stripped or stripped.startswith(("#", "import ", "from ", "//", "#include",
                                                 "use ", "package ", '"""', "'''"))):
            end = index + 1
            continue
        break
    return end


def complete_at(engine: Any, path_or_uri: str | Path, line: int, column: int, *,
                cancel: CancelToken | None = None,
                extra_context: Sequence[ContextSection] = (),
                layout: str = FIM_LAYOUT, verify: bool = True) -> CompletionResult:
    """One completion at a zero-based (line, column) of the document as the user sees it.

    `layout` and `verify` exist for the benchmarks (the server and the CLI use the defaults).
    """
    started = time.monotonic()
    path = engine.workspace.relative(path_or_uri)
    text = engine.workspace.read_text(path_or_uri)
    prefix, suffix = split_at(text, line, column)
    language = language_of(path)
    multiline = starts_block_body(prefix, suffix, language)
    backend = engine.backend
    config = engine.config
    budget = max(256, config.context.code_budget + config.context.task_budget)
    prompt, truncated = build_prefix_prompt(prefix, extra_context, backend.count_tokens, budget)
    suffix_window = "".join(suffix.splitlines(keepends=True)[:SUFFIX_MAX_LINES])
    if multiline:
        rule = stop_rule_for(language, prefix)
        completion = infill(backend, prompt, suffix_window, layout=layout,
                            max_tokens=MULTI_LINE_MAX_TOKENS, stop_rule=rule, cancel=cancel)
        generated = rule.trim(completion.text) if rule is not None else completion.text
        generated = cut_at_suffix(generated.rstrip(), suffix)
    else:
        completion = infill(backend, prompt, suffix_window, layout=layout,
                            max_tokens=SINGLE_LINE_MAX_TOKENS, stop=("\n",), cancel=cancel)
        generated = completion.text.split("\n", 1)[0].rstrip()
    dropped = _why_drop(generated, suffix, completion.finish_reason)
    details: dict[str, Any] = {"layout": completion_layout(backend, layout)}
    if not dropped and verify:
        verdict = InlineVerifier().verify(text, len(prefix), generated, language)
        details["verification"] = {"ms": round(verdict.milliseconds, 2),
                                   "reason": verdict.reason, "undefined": verdict.undefined,
                                   "original": verdict.original}
        if verdict.dropped:
            dropped = f"verification: {verdict.reason}"
        generated = verdict.text
    return CompletionResult(
        text="" if dropped else generated,
        prompt_tokens=completion.prompt_tokens,
        evaluated_tokens=completion.evaluated_tokens,
        milliseconds=(time.monotonic() - started) * 1000,
        multiline=multiline,
        finish_reason=completion.finish_reason,
        truncated=truncated or completion.truncated,
        dropped=dropped,
        path=path,
        line=line,
        column=column,
        details=details,
    )


def completion_layout(backend: Any, layout: str) -> str:
    """The layout `infill` really uses with this backend: "psm-line" and "spm" need a FIM
    template and the model in process (a server renders its own template); else the backend's
    own `fim`
    ("psm", or "none": prefix completion for a model without FIM tokens)."""
    name = getattr(backend.info, "fim", None)
    if not name:
        return "none"
    if layout == "psm" or not getattr(backend, "in_process", False):
        return "psm"
    return layout if name in TEMPLATES else "psm"


def infill(backend: Any, prefix: str, suffix: str, *, layout: str = FIM_LAYOUT,
           max_tokens: int, stop: Sequence[str] = (), stop_rule: Any = None,
           cancel: CancelToken | None = None) -> Completion:
    """One greedy fill-in-the-middle call in `layout` (see `completion_layout`); every sentinel
    of the template stops the generation and is cut from the text."""
    template = TEMPLATES.get(getattr(backend.info, "fim", None) or "")
    if completion_layout(backend, layout) in ("psm", "none"):
        completion = backend.fim(prefix, suffix, max_tokens=max_tokens, stop=stop,
                                 stop_rule=stop_rule, cancel=cancel, temperature=0.0, seed=0)
        if template is None:
            return completion
        # the backends stop on the sentinels already; a server that does not is caught here
        return replace(completion, text=strip_sentinels(completion.text, template.sentinels))
    assert template is not None
    prompt = template.format_layout(prefix, suffix, layout)
    room = backend.info.context_length - max_tokens - 16
    if backend.count_tokens(prompt) > room:  # the backend would cut the suffix off the left
        return backend.fim(prefix, suffix, max_tokens=max_tokens, stop=stop,
                           stop_rule=stop_rule, cancel=cancel, temperature=0.0, seed=0)
    completion = backend.complete(prompt, max_tokens=max_tokens,
                                  stop=[*stop, *template.stop_strings()], stop_rule=stop_rule,
                                  cancel=cancel, temperature=0.0, seed=0)
    text = strip_sentinels(completion.text, template.sentinels)
    blanks = template.line_prefill_blanks(prefix) if layout == "psm-line" else ""
    if blanks:  # the model wrote the blanks the user had typed: they are in the document
        text = text[len(blanks):] if text.startswith(blanks) else text.lstrip(" \t")
    return replace(completion, text=text)


def cut_at_suffix(generated: str, suffix: str) -> str:
    """`generated` up to the line where it starts to repeat the first line after the cursor
    (a model that filled the hole and went on writing the code that is already there)."""
    following = suffix_stop_line(suffix)
    if following is None:
        return generated
    lines = generated.split("\n")
    for index in range(1, len(lines)):
        if lines[index].strip() == following:
            return "\n".join(lines[:index]).rstrip()
    return generated


def _why_drop(generated: str, suffix: str, finish_reason: str) -> str:
    if finish_reason == "cancelled":
        return "cancelled"
    if not generated.strip():
        return "empty"
    rest_of_line = suffix.split("\n", 1)[0].strip()
    if rest_of_line and rest_of_line.startswith(generated.strip()):
        return "repeats the text after the cursor"
    following = [x.strip() for x in suffix.splitlines() if x.strip()][:3]
    first = generated.strip().splitlines()[0].strip()
    if following and first == following[0]:
        return "repeats the next line"
    return ""
