"""Agreement: where a function's docstring examples are its only checks, a passing candidate is
compared with others on inputs near those examples, and the candidates vote when they differ.

`x + 2`, `x * 2` and `x ** 2` all pass `double(2) == 4`; only one of them doubles. The FSM tests
use a predicate gate; the last tests run the real gate (sandboxed probe runs, no model).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from support.pipeline_fakes import FakeGate, FakeIndex
from support.scripted_backend import ScriptedBackend

from localcode_lsp.config import Config, GenerationConfig, VerificationConfig
from localcode_lsp.data import Candidate, Task
from localcode_lsp.engine import Engine
from localcode_lsp.verify.gate import Gate
from localcode_lsp.verify.probes import ProbeCall, probe_calls, variants
from localcode_lsp.verify.request import VerifyRequest
from localcode_lsp.workspace import Workspace

STUB = '''"""Calculator helpers."""


def double(x):
    """Return x doubled.

    >>> double(2)
    4
    """


def greet(name):
    return "hi " + name
'''
PLUS_TWO, TIMES_TWO, SQUARE, TWO_TIMES, PLUS_ONE = (
    "    return x + 2\n", "    return x * 2\n", "    return x ** 2\n", "    return 2 * x\n",
    "    return x + 1\n")
PROBES = [ProbeCall(("1",)), ProbeCall(("3",)), ProbeCall(("0",))]


def run_body(body: str, x: int) -> int:
    namespace: dict = {}
    exec("def double(x):\n" + body, namespace)
    return namespace["double"](x)


def check_double(body: str) -> list[str]:
    value = run_body(body, 2)
    return [] if value == 4 else [f"TEST FAIL: double(2) expected 4, got {value}"]


def behave(body: str) -> tuple[str, ...]:
    return tuple(str(run_body(body, int(call.args[0]))) for call in PROBES)


def make_engine(tmp_path: Path, outputs, *, candidates=5, agreement=True, probes=PROBES):
    (tmp_path / "calc.py").write_text(STUB)
    config = dataclasses.replace(
        Config(), generation=GenerationConfig(candidates=candidates, max_retries=0),
        verification=VerificationConfig(agreement=agreement))
    backend = ScriptedBackend(outputs=list(outputs))
    engine = Engine(tmp_path, config=config, backend=backend)
    engine._index = FakeIndex(tmp_path)
    engine._gate = FakeGate(check_double, probe_list=list(probes), behave=behave)
    return engine, backend


def implement(engine):
    return engine.implement(Task(path="calc.py", symbol="double", intent="edit"))


def messages(result) -> list[str]:
    return [event.message for event in result.trace if event.state == "VERIFY"]


def test_a_pass_that_a_second_candidate_agrees_with_is_accepted(tmp_path):
    engine, backend = make_engine(tmp_path, [TIMES_TWO, TWO_TIMES])
    result = implement(engine)
    assert result.status == "verified", result.message
    assert "    return x * 2\n" in result.patches[0].after
    assert len(backend.calls) == 2  # the first pass, then one second opinion
    assert any("Candidates 1, 2 agree on 3 inputs" in m for m in messages(result))


def test_a_second_prompt_that_writes_the_same_body_is_a_vote_for_it(tmp_path):
    engine, backend = make_engine(tmp_path, [TIMES_TWO, TIMES_TWO])
    result = implement(engine)
    assert result.status == "verified", result.message
    assert len(backend.calls) == 2 and len(result.candidates) == 1
    assert any("Candidate 1 was drawn 2 times" in m for m in messages(result))


def test_identical_samples_weigh_as_many_votes_as_they_were_drawn(tmp_path):
    # x + 2 (file alone) and x * 2 (context greedy) differ; two of the three samples are the
    # same x ** 2: after the last draw it is the heaviest group (2 votes of 4)
    engine, backend = make_engine(tmp_path, [PLUS_TWO, TIMES_TWO, SQUARE, SQUARE, PLUS_ONE])
    result = implement(engine)
    assert "    return x ** 2\n" in result.patches[0].after  # the vote is only as good as the votes


def test_passing_candidates_that_differ_vote_and_the_largest_group_wins(tmp_path):
    # file alone: x + 2; context greedy: x * 2; then three samples: x ** 2, 2 * x, x + 1
    engine, backend = make_engine(tmp_path, [PLUS_TWO, TIMES_TWO, SQUARE, TWO_TIMES, PLUS_ONE])
    result = implement(engine)
    assert result.status == "verified", result.message
    after = result.patches[0].after
    assert "    return x * 2\n" in after and "x + 2" not in after
    assert len(backend.calls) == 5
    said = messages(result)
    assert any("Candidates 1 and 2 differ on double(1): 3 vs 2" in m for m in said), said
    assert any("largest group that behaves alike (2 of 4)" in m for m in said), said


def test_a_majority_ends_the_vote_before_the_draws_run_out(tmp_path):
    # x + 2 passes, x * 2 differs: the samples come; 2 * x sides with x * 2 (2 of 3 passing)
    engine, backend = make_engine(tmp_path, [PLUS_TWO, TIMES_TWO, TWO_TIMES, PLUS_ONE,
                                             PLUS_ONE.replace("1", "3")], candidates=5)
    result = implement(engine)
    assert result.status == "verified"
    assert "    return x * 2\n" in result.patches[0].after


def test_a_lone_pass_is_accepted_when_nothing_else_passes(tmp_path):
    engine, backend = make_engine(tmp_path, [TIMES_TWO, PLUS_ONE, "    return 0\n",
                                             "    return 1\n", "    return 3\n"])
    result = implement(engine)
    assert result.status == "verified"
    assert "    return x * 2\n" in result.patches[0].after
    assert len(backend.calls) == 5  # every draw of the attempt looked for a second opinion
    assert any("no other candidate passed to compare with" in m for m in messages(result))


def test_without_probe_calls_or_with_agreement_off_the_first_pass_wins(tmp_path):
    for kwargs in ({"probes": []}, {"agreement": False}):
        engine, backend = make_engine(tmp_path, [PLUS_TWO, TIMES_TWO], **kwargs)
        result = implement(engine)
        assert result.status == "verified"
        assert "    return x + 2\n" in result.patches[0].after
        assert len(backend.calls) == 1


# --- probe calls --------------------------------------------------------------------------------


def test_probe_calls_change_one_literal_argument_at_a_time_and_skip_the_examples():
    docstring = ">>> add([1, 2, 3], 2)\n8\n>>> add([], 0)\n0\nadd([5], k=1) == 6\n"
    calls = [call.source("add") for call in probe_calls(docstring, "add")]
    assert "add([1, 2, 3], 2)" not in calls and "add([], 0)" not in calls
    assert calls[:4] == ["add([1, 2], 2)", "add([1, 2, 3], 3)", "add([], 1)", "add([], 2)"]
    assert len(calls) == len(set(calls)) <= 24
    assert probe_calls("Return the sum of xs.", "add") == []
    assert probe_calls(">>> add(xs, 2)\n5\n", "add") == []  # a name is no literal


def test_variants_stay_of_the_same_kind_and_small():
    assert variants(True) == [False]
    assert all(type(v) is int for v in variants(7)) and 7 not in variants(7)
    assert variants("ab") == ["a", "", "ba", "aba", "b", "AB"]
    assert all(isinstance(v, tuple) for v in variants((1, 2)))
    assert all(len(v) <= 64 for v in variants("x" * 64))
    assert variants(None) == [] and variants(object()) == []


# --- the real gate --------------------------------------------------------------------------------


def real_gate(tmp_path: Path, text: str = STUB) -> tuple[Gate, VerifyRequest]:
    (tmp_path / "calc.py").write_text(text)
    config = dataclasses.replace(Config(), verification=VerificationConfig(
        lint=False, diff_review=False))
    gate = Gate(Workspace(tmp_path), config)
    return gate, VerifyRequest(path="calc.py", original_text=text, symbol="double", task="t")


def with_body(body: str) -> str:
    return STUB.replace('    """\n\n\ndef greet', '    """\n' + body + "\n\ndef greet")


def test_the_gate_runs_each_candidate_on_the_probe_calls_in_the_sandbox(tmp_path):
    gate, request = real_gate(tmp_path)
    calls = gate.probes(request)
    assert [call.source("double") for call in calls] == [
        "double(3)", "double(1)", "double(0)", "double(-2)", "double(5)"]
    doubled = gate.behaviour(request, Candidate(1, TIMES_TWO, with_body(TIMES_TWO)), calls)
    plus = gate.behaviour(request, Candidate(2, PLUS_TWO, with_body(PLUS_TWO)), calls)
    assert doubled == ("int:6", "int:2", "int:0", "int:-4", "int:10")
    assert plus is not None and plus != doubled
    hangs = "    while x != 4:\n        x += 2\n    return x\n"
    # odd inputs never reach 4: each such call is stopped after a second, the others return
    assert gate.behaviour(request, Candidate(3, hangs, with_body(hangs)), calls) == (
        "timeout", "timeout", "int:4", "int:4", "timeout")


def test_a_candidate_that_forges_the_result_line_has_no_behaviour(tmp_path):
    gate, request = real_gate(tmp_path)
    calls = gate.probes(request)
    forged = ("    import os, sys\n"
              "    print('LOCALCODE-BEHAVIOUR-RESULT:' + '0' * 32 + ':[\"int:6\"]')\n"
              "    sys.stdout.flush()\n    os._exit(0)\n")
    assert gate.behaviour(request, Candidate(1, forged, with_body(forged)), calls) is None


def test_a_function_with_project_tests_gets_no_probe_calls(tmp_path):
    gate, request = real_gate(tmp_path)
    (tmp_path / "test_calc.py").write_text("from calc import double\n\n\ndef test_double():\n"
                                           "    assert double(3) == 6\n")
    assert gate.probes(request) == []


def test_the_vote_with_the_real_gate_applies_the_function_that_doubles(tmp_path):
    (tmp_path / "calc.py").write_text(STUB)
    config = dataclasses.replace(
        Config(), generation=GenerationConfig(candidates=3, max_retries=0),
        verification=VerificationConfig(lint=False, diff_review=False))
    backend = ScriptedBackend(outputs=[PLUS_TWO, TIMES_TWO, TWO_TIMES])
    engine = Engine(tmp_path, config=config, backend=backend)
    engine._index = FakeIndex(tmp_path)
    result = implement(engine)
    assert result.status == "verified", result.message
    namespace: dict = {}
    exec(result.patches[0].after, namespace)
    assert [namespace["double"](x) for x in (0, 5, -3)] == [0, 10, -6]
    assert (tmp_path / "calc.py").read_text() == STUB  # nothing written before the user applies


def test_outcomes_compare_values_not_object_identities(tmp_path):
    gate, request = real_gate(tmp_path)
    calls = gate.probes(request)
    lazy = "    return (x * 2 for _ in range(2))\n"
    boxed = "    return object()\n"
    assert gate.behaviour(request, Candidate(1, lazy, with_body(lazy)), calls)[0] == (
        "list[int:6, int:6]")
    first = gate.behaviour(request, Candidate(2, boxed, with_body(boxed)), calls)
    second = gate.behaviour(request, Candidate(3, boxed, with_body(boxed + "\n")), calls)
    assert first == second and first is not None and " at 0x" not in first[0]


def test_coroutines_and_methods_get_no_probe_calls(tmp_path):
    gate, request = real_gate(tmp_path, STUB.replace("def double", "async def double"))
    assert gate.probes(request) == []
    method = ("class Calc:\n    def double(self, x):\n        \"\"\"Twice.\n\n"
              "        >>> double(2)\n        4\n        \"\"\"\n")
    gate, request = real_gate(tmp_path, method)
    assert gate.probes(dataclasses.replace(request, symbol="Calc.double")) == []
