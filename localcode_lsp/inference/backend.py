"""The `Backend` protocol: everything above `inference/` sees only this, never a llama_cpp object."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol, TypedDict, runtime_checkable

from ..cancel import CancelToken


class BackendError(RuntimeError):
    """A model could not be loaded or reached; the message names the path or URL."""


class ChatMessage(TypedDict):
    """One chat turn: role "system", "user" or "assistant"."""

    role: str
    content: str


ModelKind = Literal["base", "instruct"]


@dataclass(frozen=True)
class ModelInfo:
    """What the harness needs to know about the loaded model."""

    name: str  # file name or remote model id
    family: str  # "gemma3", "qwen2", "starcoder2", "llama", ... (GGUF general.architecture)
    context_length: int
    fim: str | None  # FIM template name ("qwen", "starcoder", "codellama", ...) or None
    special_tokens: dict[str, int] = field(default_factory=dict)
    path: str = ""
    size_bytes: int = 0
    kind: ModelKind = "base"  # "instruct": trained on chat turns (the instruct prompt family)
    chat_template: str = field(default="", repr=False)  # the model's own Jinja chat template
    catalogue_name: str = ""  # the catalogue entry this model is, if any


@dataclass
class Completion:
    """One generated continuation and what it cost."""

    text: str
    finish_reason: str = "stop"  # "stop" | "length" | "cancelled" | "structure" | "grammar"
    prompt_tokens: int = 0  # tokens in the prompt
    evaluated_tokens: int = 0  # prompt tokens actually evaluated (the rest came from KV reuse)
    completion_tokens: int = 0
    seconds: float = 0.0
    seed: int | None = None
    truncated: bool = False  # the prompt was cut from the left to fit the context window
    grammar_incomplete: bool = False  # a grammar was given but max_tokens ran out first
    votes: int = 1  # candidates(): how many samples produced this same text

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / self.seconds if self.seconds > 0 else 0.0


def merge_identical(results: Sequence[Completion]) -> list[Completion]:
    """Merge completions whose text is the same up to trailing whitespace (votes add up)."""
    merged: dict[str, Completion] = {}
    for result in results:
        key = result.text.rstrip()
        if key in merged:
            merged[key].votes += result.votes
        else:
            merged[key] = replace(result)
    return list(merged.values())


def code_first_grammar(marker: str) -> str:
    """GBNF for `code_first` where no logits hook exists (HTTP servers): blank space, then a
    first character that does not start `marker`, then anything."""
    first = marker[:1].replace("\\", "\\\\").replace("]", "\\]").replace("^", "\\^")
    return f'root ::= [ \\t\\n]* [^ \\t\\n{first}] [^\\x00]*\n'


class StopRule(Protocol):
    """A streaming stop check on the generated text (see `inference.stops`)."""

    def cut(self, text: str) -> int | None:
        """Offset at which `text` must be cut because the structure closed, else None."""
        ...


@runtime_checkable
class Backend(Protocol):
    """A model as a pure function `prompt -> text`, with a tokenizer and cancellation."""

    @property
    def info(self) -> ModelInfo: ...

    def tokenize(self, text: str) -> list[int]: ...

    def count_tokens(self, text: str) -> int: ...

    def complete(
        self,
        prompt: str,
        *,
        max_tokens: int = 256,
        stop: Sequence[str] = (),
        temperature: float = 0.0,
        seed: int | None = None,
        grammar: str | None = None,
        cancel: CancelToken | None = None,
        stop_rule: StopRule | None = None,
        code_first: str = "",
    ) -> Completion:
        """Continue `prompt`. `code_first` is a comment marker ("#", "//"): the text then
        begins with code, not with a comment or the end (a small model that opens a body with
        `# TODO` often never writes the code)."""
        ...

    def fim(
        self,
        prefix: str,
        suffix: str,
        *,
        max_tokens: int = 128,
        stop: Sequence[str] = (),
        temperature: float = 0.0,
        seed: int | None = None,
        cancel: CancelToken | None = None,
        stop_rule: StopRule | None = None,
        code_first: str = "",
    ) -> Completion: ...

    def chat(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int = 256,
        stop: Sequence[str] = (),
        temperature: float = 0.0,
        seed: int | None = None,
        grammar: str | None = None,
        cancel: CancelToken | None = None,
        stop_rule: StopRule | None = None,
        prefill: str = "",
    ) -> Completion:
        """The assistant's answer to `messages`, rendered with the model's own chat template.
        `prefill` starts the assistant's turn with that text (e.g. an opening code fence); the
        returned text excludes it. A grammar constrains the answer as in `complete`. BackendError
        when the model has no chat template."""
        ...

    def candidates(
        self,
        prompt: str,
        n: int,
        *,
        max_tokens: int = 256,
        stop: Sequence[str] = (),
        temperature: float = 0.6,
        grammar: str | None = None,
        cancel: CancelToken | None = None,
        stop_rule: StopRule | None = None,
        seed: int = 0,
        code_first: str = "",
        suffix: str | None = None,
    ) -> list[Completion]:
        """`n` samples of `prompt`; with `suffix`, each fills in between `prompt` and `suffix`
        like `fim` (a model without a FIM template completes `prompt`, stopping where the
        suffix's first line begins)."""
        ...
