"""The base prompt family: prompts for a *base* model, plain code and comments it can
continue, never chat turns. Every template yields named sections that the context manager
measures and cuts (`context.budget`); `BaseFamily` turns them into the pipeline's `Ask`s."""

from __future__ import annotations

from collections.abc import Sequence

from ...context.budget import Section
from ...inference.backend import ModelKind
from ...inference.grammar import INTENT_GRAMMAR
from .ask import Ask, BodyJob, ExplainJob, NewCodeJob

# --- UNDERSTAND ------------------------------------------------------------------------------

INTENT_EXAMPLES = (
    ("add input validation to the parse_config function", "edit"),
    ("what does load_rows do?", "explain"),
    ("test_total fails with AssertionError, make it pass", "fix"),
    ("write a function that reverses a string", "generate"),
    ("rename the variable x to count in main", "edit"),
    ("explain how the cache works", "explain"),
)


def intent_sections(instruction: str) -> list[Section]:
    examples = "".join(f"Request: {text}\nIntent: {label}\n\n" for text, label in INTENT_EXAMPLES)
    return [
        Section("system", "Classify each coding request as edit, explain, fix or generate.\n\n",
                priority=0),
        Section("few_shot", examples, priority=2),
        Section("task", f"Request: {instruction.strip()}\nIntent: ", priority=1),
    ]


# --- LOCATE ----------------------------------------------------------------------------------

def rank_sections(instruction: str, options: Sequence[tuple[str, str]]) -> list[Section]:
    """`options` is (label, description) pairs; the model answers with one label."""
    listing = "".join(f"{label}) {description}\n" for label, description in options)
    return [
        Section("system", "# Which code location should change for this request?\n", priority=0),
        Section("code", listing, priority=2),
        Section("task", f"# Request: {instruction.strip()}\n# Answer: ", priority=1),
    ]


# --- PLAN ------------------------------------------------------------------------------------

def plan_sections(instruction: str, steps: Sequence[str], target: str) -> list[Section]:
    plan = " then ".join(steps)
    return [
        Section("system", "# Decide how to carry out a code change.\n", priority=0),
        Section("code", f"# A) change {plan}\n# B) change only {target}\n", priority=2),
        Section("task", f"# Request: {instruction.strip() or 'implement ' + target}\n"
                        "# Best plan (A or B): ", priority=1),
    ]


# --- GENERATE --------------------------------------------------------------------------------

SYSTEM_BODY = ("# Python module. Each function is complete and correct: it follows its "
               "docstring and passes its tests.\n\n")


def comment_block(lines: Sequence[str], indent: str, lead: str = "") -> str:
    """Lines as `# ...` comments at `indent` ("" for none)."""
    out = []
    for line in lines:
        for piece in str(line).splitlines() or [""]:
            out.append(f"{indent}# {lead}{piece}".rstrip() + "\n")
    return "".join(out)


def feedback_comments(feedback: Sequence[str], indent: str) -> str:
    """The gate's structured lines, verbatim, as `# previous attempt failed: ...` comments."""
    return comment_block(feedback, indent, "previous attempt failed: ")


def body_sections(*, prefix: str, body_indent: str, instruction: str, feedback: Sequence[str],
                  code: str = "", few_shot: str = "", docs: str = "", summary: str = "",
                  current: str = "") -> list[Section]:
    """Plain-code prompt for one function body: context as code, then the file up to the end of
    the docstring; the task and feedback as comments at the top of the body, which the model
    continues. Render order is the list order; `priority` decides who gets the budget first."""
    task_lines = [f"Task: {line}" for line in instruction.strip().splitlines() if line.strip()]
    if current:
        code = code + "# current version:\n" + current + "\n"
    return [
        Section("system", SYSTEM_BODY, priority=0),
        Section("summary", summary, priority=5),
        Section("docs", docs, priority=7),
        Section("few_shot", few_shot, priority=6),
        Section("code", code, priority=4),
        Section("target", prefix, priority=1, keep="tail"),
        Section("task", comment_block(task_lines, body_indent), priority=2),
        Section("feedback", feedback_comments(feedback, body_indent), priority=3),
    ]


def plain_body_sections(prefix: str) -> list[Section]:
    """The target file up to the end of the docstring and nothing else: plain completion."""
    return [Section("target", prefix, priority=1, keep="tail")]


def new_code_sections(*, prefix: str, instruction: str, feedback: Sequence[str],
                      code: str = "", summary: str = "") -> list[Section]:
    """New code at the end of `prefix`: the instruction as a comment, then the model writes."""
    return [
        Section("system", SYSTEM_BODY, priority=0),
        Section("summary", summary, priority=5),
        Section("code", code, priority=4),
        Section("target", prefix, priority=1, keep="tail"),
        Section("task", comment_block(instruction.strip().splitlines(), ""), priority=2),
        Section("feedback", feedback_comments(feedback, ""), priority=3),
    ]


def explain_sections(*, function_text: str, code: str, instruction: str) -> list[Section]:
    question = instruction.strip() or "What does this function do?"
    return [
        Section("system", "# Code and a short, plain explanation of it.\n\n", priority=0),
        Section("code", code, priority=3),
        Section("target", function_text.rstrip() + "\n\n", priority=1, keep="head"),
        Section("task", f"# Question: {question}\n# Answer:", priority=2),
    ]


def read_comment_explanation(text: str) -> str:
    """The explanation a base model wrote as comment lines, as one paragraph."""
    lines = [line.strip().lstrip("#").strip() for line in text.splitlines()]
    return " ".join(line for line in lines if line)


class BaseFamily:
    """Plain-code prompts: the model continues the file (or fills the body between prefix and
    suffix when it has FIM tokens); classifiers are a grammar-constrained continuation."""

    kind: ModelKind = "base"
    review_form = "text"  # the diff review: a grammar-constrained continuation

    def intent(self, instruction: str) -> Ask:
        return Ask("classify intent", intent_sections(instruction), grammar=INTENT_GRAMMAR)

    def rank(self, instruction: str, options: Sequence[tuple[str, str]], grammar: str) -> Ask:
        return Ask("rank search hits", rank_sections(instruction, options), grammar=grammar)

    def plan(self, instruction: str, steps: Sequence[str], target: str, grammar: str) -> Ask:
        return Ask("confirm plan", plan_sections(instruction, steps, target), grammar=grammar)

    def explain(self, job: ExplainJob) -> Ask:
        sections = explain_sections(function_text=job.function_text, code=job.code,
                                    instruction=job.instruction)
        return Ask(f"explain {job.name}", sections, stop=("\n\n", "\ndef ", "\nclass "),
                   read=read_comment_explanation)

    def body(self, job: BodyJob) -> list[Ask]:
        target = job.target
        name = target.qualified_name
        asks = []
        if job.candidates > 1 and job.implement_only:
            # The file exactly as it is, greedy: what a plain completion of a stub would write.
            # A small base model is sensitive to any added line; this candidate keeps its best
            # guess in the running, the context prompt below gives the others.
            asks.append(Ask(f"body of {name} from the file alone (attempt {job.attempt})",
                            plain_body_sections(target.prefix), stop_rule=job.stop_rule,
                            code_first=job.code_first, suffix=job.suffix, one_greedy=True))
        sections = body_sections(
            prefix=target.prefix, body_indent=target.body_indent, instruction=job.instruction,
            feedback=job.feedback, code=job.code, few_shot=job.few_shot, docs=job.docs,
            summary=job.summary, current="" if job.is_stub else target.function_text)
        asks.append(Ask(f"body of {name} (attempt {job.attempt})", sections,
                        stop_rule=job.stop_rule, code_first=job.code_first, suffix=job.suffix))
        return asks

    def new_code(self, job: NewCodeJob) -> Ask:
        sections = new_code_sections(prefix=job.prefix, instruction=job.instruction,
                                     feedback=job.feedback, code=job.code, summary=job.summary)
        return Ask(f"new code at {job.location} (attempt {job.attempt})", sections,
                   stop=("\nif __name__",))
