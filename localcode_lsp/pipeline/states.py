"""Pipeline states and the transition table. The model never picks the next state: each state
returns an outcome, and this table alone says where that outcome leads."""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    UNDERSTAND = "UNDERSTAND"
    LOCATE = "LOCATE"
    PLAN = "PLAN"
    GENERATE = "GENERATE"
    VERIFY = "VERIFY"
    COMPLETE = "COMPLETE"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


TERMINAL = frozenset({State.COMPLETE, State.FAILED, State.CANCELLED})

S = State
# (state, outcome) -> next state. "cancelled" leads to CANCELLED from every state (see next_state).
TRANSITIONS: dict[tuple[State, str], State] = {
    (S.UNDERSTAND, "classified"): S.LOCATE,
    (S.LOCATE, "found"): S.PLAN,
    (S.LOCATE, "not_found"): S.FAILED,
    (S.PLAN, "planned"): S.GENERATE,       # one or more single-function steps
    (S.PLAN, "explain"): S.GENERATE,       # explain intent: generate text, no edit
    (S.GENERATE, "candidates"): S.VERIFY,
    (S.GENERATE, "no_candidates"): S.VERIFY,  # an empty attempt counts as a failed attempt
    (S.GENERATE, "explained"): S.COMPLETE,
    (S.VERIFY, "passed"): S.COMPLETE,      # last plan step verified
    (S.VERIFY, "next_step"): S.GENERATE,   # a step verified, more steps to go
    (S.VERIFY, "retry"): S.GENERATE,       # failed, retries left: feedback goes into the prompt
    (S.VERIFY, "exhausted"): S.FAILED,     # failed, no retries left
}


def next_state(state: State, outcome: str) -> State:
    """The state after `state` produced `outcome` (KeyError for an outcome the table lacks)."""
    if outcome == "cancelled":
        return State.CANCELLED
    return TRANSITIONS[(state, outcome)]
