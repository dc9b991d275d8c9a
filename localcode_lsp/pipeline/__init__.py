"""The pipeline: UNDERSTAND -> LOCATE -> PLAN -> GENERATE -> VERIFY -> (REPAIR | COMPLETE), one
stage module per state on a typed run state (`run.py`), the table in `states.py`, the driver
in `fsm.py`, the prompts per model kind in `prompts/`."""

from .collaborators import Collaborators
from .fsm import run_task
from .run import PipelineError
from .states import TRANSITIONS, State, next_state

__all__ = ["Collaborators", "PipelineError", "State", "TRANSITIONS", "next_state", "run_task"]
