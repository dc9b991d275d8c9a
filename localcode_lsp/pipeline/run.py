"""The typed run state: everything the stages of one pipeline run read and write.

The stages (`understand`, `locate`, `plan`, `generate`, `verify`, `repair`, `complete`) are
functions of `(RunState, Collaborators)`; this module is at the bottom of the package and
imports none of them. A stage changes the run only through these fields.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..cancel import CancelToken
from ..context.budget import Budget
from ..data import Candidate, Result, Task, TraceEvent, Verdict
from ..index.symbols import Symbol
from ..logs import get_logger
from ..verify import VerifyRequest
from ..verify.probes import ProbeCall
from .states import State
from .target import FunctionTarget

log = get_logger("pipeline")

EventSink = Callable[[TraceEvent], None]


class PipelineError(Exception):
    """A task the pipeline cannot run (unknown file or symbol, nothing to locate)."""


@dataclass
class NewCode:
    """Where generated new code is inserted (generate intent without an existing function)."""

    path: str
    file_text: str
    line: int  # insert before this 0-based line
    version: int | None = None

    def location(self) -> str:
        return f"{self.path}:{self.line + 1}"


@dataclass
class Attempt:
    """Bookkeeping of GENERATE/VERIFY for the current plan step."""

    number: int = 0
    candidates: list[Candidate] = field(default_factory=list)
    feedback: list[str] = field(default_factory=list)
    verified_bodies: dict[str, Verdict] = field(default_factory=dict)
    # the best failing candidate of this attempt (what REPAIR and the retry prompt work from)
    best_failure: Ranked | None = None
    request: VerifyRequest | None = None  # the gate's request for this step (built once)
    # Drawing is lazy: the greedy answer of each prompt first, each verified before the next
    # draw, then the samples, only when no greedy answer passed (most tasks pass on a greedy
    # answer, and every candidate costs a full decode).
    draws_done: int = 0  # how many of the attempt's draws GENERATE made
    draws_left: int = 0  # how many remain: VERIFY asks for the next before giving up
    drawn_texts: set[str] = field(default_factory=set)  # bodies this attempt already has
    # Agreement ([verification] agreement): where the docstring's examples are the only checks,
    # the candidates that passed are compared on probe calls before one is accepted.
    probes: list[ProbeCall] | None = None  # None: not asked for yet
    passing: list[Candidate] = field(default_factory=list)
    behaviours: dict[int, tuple[str, ...] | None] = field(default_factory=dict)
    # how many samples drew each body: a body two prompts both wrote is two votes for it
    votes: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Ranked:
    """A verified candidate with its rank key (higher is better)."""

    key: tuple[int, ...]
    verdict: Verdict
    candidate: Candidate


@dataclass(frozen=True)
class Retrieved:
    """Context retrieved for one target at one budget, by prompt section."""

    code: str = ""
    few_shot: str = ""
    docs: str = ""


@dataclass(frozen=True)
class Failing:
    """The last failed attempt's best candidate text and its feedback (for the error->fix
    cache: a later pass of the model files the fix)."""

    file_text: str
    feedback: tuple[str, ...]


@dataclass(frozen=True)
class ModelCall:
    """One model call as `Result.model_calls` records it (what `run --json` and benchmarks
    count)."""

    state: str
    purpose: str
    sections: list[dict[str, object]]
    prompt_tokens: int
    evaluated_tokens: int
    completion_tokens: int
    n: int  # samples drawn (identical ones come back merged but cost a call each)
    distinct: int
    temperature: float  # 0.0 for a call that was one greedy completion
    greedy_first: bool
    grammar: bool
    ms: float
    suffix_tokens: int = 0
    chat: bool = False  # a chat turn (instruct prompt family), not a plain continuation

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class RunState:
    """All the state of one task while it moves through the table."""

    def __init__(self, task: Task, cancel: CancelToken, on_event: EventSink | None,
                 budget: Budget) -> None:
        self.task = task
        self.cancel = cancel
        self.on_event = on_event
        self.budget = budget
        self.result = Result(status="no_candidate")
        self.intent: str = task.intent or ""
        self.description = task.instruction.strip()
        self.steps: list[FunctionTarget] = []
        self.mentioned: list[Symbol] = []  # functions the instruction names (LOCATE -> PLAN)
        self.step = 0
        self.new_code: NewCode | None = None
        self.attempt = Attempt()
        self.diagnosis: list[str] | None = None  # fix intent: what fails before any change
        self.initial_feedback: list[str] = []
        self.best: Ranked | None = None
        self.working: dict[str, str] = {}  # path -> text with verified steps applied
        self.originals: dict[str, tuple[str, int | None]] = {}
        self.retrieved: dict[tuple[str, str, int], Retrieved] = {}
        self.next_candidate_id = 1
        self.previous: Candidate | None = None  # the last failed attempt's best candidate
        self.failing: Failing | None = None  # the last failed attempt, for the error->fix cache
        self.repair_proposed = False  # the error->fix cache proposed a repair for it

    def emit(self, state: State, message: str, **data: Any) -> None:
        """Record one trace event and pass it to the progress sink (a broken sink is logged)."""
        event = TraceEvent(state.value, message, dict(data))
        self.result.trace.append(event)
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception as exc:  # a broken progress sink must not stop the task
                log.warning("event sink failed: %s", exc)

    def new_candidate_id(self) -> int:
        number = self.next_candidate_id
        self.next_candidate_id += 1
        return number

    @property
    def target(self) -> FunctionTarget:
        """The function the current plan step changes."""
        return self.steps[self.step]

    def edited_path(self) -> str:
        """The file this step's candidates change."""
        return self.new_code.path if self.new_code is not None else self.target.path

    def edited_name(self) -> str:
        return "new code" if self.new_code is not None else self.target.qualified_name

    def consider(self, verdict: Verdict, candidate: Candidate) -> Ranked:
        """Rank a verified candidate; it becomes the run's best when it beats the best so far
        (a passing candidate is never lost by a later attempt)."""
        ranked = Ranked(verdict.rank_key() + (-len(candidate.text),), verdict, candidate)
        if self.best is None or ranked.key > self.best.key or verdict.passed:
            self.best = ranked
        return ranked
