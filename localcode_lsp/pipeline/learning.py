"""What a run tells the knowledge store (its typed API only): a retry the model fixed is filed
in the error -> fix cache, and the store's session counters go into `result.stats`."""

from __future__ import annotations

from ..data import Candidate
from ..knowledge import KnowledgeStore
from ..logs import get_logger
from .collaborators import Collaborators
from .run import RunState

log = get_logger("pipeline")


def publish(state: RunState, store: KnowledgeStore) -> None:
    """This session's counters in `result.stats["knowledge"]` (what `run --json` shows)."""
    try:
        state.result.stats["knowledge"] = store.session_report()
    except Exception as exc:  # counters are a report, never a reason to fail the task
        log.debug("knowledge stats unavailable: %s", exc)


def record_pass(state: RunState, parts: Collaborators, winner: Candidate) -> None:
    """File a retry that the model fixed: the failing text, its feedback and the passing text."""
    store = parts.knowledge
    if store is None:
        return
    publish(state, store)
    failing = state.failing
    if failing is None or winner.attempt == 0 or winner.source == "repair":
        return
    try:
        store.record_fix(failing.file_text, list(failing.feedback), winner.file_text)
    except Exception as exc:  # learning is optional
        log.warning("knowledge record_fix skipped: %s", exc)
    state.failing = None
    publish(state, store)
