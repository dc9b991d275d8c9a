"""The instruct prompt family: chat turns for an instruction-tuned model (rendered by the
model's own chat template), with the base family's plain-code prompts where they do better.

`FORMS` says which form each question takes; a measured change of form is one line there.
"""

from __future__ import annotations

import ast
import dataclasses
import re
import textwrap
from collections.abc import Sequence

from ...context.budget import Section
from ...inference.backend import ModelKind
from ...inference.grammar import INTENT_GRAMMAR
from .ask import Ask, BodyJob, ExplainJob, NewCodeJob
from .base import INTENT_EXAMPLES, BaseFamily

# "chat": a chat turn; "base": the base family's plain-code prompt (completion, or infill
# between prefix and suffix when the model has FIM tokens). "review" is the diff review's form
# (the gate asks it: `VerifyRequest.review_form`).
FORMS: dict[str, str] = {
    "intent": "chat",
    "rank": "chat",
    "plan": "chat",
    "explain": "chat",
    "implement": "base",  # a stub, its docstring only: FIM infill measured best (issue 22)
    "edit": "chat",  # an instruction about an existing function
    "fix": "chat",  # failing checks (fix intent, or a retry's feedback)
    "new_code": "chat",
    "review": "chat",
}

# A question whose form is "base" that also gets one greedy answer in chat form, drawn right
# after the file-alone infill and before the context prompt's: the two forms fail on different
# problems (issue 24: raw chat and raw infill each solve HumanEval problems the other misses), and
# the chat answer costs a call only when the infill did not pass.
SECOND_GREEDY_FORM: dict[str, str] = {
    "implement": "chat",
}

_FENCE_LANGUAGE = {"python": "python", "javascript": "javascript", "typescript": "typescript",
                   "tsx": "tsx", "rust": "rust", "go": "go", "c": "c", "cpp": "cpp",
                   "java": "java"}


def fence_language(language: str) -> str:
    return _FENCE_LANGUAGE.get(language, "")


def code_system(language: str) -> str:
    name = language.capitalize() if language else "the project's"
    return (f"You are an expert {name} programmer. You write correct, complete code that "
            "follows its docstring and passes the project's tests. Answer with code only, in "
            "one fenced code block.")


def fenced_code(text: str) -> str:
    """The code of an answer that began inside a code fence (the prefill opened it): up to the
    closing fence; a second fenced block the model opened is ignored."""
    end = text.find("```")
    code = text if end < 0 else text[:end]
    return code if code.endswith("\n") or not code else code + "\n"


_DEF = r"^(?P<indent>[ \t]*)(?:async[ \t]+)?def[ \t]+{name}\b"


def function_body(code: str, name: str, body_indent: str) -> str:
    """The body of function `name` in `code` (after its docstring), re-indented to
    `body_indent`; the whole code when it is only a body; "" when it holds neither."""
    short = name.rsplit(".", 1)[-1]
    lines = code.splitlines(keepends=True)
    body: list[str] | None = None
    try:
        tree = ast.parse(code)
    except SyntaxError:  # a broken answer still becomes a candidate: the gate says what broke
        tree = None
    definitions = [node for node in ast.walk(tree) if isinstance(
        node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == short] if tree else []
    if definitions:
        # the last definition wins, as it does when Python runs the code (an answer that
        # repeats the original before its fixed version)
        node = max(definitions, key=lambda d: d.lineno)
        rest = node.body
        first = rest[0] if rest else None
        if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)):
            rest = rest[1:]
        if not rest:
            return ""
        if rest[0].lineno == node.lineno:  # `def f(x): return x`
            segment = ast.get_source_segment(code, rest[0]) or ""
            body = [segment + "\n"]
        else:
            body = lines[rest[0].lineno - 1: node.end_lineno]
    if body is None:
        body = _body_by_indent(lines, short)
    if body is None:
        body = lines if lines and lines[0][:1] in (" ", "\t") else []
    text = textwrap.dedent("".join(body))
    return "".join(body_indent + line if line.strip() else line
                   for line in text.splitlines(keepends=True))


def _body_by_indent(lines: list[str], short: str) -> list[str] | None:
    """Lines after `def short...:` that are indented deeper (an answer that does not parse)."""
    pattern = re.compile(_DEF.format(name=re.escape(short)))
    starts = [(i, match) for i, line in enumerate(lines)
              if (match := pattern.match(line)) is not None]
    if not starts:
        return None
    i, match = starts[-1]  # the last definition wins
    depth = len(match.group("indent").expandtabs(8))
    out = []
    for later in lines[i + 1:]:
        if later.strip() and len(later) - len(later.lstrip()) <= depth:
            break
        out.append(later)
    return out


def _bullets(lines: Sequence[str]) -> str:
    return "".join(f"- {line}\n" for line in lines)


class InstructFamily:
    """Chat turns for the classifiers, explanations, edits and fixes; plain code (FIM infill
    when the model has FIM tokens) where `FORMS` says "base"."""

    kind: ModelKind = "instruct"

    def __init__(self) -> None:
        self.base = BaseFamily()
        self.review_form = "chat" if FORMS["review"] == "chat" else "text"

    def intent(self, instruction: str) -> Ask:
        if FORMS["intent"] == "base":
            return self.base.intent(instruction)
        examples = "".join(f"{text} -> {label}\n" for text, label in INTENT_EXAMPLES)
        system = ("Classify a coding request with one word: edit (change existing code), "
                  "explain (describe code), fix (make failing code or tests pass) or generate "
                  f"(write new code).\nExamples:\n{examples}")
        return Ask("classify intent", [Section("task", f"Request: {instruction.strip()}",
                                               priority=1)],
                   chat=True, system=system, grammar=INTENT_GRAMMAR)

    def rank(self, instruction: str, options: Sequence[tuple[str, str]], grammar: str) -> Ask:
        if FORMS["rank"] == "base":
            return self.base.rank(instruction, options, grammar)
        listing = "".join(f"{label}) {description}\n" for label, description in options)
        return Ask("rank search hits", [
            Section("task", f"Request: {instruction.strip()}\n\nWhich code should change?\n",
                    priority=1),
            Section("code", listing, priority=2)],
            chat=True, system="Pick the code a request is about. Answer with its letter only.",
            grammar=grammar)

    def plan(self, instruction: str, steps: Sequence[str], target: str, grammar: str) -> Ask:
        if FORMS["plan"] == "base":
            return self.base.plan(instruction, steps, target, grammar)
        request = instruction.strip() or f"implement {target}"
        return Ask("confirm plan", [
            Section("task", f"Request: {request}\n\n", priority=1),
            Section("code", f"A) change {' then '.join(steps)}, one function at a time\n"
                            f"B) change only {target}\n", priority=2)],
            chat=True, system="Decide how to carry out a code change. Answer A or B only.",
            grammar=grammar)

    def explain(self, job: ExplainJob) -> Ask:
        if FORMS["explain"] == "base":
            return self.base.explain(job)
        fence = fence_language(job.language)
        question = job.instruction.strip() or f"What does `{job.name}` do?"
        sections = [
            Section("code", f"Related code:\n```{fence}\n{job.code}```\n\n" if job.code else "",
                    priority=3),
            Section("target", f"```{fence}\n{job.function_text.rstrip()}\n```\n\n", priority=1),
            Section("task", question, priority=2)]
        return Ask(f"explain {job.name}", sections, chat=True,
                   system="Explain code to a programmer in two or three plain sentences.",
                   read=lambda text: " ".join(text.split()))

    def body(self, job: BodyJob) -> list[Ask]:
        question = "implement" if job.implement_only else (
            "fix" if job.fix or job.feedback else "edit")
        if job.language != "python":
            # the fenced answer is read back with Python's parser; other languages continue
            return self.base.body(job)
        if FORMS[question] == "chat":
            return [self._chat_body(job, question)]
        asks = self.base.body(job)
        if SECOND_GREEDY_FORM.get(question) == "chat" and len(asks) > 1:
            # after the first greedy answer (the file alone), before the context prompt's
            chat = self._chat_body(job, question)
            asks.insert(1, dataclasses.replace(
                chat, one_greedy=True,
                purpose=f"body of {job.target.qualified_name} in a chat turn (attempt {job.attempt})"))
        return asks

    def _chat_body(self, job: BodyJob, question: str) -> Ask:
        """The function in a chat turn; the answer is the whole function in a fence."""
        target = job.target
        fence = fence_language(job.language)
        name = target.qualified_name
        asked = f"Task: {job.user_instruction}\n" if job.user_instruction else ""
        if question == "fix":
            task = f"{asked}Fix the bug in `{name}` so that these checks pass."
        elif asked:
            task = asked.rstrip()
        else:
            task = f"Implement `{name}` as its docstring says."
        whole = "function" if question == "implement" else "corrected function"
        failing = ("It fails these checks now:\n" if not job.attempt else
                   "Your previous attempt failed these checks:\n")
        previous = (f"Your previous attempt:\n```{fence}\n{job.previous.rstrip()}\n```\n"
                    if job.previous else "")
        sections = [
            Section("summary", job.summary, priority=5),
            Section("docs", f"Library documentation:\n{job.docs}\n" if job.docs else "",
                    priority=7),
            Section("few_shot", f"Similar code in this project:\n```{fence}\n{job.few_shot}```\n"
                    if job.few_shot else "", priority=6),
            Section("code", f"Related code:\n```{fence}\n{job.code}```\n" if job.code else "",
                    priority=4),
            Section("target", f"The function `{name}` in `{target.path}`:\n```{fence}\n"
                              f"{target.function_text.rstrip()}\n```\n{previous}", priority=1),
            Section("feedback", failing + _bullets(job.feedback) if job.feedback else "",
                    priority=3),
            Section("task", f"{task}\nAnswer with the whole {whole} `{name}` (def "
                            "line, docstring and body) in one code block.\n", priority=2),
        ]
        return Ask(f"body of {name} (attempt {job.attempt})", sections, chat=True,
                    system=code_system(job.language), prefill=f"```{fence}\n", stop=("```",),
                    repeats="".join(target.lines[target.start_line: target.header_end]),
                    read=lambda text: function_body(fenced_code(text), target.name,
                                                    target.body_indent))

    def new_code(self, job: NewCodeJob) -> Ask:
        if FORMS["new_code"] == "base":
            return self.base.new_code(job)
        fence = fence_language(job.language)
        sections = [
            Section("summary", job.summary, priority=5),
            Section("code", f"Related code:\n```{fence}\n{job.code}```\n" if job.code else "",
                    priority=4),
            Section("target", f"The file so far:\n```{fence}\n{job.prefix}```\n", priority=1,
                    keep="tail"),
            Section("task", f"Task: {job.instruction}\nAnswer with only the new code to add "
                            "at the end of the file, in one code block.\n", priority=2),
            Section("feedback", "The previous attempt failed these checks:\n"
                    + _bullets(job.feedback) if job.feedback else "", priority=3),
        ]
        return Ask(f"new code at {job.location} (attempt {job.attempt})", sections, chat=True,
                   system=code_system(job.language), prefill=f"```{fence}\n", stop=("```",),
                   read=fenced_code)
