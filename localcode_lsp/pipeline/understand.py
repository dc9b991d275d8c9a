"""UNDERSTAND: what the task asks for (its intent), and a warning for invisible characters."""

from __future__ import annotations

from ..context.invisible import find_invisible
from ..inference.grammar import parse_intent
from .collaborators import Collaborators
from .model import answer
from .run import RunState
from .states import State


def understand(state: RunState, parts: Collaborators) -> tuple[str, str]:
    """The intent as given, from the diagnostics when there is no instruction, else classified
    by the model under a grammar (an unreadable answer is an edit)."""
    warn_invisible(state, parts)
    if state.task.intent:
        state.intent = state.task.intent
        return "classified", f"Intent: {state.intent} (given)"
    if not state.description:
        state.intent = "fix" if state.task.diagnostics else "edit"
        return "classified", f"Intent: {state.intent} (no instruction)"
    text = answer(state, parts, State.UNDERSTAND, parts.prompts.intent(state.description),
                  max_tokens=4)
    try:
        state.intent = parse_intent(text)
    except ValueError:
        state.intent = "edit"
    return "classified", f"Intent: {state.intent}"


def warn_invisible(state: RunState, parts: Collaborators) -> None:
    """Flag invisible characters (tag, bidi, zero-width) in the target file before any prompt;
    Budget.fit strips them from every prompt."""
    if not state.task.path:
        return
    try:
        document = parts.workspace.snapshot(state.task.path)
    except (OSError, ValueError):
        return  # LOCATE reports a missing or unreadable file
    for line, characters in find_invisible(document.text)[:5]:
        state.emit(State.UNDERSTAND, f"warning: invisible characters at {document.path}:{line}",
                   warning="invisible_characters", characters=characters)
