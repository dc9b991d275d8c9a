"""Prompt families: the prompts of every state, one family per model kind.

`base` (a base model: plain code to continue, FIM infill) and `instruct` (an instruction-tuned
model: chat turns through the model's own template, plain code where measured better). The
pipeline asks its family for an `Ask` per model call and never builds a prompt itself;
`choose_family` is the one place that decides which family a run uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ...inference.backend import ModelInfo, ModelKind
from .ask import Ask, BodyJob, ExplainJob, NewCodeJob
from .base import BaseFamily
from .instruct import FORMS, InstructFamily


class PromptFamily(Protocol):
    """The prompts of one model kind."""

    kind: ModelKind
    review_form: str  # the diff review's form: "text" (continuation) or "chat"

    def intent(self, instruction: str) -> Ask: ...

    def rank(self, instruction: str, options: Sequence[tuple[str, str]], grammar: str) -> Ask: ...

    def plan(self, instruction: str, steps: Sequence[str], target: str, grammar: str) -> Ask: ...

    def explain(self, job: ExplainJob) -> Ask: ...

    def body(self, job: BodyJob) -> list[Ask]:
        """The calls that draw the candidates of one body, in order (the first may be one
        greedy sample of a different prompt; the last draws the rest)."""
        ...

    def new_code(self, job: NewCodeJob) -> Ask: ...


def family_kind(setting: str, info: ModelInfo) -> ModelKind:
    """`[model] prompt_family` ("auto", "base", "instruct"); "auto" follows the model's kind
    (the backend says "instruct" only for a model it can send chat turns to: a GGUF with a chat
    template, or a server that applies the model's own)."""
    if setting == "base":
        return "base"
    if setting == "instruct":
        return "instruct"
    return info.kind


def choose_family(setting: str, info: ModelInfo) -> PromptFamily:
    """The prompt family for a model (`[model] prompt_family` overrides its kind)."""
    return InstructFamily() if family_kind(setting, info) == "instruct" else BaseFamily()


__all__ = ["FORMS", "Ask", "BaseFamily", "BodyJob", "ExplainJob", "InstructFamily",
           "NewCodeJob", "PromptFamily", "choose_family", "family_kind"]
