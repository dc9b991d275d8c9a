"""`KnowledgeStore`: the pattern library, the error -> fix cache and documentation fragments of
one workspace, persisted under `.localcode/knowledge/`, with the providers the pipeline plugs in.

Everything here is a cache. Deleting the directory loses only speed; a corrupt file is rebuilt
with one log line; the whole directory stays under a byte cap (LRU eviction per file).
"""

from __future__ import annotations

import shutil
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import Config
from ..context.rag import ContextProvider
from ..index.languages import is_test_path
from ..logs import get_logger
from .docs import DocsLibrary, Fragment
from .errors import ErrorFixCache, Repair
from .patterns import Example, PatternLibrary, module_name_for
from .storage import JsonCache

if TYPE_CHECKING:  # the index loads lazily (tree-sitter, lancedb): its type only here
    from ..index import CodeIndex
    from ..workspace import Workspace

log = get_logger("knowledge")

KNOWLEDGE_DIR = "knowledge"
DEFAULT_MAX_BYTES = 32 * 1024 * 1024
# Share of the byte cap per cache file.
_SHARES = {"patterns": 0.45, "docs": 0.35, "errors": 0.19, "stats": 0.01}
_COUNTERS = ("retries_consulted", "hits", "misses", "repairs_proposed", "repairs_passed",
             "model_calls_saved", "past_fixes_served", "fixes_recorded", "few_shot_served",
             "docs_served")

CountTokens = Callable[[str], int]


class KnowledgeStore:
    """What localcode learned about one workspace, and the providers that put it in prompts."""

    def __init__(self, workspace: Workspace, config: Config | None = None,
                 index: CodeIndex | None = None, *,
                 index_provider: Callable[[], CodeIndex] | None = None,
                 max_bytes: int = DEFAULT_MAX_BYTES, enabled: bool = True,
                 directory: Path | None = None) -> None:
        self.workspace = workspace
        self.config = config
        self._index = index
        self._index_provider = index_provider
        self.enabled = enabled
        root = Path(workspace.root)
        self.root = root
        self.directory = Path(directory) if directory else root / ".localcode" / KNOWLEDGE_DIR
        self.max_bytes = int(max_bytes)
        self._lock = threading.RLock()
        self._caches = {
            name: JsonCache(self.directory / f"{name}.json", kind=name,
                            max_bytes=int(self.max_bytes * share))
            for name, share in _SHARES.items()
        }
        self.patterns = PatternLibrary(root, self._caches["patterns"], index=self._lazy_index)
        self.errors = ErrorFixCache(self._caches["errors"],
                                    resolve_workspace_import=self.resolve_workspace_import,
                                    ruff_fix=self._ruff_fix if self._trusted() else None)
        self.docs = DocsLibrary(self._caches["docs"], workspace_root=root)
        self.session: dict[str, int] = dict.fromkeys(_COUNTERS, 0)

    # --- helpers -----------------------------------------------------------------------------

    @property
    def index(self) -> CodeIndex | None:
        """The CodeIndex when one is at hand (created on demand by the engine), else None."""
        if self._index is None and self._index_provider is not None:
            try:
                self._index = self._index_provider()
            except Exception as exc:  # no index: the store mines the files itself
                log.info("knowledge store without index: %s", exc)
            self._index_provider = None
        return self._index

    def _lazy_index(self) -> CodeIndex | None:
        return self.index

    def _trusted(self) -> bool:
        return self.workspace.trusted

    def _few_shot_k(self) -> int:
        return self.config.context.few_shot_examples if self.config is not None else 3

    def _count(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self.session[name] = self.session.get(name, 0) + amount
            totals = self._caches["stats"].get("counters") or {}
            totals = {k: int(totals.get(k, 0)) for k in _COUNTERS}
            totals[name] = totals.get(name, 0) + amount
            self._caches["stats"].set("counters", totals)

    def _sync_open_documents(self) -> None:
        try:
            for rel, document in self.workspace.open_documents().items():
                if rel.endswith(".py"):
                    self.patterns.update_file(rel, document.text)
        except Exception as exc:  # the overlay is a refinement; disk patterns still serve
            log.debug("overlay sync skipped: %s", exc)

    # --- pattern library -----------------------------------------------------------------------

    def few_shot_for(self, target: Any, k: int | None = None, budget_tokens: int = 1024,
                     count_tokens: CountTokens | None = None, *, path: str = "",
                     instruction: str = "") -> list[Example]:
        """Real project code similar to `target` (never the target or its tests), best first."""
        if not self.enabled:
            return []
        self._sync_open_documents()
        examples = self.patterns.few_shot_for(
            target, self._few_shot_k() if k is None else k, budget_tokens, count_tokens,
            path=path, instruction=instruction)
        if examples:
            self._count("few_shot_served", len(examples))
        self._caches["patterns"].flush()
        return examples

    def update_document(self, path: str, text: str) -> None:
        """Re-mine one changed file (cheap when its content hash is unchanged)."""
        if self.enabled and path.endswith(".py"):
            self.patterns.update_file(path, text)

    # --- documentation fragments ---------------------------------------------------------------

    def docs_for(self, code: str, file_text: str = "", budget_tokens: int = 512,
                 count_tokens: CountTokens | None = None) -> list[Fragment]:
        """Signatures and docstrings of the library functions `code` calls."""
        if not self.enabled:
            return []
        fragments = self.docs.docs_for(code, file_text, budget_tokens, count_tokens)
        if fragments:
            self._count("docs_served", len(fragments))
        return fragments

    # --- error -> fix cache ------------------------------------------------------------------

    def resolve_workspace_import(self, name: str) -> str | None:
        """`from pkg.mod import name` for a unique top-level workspace definition of `name`."""
        found: list[str] = []
        index = self.index
        if index is not None:
            try:
                for symbol in index.find_symbol(name):
                    path = symbol.path
                    if path.endswith(".py") and symbol.qualified_name == name \
                            and not is_test_path(path):
                        found.append(path)
            except Exception as exc:  # fall back to the pattern library's own table
                log.debug("index lookup of %s failed: %s", name, exc)
        if not found:
            self.patterns.refresh()
            found = [rel for rel, _ in self.patterns.top_level_definitions(name)]
        modules = sorted({module_name_for(rel, self.root) for rel in found} - {""})
        if len(modules) != 1:
            return None  # unknown or ambiguous: the model decides
        return f"from {modules[0]} import {name}"

    def _ruff_fix(self, text: str, filename: str, codes: Sequence[str] = ()) -> str | None:
        """`ruff check --fix-only` on `text` through the verify sandbox (safe fixes only): the
        project's rules when it configures ruff, else only `codes` (the rules that failed)."""
        from ..verify.lint import has_ruff_config
        from ..verify.sandbox import run_sandboxed

        if has_ruff_config(self.root, filename):
            rules: list[str] = []
        elif codes:
            rules = ["--select", ",".join(codes)]
        else:
            return None
        ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
        argv = [ruff, "check", "--fix-only", "--exit-zero", "--quiet", *rules,
                "--stdin-filename", filename, "-"]
        result = run_sandboxed(argv, self.root, timeout=15.0, stdin_text=text)
        if not result.ok or not result.stdout.strip():
            return None
        return result.stdout

    def try_repair(self, file_text: str, feedback: list[str], *, path: str = "") -> Repair | None:
        """A model-free repair of `file_text` for `feedback` (None when none applies).

        Counted as a consulted retry: a repair or a past fix is a hit, nothing is a miss.
        Call `repair_outcome` once the repaired candidate was verified.
        """
        if not self.enabled or not feedback:
            return None
        self._count("retries_consulted")
        try:
            repair = self.errors.try_repair(file_text, list(feedback),
                                            filename=path or "candidate.py")
        except Exception as exc:  # a repair bug must never cost the retry itself
            log.warning("knowledge repair failed: %s", exc)
            repair = None
        if repair is not None:
            self._count("hits")
            self._count("repairs_proposed")
        return repair

    def repair_outcome(self, passed: bool, *, calls_saved: int = 1) -> None:
        """Record whether a repaired candidate passed verification (it then saved model calls)."""
        if passed:
            self._count("repairs_passed")
            self._count("model_calls_saved", calls_saved)
        self.flush()

    def feedback_for(self, feedback: list[str], file_text: str, *, repaired: bool = False,
                     limit: int = 2) -> list[str]:
        """The closest past fixes as extra `feedback` lines for the retry prompt."""
        if not self.enabled or not feedback:
            return []
        try:
            lines = self.errors.feedback_examples(list(feedback), file_text, limit)
        except Exception as exc:  # examples are optional
            log.warning("knowledge past-fix lookup failed: %s", exc)
            lines = []
        if lines:
            self._count("past_fixes_served")
            if not repaired:
                self._count("hits")
        elif not repaired:
            self._count("misses")
        self.flush()
        return lines

    def record_fix(self, failing_text: str, feedback: list[str], fixed_text: str) -> list[str]:
        """File a verified retry (failing text, its feedback, the passing text) for next time."""
        if not self.enabled:
            return []
        try:
            signatures = self.errors.record_fix(failing_text, list(feedback), fixed_text)
        except Exception as exc:  # learning is optional
            log.warning("knowledge record_fix failed: %s", exc)
            return []
        if signatures:
            self._count("fixes_recorded")
        self.flush()
        return signatures

    # --- providers for the pipeline's context --------------------------------------------------

    def providers(self) -> list[ContextProvider]:
        """The few-shot and docs context providers that put this store into prompts."""
        from .providers import DocsProvider, FewShotProvider

        return [FewShotProvider(self), DocsProvider(self)]

    # --- reporting and lifetime ------------------------------------------------------------------

    def size_bytes(self) -> int:
        total = 0
        if self.directory.is_dir():
            for path in self.directory.iterdir():
                try:
                    total += path.stat().st_size
                except OSError:
                    continue
        return total

    def stats(self) -> dict[str, Any]:
        """Counters (persisted totals and this session), sizes and entry counts, JSON-able."""
        with self._lock:
            totals = self._caches["stats"].get("counters", touch=False) or {}
            totals = {k: int(totals.get(k, 0)) for k in _COUNTERS}
            consulted = totals["hits"] + totals["misses"]
            return {
                "enabled": self.enabled,
                "directory": str(self.directory),
                "size_bytes": self.size_bytes(),
                "max_bytes": self.max_bytes,
                "totals": totals,
                "session": dict(self.session),
                "hit_rate": round(totals["hits"] / consulted, 3) if consulted else None,
                "entries": {
                    "pattern_files": len(self._caches["patterns"]),
                    "error_signatures": sum(1 for k in self._caches["errors"].keys()
                                            if k.startswith("sig:")),
                    "learned_imports": sum(1 for k in self._caches["errors"].keys()
                                           if k.startswith("import:")),
                    "doc_modules": len(self._caches["docs"]),
                },
                "evictions": sum(c.evictions for c in self._caches.values()),
                "rebuilt": sorted(name for name, c in self._caches.items() if c.rebuilt),
            }

    def session_report(self) -> dict[str, Any]:
        """What a run reports (`result.stats["knowledge"]`): this session's counters, the hit
        rate over all sessions and the store's size on disk."""
        stats = self.stats()
        return {"session": stats["session"], "hit_rate": stats["hit_rate"],
                "size_bytes": stats["size_bytes"]}

    def flush(self) -> None:
        for cache in self._caches.values():
            cache.flush()

    def close(self) -> None:
        """Write whatever changed; the store stays usable (caches reload lazily)."""
        self.flush()
