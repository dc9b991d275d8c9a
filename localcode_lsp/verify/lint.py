"""Lint and type diagnostics, and which of them a candidate introduced.

A dirty file must not fail every candidate, so a diagnostic counts only when the original has no
matching one: same rule code and message, at the same line once the line is mapped through the
edit (difflib), or anywhere inside the same replaced region when the line itself was rewritten.
"""

from __future__ import annotations

import ast
import difflib
import json
import re
import tomllib
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Diagnostic:
    """One lint or type diagnostic; line and column are 1-based."""

    code: str
    message: str
    line: int
    column: int = 1

    def lint_line(self) -> str:
        """`LINT: F841 local variable 'result' is assigned but never used (line 3)`."""
        return f"LINT: {self.code} {_plain_message(self.message)} (line {self.line})"

    def type_line(self) -> str:
        """`TYPE ERROR at line 7: Incompatible return value type ... [return-value]`."""
        suffix = f" [{self.code}]" if self.code and self.code != "error" else ""
        return f"TYPE ERROR at line {self.line}: {self.message}{suffix}"


def parse_ruff_json(output: str) -> list[Diagnostic]:
    """Diagnostics from `ruff check --output-format json` (ValueError on unreadable output)."""
    try:
        data = json.loads(output or "[]")
    except json.JSONDecodeError as exc:
        raise ValueError(f"ruff did not print JSON: {exc}") from exc
    if not isinstance(data, list):
        raise ValueError("ruff JSON output is not a list")
    diagnostics = []
    for item in data:
        if not isinstance(item, dict):
            continue
        location = item.get("location") or {}
        diagnostics.append(Diagnostic(
            code=str(item.get("code") or "syntax-error"),
            message=str(item.get("message") or ""),
            line=int(location.get("row") or 1),
            column=int(location.get("column") or 1),
        ))
    return diagnostics


# Rules for a project without a ruff configuration: mistakes, not style. ruff's own default set
# grew to hundreds of style rules (RET501, SIM108, PERF401...) that would reject correct code.
CORRECTNESS_RULES = "E9,F,PLE"
_RUFF_FILES = ("ruff.toml", ".ruff.toml")


def has_ruff_config(root: Path, path: str) -> bool:
    """True when `path` (relative to `root`) is covered by a ruff.toml or a pyproject.toml with
    a [tool.ruff] table, in its directory or one above it inside `root`."""
    root = root.resolve()
    directory = (root / path).parent.resolve()
    while True:
        if any((directory / name).is_file() for name in _RUFF_FILES):
            return True
        pyproject = directory / "pyproject.toml"
        if pyproject.is_file():
            try:
                data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
                data = {}
            if isinstance(data.get("tool"), dict) and "ruff" in data["tool"]:
                return True
        if directory == root or root not in directory.parents:
            return False
        directory = directory.parent


def ruff_rule_args(root: Path, path: str) -> list[str]:
    """The project's own rules when it configures ruff, else `--select` the correctness set."""
    return [] if has_ruff_config(root, path) else ["--select", CORRECTNESS_RULES]


def digest_ruff(output: str) -> list[str]:
    """`LINT: <code> <message> (line N)` lines from ruff's JSON output."""
    return [d.lint_line() for d in parse_ruff_json(output)]


def parse_eslint_json(output: str) -> list[Diagnostic]:
    """Diagnostics from `eslint --format json` (one file)."""
    data = json.loads(output or "[]")
    diagnostics = []
    for file_result in data if isinstance(data, list) else []:
        for message in file_result.get("messages", []):
            diagnostics.append(Diagnostic(
                code=str(message.get("ruleId") or "syntax-error"),
                message=str(message.get("message") or ""),
                line=int(message.get("line") or 1),
                column=int(message.get("column") or 1),
            ))
    return diagnostics


_MYPY_LINE = re.compile(
    r"^(?P<file>[^:\n]+):(?P<line>\d+):(?:(?P<column>\d+):)?\s*error:\s*(?P<message>.*?)"
    r"(?:\s+\[(?P<code>[a-z0-9-]+)\])?$")


def parse_mypy_output(output: str, path_suffix: str) -> list[Diagnostic]:
    """Errors in the target file from mypy's `file:line:col: error: message  [code]` lines."""
    diagnostics = []
    for raw in output.splitlines():
        match = _MYPY_LINE.match(raw.strip())
        if not match or not match.group("file").replace("\\", "/").endswith(path_suffix):
            continue
        diagnostics.append(Diagnostic(
            code=match.group("code") or "error",
            message=match.group("message").strip(),
            line=int(match.group("line")),
            column=int(match.group("column") or 1),
        ))
    return diagnostics


def parse_pyright_json(output: str, path_suffix: str) -> list[Diagnostic]:
    """Errors in the target file from `pyright --outputjson`."""
    data = json.loads(output or "{}")
    diagnostics = []
    for item in data.get("generalDiagnostics", []):
        if item.get("severity") != "error":
            continue
        if not str(item.get("file", "")).replace("\\", "/").endswith(path_suffix):
            continue
        start = (item.get("range") or {}).get("start") or {}
        diagnostics.append(Diagnostic(
            code=str(item.get("rule") or "error"),
            message=str(item.get("message") or "").splitlines()[0] if item.get("message") else "",
            line=int(start.get("line", 0)) + 1,
            column=int(start.get("character", 0)) + 1,
        ))
    return diagnostics


def introduced(original: Iterable[Diagnostic], candidate: Iterable[Diagnostic],
               original_text: str, candidate_text: str) -> list[Diagnostic]:
    """Candidate diagnostics with no counterpart in the original (mapped through the edit)."""
    old_lines = original_text.splitlines()
    new_lines = candidate_text.splitlines()
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    opcodes = matcher.get_opcodes()

    # Key every original diagnostic by where it lands in the candidate: an exact line when
    # its line is unchanged, else the index of the replaced region it sat in.
    available: Counter[tuple] = Counter()
    for diagnostic in original:
        available[_anchor(diagnostic, opcodes, old=True)] += 1
    new = []
    for diagnostic in sorted(candidate, key=lambda d: (d.line, d.column, d.code)):
        key = _anchor(diagnostic, opcodes, old=False)
        if available[key] > 0:
            available[key] -= 1
        else:
            new.append(diagnostic)
    return new


def _anchor(diagnostic: Diagnostic, opcodes: list[tuple], *, old: bool) -> tuple:
    index = diagnostic.line - 1
    for number, (tag, i1, i2, j1, j2) in enumerate(opcodes):
        low, high = (i1, i2) if old else (j1, j2)
        if tag == "equal" and low <= index < high:
            mapped = index - i1 + j1 if old else index
            return (diagnostic.code, diagnostic.message, "line", mapped, diagnostic.column)
        if tag != "equal" and (low <= index < high or (low == high == index)):
            return (diagnostic.code, diagnostic.message, "region", number)
    # Past the end of the text (a diagnostic about the final newline, say).
    return (diagnostic.code, diagnostic.message, "end")


def _plain_message(message: str) -> str:
    """ruff's "Local variable `x` ..." -> "local variable 'x' ..." (pyflakes style)."""
    text = message.replace("`", "'").strip()
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        text = text[0].lower() + text[1:]
    return text


# --- risky calls ----------------------------------------------------------------------------------

# What a function under test has no business doing unasked: start processes, leave the test
# process (`os._exit` ends pytest without its report), change files, open sockets, load C code.
_RISKY_MODULES = frozenset({"subprocess", "pty", "ctypes", "socket", "multiprocessing",
                            "asyncio.subprocess"})
_RISKY_OS = frozenset({
    "system", "popen", "fork", "forkpty", "_exit", "kill", "killpg", "remove", "unlink", "rmdir",
    "removedirs", "rename", "renames", "replace", "chmod", "chown", "lchown", "truncate",
    "symlink", "link", "mkdir", "makedirs", "posix_spawn", "posix_spawnp", "setsid",
    "execl", "execle", "execlp", "execlpe", "execv", "execve", "execvp", "execvpe",
    "spawnl", "spawnle", "spawnlp", "spawnlpe", "spawnv", "spawnve", "spawnvp", "spawnvpe",
})
_RISKY_SHUTIL = frozenset({"rmtree", "move", "copy", "copy2", "copyfile", "copytree", "chown"})
# method names distinctive enough to mean a file change whatever the object (pathlib mostly)
_RISKY_METHODS = frozenset({"write_text", "write_bytes", "unlink", "rmdir", "touch",
                            "symlink_to", "hardlink_to", "chmod", "lchmod", "mkfifo"})
_RISKY_BUILTINS = frozenset({"__import__"})


def risky_calls(source: str) -> list[tuple[str, int]]:
    """(call, line) for each call in Python `source` that spawns or ends processes, writes or
    removes files, opens sockets or loads C code (`os.system`, `subprocess.run`, `os._exit`,
    `open(p, "w")`, `Path.write_text`, ...). [] when the source does not parse.

    A static check: names are resolved through the module's imports (`import subprocess as sp`,
    `from os import system`), which catches what a model writes, not a determined obfuscator.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError):
        return []
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                aliases[alias.asname or alias.name.split(".")[0]] = (
                    alias.name if alias.asname else alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func, aliases)
        if name and _is_risky(name, node):
            found.append((name, node.lineno))
        elif isinstance(node.func, ast.Attribute) and node.func.attr in _RISKY_METHODS:
            found.append((f".{node.func.attr}", node.lineno))
    return found


def introduced_risky_calls(original: str, candidate: str) -> list[tuple[str, int]]:
    """The risky calls of `candidate` beyond those `original` already makes (by name)."""
    before = Counter(name for name, _ in risky_calls(original))
    new: list[tuple[str, int]] = []
    for name, line in risky_calls(candidate):
        if before[name] > 0:
            before[name] -= 1
        else:
            new.append((name, line))
    return new


def _dotted(node: ast.expr, aliases: dict[str, str]) -> str:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return ""
    parts.append(aliases.get(node.id, node.id))
    return ".".join(reversed(parts))


def _is_risky(name: str, call: ast.Call) -> bool:
    module, _, leaf = name.rpartition(".")
    if name in _RISKY_BUILTINS or (module == "os" and leaf in _RISKY_OS) or \
            (module == "shutil" and leaf in _RISKY_SHUTIL) or name == "importlib.import_module":
        return True
    if any(name == m or name.startswith(m + ".") for m in _RISKY_MODULES):
        return True
    if name in ("open", "io.open", "os.open", "codecs.open"):
        mode = call.args[1] if len(call.args) > 1 else next(
            (k.value for k in call.keywords if k.arg in ("mode", "flags")), None)
        if name == "os.open":
            return True  # flags decide; any os.open of a path is low-level file access
        if mode is None:
            return False  # read
        if isinstance(mode, ast.Constant) and isinstance(mode.value, str):
            return any(flag in mode.value for flag in "wax+")
        return True  # a computed mode may write
    return False
