"""The diff review: one grammar-constrained yes/no model call per candidate."""

from __future__ import annotations

from ..cancel import CancelToken
from ..data import GateResult
from ..inference.backend import Backend

_MAX_DIFF_CHARS = 6000

try:  # the inference package's grammar when it has one; the same tiny grammar otherwise
    from ..inference.grammar import YES_NO_GRAMMAR as _GRAMMAR
except ImportError:  # pragma: no cover - depends on the inference package's progress
    _GRAMMAR = 'root ::= "yes" | "no"\n'

YES_NO_GRAMMAR = _GRAMMAR
_YES = ("yes",) if '"yes"' in _GRAMMAR else ("YES",)


def review_prompt(task: str, diff: str) -> str:
    """The review question; the diff is cut to a size a small context holds."""
    if len(diff) > _MAX_DIFF_CHARS:
        diff = diff[:_MAX_DIFF_CHARS] + "\n... (diff truncated)\n"
    answer_words = "yes or no" if _YES == ("yes",) else "YES or NO"
    return (
        "You review a code change.\n"
        f"Task: {task.strip()}\n"
        f"Change (unified diff):\n{diff}\n"
        f"Does this change correctly address the task? Answer {answer_words}.\n"
        "Answer: "
    )


def review(backend: Backend, task: str, diff: str, *, temperature: float,
           cancel: CancelToken | None = None) -> GateResult:
    """Ask the model whether `diff` addresses `task`; a backend failure skips the gate."""
    try:
        completion = backend.complete(review_prompt(task, diff), grammar=YES_NO_GRAMMAR,
                                      temperature=temperature, max_tokens=2, cancel=cancel)
    except Exception as exc:  # a review that cannot run must not hide the other gates
        return GateResult("review", True, skipped=f"review unavailable: {exc}")
    answer = completion.text.strip().lower()
    details = {"answer": completion.text.strip(), "seconds": completion.seconds,
               "prompt_tokens": completion.prompt_tokens,
               "evaluated_tokens": completion.evaluated_tokens,
               "completion_tokens": completion.completion_tokens}
    if answer.startswith("yes"):
        return GateResult("review", True, details=details)
    if answer.startswith("no"):
        return GateResult("review", False, details=details, feedback=[
            f"REVIEW: the change does not correctly address the task: {task.strip()[:160]}"])
    return GateResult("review", True, details=details,
                      skipped=f"review answer not yes/no: {completion.text[:20]!r}")
