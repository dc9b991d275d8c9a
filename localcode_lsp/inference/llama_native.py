"""The C-level glue between `LlamaCppBackend` and llama.cpp: opening a `llama_cpp.Llama` and the
hooks it carries for its whole life.

Owns: the cores a model may use (`available_cores`); the call in flight on one `Llama`
(`CallState`, held in a `CallSlot`) as the hooks installed at load read it: the eval counter
that measures KV reuse (the tokens the first `Llama.eval` of a call really evaluates; the
rest of the prompt came from the cache) and the abort callback that lets a cancel stop
llama_decode itself; llama.cpp's own log lines routed to our log file (`route_llama_logs`, with
the one C thunk per process); freeing a call's sampler chain (`free_sampler`).

llama_cpp is imported inside the functions, never at module level: `import
localcode_lsp.inference` stays free of it.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..cancel import CancelToken
from ..logs import get_logger
from .backend import BackendError

log = get_logger("inference")


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class CallState:
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


class CallSlot:
    """The call in flight on one `Llama` (None between calls): what the hooks installed at load
    read. A generation puts its `CallState` here and takes it out when it ends."""

    __slots__ = ("call",)

    def __init__(self) -> None:
        self.call: CallState | None = None


def open_llama(model_path: Path, *, n_ctx: int, n_gpu_layers: int, n_threads: int,
               verbose: bool, slot: CallSlot) -> Any:
    """A loaded `Llama` with llama.cpp's logs routed to ours, its evals counted into the call in
    `slot` and a cancel of that call able to abort llama_decode. BackendError when it fails."""
    try:
        from llama_cpp import Llama
    except ImportError as exc:  # pragma: no cover - broken install
        raise BackendError(f"llama-cpp-python is not importable: {exc}") from exc
    started = time.monotonic()
    route_llama_logs()
    try:
        llm = Llama(
            model_path=str(model_path),
            n_ctx=n_ctx,
            n_gpu_layers=n_gpu_layers,
            n_threads=n_threads,
            n_threads_batch=n_threads,
            verbose=verbose,
        )
    except (ValueError, RuntimeError, OSError) as exc:
        raise BackendError(f"llama.cpp could not load the model {model_path}: {exc}") \
            from exc
    original_eval = llm.eval

    def counting_eval(tokens: Sequence[int]) -> None:
        call = slot.call
        if call is not None and call.first_eval is None:
            call.first_eval = len(tokens)
        original_eval(tokens)

    # an instance attribute: counts what this backend evaluates
    llm.eval = counting_eval  # type: ignore[method-assign]
    install_abort_callback(llm, slot)
    log.info("loaded %s (n_ctx=%d, threads=%d) in %.2fs", model_path.name, n_ctx,
             n_threads, time.monotonic() - started)
    return llm


def free_sampler(llm: Any) -> None:
    """Free the call's sampler chain now. llama-cpp-python builds one per generation and
    frees it only from __del__, which sits in a reference cycle: without this each call
    left ~3 MB of C memory waiting for a full garbage collection (measured: RSS +3 MB per
    completion, flat with it)."""
    sampler = getattr(llm, "_sampler", None)
    if sampler is not None and hasattr(sampler, "close"):
        sampler.close()
        llm._sampler = None


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


def route_llama_logs() -> None:
    """Send llama.cpp's own log lines to our log file instead of the user's terminal.

    llama.cpp reports ordinary facts at ERROR level ("using full-size SWA cache"), which
    llama-cpp-python prints to stderr even with verbose=False; real failures still surface
    as exceptions from the calls.
    """
    import ctypes

    import llama_cpp

    llama_cpp.llama_log_set(_llama_log_thunk(), ctypes.c_void_p(0))


def install_abort_callback(llm: Any, slot: CallSlot) -> None:
    """Let a cancel interrupt llama_decode itself, not only the gaps between tokens.

    Prompt evaluation runs as one llama_decode per batch (over a second for a long prompt on
    two cores); ggml polls this callback between graph nodes, so a cancelled call stops
    within milliseconds (measured: 3 ms) at about 3% throughput cost.
    """
    import llama_cpp

    def should_abort(_data: Any) -> bool:
        call = slot.call
        return call is not None and call.check_cancelled()

    # the thunk lives on the Llama itself: it must outlive the context that calls it
    llm._localcode_abort_callback = llama_cpp.ggml_abort_callback(should_abort)
    llama_cpp.llama_set_abort_callback(llm.ctx, llm._localcode_abort_callback, None)
