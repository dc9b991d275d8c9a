"""FSM unit tests: scripted backend, ast-based fake index, predicate gate. No model, no tools."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from support.pipeline_fakes import FakeGate, FakeIndex
from support.scripted_backend import ScriptedBackend

from localcode_lsp.cancel import CancelToken
from localcode_lsp.config import Config, GenerationConfig
from localcode_lsp.data import Position, Task
from localcode_lsp.engine import Engine
from localcode_lsp.pipeline import TRANSITIONS, State, next_state
from localcode_lsp.pipeline.states import TERMINAL

CALC = '''"""Calculator helpers."""


def double(x):
    """Return x doubled.

    >>> double(2)
    4
    """


def quadruple(x):
    """Return x times four."""
    return double(double(x))


def greet(name):
    return "hi " + name
'''

GOOD = "    return x * 2\n"
BAD = "    return x + 1\n"
FAIL_LINE = "TEST FAIL: test_double — AssertionError: expected 4, got 3"


def check_double(body: str) -> list[str]:
    namespace: dict = {}
    try:
        exec("def double(x):\n" + body, namespace)
        value = namespace["double"](2)
    except Exception as exc:  # a broken candidate is a failing candidate
        return [f"TEST FAIL: test_double — {type(exc).__name__}: {exc}"]
    return [] if value == 4 else [f"TEST FAIL: test_double — AssertionError: expected 4, got {value}"]


def make_engine(tmp_path: Path, outputs, *, candidates=2, retries=2, check=check_double,
                text=CALC, on_call=None):
    (tmp_path / "calc.py").write_text(text)
    config = dataclasses.replace(
        Config(), generation=GenerationConfig(candidates=candidates, max_retries=retries))
    backend = ScriptedBackend(outputs=list(outputs), on_call=on_call)
    engine = Engine(tmp_path, config=config, backend=backend)
    engine._index = FakeIndex(tmp_path)
    engine._gate = FakeGate(check)
    return engine, backend


def states_of(result):
    return [event.state for event in result.trace if "next" in event.data]


def test_transition_table_is_total_over_non_terminal_states():
    for state in State:
        if state in TERMINAL:
            assert all(s is not state for s, _ in TRANSITIONS)
        else:
            assert any(s is state for s, _ in TRANSITIONS), state
        assert next_state(state, "cancelled") is State.CANCELLED
    with pytest.raises(KeyError):
        next_state(State.LOCATE, "made_up")


def test_implements_a_stub_first_try(tmp_path):
    engine, backend = make_engine(tmp_path, [GOOD, BAD])
    result = engine.implement(Task(path="calc.py", symbol="double", intent="edit"))
    assert result.status == "verified", result.message
    assert states_of(result) == ["UNDERSTAND", "LOCATE", "PLAN", "GENERATE", "VERIFY"]
    assert result.trace[-1].state == "COMPLETE"
    [patch] = result.patches
    assert patch.path == "calc.py" and patch.before == CALC
    assert "    return x * 2\n" in patch.after and patch.after.count("def ") == 3
    assert "+    return x * 2" in patch.unified_diff()
    locate = next(e for e in result.trace if e.state == "LOCATE")
    assert locate.message.startswith("Found double at calc.py:4-9")
    # the greedy candidate passed, so the second one was never verified
    assert len(result.verdicts) == 1
    # a stub with no instruction: one greedy call on the file alone; it passed, so the
    # context prompt was never asked
    [plain] = result.model_calls
    head = CALC[: CALC.index("    \"\"\"\n\n\ndef quadruple") + 8]
    assert [s["name"] for s in plain["sections"]] == ["target"]
    assert plain["n"] == 1 and plain["temperature"] == 0.0 and "file alone" in plain["purpose"]
    assert backend.calls[0].prompt == head


def test_the_context_prompt_follows_when_the_file_alone_fails(tmp_path):
    engine, backend = make_engine(tmp_path, [BAD, GOOD])
    result = engine.implement(Task(path="calc.py", symbol="double", intent="edit"))
    assert result.status == "verified", result.message
    head = CALC[: CALC.index("    \"\"\"\n\n\ndef quadruple") + 8]
    plain, call = result.model_calls
    assert "file alone" in plain["purpose"] and "file alone" not in call["purpose"]
    names = {s["name"]: s for s in call["sections"]}
    assert {"system", "target"} <= set(names)
    assert names["target"]["tokens"] == backend.count_tokens(head)
    assert call["n"] == 1 and call["prompt_tokens"] > 0


def test_a_model_with_fim_tokens_fills_the_body_between_prefix_and_suffix(tmp_path):
    engine, backend = make_engine(tmp_path, [BAD, GOOD, GOOD], candidates=3)
    backend.fim_template = "qwen"
    result = engine.implement(Task(path="calc.py", symbol="double", intent="edit"))
    assert result.status == "verified"
    after_body = CALC[CALC.index("\n\ndef quadruple"):]
    body_calls = [c for c in backend.calls if c.max_tokens > 16]
    # the file-alone call and the context prompt's greedy call, both infills; the context
    # prompt's greedy answer passed, so its sample is never drawn
    assert len(body_calls) == 2
    assert states_of(result).count("GENERATE") == 2
    assert all(c.suffix == after_body and c.code_first == "#" for c in body_calls)
    assert all(c["suffix_tokens"] == backend.count_tokens(after_body)
               for c in result.model_calls if c["state"] == "GENERATE")


def test_a_model_without_fim_tokens_completes_the_prefix_alone(tmp_path):
    engine, backend = make_engine(tmp_path, [GOOD], candidates=3)
    result = engine.implement(Task(path="calc.py", symbol="double", intent="edit"))
    assert result.status == "verified"
    assert all(c.suffix is None for c in backend.calls)
    assert all(c["suffix_tokens"] == 0 for c in result.model_calls)


def test_a_change_no_test_covered_says_so(tmp_path):
    engine, _ = make_engine(tmp_path, [GOOD])
    result = engine.implement(Task(path="calc.py", symbol="double", intent="edit"))
    assert "untested" not in result.stats and result.message == "Verified change to calc.py"
    engine, _ = make_engine(tmp_path, [GOOD], check=lambda body: [])
    engine.gate.tests_skipped = "no tests found for double"
    result = engine.implement(Task(path="calc.py", symbol="double", intent="edit"))
    assert result.status == "verified"
    assert result.stats["untested"] == [{"symbol": "double", "reason": "no tests found for double",
                                         "checked": ["parse"]}]
    assert result.message == ("Verified change to calc.py; not tested: no tests found for double "
                              "(checked: parse)")


def test_intent_is_classified_with_a_grammar_when_not_given(tmp_path):
    engine, backend = make_engine(tmp_path, ["edit", GOOD])
    result = engine.implement(Task(path="calc.py", symbol="double",
                                   instruction="make double return twice its input"))
    assert result.status == "verified"
    assert result.stats["intent"] == "edit"
    assert backend.calls[0].grammar and "explain" in backend.calls[0].grammar
    assert result.model_calls[0]["state"] == "UNDERSTAND"


def test_failing_gate_feedback_reaches_the_next_prompt_verbatim(tmp_path):
    engine, backend = make_engine(tmp_path, [BAD, BAD, GOOD])
    result = engine.implement(Task(path="calc.py", symbol="double", intent="edit"))
    assert result.status == "verified"
    retry_prompt = backend.calls[2].prompt
    assert f"    # previous attempt failed: {FAIL_LINE}\n" in retry_prompt
    assert FAIL_LINE not in backend.calls[0].prompt
    feedback = result.model_calls[2]["sections"]  # [0] the file alone, [1] with context
    assert any(s["name"] == "feedback" and s["tokens"] > 0 for s in feedback)
    assert [(e.state, e.data["outcome"]) for e in result.trace if "outcome" in e.data
            and e.state in ("VERIFY", "REPAIR")] == [
        ("VERIFY", "draw_more"), ("VERIFY", "failed"), ("REPAIR", "retry"),
        ("VERIFY", "passed")]


def test_retry_exhaustion_returns_no_candidate_and_no_patch(tmp_path):
    engine, backend = make_engine(tmp_path, [], retries=2)
    backend.default = BAD
    result = engine.implement(Task(path="calc.py", symbol="double", intent="edit"))
    assert result.status == "no_candidate"
    assert result.patches == []
    assert FAIL_LINE in result.message
    generate = [c["purpose"] for c in result.model_calls if c["state"] == "GENERATE"]
    # the first attempt also asks for the file alone; the retries carry feedback, so do not.
    # Each retry draws its greedy answer, then (that failing) its sample.
    assert generate == ["body of double from the file alone (attempt 0)",
                        "body of double (attempt 0)",
                        "body of double (attempt 1)", "body of double (attempt 1)",
                        "body of double (attempt 2)", "body of double (attempt 2)"]
    assert states_of(result)[-1] == "REPAIR" and result.trace[-1].state == "FAILED"
    # identical bodies are verified once, not once per attempt
    assert len(engine.gate.requests) == 1
    assert (tmp_path / "calc.py").read_text() == CALC


def test_model_calls_count_identical_samples_that_came_back_merged(tmp_path):
    engine, backend = make_engine(tmp_path, [], candidates=4, retries=0)
    backend.default = BAD
    result = engine.implement(Task(path="calc.py", symbol="double", intent="edit"))
    calls = [c for c in result.model_calls if c["state"] == "GENERATE"]
    # the file alone: greedy; the context prompt: greedy, then (both failing) 2 identical
    # samples, merged
    assert [(c["n"], c["distinct"]) for c in calls] == [(1, 1), (1, 1), (2, 1)]
    assert [c["temperature"] for c in calls] == [0.0, 0.0, 0.6]
    assert sum(c["n"] for c in calls) == len(backend.calls) == 4


def test_samples_are_drawn_only_when_no_greedy_answer_passes(tmp_path):
    engine, backend = make_engine(tmp_path, [GOOD], candidates=5)
    result = engine.implement(Task(path="calc.py", symbol="double", intent="edit"))
    assert result.status == "verified"
    # the greedy answer of the first prompt (the file alone) passed: nothing else is drawn
    assert [c.temperature for c in backend.calls if c.max_tokens > 16] == [0.0]
    assert sum(c["n"] for c in result.model_calls if c["state"] == "GENERATE") == 1
    assert states_of(result) == ["UNDERSTAND", "LOCATE", "PLAN", "GENERATE", "VERIFY"]


def test_a_lazy_draw_is_the_set_an_eager_one_would_be(tmp_path):
    # the greedy answers fail, a sample passes: seeds go on from the greedy call's seed, as
    # when every candidate was drawn in one go
    engine, backend = make_engine(tmp_path, [BAD, BAD, BAD, GOOD], candidates=4, retries=0)
    result = engine.implement(Task(path="calc.py", symbol="double", intent="edit"))
    assert result.status == "verified"
    body = [c for c in backend.calls if c.max_tokens > 16]
    assert [(c.temperature, c.seed) for c in body] == [(0.0, 0), (0.0, 0), (0.6, 1), (0.6, 2)]
    assert states_of(result) == ["UNDERSTAND", "LOCATE", "PLAN", "GENERATE", "VERIFY",
                                 "GENERATE", "VERIFY", "GENERATE", "VERIFY"]
    messages = [e.message for e in result.trace if e.state == "GENERATE" and "phase" in e.data]
    assert messages == [
        "Producing 1 candidate for double (greedy; up to 4 in all)...",
        "Producing 1 more candidate for double (greedy; up to 4 in all)...",
        "Producing 2 more candidates for double (sampled: no greedy answer passed)..."]


def test_a_passing_candidate_is_never_lost_by_a_later_attempt(tmp_path):
    engine, backend = make_engine(tmp_path, [BAD, GOOD, BAD, BAD], candidates=2, retries=3)
    result = engine.implement(Task(path="calc.py", symbol="double", intent="edit"))
    assert result.status == "verified"
    generate = [c for c in result.model_calls if c["state"] == "GENERATE"]
    assert all(c["purpose"].endswith("(attempt 0)") for c in generate)
    assert "return x * 2" in result.patches[0].after


def test_empty_generations_count_as_failed_attempts(tmp_path):
    engine, backend = make_engine(tmp_path, ["\n", "def other():\n    pass\n", GOOD], retries=1)
    result = engine.implement(Task(path="calc.py", symbol="double", intent="edit"))
    assert result.status == "verified"
    outcomes = [e.data.get("outcome") for e in result.trace if "outcome" in e.data]
    assert "no_candidates" in outcomes and "retry" in outcomes
    assert "# previous attempt failed: EMPTY" in backend.calls[2].prompt


def test_a_body_that_does_not_compile_is_cut_back_to_what_does(tmp_path):
    """A sample that ran out of tokens inside an open bracket or string keeps its complete
    leading lines (marked as salvaged); one with nothing complete stays as the model wrote it
    (and fails the parse gate)."""
    cut_off = GOOD + "    print('never closed\n"
    engine, _ = make_engine(tmp_path, ["    values = [x,\n", cut_off], candidates=2)
    result = engine.implement(Task(path="calc.py", symbol="double", intent="edit"))
    assert result.status == "verified", result.message
    broken, salvaged = result.candidates
    assert broken.text == "    values = [x,\n" and broken.source == "model"
    assert salvaged.text == GOOD and salvaged.source == "salvaged"


def test_body_stops_at_the_dedent(tmp_path):
    engine, _ = make_engine(tmp_path, [GOOD + "\n\ndef rambling():\n    pass\n"])
    result = engine.implement(Task(path="calc.py", symbol="double", intent="edit"))
    assert result.status == "verified"
    assert "rambling" not in result.patches[0].after


@pytest.mark.parametrize("state", ["UNDERSTAND", "LOCATE", "PLAN", "GENERATE", "VERIFY"])
def test_cancellation_before_each_state(tmp_path, state):
    engine, _ = make_engine(tmp_path, [GOOD])
    cancel = CancelToken()
    if state == "UNDERSTAND":
        cancel.cancel("user")

    def sink(event):
        if event.data.get("next") == state:
            cancel.cancel("user")

    result = engine.implement(Task(path="calc.py", symbol="double", intent="edit"),
                              cancel=cancel, on_event=sink)
    assert result.status == "cancelled"
    assert result.patches == []
    last = [e for e in result.trace if "next" in e.data][-1]
    assert last.state == state and last.data["next"] == "CANCELLED"


def test_cancellation_during_generation_and_verification(tmp_path):
    cancel = CancelToken()
    engine, _ = make_engine(tmp_path, [GOOD, GOOD], on_call=lambda call: cancel.cancel("ctrl-c"))
    result = engine.implement(Task(path="calc.py", symbol="double", intent="edit"),
                              cancel=cancel)
    assert result.status == "cancelled" and result.message == "ctrl-c"
    assert states_of(result)[-1] == "GENERATE"

    cancel2 = CancelToken()
    engine2, _ = make_engine(tmp_path, [BAD, GOOD])
    engine2.gate.on_verify = lambda candidate: cancel2.cancel("stop")
    result2 = engine2.implement(Task(path="calc.py", symbol="double", intent="edit"),
                                cancel=cancel2)
    assert result2.status == "cancelled"
    assert states_of(result2)[-1] == "VERIFY"
    assert len(engine2.gate.requests) == 1  # the second candidate was not verified


def test_unknown_symbol_is_a_clear_error(tmp_path):
    engine, _ = make_engine(tmp_path, [])
    result = engine.implement(Task(path="calc.py", symbol="nope", intent="edit"))
    assert result.status == "error"
    assert result.message == "no function named 'nope' in calc.py (functions there: double, greet, quadruple)"
    result = make_engine(tmp_path, [])[0].implement(Task(path="calc.py", symbol="doubel",
                                                         intent="edit"))
    assert result.message == "no function named 'doubel' in calc.py (did you mean double?)"


def test_a_position_outside_every_function_says_where_they_are(tmp_path):
    engine, _ = make_engine(tmp_path, [])
    result = engine.implement(Task(path="calc.py", position=Position(0, 0), intent="edit"))
    assert result.status == "error"
    assert result.message == "no function at calc.py:1 (nearest: double at line 4)"
    result = engine.implement(Task(path="calc.py", position=Position(99, 0), intent="edit"))
    assert result.message == "no function at calc.py:100 (the file has 18 lines)"


def test_nothing_to_locate_fails_with_a_message(tmp_path):
    engine, _ = make_engine(tmp_path, [])
    result = engine.implement(Task(instruction="make it faster", intent="edit"))
    assert result.status == "error" and "no target" in result.message
    assert result.trace[-1].data["next"] == "FAILED"


def test_locate_by_position_and_by_name_in_the_instruction(tmp_path):
    engine, _ = make_engine(tmp_path, [GOOD])
    result = engine.implement(Task(path="calc.py", position=Position(5, 4), intent="edit"))
    assert result.status == "verified"
    engine, _ = make_engine(tmp_path, [GOOD])
    result = engine.implement(Task(instruction="implement `double` please", intent="edit"))
    assert result.status == "verified"
    assert "named in the instruction" in next(e for e in result.trace if e.state == "LOCATE").message
    for plain in ("implement the double function", "please implement double"):
        engine, _ = make_engine(tmp_path, [GOOD])
        result = engine.implement(Task(instruction=plain, intent="edit"))
        assert result.status == "verified", plain
        assert "double" in next(e for e in result.trace if e.state == "LOCATE").message


def test_generate_is_announced_before_the_model_runs(tmp_path):
    engine, _ = make_engine(tmp_path, [GOOD])
    result = engine.implement(Task(path="calc.py", position=Position(5, 4), intent="edit"))
    generate = [e for e in result.trace if e.state == "GENERATE"]
    assert generate[0].message.startswith("Producing 1 candidate for") and generate[0].data["phase"] == "start"
    assert "distinct candidates" in generate[1].message


def test_explain_returns_text_and_no_edit(tmp_path):
    engine, backend = make_engine(tmp_path, [" Greets a person by name.\n# Prefixes hi."])
    result = engine.implement(Task(path="calc.py", symbol="greet", intent="explain"))
    assert result.status == "explained"
    assert states_of(result) == ["UNDERSTAND", "LOCATE", "PLAN", "EXPLAIN"]
    assert result.explanation == "Greets a person by name. Prefixes hi."
    assert result.patches == []
    assert 'return "hi " + name' in backend.calls[0].prompt


def test_plan_implements_a_stub_callee_before_its_caller(tmp_path):
    text = CALC  # quadruple calls double, which is still a stub

    def check(body: str) -> list[str]:
        return [] if "return" in body else ["TEST FAIL: no return"]

    outputs = ["A", GOOD, "    return double(double(x))\n"]
    engine, backend = make_engine(tmp_path, outputs, candidates=1, check=check, text=text)
    engine._index = FakeIndex(tmp_path)
    result = engine.implement(Task(path="calc.py", symbol="quadruple", intent="edit"))
    assert result.status == "verified", result.message
    assert result.stats["steps"] == ["double", "quadruple"]
    assert backend.calls[0].grammar is not None  # the model confirmed the plan
    after = result.patches[0].after
    assert "    return x * 2\n" in after and "    return double(double(x))\n" in after
    assert after.index("return x * 2") < after.index("return double(double")
    assert any("Plan: double -> quadruple" in e.message for e in result.trace)


def test_plan_model_may_narrow_to_the_target_only(tmp_path):
    text = CALC.replace("    return double(double(x))\n", "")
    engine, _ = make_engine(tmp_path, ["B", "    return x * 4\n"], candidates=1,
                            check=lambda body: [], text=text)
    result = engine.implement(Task(path="calc.py", symbol="quadruple", intent="edit"))
    assert result.stats["steps"] == ["quadruple"]
    assert "return x * 4" in result.patches[0].after


def test_fix_intent_uses_diagnostics_as_the_description(tmp_path):
    engine, backend = make_engine(tmp_path, [GOOD])
    result = engine.implement(Task(path="calc.py", symbol="double", intent="fix",
                                   diagnostics=(FAIL_LINE,)))
    assert result.status == "verified"
    assert f"# previous attempt failed: {FAIL_LINE}" in backend.calls[0].prompt
    assert "Task: make this pass: " + FAIL_LINE in backend.calls[0].prompt


def test_fix_intent_without_diagnostics_runs_the_checks_first(tmp_path):
    engine, backend = make_engine(tmp_path, [GOOD])
    result = engine.implement(Task(path="calc.py", symbol="double", intent="fix"))
    assert result.status == "verified"
    assert "previous attempt failed: TEST FAIL: test_double" in backend.calls[0].prompt
    # the gate runs in DIAGNOSE (a row of the table), never inside PLAN
    assert states_of(result) == ["UNDERSTAND", "LOCATE", "PLAN", "DIAGNOSE", "PLAN", "GENERATE",
                                 "VERIFY"]
    assert engine.gate.requests[0].task == "fix double"


def test_generate_new_code_at_the_end_of_a_file(tmp_path):
    def check(body: str) -> list[str]:
        return [] if body.startswith("def triple") else ["TEST FAIL: wrong"]

    engine, _ = make_engine(tmp_path, ["def triple(x):\n    return 3 * x\n\nprint(1)\n"],
                            candidates=1, check=check)
    result = engine.implement(Task(path="calc.py", instruction="write triple(x)",
                                   intent="generate"))
    assert result.status == "verified", result.message
    after = result.patches[0].after
    assert after.startswith(CALC) and after.endswith("def triple(x):\n    return 3 * x\n")
    assert states_of(result) == ["UNDERSTAND", "LOCATE", "WRITE", "VERIFY"]


def test_session_summary_reaches_the_prompt(tmp_path):
    engine, backend = make_engine(tmp_path, [BAD, GOOD])
    summary = "# Session so far:\n# - implement greet: verified [calc.py]\n"
    engine.implement(Task(path="calc.py", symbol="double", intent="edit",
                          session_summary=summary))
    assert summary not in backend.calls[0].prompt  # the file alone
    assert summary in backend.calls[1].prompt


def test_diff_review_calls_count_as_model_calls(tmp_path):
    """The gate's review asks the model too; `model_calls` (what `run --json` shows and the
    benchmark counts) includes it."""
    from localcode_lsp.config import VerificationConfig
    from localcode_lsp.verify.gate import Gate

    (tmp_path / "calc.py").write_text(CALC)
    config = dataclasses.replace(
        Config(), generation=GenerationConfig(candidates=1, max_retries=1),
        verification=VerificationConfig(lint=False, test=False, diff_review=True))
    backend = ScriptedBackend(outputs=[BAD, "no", GOOD, "yes"])
    engine = Engine(tmp_path, config=config, backend=backend)
    engine._index = FakeIndex(tmp_path)
    engine._gate = Gate(engine.workspace, config, backend=lambda: backend)
    result = engine.implement(Task(path="calc.py", symbol="double", instruction="double x",
                                   intent="edit"))
    assert result.status == "verified"
    purposes = [call["purpose"] for call in result.model_calls]
    assert [p for p in purposes if p.startswith("diff review")] == [
        "diff review of candidate 1", "diff review of candidate 2"]
    assert sum(call["n"] for call in result.model_calls) == len(backend.calls) == 4
    engine.close()


def test_a_later_step_is_tested_with_the_earlier_steps_changes_to_other_files(tmp_path):
    """Real index, gate and pytest: the plan implements `double` in lib.py, then `quadruple` in
    app.py, whose test needs lib.py as step 1 left it (not as it is on disk)."""
    from localcode_lsp.config import VerificationConfig

    (tmp_path / "lib.py").write_text('def double(x):\n    """Return x doubled."""\n')
    (tmp_path / "app.py").write_text(
        'from lib import double\n\n\ndef quadruple(x):\n    """Return x times four."""\n'
        "    return double(double(x))\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_app.py").write_text(
        "from app import quadruple\n\n\ndef test_quadruple():\n    assert quadruple(2) == 8\n")
    config = dataclasses.replace(
        Config(), generation=GenerationConfig(candidates=1, max_retries=0),
        verification=VerificationConfig(diff_review=False))
    backend = ScriptedBackend(outputs=["A", GOOD, "    return double(double(x))\n"])
    engine = Engine(tmp_path, config=config, backend=backend)
    result = engine.implement(Task(path="app.py", symbol="quadruple", intent="edit"))
    assert result.status == "verified", (result.message, [v.summary() for v in result.verdicts])
    assert result.stats["steps"] == ["double", "quadruple"]
    # app.py needed no change of its own: verified with lib.py's new body, and not patched
    assert [p.path for p in result.patches] == ["lib.py"]
    test_gates = [g for v in result.verdicts for g in v.gates if g.gate == "test"]
    assert test_gates and not test_gates[-1].skipped and test_gates[-1].details["passed"] >= 1
    engine.close()


def test_a_docstring_example_of_a_function_defined_elsewhere_is_not_the_targets(tmp_path):
    """Real index and gate: `to_fahrenheit(0) == 32` in to_celsius's docstring is about
    conv.py's function (the index knows it), not to_celsius under an old name."""
    from localcode_lsp.config import VerificationConfig

    (tmp_path / "conv.py").write_text("def to_fahrenheit(c):\n    return c * 9 / 5 + 32\n")
    (tmp_path / "temps.py").write_text(
        'def to_celsius(f):\n    """The inverse of to_fahrenheit: to_fahrenheit(0) == 32."""\n')
    config = dataclasses.replace(
        Config(), generation=GenerationConfig(candidates=1, max_retries=0),
        verification=VerificationConfig(diff_review=False))
    backend = ScriptedBackend(outputs=["    return (f - 32) * 5 / 9\n"])
    engine = Engine(tmp_path, config=config, backend=backend)
    result = engine.implement(Task(path="temps.py", symbol="to_celsius", intent="edit"))
    engine.close()
    assert result.status == "verified", (result.message, [v.summary() for v in result.verdicts])
    assert result.stats["untested"][0]["reason"] == "no tests found for to_celsius"


def test_new_code_that_fails_is_retried_through_write_with_the_feedback(tmp_path):
    def check(body: str) -> list[str]:
        return [] if "3 * x" in body else ["TEST FAIL: test_triple — expected 6, got 5"]

    engine, backend = make_engine(tmp_path, ["def triple(x):\n    return x + 3\n",
                                             "def triple(x):\n    return 3 * x\n"],
                                  candidates=1, retries=1, check=check)
    result = engine.implement(Task(path="calc.py", instruction="write triple(x)",
                                   intent="generate"))
    assert result.status == "verified", result.message
    assert states_of(result) == ["UNDERSTAND", "LOCATE", "WRITE", "VERIFY", "REPAIR", "WRITE",
                                 "VERIFY"]
    assert "# previous attempt failed: TEST FAIL: test_triple" in backend.calls[1].prompt
    assert result.patches[0].after.endswith("def triple(x):\n    return 3 * x\n")


def test_a_task_that_cannot_run_never_loads_the_model(tmp_path):
    """The collaborators load the model on the first model call: a bad target is reported
    without it (here no model file exists at all)."""
    (tmp_path / "calc.py").write_text(CALC)
    config = dataclasses.replace(Config(), model=dataclasses.replace(
        Config().model, path=str(tmp_path / "missing.gguf")))
    engine = Engine(tmp_path, config=config)
    engine._index = FakeIndex(tmp_path)
    engine._gate = FakeGate(check_double)
    result = engine.implement(Task(path="calc.py", symbol="nope", intent="edit"))
    assert result.status == "error" and result.message.startswith("no function named 'nope'")
    assert not engine.backend_loaded()


def test_a_fix_without_diagnostics_starts_from_what_the_tests_say_now(tmp_path):
    """Real gate and pytest: DIAGNOSE judges the function as it is (the unchanged file is not
    a 'no change' candidate there), so the first prompt carries the failing test."""
    from localcode_lsp.config import VerificationConfig

    (tmp_path / "calc.py").write_text("def double(x):\n    return x + 2\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_calc.py").write_text(
        "from calc import double\n\n\ndef test_double():\n    assert double(3) == 6\n")
    config = dataclasses.replace(
        Config(), generation=GenerationConfig(candidates=1, max_retries=0),
        verification=VerificationConfig(lint=False, diff_review=False))
    backend = ScriptedBackend(outputs=["    return x * 2\n"])
    engine = Engine(tmp_path, config=config, backend=backend)
    result = engine.implement(Task(path="calc.py", symbol="double", intent="fix"))
    engine.close()
    assert result.status == "verified", result.message
    assert "no change" not in backend.calls[0].prompt
    assert "# previous attempt failed: TEST FAIL" in backend.calls[0].prompt
    assert "assert 5 == 6" in backend.calls[0].prompt
