"""Search chunks at symbol granularity (function / method / class head / module head) and an
incremental BM25 keyword index over them."""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from dataclasses import dataclass

from .symbols import CLASS, Symbol

MAX_CHUNK_LINES = 120
MODULE_HEAD_LINES = 40
WINDOW_LINES = 60
MAX_WINDOWS = 20
MAX_EMBED_CHARS = 1500


@dataclass(frozen=True)
class Chunk:
    """A piece of a file that search returns: its text, lines and the symbol it belongs to."""

    id: str  # stable row id: path + symbol + content hash
    path: str
    start_line: int
    end_line: int
    symbol: str  # qualified name, "" for a module head or a window
    kind: str  # "function" | "method" | "class" | "module"
    text: str
    content_hash: str  # keys the embedding: same hash, same vector

    @property
    def embedding_text(self) -> str:
        return embedding_text(self.path, self.symbol, self.text)


def embedding_text(path: str, symbol: str, text: str) -> str:
    header = f"{path} {symbol}".strip()
    return f"{header}\n{text[:MAX_EMBED_CHARS]}"


def _make(path: str, lines: list[str], start: int, end: int, symbol: str, kind: str,
          extra: str = "") -> Chunk | None:
    text = "".join(lines[start:end + 1]) + extra
    if not text.strip():
        return None
    digest = hashlib.sha1(embedding_text(path, symbol, text).encode("utf-8", "replace")).hexdigest()
    row_id = hashlib.sha1(f"{path}\0{symbol}\0{start}\0{digest}".encode("utf-8", "replace"))
    return Chunk(row_id.hexdigest(), path, start, end, symbol, kind, text, digest)


def chunk_file(path: str, text: str, symbols: list[Symbol], language: str | None) -> list[Chunk]:
    """The chunks of one file: module head, one per function/method, a head per class; files
    of languages without symbols are cut into line windows."""
    lines = text.splitlines(keepends=True)
    if not lines:
        return []
    chunks: list[Chunk | None] = []
    if not symbols:
        for start in range(0, min(len(lines), WINDOW_LINES * MAX_WINDOWS), WINDOW_LINES):
            end = min(start + WINDOW_LINES, len(lines)) - 1
            chunks.append(_make(path, lines, start, end, "", "module"))
        return [c for c in chunks if c is not None]
    first = min(s.decorated_start_line for s in symbols)
    if first > 0:
        chunks.append(_make(path, lines, 0, min(first, MODULE_HEAD_LINES) - 1, "", "module"))
    children: dict[str, list[Symbol]] = {}
    for symbol in symbols:
        if symbol.parent:
            children.setdefault(symbol.parent, []).append(symbol)
    for symbol in symbols:
        start = symbol.decorated_start_line
        if symbol.kind == CLASS:
            members = children.get(symbol.qualified_name, [])
            head_end = symbol.end_line
            if members:
                head_end = max(start, min(m.decorated_start_line for m in members) - 1)
            head_end = min(head_end, start + MODULE_HEAD_LINES - 1)
            signatures = "".join(f"{m.indent}{m.signature} ...\n" for m in members)
            chunks.append(_make(path, lines, start, head_end, symbol.qualified_name, CLASS,
                                signatures))
        else:
            end = min(symbol.end_line, start + MAX_CHUNK_LINES - 1)
            chunks.append(_make(path, lines, start, end, symbol.qualified_name, symbol.kind))
    return [c for c in chunks if c is not None]


_WORD = re.compile(r"[A-Za-z0-9_]+")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
_STOP = frozenset({"the", "a", "an", "of", "to", "in", "and", "or", "is", "for", "on", "that",
                   "this", "it", "be", "with", "as", "by", "def", "self", "return", "none",
                   "which", "what", "how", "from", "import"})


def tokenize(text: str) -> list[str]:
    """Lower-case terms: whole identifiers plus their snake_case and camelCase parts."""
    terms: list[str] = []
    for word in _WORD.findall(text):
        lower = word.lower()
        parts = [p.lower() for piece in word.split("_") for p in _CAMEL.findall(piece)]
        if lower not in _STOP:
            terms.append(lower)
        if len(parts) > 1:
            terms.extend(p for p in parts if p not in _STOP and len(p) > 1)
    return [_stem(t) for t in terms]


def _stem(term: str) -> str:
    for suffix in ("ies", "es", "s", "ing", "ed"):
        if term.endswith(suffix) and len(term) - len(suffix) >= 3:
            return term[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return term


class BM25:
    """Okapi BM25 over chunks, updated per file (add / remove the chunks of one path)."""

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self._docs: dict[str, tuple[Counter[str], int]] = {}  # chunk id -> (tf, length)
        self._by_path: dict[str, list[str]] = {}
        self._df: Counter[str] = Counter()
        self._postings: dict[str, set[str]] = {}
        self._total_length = 0

    def __len__(self) -> int:
        return len(self._docs)

    def set_path(self, path: str, chunks: list[Chunk]) -> None:
        """Replace every chunk of `path` with `chunks`."""
        for chunk_id in self._by_path.pop(path, []):
            tf, length = self._docs.pop(chunk_id)
            self._total_length -= length
            for term in tf:
                self._df[term] -= 1
                postings = self._postings.get(term)
                if postings is not None:
                    postings.discard(chunk_id)
                if self._df[term] <= 0:
                    del self._df[term]
                    self._postings.pop(term, None)
        ids = []
        for chunk in chunks:
            if chunk.id in self._docs:
                continue
            # the symbol's own name counts three times: a query naming it should find it
            terms = tokenize(chunk.embedding_text) + tokenize(chunk.symbol) * 2
            tf = Counter(terms)
            self._docs[chunk.id] = (tf, len(terms))
            self._total_length += len(terms)
            for term in tf:
                self._df[term] += 1
                self._postings.setdefault(term, set()).add(chunk.id)
            ids.append(chunk.id)
        if ids:
            self._by_path[path] = ids

    def search(self, query: str, limit: int) -> list[tuple[str, float]]:
        """(chunk id, score) best first."""
        terms = set(tokenize(query))
        if not terms or not self._docs:
            return []
        count = len(self._docs)
        average = self._total_length / count if count else 1.0
        scores: dict[str, float] = {}
        for term in terms:
            postings = self._postings.get(term)
            if not postings:
                continue
            df = self._df[term]
            idf = math.log(1 + (count - df + 0.5) / (df + 0.5))
            for chunk_id in postings:
                tf, length = self._docs[chunk_id]
                frequency = tf[term]
                norm = frequency + self.k1 * (1 - self.b + self.b * length / average)
                scores[chunk_id] = scores.get(chunk_id, 0.0) + idf * frequency * (self.k1 + 1) / norm
        return sorted(scores.items(), key=lambda item: -item[1])[:limit]
