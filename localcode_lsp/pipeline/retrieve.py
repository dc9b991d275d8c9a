"""Context for a prompt: the providers' snippets for one target, cut to the `code` budget and
split into the prompt's sections (code, few-shot examples, docs). Cached per target and budget
for the run."""

from __future__ import annotations

from ..context.rag import ContextQuery, gather, select
from .collaborators import Collaborators
from .run import NewCode, Retrieved, RunState
from .target import FunctionTarget


def retrieved(state: RunState, parts: Collaborators, target: FunctionTarget | NewCode,
              budget: int) -> Retrieved:
    symbol = target.symbol if isinstance(target, FunctionTarget) else None
    key = (target.path, target.qualified_name if isinstance(target, FunctionTarget) else "",
           budget)
    found = state.retrieved.get(key)
    if found is not None:
        return found
    query = ContextQuery(state.description, target.path, symbol, target.file_text, state.intent,
                         tuple(state.attempt.feedback))
    snippets = gather(parts.context_providers, query)
    code, _ = select(snippets, "code", budget, parts.count, exclude_text=target.file_text)
    few_shot, _ = select(snippets, "few_shot", budget, parts.count)
    docs, _ = select(snippets, "docs", budget, parts.count)
    found = Retrieved(code=code, few_shot=few_shot, docs=docs)
    state.retrieved[key] = found
    return found
