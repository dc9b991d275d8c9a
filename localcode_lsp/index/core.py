"""`CodeIndex`: the AST index, dependency graph and embedding index of one workspace.

The facade every caller uses: which files it holds (built from discovery, the AST cache and the
editor's overlay), what an edit invalidates, the queries (symbols, the enclosing function,
`find_symbol`, the graph) and hybrid search. didOpen/didChange call `update_document`, which
edits the file's tree incrementally and re-derives its symbols (`records.py`); embeddings are
refreshed on a background worker (debounced, `embedding.py`) and never block. Everything
persistent lives under `<root>/.localcode/index/` and is a cache (`persistence.py`): a schema
mismatch or a damaged file means a rebuild with one log line.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from ..cancel import CancelToken
from ..config import Config
from ..logs import get_logger
from ..workspace import OutsideWorkspace, Workspace
from .chunks import BM25, Chunk
from .discovery import discover
from .embedding import EMBED_DEBOUNCE_SECONDS, EmbeddingWorker, Progress, sync_embeddings
from .facts import Import
from .graph import DependencyGraph, TestRef, key_of, module_names
from .languages import ParserCache, is_test_path, language_for_path
from .persistence import IndexDirectory
from .queries import Queries
from .records import FileRecord, parse_record
from .search import SearchHit, fuse
from .store import Embedder, EmbeddingModelError, VectorStore, resolve_embedding_model
from .symbols import Symbol, enclosing_function, encode_source, innermost

log = get_logger("index")


@dataclass
class IndexStats:
    """What a build did (and what the index holds)."""

    files: int = 0
    symbols: int = 0
    chunks: int = 0
    skipped_binary: int = 0
    skipped_large: int = 0
    embedded_now: int = 0
    embedded_reused: int = 0
    seconds: float = 0.0
    parsed_now: int = 0
    parsed_cached: int = 0
    deleted_files: int = 0
    table_rows: int = 0
    rebuilt: bool = False
    embeddings: bool = True

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class CodeIndex:
    """AST index + dependency graph + embedding index for one workspace."""

    def __init__(self, workspace: Workspace, config: Config, *,
                 background_embeddings: bool = True,
                 debounce_seconds: float = EMBED_DEBOUNCE_SECONDS,
                 embed_threads: Callable[[], int] | None = None) -> None:
        self.workspace = workspace
        self.config = config
        self.directory = workspace.state_dir / "index"
        self.background_embeddings = background_embeddings
        # torch threads per encode call (0 = torch's default, one per core); the engine answers
        # 1 while a model shares the process, so embedding never takes the model's cores
        self._embed_threads = embed_threads or (lambda: 0)
        self._parsers = ParserCache()
        self._queries = Queries(self._parsers)
        self._lock = threading.RLock()
        self._files: dict[str, FileRecord] = {}
        self._graph: DependencyGraph | None = None
        self._built = False
        self._disk = IndexDirectory(self.directory)
        self._keyword = BM25()
        self._keyword_dirty: set[str] = set()
        self._store: VectorStore | None = None
        self._embedder: Embedder | None = None
        self._embedding_error: str = ""
        self._last_stats = IndexStats()
        self._worker = EmbeddingWorker(lambda paths: self._sync_embeddings(paths, None),
                                       self._embedding_disabled, debounce_seconds)

    def _ensure_schema(self) -> None:
        if self._disk.ensure_schema(self.config.index.embedding_model):
            self._last_stats.rebuilt = True

    # --- the files the index holds ---------------------------------------------------------

    def _record(self, path: str) -> FileRecord:
        """The record of one file, parsed on demand (overlay text first, then disk)."""
        with self._lock:
            record = self._files.get(path)
            if record is not None:
                return record
        document = self.workspace.document(path)
        if document is not None:
            source = encode_source(document.text)
            record = parse_record(path, source, len(source), 0, self._parsers, self._queries,
                                  keep_tree=True, from_overlay=True)
        else:
            full = self.workspace.resolve(path)
            source = full.read_bytes()
            stat = full.stat()
            record = parse_record(path, source, stat.st_size, stat.st_mtime_ns, self._parsers,
                                  self._queries, keep_tree=False)
        with self._lock:
            return self._files.setdefault(path, record)

    def _relative(self, path: str) -> str:
        try:
            return self.workspace.relative(path)
        except OutsideWorkspace:
            raise
        except Exception:
            return path

    # --- build -----------------------------------------------------------------------------

    def build(self, progress: Progress | None = None, *, embeddings: bool = True,
              cancel: CancelToken | None = None) -> IndexStats:
        """Bring the index up to date with the workspace (incremental: unchanged files come from
        the AST cache, unchanged chunks keep their vectors)."""
        started = time.perf_counter()
        stats = IndexStats(embeddings=embeddings)
        with self._lock:
            self._ensure_schema()
            stats.rebuilt = self._last_stats.rebuilt
            self._disk.load_ast_cache()
        found = discover(self.workspace.root, self.config.index.max_file_bytes)
        stats.skipped_binary, stats.skipped_large = found.skipped_binary, found.skipped_large
        overlay = self.workspace.open_documents()
        total = len(found.files)
        seen: set[str] = set()
        for number, entry in enumerate(found.files, start=1):
            if cancel is not None:
                cancel.raise_if_cancelled()
            seen.add(entry.path)
            if progress is not None:
                progress(number, total, entry.path)
            with self._lock:
                existing = self._files.get(entry.path)
            if existing is not None and (existing.from_overlay or (
                    existing.size == entry.size and existing.mtime_ns == entry.mtime_ns)):
                if entry.path not in overlay and existing.from_overlay:
                    pass  # closed since: reread below
                else:
                    continue
            try:
                source = (self.workspace.root / entry.path).read_bytes()
            except OSError as exc:
                log.info("skipped unreadable %s: %s", entry.path, exc)
                continue
            record = self._disk.cached_record(entry.path, entry.size, entry.mtime_ns, source)
            if record is None:
                record = parse_record(entry.path, source, entry.size, entry.mtime_ns,
                                      self._parsers, self._queries, keep_tree=False)
                stats.parsed_now += 1
            else:
                stats.parsed_cached += 1
            with self._lock:
                self._files[entry.path] = record
                self._mark_changed(entry.path)
        with self._lock:
            for path in list(self._files):
                if path not in seen and path not in overlay:
                    del self._files[path]
                    self._mark_changed(path)
                    stats.deleted_files += 1
            if stats.parsed_now or stats.deleted_files or not self._disk.ast_cache_file.exists():
                self._disk.save_ast_cache(self._files.values())
            self._built = True
            stats.files = len(self._files)
            stats.symbols = sum(len(r.symbols) for r in self._files.values())
        if embeddings:
            self._sync_embeddings(None, stats, progress, cancel)
            stats.table_rows = self._vector_store().count_rows()
            with self._lock:
                stats.chunks = sum(len(r.search_chunks()) for r in self._files.values())
        # without embeddings, chunks are cut lazily (keyword search): not counted here
        stats.seconds = time.perf_counter() - started
        self._last_stats = stats
        log.info("index built: %d files, %d symbols, %d chunks, %d embedded, %d reused, %.2f s",
                 stats.files, stats.symbols, stats.chunks, stats.embedded_now,
                 stats.embedded_reused, stats.seconds)
        return stats

    def _ensure_built(self) -> None:
        if not self._built:
            self.build(embeddings=False)

    def _mark_changed(self, path: str) -> None:
        self._graph = None
        self._keyword_dirty.add(path)

    # --- documents -------------------------------------------------------------------------

    def update_document(self, rel_path: str, text: str) -> None:
        """The editor's new text for a file: incremental tree edit + symbol re-derivation now,
        embedding refresh later on the background worker."""
        path = self._relative(rel_path)
        source = encode_source(text)
        with self._lock:
            record = self._files.get(path)
            if record is not None and (record.parsed is not None or (
                    language_for_path(path) is not None and record.language is not None)):
                if record.retext(source, self._parsers, self._queries):
                    self._edited(record)
                return
            record = parse_record(path, source, len(source), 0, self._parsers, self._queries,
                                  keep_tree=True, from_overlay=True)
            self._files[path] = record
            self._mark_changed(path)
        self._schedule_embedding(path)

    def apply_edit(self, rel_path: str, start_byte: int, old_end_byte: int, new_end_byte: int,
                   new_text: str, start_point: tuple[int, int] | None = None,
                   old_end_point: tuple[int, int] | None = None,
                   new_end_point: tuple[int, int] | None = None) -> None:
        """Apply one known edit: bytes [start_byte, old_end_byte) of the current text are
        replaced by `new_text` (which must be new_end_byte - start_byte bytes long)."""
        path = self._relative(rel_path)
        replacement = encode_source(new_text)
        if start_byte + len(replacement) != new_end_byte:
            raise ValueError(f"new_text is {len(replacement)} bytes, but the edit says "
                             f"{new_end_byte - start_byte}")
        with self._lock:
            record = self._files.get(path)
            if record is not None and record.parsed is not None:
                record.apply_edit(start_byte, old_end_byte, new_end_byte, replacement,
                                  start_point, old_end_point, new_end_point)
                self._edited(record)
                return
            old = record.source if record is not None else self._record(path).source
            new_source = old[:start_byte] + replacement + old[old_end_byte:]
        self.update_document(path, new_source.decode("utf-8", errors="replace"))

    def _edited(self, record: FileRecord) -> None:
        """An edit changed `record`: the graph and keyword index are stale, its vectors too."""
        self._mark_changed(record.path)
        self._schedule_embedding(record.path)

    # --- queries ---------------------------------------------------------------------------

    def symbols(self, rel_path: str) -> list[Symbol]:
        """Functions, methods and classes of one file, in source order."""
        return list(self._record(self._relative(rel_path)).symbols)

    def enclosing_function(self, rel_path: str, line: int, column: int) -> Symbol | None:
        """The innermost function or method containing (line, column) (0-based; column in code
        points) of the file as the editor has it, or None at module level. The Symbol carries
        the qualified name ("Worker.run"), `line_range` and `is_stub`."""
        record = self._record(self._relative(rel_path))
        with self._lock:
            source, symbols, starts = record.source, record.symbols, record.starts()
        return enclosing_function(symbols, source, line, column, starts=starts)

    def enclosing_symbol(self, rel_path: str, line: int, column: int) -> Symbol | None:
        """Like `enclosing_function`, classes included."""
        record = self._record(self._relative(rel_path))
        with self._lock:
            offset = record.byte_offset(line, column)
        if offset is None:
            return None
        return innermost(record.symbols, offset) if offset < len(record.source) else None

    def find_symbol(self, name_or_qualified: str, path: str | None = None) -> list[Symbol]:
        """Symbols named `name`, `Class.method`, `pkg.mod.func` or `path.py:Class.method`."""
        self._ensure_built()
        wanted = name_or_qualified.strip()
        file_part = None
        if ":" in wanted:
            file_part, wanted = wanted.rsplit(":", 1)
        with self._lock:
            records = list(self._files.values())
        if path is not None:
            records = [self._record(self._relative(path))]
        exact: list[Symbol] = []
        by_name: list[Symbol] = []
        for record in records:
            if file_part and record.path != file_part and file_part not in module_names(record.path):
                continue
            modules = module_names(record.path) if "." in wanted else []
            for symbol in record.symbols:
                if symbol.qualified_name == wanted or any(
                        f"{m}.{symbol.qualified_name}" == wanted for m in modules):
                    exact.append(symbol)
                elif symbol.name == wanted:
                    by_name.append(symbol)
        found = exact or by_name
        found.sort(key=lambda s: (is_test_path(s.path), s.path, s.start_line))
        return found

    def imports(self, rel_path: str) -> list[Import]:
        record = self._record(self._relative(rel_path))
        with self._lock:
            return list(record.current_facts().imports)

    def graph(self) -> DependencyGraph:
        """The dependency graph, rebuilt lazily after any change."""
        self._ensure_built()
        with self._lock:
            if self._graph is None:
                symbols = {p: r.symbols for p, r in self._files.items()}
                facts = {p: r.current_facts() for p, r in self._files.items()}
                self._graph = DependencyGraph(symbols, facts)
            return self._graph

    def callees(self, symbol: Symbol) -> list[Symbol]:
        """Workspace symbols `symbol` calls."""
        return list(self.graph().callees_of.get(key_of(symbol), []))

    def callers(self, symbol: Symbol) -> list[Symbol]:
        """Workspace functions that call `symbol`."""
        return list(self.graph().callers_of.get(key_of(symbol), []))

    def tests_of(self, symbol: Symbol) -> list[TestRef]:
        """pytest tests that call, import or are named after `symbol` (best first)."""
        return self.graph().tests_of(symbol)

    def resolve_module(self, module: str) -> str | None:
        """The workspace file of a dotted Python module name."""
        return self.graph().resolve_module(module)

    # --- chunks and search -----------------------------------------------------------------

    def chunks(self, rel_path: str) -> list[Chunk]:
        record = self._record(self._relative(rel_path))
        with self._lock:
            return list(record.search_chunks())

    def _refresh_keyword(self) -> None:
        with self._lock:
            if not self._keyword_dirty:
                return
            for path in self._keyword_dirty:
                record = self._files.get(path)
                self._keyword.set_path(path, record.search_chunks() if record else [])
            self._keyword_dirty.clear()

    def _chunk_by_id(self) -> dict[str, Chunk]:
        with self._lock:
            return {c.id: c for r in self._files.values() for c in r.search_chunks()}

    def search(self, query: str, k: int = 8) -> list[SearchHit]:
        """Hybrid search: vector (cosine) and keyword (BM25) rankings fused by reciprocal rank."""
        if not query.strip() or k <= 0:
            return []
        self._ensure_built()
        self._refresh_keyword()
        depth = max(k * 4, 20)
        keyword = self._keyword.search(query, depth)
        vector_rows: list[dict[str, Any]] = []
        store = self._vector_store()
        if store.count_rows() and not self._embedding_error:
            try:
                vector = self._get_embedder().encode([query], threads=self._embed_threads())[0]
                vector_rows = store.search(vector, depth)
            except EmbeddingModelError as exc:
                self._embedding_disabled(exc)
        return fuse(vector_rows, keyword, self._chunk_by_id(), self._files, k)

    # --- embeddings ------------------------------------------------------------------------

    def _vector_store(self) -> VectorStore:
        with self._lock:
            if self._store is None:
                self._ensure_schema()
                self._store = VectorStore(self.directory / "lancedb")
                self._store.open()
            return self._store

    def _get_embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                model_dir = resolve_embedding_model(self.config.index.embedding_model,
                                                    self.workspace.root)
                self._embedder = Embedder(model_dir)
            return self._embedder

    def _embedding_disabled(self, exc: Exception) -> None:
        if not self._embedding_error:
            log.warning("embeddings disabled: %s", exc)
        self._embedding_error = str(exc)

    def _sync_embeddings(self, paths: list[str] | None, stats: IndexStats | None,
                         progress: Progress | None = None,
                         cancel: CancelToken | None = None) -> tuple[int, int]:
        """Make the lancedb rows of `paths` (None = every file) match their current chunks.
        Returns (embedded now, reused)."""
        store = self._vector_store()
        with self._lock:
            targets = list(self._files) if paths is None else list(paths)
            wanted: dict[str, list[Chunk]] = {}
            for path in targets:
                record = self._files.get(path)
                wanted[path] = record.search_chunks() if record is not None else []
            if paths is None:
                for path in store.paths() - set(self._files):
                    wanted[path] = []
        embedded, reused = sync_embeddings(store, wanted, self._get_embedder,
                                           self._embed_threads, progress, cancel)
        if stats is not None:
            stats.embedded_now += embedded
            stats.embedded_reused += reused
            stats.rebuilt = stats.rebuilt or store.rebuilt
        return embedded, reused

    def _schedule_embedding(self, path: str) -> None:
        if not self.background_embeddings or self._embedding_error:
            return
        self._worker.schedule(path)

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Block until the background worker has nothing pending (tests, shutdown)."""
        return self._worker.wait_idle(timeout)

    # --- lifecycle -------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Current sizes plus the last build's numbers."""
        with self._lock:
            current = {
                "files": len(self._files),
                "symbols": sum(len(r.symbols) for r in self._files.values()),
                "pending_embeddings": self._worker.pending,
                "embedding_error": self._embedding_error,
                "embedder_loaded": bool(self._embedder and self._embedder.loaded),
                "table_rows": self._store.count_rows() if self._store is not None else None,
            }
        return {"last_build": self._last_stats.as_dict(), **current}

    def close(self) -> None:
        """Stop the worker (pending embeddings are flushed if the model is loaded, else left to
        the next build, which finds them by content hash) and release the table."""
        pending = self._worker.stop()
        if pending and self._embedder is not None and self._embedder.loaded:
            try:
                self._sync_embeddings(pending, None)
            except Exception as exc:
                log.info("pending embeddings not flushed at close: %s", exc)
        with self._lock:
            if self._store is not None:
                self._store.compact()
