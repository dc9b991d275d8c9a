"""Relevant tests and doctests for one target, run with pytest in a throwaway copy, digested.

Failures become one line each: `TEST FAIL: test_parse_input — AssertionError: expected 3, got
None`. Results come from a JUnit XML report written inside the copy (sturdier than scraping
the terminal); `digest_pytest` also reads plain `-rfE` terminal output.
"""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..index.discovery import NEVER_WALKED_DIRS
from ..index.languages import conventional_test_names

DASH = "\u2014"  # the em dash of `TEST FAIL: name — message`
_MAX_MESSAGE = 200
_MAX_DISCOVERED = 8
DOCTEST_SENTINEL = "LOCALCODE-DOCTEST-RESULT:"


@dataclass
class TestOutcome:
    """What one pytest (or doctest) run said, digested."""

    failures: list[str] = field(default_factory=list)  # TEST FAIL lines
    collection_errors: dict[str, str] = field(default_factory=dict)  # test file -> message
    passed: int = 0
    failed: int = 0
    ran: bool = True  # False: nothing was collected / runnable
    reason: str = ""  # why not `ran`, or a timeout
    unparsed: list[str] = field(default_factory=list)  # docstring examples left out, and why
    no_tests: bool = False  # pytest collected nothing (exit code 5)
    undecided: str = ""  # the run ended without a result it could be judged by, and why


def fail_line(name: str, message: str) -> str:
    """`TEST FAIL: name — message` (message cut to one short line)."""
    first = " ".join((message or "failed").strip().splitlines()[:1]) or "failed"
    if len(first) > _MAX_MESSAGE:
        first = first[: _MAX_MESSAGE - 3] + "..."
    return f"TEST FAIL: {name} {DASH} {first}"


# --- digestion ----------------------------------------------------------------------------------


def digest_junit(xml_text: str) -> TestOutcome:
    """Digest a pytest JUnit XML report (ValueError when it is not one)."""
    try:
        root = ElementTree.fromstring(xml_text)
    except ElementTree.ParseError as exc:
        raise ValueError(f"not a JUnit XML report: {exc}") from exc
    outcome = TestOutcome()
    for case in root.iter("testcase"):
        name = case.get("name", "?")
        classname = case.get("classname", "")
        last = classname.rsplit(".", 1)[-1] if classname else ""
        display = f"{last}.{name}" if last.startswith("Test") else name
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if problem is None:
            if case.find("skipped") is None:
                outcome.passed += 1
            continue
        message = problem.get("message", "") or ""
        text = problem.text or ""
        if problem.tag == "error" and message.startswith("collection failure"):
            test_file = _module_to_file(classname, name)
            outcome.collection_errors[test_file] = _last_error_line(text) or message
            continue
        outcome.failed += 1
        detail = _best_message(message, text)
        if problem.tag == "error":
            detail = f"error in setup/teardown: {detail}"
        outcome.failures.append(fail_line(display, detail))
    return outcome


def digest_pytest(output: str) -> list[str]:
    """One structured line per failure from pytest output: JUnit XML or `-rfE` terminal text."""
    stripped = output.lstrip()
    if stripped.startswith("<"):
        outcome = digest_junit(stripped)
        return outcome.failures + [
            f"TEST ERROR: {path} {DASH} collection failed: {message}"
            for path, message in outcome.collection_errors.items()]
    lines = []
    for raw in output.splitlines():
        match = re.match(r"^(FAILED|ERROR) (\S+?)(?: - (.*))?$", raw.strip())
        if not match:
            continue
        kind, node, message = match.groups()
        name = node.split("::")[-1] if "::" in node else node
        if kind == "ERROR" and "::" not in node:
            lines.append(f"TEST ERROR: {node} {DASH} collection failed: {message or 'error'}")
        else:
            lines.append(fail_line(name, message or "failed"))
    return lines


def _best_message(message: str, text: str) -> str:
    first = message.strip().splitlines()[0] if message.strip() else ""
    if first and first not in ("AssertionError", "assert False"):
        return first
    return _last_error_line(text) or first or "failed"


def _last_error_line(text: str) -> str:
    """The last `E   ...` line of a pytest traceback (the exception), else the last line."""
    error_lines = [line[1:].strip() for line in text.splitlines() if line.startswith("E ")]
    exception_lines = [line for line in error_lines if re.match(r"^[A-Za-z_.]+(Error|Exception)", line)]
    if exception_lines:
        return exception_lines[-1]
    if error_lines:
        return error_lines[0]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _module_to_file(classname: str, name: str) -> str:
    dotted = classname or name
    return dotted.replace(".", "/") + ".py" if dotted and not dotted.endswith(".py") else dotted


# --- which tests ----------------------------------------------------------------------------------


def discover_tests(root: Path, target: str) -> list[str]:
    """Test files for `target` by naming convention (test_<stem>.py, <stem>_test.py)."""
    posix = PurePosixPath(target)
    names = conventional_test_names(target)
    if not names:
        return []
    if posix.name in names or posix.name.startswith("test_"):
        return [target]  # the target is itself a test file
    found: list[str] = []
    for directory, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames
                             if d not in NEVER_WALKED_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            if name in names:
                found.append(Path(directory, name).relative_to(root).as_posix())
                if len(found) >= _MAX_DISCOVERED:
                    return found
    return found


def test_files_of(refs: list[str]) -> list[str]:
    """The file part of node ids (`tests/test_a.py::test_x` -> `tests/test_a.py`)."""
    return sorted({ref.split("::", 1)[0] for ref in refs})


# --- doctest ----------------------------------------------------------------------------------------


def module_name_for(path: str) -> str:
    """`src/pkg/mod.py` -> `pkg.mod`; "" when the path is not importable by name."""
    parts = list(PurePosixPath(path).with_suffix("").parts)
    if parts and parts[0] == "src":
        parts = parts[1:]
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    if not parts or not all(part.isidentifier() for part in parts):
        return ""
    return ".".join(parts)


# The runners' shared start: `root`, `rel_path`, `module_name`, `nonce` and an empty `results`
# are set; the target module is imported as a package member (else from its path), and a
# failed import is the result line.
IMPORT_TARGET = r'''
def emit():
    print("__SENTINEL__" + nonce + ":" + json.dumps(results))
for extra in (os.path.join(root, "src"), root):
    if os.path.isdir(extra):
        sys.path.insert(0, extra)
try:
    module = None
    if module_name:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name.split(".")[0]:
                raise
    if module is None:
        spec = importlib.util.spec_from_file_location("_localcode_target", os.path.join(root, rel_path))
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
except BaseException as exc:
    results.append({"source": "import " + (module_name or rel_path), "error": "%s: %s" % (type(exc).__name__, exc)})
    emit()
    sys.exit(0)
'''

DOCTEST_RUNNER = (r'''
import ast, asyncio, doctest, importlib, importlib.util, inspect, json, math, os, re, sys, traceback
nonce = sys.stdin.readline().strip()  # read before any project code runs
root, rel_path, module_name, name, docstring_path = sys.argv[1:6]
examples_path = sys.argv[6] if len(sys.argv) > 6 else ""
with open(docstring_path, encoding="utf-8") as handle:
    docstring = handle.read()
examples = []
if examples_path:
    with open(examples_path, encoding="utf-8") as handle:
        examples = json.load(handle)
results = []
''' + IMPORT_TARGET + r'''
def meant(example, got):
    """Whether output doctest rejects is still what the docstring's author plainly wrote:
    the same literal in other spelling (`"21"` for `'21'`), or `True` for an example that is a
    comparison with no output line (`>>> f([]) == 0`)."""
    want = example.want.strip()
    got = got.strip()
    if not want:
        try:
            tree = ast.parse(example.source, mode="eval")
        except SyntaxError:
            return False
        return isinstance(tree.body, ast.Compare) and got == "True"
    try:
        return same(ast.literal_eval(got), ast.literal_eval(want))
    except Exception:
        return False

def left_side(source, globs):
    """`f(x) is 3` for a comparison example: its left side evaluated again."""
    try:
        tree = ast.parse(source, mode="eval")
        left = tree.body.left
        value = eval(compile(ast.Expression(left), "<doctest>", "eval"), globs)
        return "%s is %s" % (ast.unparse(left), repr(value)[:200])
    except BaseException as exc:
        return "its left side raised %s" % type(exc).__name__

class Runner(doctest.DocTestRunner):
    def report_failure(self, out, test, example, got):
        if meant(example, got):
            return
        want, got = example.want.strip(), got.strip()
        if not want and got == "False":  # `>>> f(x) == y` that does not hold: say what f gave
            want, got = "True", "False (%s)" % left_side(example.source, test.globs)
        results.append({"source": example.source.strip(), "want": want, "got": got})
    def report_unexpected_exception(self, out, test, example, exc_info):
        kind, value = exc_info[0], exc_info[1]
        results.append({"source": example.source.strip(), "error": "%s: %s" % (kind.__name__, value)})

def same(got, want):
    """`==` as the docstring means it, with a float tolerance (`6.00`, `16.`)."""
    try:
        if isinstance(want, float) or isinstance(got, float):
            return math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-6)
        if isinstance(want, (tuple, list)) and type(got) is type(want):
            return len(got) == len(want) and all(same(a, b) for a, b in zip(got, want))
        return bool(got == want)
    except Exception:
        return False

def parse_examples(text):
    """The docstring's doctest examples. Doctest rejects a whole docstring for one malformed
    example; then each prompt's block is parsed alone, and only the rejected ones are left out.
    An example whose source does not compile cannot test anything: it is left out as well."""
    parser = doctest.DocTestParser()
    try:
        found = parser.get_examples(text, name)
    except ValueError:
        found = None
    rejected = []
    if found is None:
        found = []
        lines = text.splitlines(keepends=True)
        starts = [i for i, line in enumerate(lines) if line.lstrip().startswith(">>>")]
        for index, start in enumerate(starts):
            end = starts[index + 1] if index + 1 < len(starts) else len(lines)
            try:
                block = parser.get_examples("".join(lines[start:end]), name)
            except ValueError as exc:
                reason = re.sub(r"^line \d+ of the docstring for \S+ (?:has )?", "", str(exc))
                rejected.append({"source": lines[start].strip(), "unparsed": reason})
                continue
            for example in block:
                example.lineno += start
            found.extend(block)
    kept = []
    for example in found:
        try:
            compile(example.source, "<doctest>", "single", dont_inherit=True)
        except (SyntaxError, ValueError) as exc:
            rejected.append({"source": ">>> " + example.source.strip().splitlines()[0],
                             "unparsed": "%s: %s" % (type(exc).__name__, getattr(exc, "msg", exc))})
            continue
        kept.append(example)
    return kept, rejected

attempted = 0
if docstring.strip():
    found, rejected = parse_examples(docstring)
    results.extend(rejected)
    test = doctest.DocTest(found, dict(vars(module)), name, rel_path, 0, docstring)
    runner = Runner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    attempted += runner.run(test, out=lambda text: None, clear_globs=True).attempted
for example in examples:
    if example.get("guard"):
        try:  # a check's precondition (the input is in the encoder's domain): else skip it
            eval(compile(example["guard"], "<self check>", "eval"), dict(vars(module)))
        except BaseException:
            continue
    attempted += 1
    wants = [ast.literal_eval(source) for source in example["expected"]]
    try:
        got = eval(compile(example["call"], "<docstring example>", "eval"), dict(vars(module)))
        if inspect.iscoroutine(got):  # an async function's example states the awaited value
            got = asyncio.run(got)
    except BaseException as exc:
        results.append({"source": example["display"],
                        "error": "%s: %s" % (type(exc).__name__, exc), "kind": "example"})
        continue
    if not any(same(got, want) for want in wants):
        results.append({"source": example["display"], "want": example["want"],
                        "got": repr(got), "kind": "example"})
results.append({"attempted": attempted})
emit()
''').replace("__SENTINEL__", DOCTEST_SENTINEL)


def digest_doctest(stdout: str, name: str, nonce: str = "") -> TestOutcome:
    """Digest the doctest runner's sentinel line into TEST FAIL lines.

    `nonce` is the secret the runner read on stdin: only a result line carrying it counts (code
    under test printing a fake result line does not know it). No result line at all means the
    run cannot be judged: `undecided` says so.
    """
    outcome = TestOutcome()
    prefix = f"{DOCTEST_SENTINEL}{nonce}:"
    for line in reversed(stdout.splitlines()):
        if line.startswith(prefix):
            try:
                records = json.loads(line[len(prefix):])
            except ValueError:
                continue
            break
    else:
        outcome.ran = False
        outcome.reason = "the doctest runner printed no result"
        outcome.undecided = "the doctest run ended without its result"
        return outcome
    for record in records:
        if "attempted" in record:
            outcome.passed = max(0, int(record["attempted"]) - outcome.failed)
            if not int(record["attempted"]):
                outcome.ran = False
                outcome.reason = f"no docstring example of {name} could be run"
                if outcome.unparsed:
                    outcome.reason += f": {outcome.unparsed[0]}"
            continue
        if "unparsed" in record:
            outcome.unparsed.append(f"{record.get('source', '?')} ({record['unparsed']})")
            continue
        label = f"{record.get('kind', 'doctest')} {name}"
        outcome.failed += 1
        source = record.get("source", "").splitlines()[0] if record.get("source") else "?"
        if "error" in record:
            message = f"{source} raised {record['error']}"
        else:
            message = f"{source} expected {record.get('want') or '(nothing)'}, got " \
                      f"{record.get('got') or '(nothing)'}"
        outcome.failures.append(fail_line(label, message))
    return outcome
