"""A real repository, "implement this": functions of real projects (from their PyPI sdists, with
the projects' own test suites) blanked one at a time, the body after the docstring removed;
scored by the project's test file for that module.

Arms (one run, same model):
  raw_fim     one greedy fill-in-the-middle call: the file's prefix (up to the docstring) and
              suffix (after the function), nothing else
  localcode   `Engine.implement(Task(path=..., symbol=NAME, intent="edit"))` on the project
              checkout (index, retrieval, few-shot from the project, the tests as feedback),
              the verified edit applied

    python -m bench.repo.prepare          # once: fetch, check and unpack the pinned sdists
    python -m bench.repo [--model PATH | --model-name NAME] [--half tune|report|all]
        [--arms raw_fim,localcode] [--only groupby,camelize] [--limit N] [--resume]
        [--minutes M] [--out bench/results/repo.json] [--report-only]

The halves split the functions by their position in bench/data/repo_functions.json (even:
tune, odd: report). Each problem runs in a working copy of the checkout (under
bench/.cache/repo/work/), the blanked file restored after it. Wrap runs in
`flock /tmp/localcode-model.lock` on shared machines.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import time
from pathlib import Path

from bench import outcome
from bench.repo.prepare import CACHE, DATA, blank, run_tests
from localcode_lsp.config import Config, GenerationConfig
from localcode_lsp.data import Task
from localcode_lsp.engine import Engine
from localcode_lsp.inference import create_backend
from localcode_lsp.pipeline.target import BodyStop, trim_body

ARMS = ("raw_fim", "localcode")
TITLE = "real repository"  # the table's and the plot's title: TITLE, model, half
RESULTS = Path(__file__).resolve().parent.parent / "results"


def load_set(path: Path = DATA) -> tuple[dict, list[dict]]:
    data = json.loads(path.read_text())
    return data["projects"], data["functions"]


def working_copy(project: str, version: str, cache: Path = CACHE) -> Path:
    """A writable copy of the prepared checkout (made once; the benchmark restores each file
    it blanks, so the copy stays the pristine project plus localcode's own .localcode/)."""
    source = cache / f"{project}-{version}"
    if not (source / ".complete").exists():
        raise SystemExit(f"{source} is not prepared: run `python -m bench.repo.prepare` first")
    work = cache / "work" / f"{project}-{version}"
    if not work.exists():
        shutil.copytree(source, work)
    return work


def raw_fim(backend, source: str, name: str, config: Config) -> str:
    """The file with the function's body filled in by one greedy FIM call."""
    stub = blank(source, name)
    out = backend.fim(stub.prefix, stub.suffix, max_tokens=config.generation.max_tokens,
                      temperature=0.0, stop_rule=BodyStop(stub.def_indent))
    body = trim_body(out.text, stub.def_indent, " " * (stub.def_indent + 4))
    return stub.prefix + body + stub.suffix if body else ""


def localcode(backend, root: Path, path: str, name: str, config: Config) -> tuple[str, int, str]:
    """(the file after localcode's verified edit or "", model calls, status)."""
    engine = Engine(root, config=config, backend=backend)
    try:
        result = engine.implement(Task(path=path, symbol=name, intent="edit"))
    finally:
        engine.close()
    calls = sum(int(c.get("n", 1)) for c in result.model_calls)
    after = next((p.after for p in result.patches if p.path == path), "")
    return (after if result.status == "verified" else ""), calls, result.status


def run_arm(backend, config: Config, root: Path, item: dict, arm: str) -> dict:
    """One arm on one blanked function; the file is restored afterwards whatever happens."""
    target = root / item["path"]
    original = target.read_text()
    stub = blank(original, item["function"]).stub
    try:
        target.write_text(stub)
        t = time.monotonic()
        status = ""
        if arm == "raw_fim":
            filled, calls = raw_fim(backend, original, item["function"], config), 1
        else:
            filled, calls, status = localcode(backend, root, item["path"], item["function"],
                                              config)
        seconds = time.monotonic() - t
        passed = False
        if filled:
            target.write_text(filled)
            passed = run_tests(root, item["tests"])[0]
        return outcome.outcome(passed, calls, seconds, returned=bool(filled), status=status)
    finally:
        target.write_text(original)


def select(functions: list[dict], half: str, only: tuple[str, ...],
           limit: int | None) -> list[dict]:
    chosen = [f for i, f in enumerate(functions) if outcome.in_half(i, half)]
    if only:
        known = {f["function"] for f in functions}
        missing = set(only) - known
        if missing:
            raise SystemExit(f"not in the set: {', '.join(sorted(missing))}")
        chosen = [f for f in functions if f["function"] in only]
    return chosen[:limit] if limit else chosen


def main(argv: list[str] | None = None, backend=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.repo")
    outcome.add_common_arguments(parser)
    outcome.add_set_arguments(parser, ARMS, DATA, RESULTS / "repo.json")
    parser.add_argument("--only", default="", help="comma-separated function names")
    parser.add_argument("--cache", type=Path, default=CACHE)
    args = parser.parse_args(argv)
    if args.report_only:
        outcome.show_saved(TITLE, args.out)
        return 0
    arms = tuple(a for a in args.arms.split(",") if a)
    unknown = set(arms) - set(ARMS)
    if unknown:
        raise SystemExit(f"unknown arm(s) {', '.join(sorted(unknown))}; expected some of "
                         f"{', '.join(ARMS)}")
    projects, functions = load_set(args.data)
    items = select(functions, args.half, tuple(n for n in args.only.split(",") if n),
                   args.limit)
    roots = {name: working_copy(name, spec["version"], args.cache)
             for name, spec in projects.items()}
    config = dataclasses.replace(
        outcome.with_model(Config(), args.model, args.model_name),
        generation=GenerationConfig(candidates=args.candidates, max_retries=args.retries))
    if backend is None:
        backend = create_backend(config, Path.cwd())
    meta = {"benchmark": "repo", "model": backend.info.name, "half": args.half,
            "projects": projects, "config": config.as_dict()["generation"]}
    report = outcome.run_problems(
        items, arms, lambda item, arm: run_arm(backend, config, roots[item["project"]], item, arm),
        args.out, meta, resume=args.resume, minutes=args.minutes)
    outcome.show(TITLE, report, args.out)
    print(f"JSON: {args.out}  plot: {args.out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
