"""PLAN: one single-function step, or several when the target calls stubs or the instruction
names more functions (the model confirms a longer plan under a grammar)."""

from __future__ import annotations

from ..index.symbols import Symbol
from ..inference.grammar import choice_grammar, parse_choice
from ..logs import get_logger
from .collaborators import Collaborators
from .locate import target_of
from .model import answer
from .run import RunState
from .states import State
from .target import FUNCTION_KINDS

log = get_logger("pipeline")


def plan(state: RunState, parts: Collaborators) -> tuple[str, str]:
    if state.intent == "explain":
        return "explain", "Explain: no edit"
    if state.intent == "fix" and state.diagnosis is None:
        return "diagnose", "Fix: what fails now?"
    target = state.steps[0]
    try:
        callees = list(parts.index.callees(target.symbol) or []) if target.symbol else []
    except Exception as exc:  # a missing graph only means a smaller plan
        log.info("callees of %s unavailable: %s", target.qualified_name, exc)
        callees = []
    key = (target.path, target.qualified_name)
    extra: list[Symbol] = [c for c in callees if c.is_stub and c.kind in FUNCTION_KINDS]
    for symbol in state.mentioned[1:]:
        if all((s.path, s.qualified_name) != (symbol.path, symbol.qualified_name)
               for s in extra):
            extra.append(symbol)
    extra = [s for s in extra if (s.path, s.qualified_name) != key]
    if not extra:
        return "planned", f"Single-function edit: {target.qualified_name}"
    callee_keys = {(c.path, c.qualified_name) for c in callees}
    before = [s for s in extra if (s.path, s.qualified_name) in callee_keys]
    after = [s for s in extra if (s.path, s.qualified_name) not in callee_keys]
    ordered = [*before, target.symbol, *after]
    names = [s.qualified_name for s in ordered if s is not None]
    ask = parts.prompts.plan(state.description, names, target.qualified_name,
                             choice_grammar(["A", "B"]))
    try:
        choice = parse_choice(answer(state, parts, State.PLAN, ask, max_tokens=2), ["A", "B"])
    except ValueError:
        choice = "A"
    if choice == "B":
        return "planned", f"Single-function edit: {target.qualified_name} (model chose B)"
    state.steps = [target if s is target.symbol else target_of(state, parts, s)
                   for s in ordered if s is not None]
    return "planned", f"Plan: {' -> '.join(names)} ({len(names)} single-function edits)"
