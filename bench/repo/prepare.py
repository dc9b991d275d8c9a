"""Prepare the real-repository benchmark: fetch the pinned sdists, check them, unpack them, and
(with --choose) choose the functions their own tests cover.

    python -m bench.repo.prepare            # fetch + verify + unpack into bench/.cache/repo/
    python -m bench.repo.prepare --choose   # also re-derive the function list (writes the data)

This is the only step that reaches the package index (pip download of the source
distributions); the benchmark itself runs offline on the unpacked checkout. The data file
bench/data/repo_functions.json pins each project's version and sdist sha256; a mismatch stops.

A function is chosen when it is a top-level function with a docstring and code after it, at
most MAX_BODY_LINES lines of body, and blanking it (the body after the docstring removed) makes
the module's own test file fail while the original passes.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent
DATA = BENCH / "data" / "repo_functions.json"
CACHE = BENCH / ".cache" / "repo"
MAX_BODY_LINES = 30

# The projects and which test file covers which module (for --choose; the data file repeats
# the pins so that a run needs nothing else).
PROJECTS = {
    "toolz": {"version": "1.0.0", "modules": {
        "toolz/itertoolz.py": ["toolz/tests/test_itertoolz.py"],
        "toolz/dicttoolz.py": ["toolz/tests/test_dicttoolz.py"],
        "toolz/functoolz.py": ["toolz/tests/test_functoolz.py"]}},
    "inflection": {"version": "0.5.1", "modules": {
        "inflection/__init__.py": ["test_inflection.py"]}},
}


@dataclass(frozen=True)
class Blank:
    """A function with its body (after the docstring) removed: the stub file's text and where
    the function's body goes (0-based line where the removed body began)."""

    stub: str
    prefix: str  # the file up to and including the docstring
    suffix: str  # the file after the function
    def_indent: int


def blank(source: str, name: str) -> Blank:
    """`source` with top-level function `name` reduced to its signature and docstring."""
    tree = ast.parse(source)
    node = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name),
                None)
    if node is None:
        raise ValueError(f"no top-level function {name!r}")
    if not _docstring_node(node) or len(node.body) < 2:
        raise ValueError(f"{name} has no docstring or no code after it")
    lines = source.splitlines(keepends=True)
    doc_end = node.body[0].end_lineno or node.body[0].lineno
    prefix = "".join(lines[:doc_end])
    suffix = "".join(lines[node.end_lineno:])
    return Blank(stub=prefix + suffix, prefix=prefix, suffix=suffix, def_indent=node.col_offset)


def _docstring_node(node: ast.FunctionDef) -> bool:
    first = node.body[0] if node.body else None
    return isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
        and isinstance(first.value.value, str)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def checkout(name: str, version: str, digest: str, cache: Path = CACHE) -> Path:
    """The unpacked sdist of `name==version` under `cache` (fetched and sha-checked once)."""
    root = cache / f"{name}-{version}"
    if (root / ".complete").exists():
        return root
    sdists = cache / "sdists"
    sdists.mkdir(parents=True, exist_ok=True)
    archive = sdists / f"{name}-{version}.tar.gz"
    if not archive.exists():
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-binary", ":all:",
                        "--no-deps", "--no-build-isolation", "-q", "-d", str(sdists),
                        f"{name}=={version}"], check=True)
    got = sha256(archive)
    if digest and got != digest:
        raise SystemExit(f"{archive.name}: sha256 {got}, expected {digest}")
    with tarfile.open(archive) as tar:
        tar.extractall(cache, filter="data")
    (root / ".complete").write_text(got + "\n")
    return root


def run_tests(root: Path, tests: list[str], timeout: float = 120.0) -> tuple[bool, str]:
    """(passed, output) of the project's test files, run from its root."""
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    try:
        proc = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "--tb=short",
                               "-p", "no:cacheprovider", *tests], cwd=root, env=env,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, f"the tests did not finish in {timeout:g} s"
    return proc.returncode == 0, proc.stdout + proc.stderr


def choose(root: Path, module: str, tests: list[str]) -> list[str]:
    """The functions of `module` that its tests cover (blanking each makes them fail)."""
    path = root / module
    source = path.read_text()
    if not run_tests(root, tests)[0]:
        raise SystemExit(f"{root.name}: {' '.join(tests)} fail before any change")
    chosen = []
    try:
        for node in ast.parse(source).body:
            if not isinstance(node, ast.FunctionDef) or not _docstring_node(node) \
                    or len(node.body) < 2 or node.name.startswith("_"):
                continue
            body_lines = (node.end_lineno or 0) - (node.body[0].end_lineno or 0)
            if body_lines > MAX_BODY_LINES:
                continue
            path.write_text(blank(source, node.name).stub)
            if not run_tests(root, tests)[0]:
                chosen.append(node.name)
    finally:
        path.write_text(source)
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.repo.prepare")
    parser.add_argument("--choose", action="store_true",
                        help="re-derive the chosen functions and write the data file")
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args(argv)
    data = json.loads(args.data.read_text()) if args.data.exists() else {"projects": {}}
    projects = data["projects"]
    functions = []
    for name, spec in PROJECTS.items():
        pinned = projects.get(name, {})
        if pinned and pinned["version"] != spec["version"]:
            pinned = {}
        root = checkout(name, spec["version"], pinned.get("sha256", ""))
        projects[name] = {"version": spec["version"], "sha256": sha256(
            CACHE / "sdists" / f"{name}-{spec['version']}.tar.gz")}
        print(f"{name} {spec['version']}: {root}", flush=True)
        if not args.choose:
            continue
        for module, tests in spec["modules"].items():
            for function in choose(root, module, tests):
                functions.append({"task_id": f"{name}:{module}:{function}", "project": name,
                                  "path": module, "function": function, "tests": tests})
            print(f"  {module}: {sum(f['path'] == module for f in functions)} functions",
                  flush=True)
    if args.choose:
        data = {"built_by": "python -m bench.repo.prepare --choose", "projects": projects,
                "functions": functions}
        args.data.parent.mkdir(parents=True, exist_ok=True)
        args.data.write_text(json.dumps(data, indent=1) + "\n")
        print(f"{len(functions)} functions -> {args.data}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
