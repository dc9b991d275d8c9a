"""Ranking for hybrid search: `SearchHit`, and the vector (cosine) and keyword (BM25) rankings
fused by reciprocal rank (`fuse`). Where the two rankings come from (the lancedb table, the BM25
index) is `CodeIndex.search`'s business (`core.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from .chunks import Chunk
from .records import FileRecord

RRF_K = 60


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


def fuse(vector_rows: list[dict[str, Any]], keyword: list[tuple[str, float]],
         chunks: Mapping[str, Chunk], files: Mapping[str, FileRecord], k: int) -> list[SearchHit]:
    """The best `k` of both rankings by reciprocal rank fusion. `chunks` are the current chunks
    by id (a hit's text comes from them, else from its table row); a vector row of a file whose
    chunks were cut since and no longer hold it is an edited-away chunk and is dropped."""
    fused: dict[str, float] = {}
    vector_scores: dict[str, float] = {}
    keyword_scores: dict[str, float] = {}
    rows: dict[str, dict[str, Any]] = {}
    for rank, row in enumerate(vector_rows):
        row_id = row["id"]
        if row_id not in chunks and row["path"] in files and \
                files[row["path"]].chunks is not None:
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
