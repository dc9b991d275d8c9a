"""One streamed generation on a loaded `llama_cpp.Llama`, from prompt tokens to a `Completion`.

Owns the decode loop of `LlamaCppBackend`: stop strings, structural stop rules (finish_reason
"structure"), cancellation between tokens and inside llama_decode (finish_reason
"cancelled"), GBNF grammars (compiled once per backend), the code-first logits processor (no
comment or end-of-generation before the first code character), and the accounting every
`Completion` reports: prompt tokens, the `evaluated_tokens` the KV cache did not cover (counted
by the eval hook of `llama_native`), sampled tokens, seconds.

The prompt has been fitted to the context before (`llama_fit`); llama-cpp-python reuses the KV
cache up to the first token that differs from the previous call's.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from ..cancel import CancelToken
from .backend import BackendError, Completion, StopRule
from .llama_native import CallSlot, CallState, free_sampler


class CodeFirst:
    """Logits processor: while `active`, the masked tokens cannot be sampled. The stream loop
    switches it off once the text holds a non-blank character."""

    def __init__(self, mask: Any) -> None:
        self.mask = mask
        self.active = True

    def __call__(self, _input_ids: Any, scores: Any) -> Any:
        if self.active:
            scores[self.mask] = -float("inf")
        return scores


class Generator:
    """The generations of one backend: the call slot its `Llama`'s hooks read (hand `slot` to
    `open_llama`), and the grammars and code-first masks it compiled, each built once."""

    def __init__(self, model_name: str) -> None:
        """`model_name`: the model file's name, for error messages."""
        self.model_name = model_name
        self.slot = CallSlot()
        self._grammars: dict[str, Any] = {}
        self._masks: dict[str, Any] = {}  # code_first marker -> banned-token mask

    def grammar(self, grammar: str) -> Any:
        compiled = self._grammars.get(grammar)
        if compiled is None:
            from llama_cpp import LlamaGrammar

            try:
                compiled = LlamaGrammar.from_string(grammar, verbose=False)
            except Exception as exc:
                raise BackendError(f"invalid GBNF grammar: {exc}") from exc
            self._grammars[grammar] = compiled
        return compiled

    def code_first_mask(self, llm: Any, marker: str) -> Any:
        """Tokens that may not come before the first code character: those containing the
        comment marker's first character, and end-of-generation. Built once per marker."""
        mask = self._masks.get(marker)
        if mask is None:
            import numpy

            needle = marker[:1].encode("utf-8")
            mask = numpy.fromiter((needle in llm.detokenize([i]) for i in range(llm.n_vocab())),
                                  dtype=bool, count=llm.n_vocab())
            mask[llm.token_eos()] = True
            self._masks[marker] = mask
        return mask

    def run(self, llm: Any, tokens: list[int], *, max_tokens: int, stop: Sequence[str],
            temperature: float, seed: int | None, grammar: str | None,
            cancel: CancelToken | None, stop_rule: StopRule | None,
            truncated: bool, code_first: str = "") -> Completion:
        """Sample up to `max_tokens` after `tokens` on `llm` (the caller holds its lock)."""
        started = time.monotonic()
        if cancel is not None and cancel.cancelled:
            return Completion("", "cancelled", prompt_tokens=len(tokens), seed=seed,
                              truncated=truncated)
        from llama_cpp import LogitsProcessorList, StoppingCriteriaList

        call = CallState(cancel)
        self.slot.call = call
        text = ""
        finish = "length"
        stopped_early = False
        head = CodeFirst(self.code_first_mask(llm, code_first)) if code_first else None
        try:
            stream = llm.create_completion(
                tokens,
                max_tokens=max_tokens,
                temperature=temperature,
                seed=seed if seed is not None else 0,
                stop=list(stop) or None,
                stream=True,
                grammar=self.grammar(grammar) if grammar else None,
                stopping_criteria=StoppingCriteriaList([call.stopping_criteria]),
                logits_processor=LogitsProcessorList([head]) if head else None,
            )
            for chunk in stream:
                choice = chunk["choices"][0]
                text += choice["text"]
                if head is not None and head.active and text.strip():
                    head.active = False  # the first code character is out: no more bans
                if choice.get("finish_reason"):
                    finish = choice["finish_reason"]
                if stop_rule is not None and choice["text"]:
                    cut = stop_rule.cut(text)
                    if cut is not None:
                        text = text[:cut]
                        finish = "structure"
                        stopped_early = True
                        break
                if call.check_cancelled():
                    stopped_early = True
                    break
            stream.close()
        except BackendError:
            raise
        except RuntimeError as exc:
            # llama_decode returns 2 when the abort callback stopped it: a cancel, not a failure.
            # llama-cpp-python has not recorded the aborted batch, so the KV state stays valid.
            if not call.cancelled:
                raise BackendError(f"llama.cpp failed on a {len(tokens)}-token prompt "
                                   f"({self.model_name}): {exc}") from exc
        except ValueError as exc:
            raise BackendError(f"llama.cpp failed on a {len(tokens)}-token prompt "
                               f"({self.model_name}): {exc}") from exc
        finally:
            self.slot.call = None
            free_sampler(llm)
        if call.cancelled:
            finish = "cancelled"
        evaluated = call.first_eval if call.first_eval is not None else 0
        # a generator that ran to its end calls the criteria once more after the last token
        completion_tokens = max(0, call.sampled - (0 if stopped_early else 1))
        return Completion(
            text=text,
            finish_reason=finish,
            prompt_tokens=len(tokens),
            evaluated_tokens=evaluated,
            completion_tokens=completion_tokens,
            seconds=time.monotonic() - started,
            seed=seed,
            truncated=truncated,
            grammar_incomplete=bool(grammar) and finish == "length",
        )
