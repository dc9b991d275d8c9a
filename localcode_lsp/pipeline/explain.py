"""EXPLAIN: a short explanation of the located function, no edit."""

from __future__ import annotations

from ..index.languages import language_for_path
from .collaborators import Collaborators
from .model import answer
from .prompts import ExplainJob
from .retrieve import retrieved
from .run import RunState
from .states import State


def explain(state: RunState, parts: Collaborators) -> tuple[str, str]:
    target = state.steps[0]
    left = max(0, state.budget.pools["code"] - parts.count(target.function_text))
    job = ExplainJob(name=target.qualified_name, function_text=target.function_text,
                     code=retrieved(state, parts, target, left).code,
                     instruction=state.description,
                     language=language_for_path(target.path) or "")
    text = answer(state, parts, State.EXPLAIN, parts.prompts.explain(job), max_tokens=120)
    state.result.explanation = text or "(the model gave no explanation)"
    return "explained", f"Explained {target.qualified_name}"
