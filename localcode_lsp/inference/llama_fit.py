"""Prompts that do not fit the context of an in-process model, cut to fit on line boundaries.

Owns how `LlamaCppBackend` truncates: a completion prompt loses lines from its start (the text
before the cursor matters most at its end), a FIM pair keeps the end of its prefix and the
start of its suffix. Both leave room for the generation (at most half the context) and report
whether they cut. They take the model's tokenizer as a function, so nothing here loads a model.
"""

from __future__ import annotations

from collections.abc import Callable

from ..logs import get_logger

log = get_logger("inference")

MIN_GENERATION_TOKENS = 16  # what a truncated prompt always leaves for generation


def fit_prompt(tokenize: Callable[[str], list[int]], n_ctx: int, prompt: str,
               max_tokens: int) -> tuple[list[int], int, bool]:
    """Tokens of `prompt` (`tokenize` adds BOS) cut from the left on a line boundary so that
    prompt + max_tokens fits `n_ctx`. Returns (tokens, max_tokens, truncated)."""
    max_tokens = max(1, min(max_tokens, n_ctx // 2))
    budget = n_ctx - max_tokens - 1
    tokens = tokenize(prompt)
    if len(tokens) <= budget:
        return tokens, max_tokens, False
    starts = [0] + [i + 1 for i, ch in enumerate(prompt) if ch == "\n" and i + 1 < len(prompt)]
    low, high = 0, len(starts) - 1  # find the first line start whose tail fits
    best: list[int] | None = None
    while low <= high:
        mid = (low + high) // 2
        candidate = tokenize(prompt[starts[mid]:])
        if len(candidate) <= budget:
            best, high = candidate, mid - 1
        else:
            low = mid + 1
    if best is None:  # even the last line is too long: keep its last tokens
        best = tokens[:1] + tokens[-(budget - 1):]
    log.info("prompt of %d tokens truncated to %d to fit n_ctx=%d", len(tokens), len(best),
             n_ctx)
    return best, max_tokens, True


def fit_fim(count_tokens: Callable[[str], int], n_ctx: int, prefix: str, suffix: str,
            max_tokens: int) -> tuple[str, str, bool]:
    """Keep the prefix's end and the suffix's start within the context (lines dropped).
    Returns (prefix, suffix, truncated)."""
    budget = n_ctx - min(max_tokens, n_ctx // 2) - 16
    if count_tokens(prefix) + count_tokens(suffix) <= budget:
        return prefix, suffix, False
    suffix_lines = suffix.splitlines(keepends=True)
    while suffix_lines and count_tokens("".join(suffix_lines)) > budget // 4:
        suffix_lines = suffix_lines[: max(0, len(suffix_lines) // 2 - 1) or 0]
        if len(suffix_lines) <= 1:
            break
    suffix = "".join(suffix_lines)
    room = budget - count_tokens(suffix)
    prefix_lines = prefix.splitlines(keepends=True)
    low, high = 0, len(prefix_lines)
    while low < high:  # smallest number of dropped lines that fits
        mid = (low + high) // 2
        if count_tokens("".join(prefix_lines[mid:])) <= room:
            high = mid
        else:
            low = mid + 1
    return "".join(prefix_lines[low:]), suffix, True
