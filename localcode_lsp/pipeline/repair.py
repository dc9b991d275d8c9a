"""REPAIR: after an attempt in which no candidate passed. The error -> fix cache may repair the
best failing candidate without a model call (a missing import, an unused name...), verified by
the gate; otherwise the gate's feedback (and how similar errors were fixed before) goes into the
next attempt's prompt, while retries are left."""

from __future__ import annotations

from ..cancel import Cancelled
from ..context.compress import digest_feedback
from ..data import Candidate
from ..knowledge import KnowledgeStore
from ..logs import get_logger
from .collaborators import Collaborators
from .learning import publish
from .run import Attempt, Failing, Ranked, RunState
from .states import State
from .target import FunctionTarget
from .verify import accept, record_review_call, request_for

log = get_logger("pipeline")

EMPTY = "EMPTY: the model wrote no function body"


def repair(state: RunState, parts: Collaborators) -> tuple[str, str]:
    best = state.attempt.best_failure
    store = parts.knowledge
    if store is not None and best is not None and best.verdict.feedback:
        repaired = try_repair(state, parts, store, best)
        if repaired is not None:  # fixed without a model call
            return accept(state, repaired)
    feedback = digest_feedback(best.verdict.feedback if best is not None else [EMPTY])
    if store is not None and best is not None:
        feedback += past_fixes(state, store, best)
    retries = parts.config.generation.max_retries
    attempt = state.attempt
    if attempt.number >= retries:
        attempt.feedback = feedback
        return "exhausted", f"No candidate passed after {attempt.number + 1} attempts"
    state.previous = best.candidate if best is not None else None
    state.attempt = Attempt(number=attempt.number + 1, feedback=feedback,
                            verified_bodies=attempt.verified_bodies)
    outcome = "retry" if state.new_code is None else "retry_new_code"
    return outcome, (f"No candidate passed; retry {state.attempt.number} of {retries} with "
                     f"{len(feedback)} feedback lines")


def try_repair(state: RunState, parts: Collaborators, store: KnowledgeStore,
               best: Ranked) -> Candidate | None:
    """A repaired candidate that passes every gate, or None (the model retries)."""
    candidate, feedback = best.candidate, list(best.verdict.feedback)
    target = state.target if state.new_code is None else None
    path = state.edited_path()
    try:
        state.failing = Failing(candidate.file_text, tuple(feedback))
        fix = store.try_repair(candidate.file_text, feedback, path=path)
        state.repair_proposed = fix is not None
        if fix is None:
            return None
        text = candidate.text
        if target is not None:
            body = body_in(target, fix.text)
            moved = fix.text.count("\n") - candidate.file_text.count("\n") - (
                (body or "").count("\n") - candidate.text.count("\n"))
            later_same_file = any(s.path == path for s in state.steps[state.step + 1:])
            if body is None or (moved and later_same_file):
                return None  # later plan steps index lines in this file: leave it to the model
            text = body
        repaired = Candidate(id=state.new_candidate_id(), text=text, file_text=fix.text,
                             attempt=state.attempt.number, source="repair")
        state.result.candidates.append(repaired)
        verdict = parts.gate.verify(request_for(state, parts), repaired, cancel=state.cancel)
        verdict.candidate_id = repaired.id
        record_review_call(state, parts, verdict, repaired.id)
        state.result.verdicts.append(verdict)
        store.repair_outcome(verdict.passed)
        state.emit(State.REPAIR, f"Knowledge repair ({'; '.join(fix.actions)}): candidate "
                                 f"{repaired.id} {'passes' if verdict.passed else 'fails'} "
                                 f"({verdict.summary()})",
                   candidate=repaired.id, passed=verdict.passed, source="repair")
        stats = state.result.stats
        stats["knowledge_repairs"] = stats.get("knowledge_repairs", 0) + 1
        publish(state, store)
        if not verdict.passed:
            return None
        store.record_fix(candidate.file_text, feedback, repaired.file_text)
        publish(state, store)
        stats["model_calls_saved"] = stats.get("model_calls_saved", 0) + 1
        state.consider(verdict, repaired)
        state.failing = None
        return repaired
    except Cancelled:
        raise
    except Exception as exc:  # a broken repair only costs the repair, never the task
        log.warning("knowledge repair skipped: %s", exc)
        return None


def past_fixes(state: RunState, store: KnowledgeStore, best: Ranked) -> list[str]:
    """Extra feedback lines: how the closest past errors were fixed."""
    try:
        return store.feedback_for(list(best.verdict.feedback), best.candidate.file_text,
                                  repaired=state.repair_proposed)
    except Exception as exc:  # examples are optional
        log.warning("knowledge past fixes skipped: %s", exc)
        return []
    finally:
        publish(state, store)


def body_in(target: FunctionTarget, file_text: str) -> str | None:
    """The function body inside a repaired file (None when the repair moved the function)."""
    suffix = target.suffix
    head = "".join(target.lines[target.start_line: target.header_end])
    if not file_text.endswith(suffix):
        return None
    end = len(file_text) - len(suffix)
    start = file_text.rfind(head, 0, end)
    if start < 0:
        return None
    return file_text[start + len(head): end]
