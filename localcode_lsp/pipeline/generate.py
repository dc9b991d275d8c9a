"""GENERATE and WRITE: candidates for the current step, from the prompt family's asks.

GENERATE draws bodies for one function (the rest of the file stays as it is); WRITE draws new
code for a spot where no function is. Both leave `state.attempt.candidates` for VERIFY.
"""

from __future__ import annotations

from ..context.budget import fit_text
from ..data import Candidate
from ..index.languages import language_for_path
from ..inference.backend import Completion
from ..inference.stops import C_FAMILY
from .collaborators import Collaborators
from .model import call_model
from .prompts import BodyJob, NewCodeJob
from .retrieve import retrieved
from .run import RunState
from .states import State
from .target import BodyStop, FunctionTarget, salvage_body, trim_body


def generate(state: RunState, parts: Collaborators) -> tuple[str, str]:
    """Bodies for the current plan step's function."""
    gen = parts.config.generation
    target = state.target
    attempt = state.attempt.number
    feedback = current_feedback(state)
    left = max(0, state.budget.pools["code"] - parts.count(target.prefix))
    context = retrieved(state, parts, target, left)
    job = BodyJob(target=target, instruction=state.description, feedback=feedback,
                  attempt=attempt, candidates=gen.candidates, fix=state.intent == "fix",
                  user_instruction=state.task.instruction.strip(),
                  code=context.code, few_shot=context.few_shot, docs=context.docs,
                  summary=state.task.session_summary, previous=previous_function(state),
                  suffix=fim_suffix(state, parts, target),
                  stop_rule=BodyStop(target.def_indent),
                  code_first=comment_marker(target.path),  # the body starts with code
                  language=language_for_path(target.path) or "")
    seed = 1000 * state.step + 100 * attempt
    asks = parts.prompts.body(job)
    draws = draw_plan([1 if ask.one_greedy else 0 for ask in asks], gen.candidates)
    index, n, greedy = draws[state.attempt.draws_done]
    state.attempt.draws_done += 1
    state.attempt.draws_left = len(draws) - state.attempt.draws_done
    how = (f"greedy; up to {gen.candidates} in all" if greedy
           else "sampled: no greedy answer passed")
    more = " more" if state.attempt.draws_done > 1 else ""
    state.emit(State.GENERATE, f"Producing {n}{more} {_plural('candidate', n)} for "
                               f"{target.qualified_name} ({how})...", phase="start")
    ask = asks[index]
    # a sample gets the seed it would have had in one eager draw of the whole share
    completions = call_model(state, parts, State.GENERATE, ask, n=n,
                             temperature=0.0 if greedy else gen.temperature,
                             max_tokens=gen.max_tokens, seed=seed if greedy else seed + 1,
                             greedy_first=greedy)
    drawn = len(completions)
    bodies: list[tuple[str, Completion, bool]] = []
    for completion in completions:
        body = trim_body(ask.read(completion.text), target.def_indent, target.body_indent)
        salvaged = salvage_body(target, body) if body else None
        bodies.append((salvaged if salvaged is not None else body, completion,
                       salvaged is not None))
    added = collect(state, [(body, completion, target.assemble(body), salvaged)
                            for body, completion, salvaged in bodies], prompt=ask.purpose)
    if not added:
        return "no_candidates", f"No new usable candidate among {drawn} samples"
    retry = f" (retry {attempt}, feedback: {len(feedback)} lines)" if attempt else ""
    return "candidates", f"{added} distinct candidates for {target.qualified_name}{retry}"


def write(state: RunState, parts: Collaborators) -> tuple[str, str]:
    """New code at the spot LOCATE chose (generate intent where no function is)."""
    spot = state.new_code
    assert spot is not None, "WRITE runs only after LOCATE chose a spot for new code"
    gen = parts.config.generation
    lines = spot.file_text.splitlines(keepends=True)
    prefix = "".join(lines[: spot.line])
    if prefix and not prefix.endswith("\n"):
        prefix += "\n"
    suffix = "".join(lines[spot.line:])
    context = retrieved(state, parts, spot,
                        max(0, state.budget.pools["code"] - parts.count(prefix)))
    job = NewCodeJob(location=spot.location(), prefix=prefix, instruction=state.description,
                     feedback=current_feedback(state), attempt=state.attempt.number,
                     code=context.code, summary=state.task.session_summary,
                     language=language_for_path(spot.path) or "")
    state.emit(State.WRITE, f"Producing {gen.candidates} {_plural('candidate', gen.candidates)} "
                            f"for new code at {spot.location()}...", phase="start")
    ask = parts.prompts.new_code(job)
    completions = call_model(state, parts, State.WRITE, ask, n=gen.candidates,
                             temperature=gen.temperature, max_tokens=gen.max_tokens,
                             seed=100 * state.attempt.number, greedy_first=True)
    glue = "\n" if suffix.strip() else ""
    drafts = []
    for completion in completions:
        code = trim_new_code(ask.read(completion.text))
        drafts.append((code, completion, prefix + code + glue + suffix, False))
    added = collect(state, drafts, prompt=ask.purpose)
    if not added:
        return "no_candidates", f"No usable candidate among {len(completions)} samples"
    return "candidates", f"{added} distinct candidates for new code at {spot.location()}"


def draw_plan(one_greedy: list[int], candidates: int) -> list[tuple[int, int, bool]]:
    """The attempt's draws in order, as (ask index, how many, greedy): the greedy answer of
    every ask first, then each ask's samples. An ask marked one-greedy gives one candidate,
    the others share the rest of `candidates`."""
    shares, taken = [], 0
    for single in one_greedy:
        share = 1 if single else max(0, candidates - taken)
        shares.append(share)
        taken += share
    greedy = [(i, 1, True) for i, share in enumerate(shares) if share >= 1]
    samples = [(i, share - 1, False) for i, share in enumerate(shares) if share > 1]
    return greedy + samples


def _plural(word: str, n: int) -> str:
    return word if n == 1 else word + "s"


def collect(state: RunState, drafts: list[tuple[str, Completion, str, bool]], *,
            prompt: str = "") -> int:
    """The candidates VERIFY checks next: each non-empty draft this attempt has not had yet,
    in order."""
    state.attempt.candidates = []
    seen = state.attempt.drawn_texts
    for text, completion, file_text, salvaged in drafts:
        if not text:
            continue
        state.attempt.votes[text] = state.attempt.votes.get(text, 0) + completion.votes
        if text in seen:
            continue
        seen.add(text)
        state.attempt.candidates.append(Candidate(
            id=state.new_candidate_id(), text=text, file_text=file_text,
            attempt=state.attempt.number, seed=completion.seed,
            tokens=completion.completion_tokens, source="salvaged" if salvaged else "model",
            prompt=prompt))
    state.result.candidates.extend(state.attempt.candidates)
    return len(state.attempt.candidates)


def previous_function(state: RunState) -> str:
    """On a retry, the target function as the last failed attempt's best candidate wrote it."""
    previous = state.previous
    if previous is None or state.attempt.number == 0 or previous.source == "original":
        return ""
    target = state.target
    header = "".join(target.lines[target.start_line: target.header_end])
    return header + previous.text


def current_feedback(state: RunState) -> list[str]:
    """The retry's feedback, or on the first attempt what a fix starts from."""
    if state.attempt.feedback:
        return state.attempt.feedback
    return state.initial_feedback if state.attempt.number == 0 else []


def fim_suffix(state: RunState, parts: Collaborators, target: FunctionTarget) -> str:
    """The code after the body, its head cut to a third of the code budget (at most 512
    tokens): what a FIM model sees after the hole. "" for a model without FIM tokens."""
    if not parts.backend.info.fim or not target.suffix.strip():
        return ""
    cap = min(512, state.budget.pools["code"] // 3)
    text, _ = fit_text(target.suffix, cap, parts.count, keep="head")
    return text


def comment_marker(path: str) -> str:
    """The line-comment marker of `path`'s language ("" when it has none we know)."""
    language = language_for_path(path) or ""
    if language == "python":
        return "#"
    return "//" if language in C_FAMILY or language == "tsx" else ""


def trim_new_code(text: str) -> str:
    """The first top-level definition (or block) of generated new code."""
    lines = text.splitlines()
    while lines and not lines[0].strip():
        lines.pop(0)
    out: list[str] = []
    seen_body = False
    for line in lines:
        if line.strip() and not line[0].isspace():
            if seen_body:
                break
            if out and not out[-1].lstrip().startswith("@") and not line.startswith(
                    ("def ", "class ", "async ")):
                break
        elif line.strip():
            seen_body = True
        out.append(line)
    while out and not out[-1].strip():
        out.pop()
    if not seen_body:
        return ""
    return "\n".join(out) + "\n"
