"""The pipeline's collaborators: the long-lived parts of one workspace a run works with, as one
typed bundle the Engine builds (`Engine.implement`). Tests build it with fakes of the two
protocols below."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol

from ..cancel import CancelToken
from ..config import Config
from ..context.budget import CachedCounter
from ..context.rag import ContextProvider, IndexContextProvider
from ..data import Candidate, Verdict
from ..index.graph import TestRef
from ..index.symbols import Symbol
from ..inference.backend import Backend
from ..knowledge import KnowledgeStore
from ..verify import VerifyRequest
from ..verify.probes import ProbeCall
from ..workspace import Workspace
from .prompts import PromptFamily, choose_family


class SearchHitLike(Protocol):
    @property
    def path(self) -> str: ...

    @property
    def symbol(self) -> str: ...


class SymbolIndex(Protocol):
    """What the pipeline asks of the code index (`index.CodeIndex`)."""

    def update_document(self, rel_path: str, text: str) -> None: ...

    def symbols(self, rel_path: str) -> list[Symbol]: ...

    def find_symbol(self, name_or_qualified: str, path: str | None = None) -> list[Symbol]: ...

    def enclosing_function(self, rel_path: str, line: int, column: int) -> Symbol | None: ...

    def callees(self, symbol: Symbol) -> list[Symbol]: ...

    def tests_of(self, symbol: Symbol) -> list[TestRef]: ...

    def search(self, query: str, k: int = 8) -> Sequence[SearchHitLike]: ...


class Verifier(Protocol):
    """What the pipeline asks of the verification gate (`verify.Gate`)."""

    def verify(self, request: VerifyRequest, candidate: Candidate, *,
               cancel: CancelToken | None = None) -> Verdict: ...

    def probes(self, request: VerifyRequest) -> list[ProbeCall]: ...

    def behaviour(self, request: VerifyRequest, candidate: Candidate, calls: Sequence[ProbeCall],
                  *, cancel: CancelToken | None = None) -> tuple[str, ...] | None: ...


@dataclass
class Collaborators:
    """Config, documents, index, gate, knowledge store and (loaded on first use) the model."""

    config: Config
    workspace: Workspace
    index: SymbolIndex
    gate: Verifier
    load_backend: Callable[[], Backend]  # loads the model: only a model call needs it
    knowledge: KnowledgeStore | None = None
    extra_providers: Sequence[ContextProvider] = field(default_factory=list)

    @cached_property
    def backend(self) -> Backend:
        return self.load_backend()

    @cached_property
    def prompts(self) -> PromptFamily:
        """The prompt family of the loaded model (`[model] prompt_family` may override it)."""
        return choose_family(self.config.model.prompt_family, self.backend.info)

    @cached_property
    def count(self) -> CachedCounter:
        return CachedCounter(self.backend.count_tokens)

    @cached_property
    def context_providers(self) -> list[ContextProvider]:
        """Index retrieval, the engine's extra providers, then the knowledge store's few-shot
        and docs providers (a name appears once)."""
        providers = list(self.extra_providers)
        if not any(p.name == "index" for p in providers):
            providers.insert(0, IndexContextProvider(self.index, self.workspace))
        if self.knowledge is not None:
            names = {p.name for p in providers}
            providers.extend(p for p in self.knowledge.providers() if p.name not in names)
        return providers
