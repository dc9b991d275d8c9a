"""The `Backend` protocol: everything above `inference/` sees only this, never a llama_cpp object."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence, runtime_checkable

from ..cancel import CancelToken


class BackendError(RuntimeError):
    """A model could not be loaded or reached; the message names the path or URL."""


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
    ) -> Completion: ...

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
    ) -> Completion: ...

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
    ) -> list[Completion]: ...
