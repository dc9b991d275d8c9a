"""The pipeline driver: runs one Task through the states of `states.TRANSITIONS`.

Each state handler does its work and returns `(outcome, message)`; the driver emits one
TraceEvent per transition (`[LOCATE] Found parse_config at src/config.py:34-58`) and looks up the
next state in the table. Handlers never choose a state themselves, and neither does the model.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from types import SimpleNamespace
from typing import Any

from ..cancel import Cancelled, CancelToken
from ..context.budget import Budget, CachedCounter, Section, fit_text
from ..context.compress import digest_feedback, shorten
from ..context.invisible import find_invisible
from ..context.rag import ContextQuery, IndexContextProvider, gather, select
from ..data import Candidate, Patch, Result, Task, TraceEvent, Verdict
from ..index.languages import language_for_path
from ..inference.stops import C_FAMILY
from ..knowledge import hooks as knowledge_hooks
from ..logs import get_logger
from . import prompts
from .states import TERMINAL, State, next_state
from .target import BodyStop, FunctionTarget, function_target, salvage_body, trim_body

log = get_logger("pipeline")

EventSink = Callable[[TraceEvent], None]
_IDENTIFIER = re.compile(r"`([A-Za-z_][\w.]*)`|\b([A-Za-z_]\w*)\s*\(|\b([A-Za-z_]\w*_\w+|[a-z]+[A-Z]\w*)\b")
# "the square function", "square method": a bare name the user called a function.
_NAMED_FUNCTION = re.compile(r"\b([A-Za-z_]\w*)\s+(?:function|method)\b")
_WORD = re.compile(r"\b([A-Za-z_]\w{2,})\b")
FUNCTION_KINDS = ("function", "method")


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


class PipelineRun:
    """All the state of one task while it moves through the table."""

    def __init__(self, engine: Any, task: Task, cancel: CancelToken,
                 on_event: EventSink | None) -> None:
        self.engine = engine
        self.task = task
        self.cancel = cancel
        self.on_event = on_event
        self.config = engine.config
        self.result = Result(status="no_candidate")
        self.intent: str = task.intent or ""
        self.description = task.instruction.strip()
        self.budget = Budget.from_config(self.config)
        self._counter: CachedCounter | None = None
        self.steps: list[FunctionTarget] = []
        self.mentioned: list[Any] = []
        self.step = 0
        self.new_code: NewCode | None = None
        self.attempt = Attempt()
        self.initial_feedback: list[str] = []
        self.best: tuple[tuple[int, ...], Verdict, Candidate] | None = None
        self.working: dict[str, str] = {}  # path -> text with verified steps applied
        self.originals: dict[str, tuple[str, int | None]] = {}
        self.context_cache: dict[str, str] = {}
        self.next_candidate_id = 1

    # --- infrastructure --------------------------------------------------------------------

    @property
    def backend(self) -> Any:
        return self.engine.backend

    @property
    def count(self) -> CachedCounter:
        if self._counter is None:
            self._counter = CachedCounter(self.backend.count_tokens)
        return self._counter

    def emit(self, state: State | str, message: str, **data: Any) -> None:
        event = TraceEvent(str(getattr(state, "value", state)), message, dict(data))
        self.result.trace.append(event)
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception as exc:  # a broken progress sink must not stop the task
                log.warning("event sink failed: %s", exc)

    def call_model(self, state: State, purpose: str, sections: Sequence[Section], *, n: int = 1,
                   temperature: float = 0.0, max_tokens: int = 64, grammar: str | None = None,
                   stop: Sequence[str] = (), stop_rule: Any = None, seed: int = 0,
                   greedy_first: bool = False, code_first: str = "",
                   suffix: str = "") -> list[Any]:
        """Fit the sections to their budgets, call the backend, record what the model saw.

        With a `suffix` (only for a model with FIM tokens: see `_fim_suffix`), the call is an
        infill: the model writes between the prompt and the suffix (the code after the body).
        """
        self.cancel.raise_if_cancelled()
        prompt = self.budget.fit(sections, self.count)
        infill = bool(suffix) and grammar is None
        suffix_tokens = self.count(suffix) if infill else 0
        max_tokens = max(1, min(max_tokens, self.budget.context_length - prompt.tokens
                                - suffix_tokens - 1))
        started = time.monotonic()
        completions: list[Any] = []
        extra: dict[str, Any] = {"stop_rule": stop_rule} if stop_rule is not None else {}
        if code_first:
            extra["code_first"] = code_first
        if n == 1 or greedy_first:
            first_temperature = 0.0 if greedy_first else temperature
            if infill:
                completions.append(self.backend.fim(
                    prompt.text, suffix, max_tokens=max_tokens, stop=list(stop),
                    temperature=first_temperature, seed=seed, cancel=self.cancel, **extra))
            else:
                completions.append(self.backend.complete(
                    prompt.text, max_tokens=max_tokens, stop=list(stop),
                    temperature=first_temperature, seed=seed, grammar=grammar,
                    cancel=self.cancel, **extra))
        if n > len(completions):
            if infill:
                extra["suffix"] = suffix
            completions.extend(self.backend.candidates(
                prompt.text, n - len(completions), max_tokens=max_tokens, stop=list(stop),
                temperature=temperature, grammar=grammar, cancel=self.cancel, seed=seed + 1,
                **extra))
        seconds = time.monotonic() - started
        self.result.model_calls.append({
            "state": state.value,
            "purpose": purpose,
            "sections": prompt.describe(),
            "prompt_tokens": prompt.tokens,
            "suffix_tokens": suffix_tokens,
            "evaluated_tokens": sum(int(getattr(c, "evaluated_tokens", 0) or 0)
                                    for c in completions),
            "completion_tokens": sum(int(getattr(c, "completion_tokens", 0) or 0)
                                     for c in completions),
            # samples drawn: identical ones come back merged (`votes`) but cost a call each
            "n": sum(int(getattr(c, "votes", 1) or 1) for c in completions),
            "distinct": len(completions),
            # the sampling temperature; 0.0 for a call that was one greedy completion
            "temperature": 0.0 if greedy_first and n == 1 else temperature,
            "greedy_first": greedy_first,
            "grammar": grammar is not None,
            "ms": round(seconds * 1000, 1),
        })
        self.cancel.raise_if_cancelled()
        return completions

    def _record_review_call(self, verdict: Any, candidate_id: int) -> None:
        """The gate's diff review is a model call too: it counts in `model_calls`."""
        for gate in verdict.gates:
            if gate.gate != "review" or "answer" not in gate.details:
                continue
            details = gate.details
            self.result.model_calls.append({
                "state": State.VERIFY.value,
                "purpose": f"diff review of candidate {candidate_id}",
                "sections": [],
                "prompt_tokens": int(details.get("prompt_tokens", 0) or 0),
                "evaluated_tokens": int(details.get("evaluated_tokens", 0) or 0),
                "completion_tokens": int(details.get("completion_tokens", 0) or 0),
                "n": 1,
                "distinct": 1,
                "temperature": self.config.generation.temperature_classify,
                "greedy_first": False,
                "grammar": True,
                "ms": round(float(details.get("seconds", 0.0) or 0.0) * 1000, 1),
            })

    # --- UNDERSTAND ------------------------------------------------------------------------

    def understand(self) -> tuple[str, str]:
        self._warn_invisible()
        if self.task.intent:
            self.intent = self.task.intent
            return "classified", f"Intent: {self.intent} (given)"
        if not self.description:
            self.intent = "fix" if self.task.diagnostics else "edit"
            return "classified", f"Intent: {self.intent} (no instruction)"
        from ..inference.grammar import INTENT_GRAMMAR, parse_intent

        completion = self.call_model(
            State.UNDERSTAND, "classify intent", prompts.intent_sections(self.description),
            temperature=self.config.generation.temperature_classify, max_tokens=4,
            grammar=INTENT_GRAMMAR)[0]
        try:
            self.intent = parse_intent(completion.text)
        except ValueError:
            self.intent = "edit"
        return "classified", f"Intent: {self.intent}"

    def _warn_invisible(self) -> None:
        """Flag invisible characters (tag, bidi, zero-width) in the target file before any
        prompt; Budget.fit strips them from every prompt."""
        if not self.task.path:
            return
        try:
            document = self.engine.workspace.snapshot(self.task.path)
        except (OSError, ValueError):
            return  # LOCATE reports a missing or unreadable file
        for line, characters in find_invisible(document.text)[:5]:
            self.emit(State.UNDERSTAND,
                      f"warning: invisible characters at {document.path}:{line}",
                      warning="invisible_characters", characters=characters)

    # --- LOCATE ----------------------------------------------------------------------------

    def _snapshot(self, path: str) -> tuple[str, str, int | None]:
        workspace = self.engine.workspace
        try:
            document = workspace.snapshot(path)
        except FileNotFoundError:
            raise PipelineError(f"file not found: {path}") from None
        except UnicodeDecodeError as exc:
            raise PipelineError(f"{path} is not a text file: {exc}") from None
        self.originals.setdefault(document.path, (document.text, document.version))
        self.working.setdefault(document.path, document.text)
        return document.path, document.text, document.version

    def _target(self, symbol: Any) -> FunctionTarget:
        path, _, version = self._snapshot(symbol.path)
        return function_target(path, self.working[path], symbol, version)

    def _functions(self, found: Any) -> list[Any]:
        return [s for s in (found or []) if getattr(s, "kind", "function") in FUNCTION_KINDS]

    def _functions_hint(self, symbols: Any, wanted: str) -> str:
        """` (did you mean X?)` or ` (functions here: a, b, ...)`, for a name not found."""
        import difflib

        names = sorted({s.qualified_name for s in self._functions(symbols)})
        if not names:
            return " (it defines no functions)"
        close = difflib.get_close_matches(wanted, names, n=1, cutoff=0.6)
        if close:
            return f" (did you mean {close[0]}?)"
        shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        return f" (functions there: {shown})"

    def _position_hint(self, path: str, line: int) -> str:
        """Why a position holds no function: past the end, or between functions."""
        count = len(self.working[path].splitlines())
        if line >= count:
            return f" (the file has {count} lines)"
        functions = sorted(self._functions(self.engine.index.symbols(path)),
                           key=lambda s: s.start_line)
        before = [s for s in functions if s.end_line < line]
        after = [s for s in functions if s.start_line > line]
        near = [f"{s.qualified_name} at line {s.start_line + 1}"
                for s in (before[-1:] + after[:1])]
        return f" (nearest: {', '.join(near)})" if near else " (it defines no functions)"

    def locate(self) -> tuple[str, str]:
        index = self.engine.index
        task = self.task
        path = None
        if task.path:
            path, text, _ = self._snapshot(task.path)
            index.update_document(path, text)
        symbol = None
        how = ""
        if path and task.symbol:
            matches = self._functions(index.find_symbol(task.symbol, path))
            if not matches:
                short = task.symbol.rsplit(".", 1)[-1]
                matches = [s for s in self._functions(index.symbols(path))
                           if s.qualified_name == task.symbol or s.name == short]
            if not matches:
                raise PipelineError(f"no function named {task.symbol!r} in {path}"
                                    + self._functions_hint(index.symbols(path), task.symbol))
            symbol, how = matches[0], "symbol"
        elif task.symbol:
            matches = self._functions(index.find_symbol(task.symbol))
            if not matches:
                raise PipelineError(f"no function named {task.symbol!r} in the project")
            symbol, how = matches[0], "symbol"
        elif path and task.position is not None:
            symbol = index.enclosing_function(path, task.position.line, task.position.column)
            how = "position"
            if symbol is None and self.intent == "generate":
                self.new_code = NewCode(path, self.working[path], task.position.line,
                                        self.originals[path][1])
                return "found", f"New code at {self.new_code.location()}"
            if symbol is None:
                raise PipelineError(f"no function at {path}:{task.position.line + 1}"
                                    + self._position_hint(path, task.position.line))
        if symbol is None:
            self.mentioned = self._mentioned_symbols(path)
            if self.mentioned:
                symbol, how = self.mentioned[0], "named in the instruction"
        if symbol is None and path and self.intent == "generate":
            self.new_code = NewCode(path, self.working[path],
                                    len(self.working[path].splitlines()), self.originals[path][1])
            return "found", f"New code at the end of {path}"
        if symbol is None and self.description:
            symbol = self._search(path)
            how = "search"
        if symbol is None:
            self.result.status = "error"
            self.result.message = ("no target found: name a function (--symbol), a file and line, "
                                   "or a function in the instruction")
            return "not_found", "No target found"
        target = self._target(symbol)
        self.steps = [target]
        self.result.stats["target"] = f"{target.qualified_name} ({target.location()})"
        return "found", f"Found {target.qualified_name} at {target.location()} ({how})"

    def _mentioned_symbols(self, path: str | None) -> list[Any]:
        """Functions the instruction names: code-shaped names first (`x`, x(), snake_case),
        then "the X function", then, only when nothing else matched, the first plain word
        that is a workspace function ("implement square")."""
        names: list[str] = []
        for match in _IDENTIFIER.finditer(self.description):
            name = next(g for g in match.groups() if g)
            if name not in names:
                names.append(name)
        found = self._lookup_functions(names[:12], path)
        if not found:
            named = [m.group(1) for m in _NAMED_FUNCTION.finditer(self.description)]
            found = self._lookup_functions(named[:6], path)
        if not found:
            words = list(dict.fromkeys(m.group(1) for m in _WORD.finditer(self.description)))
            found = self._lookup_functions(words[:40], path)[:1]
        return found

    def _lookup_functions(self, names: Sequence[str], path: str | None) -> list[Any]:
        found: list[Any] = []
        for name in names:
            matches = self._functions(self.engine.index.find_symbol(name, path)) if path else []
            if not matches:
                matches = self._functions(self.engine.index.find_symbol(name))
            for symbol in matches[:1]:
                if all((s.path, s.qualified_name) != (symbol.path, symbol.qualified_name)
                       for s in found):
                    found.append(symbol)
        return found

    def _search(self, path: str | None) -> Any:
        hits = list(self.engine.index.search(self.description, 5) or [])
        options: list[Any] = []
        for hit in hits:
            symbol = getattr(hit, "symbol", None)
            if isinstance(symbol, str):
                matches = self._functions(self.engine.index.find_symbol(symbol, hit.path))
                symbol = matches[0] if matches else None
            if symbol is None or getattr(symbol, "kind", "function") not in FUNCTION_KINDS:
                continue
            if path and symbol.path != path:
                continue
            if all((s.path, s.qualified_name) != (symbol.path, symbol.qualified_name)
                   for s in options):
                options.append(symbol)
        if len(options) <= 1:
            return options[0] if options else None
        options = options[:4]
        from ..inference.grammar import choice_grammar, option_labels, parse_choice

        labels = option_labels(len(options))
        described = [(label, f"{s.qualified_name} in {s.path}: {s.signature}".strip())
                     for label, s in zip(labels, options, strict=False)]
        completion = self.call_model(
            State.LOCATE, "rank search hits", prompts.rank_sections(self.description, described),
            temperature=self.config.generation.temperature_classify, max_tokens=4,
            grammar=choice_grammar(labels))[0]
        try:
            return options[labels.index(parse_choice(completion.text, labels))]
        except ValueError:
            return options[0]

    # --- PLAN ------------------------------------------------------------------------------

    def plan(self) -> tuple[str, str]:
        if self.intent == "explain":
            return "explain", "Explain: no edit"
        if self.intent == "fix":
            self._fix_description()
        if self.new_code is not None:
            return "planned", "Single edit: new code"
        target = self.steps[0]
        index = self.engine.index
        extra: list[Any] = []
        try:
            callees = list(index.callees(target.symbol) or [])
        except Exception as exc:  # a missing graph only means a smaller plan
            log.info("callees of %s unavailable: %s", target.qualified_name, exc)
            callees = []
        callee_keys = {(c.path, c.qualified_name) for c in callees}
        for callee in callees:
            if getattr(callee, "is_stub", False) and callee.kind in FUNCTION_KINDS:
                extra.append(callee)
        for symbol in self.mentioned[1:]:
            if all((s.path, s.qualified_name) != (symbol.path, symbol.qualified_name)
                   for s in extra):
                extra.append(symbol)
        extra = [s for s in extra if (s.path, s.qualified_name)
                 != (target.path, target.qualified_name)]
        if not extra:
            return "planned", f"Single-function edit: {target.qualified_name}"
        before = [s for s in extra if (s.path, s.qualified_name) in callee_keys]
        after = [s for s in extra if (s.path, s.qualified_name) not in callee_keys]
        ordered = before + [target.symbol] + after
        names = [s.qualified_name for s in ordered]
        from ..inference.grammar import choice_grammar, parse_choice

        completion = self.call_model(
            State.PLAN, "confirm plan",
            prompts.plan_sections(self.description, names, target.qualified_name),
            temperature=self.config.generation.temperature_classify, max_tokens=2,
            grammar=choice_grammar(["A", "B"]))[0]
        try:
            choice = parse_choice(completion.text, ["A", "B"])
        except ValueError:
            choice = "A"
        if choice == "B":
            return "planned", f"Single-function edit: {target.qualified_name} (model chose B)"
        self.steps = [target if s is target.symbol else self._target(s) for s in ordered]
        return "planned", f"Plan: {' -> '.join(names)} ({len(names)} single-function edits)"

    def _fix_description(self) -> None:
        """Fix intent: the diagnostics at the cursor, or else the target's failing checks now,
        become the task description and the first attempt's feedback."""
        problems = list(self.task.diagnostics)
        if not problems and self.steps:
            target = self.steps[0]
            current = Candidate(id=0, text=target.old_body, file_text=target.file_text,
                                source="original")
            request = self._request(target.path, target.file_text, target.qualified_name,
                                    self.description or f"fix {target.qualified_name}")
            verdict = self.engine.gate.verify(request, current, cancel=self.cancel)
            problems = verdict.feedback
        self.initial_feedback = digest_feedback(problems)
        if not self.description and self.initial_feedback:
            self.description = "make this pass: " + self.initial_feedback[0]

    # --- GENERATE --------------------------------------------------------------------------

    def _retrieved(self, target: FunctionTarget | NewCode, budget: int) -> str:
        key = f"{target.path}:{getattr(target, 'qualified_name', '')}:{budget}"
        if key in self.context_cache:
            return self.context_cache[key]
        providers = list(getattr(self.engine, "context_providers", None) or [])
        if not any(getattr(p, "name", "") == "index" for p in providers):
            providers.insert(0, IndexContextProvider(self.engine.index, self.engine.workspace))
        providers.extend(knowledge_hooks.providers(self.engine, providers))  # few_shot, docs
        query = ContextQuery(self.description, target.path, getattr(target, "symbol", None),
                             target.file_text, self.intent, tuple(self.attempt.feedback))
        snippets = gather(providers, query)
        exclude = target.file_text
        text, _ = select(snippets, "code", budget, self.count, exclude_text=exclude)
        few_shot, _ = select(snippets, "few_shot", budget, self.count)
        docs, _ = select(snippets, "docs", budget, self.count)
        self.context_cache[key] = text
        self.context_cache[key + ":few_shot"] = few_shot
        self.context_cache[key + ":docs"] = docs
        return text

    def _summary(self) -> str:
        if self.task.session_summary:
            return self.task.session_summary
        summary = getattr(self.engine, "session_summary", None)
        return summary.render() if summary is not None else ""

    def _fim_suffix(self, target: FunctionTarget) -> str:
        """The code after the body, its head cut to a third of the code budget (at most 512
        tokens): what a FIM model sees after the hole. "" for a model without FIM tokens."""
        if not getattr(self.backend.info, "fim", None) or not target.suffix.strip():
            return ""
        cap = min(512, self.budget.pools["code"] // 3)
        text, _ = fit_text(target.suffix, cap, self.count, keep="head")
        return text

    def generate(self) -> tuple[str, str]:
        if self.intent == "explain":
            return self._explain()
        gen = self.config.generation
        n = gen.candidates
        seed = 1000 * self.step + 100 * self.attempt.number
        feedback = self.attempt.feedback or (self.initial_feedback if self.attempt.number == 0
                                             else [])
        if self.new_code is not None:
            return self._generate_new_code(n, seed, feedback)
        target = self.steps[self.step]
        left = max(0, self.budget.pools["code"] - self.count(target.prefix))
        code = self._retrieved(target, left)
        key = f"{target.path}:{target.qualified_name}:{left}"
        sections = prompts.body_sections(
            prefix=target.prefix, body_indent=target.body_indent,
            instruction=self.description, feedback=feedback, code=code,
            few_shot=self.context_cache.get(key + ":few_shot", ""),
            docs=self.context_cache.get(key + ":docs", ""), summary=self._summary(),
            current="" if target.is_stub or not target.old_body.strip() else target.function_text)
        self.emit(State.GENERATE, f"Producing {n} candidates for {target.qualified_name}...",
                  phase="start")
        stop_rule = BodyStop(target.def_indent)
        marker = comment_marker(target.path)  # the body starts with code, not `# TODO`
        suffix = self._fim_suffix(target)
        completions = []
        if n > 1 and self._plain_variant(target, feedback):
            # The file exactly as it is, greedy: what a plain completion of a stub would write.
            # A small base model is sensitive to any added line; this candidate keeps its best
            # guess in the running, the context prompt below gives the others.
            completions += self.call_model(
                State.GENERATE, f"body of {target.qualified_name} from the file alone "
                                f"(attempt {self.attempt.number})",
                prompts.plain_body_sections(target.prefix), n=1, temperature=0.0,
                max_tokens=gen.max_tokens, stop_rule=stop_rule, seed=seed, code_first=marker,
                suffix=suffix)
        completions += self.call_model(
            State.GENERATE, f"body of {target.qualified_name} (attempt {self.attempt.number})",
            sections, n=n - len(completions), temperature=gen.temperature,
            max_tokens=gen.max_tokens, stop_rule=stop_rule, seed=seed, greedy_first=True,
            code_first=marker, suffix=suffix)
        self.attempt.candidates = []
        seen: set[str] = set()
        for completion in completions:
            body = trim_body(completion.text, target.def_indent, target.body_indent)
            salvaged = salvage_body(target, body) if body else None
            if salvaged is not None:
                body = salvaged
            if not body or body in seen:
                continue
            seen.add(body)
            self.attempt.candidates.append(Candidate(
                id=self.next_candidate_id, text=body, file_text=target.assemble(body),
                attempt=self.attempt.number, seed=getattr(completion, "seed", None),
                tokens=int(getattr(completion, "completion_tokens", 0) or 0),
                source="model" if salvaged is None else "salvaged"))
            self.next_candidate_id += 1
        self.result.candidates.extend(self.attempt.candidates)
        if not self.attempt.candidates:
            return "no_candidates", f"No usable candidate among {len(completions)} samples"
        retry = f" (retry {self.attempt.number}, feedback: {len(feedback)} lines)" \
            if self.attempt.number else ""
        return "candidates", (f"{len(self.attempt.candidates)} distinct candidates for "
                              f"{target.qualified_name}{retry}")

    def _plain_variant(self, target: FunctionTarget, feedback: list[str]) -> bool:
        """A stub to implement from its own docstring, first attempt, nothing else asked."""
        stub = target.is_stub or not target.old_body.strip()
        return stub and not feedback and not self.description and self.intent != "fix"

    def _generate_new_code(self, n: int, seed: int, feedback: list[str]) -> tuple[str, str]:
        spot = self.new_code
        assert spot is not None
        lines = spot.file_text.splitlines(keepends=True)
        prefix = "".join(lines[: spot.line])
        if prefix and not prefix.endswith("\n"):
            prefix += "\n"
        code = self._retrieved(spot, max(0, self.budget.pools["code"] - self.count(prefix)))
        sections = prompts.new_code_sections(prefix=prefix, instruction=self.description,
                                             feedback=feedback, code=code,
                                             summary=self._summary())
        self.emit(State.GENERATE, f"Producing {n} candidates for new code at {spot.location()}...",
                  phase="start")
        completions = self.call_model(
            State.GENERATE, f"new code at {spot.location()} (attempt {self.attempt.number})",
            sections, n=n, temperature=self.config.generation.temperature,
            max_tokens=self.config.generation.max_tokens, stop=["\nif __name__"], seed=seed,
            greedy_first=True)
        self.attempt.candidates = []
        seen: set[str] = set()
        suffix = "".join(lines[spot.line:])
        for completion in completions:
            code_text = trim_new_code(completion.text)
            if not code_text or code_text in seen:
                continue
            seen.add(code_text)
            glue = "\n" if suffix.strip() else ""
            self.attempt.candidates.append(Candidate(
                id=self.next_candidate_id, text=code_text,
                file_text=prefix + code_text + glue + suffix, attempt=self.attempt.number,
                seed=getattr(completion, "seed", None)))
            self.next_candidate_id += 1
        self.result.candidates.extend(self.attempt.candidates)
        if not self.attempt.candidates:
            return "no_candidates", f"No usable candidate among {len(completions)} samples"
        return "candidates", (f"{len(self.attempt.candidates)} distinct candidates for new code "
                              f"at {spot.location()}")

    def _explain(self) -> tuple[str, str]:
        target = self.steps[0]
        left = max(0, self.budget.pools["code"] - self.count(target.function_text))
        sections = prompts.explain_sections(function_text=target.function_text,
                                            code=self._retrieved(target, left),
                                            instruction=self.description)
        completion = self.call_model(
            State.GENERATE, f"explain {target.qualified_name}", sections,
            temperature=self.config.generation.temperature_classify, max_tokens=120,
            stop=["\n\n", "\ndef ", "\nclass "])[0]
        lines = [line.strip().lstrip("#").strip() for line in completion.text.splitlines()]
        text = " ".join(line for line in lines if line)
        self.result.explanation = text or "(the model gave no explanation)"
        return "explained", f"Explained {target.qualified_name}"

    # --- VERIFY ----------------------------------------------------------------------------

    def _request(self, path: str, original: str, symbol: str | None, description: str) -> Any:
        """The gate's VerifyRequest: target file and text, symbol, task, the index's tests."""
        test_refs: list[str] = []
        target = self.steps[self.step] if self.steps and self.new_code is None else None
        if target is not None and target.symbol is not None:
            try:
                refs = self.engine.index.tests_of(target.symbol) or []
                test_refs = [getattr(r, "node_id", None) or str(r) for r in refs]
            except Exception as exc:  # no test map: the gate falls back to naming conventions
                log.info("tests of %s unavailable: %s", target.qualified_name, exc)
        values: dict[str, Any] = {
            "path": path, "original_text": original, "symbol": symbol, "task": description,
            "test_refs": tuple(test_refs), "defined_elsewhere": self._defined_elsewhere(target),
            # earlier steps' verified changes to other files: this step's tests see them
            "base_files": {p: text for p, text in self.working.items() if p != path}}
        try:
            from ..verify import VerifyRequest
        except ImportError:  # gate-less setups (unit tests with a fake gate)
            return SimpleNamespace(**values)
        return VerifyRequest(**values)

    def _defined_elsewhere(self, target: FunctionTarget | None) -> frozenset[str]:
        """The names the target's docstring calls that the index finds in other files."""
        docstring = getattr(target.symbol, "docstring", "") if target is not None else ""
        if not docstring or target is None:
            return frozenset()
        from ..verify.examples import called_names

        found = set()
        for name in called_names(docstring) - {target.name}:
            try:
                symbols = self.engine.index.find_symbol(name)
            except Exception as exc:  # no index: the gate judges by the module alone
                log.info("symbols named %s unavailable: %s", name, exc)
                return frozenset()
            if any(s.path != target.path for s in symbols):
                found.add(name)
        return frozenset(found)

    def _description(self, name: str) -> str:
        if self.intent == "fix" and self.task.diagnostics:
            return "fix: " + "; ".join(self.task.diagnostics)
        return self.description or f"implement {name} as its docstring says"

    def verify(self) -> tuple[str, str]:
        gate = self.engine.gate
        if self.new_code is not None:
            path, original = self.new_code.path, self.working[self.new_code.path]
            name = None
        else:
            target = self.steps[self.step]
            path, original, name = target.path, self.working[target.path], target.qualified_name
        request = self._request(path, original, name, self._description(name or "new code"))
        attempt_best: tuple[tuple[int, ...], Verdict] | None = None
        winner: Candidate | None = None
        for candidate in self.attempt.candidates:
            self.cancel.raise_if_cancelled()
            verdict = self.attempt.verified_bodies.get(candidate.text)
            if verdict is None:
                verdict = gate.verify(request, candidate, cancel=self.cancel)
                verdict.candidate_id = candidate.id
                self.attempt.verified_bodies[candidate.text] = verdict
                self._record_review_call(verdict, candidate.id)
            self.result.verdicts.append(verdict)
            key = verdict.rank_key() + (-len(candidate.text),)
            if verdict.passed:
                self.emit(State.VERIFY, f"Candidate {candidate.id} passes ({verdict.summary()})",
                          candidate=candidate.id, passed=True)
                winner = candidate
                self.best = (key, verdict, candidate)
                break
            first = verdict.feedback[0] if verdict.feedback else "failed"
            self.emit(State.VERIFY, f"Candidate {candidate.id} fails ({verdict.summary()}): "
                                    f"{shorten(first, 120)}", candidate=candidate.id, passed=False)
            if attempt_best is None or key > attempt_best[0]:
                attempt_best = (key, verdict)
            if self.best is None or key > self.best[0]:
                self.best = (key, verdict, candidate)
        if winner is not None:
            knowledge_hooks.after_pass(self, winner)  # a fixed retry teaches the error cache
            return self._accept(winner)
        repaired = knowledge_hooks.repair_before_retry(self, request, attempt_best)
        if repaired is not None:  # fixed without a model call (missing import, unused name...)
            return self._accept(repaired)
        self.attempt.feedback = digest_feedback(attempt_best[1].feedback if attempt_best else
                                                ["EMPTY: the model wrote no function body"])
        self.attempt.feedback += knowledge_hooks.past_fixes(self, attempt_best)
        if self.attempt.number >= self.config.generation.max_retries:
            return "exhausted", (f"No candidate passed after {self.attempt.number + 1} attempts")
        self.attempt = Attempt(number=self.attempt.number + 1, feedback=self.attempt.feedback,
                               verified_bodies=self.attempt.verified_bodies)
        return "retry", (f"No candidate passed; retry {self.attempt.number} of "
                         f"{self.config.generation.max_retries} with "
                         f"{len(self.attempt.feedback)} feedback lines")

    def _accept(self, winner: Candidate) -> tuple[str, str]:
        verdict = next((v for v in reversed(self.result.verdicts)
                        if v.candidate_id == winner.id), None)
        name = "new code" if self.new_code is not None else self.steps[self.step].qualified_name
        reason = untested_reason(verdict) if verdict is not None else ""
        if reason and verdict is not None:  # "verified" must not hide that nothing was tested
            self.result.stats.setdefault("untested", []).append({
                "symbol": name, "reason": reason,
                "checked": [g.gate for g in verdict.gates if not g.skipped]})
        if self.new_code is not None:
            self.working[self.new_code.path] = winner.file_text
            return "passed", f"Candidate {winner.id} verified"
        target = self.steps[self.step]
        body_lines = len(winner.text.splitlines())
        updated = target.with_text(winner.file_text, body_lines)
        self.working[target.path] = winner.file_text
        delta = updated.body_end - target.body_end
        for i in range(self.step + 1, len(self.steps)):
            other = self.steps[i]
            if other.path != target.path:
                continue
            shift = delta if other.start_line >= target.body_end else 0
            self.steps[i] = replace(other, file_text=winner.file_text,
                                    start_line=other.start_line + shift,
                                    header_end=other.header_end + shift,
                                    body_end=other.body_end + shift)
        self.result.stats.setdefault("steps_done", []).append(target.qualified_name)
        if self.step + 1 < len(self.steps):
            self.step += 1
            self.attempt = Attempt()
            return "next_step", (f"{target.qualified_name} verified; next: "
                                 f"{self.steps[self.step].qualified_name}")
        return "passed", f"Candidate {winner.id} verified"

    # --- COMPLETE / FAILED -----------------------------------------------------------------

    def complete(self) -> None:
        if self.intent == "explain":
            self.result.status = "explained"
            self.result.message = self.result.explanation
            return
        for path, (before, version) in self.originals.items():
            after = self.working.get(path, before)
            if after != before:
                self.result.patches.append(Patch(path, before, after, version))
        self.result.status = "verified"
        changed = ", ".join(p.path for p in self.result.patches)
        self.result.message = f"Verified change to {changed}"
        note = self.result.untested_note()
        if note:
            self.result.message += f"; {note}"

    def fail(self) -> None:
        if self.best is not None:
            _, verdict, candidate = self.best
            lines = digest_feedback(verdict.feedback, limit=3)
            summary = f"best candidate {candidate.id} ({verdict.summary()})"
            if lines:
                summary += ": " + " | ".join(lines)
            self.result.status = "no_candidate"
            self.result.message = f"No verified candidate; {summary}"
        elif self.result.status != "error":
            self.result.status = "no_candidate"
            self.result.message = self.result.message or "No verified candidate"
        self.result.patches = []


def untested_reason(verdict: Verdict) -> str:
    """Why no test or docstring example checked a passing candidate ("" when some did)."""
    tests = next((g for g in verdict.gates if g.gate == "test"), None)
    if tests is None:
        return "the test gate did not run"
    return tests.skipped


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
            if out and not out[-1].lstrip().startswith("@") and not line.startswith(("def ", "class ", "async ")):
                break
        elif line.strip():
            seen_body = True
        out.append(line)
    while out and not out[-1].strip():
        out.pop()
    if not seen_body:
        return ""
    return "\n".join(out) + "\n"


HANDLERS: dict[State, Callable[[PipelineRun], tuple[str, str]]] = {
    State.UNDERSTAND: PipelineRun.understand,
    State.LOCATE: PipelineRun.locate,
    State.PLAN: PipelineRun.plan,
    State.GENERATE: PipelineRun.generate,
    State.VERIFY: PipelineRun.verify,
}


def run_task(engine: Any, task: Task, *, cancel: CancelToken | None = None,
             on_event: EventSink | None = None) -> Result:
    """Drive `task` through the transition table; always returns a Result (never raises for a
    bad task: status "error" with a message)."""
    cancel = cancel or CancelToken()
    run = PipelineRun(engine, task, cancel, on_event)
    state = State.UNDERSTAND
    started = time.monotonic()
    timings: dict[str, float] = {}
    while state not in TERMINAL:
        t0 = time.monotonic()
        try:
            cancel.raise_if_cancelled()
            outcome, message = HANDLERS[state](run)
        except Cancelled:
            outcome, message = "cancelled", f"Cancelled during {state.value}"
        except (PipelineError, FileNotFoundError, ValueError) as exc:
            run.result.status = "error"
            run.result.message = str(exc)
            run.emit(state, f"Error: {exc}", outcome="error", next=State.FAILED.value)
            state = State.FAILED
            break
        finally:
            timings[state.value] = timings.get(state.value, 0.0) + time.monotonic() - t0
        following = next_state(state, outcome)
        run.emit(state, message, outcome=outcome, next=following.value)
        state = following
    if state is State.COMPLETE:
        run.complete()
        if run.result.patches:
            run.emit(State.COMPLETE, f"{len(run.result.patches)} verified patch(es)")
        else:
            run.emit(State.COMPLETE, run.result.message or "Done")
    elif state is State.CANCELLED:
        run.result.status = "cancelled"
        run.result.patches = []
        run.result.message = cancel.reason or "cancelled"
    elif state is State.FAILED and run.result.status != "error":
        run.fail()
        run.emit(State.FAILED, run.result.message)
    timings["total"] = time.monotonic() - started
    run.result.timings = {k: round(v, 3) for k, v in timings.items()}
    run.result.stats.update({
        "intent": run.intent,
        "attempts": run.attempt.number + 1,
        "candidates": len(run.result.candidates),
        "model_calls": len(run.result.model_calls),
        "steps": [s.qualified_name for s in run.steps],
    })
    summary = getattr(engine, "session_summary", None)
    if summary is not None:
        summary.record_result(task.instruction or (task.symbol or ""), run.result)
    return run.result
