"""The verification gate: parse, safety, lint, type check, tests, diff review — in that order.

A candidate is judged on the whole target file as it would be after the change (the overlay
text plus the candidate). Each gate returns structured feedback lines the retry prompt can use.
Checks that need files run in a throwaway copy; nothing is ever written into the user's tree.
An untrusted workspace gets the parse and safety checks only, with zero subprocesses.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import os
import re
import secrets
import shutil
import sys
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path, PurePosixPath
from typing import Any

from ..cancel import Cancelled, CancelToken
from ..config import Config
from ..data import Candidate, GateResult, Patch, Verdict
from ..index.languages import is_test_path, language_for_path
from ..index.syntax import SyntaxChecker
from ..inference.backend import Backend
from ..logs import get_logger
from ..workspace import Workspace
from . import lint as lint_mod
from .doctests import mend_line_breaks
from .examples import Example, bound_names, docstring_examples, function_parameters
from .inverses import inverse_checks
from .review import review, unanswered
from .sandbox import Limits, ProcessResult, Sandbox, private_dir, read_private, write_private
from .testrun import (
    DOCTEST_RUNNER,
    TestOutcome,
    digest_doctest,
    digest_junit,
    discover_tests,
    fail_line,
    module_name_for,
)
from .workcopy import IncompleteCopy, scratch_dir, workspace_copy

log = get_logger("verify")

MAX_CANDIDATE_BYTES = 200 * 1024
_MAX_LINES_PER_GATE = 10
_LINT_TIMEOUT = 60.0
_CACHED_REQUESTS = 8
NOT_TRUSTED = "workspace not trusted"

# Files whose edit would change what "passing" means.
PROTECTED_NAMES = frozenset({
    "pyproject.toml", "setup.cfg", "setup.py", "tox.ini", "pytest.ini", "conftest.py",
    "localcode.toml", "ruff.toml", ".ruff.toml", "mypy.ini", ".mypy.ini", ".flake8", "noxfile.py",
    "package.json", "tsconfig.json", "pyrightconfig.json", ".pre-commit-config.yaml",
})
PROTECTED_PATTERNS = (".eslintrc*", "eslint.config.*", "jest.config.*", "vitest.config.*")


def is_protected_path(path: str) -> bool:
    """True for test files and tool configuration (editing them could fake a pass)."""
    name = PurePosixPath(path).name
    if name in PROTECTED_NAMES or any(fnmatch(name, pattern) for pattern in PROTECTED_PATTERNS):
        return True
    return is_test_path(path)


@dataclass(frozen=True)
class VerifyRequest:
    """What the gate needs to know about the target besides the candidate."""

    path: str  # workspace-relative target file
    original_text: str  # the target as the editor has it (overlay), before any candidate
    symbol: str | None = None
    task: str = ""  # what the change should do (for the diff review)
    test_refs: tuple[str, ...] = ()  # pytest node ids or test files; () = naming convention
    doctest_source: str | None = None  # the target's docstring; None = read from the original
    language: str | None = None  # None = from the file extension
    extra_files: Mapping[str, str] = field(default_factory=dict)  # other files a candidate edits
    # other files as earlier verified steps of the same task left them: the tests and the type
    # check see them, the gates do not judge them (they passed their own verification)
    base_files: Mapping[str, str] = field(default_factory=dict)
    allow_protected_edits: bool = False  # the user asked to change a test/config file itself
    # names the target's docstring calls that the project defines in other files (the index
    # knows them): an example of one of those is about that function, not the target renamed
    defined_elsewhere: frozenset[str] = frozenset()
    # the diff review's prompt form, as the run's prompt family chose it ("text" or "chat")
    review_form: str = "text"
    # diagnosing the code as it is (a fix without diagnostics): the unchanged file is what is
    # judged, not a candidate that forgot to change anything
    as_is: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "test_refs", tuple(self.test_refs))
        object.__setattr__(self, "defined_elsewhere", frozenset(self.defined_elsewhere))

    def fingerprint(self) -> str:
        parts = [self.path, self.original_text, self.symbol or "", "\0".join(self.test_refs),
                 self.doctest_source or "", "\0".join(sorted(self.defined_elsewhere)),
                 *(f"{path}\0{text}" for path, text in sorted(self.base_files.items()))]
        return hashlib.sha1("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


@dataclass
class _RequestCache:
    """Per-request results that do not depend on the candidate."""

    lint: list[lint_mod.Diagnostic] | None = None
    types: list[lint_mod.Diagnostic] | None = None
    tests: TestOutcome | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class Gate:
    """Decides whether candidates are good and says why not, one structured line per problem."""

    def __init__(self, workspace: Workspace, config: Config,
                 backend: Callable[[], Backend] | None = None, *,
                 sandbox: Sandbox | None = None) -> None:
        self.workspace = workspace
        self.config = config
        self._backend = backend
        protect = [workspace.root, Path.home(), Path(sys.prefix), Path(sys.base_prefix)]
        self.sandbox = sandbox or Sandbox(protect=[p for p in protect if str(p) != "/"])
        self._syntax = SyntaxChecker()
        self._cache: OrderedDict[str, _RequestCache] = OrderedDict()
        self._lock = threading.Lock()
        self._interpreters: dict[str, str | None] = {}

    def isolation_description(self) -> str:
        """Which sandbox isolation runs get (for `doctor`)."""
        return self.sandbox.isolation_description()

    # --- public calls --------------------------------------------------------------------

    def verify(self, request: VerifyRequest, candidate: Candidate, *,
               cancel: CancelToken | None = None) -> Verdict:
        """Run every enabled gate on one candidate (raises Cancelled when cancelled)."""
        settings = self.config.verification
        verdict = Verdict(candidate.id)
        language = request.language or language_for_path(request.path) or ""

        parse = self._timed(lambda: self._parse_gate(request, candidate, language))
        verdict.gates.append(parse)
        safety = self._timed(lambda: self._safety_gate(request, candidate))
        verdict.gates.append(safety)
        if not (parse.passed and safety.passed):
            return verdict
        later = [name for name, enabled in (("lint", settings.lint), ("type", settings.type_check),
                                            ("test", settings.test),
                                            ("review", settings.diff_review)) if enabled]
        if not self.workspace.trusted:
            verdict.gates.extend(GateResult(name, True, skipped=NOT_TRUSTED) for name in later)
            return verdict
        runners = {
            "lint": lambda: self._lint_gate(request, candidate, language, cancel),
            "type": lambda: self._type_gate(request, candidate, language, cancel),
            "test": lambda: self._test_gate(request, candidate, language, cancel),
        }
        for name in later:
            _raise_if_cancelled(cancel)
            if name == "review":
                if not verdict.passed:
                    verdict.gates.append(GateResult("review", True,
                                                    skipped="not run: an earlier gate failed"))
                    continue
                verdict.gates.append(self._timed(lambda: self._review_gate(request, candidate,
                                                                           cancel)))
            else:
                verdict.gates.append(self._timed(runners[name]))
        _raise_if_cancelled(cancel)
        return verdict

    def verify_all(self, request: VerifyRequest, candidates: Sequence[Candidate], *,
                   cancel: CancelToken | None = None, stop_at_first: bool = True) -> list[Verdict]:
        """Verdicts in candidate order; stops after the first full pass when `stop_at_first`."""
        verdicts = []
        for candidate in candidates:
            _raise_if_cancelled(cancel)
            verdict = self.verify(request, candidate, cancel=cancel)
            verdicts.append(verdict)
            if stop_at_first and verdict.passed:
                break
        return verdicts

    # --- gates ---------------------------------------------------------------------------

    def _parse_gate(self, request: VerifyRequest, candidate: Candidate,
                    language: str) -> GateResult:
        problem = bad_candidate_problem(request, candidate)
        if problem:
            return GateResult("parse", False, feedback=[problem])
        if not self.config.verification.parse_check:
            return GateResult("parse", True, skipped="off in [verification]")
        if not language:
            return GateResult("parse", True, skipped=f"no grammar for {request.path}")
        problems = self._syntax.check(candidate.file_text, language)
        if problems:
            return GateResult("parse", False, feedback=[p.feedback_line() for p in problems],
                              details={"errors": len(problems)})
        return GateResult("parse", True)

    def _safety_gate(self, request: VerifyRequest, candidate: Candidate) -> GateResult:
        changed = _changed_lines(request.original_text, candidate.file_text)
        for text in request.extra_files.values():
            changed += len(text.splitlines())
        details: dict[str, Any] = {"changed_lines": changed}
        feedback = []
        if is_protected_path(request.path) and not request.allow_protected_edits:
            feedback.append(f"TAMPERING: candidate edits tests/config: {request.path}")
        for path in request.extra_files:
            if path == request.path:
                continue
            if is_protected_path(path):
                feedback.append(f"TAMPERING: candidate edits tests/config: {path}")
            else:
                feedback.append(f"TAMPERING: candidate edits a file other than the target: {path}")
        if (request.language or language_for_path(request.path)) == "python":
            risky = [(name, line) for name, line in lint_mod.introduced_risky_calls(
                request.original_text, candidate.file_text) if not _asked_for(name, request.task)]
            if risky:
                details["risky_calls"] = [name for name, _ in risky]
            feedback += [f"UNSAFE: candidate calls {name.lstrip('.')} (line {line}): code under "
                         f"test must not start or end processes, change files or open sockets "
                         f"unless the task asks for it" for name, line in risky[:3]]
        return GateResult("safety", not feedback, feedback=feedback, details=details)

    def _lint_gate(self, request: VerifyRequest, candidate: Candidate, language: str,
                   cancel: CancelToken | None) -> GateResult:
        if language == "python":
            linter = self._ruff_argv(request.path)
            if linter is None:
                return GateResult("lint", True, skipped="ruff not installed")
            parse = lint_mod.parse_ruff_json
        elif language in ("javascript", "typescript", "tsx"):
            eslint = self.workspace.root / "node_modules" / ".bin" / "eslint"
            if not eslint.exists():
                return GateResult("lint", True,
                                  skipped="eslint not installed in the project's node_modules")
            linter = [str(eslint), "--format", "json", "--stdin", "--stdin-filename",
                      str(self.workspace.root / request.path)]
            parse = lint_mod.parse_eslint_json
        else:
            return GateResult("lint", True, skipped=f"no linter for {language or request.path}")

        def diagnostics(text: str) -> list[lint_mod.Diagnostic] | str:
            result = self.sandbox.run(linter, self.workspace.root, timeout=_LINT_TIMEOUT,
                                      stdin_text=text, cancel=cancel,
                                      limits=Limits(file_size_mb=16))
            _raise_if_cancelled(cancel)
            if result.error or result.timed_out or result.returncode not in (0, 1):
                return _failure_reason(result)
            try:
                return parse(result.stdout)
            except (ValueError, KeyError, TypeError) as exc:
                return str(exc)

        compared = self._introduced("lint", "linter", "lint", diagnostics, request, candidate)
        if isinstance(compared, GateResult):
            return compared
        new, found, original = compared
        return GateResult("lint", not new, feedback=[d.lint_line() for d in new][:_MAX_LINES_PER_GATE],
                          details={"new": len(new), "total": len(found),
                                   "original": len(original)})

    def _introduced(self, gate: str, tool: str, cache_field: str,
                    check: Callable[[str], list[lint_mod.Diagnostic] | str],
                    request: VerifyRequest, candidate: Candidate,
                    ) -> GateResult | tuple[list[lint_mod.Diagnostic], list[lint_mod.Diagnostic],
                                            list[lint_mod.Diagnostic]]:
        """Run `check` on the original (once per request, cached) and on the candidate; return
        (introduced, candidate's, original's) diagnostics, or a skipped GateResult when the
        tool itself failed. Only what the candidate introduced may fail a gate."""
        cache = self._request_cache(request)
        with cache.lock:
            if getattr(cache, cache_field) is None:
                original = check(request.original_text)
                if isinstance(original, str):
                    return GateResult(gate, True, skipped=f"{tool} failed: {original}")
                setattr(cache, cache_field, original)
        found = check(candidate.file_text)
        if isinstance(found, str):
            return GateResult(gate, True, skipped=f"{tool} failed: {found}")
        baseline = getattr(cache, cache_field)
        new = lint_mod.introduced(baseline, found, request.original_text, candidate.file_text)
        return new, found, baseline

    def _type_gate(self, request: VerifyRequest, candidate: Candidate, language: str,
                   cancel: CancelToken | None) -> GateResult:
        if language != "python":
            return GateResult("type", True, skipped=f"no type checker for {language or 'this file'}")
        checker = self._type_checker()
        if checker is None:
            return GateResult("type", True, skipped="neither mypy nor pyright is installed")
        unisolated = self._unisolated_refusal()  # mypy plugins are project code
        if unisolated:
            return GateResult("type", True, skipped=unisolated,
                              details={"isolation": self.sandbox.mode})
        kind, argv_prefix = checker

        def errors(text: str) -> list[lint_mod.Diagnostic] | str:
            with workspace_copy(self.workspace, {**request.base_files,
                                                 request.path: text}) as root:
                scratch = scratch_dir(root)
                if kind == "mypy":
                    argv = [*argv_prefix, "--no-error-summary", "--show-column-numbers",
                            "--no-color-output", "--hide-error-context", "--follow-imports=silent",
                            "--cache-dir", str(scratch / "mypy-cache"), request.path]
                else:
                    argv = [*argv_prefix, "--outputjson", request.path]
                result = self.sandbox.run(argv, root, timeout=self.config.verification.test_timeout,
                                          cancel=cancel, writable=root.parent, scratch=scratch,
                                          env=self._python_env(root))
            _raise_if_cancelled(cancel)
            if result.error or result.timed_out or result.returncode not in (0, 1):
                return _failure_reason(result)
            try:
                if kind == "mypy":
                    return lint_mod.parse_mypy_output(result.stdout, request.path)
                return lint_mod.parse_pyright_json(result.stdout, request.path)
            except (ValueError, KeyError, TypeError) as exc:
                return str(exc)

        compared = self._introduced("type", kind, "types", errors, request, candidate)
        if isinstance(compared, GateResult):
            return compared
        new, _found, _original = compared
        return GateResult("type", not new, feedback=[d.type_line() for d in new][:_MAX_LINES_PER_GATE],
                          details={"new": len(new), "checker": kind,
                                   "isolation": self.sandbox.mode})

    def _test_gate(self, request: VerifyRequest, candidate: Candidate, language: str,
                   cancel: CancelToken | None) -> GateResult:
        if language != "python":
            return GateResult("test", True, skipped=f"tests: only pytest is supported, not "
                                                    f"{language or request.path}")
        refs = list(request.test_refs) or discover_tests(self.workspace.root, request.path)
        refs = [ref for ref in refs if (self.workspace.root / ref.split("::", 1)[0]).exists()
                or self.workspace.document(ref.split("::", 1)[0]) is not None]
        module = python_module(request.original_text) if request.symbol else None
        definition = None
        if module is not None and request.symbol:
            definition = python_definition(module, request.symbol)
        docstring = request.doctest_source
        if docstring is None and definition is not None:
            docstring = ast.get_docstring(definition, clean=True)
        has_doctest = bool(docstring and ">>>" in docstring)
        # prose examples (`f(2) == 4`) of a module-level function become checks as well
        examples: list[Example] = []
        if request.symbol and "." not in request.symbol:
            parameters = function_parameters(definition) if isinstance(
                definition, (ast.FunctionDef, ast.AsyncFunctionDef)) else ()
            bound = bound_names(module) | request.defined_elsewhere if module is not None \
                else None
            examples = docstring_examples(docstring or "", request.symbol, parameters, bound)
            if module is not None:  # an implemented inverse gives round-trip checks
                examples += inverse_checks(module, request.symbol)
        if not refs and not has_doctest and not examples:
            return GateResult("test", True,
                              skipped=f"no tests found for {request.symbol or request.path}")
        unisolated = self._unisolated_refusal()
        if unisolated:
            return GateResult("test", True, skipped=unisolated,
                              details={"isolation": self.sandbox.mode})

        # Convention-found files hold tests of other functions too: select the symbol's own
        # tests by keyword when there are any (the run falls back to the whole file otherwise).
        keyword = ""
        if not request.test_refs and request.symbol:
            keyword = request.symbol.rsplit(".", 1)[-1]
        outcome = self._run_tests(request, {**request.base_files,
                                            request.path: candidate.file_text,
                                            **request.extra_files},
                                  refs, docstring if has_doctest else None, cancel, keyword,
                                  examples)
        details: dict[str, Any] = {"refs": refs, "doctest": has_doctest,
                                   "examples": len(examples),
                                   "passed": outcome.passed, "failed": outcome.failed,
                                   "isolation": self.sandbox.mode}
        if outcome.unparsed:
            details["unparsed"] = outcome.unparsed
        feedback = list(outcome.failures)
        if outcome.no_tests and not feedback:
            # the candidate's run collected nothing: a pass only when the original collects
            # nothing either (a candidate must not make the tests disappear)
            original = self._original_tests(request, refs, cancel)
            expected = original.passed + original.failed
            if expected:
                feedback.append(fail_line("tests", f"no tests collected ({expected} ran on the "
                                                   f"original code)"))
        broken: dict[str, str] = {}
        if outcome.collection_errors:
            original = self._original_tests(request, refs, cancel)
            for test_file, message in outcome.collection_errors.items():
                if test_file in original.collection_errors:
                    broken[test_file] = original.collection_errors[test_file]
                else:
                    feedback.append(fail_line(f"{test_file} (collection)", message))
        if broken:
            details["broken_suite"] = broken
        if feedback:
            return GateResult("test", False, feedback=feedback[:_MAX_LINES_PER_GATE],
                              details=details)
        if broken:
            first_file, message = next(iter(broken.items()))
            also = f" ({outcome.passed} other tests/examples passed)" if outcome.passed else ""
            return GateResult("test", True, details=details,
                              skipped=f"broken test suite: {first_file}: {message}{also}")
        if not outcome.ran:
            return GateResult("test", True, skipped=outcome.reason, details=details)
        return GateResult("test", True, details=details)

    def _review_gate(self, request: VerifyRequest, candidate: Candidate,
                     cancel: CancelToken | None) -> GateResult:
        if not request.task.strip():
            return GateResult("review", True, skipped="no task description to review against")
        if request.as_is:
            return GateResult("review", True, skipped="no change to review")
        if self._backend is None:
            return GateResult("review", True, skipped="no model backend")
        try:
            backend = self._backend()
        except Exception as exc:  # a review that could not ask cannot pass the change
            return unanswered(f"the model did not load: {exc}")
        diff = Patch(request.path, request.original_text, candidate.file_text).unified_diff()
        return review(backend, request.task, diff,
                      temperature=self.config.generation.temperature_classify, cancel=cancel,
                      form=request.review_form, context_length=self.config.model.context_length)

    # --- running tests -------------------------------------------------------------------

    def _run_tests(self, request: VerifyRequest, files: Mapping[str, str], refs: list[str],
                   docstring: str | None, cancel: CancelToken | None,
                   keyword: str = "", examples: Sequence[Example] = ()) -> TestOutcome:
        timeout = self.config.verification.test_timeout
        combined = TestOutcome(ran=False)
        try:
            with workspace_copy(self.workspace, files) as root:
                scratch = scratch_dir(root)
                python = self._python()
                env = self._python_env(root)
                limits = Limits(memory_mb=self.config.verification.memory_limit_mb)
                if refs:
                    _merge(combined, self._run_pytest(root, scratch, python, env, limits, refs,
                                                      keyword, timeout, cancel))
                if docstring or examples:
                    _merge(combined, self._run_doctest(request, root, scratch, python, env,
                                                       limits, docstring, examples, timeout,
                                                       cancel))
        except IncompleteCopy as exc:  # never a verdict on a partial project
            return TestOutcome(failures=[fail_line("tests", str(exc))], failed=1)
        return combined

    def _run_pytest(self, root: Path, scratch: Path, python: str, env: dict[str, str],
                    limits: Limits, refs: list[str], keyword: str, timeout: float,
                    cancel: CancelToken | None) -> TestOutcome:
        """pytest on `refs` (by `keyword` first when one is given), its JUnit report digested.

        Each run writes its report into a fresh directory, read back without following links.
        """
        result: ProcessResult | None = None
        for selection in ([["-k", keyword]] if keyword and keyword.isidentifier() else []) + [[]]:
            report_dir, report_fd = private_dir(root.parent, "report-")
            try:
                argv = [python, "-m", "pytest", "-q", "-rfE", "--tb=short", "-p",
                        "no:cacheprovider", f"--junitxml={report_dir / 'junit.xml'}", *refs,
                        *selection]
                result = self.sandbox.run(argv, root, timeout=timeout, env=env, limits=limits,
                                          cancel=cancel, writable=root.parent, scratch=scratch)
                _raise_if_cancelled(cancel)
                if selection and result.returncode == 5:
                    continue  # no test matches the keyword: run the files
                return _pytest_outcome(result, read_private(report_fd, "junit.xml"), timeout)
            finally:
                os.close(report_fd)
        raise AssertionError("unreachable: the last selection always returns")

    def _run_doctest(self, request: VerifyRequest, root: Path, scratch: Path, python: str,
                     env: dict[str, str], limits: Limits, docstring: str | None,
                     examples: Sequence[Example], timeout: float,
                     cancel: CancelToken | None) -> TestOutcome:
        """The docstring's examples run by DOCTEST_RUNNER; its inputs go to a fresh directory
        (written without following links), its result line carries a nonce given on stdin."""
        inputs, inputs_fd = private_dir(root.parent, "doctest-")
        try:
            write_private(inputs_fd, "doctest_source.txt", mend_line_breaks(docstring or ""))
            write_private(inputs_fd, "docstring_examples.json",
                          json.dumps([e.as_record() for e in examples]))
            write_private(inputs_fd, "localcode_doctest.py", DOCTEST_RUNNER)
        finally:
            os.close(inputs_fd)
        name = request.symbol or PurePosixPath(request.path).stem
        nonce = secrets.token_hex(16)
        argv = [python, str(inputs / "localcode_doctest.py"), str(root), request.path,
                module_name_for(request.path), name, str(inputs / "doctest_source.txt"),
                str(inputs / "docstring_examples.json")]
        result = self.sandbox.run(argv, root, timeout=timeout, env=env, limits=limits,
                                  cancel=cancel, writable=root.parent, scratch=scratch,
                                  stdin_text=nonce + "\n")
        _raise_if_cancelled(cancel)
        if result.timed_out:
            return TestOutcome(failures=[fail_line(
                f"doctest {name}", f"timed out after {timeout:g}s (process tree killed)")],
                failed=1)
        outcome = digest_doctest(result.stdout, name, nonce)
        if outcome.undecided:
            # the runner ended without its result (os._exit, a crash): that is no pass
            return TestOutcome(failures=[fail_line(
                f"doctest {name}", f"{outcome.undecided} ({_failure_reason(result)})")],
                failed=1)
        if not outcome.ran:
            outcome.reason += f" ({_failure_reason(result)})"
        return outcome

    def _original_tests(self, request: VerifyRequest, refs: list[str],
                        cancel: CancelToken | None) -> TestOutcome:
        """The test run on the original text, once per request (to spot a broken suite)."""
        cache = self._request_cache(request)
        with cache.lock:
            if cache.tests is None:
                keyword = request.symbol.rsplit(".", 1)[-1] if (
                    request.symbol and not request.test_refs) else ""
                cache.tests = self._run_tests(request, {**request.base_files,
                                                        request.path: request.original_text},
                                              refs, None, cancel, keyword)
            return cache.tests

    def _unisolated_refusal(self) -> str:
        """Why project code may not run here ("" = it may): no isolation and the user did not
        allow running without it ([verification] allow_unisolated)."""
        if self.sandbox.isolated or self.config.verification.allow_unisolated:
            return ""
        return ("not run: no sandbox works on this machine (plain mode: no file, network or "
                "socket isolation); set [verification] allow_unisolated = true to run the "
                "project's code without isolation")

    def _python(self) -> str:
        """The project's interpreter when it has pytest (its venv), else ours."""
        with self._lock:
            if "python" in self._interpreters:
                return self._interpreters["python"] or sys.executable
        chosen: str | None = None
        for venv in (".venv", "venv", "env"):
            candidate = self.workspace.root / venv / "bin" / "python"
            if candidate.exists() and not self._unisolated_refusal():
                probe = self.sandbox.run([str(candidate), "-c", "import pytest"],
                                         self.workspace.root, timeout=20)
                if probe.ok:
                    chosen = str(candidate)
                    break
        with self._lock:
            self._interpreters["python"] = chosen
        return chosen or sys.executable

    def _python_env(self, copy_root: Path) -> dict[str, str]:
        # The copy first on sys.path, so an editable install of the project cannot shadow it.
        paths = [str(copy_root / "src"), str(copy_root)] if (copy_root / "src").is_dir() \
            else [str(copy_root)]
        return {"PYTHONPATH": ":".join(paths)}

    def _type_checker(self) -> tuple[str, list[str]] | None:
        if importlib.util.find_spec("mypy") is not None:
            return "mypy", [sys.executable, "-m", "mypy"]
        pyright = shutil.which("pyright")
        if pyright:
            return "pyright", [pyright]
        return None

    def _ruff_argv(self, path: str) -> list[str] | None:
        candidates = [self.workspace.root / ".venv" / "bin" / "ruff",
                      Path(sys.executable).parent / "ruff"]
        ruff = next((str(c) for c in candidates if c.exists()), None) or shutil.which("ruff")
        if ruff is None:
            return None
        return [ruff, "check", "--output-format", "json", "--no-cache", "--force-exclude",
                *lint_mod.ruff_rule_args(self.workspace.root, path),
                "--stdin-filename", str(self.workspace.root / path), "-"]

    # --- helpers -------------------------------------------------------------------------

    def _request_cache(self, request: VerifyRequest) -> _RequestCache:
        key = request.fingerprint()
        with self._lock:
            cache = self._cache.get(key)
            if cache is None:
                cache = self._cache[key] = _RequestCache()
                while len(self._cache) > _CACHED_REQUESTS:
                    self._cache.popitem(last=False)
            else:
                self._cache.move_to_end(key)
            return cache

    @staticmethod
    def _timed(run: Callable[[], GateResult]) -> GateResult:
        started = time.monotonic()
        result = run()
        result.seconds = time.monotonic() - started
        return result


def rank(verdicts: Sequence[Verdict]) -> list[Verdict]:
    """Best first: parses > safe > passes lint > passes tests > types > review > shortest diff."""
    def key(indexed: tuple[int, Verdict]) -> tuple:
        index, verdict = indexed
        changed = max((g.details.get("changed_lines", 0) for g in verdict.gates), default=0)
        return (tuple(-k for k in verdict.rank_key()), changed, index)

    return [v for _, v in sorted(enumerate(verdicts), key=key)]


def bad_candidate_problem(request: VerifyRequest, candidate: Candidate) -> str:
    """A `BAD CANDIDATE: ...` line for empty, enormous, binary or unchanged candidates."""
    text, file_text = candidate.text, candidate.file_text
    if not text.strip() or not file_text.strip():
        return "BAD CANDIDATE: empty (the model produced no code)"
    for label, value in (("fragment", text), ("file", file_text)):
        if "\x00" in value:
            line = value.count("\n", 0, value.index("\x00")) + 1
            return f"BAD CANDIDATE: binary content (NUL byte in the {label} at line {line})"
    fragment_bytes = len(text.encode("utf-8", "surrogatepass"))
    growth = len(file_text.encode("utf-8", "surrogatepass")) - \
        len(request.original_text.encode("utf-8", "surrogatepass"))
    if fragment_bytes > MAX_CANDIDATE_BYTES or growth > MAX_CANDIDATE_BYTES:
        size = max(fragment_bytes, growth) // 1024
        return (f"BAD CANDIDATE: too large ({size} KB, limit {MAX_CANDIDATE_BYTES // 1024} KB)")
    try:
        file_text.encode("utf-8")
    except UnicodeEncodeError:
        return "BAD CANDIDATE: binary content (not valid text)"
    if file_text == request.original_text and not request.extra_files \
            and not request.base_files and not request.as_is:
        # (a caller may need no change of its own after a step)
        return "BAD CANDIDATE: no change (the file is identical to the original)"
    return ""


def python_module(source: str) -> ast.Module | None:
    """Python `source` parsed, or None when it does not parse."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(source)
    except (SyntaxError, ValueError, RecursionError):
        return None


def python_definition(tree: ast.Module, symbol: str
                      ) -> ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | None:
    """The definition of `symbol` ("func" or "Class.method") in a parsed module, if any."""
    scope: list[ast.stmt] = list(tree.body)
    found: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | None = None
    for part in symbol.split("."):
        found = next((node for node in scope
                      if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                      and node.name == part), None)
        if found is None:
            return None
        scope = list(found.body)
    return found


def _changed_lines(before: str, after: str) -> int:
    import difflib

    matcher = difflib.SequenceMatcher(a=before.splitlines(), b=after.splitlines(), autojunk=False)
    return sum(max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in matcher.get_opcodes()
               if tag != "equal")


def _pytest_outcome(result: ProcessResult, report: str | None, timeout: float) -> TestOutcome:
    """The digest of one pytest run. A run that cannot be judged is a failure, never a pass:
    pytest ending without its report (a test calling `os._exit(0)`, a crash) tells nothing."""
    if result.timed_out:
        return TestOutcome(failures=[fail_line(
            "tests", f"timed out after {timeout:g}s (process tree killed)")], failed=1)
    if result.error:
        return TestOutcome(ran=False, reason=result.error)
    if result.returncode == 5:
        return TestOutcome(ran=False, reason="no tests collected", no_tests=True)
    outcome: TestOutcome | None = None
    if report is not None:
        try:
            outcome = digest_junit(report)
        except ValueError:
            outcome = None
    if outcome is None:
        if result.returncode in (0, 1):
            return TestOutcome(failures=[fail_line(
                "tests", f"pytest exited with {result.returncode} without writing its report "
                         f"(os._exit or a crash?): the run cannot be judged")], failed=1)
        outcome = TestOutcome()
    if result.returncode not in (0, 1) and not outcome.failures and not outcome.collection_errors:
        # pytest could not start (conftest import error, bad option): a suite-level problem.
        outcome.collection_errors["<pytest>"] = _failure_reason(result)
    return outcome


def _merge(into: TestOutcome, outcome: TestOutcome) -> None:
    into.failures += outcome.failures
    into.collection_errors.update(outcome.collection_errors)
    into.passed += outcome.passed
    into.failed += outcome.failed
    into.unparsed += outcome.unparsed
    into.no_tests = into.no_tests or outcome.no_tests
    if outcome.ran:
        into.ran = True
        into.reason = ""
    elif not into.ran:
        into.reason = "; ".join(r for r in (into.reason, outcome.reason) if r)


def _failure_reason(result: ProcessResult) -> str:
    if result.error:
        return result.error
    if result.timed_out:
        return f"timed out after {result.seconds:.0f}s"
    lines = [line.strip() for line in (result.stderr or result.stdout).splitlines() if line.strip()]
    interesting = [line for line in lines if "rror" in line] or lines
    tail = interesting[-1] if interesting else "no output"
    return f"exit code {result.returncode}: {tail[:200]}"


def _asked_for(call: str, task: str) -> bool:
    """Whether the task names what a risky call does (`subprocess`, `os.system`, `rmtree`...),
    so a change the user asked for is not refused for doing it."""
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", task.lower()))
    parts = [part.lower() for part in call.strip(".").split(".") if part and part != "os"]
    return any(part.strip("_") in words or part in words for part in parts)


def _raise_if_cancelled(cancel: CancelToken | None) -> None:
    if cancel is not None and cancel.cancelled:
        raise Cancelled(cancel.reason)
