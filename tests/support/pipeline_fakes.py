"""Small stand-ins for the index and the gate, for FSM unit tests (Python's own `ast`)."""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from localcode_lsp.data import Candidate, GateResult, Verdict
from localcode_lsp.index.symbols import Symbol


def python_symbols(path: str, text: str) -> list[Symbol]:
    """Functions of a Python file as index Symbols (0-based lines, byte offsets)."""
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line.encode()))
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        body = node.body
        doc = ast.get_docstring(node) or ""
        rest = body[1:] if doc else body
        stub = not rest or all(isinstance(s, ast.Pass) or (isinstance(s, ast.Expr) and isinstance(
            getattr(s, "value", None), ast.Constant) and s.value.value is Ellipsis) for s in rest)
        start, end = node.lineno - 1, node.end_lineno - 1
        out.append(Symbol(
            name=node.name, qualified_name=node.name, kind="function", path=path,
            start_line=start, end_line=end, start_byte=offsets[start],
            end_byte=offsets[end + 1] - 1, signature=lines[start].strip(), docstring=doc,
            body_start_line=body[0].lineno - 1, body_start_byte=offsets[body[0].lineno - 1],
            indent=" " * node.col_offset, parent=None, is_stub=stub))
    return sorted(out, key=lambda s: s.start_line)


@dataclass
class FakeIndex:
    root: Path | None = None
    files: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.root is not None:
            for path in sorted(self.root.rglob("*.py")):
                rel = path.relative_to(self.root).as_posix()
                self.files.setdefault(rel, path.read_text())

    def update_document(self, path: str, text: str) -> None:
        self.files[path] = text

    def symbols(self, path: str) -> list[Symbol]:
        return python_symbols(path, self.files[path])

    def find_symbol(self, name: str, path: str | None = None) -> list[Symbol]:
        paths = [path] if path else list(self.files)
        return [s for p in paths if p in self.files for s in self.symbols(p)
                if name in (s.name, s.qualified_name)]

    def enclosing_function(self, path: str, line: int, column: int = 0) -> Symbol | None:
        inside = [s for s in self.symbols(path) if s.start_line <= line <= s.end_line]
        return inside[-1] if inside else None

    def callees(self, symbol: Symbol) -> list[Symbol]:
        tree = ast.parse(self.files[symbol.path])
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name == symbol.name:
                names = {c.func.id for c in ast.walk(node)
                         if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)}
        return [s for s in self.symbols(symbol.path) if s.name in names]

    def callers(self, symbol: Symbol) -> list[Symbol]:
        return []

    def imports(self, path: str) -> list[str]:
        return []

    def tests_of(self, symbol: Symbol) -> list:
        return []

    def search(self, query: str, k: int = 5) -> list:
        return []

    def close(self) -> None:
        pass


@dataclass
class FakeGate:
    """Passes a candidate when `check(body) -> list[str]` returns no failure lines."""

    check: Callable[[str], list[str]]
    requests: list = field(default_factory=list)
    on_verify: Callable[[Candidate], None] | None = None
    tests_skipped: str = ""  # the test gate's skip reason: no test covered the candidate

    # agreement: probe calls the gate offers ([] = none) and what a body returns on them
    probe_list: list = field(default_factory=list)
    behave: Callable[[str], tuple | None] | None = None

    def probes(self, request) -> list:
        return list(self.probe_list)

    def behaviour(self, request, candidate: Candidate, calls, cancel=None) -> tuple | None:
        return self.behave(candidate.text) if self.behave is not None else None

    def verify(self, request, candidate: Candidate, cancel=None) -> Verdict:
        self.requests.append(request)
        if self.on_verify is not None:
            self.on_verify(candidate)
        problems = self.check(candidate.text)
        return Verdict(candidate.id, [GateResult("parse", True),
                                      GateResult("test", not problems, feedback=problems,
                                                 skipped=self.tests_skipped)])
