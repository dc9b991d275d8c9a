"""The test gate's work: what a target is tested by, the runs in a copy, and the verdict.

This module owns which checks a target has (`find_checks`: its tests by reference or naming
convention, its docstring's `>>>` examples, prose examples and round-trip inverses of a
module-level function), running them in a throwaway copy under the sandbox (`run_checks`:
pytest with a JUnit report, the doctest runner with a nonce; every input written and every
report read back without following links), and the test gate's verdict from the outcome
(`judge_tests`: a run that cannot be judged is a failure, a suite already broken on the
original is no failure of the candidate, and a candidate must not make the tests disappear).
The `Gate` decides whether the tests run at all (language, trust, isolation) and caches the
original's run.
"""

from __future__ import annotations

import ast
import json
import os
import secrets
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ..cancel import CancelToken
from ..data import GateResult
from ..workspace import Workspace
from .doctests import mend_line_breaks
from .examples import Example, bound_names, docstring_examples, function_parameters
from .inverses import inverse_checks
from .private_files import private_dir, read_private, write_private
from .request import VerifyRequest
from .sandbox import Limits, ProcessResult, Sandbox, failure_reason
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


@dataclass(frozen=True)
class Checks:
    """What a target can be tested by."""

    refs: list[str]  # pytest node ids or test files that exist (on disk or open)
    doctest: str | None  # the docstring, when it has `>>>` examples
    examples: list[Example]  # prose examples and round-trip checks

    @property
    def empty(self) -> bool:
        return not self.refs and self.doctest is None and not self.examples


def find_checks(workspace: Workspace, request: VerifyRequest) -> Checks:
    """The tests, doctest and examples of the request's target."""
    refs = list(request.test_refs) or discover_tests(workspace.root, request.path)
    refs = [ref for ref in refs if (workspace.root / ref.split("::", 1)[0]).exists()
            or workspace.document(ref.split("::", 1)[0]) is not None]
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
    return Checks(refs, docstring if has_doctest else None, examples)


def judge_tests(outcome: TestOutcome, checks: Checks, isolation: str,
                original: Callable[[], TestOutcome], *, max_lines: int) -> GateResult:
    """The test gate's result for the candidate's `outcome` (at most `max_lines` feedback
    lines); `original` is the run on the original text (cached by the caller), asked for only
    when a comparison needs it."""
    details: dict[str, Any] = {"refs": checks.refs, "doctest": checks.doctest is not None,
                               "examples": len(checks.examples),
                               "passed": outcome.passed, "failed": outcome.failed,
                               "isolation": isolation}
    if outcome.unparsed:
        details["unparsed"] = outcome.unparsed
    feedback = list(outcome.failures)
    if outcome.no_tests and not feedback:
        # the candidate's run collected nothing: a pass only when the original collects
        # nothing either (a candidate must not make the tests disappear)
        before = original()
        expected = before.passed + before.failed
        if expected:
            feedback.append(fail_line("tests", f"no tests collected ({expected} ran on the "
                                               f"original code)"))
    broken: dict[str, str] = {}
    if outcome.collection_errors:
        before = original()
        for test_file, message in outcome.collection_errors.items():
            if test_file in before.collection_errors:
                broken[test_file] = before.collection_errors[test_file]
            else:
                feedback.append(fail_line(f"{test_file} (collection)", message))
    if broken:
        details["broken_suite"] = broken
    if feedback:
        return GateResult("test", False, feedback=feedback[:max_lines],
                          details=details)
    if broken:
        first_file, message = next(iter(broken.items()))
        also = f" ({outcome.passed} other tests/examples passed)" if outcome.passed else ""
        return GateResult("test", True, details=details,
                          skipped=f"broken test suite: {first_file}: {message}{also}")
    if not outcome.ran:
        return GateResult("test", True, skipped=outcome.reason, details=details)
    return GateResult("test", True, details=details)


# --- running -------------------------------------------------------------------------------------


def run_checks(sandbox: Sandbox, workspace: Workspace, request: VerifyRequest,
               files: Mapping[str, str], refs: list[str], docstring: str | None,
               examples: Sequence[Example], keyword: str, *, python: Callable[[], str],
               timeout: float, limits: Limits, cancel: CancelToken | None) -> TestOutcome:
    """pytest on `refs` and the doctest runner on `docstring`/`examples`, in a copy of the
    workspace with `files` written; `python()` picks the interpreter once the copy exists."""
    combined = TestOutcome(ran=False)
    try:
        with workspace_copy(workspace, files) as root:
            scratch = scratch_dir(root)
            interpreter = python()
            env = python_env(root)
            if refs:
                _merge(combined, run_pytest(sandbox, root, scratch, interpreter, env, limits,
                                            refs, keyword, timeout, cancel))
            if docstring or examples:
                _merge(combined, run_doctest(sandbox, request, root, scratch, interpreter, env,
                                             limits, docstring, examples, timeout, cancel))
    except IncompleteCopy as exc:  # never a verdict on a partial project
        return TestOutcome(failures=[fail_line("tests", str(exc))], failed=1)
    return combined


def run_pytest(sandbox: Sandbox, root: Path, scratch: Path, python: str, env: dict[str, str],
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
            result = sandbox.run(argv, root, timeout=timeout, env=env, limits=limits,
                                 cancel=cancel, writable=root.parent, scratch=scratch)
            if cancel is not None:
                cancel.raise_if_cancelled()
            if selection and result.returncode == 5:
                continue  # no test matches the keyword: run the files
            return pytest_outcome(result, read_private(report_fd, "junit.xml"), timeout)
        finally:
            os.close(report_fd)
    raise AssertionError("unreachable: the last selection always returns")


def run_doctest(sandbox: Sandbox, request: VerifyRequest, root: Path, scratch: Path, python: str,
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
    result = sandbox.run(argv, root, timeout=timeout, env=env, limits=limits,
                         cancel=cancel, writable=root.parent, scratch=scratch,
                         stdin_text=nonce + "\n")
    if cancel is not None:
        cancel.raise_if_cancelled()
    if result.timed_out:
        return TestOutcome(failures=[fail_line(
            f"doctest {name}", f"timed out after {timeout:g}s (process tree killed)")],
            failed=1)
    outcome = digest_doctest(result.stdout, name, nonce)
    if outcome.undecided:
        # the runner ended without its result (os._exit, a crash): that is no pass
        return TestOutcome(failures=[fail_line(
            f"doctest {name}", f"{outcome.undecided} ({failure_reason(result)})")],
            failed=1)
    if not outcome.ran:
        outcome.reason += f" ({failure_reason(result)})"
    return outcome


def pytest_outcome(result: ProcessResult, report: str | None, timeout: float) -> TestOutcome:
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
        outcome.collection_errors["<pytest>"] = failure_reason(result)
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


def python_env(copy_root: Path) -> dict[str, str]:
    """The environment a Python tool run in a copy gets (the tests here, the type check in the
    gate): the copy first on sys.path, so an editable install of the project cannot shadow it."""
    paths = [str(copy_root / "src"), str(copy_root)] if (copy_root / "src").is_dir() \
        else [str(copy_root)]
    return {"PYTHONPATH": ":".join(paths)}


# --- Python source ------------------------------------------------------------------------------


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
