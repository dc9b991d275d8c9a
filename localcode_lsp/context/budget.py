"""Token budgets: a prompt is a list of named sections, each measured with the model's tokenizer
and cut to the budget of its pool before the prompt is rendered.

Pools (from `[context]`): `system` (system_budget), `code` (code_budget: the target file, retrieved
code, few-shot examples, docs) and `task` (task_budget: the task, verifier feedback, the session
summary). Within a pool, sections are filled in priority order; what a section cannot use is left
for the next one. Whatever the pools leave of the context window is for generation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..config import Config
from .invisible import strip_invisible

# section name -> the pool whose budget it draws from
SECTION_POOLS: dict[str, str] = {
    "system": "system",
    "target": "code",
    "code": "code",
    "few_shot": "code",
    "docs": "code",
    "task": "task",
    "feedback": "task",
    "summary": "task",
}

TokenCounter = Callable[[str], int]


@dataclass
class Section:
    """One named part of a prompt. `keep` says which end survives a cut ("head" or "tail")."""

    name: str
    text: str
    priority: int = 0  # lower fills first within its pool
    keep: str = "head"
    tokens: int = 0
    budget: int = 0
    truncated: bool = False
    original_tokens: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "tokens": self.tokens,
            "budget": self.budget,
            "truncated": self.truncated,
            "original_tokens": self.original_tokens,
        }


@dataclass
class Prompt:
    """Sections in render order, already fitted; `text` is what the model sees."""

    sections: list[Section] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(s.text for s in self.sections)

    @property
    def tokens(self) -> int:
        return sum(s.tokens for s in self.sections)

    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)

    def describe(self) -> list[dict[str, object]]:
        return [s.as_dict() for s in self.sections if s.text or s.original_tokens]


class CachedCounter:
    """Memoises `count_tokens` (prompts are re-measured many times while fitting)."""

    def __init__(self, count: TokenCounter, max_entries: int = 4096) -> None:
        self._count = count
        self._cache: dict[str, int] = {}
        self._max = max_entries

    def __call__(self, text: str) -> int:
        if not text:
            return 0
        cached = self._cache.get(text)
        if cached is None:
            cached = int(self._count(text))
            if len(self._cache) >= self._max:
                self._cache.clear()
            self._cache[text] = cached
        return cached


def fit_text(text: str, budget: int, count: TokenCounter, keep: str = "head") -> tuple[str, int]:
    """The longest run of whole lines from one end of `text` that fits in `budget` tokens.

    A single line longer than the budget is cut by characters. Returns (text, tokens).
    """
    tokens = count(text)
    if tokens <= budget:
        return text, tokens
    if budget <= 0:
        return "", 0
    lines = text.splitlines(keepends=True)

    def take(n: int) -> str:
        return "".join(lines[:n] if keep == "head" else lines[len(lines) - n:])

    low, high = 0, len(lines)  # largest n with count(take(n)) <= budget
    while low < high:
        mid = (low + high + 1) // 2
        if count(take(mid)) <= budget:
            low = mid
        else:
            high = mid - 1
    if low > 0:
        kept = take(low)
        return kept, count(kept)
    line = lines[0] if keep == "head" else lines[-1]
    low, high = 0, len(line)
    while low < high:
        mid = (low + high + 1) // 2
        piece = line[:mid] if keep == "head" else line[len(line) - mid:]
        if count(piece) <= budget:
            low = mid
        else:
            high = mid - 1
    piece = line[:low] if keep == "head" else line[len(line) - low:]
    return piece, count(piece)


class Budget:
    """The per-pool budgets of one configuration."""

    def __init__(self, system: int, code: int, task: int, context_length: int) -> None:
        self.pools = {"system": system, "code": code, "task": task}
        self.context_length = context_length

    @classmethod
    def from_config(cls, config: Config) -> Budget:
        c = config.context
        return cls(c.system_budget, c.code_budget, c.task_budget, config.model.context_length)

    @property
    def generation(self) -> int:
        return max(0, self.context_length - sum(self.pools.values()))

    def fit(self, sections: Iterable[Section], count: TokenCounter) -> Prompt:
        """Measure and cut every section to what its pool has left; keeps render order."""
        ordered = list(sections)
        left = dict(self.pools)
        for section in sorted(ordered, key=lambda s: s.priority):
            section.text = strip_invisible(section.text)  # hidden text never reaches the model
            pool = SECTION_POOLS.get(section.name, "task")
            section.original_tokens = count(section.text)
            section.budget = left[pool]
            text, tokens = fit_text(section.text, left[pool], count, section.keep)
            section.truncated = tokens < section.original_tokens
            section.text, section.tokens = text, tokens
            left[pool] -= tokens
        return Prompt(ordered)
