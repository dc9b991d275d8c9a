"""The end of a run: COMPLETE (verified patches, or the explanation), FAILED (why, with the best
candidate's feedback, never a patch) and CANCELLED (nothing)."""

from __future__ import annotations

from ..context.compress import digest_feedback
from ..data import Patch
from .run import RunState
from .states import State


def complete(state: RunState) -> None:
    result = state.result
    if result.explanation:  # EXPLAIN ran: text, no edit
        result.status = "explained"
        result.message = result.explanation
    else:
        for path, (before, version) in state.originals.items():
            after = state.working.get(path, before)
            if after != before:
                result.patches.append(Patch(path, before, after, version))
        result.status = "verified"
        result.message = f"Verified change to {', '.join(p.path for p in result.patches)}"
        note = result.untested_note()
        if note:
            result.message += f"; {note}"
    if result.patches:
        state.emit(State.COMPLETE, f"{len(result.patches)} verified patch(es)")
    else:
        state.emit(State.COMPLETE, result.message or "Done")


def fail(state: RunState) -> None:
    result = state.result
    result.patches = []
    if result.status == "error":  # the task could not run: its message says why
        return
    if state.best is not None:
        verdict, candidate = state.best.verdict, state.best.candidate
        lines = digest_feedback(verdict.feedback, limit=3)
        summary = f"best candidate {candidate.id} ({verdict.summary()})"
        if lines:
            summary += ": " + " | ".join(lines)
        result.status = "no_candidate"
        result.message = f"No verified candidate; {summary}"
    else:
        result.status = "no_candidate"
        result.message = result.message or "No verified candidate"
    state.emit(State.FAILED, result.message)


def cancelled(state: RunState) -> None:
    state.result.status = "cancelled"
    state.result.patches = []
    state.result.message = state.cancel.reason or "cancelled"
