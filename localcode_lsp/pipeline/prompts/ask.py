"""What a prompt family hands the pipeline: one `Ask` per model call (the sections, the call's
form, how to read the answer), built from one typed job per kind of question."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ...context.budget import Section
from ...inference.backend import StopRule
from ..target import FunctionTarget


def as_is(text: str) -> str:
    return text


@dataclass(frozen=True)
class Ask:
    """One model call. `chat=False`: the fitted sections are plain text the model continues (an
    infill when `suffix` is set); `chat=True`: they are the user turn after `system`, and the
    answer starts after `prefill`. `read` turns the answer into what the stage parses."""

    purpose: str
    sections: list[Section]
    chat: bool = False
    system: str = ""
    prefill: str = ""
    stop: tuple[str, ...] = ()
    stop_rule: StopRule | None = None
    code_first: str = ""
    suffix: str = ""
    grammar: str | None = None
    one_greedy: bool = False  # one greedy sample only (else the rest of the candidates)
    repeats: str = ""  # text the answer repeats before the new part (its tokens come on top)
    read: Callable[[str], str] = as_is


@dataclass(frozen=True)
class BodyJob:
    """A body for one function: what GENERATE knows when it asks for candidates."""

    target: FunctionTarget
    instruction: str  # what the change should do (for a fix, may be derived from its checks)
    feedback: Sequence[str]
    attempt: int
    candidates: int  # how many the stage draws in all
    fix: bool = False  # fix intent: the task is to make failing checks pass
    user_instruction: str = ""  # the user's own words, when they gave any
    code: str = ""
    few_shot: str = ""
    docs: str = ""
    summary: str = ""
    previous: str = ""  # a retry: the function as the failed attempt wrote it
    suffix: str = ""  # the code after the body, for a model with FIM tokens ("" = none)
    stop_rule: StopRule | None = None
    code_first: str = ""  # the language's comment marker: the body starts with code
    language: str = "python"

    @property
    def is_stub(self) -> bool:
        return self.target.is_stub or not self.target.old_body.strip()

    @property
    def implement_only(self) -> bool:
        """A stub to implement from its own docstring, first attempt, nothing else asked."""
        return self.is_stub and not self.feedback and not self.instruction and not self.fix


@dataclass(frozen=True)
class NewCodeJob:
    """New code at a spot in a file (generate intent where no function is)."""

    location: str
    prefix: str
    instruction: str
    feedback: Sequence[str]
    attempt: int
    code: str = ""
    summary: str = ""
    language: str = "python"


@dataclass(frozen=True)
class ExplainJob:
    name: str
    function_text: str
    code: str
    instruction: str
    language: str = "python"
