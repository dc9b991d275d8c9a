"""LOCATE: the function the task changes (by position, name, the instruction, or search), or
the spot where new code goes. Errors say what is there instead."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

from ..index.symbols import Symbol
from ..inference.grammar import choice_grammar, option_labels, parse_choice
from .collaborators import Collaborators
from .model import answer
from .run import NewCode, PipelineError, RunState
from .states import State
from .target import FUNCTION_KINDS, FunctionTarget, function_of_task, function_target

_IDENTIFIER = re.compile(r"`([A-Za-z_][\w.]*)`|\b([A-Za-z_]\w*)\s*\(|\b([A-Za-z_]\w*_\w+|[a-z]+[A-Z]\w*)\b")
# "the square function", "square method": a bare name the user called a function.
_NAMED_FUNCTION = re.compile(r"\b([A-Za-z_]\w*)\s+(?:function|method)\b")
_WORD = re.compile(r"\b([A-Za-z_]\w{2,})\b")


def functions(found: Sequence[Symbol] | None) -> list[Symbol]:
    return [s for s in (found or []) if s.kind in FUNCTION_KINDS]


def snapshot(state: RunState, parts: Collaborators, path: str) -> tuple[str, str, int | None]:
    """(relative path, text, version) of a file as the user sees it; the run keeps its first
    text as the original and works on a copy."""
    try:
        document = parts.workspace.snapshot(path)
    except FileNotFoundError:
        raise PipelineError(f"file not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise PipelineError(f"{path} is not a text file: {exc}") from None
    state.originals.setdefault(document.path, (document.text, document.version))
    state.working.setdefault(document.path, document.text)
    return document.path, document.text, document.version


def target_of(state: RunState, parts: Collaborators, symbol: Symbol) -> FunctionTarget:
    path, _, version = snapshot(state, parts, symbol.path)
    return function_target(path, state.working[path], symbol, version)


def locate(state: RunState, parts: Collaborators) -> tuple[str, str]:
    index = parts.index
    task = state.task
    path = None
    if task.path:
        path, text, _ = snapshot(state, parts, task.path)
        index.update_document(path, text)
    # targeting by position: exactly the function the front end found at the cursor
    symbol = function_of_task(index, path, task) if path else None
    how = "position" if symbol is not None else ""
    if symbol is not None:
        pass
    elif path and task.symbol:
        matches = functions(index.find_symbol(task.symbol, path))
        if not matches:
            short = task.symbol.rsplit(".", 1)[-1]
            matches = [s for s in functions(index.symbols(path))
                       if s.qualified_name == task.symbol or s.name == short]
        if not matches:
            raise PipelineError(f"no function named {task.symbol!r} in {path}"
                                + functions_hint(index.symbols(path), task.symbol))
        symbol, how = matches[0], "symbol"
    elif task.symbol:
        matches = functions(index.find_symbol(task.symbol))
        if not matches:
            raise PipelineError(f"no function named {task.symbol!r} in the project")
        symbol, how = matches[0], "symbol"
    elif path and task.position is not None:
        symbol = index.enclosing_function(path, task.position.line, task.position.column)
        how = "position"
        if symbol is None and state.intent == "generate":
            state.new_code = NewCode(path, state.working[path], task.position.line,
                                     state.originals[path][1])
            return "new_code", f"New code at {state.new_code.location()}"
        if symbol is None:
            raise PipelineError(f"no function at {path}:{task.position.line + 1}"
                                + position_hint(state, parts, path, task.position.line))
    if symbol is None:
        state.mentioned = mentioned_symbols(state, parts, path)
        if state.mentioned:
            symbol, how = state.mentioned[0], "named in the instruction"
    if symbol is None and path and state.intent == "generate":
        state.new_code = NewCode(path, state.working[path],
                                 len(state.working[path].splitlines()), state.originals[path][1])
        return "new_code", f"New code at the end of {path}"
    if symbol is None and state.description:
        symbol = search(state, parts, path)
        how = "search"
    if symbol is None:
        state.result.status = "error"
        state.result.message = ("no target found: name a function (--symbol), a file and line, "
                                "or a function in the instruction")
        return "not_found", "No target found"
    target = target_of(state, parts, symbol)
    state.steps = [target]
    state.result.stats["target"] = f"{target.qualified_name} ({target.location()})"
    return "found", f"Found {target.qualified_name} at {target.location()} ({how})"


def functions_hint(symbols: Sequence[Symbol], wanted: str) -> str:
    """` (did you mean X?)` or ` (functions here: a, b, ...)`, for a name not found."""
    names = sorted({s.qualified_name for s in functions(symbols)})
    if not names:
        return " (it defines no functions)"
    close = difflib.get_close_matches(wanted, names, n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]}?)"
    shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    return f" (functions there: {shown})"


def position_hint(state: RunState, parts: Collaborators, path: str, line: int) -> str:
    """Why a position holds no function: past the end, or between functions."""
    count = len(state.working[path].splitlines())
    if line >= count:
        return f" (the file has {count} lines)"
    found = sorted(functions(parts.index.symbols(path)), key=lambda s: s.start_line)
    before = [s for s in found if s.end_line < line]
    after = [s for s in found if s.start_line > line]
    near = [f"{s.qualified_name} at line {s.start_line + 1}" for s in (before[-1:] + after[:1])]
    return f" (nearest: {', '.join(near)})" if near else " (it defines no functions)"


def mentioned_symbols(state: RunState, parts: Collaborators, path: str | None) -> list[Symbol]:
    """Functions the instruction names: code-shaped names first (`x`, x(), snake_case), then
    "the X function", then, only when nothing else matched, the first plain word that is a
    workspace function ("implement square")."""
    names: list[str] = []
    for match in _IDENTIFIER.finditer(state.description):
        name = next(g for g in match.groups() if g)
        if name not in names:
            names.append(name)
    found = lookup_functions(parts, names[:12], path)
    if not found:
        named = [m.group(1) for m in _NAMED_FUNCTION.finditer(state.description)]
        found = lookup_functions(parts, named[:6], path)
    if not found:
        words = list(dict.fromkeys(m.group(1) for m in _WORD.finditer(state.description)))
        found = lookup_functions(parts, words[:40], path)[:1]
    return found


def lookup_functions(parts: Collaborators, names: Sequence[str],
                     path: str | None) -> list[Symbol]:
    found: list[Symbol] = []
    for name in names:
        matches = functions(parts.index.find_symbol(name, path)) if path else []
        if not matches:
            matches = functions(parts.index.find_symbol(name))
        for symbol in matches[:1]:
            if all((s.path, s.qualified_name) != (symbol.path, symbol.qualified_name)
                   for s in found):
                found.append(symbol)
    return found


def search(state: RunState, parts: Collaborators, path: str | None) -> Symbol | None:
    """The function the instruction is about, from the index's search; the model picks among
    several hits under a choice grammar."""
    options: list[Symbol] = []
    for hit in parts.index.search(state.description, 5) or []:
        matches = functions(parts.index.find_symbol(hit.symbol, hit.path)) if hit.symbol else []
        symbol = matches[0] if matches else None
        if symbol is None or (path and symbol.path != path):
            continue
        if all((s.path, s.qualified_name) != (symbol.path, symbol.qualified_name)
               for s in options):
            options.append(symbol)
    if len(options) <= 1:
        return options[0] if options else None
    options = options[:4]
    labels = option_labels(len(options))
    described = [(label, f"{s.qualified_name} in {s.path}: {s.signature}".strip())
                 for label, s in zip(labels, options, strict=False)]
    ask = parts.prompts.rank(state.description, described, choice_grammar(labels))
    try:
        return options[labels.index(parse_choice(answer(state, parts, State.LOCATE, ask,
                                                        max_tokens=4), labels))]
    except ValueError:
        return options[0]
