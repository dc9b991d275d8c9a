"""The pattern library: real code from the project, chosen as few-shot examples for a target.

Mined per file (content hash, so an unchanged file is never re-read after a restart) into
patterns: functions, methods and classes with their name tokens, signature shape, calls and
category (test, data model, handler, plain function). `few_shot_for` ranks them against the
target by name tokens, signature shape, shared calls, category, nearness in the tree and, when
the index offers it, embedding similarity. The target itself, stubs and the tests of the target
never become examples: they would leak the expected values the model is supposed to satisfy.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ..index.discovery import discover
from ..index.languages import is_test_path
from ..logs import get_logger
from . import syntax
from .storage import JsonCache

log = get_logger("knowledge.patterns")

CountTokens = Callable[[str], int]

# Beyond what the index leaves out: copies of project code and environments the index may
# cover but that make poor examples of the project's own style.
_NOT_PROJECT_CODE_DIRS = frozenset({"env", ".env", "build", "dist", "site-packages", ".eggs"})
_MAX_FILE_BYTES = 1_000_000
_MAX_EXAMPLE_LINES = 60
_MODEL_BASES = ("BaseModel", "NamedTuple", "TypedDict", "Enum", "IntEnum", "StrEnum", "Model",
                "Schema", "Struct")
_HANDLER_DECORATOR = re.compile(
    r"(^|\.)(route|get|post|put|patch|delete|websocket|command|group|handler|callback|"
    r"on_event|subscribe|task|receiver|listener|feature|api_view)\b")
_HANDLER_NAME = re.compile(r"^(handle|on)_|_(handler|view|endpoint|callback)$")


def default_count_tokens(text: str) -> int:
    """A tokenizer-free estimate (about four characters per token) for when none is given."""
    return max(1, len(text) // 4)


def name_tokens(name: str) -> list[str]:
    """`parseConfigFile` / `parse_config_file` -> ["parse", "config", "file"]."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [t.lower() for t in re.split(r"[^A-Za-z0-9]+", spaced) if t and not t.isdigit()]


def _word_tokens(text: str) -> set[str]:
    words: set[str] = set()
    for raw in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text or ""):
        words.update(t for t in name_tokens(raw) if len(t) > 2)
    return words


def _jaccard(a: Iterable[str], b: Iterable[str]) -> float:
    sa, sb = set(a), set(b)
    if not sa or not sb:
        return 0.0
    return len(sa & sb) / len(sa | sb)


def category_of(definition: syntax.Definition, path: str) -> str:
    """"test", "model", "handler", "class", "method" or "function"."""
    if is_test_path(path) and (definition.name.startswith("test") or definition.kind == "class"
                               and definition.name.startswith("Test")):
        return "test"
    if definition.kind == "class":
        decorated_model = any(d.split("(")[0].split(".")[-1] in ("dataclass", "attrs", "define",
                                                                 "frozen", "s")
                              for d in definition.decorators)
        based_model = any(b.split("[")[0].split(".")[-1] in _MODEL_BASES for b in definition.bases)
        return "model" if decorated_model or based_model else "class"
    if any(_HANDLER_DECORATOR.search(d.split("(")[0]) for d in definition.decorators) \
            or _HANDLER_NAME.search(definition.name):
        return "handler"
    return definition.kind


def module_name_for(path: str, root: Path) -> str:
    """`src/pkg/mod.py` -> `pkg.mod` (src layout aware); `pkg/__init__.py` -> `pkg`."""
    parts = list(PurePosixPath(path).with_suffix("").parts)
    if parts and parts[0] == "src" and (root / "src").is_dir():
        parts = parts[1:]
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


@dataclass(frozen=True)
class Target:
    """What the pipeline is about to generate: enough to rank examples against it."""

    name: str
    path: str = ""
    qualified_name: str = ""
    kind: str = "function"
    signature: str = ""
    docstring: str = ""
    instruction: str = ""
    params: tuple[str, ...] = ()
    returns: str = ""
    calls: tuple[str, ...] = ()
    category: str = ""


def target_from(obj: Any, *, path: str = "", instruction: str = "") -> Target:
    """A Target from an index Symbol, a syntax.Definition, a Target, a dict or a plain name."""
    if isinstance(obj, Target):
        return obj
    if isinstance(obj, str):
        return Target(name=obj.split(".")[-1], path=path, qualified_name=obj,
                      instruction=instruction)
    get = obj.get if isinstance(obj, dict) else (lambda key, default=None: getattr(obj, key, default))
    name = str(get("name", "") or "")
    qualified = str(get("qualified_name", "") or name)
    signature = str(get("signature", "") or "")
    params = tuple(get("params", ()) or ())
    returns = str(get("returns", "") or "")
    if signature and not params:
        params, returns = _shape_from_signature(signature)
    kind = str(get("kind", "function") or "function")
    target_path = str(get("path", "") or path)
    category = "test" if name.startswith("test") and is_test_path(target_path) else ""
    return Target(name=name or qualified.split(".")[-1], path=target_path,
                  qualified_name=qualified, kind=kind, signature=signature,
                  docstring=str(get("docstring", "") or ""), instruction=instruction,
                  params=params, returns=returns, calls=tuple(get("calls", ()) or ()),
                  category=category)


def _shape_from_signature(signature: str) -> tuple[tuple[str, ...], str]:
    text = signature.strip()
    if not text.startswith(("def ", "async def ")):
        text = "def " + text
    try:
        facts = syntax.module_facts(text.rstrip(":") + ":\n    pass\n")
    except Exception:  # a signature we cannot read only loses the shape signal
        return (), ""
    if facts.definitions:
        first = facts.definitions[0]
        return first.params, first.returns
    return (), ""


@dataclass
class Example:
    """One few-shot example: real project code with where it came from."""

    path: str
    qualified_name: str
    start_line: int  # 0-based
    text: str
    score: float
    category: str
    tokens: int = 0

    def render(self) -> str:
        return f"# {self.path}:{self.start_line + 1}\n{self.text}"


class PatternLibrary:
    """Patterns mined from the workspace, cached per file by content hash."""

    def __init__(self, root: Path, cache: JsonCache, *, index: Any = None,
                 read_text: Callable[[str], str] | None = None,
                 refresh_interval: float = 2.0) -> None:
        self.root = Path(root)
        self.cache = cache
        self.index = index
        self._read_text = read_text
        self._refresh_interval = refresh_interval
        self._last_refresh = 0.0
        self.files_mined = 0  # files (re)read since start: the incremental counter tests use

    # --- mining ------------------------------------------------------------------------------

    def _python_files(self) -> list[str]:
        """The workspace's Python files as the index finds them (.gitignore at every level,
        `.localcode/ignore`, size and binary limits), minus build output and environments."""
        found = discover(self.root, _MAX_FILE_BYTES, suffixes=(".py",))
        return [entry.path for entry in found.files
                if not _NOT_PROJECT_CODE_DIRS.intersection(PurePosixPath(entry.path).parts[:-1])]

    def _text_of(self, rel: str) -> str | None:
        if self._read_text is not None:
            try:
                return self._read_text(rel)
            except (OSError, ValueError):
                return None
        try:
            return (self.root / rel).read_text(encoding="utf-8", errors="surrogateescape")
        except OSError:
            return None

    def _mine(self, rel: str, text: str) -> list[dict[str, Any]]:
        facts = syntax.module_facts(text)
        patterns = []
        for definition in facts.definitions:
            lines = definition.text.splitlines()
            if len(lines) > _MAX_EXAMPLE_LINES:
                lines = lines[:_MAX_EXAMPLE_LINES] + ["    # ... (truncated)"]
            patterns.append({
                "name": definition.name,
                "qualified_name": definition.qualified_name,
                "kind": definition.kind,
                "category": category_of(definition, rel),
                "start_line": definition.start_line,
                "end_line": definition.end_line,
                "signature": definition.signature,
                "params": list(definition.params),
                "returns": definition.returns,
                "is_async": definition.is_async,
                "is_stub": definition.is_stub,
                "calls": list(definition.calls),
                "decorators": list(definition.decorators),
                "doc": definition.docstring.strip().split("\n")[0][:200],
                "text": "\n".join(lines),
            })
        return patterns

    def update_file(self, rel: str, text: str | None = None) -> bool:
        """Re-mine one file if its content changed; True when it was (re)mined."""
        if text is None:
            text = self._text_of(rel)
        if text is None or len(text) > _MAX_FILE_BYTES:
            self.cache.delete(rel)
            return False
        digest = hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()
        entry = self.cache.get(rel, touch=False)
        if isinstance(entry, dict) and entry.get("hash") == digest:
            return False
        try:
            patterns = self._mine(rel, text)
        except Exception as exc:  # one odd file must not stop mining the rest
            log.warning("pattern mining skipped %s: %s", rel, exc)
            patterns = []
        stat = self._stat(rel)
        self.cache.set(rel, {"hash": digest, "stat": stat, "patterns": patterns})
        self.files_mined += 1
        return True

    def _stat(self, rel: str) -> list[float]:
        try:
            st = (self.root / rel).stat()
            return [st.st_mtime_ns, st.st_size]
        except OSError:
            return [0, 0]

    def refresh(self, *, force: bool = False) -> int:
        """Bring the library up to date with the tree; returns how many files were re-mined."""
        now = time.monotonic()
        if not force and now - self._last_refresh < self._refresh_interval and len(self.cache):
            return 0
        self._last_refresh = now
        files = self._python_files()
        present = set(files)
        for stale in [k for k in self.cache.keys() if k not in present]:
            self.cache.delete(stale)
        changed = 0
        for rel in files:
            entry = self.cache.get(rel, touch=False)
            if (self._read_text is None and isinstance(entry, dict)
                    and entry.get("stat") == self._stat(rel)):
                continue
            if self.update_file(rel):
                changed += 1
        if changed:
            self.cache.flush()
        return changed

    def patterns(self) -> list[tuple[str, dict[str, Any]]]:
        """(path, pattern) for every mined definition."""
        result = []
        for rel, entry in self.cache.items():
            if isinstance(entry, dict):
                for pattern in entry.get("patterns", []):
                    if isinstance(pattern, dict):
                        result.append((rel, pattern))
        return result

    def top_level_definitions(self, name: str) -> list[tuple[str, dict[str, Any]]]:
        """Functions and classes named `name` at module level (candidates for an import)."""
        return [(rel, p) for rel, p in self.patterns()
                if p.get("name") == name and p.get("qualified_name") == name
                and not is_test_path(rel)]

    def test_conventions(self) -> str:
        """One line on how this project writes its tests (fixtures, assert style, parametrize)."""
        tests = [(rel, p) for rel, p in self.patterns() if p.get("category") == "test"
                 and p.get("kind") != "class"]
        if not tests:
            return ""
        plain = sum("assert " in p["text"] for _, p in tests)
        unittest_style = sum("self.assert" in p["text"] for _, p in tests)
        raises = sum("pytest.raises" in p["text"] for _, p in tests)
        parametrized = sum(any("parametrize" in d for d in p.get("decorators", [])) for _, p in tests)
        fixtures: dict[str, int] = {}
        for _, p in tests:
            for param in p.get("params", []):
                if param not in ("self",) and not param.startswith("*"):
                    fixtures[param] = fixtures.get(param, 0) + 1
        common = [f for f, n in sorted(fixtures.items(), key=lambda kv: -kv[1]) if n > 1][:4]
        parts = [f"{len(tests)} pytest tests",
                 "plain assert" if plain >= unittest_style else "unittest self.assert*"]
        if raises:
            parts.append("pytest.raises for errors")
        if parametrized:
            parts.append("@pytest.mark.parametrize")
        if common:
            parts.append("fixtures: " + ", ".join(common))
        return "# project tests: " + "; ".join(parts)

    # --- selection ---------------------------------------------------------------------------

    def _embedding_scores(self, target: Target) -> dict[tuple[str, str], float]:
        index = self.index() if callable(self.index) and not hasattr(self.index, "search") \
            else self.index
        search = getattr(index, "search", None) if index is not None else None
        if search is None or not target.instruction.strip():
            return {}  # no instruction: the pipeline did not load the embedder; neither do we
        query = " ".join(filter(None, [target.signature or target.name, target.docstring,
                                       target.instruction]))
        try:
            hits = search(query, k=20)
        except TypeError:
            try:
                hits = search(query)
            except Exception:
                return {}
        except Exception as exc:  # the embedding index is optional for this signal
            log.debug("embedding search unavailable: %s", exc)
            return {}
        scores: dict[tuple[str, str], float] = {}
        hits = list(hits or [])
        for rank, hit in enumerate(hits):
            get = hit.get if isinstance(hit, dict) else (lambda k, d=None, h=hit: getattr(h, k, d))
            path = str(get("path", "") or "")
            name = str(get("qualified_name", "") or get("name", "") or get("symbol", "") or "")
            if path and name:
                scores[(path, name)] = 1.0 - rank / max(1, len(hits))
        return scores

    def score(self, target: Target, rel: str, pattern: dict[str, Any],
              embedding: float = 0.0) -> float:
        """How good an example `pattern` is for `target` (0 = unrelated)."""
        target_tokens = name_tokens(target.name)
        tokens = name_tokens(pattern["name"])
        name_score = _jaccard(target_tokens, tokens)
        intent = _word_tokens(" ".join([target.docstring, target.instruction]))
        intent_score = _jaccard(intent, set(tokens) | _word_tokens(pattern.get("doc", ""))) \
            if intent else 0.0
        shape = 0.0
        if pattern["kind"] != "class" and target.kind != "class":
            shape += 1.0 / (1 + abs(len(pattern.get("params", [])) - len(target.params)))
            if target.returns and pattern.get("returns"):
                shape += 0.5 if target.returns == pattern["returns"] else 0.15
            if (pattern["kind"] == "method") == (target.kind == "method"):
                shape += 0.25
        elif pattern["kind"] == target.kind:
            shape += 1.0
        calls = _jaccard(target.calls, pattern.get("calls", []))
        near = 0.0
        if target.path:
            if rel == target.path:
                near = 0.3
            elif PurePosixPath(rel).parent == PurePosixPath(target.path).parent:
                near = 0.15
        category = 0.0
        target_category = target.category or ("class" if target.kind == "class" else "")
        if target_category and pattern.get("category") == target_category:
            category = 0.75
        return (3.0 * name_score + 1.5 * intent_score + 0.6 * shape + 1.0 * calls + near
                + category + 1.5 * embedding)

    def _is_excluded(self, target: Target, rel: str, pattern: dict[str, Any]) -> bool:
        if pattern.get("is_stub"):
            return True
        if rel == target.path and pattern["qualified_name"] in (target.qualified_name, target.name):
            return True
        if target.path and rel == target.path and pattern["name"] == target.name:
            return True
        if pattern.get("category") == "test":
            if target.category != "test":
                return True  # tests carry expected values: never examples for production code
            called = {c.split(".")[-1] for c in pattern.get("calls", [])}
            subject = target.name[5:] if target.name.startswith("test_") else ""
            if subject and (subject in called or subject in pattern["name"]):
                return False  # a sibling test of the same subject is the best test example
        elif target.name in {c.split(".")[-1] for c in pattern.get("calls", [])} \
                and is_test_path(rel):
            return True
        return False

    def few_shot_for(self, target: Any, k: int = 3, budget_tokens: int = 1024,
                     count_tokens: CountTokens | None = None, *, path: str = "",
                     instruction: str = "") -> list[Example]:
        """Up to `k` examples for `target`, best first, together within `budget_tokens`."""
        if k <= 0 or budget_tokens <= 0:
            return []
        count = count_tokens or default_count_tokens
        info = target_from(target, path=path, instruction=instruction)
        self.refresh()
        embedding = self._embedding_scores(info)
        ranked: list[tuple[float, str, dict[str, Any]]] = []
        for rel, pattern in self.patterns():
            if self._is_excluded(info, rel, pattern):
                continue
            emb = embedding.get((rel, pattern["qualified_name"]),
                                embedding.get((rel, pattern["name"]), 0.0))
            value = self.score(info, rel, pattern, emb)
            if value >= 1.2:  # below this an example is noise: a signature shape alone
                ranked.append((value, rel, pattern))
        ranked.sort(key=lambda item: (-item[0], item[1], item[2]["start_line"]))
        chosen: list[Example] = []
        used = 0
        for value, rel, pattern in ranked:
            if len(chosen) >= k:
                break
            if any(rel == c.path and c.start_line <= pattern["start_line"]
                   <= c.start_line + c.text.count("\n") for c in chosen):
                continue  # a method whose class is already shown
            example = Example(rel, pattern["qualified_name"], pattern["start_line"],
                              pattern["text"], round(value, 3), pattern.get("category", ""))
            example.tokens = count(example.render())
            if used + example.tokens > budget_tokens:
                continue
            used += example.tokens
            chosen.append(example)
        return chosen
