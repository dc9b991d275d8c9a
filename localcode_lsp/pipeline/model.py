"""Every model call of a run: fit the `Ask`'s sections to the budget, call the backend in the
form the prompt family chose (continuation, infill or chat turn), record what the model saw."""

from __future__ import annotations

import time
from typing import Any

from ..inference.backend import ChatMessage, Completion, merge_identical
from .collaborators import Collaborators
from .prompts import Ask
from .run import ModelCall, RunState
from .states import State

# tokens a chat template adds around the turns (role markers, the assistant header)
CHAT_OVERHEAD_TOKENS = 16


def call_model(state: RunState, parts: Collaborators, stage: State, ask: Ask, *, n: int = 1,
               temperature: float = 0.0, max_tokens: int = 64, seed: int = 0,
               greedy_first: bool = False) -> list[Completion]:
    """`n` completions of `ask` (the first greedy with `greedy_first`; identical samples come
    back merged with their `votes`); the i-th is drawn with seed `seed + i`. Raises Cancelled
    when the run is cancelled."""
    state.cancel.raise_if_cancelled()
    count = parts.count
    prompt = state.budget.fit(ask.sections, count)
    infill = bool(ask.suffix) and ask.grammar is None and not ask.chat
    suffix_tokens = count(ask.suffix) if infill else 0
    around = count(ask.system) + count(ask.prefill) + CHAT_OVERHEAD_TOKENS if ask.chat else 0
    max_tokens += count(ask.repeats) if ask.repeats else 0
    max_tokens = max(1, min(max_tokens, state.budget.context_length - prompt.tokens
                            - suffix_tokens - around - 1))
    backend = parts.backend
    extra: dict[str, Any] = {"stop_rule": ask.stop_rule} if ask.stop_rule is not None else {}
    if ask.code_first and not ask.chat:
        extra["code_first"] = ask.code_first
    common: dict[str, Any] = dict(max_tokens=max_tokens, stop=list(ask.stop),
                                  cancel=state.cancel, **extra)
    started = time.monotonic()
    completions: list[Completion] = []
    if ask.chat:
        messages: list[ChatMessage] = []
        if ask.system:
            messages.append({"role": "system", "content": ask.system})
        messages.append({"role": "user", "content": prompt.text})
        for i in range(n):  # chat has no batched sampling: one call per sample
            greedy = i == 0 and (greedy_first or n == 1)
            completions.append(backend.chat(
                messages, temperature=0.0 if greedy and greedy_first else temperature,
                seed=seed + i, grammar=ask.grammar, prefill=ask.prefill, **common))
        completions = merge_identical(completions)
    else:
        if n == 1 or greedy_first:
            first_temperature = 0.0 if greedy_first else temperature
            if infill:
                completions.append(backend.fim(prompt.text, ask.suffix, seed=seed,
                                               temperature=first_temperature, **common))
            else:
                completions.append(backend.complete(prompt.text, seed=seed, grammar=ask.grammar,
                                                    temperature=first_temperature, **common))
        if n > len(completions):
            if infill:
                common["suffix"] = ask.suffix
            completions.extend(backend.candidates(
                prompt.text, n - len(completions), temperature=temperature, grammar=ask.grammar,
                seed=seed + len(completions), **common))
    seconds = time.monotonic() - started
    state.result.model_calls.append(ModelCall(
        state=stage.value, purpose=ask.purpose, sections=prompt.describe(),
        prompt_tokens=prompt.tokens + around, suffix_tokens=suffix_tokens,
        evaluated_tokens=sum(c.evaluated_tokens for c in completions),
        completion_tokens=sum(c.completion_tokens for c in completions),
        n=sum(c.votes for c in completions), distinct=len(completions),
        temperature=0.0 if greedy_first and n == 1 else temperature,
        greedy_first=greedy_first, grammar=ask.grammar is not None,
        ms=round(seconds * 1000, 1), chat=ask.chat).as_dict())
    state.cancel.raise_if_cancelled()
    return completions


def answer(state: RunState, parts: Collaborators, stage: State, ask: Ask, *,
           max_tokens: int) -> str:
    """One short answer at the classifying temperature (grammar-constrained when the ask has a
    grammar), read as the ask says."""
    completion = call_model(state, parts, stage, ask, max_tokens=max_tokens,
                            temperature=parts.config.generation.temperature_classify)[0]
    return ask.read(completion.text)
