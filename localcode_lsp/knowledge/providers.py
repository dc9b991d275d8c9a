"""Context providers (the pipeline's `ContextProvider` protocol: `name`, `provide(query)`) that
put the knowledge store into prompts: `few_shot` examples and `docs` fragments."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ..context.rag import ContextQuery, Snippet
from ..logs import get_logger
from . import syntax

if TYPE_CHECKING:
    from .store import KnowledgeStore

log = get_logger("knowledge.providers")

_DOTTED = re.compile(r"\b([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)\b")


def _budget(store: KnowledgeStore, share: float) -> int:
    code_budget = store.config.context.code_budget if store.config is not None else 1536
    return max(64, int(code_budget * share))


def target_text(query: ContextQuery) -> str:
    """The target's current definition in `query.file_text` ("" for new code)."""
    symbol = getattr(query, "symbol", None)
    if symbol is None or not query.file_text:
        return ""
    qualified = getattr(symbol, "qualified_name", "") or getattr(symbol, "name", "")
    try:
        for definition in syntax.module_facts(query.file_text).definitions:
            if definition.qualified_name == qualified:
                return definition.text
    except Exception as exc:  # an unparsable file only loses the docs hint
        log.debug("target text unavailable: %s", exc)
    return ""


class FewShotProvider:
    """The pattern library's examples for the target, as `few_shot` snippets."""

    name = "knowledge.few_shot"

    def __init__(self, store: KnowledgeStore, *, share: float = 0.4) -> None:
        self.store = store
        self.share = share

    def provide(self, query: ContextQuery) -> list[Snippet]:
        symbol = getattr(query, "symbol", None)
        target: Any = symbol if symbol is not None else {"name": "", "path": query.path}
        k = self.store._few_shot_k()
        examples = self.store.few_shot_for(target, k + 3,
                                           budget_tokens=_budget(self.store, self.share),
                                           path=query.path, instruction=query.instruction)
        visible = ""  # the prompt shows the target file up to the target: no need to repeat it
        if symbol is not None and query.file_text:
            start = int(getattr(symbol, "start_line", 0) or 0)
            visible = "".join(query.file_text.splitlines(keepends=True)[:start])
        return [Snippet(text=e.text, source="example", path=e.path, name=e.qualified_name,
                         score=e.score, section="few_shot") for e in examples
                if not (e.path == query.path and e.text.strip() in visible)][:k]


class DocsProvider:
    """Real signatures and docstrings of the library functions the target uses or names."""

    name = "knowledge.docs"

    def __init__(self, store: KnowledgeStore, *, share: float = 0.25) -> None:
        self.store = store
        self.share = share

    def provide(self, query: ContextQuery) -> list[Snippet]:
        code = target_text(query)
        symbol = getattr(query, "symbol", None)
        prose = " ".join([query.instruction, getattr(symbol, "docstring", "") or "",
                          *getattr(query, "feedback", ())])
        mentioned = [f"{name}()" for name in _DOTTED.findall(prose)]
        if mentioned:
            code = code + "\n" + "\n".join(mentioned)
        if not code.strip():
            return []
        fragments = self.store.docs_for(code, query.file_text,
                                        budget_tokens=_budget(self.store, self.share))
        return [Snippet(text=f.text, source="docs", path=f.origin, name=f.qualified_name,
                         score=1.0 - i * 0.01, section="docs") for i, f in enumerate(fragments)]
