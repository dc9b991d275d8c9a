"""Where the pipeline calls the knowledge store. Kept here so the FSM carries only one-line hooks:

- `providers(engine, existing)`: the few_shot / docs context providers;
- `repair_before_retry(run, request, best)`: a model-free repair of the best failing candidate,
  verified by the gate; a pass ends the attempt without another GENERATE model call;
- `past_fixes(run, best)`: the closest past fixes as extra `feedback` lines;
- `after_pass(run, winner)`: a verified retry is filed in the error -> fix cache.

Every hook is best effort: a failure is logged and the pipeline goes on as if there were no store.
"""

from __future__ import annotations

from typing import Any

from ..logs import get_logger

log = get_logger("knowledge.hooks")

_FAILING_ATTR = "_knowledge_failing"  # (file text, feedback) of the last failed attempt
_PROPOSED_ATTR = "_knowledge_proposed"  # a repair was proposed for the current failure


def knowledge_of(engine: Any) -> Any:
    """The engine's KnowledgeStore, or None (disabled, a fake engine, or it failed to open)."""
    try:
        store = getattr(engine, "knowledge", None)
    except Exception as exc:  # a broken store must not break the task
        log.warning("knowledge store unavailable: %s", exc)
        return None
    return store if store is not None and hasattr(store, "try_repair") else None


def publish(run: Any, store: Any) -> None:
    """This session's counters in `result.stats["knowledge"]` (what `run --json` shows)."""
    try:
        stats = store.stats()
        run.result.stats["knowledge"] = {"session": stats["session"],
                                         "hit_rate": stats["hit_rate"],
                                         "size_bytes": stats["size_bytes"]}
    except Exception as exc:
        log.debug("knowledge stats unavailable: %s", exc)


def providers(engine: Any, existing: list[Any]) -> list[Any]:
    """The knowledge providers not already among `existing`."""
    store = knowledge_of(engine)
    if store is None:
        return []
    names = {getattr(p, "name", "") for p in existing}
    return [p for p in store.providers() if p.name not in names]


def _candidate_of(run: Any, verdict: Any) -> Any:
    for candidate in run.attempt.candidates:
        if candidate.id == verdict.candidate_id:
            return candidate
    return None


def _body_of(target: Any, file_text: str) -> str | None:
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


def repair_before_retry(run: Any, request: Any, best: tuple[Any, Any] | None) -> Any:
    """A repaired, verified Candidate that passes every gate, or None (the model retries)."""
    store = knowledge_of(run.engine)
    if store is None or best is None:
        return None
    verdict = best[1]
    candidate = _candidate_of(run, verdict)
    if candidate is None or not verdict.feedback:
        return None
    try:
        if run.new_code is not None:
            path = run.new_code.path
            target = None
        else:
            target = run.steps[run.step]
            path = target.path
        setattr(run, _FAILING_ATTR, (candidate.file_text, list(verdict.feedback)))
        repair = store.try_repair(candidate.file_text, list(verdict.feedback), path=path)
        setattr(run, _PROPOSED_ATTR, repair is not None)
        if repair is None:
            return None
        text = candidate.text
        if target is not None:
            body = _body_of(target, repair.text)
            moved = repair.text.count("\n") - candidate.file_text.count("\n") - (
                (body or "").count("\n") - candidate.text.count("\n"))
            later_same_file = any(s.path == path for s in run.steps[run.step + 1:])
            if body is None or (moved and later_same_file):
                return None  # later plan steps index lines in this file: leave it to the model
            text = body
        from ..data import Candidate

        repaired = Candidate(id=run.next_candidate_id, text=text, file_text=repair.text,
                             attempt=run.attempt.number, source="repair")
        run.next_candidate_id += 1
        run.result.candidates.append(repaired)
        result = run.engine.gate.verify(request, repaired, cancel=run.cancel)
        result.candidate_id = repaired.id
        run.result.verdicts.append(result)
        store.repair_outcome(result.passed)
        actions = "; ".join(repair.actions)
        run.emit("VERIFY", f"Knowledge repair ({actions}): candidate {repaired.id} "
                           f"{'passes' if result.passed else 'fails'} ({result.summary()})",
                 candidate=repaired.id, passed=result.passed, source="repair")
        run.result.stats["knowledge_repairs"] = run.result.stats.get("knowledge_repairs", 0) + 1
        publish(run, store)
        if not result.passed:
            return None
        store.record_fix(candidate.file_text, list(verdict.feedback), repaired.file_text)
        publish(run, store)
        run.result.stats["model_calls_saved"] = run.result.stats.get("model_calls_saved", 0) + 1
        key = result.rank_key() + (-len(repaired.text),)
        run.best = (key, result, repaired)
        setattr(run, _FAILING_ATTR, None)
        return repaired
    except Exception as exc:
        if type(exc).__name__ == "Cancelled":
            raise  # cancellation goes through; anything else only costs the repair
        log.warning("knowledge repair skipped: %s", exc)
        return None


def past_fixes(run: Any, best: tuple[Any, Any] | None) -> list[str]:
    """Extra feedback lines: how the closest past errors were fixed."""
    store = knowledge_of(run.engine)
    if store is None or best is None:
        return []
    verdict = best[1]
    candidate = _candidate_of(run, verdict)
    try:
        return store.feedback_for(list(verdict.feedback), candidate.file_text if candidate else "",
                                  repaired=bool(getattr(run, _PROPOSED_ATTR, False)))
    except Exception as exc:
        log.warning("knowledge past fixes skipped: %s", exc)
        return []
    finally:
        publish(run, store)


def after_pass(run: Any, winner: Any) -> None:
    """File a retry that the model fixed: the failing text, its feedback and the passing text."""
    store = knowledge_of(run.engine)
    if store is None:
        return
    publish(run, store)
    failing = getattr(run, _FAILING_ATTR, None)
    if not failing or winner.attempt == 0 or winner.source == "repair":
        return
    try:
        store.record_fix(failing[0], failing[1], winner.file_text)
    except Exception as exc:
        log.warning("knowledge record_fix skipped: %s", exc)
    setattr(run, _FAILING_ATTR, None)
    publish(run, store)
