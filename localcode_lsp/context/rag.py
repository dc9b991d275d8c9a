"""Retrieval for the `code` budget: the target's callees, callers, imports, similar functions and
relevant tests, ranked and cut to fit.

Providers are pluggable: anything with `provide(query) -> list[Snippet]` (the `ContextProvider`
protocol) can be appended to `Engine.context_providers`; the knowledge store adds few-shot
examples, documentation fragments and cached fixes that way (sections `few_shot` and `docs`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..index.languages import is_test_path
from ..index.symbols import encode_source
from ..logs import get_logger
from .budget import TokenCounter

if TYPE_CHECKING:
    from ..index.symbols import Symbol
    from ..workspace import Workspace

log = get_logger("context.rag")


@dataclass(frozen=True)
class ContextQuery:
    """What a provider gets: the task and its located target."""

    instruction: str
    path: str
    symbol: Symbol | None = None  # the target (None for new code)
    file_text: str = ""
    intent: str = "edit"
    feedback: tuple[str, ...] = ()


@dataclass(frozen=True)
class Snippet:
    """One piece of retrieved context. `section` is the prompt section it belongs to."""

    text: str
    source: str  # "callee", "caller", "import", "similar", "test", "few_shot", "docs", ...
    path: str = ""
    name: str = ""
    score: float = 0.0
    section: str = "code"

    def render(self) -> str:
        """Code as code; tests as comments, so a base model reads them as the spec of the
        target rather than as the start of a test file it should continue."""
        header = f"# {self.source}: {self.path}" + (f" ({self.name})" if self.name else "")
        body = self.text if self.text.endswith("\n") else self.text + "\n"
        if self.source == "test":
            body = "".join(f"# {line}".rstrip() + "\n" for line in body.splitlines())
        return f"{header}\n{body}\n"


@runtime_checkable
class ContextProvider(Protocol):
    """A source of snippets for a prompt (index retrieval, knowledge store, ...)."""

    name: str

    def provide(self, query: ContextQuery) -> list[Snippet]: ...


# Relative value of each kind of retrieved code when the budget is tight.
SOURCE_WEIGHTS = {"callee": 1.0, "import": 0.95, "test": 0.9, "caller": 0.7, "similar": 0.5}


def _symbol_text(workspace: Workspace, symbol: Symbol) -> str:
    try:
        data = encode_source(workspace.read_text(symbol.path))
        return data[symbol.start_byte:symbol.end_byte].decode("utf-8", "replace")
    except Exception as exc:  # a vanished file only loses one snippet
        log.debug("cannot read %s: %s", symbol.path, exc)
        return ""


class IndexContextProvider:
    """Callees, callers, imports, similar code and tests of the target, from the CodeIndex."""

    name = "index"

    def __init__(self, index: Any, workspace: Workspace, *, similar: int = 3, tests: bool = True,
                 callers: int = 2) -> None:
        self.index = index
        self.workspace = workspace
        self.similar = similar
        self.tests = tests
        self.callers = callers

    def _safe(self, what: str, func: Any, *args: Any, **kwargs: Any) -> list[Any]:
        try:
            return list(func(*args, **kwargs) or [])
        except Exception as exc:  # retrieval is best effort; the prompt just gets less context
            log.info("retrieval of %s failed: %s", what, exc)
            return []

    def provide(self, query: ContextQuery) -> list[Snippet]:
        snippets: list[Snippet] = []
        target = query.symbol
        seen: set[tuple[str, str]] = set()
        if target is not None:
            seen.add((target.path, target.qualified_name))
            callees = self._safe("callees", self.index.callees, target)
            callers = [c for c in self._safe("callers", self.index.callers, target)
                       if not is_test_path(c.path)][: self.callers]
            for source, symbols in (("callee", callees), ("caller", callers)):
                for symbol in symbols:
                    key = (symbol.path, symbol.qualified_name)
                    if key in seen:
                        continue
                    seen.add(key)
                    text = _symbol_text(self.workspace, symbol)
                    if text:
                        snippets.append(Snippet(text, source, symbol.path, symbol.qualified_name,
                                                SOURCE_WEIGHTS[source]))
            if self.tests:
                for ref in self._safe("tests", self.index.tests_of, target)[:3]:
                    found = self._safe("test symbol", self.index.find_symbol, ref.name, ref.path)
                    text = _symbol_text(self.workspace, found[0]) if found else ""
                    if text:
                        snippets.append(Snippet(text, "test", ref.path, ref.name,
                                                SOURCE_WEIGHTS["test"]))
        if query.path:
            imports = self._safe("imports", self.index.imports, query.path)
            file_lines = query.file_text.splitlines()
            lines: list[str] = []
            for item in imports:
                number = getattr(item, "line", None)
                text = file_lines[number] if isinstance(number, int) and \
                    0 <= number < len(file_lines) else str(item)
                if text and text not in lines:
                    lines.append(text)
            if lines:
                snippets.append(Snippet("\n".join(lines), "import", query.path, "",
                                        SOURCE_WEIGHTS["import"]))
        search_text = query.instruction.strip() or (getattr(target, "docstring", "") or "")
        if self.similar and search_text.strip():
            for hit in self._safe("search", self.index.search, search_text, self.similar + 4):
                hit_symbol = getattr(hit, "symbol", None)
                name = getattr(hit_symbol, "qualified_name", None) or str(hit_symbol or "")
                if target is not None and hit.path == target.path and name == target.qualified_name:
                    continue
                if (hit.path, name) in seen or is_test_path(hit.path):
                    continue
                seen.add((hit.path, name))
                snippets.append(Snippet(hit.text, "similar", hit.path, name,
                                        SOURCE_WEIGHTS["similar"] * float(getattr(hit, "score", 1.0) or 0)))
                if sum(1 for s in snippets if s.source == "similar") >= self.similar:
                    break
        return snippets


def gather(providers: Iterable[ContextProvider], query: ContextQuery) -> list[Snippet]:
    """Every provider's snippets; a failing provider is logged and skipped."""
    out: list[Snippet] = []
    for provider in providers:
        try:
            out.extend(provider.provide(query))
        except Exception as exc:
            log.warning("context provider %s failed: %s", getattr(provider, "name", provider), exc)
    return out


def select(snippets: Iterable[Snippet], section: str, budget: int, count: TokenCounter,
           *, exclude_text: str = "") -> tuple[str, list[Snippet]]:
    """The best-scored whole snippets of one section that fit in `budget` tokens together.

    Snippets whose text already appears in `exclude_text` (e.g. the target file's prefix) are
    skipped: the model sees them anyway.
    """
    chosen: list[Snippet] = []
    texts: set[str] = set()
    used = 0
    for snippet in sorted((s for s in snippets if s.section == section),
                          key=lambda s: s.score, reverse=True):
        if not snippet.text.strip() or (exclude_text and snippet.text.strip() in exclude_text):
            continue
        if snippet.text.strip() in texts:
            continue
        cost = count(snippet.render())
        if used + cost > budget:
            continue
        chosen.append(snippet)
        texts.add(snippet.text.strip())
        used += cost
    return "".join(s.render() for s in chosen), chosen
