"""Benchmark of the codebase index on a real open-source Python project.

Downloads the sdist of PROJECT from PyPI at bench time (`pip download --no-binary :all:`) into
bench/.cache/, unpacks it, and measures: AST index files/s vs raw tree-sitter parse of the same
bytes (both best of 3), chunks/s embedded, a restart (embedded again: should be 0), didChange
latency on a 2,000-line file, hybrid search latency, peak RSS, and a CPU calibration (a fixed
pure-Python loop) to compare absolute numbers across machines. Prints a table and writes
bench/results/index.json.

    .venv/bin/python bench/bench_index.py [--project pip==24.0] [--no-embeddings]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

HERE = Path(__file__).parent
CACHE = HERE / ".cache"
RESULTS = HERE / "results"

QUERIES = [
    "parse a version specifier string",
    "download a file over http with progress",
    "read the configuration file",
    "check whether a wheel is compatible with this platform",
    "uninstall a package and remove its files",
    "compute the hash of a file",
    "resolve dependencies between requirements",
    "print a table to the terminal",
    "build a wheel from a source directory",
    "normalize a project name",
]


def fetch(requirement: str) -> Path:
    """The unpacked sdist directory of `requirement` (name==version), downloaded once."""
    CACHE.mkdir(parents=True, exist_ok=True)
    name, _, version = requirement.partition("==")
    archives = sorted(CACHE.glob(f"{name}-{version}*.tar.gz"))
    if not archives:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary",
                        ":all:", requirement, "-d", str(CACHE)], check=True)
        archives = sorted(CACHE.glob(f"{name}-{version}*.tar.gz"))
    archive = archives[0]
    target = CACHE / archive.name.removesuffix(".tar.gz")
    if not target.is_dir():
        with tarfile.open(archive) as tar:
            tar.extractall(CACHE, filter="data")
    return target


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def cpu_calibration() -> float:
    """Seconds for a fixed pure-Python loop (best of 3): how fast this machine is, so that
    absolute numbers from different machines can be compared."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(5_000_000):
            total += i
        best = min(best, time.perf_counter() - started)
    return round(best, 3)


def big_file(files: list[Path], lines: int = 2000) -> str:
    """Real code: the largest file, topped up with other files, cut to `lines` lines at a
    top-level boundary so it stays valid Python."""
    ordered = sorted(files, key=lambda p: -p.stat().st_size)
    text = ""
    for path in ordered:
        text += path.read_text(encoding="utf-8", errors="replace") + "\n\n"
        if text.count("\n") >= lines:
            break
    kept = text.splitlines(keepends=True)[:lines]
    while kept and kept[-1][:1] in (" ", "\t", ")", "]", "}"):
        kept.pop()
    return "".join(kept) + "\n" * (lines - len(kept))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", default="pip==24.0", help="sdist to index (name==version)")
    parser.add_argument("--no-embeddings", action="store_true")
    parser.add_argument("--edits", type=int, default=300, help="didChange edits to time")
    args = parser.parse_args()

    sys.path.insert(0, str(HERE.parent))
    from localcode_lsp.config import Config
    from localcode_lsp.index import CodeIndex
    from localcode_lsp.index.discovery import discover
    from localcode_lsp.index.languages import ParserCache, language_for_path
    from localcode_lsp.index.parsed import diff_edit
    from localcode_lsp.workspace import Workspace

    source_dir = fetch(args.project)
    work = CACHE / "work"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(source_dir, work)
    config = Config()
    found = discover(work, config.index.max_file_bytes)
    parseable = [(f.path, (work / f.path).read_bytes()) for f in found.files
                 if language_for_path(f.path)]
    total_bytes = sum(len(b) for _, b in parseable)
    python_files = [work / p for p, _ in parseable if p.endswith(".py")]

    # raw tree-sitter parse of the same bytes (best of 3)
    parsers = ParserCache()
    raw_seconds = []
    for _ in range(3):
        started = time.perf_counter()
        for path, data in parseable:
            parsers.parse(language_for_path(path), data)
        raw_seconds.append(time.perf_counter() - started)
    raw = min(raw_seconds)

    # AST index: discovery + read + parse + symbols + imports/calls + AST cache write, from a
    # clean .localcode/ each time; best of 3, like the raw parse
    ast_runs = []
    for _ in range(3):
        shutil.rmtree(work / ".localcode", ignore_errors=True)
        index = CodeIndex(Workspace(work), config, background_embeddings=False)
        started = time.perf_counter()
        ast_stats = index.build(embeddings=False)
        ast_runs.append(time.perf_counter() - started)
        if len(ast_runs) < 3:
            index.close()
    ast_seconds = min(ast_runs)
    graph_started = time.perf_counter()
    index.graph()
    graph_seconds = time.perf_counter() - graph_started

    results: dict = {
        "project": args.project,
        "cpu_calibration_s": cpu_calibration(),
        "files_indexed": ast_stats.files,
        "files_parsed": len(parseable),
        "python_files": len(python_files),
        "megabytes": round(total_bytes / 1e6, 2),
        "symbols": ast_stats.symbols,
        "skipped_binary": ast_stats.skipped_binary,
        "skipped_large": ast_stats.skipped_large,
        "raw_parse_files_per_s": round(len(parseable) / raw, 1),
        "ast_index_files_per_s": round(len(parseable) / ast_seconds, 1),
        "ast_vs_raw_ratio": round(raw / ast_seconds, 3),
        "dependency_graph_seconds": round(graph_seconds, 3),
    }

    # didChange on a 2,000-line file: a statement typed one keystroke at a time at several
    # places in function bodies (every keystroke is one didChange with the whole text)
    text = big_file(python_files)
    index.update_document("bench_big.py", text)
    rng = random.Random(7)
    lines = text.splitlines(keepends=True)
    body_lines = [i for i, line in enumerate(lines) if line.startswith("        ") and line.strip()]
    timings = []
    # the floor: tree-sitter's own edit + incremental reparse of the same keystrokes
    raw_timings = []
    raw_source = text.encode()
    raw_tree = parsers.parse("python", raw_source)
    symbols_before = len(index.symbols("bench_big.py"))
    while len(timings) < args.edits:
        number = rng.choice(body_lines)
        indent = lines[number][: len(lines[number]) - len(lines[number].lstrip())]
        statement = indent + "value = compute(item, limit=3)\n"
        for typed in range(len(indent) + 1, len(statement) + 1):
            partial = statement[:typed] if typed == len(statement) else statement[:typed] + "\n"
            new_text = "".join(lines[:number] + [partial] + lines[number:])
            started = time.perf_counter()
            index.update_document("bench_big.py", new_text)
            timings.append((time.perf_counter() - started) * 1000)
            new_source = new_text.encode()
            edit = diff_edit(raw_source, new_source)
            if edit is not None:
                started = time.perf_counter()
                raw_tree.edit(start_byte=edit.start_byte, old_end_byte=edit.old_end_byte,
                              new_end_byte=edit.new_end_byte, start_point=edit.start_point,
                              old_end_point=edit.old_end_point,
                              new_end_point=edit.new_end_point)
                raw_tree = parsers.parse("python", new_source, raw_tree)
                raw_timings.append((time.perf_counter() - started) * 1000)
            raw_source = new_source
        lines = lines[:number] + [statement] + lines[number:]
        body_lines = [i + (1 if i >= number else 0) for i in body_lines]
    results.update({
        "didchange_file_lines": text.count("\n"),
        "didchange_symbols": symbols_before,
        "didchange_ms_p50": round(statistics.median(timings), 3),
        "didchange_ms_p95": round(percentile(timings, 0.95), 3),
        "didchange_ms_max": round(max(timings), 3),
        "didchange_raw_reparse_ms_p50": round(statistics.median(raw_timings), 3),
        "didchange_raw_reparse_ms_p95": round(percentile(raw_timings, 0.95), 3),
    })
    index.close()

    if not args.no_embeddings:
        index = CodeIndex(Workspace(work), config, background_embeddings=False)
        started = time.perf_counter()
        index._get_embedder().encode(["load the model"])
        load_seconds = time.perf_counter() - started
        started = time.perf_counter()
        stats = index.build()
        embed_seconds = time.perf_counter() - started
        results.update({
            "embedder_load_s": round(load_seconds, 1),
            "chunks": stats.chunks,
            "embedded_now": stats.embedded_now,
            "embed_build_s": round(embed_seconds, 1),
            "chunks_per_s": round(stats.embedded_now / embed_seconds, 1),
            "lance_fragments": index._vector_store().fragments(),
        })
        search_ms = []
        for query in QUERIES * 3:
            started = time.perf_counter()
            index.search(query, 8)
            search_ms.append((time.perf_counter() - started) * 1000)
        results["search_ms_p50"] = round(statistics.median(search_ms), 1)
        results["search_ms_p95"] = round(percentile(search_ms, 0.95), 1)
        results["search_example"] = [
            f"{h.path}:{h.start_line + 1} {h.symbol}" for h in index.search(QUERIES[0], 3)]
        index.close()
        restarted = CodeIndex(Workspace(work), config, background_embeddings=False)
        restarted._embedder = index._embedder
        started = time.perf_counter()
        again = restarted.build()
        results["restart_build_s"] = round(time.perf_counter() - started, 2)
        results["restart_embedded_now"] = again.embedded_now
        results["restart_parsed_now"] = again.parsed_now
        restarted.close()

    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "index.json").write_text(json.dumps(results, indent=2) + "\n")
    width = max(len(k) for k in results)
    for key, value in results.items():
        print(f"{key.ljust(width)}  {value}")
    print(f"\nwritten to {RESULTS / 'index.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
