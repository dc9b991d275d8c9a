"""`LlamaCppBackend`: the model in process through llama-cpp-python.

One instance owns one `llama_cpp.Llama` (loaded lazily on the first call) and a lock that
serializes calls, so the background worker and the LSP loop can share it. The Engine holds the
instance: one backend per model path per process is the Engine's job (it creates the backend
once); this module keeps no global cache.

This module owns the backend itself: loading, the model's info, tokens, and the `Backend` calls
(`complete`, `fim`, `chat`, `candidates`) in the form each needs. The pieces they are made of
live beside it: `llama_native` (opening the `Llama`, its eval counter, abort callback and log
routing), `llama_generate` (one streamed generation: stops, grammars, code-first,
cancellation, token accounting), `llama_fit` (prompts cut to the context), `llama_chat` (the
GGUF's chat template).

KV reuse: llama-cpp-python keeps the tokens of the previous call and re-evaluates only from the
first differing token. Prompts are therefore built stable-first (file head before the cursor),
and every `Completion` reports `evaluated_tokens`, measured by counting the tokens the call
really handed to `Llama.eval` before the first sample.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..cancel import CancelToken
from . import llama_chat, llama_fit
from .backend import (
    ChatMessage,
    Completion,
    ModelInfo,
    StopRule,
    merge_identical,
)
from .catalogue import CatalogueModel, model_kind
from .fim import FimTemplate, resolve_fim_template, strip_sentinels, suffix_stop_line
from .llama_generate import Generator
from .llama_native import available_cores, open_llama
from .model_files import GGUFMetadata, read_gguf_metadata, validate_gguf


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
        self._generator = Generator(self.model_path.name)

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
            self._llm = open_llama(self.model_path, n_ctx=n_ctx, n_gpu_layers=self._n_gpu_layers,
                                   n_threads=self.n_threads, verbose=self._verbose,
                                   slot=self._generator.slot)
            return self._llm

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
        return llama_chat.chat_template(self.metadata.values)

    def render_chat(self, messages: Sequence[ChatMessage]) -> tuple[str, list[str]]:
        """`messages` rendered with the GGUF's own chat template, ending where the assistant's
        turn begins, and the strings that end that turn."""
        return llama_chat.render_chat(messages, values=self.metadata.values, load=self.load,
                                      model_name=self.model_path.name)

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

    # --- prompts that do not fit -----------------------------------------------------------

    def fit_prompt(self, prompt: str, max_tokens: int) -> tuple[list[int], int, bool]:
        """Tokens (with BOS) of `prompt` cut from the left on a line boundary so that
        prompt + max_tokens fits the context. Returns (tokens, max_tokens, truncated)."""
        n_ctx = self.load().n_ctx()
        return llama_fit.fit_prompt(lambda text: self.tokenize(text, add_bos=True), n_ctx,
                                    prompt, max_tokens)

    def _fim_prompt(self, template: FimTemplate, prefix: str, suffix: str,
                    max_tokens: int) -> tuple[str, bool]:
        prefix, suffix, truncated = llama_fit.fit_fim(self.count_tokens, self.n_ctx, prefix,
                                                      suffix, max_tokens)
        return template.format(prefix, suffix), truncated

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
            return self._generator.run(self.load(), tokens, max_tokens=max_tokens, stop=stop,
                                       temperature=temperature, seed=seed, grammar=grammar,
                                       cancel=cancel, stop_rule=stop_rule, truncated=truncated,
                                       code_first=code_first)

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
                result = self._generator.run(self.load(), tokens, max_tokens=max_tokens,
                                             stop=stops, temperature=temperature,
                                             seed=seed + index, grammar=grammar, cancel=cancel,
                                             stop_rule=stop_rule,
                                             truncated=truncated or fim_truncated,
                                             code_first=code_first)
                if result.finish_reason == "cancelled":
                    break
                if template is not None:
                    result = replace(result, text=strip_sentinels(result.text,
                                                                  template.sentinels))
                results.append(result)
        return merge_identical(results)
