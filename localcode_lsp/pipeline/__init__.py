"""The pipeline FSM: UNDERSTAND -> LOCATE -> PLAN -> GENERATE -> VERIFY -> (retry | COMPLETE)."""

from .fsm import PipelineError, run_task
from .states import TRANSITIONS, State, next_state

__all__ = ["PipelineError", "State", "TRANSITIONS", "next_state", "run_task"]
