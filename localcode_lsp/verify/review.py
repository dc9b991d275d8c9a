"""The diff review: one grammar-constrained model call per candidate, "does this change do the
task?". Two forms, as the run's prompt family chooses (`VerifyRequest.review_form`): "text", a
continuation a base model answers with yes or no, and "chat", a chat turn an instruct model
answers with yes or no and a one-line reason.

A review that cannot tell never passes: a backend failure, an answer that is neither yes nor
no, or a "yes" about a diff cut to fit the context is a failure that says "review unanswered".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..cancel import Cancelled, CancelToken
from ..data import GateResult
from ..inference.backend import Backend, ChatMessage, Completion
from ..inference.grammar import YES_NO_GRAMMAR

# the chat form: the verdict, then a short reason on the same line
CHAT_REVIEW_GRAMMAR = 'root ::= ("yes" | "no") ": " [^\\n]{1,160}\n'
TEXT_ANSWER_TOKENS = 2
CHAT_ANSWER_TOKENS = 60
# what a prompt needs besides its counted text (chat role markers, rounding of the tokenizer)
_MARGIN_TOKENS = 32
_ANSWER = re.compile(r"\s*(yes|no)\b[\s:,.;-]*(.*)", re.IGNORECASE | re.DOTALL)

CHAT_SYSTEM = ("You review a code change against the task it should do. Answer yes or no, then "
               "a colon and one short line saying why.")


@dataclass(frozen=True)
class ShownDiff:
    """The diff as the review shows it: whole when it fits the budget, else its head."""

    text: str
    lines: int  # lines of the whole diff
    shown: int  # lines the model sees
    tokens: int  # tokens of the whole diff
    budget: int  # tokens the diff may take

    @property
    def cut(self) -> bool:
        return self.shown < self.lines


def fit_diff(diff: str, budget: int, count: Callable[[str], int]) -> ShownDiff:
    """`diff` whole when it fits `budget` tokens, else its leading whole lines that do, with a
    line saying how much was left out."""
    lines = diff.splitlines(keepends=True)
    total = count(diff)
    if total <= budget:
        return ShownDiff(diff, len(lines), len(lines), total, budget)
    kept: list[str] = []
    used = 0
    for line in lines:
        cost = count(line)
        if used + cost > budget - 16:  # room for the note below
            break
        kept.append(line)
        used += cost
    note = f"... (diff cut: {len(lines) - len(kept)} of {len(lines)} lines not shown)\n"
    return ShownDiff("".join(kept) + note, len(lines), len(kept), total, budget)


def review_prompt(task: str, diff: str) -> str:
    """The text form's question (a continuation: the model writes yes or no)."""
    return (
        "You review a code change.\n"
        f"Task: {task.strip()}\n"
        f"Change (unified diff):\n{diff}\n"
        "Does this change correctly address the task? Answer yes or no.\n"
        "Answer: "
    )


def review_turn(task: str, diff: str) -> str:
    """The chat form's user turn."""
    return (f"Task: {task.strip()}\n\nChange (unified diff):\n```diff\n{diff}```\n\n"
            "Does this change correctly do the task?")


def unanswered(reason: str, details: dict[str, Any] | None = None) -> GateResult:
    """A review that could not tell: a failure, with why."""
    return GateResult("review", False, details=dict(details or {}),
                      feedback=[f"REVIEW: review unanswered: {reason}"])


def review(backend: Backend, task: str, diff: str, *, temperature: float,
           cancel: CancelToken | None = None, form: str = "text",
           context_length: int = 8192) -> GateResult:
    """Ask the model whether `diff` does `task`, in `form` ("text" or "chat")."""
    chat = form == "chat"
    count = backend.count_tokens
    answer_tokens = CHAT_ANSWER_TOKENS if chat else TEXT_ANSWER_TOKENS
    frame = count(CHAT_SYSTEM + review_turn(task, "")) if chat else count(review_prompt(task, ""))
    shown = fit_diff(diff, context_length - frame - answer_tokens - _MARGIN_TOKENS, count)
    try:
        completion = ask(backend, task, shown.text, chat=chat, temperature=temperature,
                         max_tokens=answer_tokens, cancel=cancel)
    except Cancelled:
        raise
    except Exception as exc:  # a review that could not ask cannot pass the change
        return unanswered(f"the model failed: {exc}", {"chat": chat})
    details: dict[str, Any] = {
        "answer": completion.text.strip(), "seconds": completion.seconds,
        "prompt_tokens": completion.prompt_tokens,
        "evaluated_tokens": completion.evaluated_tokens,
        "completion_tokens": completion.completion_tokens, "chat": chat,
        "diff_lines": shown.lines, "diff_lines_shown": shown.shown, "diff_tokens": shown.tokens}
    match = _ANSWER.match(completion.text)
    if match is None:
        return unanswered(f"the answer was neither yes nor no: {completion.text[:40]!r}", details)
    verdict, reason = match.group(1).lower(), match.group(2).strip().splitlines()
    why = reason[0][:160] if reason else ""
    details["reason"] = why
    if verdict == "no":
        return GateResult("review", False, details=details, feedback=[
            f"REVIEW: the change does not correctly address the task: {task.strip()[:160]}"
            + (f" (reviewer: {why})" if why else "")])
    if shown.cut:
        return unanswered(f"the diff ({shown.tokens} tokens) does not fit the review's budget "
                          f"({shown.budget} tokens); it saw {shown.shown} of {shown.lines} "
                          "lines", details)
    return GateResult("review", True, details=details)


def ask(backend: Backend, task: str, diff: str, *, chat: bool, temperature: float,
        max_tokens: int, cancel: CancelToken | None) -> Completion:
    if not chat:
        return backend.complete(review_prompt(task, diff), grammar=YES_NO_GRAMMAR,
                                temperature=temperature, max_tokens=max_tokens, cancel=cancel)
    messages: list[ChatMessage] = [{"role": "system", "content": CHAT_SYSTEM},
                                   {"role": "user", "content": review_turn(task, diff)}]
    return backend.chat(messages, grammar=CHAT_REVIEW_GRAMMAR, temperature=temperature,
                        max_tokens=max_tokens, cancel=cancel)
