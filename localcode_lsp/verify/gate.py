"""The verification gate: parse, safety, lint, type check, tests, diff review — in that order.

A candidate is judged on the whole target file as it would be after the change (the overlay
text plus the candidate). Each gate returns structured feedback lines the retry prompt can use.
Checks that need files run in a throwaway copy; nothing is ever written into the user's tree.
An untrusted workspace gets the parse and safety checks only, with zero subprocesses.

This module owns the orchestration and the verdict: the order of the gates, what trust and
isolation allow to run, skipping the review after a failed gate, timing, the per-request cache
of the original's results (only what a candidate introduces may fail lint and type check),
which tool runs each check, and `rank`. The checks without a subprocess live in `safety.py`,
the test gate's checks, runs and verdict in `testgate.py`; `VerifyRequest` is `request.py`.
"""

from __future__ import annotations

import ast
import importlib.util
import shutil
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..cancel import Cancelled, CancelToken
from ..config import Config
from ..data import Candidate, GateResult, Patch, Verdict
from ..index.languages import language_for_path
from ..index.syntax import SyntaxChecker
from ..inference.backend import Backend
from ..logs import get_logger
from ..workspace import Workspace
from . import lint as lint_mod
from .behaviour import run_probes
from .examples import Example
from .probes import ProbeCall, probe_calls
from .request import VerifyRequest
from .review import review, unanswered
from .safety import bad_candidate_problem, safety_gate
from .sandbox import Limits, Sandbox, failure_reason
from .testgate import (
    find_checks,
    judge_tests,
    python_definition,
    python_env,
    python_module,
    run_checks,
)
from .testrun import TestOutcome
from .workcopy import scratch_dir, workspace_copy

log = get_logger("verify")

_MAX_LINES_PER_GATE = 10
_LINT_TIMEOUT = 60.0
_CACHED_REQUESTS = 8
NOT_TRUSTED = "workspace not trusted"


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

    def probes(self, request: VerifyRequest) -> list[ProbeCall]:
        """Calls near the target's docstring examples (`verify.probes`) when those examples are
        its only checks: [] when project tests cover it, it shows no literal call, or its code
        may not run here (untrusted workspace, no sandbox, not Python)."""
        language = request.language or language_for_path(request.path) or ""
        if (language != "python" or not request.symbol or "." in request.symbol
                or not self.workspace.trusted or not self.config.verification.test
                or self._unisolated_refusal()):
            return []  # a method needs an instance the examples do not give
        module = python_module(request.original_text)
        if module is None or not isinstance(python_definition(module, request.symbol),
                                            ast.FunctionDef):
            return []  # a coroutine's result is awaited, not compared
        checks = find_checks(self.workspace, request)
        if checks.refs:
            return []
        return probe_calls(checks.doctest or "", request.symbol, checks.examples)

    def behaviour(self, request: VerifyRequest, candidate: Candidate, calls: Sequence[ProbeCall],
                  *, cancel: CancelToken | None = None) -> tuple[str, ...] | None:
        """What the candidate's function returns on each of `calls` (`verify.behaviour`); None
        when the run gave no result."""
        if not calls or self._unisolated_refusal() or not self.workspace.trusted:
            return None
        settings = self.config.verification
        return run_probes(self.sandbox, self.workspace, request,
                          candidate_files(request, candidate), calls,
                          python=self._python(), timeout=settings.test_timeout,
                          limits=Limits(memory_mb=settings.memory_limit_mb), cancel=cancel)

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
        return safety_gate(request, candidate)

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
                return failure_reason(result)
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
                                          env=python_env(root))
            _raise_if_cancelled(cancel)
            if result.error or result.timed_out or result.returncode not in (0, 1):
                return failure_reason(result)
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
        checks = find_checks(self.workspace, request)
        if checks.empty:
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
        outcome = self._run_tests(request, candidate_files(request, candidate),
                                  checks.refs, checks.doctest, cancel, keyword, checks.examples)
        return judge_tests(outcome, checks, self.sandbox.mode,
                           lambda: self._original_tests(request, checks.refs, cancel),
                           max_lines=_MAX_LINES_PER_GATE)

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
        settings = self.config.verification
        return run_checks(self.sandbox, self.workspace, request, files, refs, docstring,
                          examples, keyword, python=self._python, timeout=settings.test_timeout,
                          limits=Limits(memory_mb=settings.memory_limit_mb), cancel=cancel)

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


def candidate_files(request: VerifyRequest, candidate: Candidate) -> dict[str, str]:
    """The files a candidate's runs see: earlier steps' files, the candidate's target file and
    the request's extra files."""
    return {**request.base_files, request.path: candidate.file_text, **request.extra_files}


def rank(verdicts: Sequence[Verdict]) -> list[Verdict]:
    """Best first: parses > safe > passes lint > passes tests > types > review > shortest diff."""
    def key(indexed: tuple[int, Verdict]) -> tuple:
        index, verdict = indexed
        changed = max((g.details.get("changed_lines", 0) for g in verdict.gates), default=0)
        return (tuple(-k for k in verdict.rank_key()), changed, index)

    return [v for _, v in sorted(enumerate(verdicts), key=key)]


def _raise_if_cancelled(cancel: CancelToken | None) -> None:
    if cancel is not None and cancel.cancelled:
        raise Cancelled(cancel.reason)
