"""`localcode index`: build or update the codebase index and print its stats."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Build or update the codebase index under <project>/.localcode/index: symbols and "
        "imports (tree-sitter), the dependency graph, and chunk embeddings in lancedb. "
        "Unchanged files come from the AST cache and unchanged chunks keep their vectors."
    )
    parser.add_argument("--json", action="store_true", help="print the stats as JSON")
    parser.add_argument("--no-embeddings", action="store_true",
                        help="AST index only (no sentence-transformers, no vectors)")


def open_engine(args: argparse.Namespace, command: str) -> Any:
    """The engine for --project, or None after printing why (missing directory)."""
    from ..engine import Engine

    project = Path(args.project or ".")
    if not project.is_dir():
        print(f"localcode {command}: project directory does not exist: {project}",
              file=sys.stderr)
        return None
    return Engine(project, shares_cores_with_model=False)  # no model in this process


def build_with_progress(index: Any, *, embeddings: bool, quiet: bool) -> Any:
    """Run `index.build`, with a rich progress bar on a terminal."""
    if quiet or not sys.stderr.isatty():
        return index.build(embeddings=embeddings)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[item]}"), transient=True,
                  console=_stderr_console()) as bar:
        task = bar.add_task("parsing", total=None, item="")

        def report(done: int, total: int, item: str) -> None:
            description = "embedding" if item == "embedding" else "parsing"
            bar.update(task, completed=done, total=total, description=description,
                       item="" if item == "embedding" else item[-50:])

        return index.build(report, embeddings=embeddings)


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def run(args: argparse.Namespace) -> int:
    from ..index import EmbeddingModelError

    engine = open_engine(args, "index")
    if engine is None:
        return 2
    try:
        stats = build_with_progress(engine.index, embeddings=not args.no_embeddings,
                                    quiet=args.json)
    except EmbeddingModelError as exc:
        print(f"localcode index: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.close()
    if args.json:
        print(json.dumps(stats.as_dict()))
        return 0
    rows = [
        ("files", stats.files),
        ("symbols", stats.symbols),
        ("chunks", stats.chunks if stats.embeddings else "-"),
        ("parsed now / from cache", f"{stats.parsed_now} / {stats.parsed_cached}"),
        ("skipped binary / too large", f"{stats.skipped_binary} / {stats.skipped_large}"),
        ("embedded now / reused",
         f"{stats.embedded_now} / {stats.embedded_reused}" if stats.embeddings else "off"),
        ("seconds", f"{stats.seconds:.2f}"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")
    return 0
