"""Dependency graph over the workspace: Python module resolution, call references resolved to
workspace symbols, callers/callees, and the tests of a symbol."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from .facts import CallRef, FileFacts, Import
from .languages import TEST_DIRECTORIES, conventional_test_names, is_pytest_file, is_test_path
from .symbols import CLASS, FUNCTION, METHOD, Symbol, innermost

SymbolKey = tuple[str, str]  # (path, qualified_name)


@dataclass(frozen=True)
class TestRef:
    """A pytest test function that exercises a symbol."""

    path: str
    name: str  # the test function's qualified name ("TestX.test_y" for methods)
    node_id: str  # "tests/test_m.py::TestX::test_y"
    line: int
    reason: str  # "calls" | "references" | "name" | "module"


def key_of(symbol: Symbol) -> SymbolKey:
    return (symbol.path, symbol.qualified_name)


def is_test_function(symbol: Symbol) -> bool:
    if symbol.kind == FUNCTION and symbol.parent is None:
        return symbol.name.startswith("test")
    if symbol.kind == METHOD and symbol.parent and "." not in symbol.parent:
        return symbol.name.startswith("test") and symbol.parent.startswith("Test")
    return False


def module_names(path: str) -> list[str]:
    """Dotted module names a Python file answers to: every suffix of its dotted path
    ("src/pkg/mod.py" -> "src.pkg.mod", "pkg.mod", "mod")."""
    parts = list(PurePosixPath(path).with_suffix("").parts)
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return [".".join(parts[i:]) for i in range(len(parts)) if parts[i:]]


class DependencyGraph:
    """Resolved call edges between workspace symbols, built from per-file symbols and facts."""

    def __init__(self, symbols: dict[str, list[Symbol]], facts: dict[str, FileFacts]) -> None:
        self._symbols = symbols
        self._facts = facts
        self._modules: dict[str, list[str]] = {}
        for path in symbols:
            if path.endswith((".py", ".pyi")):
                for name in module_names(path):
                    self._modules.setdefault(name, []).append(path)
        for paths in self._modules.values():
            paths.sort(key=lambda p: (len(PurePosixPath(p).parts), p))
        self._by_qualified: dict[SymbolKey, Symbol] = {}
        self._by_name: dict[str, list[Symbol]] = {}
        for file_symbols in symbols.values():
            for symbol in file_symbols:
                self._by_qualified[key_of(symbol)] = symbol
                self._by_name.setdefault(symbol.name, []).append(symbol)
        self.callees_of: dict[SymbolKey, list[Symbol]] = {}
        self.callers_of: dict[SymbolKey, list[Symbol]] = {}
        self._bindings: dict[str, dict[str, tuple[str, object]]] = {}
        for path in symbols:
            self._resolve_file(path)

    # --- modules and bindings --------------------------------------------------------------

    def resolve_module(self, module: str, level: int = 0, from_path: str = "") -> str | None:
        """The workspace file of a (possibly relative) Python module, or None if external."""
        if level:
            package = list(PurePosixPath(from_path).parent.parts)
            if level > 1:
                package = package[: len(package) - (level - 1)]
            dotted = ".".join(package + ([module] if module else []))
            candidates = [dotted]
        else:
            candidates = [module]
        for name in candidates:
            paths = self._modules.get(name)
            if paths:
                return paths[0]
        return None

    def bindings(self, path: str) -> dict[str, tuple[str, object]]:
        """Names bound by imports in `path`: name -> ("module", path) | ("symbol", Symbol)."""
        found = self._bindings.get(path)
        if found is not None:
            return found
        found = {}
        self._bindings[path] = found  # registered first: import cycles see a partial table
        facts = self._facts.get(path)
        for item in facts.imports if facts else []:
            self._bind(path, item, found)
        return found

    def _bind(self, path: str, item: Import, out: dict[str, tuple[str, object]]) -> None:
        if not path.endswith((".py", ".pyi")):
            return
        if item.name is None:  # import a.b [as c]
            target = self.resolve_module(item.module, item.level, path)
            if target is None:
                return
            if item.bound != item.module.split(".")[0] or "." not in item.module:
                out[item.bound] = ("module", target)
            else:
                out[item.module] = ("module", target)  # qualifier text "a.b" in calls
            return
        if item.name == "*":
            target = self.resolve_module(item.module, item.level, path)
            for symbol in self._symbols.get(target or "", []):
                if symbol.parent is None:
                    out.setdefault(symbol.name, ("symbol", symbol))
            return
        dotted = f"{item.module}.{item.name}" if item.module else item.name
        submodule = self.resolve_module(dotted, item.level, path)
        if submodule is not None:
            out[item.bound] = ("module", submodule)
            return
        target = self.resolve_module(item.module, item.level, path)
        if target is None:
            return
        defined = self._by_qualified.get((target, item.name))
        if defined is not None:
            out[item.bound] = ("symbol", defined)
            return
        # A re-export (`from .impl import f` in a package __init__): follow one hop.
        inner = self.bindings(target).get(item.name) if target != path else None
        if inner is not None:
            out[item.bound] = inner

    # --- call resolution -------------------------------------------------------------------

    def _unique(self, name: str, kinds: tuple[str, ...]) -> Symbol | None:
        matches = [s for s in self._by_name.get(name, ()) if s.kind in kinds
                   and not is_test_path(s.path)]
        return matches[0] if len(matches) == 1 else None

    def resolve_call(self, path: str, call: CallRef, caller: Symbol | None) -> Symbol | None:
        """The workspace symbol a call in `path` (inside `caller`) most likely reaches."""
        bindings = self.bindings(path)
        if call.qualifier is None:
            local = self._by_qualified.get((path, call.name))
            if local is not None and local.parent is None:
                return local
            bound = bindings.get(call.name)
            if bound is not None and bound[0] == "symbol":
                return bound[1]  # type: ignore[return-value]
            if caller is not None and caller.parent:  # a sibling nested function
                nested = self._by_qualified.get((path, f"{caller.qualified_name}.{call.name}"))
                if nested is not None:
                    return nested
            return self._unique(call.name, (FUNCTION, CLASS))
        qualifier = call.qualifier
        if qualifier in ("self", "cls", "this") and caller is not None:
            owner = self._owner_class(caller)
            if owner is not None:
                method = self._by_qualified.get((path, f"{owner}.{call.name}"))
                if method is not None:
                    return method
            return self._unique(call.name, (METHOD,))
        bound = bindings.get(qualifier)
        if bound is not None:
            kind, target = bound
            if kind == "module":
                found = self._by_qualified.get((target, call.name))  # type: ignore[arg-type]
                if found is not None:
                    return found
                inner = self.bindings(target).get(call.name)  # type: ignore[arg-type]
                if inner is not None and inner[0] == "symbol":
                    return inner[1]  # type: ignore[return-value]
                return None
            if isinstance(target, Symbol) and target.kind == CLASS:
                return self._by_qualified.get((target.path, f"{target.qualified_name}.{call.name}"))
        local_class = self._by_qualified.get((path, qualifier))
        if local_class is not None and local_class.kind == CLASS:
            return self._by_qualified.get((path, f"{qualifier}.{call.name}"))
        return self._unique(call.name, (METHOD,))

    def _owner_class(self, symbol: Symbol) -> str | None:
        current: Symbol | None = symbol
        while current is not None and current.parent:
            parent = self._by_qualified.get((current.path, current.parent))
            if parent is None:
                return None
            if parent.kind == CLASS:
                return parent.qualified_name
            current = parent
        return None

    def _resolve_file(self, path: str) -> None:
        facts = self._facts.get(path)
        if facts is None:
            return
        functions = [s for s in self._symbols.get(path, []) if s.kind != CLASS]
        for call in facts.calls:
            caller = innermost(functions, call.byte)
            callee = self.resolve_call(path, call, caller)
            if callee is None or caller is None:
                continue
            caller_key, callee_key = key_of(caller), key_of(callee)
            if caller_key == callee_key:
                continue
            callees = self.callees_of.setdefault(caller_key, [])
            if callee not in callees:
                callees.append(callee)
            callers = self.callers_of.setdefault(callee_key, [])
            if caller not in callers:
                callers.append(caller)

    # --- tests -----------------------------------------------------------------------------

    def tests_of(self, symbol: Symbol) -> list[TestRef]:
        """Tests that call or reference `symbol` (or a method of it, for a class), then tests
        named after it in `test_<module>.py` / `<module>_test.py`, then that whole file."""
        targets = {key_of(symbol)}
        if symbol.kind == CLASS:
            prefix = symbol.qualified_name + "."
            targets |= {key_of(s) for s in self._symbols.get(symbol.path, [])
                        if s.qualified_name.startswith(prefix)}
        found: dict[str, TestRef] = {}

        def add(test: Symbol, reason: str) -> None:
            node_id = f"{test.path}::" + test.qualified_name.replace(".", "::")
            if node_id not in found:
                found[node_id] = TestRef(test.path, test.qualified_name, node_id,
                                         test.start_line, reason)

        test_paths = [p for p in self._symbols if is_pytest_file(p)]
        for path in test_paths:
            tests = [s for s in self._symbols[path] if is_test_function(s)]
            if not tests:
                continue
            for test in tests:
                for callee in self.callees_of.get(key_of(test), []):
                    if key_of(callee) in targets:
                        add(test, "calls")
                        break
            bindings = self.bindings(path)
            bound_names = {name for name, (kind, target) in bindings.items()
                           if kind == "symbol" and key_of(target) in targets}  # type: ignore[arg-type]
            facts = self._facts.get(path)
            if bound_names and facts is not None:
                for ref in facts.names:
                    if ref.name in bound_names:
                        referring = innermost(tests, ref.byte)
                        if referring is not None:
                            add(referring, "references")
        conventional = self._conventional_test_files(symbol.path, test_paths)
        for path in conventional:
            for test in self._symbols[path]:
                if is_test_function(test) and symbol.name.lower() in test.name.lower():
                    add(test, "name")
        if not found:
            for path in conventional:
                for test in self._symbols[path]:
                    if is_test_function(test):
                        add(test, "module")
        order = {"calls": 0, "references": 1, "name": 2, "module": 3}
        return sorted(found.values(), key=lambda t: (order[t.reason], t.path, t.line))

    @staticmethod
    def _conventional_test_files(path: str, test_paths: list[str]) -> list[str]:
        module = PurePosixPath(path)
        wanted = conventional_test_names(path)
        result = []
        for candidate in test_paths:
            candidate_path = PurePosixPath(candidate)
            if candidate_path.name not in wanted:
                continue
            beside = candidate_path.parent == module.parent
            in_tests = any(part in TEST_DIRECTORIES for part in candidate_path.parent.parts)
            if beside or in_tests:
                result.append(candidate)
        return result
