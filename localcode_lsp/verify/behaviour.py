"""What a candidate returns on the probe calls (`probes.py`), run in a copy under the sandbox.

The runner imports the target module as the doctest runner does, calls the function on each
probe with a time limit per call, and prints one result line carrying the nonce it read on stdin
(code under test that prints a fake line does not know it). An outcome is the value's canonical
text (floats to 6 significant digits), "raises" for any exception and "timeout"; the function's
own prints go nowhere. A run that gives no result line has no behaviour (None): such a candidate
agrees with nobody.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping, Sequence

from ..cancel import CancelToken
from ..workspace import Workspace
from .private_files import private_dir, write_private
from .probes import ProbeCall
from .request import VerifyRequest
from .sandbox import Limits, Sandbox
from .testgate import python_env
from .testrun import IMPORT_TARGET, module_name_for
from .workcopy import IncompleteCopy, scratch_dir, workspace_copy

BEHAVIOUR_SENTINEL = "LOCALCODE-BEHAVIOUR-RESULT:"
PER_CALL_SECONDS = 1.0

BEHAVIOUR_RUNNER = (r'''
import ast, hashlib, importlib, importlib.util, inspect, itertools, json, math, os, re, signal, sys
nonce = sys.stdin.readline().strip()  # read before any project code runs
root, rel_path, module_name, name, calls_path, per_call = sys.argv[1:7]
with open(calls_path, encoding="utf-8") as handle:
    calls = json.load(handle)
results = []
''' + IMPORT_TARGET + r'''
real_stdout = sys.stdout
function = module
for part in name.split("."):
    function = getattr(function, part, None)
if not callable(function):
    results.append({"error": "no function " + name})
    emit()
    sys.exit(0)

def canonical(value, depth=0):
    if depth > 20:
        return "..."
    if inspect.isgenerator(value) or isinstance(value, (map, filter, zip, range)):
        value = list(itertools.islice(value, 1000))
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, float):
        return "float:" + ("%.6g" % value)
    if isinstance(value, (list, tuple)):
        inner = ", ".join(canonical(v, depth + 1) for v in value)
        return type(value).__name__ + "[" + inner + "]"
    if isinstance(value, dict):
        items = sorted((canonical(k, depth + 1), canonical(v, depth + 1)) for k, v in value.items())
        return "dict{" + ", ".join(k + ": " + v for k, v in items) + "}"
    if isinstance(value, (set, frozenset)):
        return "set{" + ", ".join(sorted(canonical(v, depth + 1) for v in value)) + "}"
    # an object's default repr names its address, which differs from run to run
    return type(value).__name__ + ":" + re.sub(" at 0x[0-9a-fA-F]+", "", repr(value)[:500])

def bounded(text):
    """A long outcome as its head and a digest of the whole."""
    if len(text) <= 2000:
        return text
    return text[:1000] + "#" + hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()

class ProbeTimeout(BaseException):
    pass

def on_alarm(*_):
    raise ProbeTimeout()

signal.signal(signal.SIGALRM, on_alarm)
sink = open(os.devnull, "w")
timeouts = 0
for call in calls:
    if timeouts >= 3:  # a function that hangs here hangs everywhere: do not wait on it more
        results.append("timeout")
        continue
    try:
        args = [ast.literal_eval(a) for a in call["args"]]
        kwargs = {k: ast.literal_eval(v) for k, v in call["kwargs"].items()}
    except Exception:
        results.append("unreadable")
        continue
    sys.stdout = sink
    try:
        signal.setitimer(signal.ITIMER_REAL, float(per_call))
        try:
            outcome = bounded(canonical(function(*args, **kwargs)))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except ProbeTimeout:
        outcome = "timeout"
        timeouts += 1
    except BaseException:
        outcome = "raises"
    finally:
        sys.stdout = real_stdout
    results.append(outcome)
emit()
''').replace("__SENTINEL__", BEHAVIOUR_SENTINEL)


def run_probes(sandbox: Sandbox, workspace: Workspace, request: VerifyRequest,
               files: Mapping[str, str], calls: Sequence[ProbeCall], *, python: str,
               timeout: float, limits: Limits,
               cancel: CancelToken | None) -> tuple[str, ...] | None:
    """The outcome of each probe call on the function of `files[request.path]`, in a copy of
    the workspace; None when the run gave no result (it crashed, timed out or did not import)."""
    if not calls or not request.symbol:
        return None
    try:
        with workspace_copy(workspace, files) as root:
            scratch = scratch_dir(root)
            inputs, inputs_fd = private_dir(root.parent, "probes-")
            try:
                write_private(inputs_fd, "probe_calls.json",
                              json.dumps([call.as_record() for call in calls]))
                write_private(inputs_fd, "localcode_probes.py", BEHAVIOUR_RUNNER)
            finally:
                os.close(inputs_fd)
            nonce = secrets.token_hex(16)
            argv = [python, str(inputs / "localcode_probes.py"), str(root), request.path,
                    module_name_for(request.path), request.symbol,
                    str(inputs / "probe_calls.json"), str(PER_CALL_SECONDS)]
            result = sandbox.run(argv, root, timeout=timeout, env=python_env(root), limits=limits,
                                 cancel=cancel, writable=root.parent, scratch=scratch,
                                 stdin_text=nonce + "\n")
    except IncompleteCopy:
        return None
    if cancel is not None:
        cancel.raise_if_cancelled()
    return read_outcomes(result.stdout, nonce, len(calls))


def read_outcomes(stdout: str, nonce: str, expected: int) -> tuple[str, ...] | None:
    """The outcomes on the result line that carries `nonce`; None when there is none, or it
    does not hold one outcome per call."""
    prefix = f"{BEHAVIOUR_SENTINEL}{nonce}:"
    for line in reversed(stdout.splitlines()):
        if not line.startswith(prefix):
            continue
        try:
            outcomes = json.loads(line[len(prefix):])
        except ValueError:
            return None
        if (isinstance(outcomes, list) and len(outcomes) == expected
                and all(isinstance(o, str) for o in outcomes)):
            return tuple(outcomes)
        return None
    return None
