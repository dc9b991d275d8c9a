"""`localcode search`: hybrid (vector + keyword) search over the codebase index."""

from __future__ import annotations

import argparse
import json
import sys

from .index import build_with_progress, open_engine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Search the project's code by meaning and keywords. Updates the index first "
        "(incremental), then prints the best chunks with their file, lines and scores."
    )
    parser.add_argument("query", help="what to look for, in words or identifiers")
    parser.add_argument("-k", type=int, default=8, metavar="N", help="results (default 8)")
    parser.add_argument("--json", action="store_true", help="print the hits as JSON")
    parser.add_argument("--no-embeddings", action="store_true",
                        help="keyword search only (no sentence-transformers)")


def run(args: argparse.Namespace) -> int:
    from ..index import EmbeddingModelError

    if args.k < 1:
        print("localcode search: -k must be at least 1", file=sys.stderr)
        return 2
    if not args.query.strip():
        print("localcode search: the query is empty", file=sys.stderr)
        return 2
    engine = open_engine(args, "search")
    if engine is None:
        return 2
    try:
        index = engine.index
        build_with_progress(index, embeddings=not args.no_embeddings, quiet=args.json)
        hits = index.search(args.query, args.k)
    except EmbeddingModelError as exc:
        print(f"localcode search: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.close()
    if args.json:
        print(json.dumps([hit.as_dict() for hit in hits]))
        return 0
    if not hits:
        print("no results")
        return 0
    for number, hit in enumerate(hits, start=1):
        where = f"{hit.path}:{hit.start_line + 1}-{hit.end_line + 1}"
        scores = []
        if hit.vector_score is not None:
            scores.append(f"vector {hit.vector_score:.2f}")
        if hit.keyword_score is not None:
            scores.append(f"keyword {hit.keyword_score:.1f}")
        print(f"{number}. {where}  {hit.symbol or '(module)'}  [{', '.join(scores)}]")
        first_line = next((line.strip() for line in hit.text.splitlines() if line.strip()), "")
        print(f"   {first_line[:100]}")
    return 0
