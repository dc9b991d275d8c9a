"""Pipeline states and the transition table. The model never picks the next state: each stage
returns an outcome, and this table alone says where that outcome leads."""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    UNDERSTAND = "UNDERSTAND"
    LOCATE = "LOCATE"
    PLAN = "PLAN"
    DIAGNOSE = "DIAGNOSE"  # a fix without diagnostics: what the function fails now
    GENERATE = "GENERATE"  # bodies for the current plan step's function
    WRITE = "WRITE"  # new code at a spot where no function is (generate intent)
    EXPLAIN = "EXPLAIN"  # explain intent: text, no edit
    VERIFY = "VERIFY"
    REPAIR = "REPAIR"  # after a failed attempt: model-free repair, else feedback for a retry
    COMPLETE = "COMPLETE"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


TERMINAL = frozenset({State.COMPLETE, State.FAILED, State.CANCELLED})

S = State
# (state, outcome) -> next state. "cancelled" leads to CANCELLED from every state (see next_state).
TRANSITIONS: dict[tuple[State, str], State] = {
    (S.UNDERSTAND, "classified"): S.LOCATE,
    (S.LOCATE, "found"): S.PLAN,
    (S.LOCATE, "new_code"): S.WRITE,        # generate intent, no function there: new code
    (S.LOCATE, "not_found"): S.FAILED,
    (S.PLAN, "planned"): S.GENERATE,        # one or more single-function steps
    (S.PLAN, "explain"): S.EXPLAIN,         # explain intent: generate text, no edit
    (S.PLAN, "diagnose"): S.DIAGNOSE,       # fix intent: find what fails first
    (S.DIAGNOSE, "diagnosed"): S.PLAN,
    (S.EXPLAIN, "explained"): S.COMPLETE,
    (S.GENERATE, "candidates"): S.VERIFY,
    (S.GENERATE, "no_candidates"): S.VERIFY,  # an empty attempt counts as a failed attempt
    (S.WRITE, "candidates"): S.VERIFY,
    (S.WRITE, "no_candidates"): S.VERIFY,
    (S.VERIFY, "passed"): S.COMPLETE,       # last plan step verified
    (S.VERIFY, "next_step"): S.GENERATE,    # a step verified, more steps to go
    (S.VERIFY, "draw_more"): S.GENERATE,    # none passed yet: the attempt's next draw
    (S.VERIFY, "failed"): S.REPAIR,         # no candidate passed
    (S.REPAIR, "passed"): S.COMPLETE,       # repaired from the error->fix cache, verified
    (S.REPAIR, "next_step"): S.GENERATE,
    (S.REPAIR, "retry"): S.GENERATE,        # retries left: feedback goes into the prompt
    (S.REPAIR, "retry_new_code"): S.WRITE,
    (S.REPAIR, "exhausted"): S.FAILED,      # no retries left
}


def next_state(state: State, outcome: str) -> State:
    """The state after `state` produced `outcome` (KeyError for an outcome the table lacks)."""
    if outcome == "cancelled":
        return State.CANCELLED
    return TRANSITIONS[(state, outcome)]
