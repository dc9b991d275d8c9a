"""`LlamaCppBackend`: the model in process through llama-cpp-python.

One instance owns one `llama_cpp.Llama` (loaded lazily on the first call) and a lock that
serializes calls, so the background worker and the LSP loop can share it. The Engine holds the
instance: one backend per model path per process is the Engine's job (it creates the backend
once); this module keeps no global cache.

KV reuse: llama-cpp-python keeps the tokens of the previous call and re-evaluates only from the
first differing token. Prompts are therefore built stable-first (file head before the cursor),
and every `Completion` reports `evaluated_tokens`, measured by counting the tokens the call
really handed to `Llama.eval` before the first sample.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..cancel import CancelToken
from ..logs import get_logger
from .backend import (
    BackendError,
    ChatMessage,
    Completion,
    ModelInfo,
    StopRule,
    merge_identical,
)
from .catalogue import CatalogueModel, model_kind
from .fim import FimTemplate, resolve_fim_template, strip_sentinels, suffix_stop_line
from .model_files import GGUFMetadata, read_gguf_metadata, validate_gguf

log = get_logger("inference")

MIN_GENERATION_TOKENS = 16  # what a truncated prompt always leaves for generation


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class _CallState:
    """Per-call bookkeeping shared by the stopping criteria and the eval counter."""

    def __init__(self, cancel: CancelToken | None) -> None:
        self.cancel = cancel
        self.cancelled = False
        self.first_eval: int | None = None  # tokens evaluated by the first eval = the prompt's
        self.sampled = 0  # llama calls the stopping criteria once per sampled token

    def stopping_criteria(self, _input_ids: Any, _logits: Any) -> bool:
        self.sampled += 1
        return self.check_cancelled()

    def check_cancelled(self) -> bool:
        if self.cancel is not None and self.cancel.cancelled:
            self.cancelled = True
        return self.cancelled


class _CodeFirst:
    """Logits processor: while `active`, the masked tokens cannot be sampled. The stream loop
    switches it off once the text holds a non-blank character."""

    def __init__(self, mask: Any) -> None:
        self.mask = mask
        self.active = True

    def __call__(self, _input_ids: Any, scores: Any) -> Any:
        if self.active:
            scores[self.mask] = -float("inf")
        return scores


@functools.cache
def _llama_log_thunk() -> Any:
    """The C log callback, created once per process and never freed: llama.cpp keeps the
    pointer for every later context and logs while freeing one, so a thunk owned by a single
    backend that was garbage-collected first would be called after it is gone (a segfault)."""
    import llama_cpp

    llama_log = get_logger("llama.cpp")

    def forward(level: int, text: bytes, _data: Any) -> None:
        message = text.decode("utf-8", "replace").rstrip()
        if message:
            llama_log.log(logging.INFO if level in (2, 3) else logging.DEBUG, "%s", message)

    return llama_cpp.llama_log_callback(forward)


class LlamaCppBackend:
    """The in-process llama.cpp backend (the default)."""

    in_process = True  # computes on this process's cores (the engine keeps them free for it)

    def __init__(
        self,
        model_path: Path,
        *,
        context_length: int = 8192,
        n_gpu_layers: int = -1,
        n_threads: int = 0,
        fim_template: str = "",
        verbose: bool = False,
        catalogue: CatalogueModel | None = None,
    ) -> None:
        """`catalogue`: the catalogue entry this file is (its kind and templates), if any."""
        self.model_path = Path(model_path)
        self.catalogue = catalogue
        self._requested_context = context_length
        self._n_gpu_layers = n_gpu_layers
        cores = available_cores()
        self.n_threads = min(n_threads, cores) if n_threads > 0 else cores
        self._forced_fim = fim_template
        self._verbose = verbose
        self._lock = threading.RLock()
        self._llm: Any = None
        self._metadata: GGUFMetadata | None = None
        self._fim: FimTemplate | None = None
        self._info: ModelInfo | None = None
        self._grammars: dict[str, Any] = {}
        self._masks: dict[str, Any] = {}  # code_first marker -> banned-token mask
        self._call: _CallState | None = None

    # --- loading ---------------------------------------------------------------------------

    @property
    def metadata(self) -> GGUFMetadata:
        """The GGUF header (read without loading the model; BackendError names a bad file)."""
        with self._lock:
            if self._metadata is None:
                validate_gguf(self.model_path)
                self._metadata = read_gguf_metadata(self.model_path)
                self._fim = resolve_fim_template(self._metadata, self._forced_fim)
            return self._metadata

    @property
    def fim_template(self) -> FimTemplate | None:
        _ = self.metadata
        return self._fim

    @property
    def loaded(self) -> bool:
        return self._llm is not None

    def load(self) -> Any:
        """Load the model once; later calls return the same `Llama`."""
        with self._lock:
            if self._llm is not None:
                return self._llm
            metadata = self.metadata
            trained = metadata.context_length or self._requested_context
            n_ctx = min(self._requested_context, trained)
            try:
                from llama_cpp import Llama
            except ImportError as exc:  # pragma: no cover - broken install
                raise BackendError(f"llama-cpp-python is not importable: {exc}") from exc
            started = time.monotonic()
            self._route_llama_logs()
            try:
                llm = Llama(
                    model_path=str(self.model_path),
                    n_ctx=n_ctx,
                    n_gpu_layers=self._n_gpu_layers,
                    n_threads=self.n_threads,
                    n_threads_batch=self.n_threads,
                    verbose=self._verbose,
                )
            except (ValueError, RuntimeError, OSError) as exc:
                raise BackendError(f"llama.cpp could not load the model {self.model_path}: {exc}") \
                    from exc
            original_eval = llm.eval

            def counting_eval(tokens: Sequence[int]) -> None:
                call = self._call
                if call is not None and call.first_eval is None:
                    call.first_eval = len(tokens)
                original_eval(tokens)

            # an instance attribute: counts what this backend evaluates
            llm.eval = counting_eval  # type: ignore[method-assign]
            self._install_abort_callback(llm)
            self._llm = llm
            log.info("loaded %s (n_ctx=%d, threads=%d) in %.2fs", self.model_path.name, n_ctx,
                     self.n_threads, time.monotonic() - started)
            return llm

    @staticmethod
    def _free_sampler(llm: Any) -> None:
        """Free the call's sampler chain now. llama-cpp-python builds one per generation and
        frees it only from __del__, which sits in a reference cycle: without this each call
        left ~3 MB of C memory waiting for a full garbage collection (measured: RSS +3 MB per
        completion, flat with it)."""
        sampler = getattr(llm, "_sampler", None)
        if sampler is not None and hasattr(sampler, "close"):
            sampler.close()
            llm._sampler = None

    @staticmethod
    def _route_llama_logs() -> None:
        """Send llama.cpp's own log lines to our log file instead of the user's terminal.

        llama.cpp reports ordinary facts at ERROR level ("using full-size SWA cache"), which
        llama-cpp-python prints to stderr even with verbose=False; real failures still surface
        as exceptions from the calls.
        """
        import ctypes

        import llama_cpp

        llama_cpp.llama_log_set(_llama_log_thunk(), ctypes.c_void_p(0))

    def _install_abort_callback(self, llm: Any) -> None:
        """Let a cancel interrupt llama_decode itself, not only the gaps between tokens.

        Prompt evaluation runs as one llama_decode per batch (over a second for a long prompt on
        two cores); ggml polls this callback between graph nodes, so a cancelled call stops
        within milliseconds (measured: 3 ms) at about 3% throughput cost.
        """
        import llama_cpp

        def should_abort(_data: Any) -> bool:
            call = self._call
            return call is not None and call.check_cancelled()

        # the thunk lives on the Llama itself: it must outlive the context that calls it
        llm._localcode_abort_callback = llama_cpp.ggml_abort_callback(should_abort)
        llama_cpp.llama_set_abort_callback(llm.ctx, llm._localcode_abort_callback, None)

    @property
    def info(self) -> ModelInfo:
        with self._lock:
            if self._info is None:
                metadata = self.metadata
                n_ctx = self._llm.n_ctx() if self._llm is not None else min(
                    self._requested_context, metadata.context_length or self._requested_context)
                special = {t: i for t, i in metadata.tokens.items()
                           if self._fim is not None and t in self._fim.sentinels}
                for key, label in (("tokenizer.ggml.bos_token_id", "bos"),
                                   ("tokenizer.ggml.eos_token_id", "eos")):
                    if key in metadata.values:
                        special[label] = int(metadata.values[key])
                chat_template = self.chat_template
                info = ModelInfo(
                    name=metadata.name,
                    family=metadata.architecture,
                    context_length=n_ctx,
                    fim=self._fim.name if self._fim else None,
                    special_tokens=special,
                    path=str(self.model_path),
                    size_bytes=metadata.size_bytes,
                    kind=model_kind(self.catalogue, f"{metadata.name} {self.model_path.name}",
                                    chat_template),
                    chat_template=chat_template,
                    catalogue_name=self.catalogue.name if self.catalogue else "",
                )
                if self._llm is None:
                    return info  # n_ctx may still change with the load; do not cache
                self._info = info
            return self._info

    @property
    def chat_template(self) -> str:
        """The GGUF's own Jinja chat template ("" when it carries none)."""
        value = self.metadata.values.get("tokenizer.chat_template", "")
        return value if isinstance(value, str) else ""

    def render_chat(self, messages: Sequence[ChatMessage]) -> tuple[str, list[str]]:
        """`messages` rendered with the GGUF's own chat template, ending where the assistant's
        turn begins, and the strings that end that turn."""
        template = self.chat_template
        if not template:
            raise BackendError(f"{self.model_path.name} has no chat template "
                               "(tokenizer.chat_template): it is a base model; use completion")
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        tokens = self.metadata.values
        llm = self.load()

        def token_text(key: str) -> str:
            if key not in tokens:
                return ""
            return llm.detokenize([int(tokens[key])], special=True).decode("utf-8", "replace")

        eos, bos = token_text("tokenizer.ggml.eos_token_id"), token_text("tokenizer.ggml.bos_token_id")
        formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos,
                                        add_generation_prompt=True)
        try:
            rendered = formatter(messages=[dict(m) for m in messages])  # type: ignore[misc]
        except Exception as exc:  # jinja2 errors of a template the GGUF ships
            raise BackendError(f"the chat template of {self.model_path.name} failed: {exc}") \
                from exc
        prompt = rendered.prompt
        if bos and prompt.startswith(bos):
            prompt = prompt[len(bos):]  # fit_prompt adds BOS itself where the model wants one
        stops = [s for s in (rendered.stop if isinstance(rendered.stop, list)
                             else [rendered.stop] if rendered.stop else []) if s]
        for marker in (eos, "<|im_end|>", "<|endoftext|>"):
            if marker and marker not in stops and (marker == eos or marker in prompt):
                stops.append(marker)
        return prompt, stops

    @property
    def n_ctx(self) -> int:
        return int(self.load().n_ctx())

    def close(self) -> None:
        with self._lock:
            if self._llm is not None:
                self._llm.close()
                self._llm = None

    # --- tokens ----------------------------------------------------------------------------

    def tokenize(self, text: str, *, add_bos: bool = False) -> list[int]:
        """Token ids of `text` with the model's own tokenizer (special tokens parsed)."""
        with self._lock:
            return list(self.load().tokenize(text.encode("utf-8"), add_bos=add_bos, special=True))

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text)) if text else 0

    def detokenize(self, tokens: Sequence[int]) -> str:
        with self._lock:
            return self.load().detokenize(list(tokens)).decode("utf-8", errors="replace")

    def _grammar(self, grammar: str) -> Any:
        compiled = self._grammars.get(grammar)
        if compiled is None:
            from llama_cpp import LlamaGrammar

            try:
                compiled = LlamaGrammar.from_string(grammar, verbose=False)
            except Exception as exc:
                raise BackendError(f"invalid GBNF grammar: {exc}") from exc
            self._grammars[grammar] = compiled
        return compiled

    # --- prompts that do not fit -----------------------------------------------------------

    def fit_prompt(self, prompt: str, max_tokens: int) -> tuple[list[int], int, bool]:
        """Tokens (with BOS) of `prompt` cut from the left on a line boundary so that
        prompt + max_tokens fits the context. Returns (tokens, max_tokens, truncated)."""
        llm = self.load()
        n_ctx = llm.n_ctx()
        max_tokens = max(1, min(max_tokens, n_ctx // 2))
        budget = n_ctx - max_tokens - 1
        tokens = self.tokenize(prompt, add_bos=True)
        if len(tokens) <= budget:
            return tokens, max_tokens, False
        starts = [0] + [i + 1 for i, ch in enumerate(prompt) if ch == "\n" and i + 1 < len(prompt)]
        low, high = 0, len(starts) - 1  # find the first line start whose tail fits
        best: list[int] | None = None
        while low <= high:
            mid = (low + high) // 2
            candidate = self.tokenize(prompt[starts[mid]:], add_bos=True)
            if len(candidate) <= budget:
                best, high = candidate, mid - 1
            else:
                low = mid + 1
        if best is None:  # even the last line is too long: keep its last tokens
            best = tokens[:1] + tokens[-(budget - 1):]
        log.info("prompt of %d tokens truncated to %d to fit n_ctx=%d", len(tokens), len(best),
                 n_ctx)
        return best, max_tokens, True

    # --- generation ------------------------------------------------------------------------

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
        """Continue `prompt`. Cancellation is checked between tokens (finish_reason "cancelled");
        `stop_rule` cuts the text where the structure closed (finish_reason "structure");
        `code_first` (a comment marker) makes the text begin with code."""
        with self._lock:
            tokens, max_tokens, truncated = self.fit_prompt(prompt, max_tokens)
            return self._generate(tokens, max_tokens=max_tokens, stop=stop,
                                  temperature=temperature, seed=seed, grammar=grammar,
                                  cancel=cancel, stop_rule=stop_rule, truncated=truncated,
                                  code_first=code_first)

    def _code_first_mask(self, marker: str) -> Any:
        """Tokens that may not come before the first code character: those containing the
        comment marker's first character, and end-of-generation. Built once per marker."""
        mask = self._masks.get(marker)
        if mask is None:
            import numpy

            llm = self.load()
            needle = marker[:1].encode("utf-8")
            mask = numpy.fromiter((needle in llm.detokenize([i]) for i in range(llm.n_vocab())),
                                  dtype=bool, count=llm.n_vocab())
            mask[llm.token_eos()] = True
            self._masks[marker] = mask
        return mask

    def _generate(self, tokens: list[int], *, max_tokens: int, stop: Sequence[str],
                  temperature: float, seed: int | None, grammar: str | None,
                  cancel: CancelToken | None, stop_rule: StopRule | None,
                  truncated: bool, code_first: str = "") -> Completion:
        llm = self.load()
        started = time.monotonic()
        if cancel is not None and cancel.cancelled:
            return Completion("", "cancelled", prompt_tokens=len(tokens), seed=seed,
                              truncated=truncated)
        from llama_cpp import LogitsProcessorList, StoppingCriteriaList

        call = _CallState(cancel)
        self._call = call
        text = ""
        finish = "length"
        stopped_early = False
        head = _CodeFirst(self._code_first_mask(code_first)) if code_first else None
        try:
            stream = llm.create_completion(
                tokens,
                max_tokens=max_tokens,
                temperature=temperature,
                seed=seed if seed is not None else 0,
                stop=list(stop) or None,
                stream=True,
                grammar=self._grammar(grammar) if grammar else None,
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
                                   f"({self.model_path.name}): {exc}") from exc
        except ValueError as exc:
            raise BackendError(f"llama.cpp failed on a {len(tokens)}-token prompt "
                               f"({self.model_path.name}): {exc}") from exc
        finally:
            self._call = None
            self._free_sampler(llm)
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
    ) -> Completion:
        """Fill in between `prefix` and `suffix` with the model's FIM template, or complete the
        prefix alone (stopping where the suffix's first line begins) when it has none."""
        with self._lock:
            template = self.fim_template
            stops = list(stop)
            if template is None:
                line = suffix_stop_line(suffix)
                if line is not None:
                    stops.append("\n" + line)
                result = self.complete(prefix, max_tokens=max_tokens, stop=stops,
                                       temperature=temperature, seed=seed, cancel=cancel,
                                       stop_rule=stop_rule, code_first=code_first)
                return result
            prompt, truncated = self._fim_prompt(template, prefix, suffix, max_tokens)
            stops.extend(template.stop_strings())
            result = self.complete(prompt, max_tokens=max_tokens, stop=stops,
                                   temperature=temperature, seed=seed, cancel=cancel,
                                   stop_rule=stop_rule, code_first=code_first)
            cleaned = strip_sentinels(result.text, template.sentinels)
            return replace(result, text=cleaned, truncated=result.truncated or truncated)

    def _fim_prompt(self, template: FimTemplate, prefix: str, suffix: str,
                    max_tokens: int) -> tuple[str, bool]:
        prefix, suffix, truncated = self._fit_fim(prefix, suffix, max_tokens)
        return template.format(prefix, suffix), truncated

    def _fit_fim(self, prefix: str, suffix: str, max_tokens: int) -> tuple[str, str, bool]:
        """Keep the prefix's end and the suffix's start within the context (lines dropped)."""
        budget = self.n_ctx - min(max_tokens, self.n_ctx // 2) - 16
        if self.count_tokens(prefix) + self.count_tokens(suffix) <= budget:
            return prefix, suffix, False
        suffix_lines = suffix.splitlines(keepends=True)
        while suffix_lines and self.count_tokens("".join(suffix_lines)) > budget // 4:
            suffix_lines = suffix_lines[: max(0, len(suffix_lines) // 2 - 1) or 0]
            if len(suffix_lines) <= 1:
                break
        suffix = "".join(suffix_lines)
        room = budget - self.count_tokens(suffix)
        prefix_lines = prefix.splitlines(keepends=True)
        low, high = 0, len(prefix_lines)
        while low < high:  # smallest number of dropped lines that fits
            mid = (low + high) // 2
            if self.count_tokens("".join(prefix_lines[mid:])) <= room:
                high = mid
            else:
                low = mid + 1
        return "".join(prefix_lines[low:]), suffix, True

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
        """The assistant's answer, through the GGUF's own chat template. The rendered prompt goes
        through `complete`, so KV reuse, cancellation, grammars and stop rules work as there."""
        with self._lock:
            prompt, stops = self.render_chat(messages)
            return self.complete(prompt + prefill, max_tokens=max_tokens,
                                 stop=[*stop, *stops], temperature=temperature, seed=seed,
                                 grammar=grammar, cancel=cancel, stop_rule=stop_rule)

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
        """`n` samples of one prompt (seeds seed..seed+n-1); the prompt is evaluated once and
        reused from the KV cache by the other samples. Identical texts are merged (`votes`).
        With `suffix`, the samples fill in between prompt and suffix like `fim`."""
        results: list[Completion] = []
        with self._lock:
            template = self.fim_template if suffix is not None else None
            fim_truncated = False
            stops = list(stop)
            if template is not None:
                prompt, fim_truncated = self._fim_prompt(template, prompt, suffix or "",
                                                         max_tokens)
                stops.extend(template.stop_strings())
            elif suffix is not None:
                line = suffix_stop_line(suffix)  # as `fim` does without a template
                if line is not None:
                    stops.append("\n" + line)
            tokens, max_tokens, truncated = self.fit_prompt(prompt, max_tokens)
            for index in range(n):
                if cancel is not None and cancel.cancelled:
                    break
                result = self._generate(tokens, max_tokens=max_tokens, stop=stops,
                                        temperature=temperature, seed=seed + index,
                                        grammar=grammar, cancel=cancel, stop_rule=stop_rule,
                                        truncated=truncated or fim_truncated,
                                        code_first=code_first)
                if result.finish_reason == "cancelled":
                    break
                if template is not None:
                    result = replace(result, text=strip_sentinels(result.text,
                                                                  template.sentinels))
                results.append(result)
        return merge_identical(results)
