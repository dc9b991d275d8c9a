"""Documentation fragments: real signatures and docstrings of the libraries a target calls.

Read from the installed packages' source files with tree-sitter: nothing is imported or executed.
A module is located through the standard library directory (sysconfig) or
`importlib.util.find_spec` on its *top-level* name only (that does not run the package), then
walked on disk for submodules. Fragments are cached per module and refreshed when the installed
version or the file's mtime changes.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import inspect
import platform
import re
import sysconfig
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..logs import get_logger
from . import syntax
from .storage import JsonCache

log = get_logger("knowledge.docs")

DOC_LINES = 6
DOC_CHARS = 480
MAX_REEXPORT_DEPTH = 4


@dataclass
class Fragment:
    """One library API as the model should see it."""

    qualified_name: str  # "json.loads"
    module: str
    text: str  # "def loads(s, *, cls=None, ...):\n    \"\"\"Deserialize ...\"\"\""
    origin: str  # "stdlib 3.11" or "requests 2.32.3"
    tokens: int = 0

    def render(self) -> str:
        return f"# {self.qualified_name} ({self.origin})\n{self.text}"


def _fragment_text(definition: syntax.Definition, methods: list[syntax.Definition]) -> str:
    doc_lines = [line.rstrip() for line in inspect.cleandoc(definition.docstring).splitlines()]
    doc: list[str] = []
    for line in doc_lines[:DOC_LINES]:
        if sum(len(d) for d in doc) + len(line) > DOC_CHARS:
            break
        doc.append(line)
    body = []
    if doc:
        body.append('    """' + "\n    ".join(doc).rstrip() + '"""')
    for method in methods:
        first = method.docstring.strip().split("\n")[0][:120]
        body.append(f"    {method.signature}: ..." + (f"  # {first}" if first else ""))
    if not body:
        body.append("    ...")
    decorators = "".join(f"@{d}\n" for d in definition.decorators
                         if d.split("(")[0] in ("staticmethod", "classmethod", "property",
                                                "overload", "dataclass", "contextmanager"))
    signature = re.sub(r"\(\s+", "(", definition.signature)
    signature = re.sub(r",?\s+\)", ")", signature)
    return f"{decorators}{signature}:\n" + "\n".join(body)


class DocsLibrary:
    """Per-module fragments of library sources, located without importing anything."""

    def __init__(self, cache: JsonCache, *, workspace_root: Path | None = None) -> None:
        self.cache = cache
        self.workspace_root = Path(workspace_root).resolve() if workspace_root else None
        self._stdlib = Path(sysconfig.get_paths()["stdlib"])
        self._distributions: dict[str, list[str]] | None = None
        self._checked: dict[str, dict[str, Any] | None] = {}  # per-process: versions are stable

    # --- locating sources ------------------------------------------------------------------

    def _is_workspace_module(self, top: str) -> bool:
        root = self.workspace_root
        if root is None:
            return False
        return any((base / top).is_dir() or (base / f"{top}.py").is_file()
                   for base in (root, root / "src"))

    def locate(self, module: str) -> Path | None:
        """The source file of `module` (`pkg/__init__.py` for a package), or None."""
        parts = module.split(".")
        top = parts[0]
        if not top or not top.isidentifier() or self._is_workspace_module(top):
            return None
        bases: list[Path] = []
        stdlib_file = self._stdlib / f"{top}.py"
        stdlib_package = self._stdlib / top
        if stdlib_file.is_file():
            bases = [stdlib_file]
        elif (stdlib_package / "__init__.py").is_file():
            bases = [stdlib_package]
        else:
            try:
                spec = importlib.util.find_spec(top)  # top-level only: finds, never executes
            except (ImportError, ValueError, AttributeError) as exc:
                log.debug("no spec for %s: %s", top, exc)
                spec = None
            if spec is None:
                return None
            if spec.submodule_search_locations:
                bases = [Path(p) for p in spec.submodule_search_locations]
            elif spec.origin and spec.origin.endswith(".py"):
                bases = [Path(spec.origin)]
        for base in bases:
            if base.is_file():
                if len(parts) == 1:
                    return base
                continue
            current = base
            for part in parts[1:]:
                current = current / part
            if (current / "__init__.py").is_file():
                return current / "__init__.py"
            if current.with_suffix(".py").is_file():
                return current.with_suffix(".py")
            stub = current.with_suffix(".pyi")
            if len(parts) > 1 and stub.is_file():
                return stub
            if len(parts) == 1 and (base / "__init__.pyi").is_file():
                return base / "__init__.pyi"
        return None

    def _version_of(self, top: str, path: Path) -> str:
        try:
            if path.is_relative_to(self._stdlib) and "site-packages" not in path.parts:
                return f"stdlib {platform.python_version()}"
        except ValueError:
            pass
        if self._distributions is None:
            try:
                self._distributions = dict(importlib.metadata.packages_distributions())
            except Exception:  # broken metadata only costs the version label
                self._distributions = {}
        for dist in self._distributions.get(top, []):
            try:
                return f"{dist} {importlib.metadata.version(dist)}"
            except importlib.metadata.PackageNotFoundError:
                continue
        return top

    # --- per-module facts ------------------------------------------------------------------

    def module_entry(self, module: str) -> dict[str, Any] | None:
        """Cached `{version, mtime, path, defs, exports}` for `module`; re-read when stale."""
        if module in self._checked:
            entry = self._checked[module]
            if entry is not None:
                self.cache.get(module)  # refresh recency
            return entry
        path = self.locate(module)
        if path is None:
            self._checked[module] = None
            return None
        top = module.split(".")[0]
        version = self._version_of(top, path)
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            self._checked[module] = None
            return None
        entry = self.cache.get(module)
        if (isinstance(entry, dict) and entry.get("version") == version
                and entry.get("mtime") == mtime and entry.get("path") == str(path)):
            self._checked[module] = entry
            return entry
        try:
            source = path.read_text(encoding="utf-8", errors="replace")
            facts = syntax.module_facts(source)
        except (OSError, RecursionError) as exc:
            log.debug("cannot read %s: %s", path, exc)
            self._checked[module] = None
            return None
        defs: dict[str, str] = {}
        overloads_done: set[str] = set()
        by_class: dict[str, list[syntax.Definition]] = {}
        for definition in facts.definitions:
            if definition.kind == "method" and definition.qualified_name.count(".") == 1:
                owner = definition.qualified_name.split(".")[0]
                if not definition.name.startswith("_") or definition.name == "__init__":
                    by_class.setdefault(owner, []).append(definition)
        for definition in facts.definitions:
            if definition.name.startswith("_") and definition.name != "__init__":
                continue
            if definition.qualified_name.count(".") > 1:
                continue
            if definition.qualified_name in defs and (
                    definition.kind == "class" or definition.qualified_name in overloads_done):
                continue  # keep the first conditional definition, the implementation of overloads
            if any(d.split("(")[0].split(".")[-1] == "overload" for d in definition.decorators):
                if definition.qualified_name in defs:
                    continue
            else:
                overloads_done.add(definition.qualified_name)
            methods = by_class.get(definition.qualified_name, [])[:8] \
                if definition.kind == "class" else []
            defs[definition.qualified_name] = _fragment_text(definition, methods)
        package = module if path.name.startswith("__init__") else module.rpartition(".")[0]
        exports: dict[str, str] = {}
        stars: list[str] = []
        for item in facts.imports:
            if item.name == "*" and not item.module.startswith("."):
                stars.append(item.module)
            if item.name == "*" or (not item.name and item.alias == item.module.split(".")[0]):
                continue
            source_module = item.module
            if source_module.startswith("."):
                dots = len(source_module) - len(source_module.lstrip("."))
                base_parts = package.split(".")
                if dots > 1:
                    base_parts = base_parts[: len(base_parts) - (dots - 1)]
                rest = source_module.lstrip(".")
                source_module = ".".join([*base_parts, rest] if rest else base_parts)
            exports.setdefault(item.alias, f"{source_module}:{item.name}")  # first branch wins
        entry = {"version": version, "mtime": mtime, "path": str(path), "defs": defs,
                 "exports": exports, "stars": stars[:8]}
        self.cache.set(module, entry)
        self._checked[module] = entry
        return entry

    def lookup(self, module: str, attrs: list[str], depth: int = 0) -> Fragment | None:
        """The fragment for `module.attrs[0](.attrs[1])`, following re-exports and submodules."""
        if not attrs or depth > MAX_REEXPORT_DEPTH:
            return None
        entry = self.module_entry(module)
        if entry is None:
            parent, _, last = module.rpartition(".")
            if parent:  # `os.path` is an attribute of `os`, not a file
                return self.lookup(parent, [last, *attrs], depth + 1)
            return None
        defs = entry["defs"]
        first = attrs[0]
        if len(attrs) > 1 and f"{first}.{attrs[1]}" in defs:
            name = f"{first}.{attrs[1]}"
            return Fragment(f"{module}.{name}", module, defs[name], entry["version"])
        if first in defs:
            return Fragment(f"{module}.{first}", module, defs[first], entry["version"])
        exported = entry["exports"].get(first)
        if exported:
            source_module, _, source_name = exported.partition(":")
            if not source_name:  # `import posixpath as path` inside `os`
                found = self.lookup(source_module, attrs[1:], depth + 1)
            else:
                found = self.lookup(source_module, [source_name, *attrs[1:]], depth + 1)
            if found is None and source_name and \
                    self.locate(f"{source_module}.{source_name}") is not None:
                found = self.lookup(f"{source_module}.{source_name}", attrs[1:], depth + 1)
            if found is not None:
                found.qualified_name = f"{module}.{'.'.join(attrs)}"
                return found
        if len(attrs) > 1 and self.locate(f"{module}.{first}") is not None:
            return self.lookup(f"{module}.{first}", attrs[1:], depth + 1)
        for star in entry.get("stars", []):  # `from genericpath import *`
            found = self.lookup(star, attrs, depth + 1)
            if found is not None:
                return found
        return None

    # --- what a target needs -----------------------------------------------------------------

    def fragments_for(self, code: str, file_text: str = "") -> list[Fragment]:
        """Fragments for the library calls in `code`, resolved through `file_text`'s imports."""
        imports = syntax.imports_in_source(file_text or code)
        if file_text and code not in file_text:
            imports += syntax.imports_in_source(code)
        bound: dict[str, tuple[str, str]] = {}
        for item in imports:
            if item.module.startswith(".") or item.name == "*":
                continue
            if not item.name and "." in item.module and item.alias == item.module.split(".")[0]:
                bound.setdefault(item.alias, (item.alias, ""))  # `import os.path` binds `os`
                bound[item.module] = (item.module, "")
            else:
                bound[item.alias] = (item.module, item.name)
        fragments: list[Fragment] = []
        seen: set[str] = set()
        for call in syntax.calls_in_source(code):
            parts = call.split(".")
            resolved: tuple[str, list[str]] | None = None
            for cut in range(len(parts), 0, -1):
                head = ".".join(parts[:cut])
                if head in bound:
                    module, name = bound[head]
                    attrs = parts[cut:]
                    resolved = (module, [name, *attrs] if name else attrs)
                    break
            if resolved is None or not resolved[1]:
                continue
            key = f"{resolved[0]}:{'.'.join(resolved[1])}"
            if key in seen:
                continue
            seen.add(key)
            try:
                fragment = self.lookup(resolved[0], resolved[1])
            except (OSError, ValueError, RecursionError) as exc:
                log.debug("docs lookup failed for %s: %s", call, exc)
                fragment = None
            if fragment is not None:
                fragment.qualified_name = call if call.split(".")[0] in bound else \
                    fragment.qualified_name
                if all(f.text != fragment.text for f in fragments):
                    fragments.append(fragment)
        return fragments

    def docs_for(self, code: str, file_text: str = "", budget_tokens: int = 512,
                 count_tokens: Callable[[str], int] | None = None) -> list[Fragment]:
        """`fragments_for`, cut to fit `budget_tokens` (first calls first)."""
        count = count_tokens or (lambda text: max(1, len(text) // 4))
        chosen: list[Fragment] = []
        used = 0
        for fragment in self.fragments_for(code, file_text):
            fragment.tokens = count(fragment.render())
            if used + fragment.tokens > budget_tokens:
                continue
            used += fragment.tokens
            chosen.append(fragment)
        if chosen:
            self.cache.flush()
        return chosen

