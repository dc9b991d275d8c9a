"""The pipeline driver: runs one Task through the states of `states.TRANSITIONS`.

Each stage is a function of `(RunState, Collaborators)` that does its work and returns
`(outcome, message)`; the driver emits one TraceEvent per transition (`[LOCATE] Found
parse_config at src/config.py:34-58`) and looks up the next state in the table. Stages never
choose a state themselves, and neither does the model.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..cancel import Cancelled, CancelToken
from ..context.budget import Budget
from ..data import Result, Task
from .collaborators import Collaborators
from .complete import cancelled, complete, fail
from .explain import explain
from .generate import generate, write
from .locate import locate
from .plan import plan
from .repair import repair
from .run import EventSink, PipelineError, RunState
from .states import TERMINAL, State, next_state
from .understand import understand
from .verify import diagnose, verify

Stage = Callable[[RunState, Collaborators], tuple[str, str]]

STAGES: dict[State, Stage] = {
    State.UNDERSTAND: understand,
    State.LOCATE: locate,
    State.PLAN: plan,
    State.DIAGNOSE: diagnose,
    State.GENERATE: generate,
    State.WRITE: write,
    State.EXPLAIN: explain,
    State.VERIFY: verify,
    State.REPAIR: repair,
}

FINISH: dict[State, Callable[[RunState], None]] = {
    State.COMPLETE: complete,
    State.FAILED: fail,
    State.CANCELLED: cancelled,
}


def run_task(parts: Collaborators, task: Task, *, cancel: CancelToken | None = None,
             on_event: EventSink | None = None) -> Result:
    """Drive `task` through the transition table; always returns a Result (never raises for a
    bad task: status "error" with a message)."""
    cancel = cancel or CancelToken()
    state = RunState(task, cancel, on_event, Budget.from_config(parts.config))
    current = State.UNDERSTAND
    started = time.monotonic()
    timings: dict[str, float] = {}
    while current not in TERMINAL:
        t0 = time.monotonic()
        try:
            cancel.raise_if_cancelled()
            outcome, message = STAGES[current](state, parts)
        except Cancelled:
            outcome, message = "cancelled", f"Cancelled during {current.value}"
        except (PipelineError, FileNotFoundError, ValueError) as exc:
            state.result.status = "error"
            state.result.message = str(exc)
            state.emit(current, f"Error: {exc}", outcome="error", next=State.FAILED.value)
            outcome, message = "error", ""
        finally:
            timings[current.value] = timings.get(current.value, 0.0) + time.monotonic() - t0
        if outcome == "error":
            current = State.FAILED
            break
        following = next_state(current, outcome)
        state.emit(current, message, outcome=outcome, next=following.value)
        current = following
    FINISH[current](state)
    timings["total"] = time.monotonic() - started
    state.result.timings = {k: round(v, 3) for k, v in timings.items()}
    state.result.stats.update({
        "intent": state.intent,
        "attempts": state.attempt.number + 1,
        "candidates": len(state.result.candidates),
        "model_calls": len(state.result.model_calls),
        "steps": [s.qualified_name for s in state.steps],
    })
    return state.result
