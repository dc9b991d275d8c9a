"""VERIFY (every candidate of the attempt through the gate, the first pass wins), DIAGNOSE (a
fix without diagnostics: what the function fails now) and accepting a winner."""

from __future__ import annotations

from dataclasses import replace

from ..context.compress import digest_feedback, shorten
from ..data import Candidate, Verdict
from ..logs import get_logger
from ..verify import VerifyRequest
from ..verify.examples import called_names
from ..verify.probes import ProbeCall
from .collaborators import Collaborators
from .learning import record_pass
from .run import Attempt, ModelCall, RunState
from .states import State
from .target import FunctionTarget

log = get_logger("pipeline")


def verify(state: RunState, parts: Collaborators) -> tuple[str, str]:
    request = request_for(state, parts)
    attempt = state.attempt
    for candidate in attempt.candidates:
        state.cancel.raise_if_cancelled()
        verdict = attempt.verified_bodies.get(candidate.text)
        if verdict is None:
            verdict = parts.gate.verify(request, candidate, cancel=state.cancel)
            verdict.candidate_id = candidate.id
            attempt.verified_bodies[candidate.text] = verdict
            record_review_call(state, parts, verdict, candidate.id)
        state.result.verdicts.append(verdict)
        ranked = state.consider(verdict, candidate)
        if verdict.passed:
            state.emit(State.VERIFY, f"Candidate {candidate.id} passes ({verdict.summary()})",
                       candidate=candidate.id, passed=True)
            if not probe_calls(state, parts, request):
                return take(state, parts, candidate)
            attempt.passing.append(candidate)
            winner = agreed(state, parts, request, final=False)
            if winner is not None:
                return take(state, parts, winner)
            continue
        first = verdict.feedback[0] if verdict.feedback else "failed"
        state.emit(State.VERIFY, f"Candidate {candidate.id} fails ({verdict.summary()}): "
                                 f"{shorten(first, 120)}", candidate=candidate.id, passed=False)
        if attempt.best_failure is None or ranked.key > attempt.best_failure.key:
            attempt.best_failure = ranked
    state.cancel.raise_if_cancelled()  # cancelled while the gate ran: draw nothing more
    if attempt.passing:
        # this draw may only have repeated a passing body: that is a vote as well
        winner = (agreed(state, parts, request, final=attempt.draws_left == 0)
                  if not attempt.candidates or attempt.draws_left == 0 else None)
        if winner is not None:
            return take(state, parts, winner)
        return "draw_more", (f"{len(attempt.passing)} passing, not yet agreed; "
                             f"{attempt.draws_left} more draws")
    if attempt.draws_left > 0:
        return "draw_more", (f"No candidate of attempt {attempt.number} passed yet; "
                             f"{attempt.draws_left} more draws")
    return "failed", f"No candidate of attempt {attempt.number} passed"


def take(state: RunState, parts: Collaborators, winner: Candidate) -> tuple[str, str]:
    """Accept a passing candidate; a fixed retry also teaches the error cache."""
    record_pass(state, parts, winner)
    return accept(state, winner)


def probe_calls(state: RunState, parts: Collaborators, request: VerifyRequest) -> list[ProbeCall]:
    """The attempt's probe calls when a pass must be agreed ([] = the first pass wins): the
    docstring's examples are the target's only checks, and agreement is on."""
    attempt = state.attempt
    if attempt.probes is None:
        wanted = parts.config.verification.agreement and state.new_code is None
        attempt.probes = parts.gate.probes(request) if wanted else []
    return attempt.probes


def agreed(state: RunState, parts: Collaborators, request: VerifyRequest, *,
           final: bool) -> Candidate | None:
    """The passing candidate to accept, or None to draw more.

    Passing candidates are grouped by what they return on the probe calls, each weighing as
    many votes as draws wrote its body. A group with at least two votes and more than half of
    them wins (its first candidate); on the `final` call (no draws left) the heaviest group
    wins, the earliest on a tie: a lone pass is accepted when nothing else passed."""
    attempt = state.attempt
    calls = attempt.probes or []
    for candidate in attempt.passing:
        if candidate.id not in attempt.behaviours:
            attempt.behaviours[candidate.id] = parts.gate.behaviour(request, candidate, calls,
                                                                    cancel=state.cancel)
    groups: list[list[Candidate]] = []
    for candidate in attempt.passing:
        behaviour = attempt.behaviours[candidate.id]
        group = next((g for g in groups if behaviour is not None
                      and attempt.behaviours[g[0].id] == behaviour), None)
        if group is None:
            groups.append([candidate])
        else:
            group.append(candidate)
    def weight(group: list[Candidate]) -> int:
        return sum(max(1, attempt.votes.get(c.text, 1)) for c in group)

    best = max(groups, key=weight)  # the earliest of the heaviest
    agree, total = weight(best), weight(attempt.passing)
    if agree >= 2 and 2 * agree > total:
        who = (f"Candidates {', '.join(str(c.id) for c in best)} agree" if len(best) > 1
               else f"Candidate {best[0].id} was drawn {agree} times")
        state.emit(State.VERIFY, f"{who} on {len(calls)} inputs near the docstring's "
                                 f"examples: candidate {best[0].id} accepted",
                   candidate=best[0].id, agreed=agree, passing=total)
        return best[0]
    if len(attempt.passing) > 1:
        state.emit(State.VERIFY, disagreement(attempt, calls, request.symbol or ""),
                   passing=total)
    if not final:
        if total == 1:
            state.emit(State.VERIFY, f"Drawing a second candidate to compare with "
                                     f"{best[0].id} on {len(calls)} inputs near the "
                                     "docstring's examples")
        return None
    how = (f"the largest group that behaves alike ({agree} of {total})"
           if total > 1 else "no other candidate passed to compare with")
    state.emit(State.VERIFY, f"Candidate {best[0].id} accepted: {how}", candidate=best[0].id,
               agreed=agree, passing=total)
    return best[0]


def disagreement(attempt: Attempt, calls: list[ProbeCall], name: str) -> str:
    """Where the first two passing candidates that differ part ways, in one line."""
    first = attempt.passing[0]
    ours = attempt.behaviours[first.id]
    for other in attempt.passing[1:]:
        theirs = attempt.behaviours[other.id]
        if theirs == ours:
            continue
        if ours is None or theirs is None:
            broken = first if ours is None else other
            return f"Candidate {broken.id}'s behaviour could not be run on the probe inputs"
        for call, a, b in zip(calls, ours, theirs, strict=True):
            if a != b:
                return (f"Candidates {first.id} and {other.id} differ on "
                        f"{shorten(call.source(name.rsplit('.', 1)[-1]), 80)}: "
                        f"{shorten(a, 40)} vs {shorten(b, 40)}")
    return "The passing candidates differ on the probe inputs"


def diagnose(state: RunState, parts: Collaborators) -> tuple[str, str]:
    """Fix intent: the diagnostics at the cursor, or else the target's failing checks now,
    become the task description and the first attempt's feedback."""
    problems = list(state.task.diagnostics)
    how = "from the diagnostics"
    if not problems:
        target = state.steps[0]
        current = Candidate(id=0, text=target.old_body, file_text=target.file_text,
                            source="original")
        request = replace(request_for(state, parts, task=state.description
                                      or f"fix {target.qualified_name}"), as_is=True)
        problems = parts.gate.verify(request, current, cancel=state.cancel).feedback
        how = "from its checks now"
    state.diagnosis = problems
    state.initial_feedback = digest_feedback(problems)
    if not state.description and state.initial_feedback:
        state.description = "make this pass: " + state.initial_feedback[0]
    return "diagnosed", f"{len(problems)} problems to fix ({how})"


def request_for(state: RunState, parts: Collaborators, *, task: str = "") -> VerifyRequest:
    """The gate's request for this step: target file and text, symbol, what the change should
    do, the index's tests, and the other files as earlier steps left them."""
    if state.attempt.request is not None and not task:
        return state.attempt.request
    path = state.edited_path()
    target = state.target if state.new_code is None else None
    test_refs: list[str] = []
    if target is not None and target.symbol is not None:
        try:
            test_refs = [r.node_id for r in parts.index.tests_of(target.symbol) or []]
        except Exception as exc:  # no test map: the gate falls back to naming conventions
            log.info("tests of %s unavailable: %s", target.qualified_name, exc)
    request = VerifyRequest(
        path=path, original_text=state.working[path],
        symbol=target.qualified_name if target is not None else None,
        task=task or description(state), test_refs=tuple(test_refs),
        defined_elsewhere=defined_elsewhere(parts, target),
        # earlier steps' verified changes to other files: this step's tests see them
        base_files={p: text for p, text in state.working.items() if p != path},
        review_form=parts.prompts.review_form)
    if not task:
        state.attempt.request = request
    return request


def description(state: RunState) -> str:
    if state.intent == "fix" and state.task.diagnostics:
        return "fix: " + "; ".join(state.task.diagnostics)
    return state.description or f"implement {state.edited_name()} as its docstring says"


def defined_elsewhere(parts: Collaborators, target: FunctionTarget | None) -> frozenset[str]:
    """The names the target's docstring calls that the index finds in other files."""
    docstring = target.symbol.docstring if target is not None and target.symbol else ""
    if not docstring or target is None:
        return frozenset()
    found = set()
    for name in called_names(docstring) - {target.name}:
        try:
            symbols = parts.index.find_symbol(name)
        except Exception as exc:  # no index: the gate judges by the module alone
            log.info("symbols named %s unavailable: %s", name, exc)
            return frozenset()
        if any(s.path != target.path for s in symbols):
            found.add(name)
    return frozenset(found)


def record_review_call(state: RunState, parts: Collaborators, verdict: Verdict,
                       candidate_id: int) -> None:
    """The gate's diff review is a model call too: it counts in `model_calls`."""
    for gate in verdict.gates:
        if gate.gate != "review" or "answer" not in gate.details:
            continue
        details = gate.details
        state.result.model_calls.append(ModelCall(
            state=State.VERIFY.value, purpose=f"diff review of candidate {candidate_id}",
            sections=[], prompt_tokens=int(details.get("prompt_tokens", 0) or 0),
            evaluated_tokens=int(details.get("evaluated_tokens", 0) or 0),
            completion_tokens=int(details.get("completion_tokens", 0) or 0), n=1, distinct=1,
            temperature=parts.config.generation.temperature_classify, greedy_first=False,
            grammar=True, ms=round(float(details.get("seconds", 0.0) or 0.0) * 1000, 1),
            chat=bool(details.get("chat", False))).as_dict())


def accept(state: RunState, winner: Candidate) -> tuple[str, str]:
    """Take a verified candidate into the working files; the next plan step, or done."""
    verdict = next((v for v in reversed(state.result.verdicts)
                    if v.candidate_id == winner.id), None)
    reason = untested_reason(verdict) if verdict is not None else ""
    if reason and verdict is not None:  # "verified" must not hide that nothing was tested
        state.result.stats.setdefault("untested", []).append({
            "symbol": state.edited_name(), "reason": reason,
            "checked": [g.gate for g in verdict.gates if not g.skipped]})
    state.working[state.edited_path()] = winner.file_text
    if state.new_code is not None:
        return "passed", f"Candidate {winner.id} verified"
    target = state.target
    updated = target.with_text(winner.file_text, len(winner.text.splitlines()))
    delta = updated.body_end - target.body_end
    for i in range(state.step + 1, len(state.steps)):
        other = state.steps[i]
        if other.path != target.path:
            continue
        shift = delta if other.start_line >= target.body_end else 0
        state.steps[i] = replace(other, file_text=winner.file_text,
                                 start_line=other.start_line + shift,
                                 header_end=other.header_end + shift,
                                 body_end=other.body_end + shift)
    state.result.stats.setdefault("steps_done", []).append(target.qualified_name)
    if state.step + 1 < len(state.steps):
        state.step += 1
        state.attempt = Attempt()
        return "next_step", (f"{target.qualified_name} verified; next: "
                             f"{state.target.qualified_name}")
    return "passed", f"Candidate {winner.id} verified"


def untested_reason(verdict: Verdict) -> str:
    """Why no test or docstring example checked a passing candidate ("" when some did)."""
    tests = next((g for g in verdict.gates if g.gate == "test"), None)
    if tests is None:
        return "the test gate did not run"
    return tests.skipped
