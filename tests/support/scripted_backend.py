"""A scripted Backend for pipeline unit tests: pre-set outputs, every prompt recorded.

Outputs are consumed in call order (one per completion; `candidates(n)` takes n and merges
identical ones, as the real backends do). An output may be a callable `prompt -> text`, so a test
can answer from what the model was shown. `on_call` runs before each completion (tests cancel a
token there to stop the pipeline mid-state).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from localcode_lsp.cancel import CancelToken
from localcode_lsp.inference.backend import ChatMessage, Completion, ModelInfo, merge_identical

Output = str | Callable[[str], str]


@dataclass
class ScriptedCall:
    prompt: str
    grammar: str | None
    temperature: float
    max_tokens: int
    suffix: str | None = None  # an infill's suffix
    code_first: str = ""
    seed: int | None = None
    messages: tuple[ChatMessage, ...] = ()  # a chat call's turns (prompt is their rendering)


@dataclass
class ScriptedBackend:
    outputs: list[Output] = field(default_factory=list)
    default: Output = ""
    on_call: Callable[[ScriptedCall], None] | None = None
    calls: list[ScriptedCall] = field(default_factory=list)
    fim_template: str | None = None  # a name: the scripted model "has" FIM tokens
    kind: str = "base"  # "instruct": the scripted model takes chat turns

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(name="scripted", family="scripted", context_length=8192,
                         fim=self.fim_template, kind="instruct" if self.kind == "instruct"
                         else "base", chat_template="chatml" if self.kind == "instruct" else "")

    def tokenize(self, text: str) -> list[int]:
        # about one token per 4 characters, like real BPE on code
        return [0] * ((len(text) + 3) // 4)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def _next(self, prompt: str, grammar: str | None, temperature: float, max_tokens: int,
              stop: Sequence[str], stop_rule, cancel: CancelToken | None, seed,
              suffix: str | None = None, code_first: str = "",
              messages: Sequence[ChatMessage] = ()) -> Completion:
        call = ScriptedCall(prompt, grammar, temperature, max_tokens, suffix, code_first, seed,
                            tuple(messages))
        self.calls.append(call)
        if self.on_call is not None:
            self.on_call(call)
        if cancel is not None and cancel.cancelled:
            return Completion("", finish_reason="cancelled", seed=seed)
        output = self.outputs.pop(0) if self.outputs else self.default
        text = output(prompt) if callable(output) else output
        finish = "stop"
        for s in stop:
            if s and s in text:
                text = text[: text.index(s)]
        if stop_rule is not None:
            cut = stop_rule.cut(text)
            if cut is not None:
                text, finish = text[:cut], "structure"
        return Completion(text, finish_reason=finish, prompt_tokens=self.count_tokens(prompt),
                          evaluated_tokens=self.count_tokens(prompt),
                          completion_tokens=self.count_tokens(text), seed=seed)

    def complete(self, prompt: str, *, max_tokens: int = 256, stop: Sequence[str] = (),
                 temperature: float = 0.0, seed: int | None = None, grammar: str | None = None,
                 cancel: CancelToken | None = None, stop_rule=None,
                 code_first: str = "") -> Completion:
        return self._next(prompt, grammar, temperature, max_tokens, stop, stop_rule, cancel, seed,
                          code_first=code_first)

    def fim(self, prefix: str, suffix: str, *, max_tokens: int = 128, stop: Sequence[str] = (),
            temperature: float = 0.0, seed: int | None = None, cancel: CancelToken | None = None,
            stop_rule=None, code_first: str = "") -> Completion:
        return self._next(prefix, None, temperature, max_tokens, stop, stop_rule, cancel, seed,
                          suffix, code_first)

    def chat(self, messages: Sequence[ChatMessage], *, max_tokens: int = 256,
             stop: Sequence[str] = (), temperature: float = 0.0, seed: int | None = None,
             grammar: str | None = None, cancel: CancelToken | None = None, stop_rule=None,
             prefill: str = "") -> Completion:
        # the prompt a test sees is a plain ChatML-like rendering of the turns
        prompt = "".join(f"<|{m['role']}|>\n{m['content']}\n" for m in messages)
        prompt += "<|assistant|>\n" + prefill
        return self._next(prompt, grammar, temperature, max_tokens, stop, stop_rule, cancel, seed,
                          messages=messages)

    def candidates(self, prompt: str, n: int, *, max_tokens: int = 256, stop: Sequence[str] = (),
                   temperature: float = 0.6, grammar: str | None = None,
                   cancel: CancelToken | None = None, stop_rule=None,
                   seed: int = 0, code_first: str = "",
                   suffix: str | None = None) -> list[Completion]:
        # identical samples come back merged with their votes, as from the real backends
        return merge_identical([self._next(prompt, grammar, temperature, max_tokens, stop,
                                           stop_rule, cancel, seed + i, suffix, code_first)
                                for i in range(n)])
