"""Run every benchmark (`python -m bench`, or `python -m bench index inference`).

Each benchmark is a module `bench/bench_<name>.py` (or the package `bench/humaneval`) runnable on
its own; they run one after another because two llama.cpp contexts on two cores would distort
each other's numbers. Results: a table on stdout and JSON under bench/results/.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
# The outcome benchmarks (hours with a real model): run only when named.
OUTCOME = ("humaneval", "bugfix", "repo")


def available() -> dict[str, str]:
    names = {p.stem.removeprefix("bench_"): f"bench.{p.stem}" for p in HERE.glob("bench_*.py")}
    for package in OUTCOME:
        if (HERE / package / "__main__.py").exists():
            names[package] = f"bench.{package}"
    return dict(sorted(names.items()))


def main(argv: list[str]) -> int:
    benches = available()
    chosen = argv or [name for name in benches if name not in OUTCOME]
    unknown = [name for name in chosen if name not in benches]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(benches)}",
              file=sys.stderr)
        return 2
    failed = []
    for name in chosen:
        print(f"== {name} ==", flush=True)
        proc = subprocess.run([sys.executable, "-m", benches[name]], cwd=HERE.parent)
        if proc.returncode != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
