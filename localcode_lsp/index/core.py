"""`CodeIndex`: the AST index, dependency graph and embedding index of one workspace.

didOpen/didChange call `update_document`, which edits the file's tree incrementally and
re-derives its symbols; embeddings are refreshed on a background worker (debounced) and never
block. Everything persistent lives under `<root>/.localcode/index/` and is a cache: a schema
mismatch or a damaged file means a rebuild with one log line.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..cancel import CancelToken
from ..config import Config
from ..logs import get_logger
from ..workspace import OutsideWorkspace, Workspace
from .chunks import BM25, Chunk, chunk_file
from .discovery import discover
from .graph import DependencyGraph, TestRef, key_of, module_names
from .languages import (
    SYMBOL_LANGUAGES,
    ParserCache,
    is_pytest_file,
    is_test_path,
    language_for_path,
)
from .parsed import ByteEdit, ParsedFile, _point
from .store import Embedder, EmbeddingModelError, VectorStore, resolve_embedding_model
from .symbols import (
    FileFacts,
    Import,
    Queries,
    Symbol,
    byte_offset,
    enclosing_function,
    encode_source,
    innermost,
    line_starts,
)

log = get_logger("index")

SCHEMA_VERSION = 1
EMBED_DEBOUNCE_SECONDS = 0.75
EMBED_BATCH = 64
WRITE_BATCH_FILES = 64
RRF_K = 60

Progress = Callable[[int, int, str], None]


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


@dataclass(frozen=True)
class SearchHit:
    """One ranked chunk: where it is, its text, and how each retriever scored it."""

    path: str
    start_line: int
    end_line: int
    symbol: str
    text: str
    score: float  # fused (reciprocal rank fusion)
    vector_score: float | None  # cosine similarity, None when the vector side did not find it
    keyword_score: float | None  # BM25, None when the keyword side did not find it
    kind: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _FileRecord:
    path: str
    language: str | None
    size: int
    mtime_ns: int
    source: bytes
    symbols: list[Symbol] = field(default_factory=list)
    facts: FileFacts | None = None
    parsed: ParsedFile | None = None
    from_overlay: bool = False
    chunks: list[Chunk] | None = None
    line_starts: list[int] | None = None

    def current_facts(self) -> FileFacts:
        if self.parsed is not None:
            return self.parsed.facts()
        return self.facts or FileFacts()


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
        self.debounce_seconds = debounce_seconds
        # torch threads per encode call (0 = torch's default, one per core); the engine answers
        # 1 while a model shares the process, so embedding never takes the model's cores
        self._embed_threads = embed_threads or (lambda: 0)
        self._parsers = ParserCache()
        self._queries = Queries(self._parsers)
        self._lock = threading.RLock()
        self._files: dict[str, _FileRecord] = {}
        self._graph: DependencyGraph | None = None
        self._built = False
        self._cache_loaded = False
        self._cache: dict[str, Any] = {}
        self._schema_checked = False
        self._keyword = BM25()
        self._keyword_dirty: set[str] = set()
        self._keyword_paths: set[str] = set()
        self._store: VectorStore | None = None
        self._embedder: Embedder | None = None
        self._embedding_error: str = ""
        self._last_stats = IndexStats()
        # background embedding worker
        self._pending: dict[str, float] = {}
        self._cond = threading.Condition()
        self._worker: threading.Thread | None = None
        self._stopping = False
        self._busy = False

    # --- persistence -----------------------------------------------------------------------

    @property
    def _schema_file(self) -> Path:
        return self.directory / "schema.json"

    @property
    def _ast_cache_file(self) -> Path:
        return self.directory / "ast_cache.json"

    def _schema(self) -> dict[str, Any]:
        return {"version": SCHEMA_VERSION, "embedding_model": self.config.index.embedding_model}

    def _ensure_schema(self) -> None:
        if self._schema_checked:
            return
        self._schema_checked = True
        wanted = self._schema()
        found: Any = None
        if self._schema_file.exists():
            try:
                found = json.loads(self._schema_file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                found = "unreadable"
        if found is not None and found != wanted:
            log.warning("index schema changed (%s -> %s): rebuilding %s", found, wanted,
                        self.directory)
            shutil.rmtree(self.directory, ignore_errors=True)
            self._last_stats.rebuilt = True
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._schema_file.write_text(json.dumps(wanted), encoding="utf-8")
        except OSError as exc:
            log.warning("cannot write the index directory %s: %s", self.directory, exc)

    def _load_ast_cache(self) -> None:
        if self._cache_loaded:
            return
        self._cache_loaded = True
        if not self._ast_cache_file.exists():
            return
        try:
            data = json.loads(self._ast_cache_file.read_text(encoding="utf-8"))
            if data.get("version") != SCHEMA_VERSION:
                raise ValueError(f"version {data.get('version')}")
            self._cache = data["files"]
            if not isinstance(self._cache, dict):
                raise ValueError("files is not a table")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("AST cache %s is unreadable (%s): rebuilding it", self._ast_cache_file,
                        exc)
            self._cache = {}

    def _save_ast_cache(self) -> None:
        entries = {}
        for record in self._files.values():
            if record.from_overlay:
                previous = self._cache.get(record.path)
                if previous is not None:
                    entries[record.path] = previous
                continue
            entries[record.path] = {
                "size": record.size,
                "mtime_ns": record.mtime_ns,
                "language": record.language,
                "symbols": [list(vars(s).values()) for s in record.symbols],
                "facts": record.current_facts().to_dict(),
            }
        self._cache = entries
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            temporary = self._ast_cache_file.with_suffix(".tmp")
            temporary.write_text(json.dumps({"version": SCHEMA_VERSION, "files": entries},
                                            separators=(",", ":")), encoding="utf-8")
            temporary.replace(self._ast_cache_file)
        except OSError as exc:
            log.warning("cannot write the AST cache %s: %s", self._ast_cache_file, exc)

    def _record_from_cache(self, path: str, size: int, mtime_ns: int,
                           source: bytes) -> _FileRecord | None:
        entry = self._cache.get(path)
        if not isinstance(entry, dict) or entry.get("size") != size \
                or entry.get("mtime_ns") != mtime_ns:
            return None
        try:
            symbols = [Symbol(*row) for row in entry["symbols"]]
            facts = FileFacts.from_dict(entry["facts"])
        except (TypeError, KeyError, ValueError):
            return None
        return _FileRecord(path, entry.get("language"), size, mtime_ns, source, symbols, facts)

    # --- parsing ---------------------------------------------------------------------------

    def _parse_record(self, path: str, source: bytes, size: int, mtime_ns: int,
                      *, keep_tree: bool, from_overlay: bool = False) -> _FileRecord:
        language = language_for_path(path)
        record = _FileRecord(path, language, size, mtime_ns, source, from_overlay=from_overlay)
        if language is None:
            return record
        try:
            parsed = ParsedFile(path, language, source, self._parsers, self._queries,
                                with_names=is_pytest_file(path))
        except ValueError as exc:  # no grammar for this language in the pack
            log.debug("not parsed: %s (%s)", path, exc)
            record.language = None
            return record
        record.symbols = parsed.symbols
        if language in SYMBOL_LANGUAGES:
            record.facts = parsed.facts()
        if keep_tree:
            record.parsed = parsed
        return record

    def _record(self, path: str) -> _FileRecord:
        """The record of one file, parsed on demand (overlay text first, then disk)."""
        with self._lock:
            record = self._files.get(path)
            if record is not None:
                return record
        document = self.workspace.document(path)
        if document is not None:
            source = encode_source(document.text)
            record = self._parse_record(path, source, len(source), 0, keep_tree=True,
                                        from_overlay=True)
        else:
            full = self.workspace.resolve(path)
            source = full.read_bytes()
            stat = full.stat()
            record = self._parse_record(path, source, stat.st_size, stat.st_mtime_ns,
                                        keep_tree=False)
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
            self._load_ast_cache()
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
            record = self._record_from_cache(entry.path, entry.size, entry.mtime_ns, source)
            if record is None:
                record = self._parse_record(entry.path, source, entry.size, entry.mtime_ns,
                                            keep_tree=False)
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
            if stats.parsed_now or stats.deleted_files or not self._ast_cache_file.exists():
                self._save_ast_cache()
            self._built = True
            stats.files = len(self._files)
            stats.symbols = sum(len(r.symbols) for r in self._files.values())
        if embeddings:
            self._sync_embeddings(None, stats, progress, cancel)
            stats.table_rows = self._vector_store().count_rows()
            with self._lock:
                stats.chunks = sum(len(self._chunks(r)) for r in self._files.values())
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
            if record is not None and record.parsed is not None:
                if record.parsed.replace_text(source):
                    self._after_edit(record, source)
                return
            language = language_for_path(path)
            if record is not None and language is not None and record.source is not None \
                    and record.language is not None:
                # known file without a tree yet: parse its previous text, then edit
                parsed = ParsedFile(path, record.language, record.source, self._parsers,
                                    self._queries, with_names=is_pytest_file(path))
                record.parsed = parsed
                if parsed.replace_text(source):
                    self._after_edit(record, source)
                else:
                    record.from_overlay = True
                return
            record = self._parse_record(path, source, len(source), 0, keep_tree=True,
                                        from_overlay=True)
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
            if record is None or record.parsed is None:
                old = record.source if record is not None else self._record(path).source
                new_source = old[:start_byte] + replacement + old[old_end_byte:]
            else:
                old = record.source
                if not 0 <= start_byte <= old_end_byte <= len(old):
                    raise ValueError(f"edit range {start_byte}..{old_end_byte} is outside "
                                     f"the {len(old)}-byte document {path}")
                new_source = old[:start_byte] + replacement + old[old_end_byte:]
                edit = ByteEdit(start_byte, old_end_byte, new_end_byte,
                                start_point or _point(old, start_byte),
                                old_end_point or _point(old, old_end_byte),
                                new_end_point or _point(new_source, new_end_byte))
                record.parsed.apply_edit(edit, new_source)
                self._after_edit(record, new_source)
                self._schedule_embedding(path)
                return
        self.update_document(path, new_source.decode("utf-8", errors="replace"))

    def _after_edit(self, record: _FileRecord, source: bytes) -> None:
        assert record.parsed is not None
        record.source = source
        record.size = len(source)
        record.symbols = record.parsed.symbols
        record.facts = None
        record.from_overlay = True
        record.chunks = None
        record.line_starts = None
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
            if record.line_starts is None:
                record.line_starts = line_starts(record.source)
            source, symbols, starts = record.source, record.symbols, record.line_starts
        return enclosing_function(symbols, source, line, column, starts=starts)

    def enclosing_symbol(self, rel_path: str, line: int, column: int) -> Symbol | None:
        """Like `enclosing_function`, classes included."""
        record = self._record(self._relative(rel_path))
        with self._lock:
            offset = self._byte_offset(record, line, column)
        if offset is None:
            return None
        return innermost(record.symbols, offset) if offset < len(record.source) else None

    @staticmethod
    def _byte_offset(record: _FileRecord, line: int, column: int) -> int | None:
        if record.line_starts is None:
            record.line_starts = line_starts(record.source)
        return byte_offset(record.source, line, column, record.line_starts)

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

    # --- chunks and keyword search ---------------------------------------------------------

    def _chunks(self, record: _FileRecord) -> list[Chunk]:
        if record.chunks is None:
            text = record.source.decode("utf-8", errors="replace")
            record.chunks = chunk_file(record.path, text, record.symbols, record.language) \
                if record.language is not None else []
        return record.chunks

    def chunks(self, rel_path: str) -> list[Chunk]:
        record = self._record(self._relative(rel_path))
        with self._lock:
            return list(self._chunks(record))

    def _refresh_keyword(self) -> None:
        with self._lock:
            if not self._keyword_dirty:
                return
            for path in self._keyword_dirty:
                record = self._files.get(path)
                self._keyword.set_path(path, self._chunks(record) if record else [])
            self._keyword_dirty.clear()

    def _chunk_by_id(self) -> dict[str, Chunk]:
        with self._lock:
            return {c.id: c for r in self._files.values() for c in self._chunks(r)}

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
        chunks = self._chunk_by_id()
        fused: dict[str, float] = {}
        vector_scores: dict[str, float] = {}
        keyword_scores: dict[str, float] = {}
        rows: dict[str, dict[str, Any]] = {}
        for rank, row in enumerate(vector_rows):
            row_id = row["id"]
            if row_id not in chunks and row["path"] in self._files and \
                    self._files[row["path"]].chunks is not None:
                continue  # a chunk that no longer exists (edited since it was embedded)
            rows[row_id] = row
            vector_scores[row_id] = 1.0 - float(row.get("_distance", 1.0))
            fused[row_id] = fused.get(row_id, 0.0) + 1.0 / (RRF_K + rank + 1)
        for rank, (row_id, score) in enumerate(keyword):
            keyword_scores[row_id] = score
            fused[row_id] = fused.get(row_id, 0.0) + 1.0 / (RRF_K + rank + 1)
        hits = []
        for row_id, score in sorted(fused.items(), key=lambda item: -item[1])[:k]:
            chunk = chunks.get(row_id)
            if chunk is not None:
                path, start, end, symbol, text, kind = (chunk.path, chunk.start_line,
                                                        chunk.end_line, chunk.symbol, chunk.text,
                                                        chunk.kind)
            else:
                row = rows[row_id]
                path, start, end, symbol, text, kind = (row["path"], row["start_line"],
                                                        row["end_line"], row["symbol"],
                                                        row["text"], row["kind"])
            hits.append(SearchHit(path, start, end, symbol, text, score,
                                  vector_scores.get(row_id), keyword_scores.get(row_id), kind))
        return hits

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
                wanted[path] = self._chunks(record) if record is not None else []
            if paths is None:
                for path in store.paths() - set(self._files):
                    wanted[path] = []
        changed = {p: chunks for p, chunks in wanted.items()
                   if {c.id for c in chunks} != store.ids(p)}
        missing: dict[str, str] = {}
        reused = 0
        for chunks in wanted.values():
            for chunk in chunks:
                if store.vector(chunk.content_hash) is None:
                    missing.setdefault(chunk.content_hash, chunk.embedding_text)
                else:
                    reused += 1
        embedded = 0
        vectors: dict[str, Any] = {}
        if missing:
            embedder = self._get_embedder()
            # similar lengths batched together: a batch is padded to its longest text
            items = sorted(missing.items(), key=lambda item: len(item[1]))
            for start in range(0, len(items), EMBED_BATCH):
                if cancel is not None:
                    cancel.raise_if_cancelled()
                batch = items[start:start + EMBED_BATCH]
                matrix = embedder.encode([text for _, text in batch],
                                         threads=self._embed_threads())
                for (digest, _), vector in zip(batch, matrix, strict=True):
                    vectors[digest] = vector
                embedded += len(batch)
                if progress is not None:
                    progress(embedded, len(items), "embedding")
        paths_changed = list(changed)
        for start in range(0, len(paths_changed), WRITE_BATCH_FILES):
            batch_paths = paths_changed[start:start + WRITE_BATCH_FILES]
            store.write({p: changed[p] for p in batch_paths}, vectors)
        if len(paths_changed) > WRITE_BATCH_FILES:
            store.compact()
        if stats is not None:
            stats.embedded_now += embedded
            stats.embedded_reused += reused
            stats.rebuilt = stats.rebuilt or store.rebuilt
        return embedded, reused

    def _schedule_embedding(self, path: str) -> None:
        if not self.background_embeddings or self._embedding_error:
            return
        with self._cond:
            if self._stopping:
                return
            self._pending[path] = time.monotonic() + self.debounce_seconds
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._worker_loop,
                                                name="localcode-index-embed", daemon=True)
                self._worker.start()
            self._cond.notify()

    def _worker_loop(self) -> None:
        # The worker ends once nothing is pending and a new one starts with the next edit. A
        # thread that ran torch keeps an OpenMP thread pool for as long as it lives, and torch
        # and llama.cpp share one libgomp: with more pooled threads than cores, libgomp stops
        # spinning at barriers and every llama.cpp graph node pays a futex wake-up (measured:
        # generation at 26 instead of 42 tokens/s on 2 cores while an idle worker was alive).
        while True:
            with self._cond:
                while not self._stopping:
                    now = time.monotonic()
                    due = [p for p, at in self._pending.items() if at <= now]
                    if due:
                        break
                    if not self._pending:
                        self._worker = None
                        return
                    self._cond.wait(min(self._pending.values()) - now)
                if self._stopping:
                    return
                for path in due:
                    del self._pending[path]
                self._busy = True
            try:
                self._sync_embeddings(due, None)
            except EmbeddingModelError as exc:
                self._embedding_disabled(exc)
            except Exception:
                log.exception("background embedding update failed")
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Block until the background worker has nothing pending (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                if self._pending:
                    for path in self._pending:
                        self._pending[path] = min(self._pending[path], time.monotonic())
                    self._cond.notify_all()
                self._cond.wait(min(remaining, 0.1))
        return True

    # --- lifecycle -------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Current sizes plus the last build's numbers."""
        with self._lock:
            current = {
                "files": len(self._files),
                "symbols": sum(len(r.symbols) for r in self._files.values()),
                "pending_embeddings": len(self._pending),
                "embedding_error": self._embedding_error,
                "embedder_loaded": bool(self._embedder and self._embedder.loaded),
                "table_rows": self._store.count_rows() if self._store is not None else None,
            }
        return {"last_build": self._last_stats.as_dict(), **current}

    def close(self) -> None:
        """Stop the worker (pending embeddings are flushed if the model is loaded, else left to
        the next build, which finds them by content hash) and release the table."""
        with self._cond:
            pending = list(self._pending)
            self._pending.clear()
            self._stopping = True
            self._cond.notify_all()
        worker = self._worker
        if worker is not None:
            worker.join(timeout=30)
        if pending and self._embedder is not None and self._embedder.loaded:
            try:
                self._sync_embeddings(pending, None)
            except Exception as exc:
                log.info("pending embeddings not flushed at close: %s", exc)
        with self._lock:
            if self._store is not None:
                self._store.compact()
