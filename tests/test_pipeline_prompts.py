"""Prompt families: which one a run uses, what the instruct family sends (chat turns, a fence
prefill, grammars), reading a fenced answer back, and a diff review that cannot tell never
passing. Scripted backend, fake index; the review tests use the real gate with only the review
on."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from support.pipeline_fakes import FakeGate, FakeIndex
from support.scripted_backend import ScriptedBackend

from localcode_lsp.config import Config, GenerationConfig, ModelConfig, VerificationConfig
from localcode_lsp.data import Candidate, Task
from localcode_lsp.engine import Engine
from localcode_lsp.inference.backend import ModelInfo
from localcode_lsp.inference.grammar import INTENT_GRAMMAR
from localcode_lsp.pipeline.prompts import BaseFamily, InstructFamily, choose_family, family_kind
from localcode_lsp.pipeline.prompts.instruct import fenced_code, function_body
from localcode_lsp.verify.gate import Gate
from localcode_lsp.verify.request import VerifyRequest
from localcode_lsp.verify.review import CHAT_REVIEW_GRAMMAR, review
from localcode_lsp.workspace import Workspace

CALC = '''"""Calculator helpers."""


def double(x):
    """Return x doubled."""
    return x + 1


def greet(name):
    return "hi " + name
'''
STUB = CALC.replace("    return x + 1\n", "")
FAIL_LINE = "TEST FAIL: test_double — AssertionError: expected 4, got 3"
FIXED_ANSWER = 'def double(x):\n    """Return x doubled."""\n    return x * 2\n```\n'


def check_double(body: str) -> list[str]:
    namespace: dict = {}
    exec("def double(x):\n" + body, namespace)
    value = namespace["double"](2)
    return [] if value == 4 else [f"TEST FAIL: test_double — AssertionError: expected 4, got {value}"]


def make_engine(tmp_path: Path, outputs, *, kind="instruct", text=CALC, fim=None,
                review_gate=False, retries=0, family="auto", candidates=1):
    (tmp_path / "calc.py").write_text(text)
    config = dataclasses.replace(
        Config(), generation=GenerationConfig(candidates=candidates, max_retries=retries),
        model=ModelConfig(prompt_family=family),
        verification=VerificationConfig(lint=False, type_check=False, test=False,
                                        diff_review=review_gate))
    backend = ScriptedBackend(outputs=list(outputs), kind=kind, fim_template=fim)
    engine = Engine(tmp_path, config=config, backend=backend)
    engine._index = FakeIndex(tmp_path)
    engine._gate = (Gate(engine.workspace, config, backend=lambda: backend) if review_gate
                    else FakeGate(check_double))
    return engine, backend


# --- which family ------------------------------------------------------------------------------


def test_the_family_follows_the_model_kind_unless_the_config_says_otherwise():
    base = ModelInfo(name="m", family="gemma3", context_length=8192, fim=None)
    instruct = dataclasses.replace(base, kind="instruct", chat_template="{{ messages }}")
    assert family_kind("auto", base) == "base" and family_kind("auto", instruct) == "instruct"
    assert family_kind("base", instruct) == "base"
    assert family_kind("instruct", base) == "instruct"
    # a server that applies the model's template itself (vLLM, Ollama) reports no template
    assert family_kind("auto", dataclasses.replace(instruct, chat_template="")) == "instruct"
    assert isinstance(choose_family("auto", instruct), InstructFamily)
    assert isinstance(choose_family("auto", base), BaseFamily)


def test_the_base_family_never_sends_a_chat_turn(tmp_path):
    engine, backend = make_engine(tmp_path, ["edit", "    return x * 2\n"], kind="base")
    result = engine.implement(Task(path="calc.py", symbol="double",
                                   instruction="make double return twice its input"))
    assert result.status == "verified", result.message
    assert all(not call.messages for call in backend.calls)
    assert not any(call["chat"] for call in result.model_calls)


def test_prompt_family_base_in_the_config_overrides_an_instruct_model(tmp_path):
    engine, backend = make_engine(tmp_path, ["    return x * 2\n"], family="base")
    result = engine.implement(Task(path="calc.py", symbol="double", intent="fix",
                                   diagnostics=(FAIL_LINE,)))
    assert result.status == "verified", result.message
    assert not backend.calls[0].messages
    assert f"# previous attempt failed: {FAIL_LINE}" in backend.calls[0].prompt


# --- what the instruct family sends ------------------------------------------------------------


def test_instruct_classifies_the_intent_in_a_chat_turn_under_a_grammar(tmp_path):
    engine, backend = make_engine(tmp_path, ["edit", FIXED_ANSWER])
    result = engine.implement(Task(path="calc.py", symbol="double",
                                   instruction="make double return twice its input"))
    assert result.status == "verified", result.message
    classify = backend.calls[0]
    assert classify.grammar == INTENT_GRAMMAR
    assert [m["role"] for m in classify.messages] == ["system", "user"]
    assert classify.messages[1]["content"] == "Request: make double return twice its input"
    assert result.model_calls[0]["chat"] and result.model_calls[0]["state"] == "UNDERSTAND"


def test_instruct_fix_is_a_chat_turn_with_the_function_the_failure_and_a_fence(tmp_path):
    engine, backend = make_engine(tmp_path, [FIXED_ANSWER])
    result = engine.implement(Task(path="calc.py", symbol="double", intent="fix",
                                   diagnostics=(FAIL_LINE,)))
    assert result.status == "verified", result.message
    call = backend.calls[0]
    user = call.messages[-1]["content"]
    assert "```python\ndef double(x):\n    \"\"\"Return x doubled.\"\"\"\n    return x + 1\n```" in user
    assert f"- {FAIL_LINE}" in user
    # the failing checks, then what to do with them, last
    assert user.index(FAIL_LINE) < user.index("Fix the bug in `double` so that these checks pass")
    assert "make this pass" not in user
    assert call.prompt.endswith("<|assistant|>\n```python\n")  # the prefill opened the fence
    # the answer repeats the def line and docstring: their tokens come on top of the body's
    header = 'def double(x):\n    """Return x doubled."""\n'
    assert call.max_tokens == GenerationConfig().max_tokens + backend.count_tokens(header)
    # only the body changed: the user's def line and docstring stay as they were
    [patch] = result.patches
    assert patch.after == CALC.replace("return x + 1", "return x * 2")


def test_instruct_edit_answers_that_rewrite_the_header_keep_the_users_header(tmp_path):
    answer = 'def double(value: int) -> int:\n    """Doubled."""\n    return value * 2\n```'
    engine, _ = make_engine(tmp_path, [answer])
    engine.gate.check = lambda body: [] if "value * 2" in body else ["TEST FAIL: wrong"]
    result = engine.implement(Task(path="calc.py", symbol="double", intent="edit",
                                   instruction="double the input"))
    assert result.status == "verified", result.message
    assert result.patches[0].after == CALC.replace("return x + 1", "return value * 2")


def test_instruct_keeps_fim_infill_for_a_stub_to_implement(tmp_path):
    engine, backend = make_engine(tmp_path, ["    return x * 2\n", "    return x * 2\n"],
                                  text=STUB, fim="qwen", candidates=2)
    result = engine.implement(Task(path="calc.py", symbol="double", intent="edit"))
    assert result.status == "verified", result.message
    assert backend.calls and all(c.suffix and not c.messages for c in backend.calls)


def test_a_stub_whose_infill_fails_gets_a_chat_answer_before_the_context_prompt(tmp_path):
    wrong = "    return x + 1\n"
    engine, backend = make_engine(tmp_path, [wrong, FIXED_ANSWER], text=STUB, fim="qwen",
                                  candidates=5)
    result = engine.implement(Task(path="calc.py", symbol="double", intent="edit"))
    assert result.status == "verified", result.message
    assert result.patches[0].after == CALC.replace("return x + 1", "return x * 2")
    infill, chat = backend.calls  # the context prompt was never drawn: the chat answer passed
    assert infill.suffix is not None and not infill.messages
    assert "Implement `double` as its docstring says." in chat.messages[-1]["content"]
    assert "Answer with the whole function `double`" in chat.messages[-1]["content"]
    assert [c.prompt for c in result.candidates] == [
        "body of double from the file alone (attempt 0)",
        "body of double in a chat turn (attempt 0)"]


def test_the_chat_answer_of_a_stub_is_one_greedy_draw_of_the_five(tmp_path):
    engine, backend = make_engine(tmp_path, [], text=STUB, fim="qwen", candidates=5)
    backend.default = "    return x + 1\n"
    result = engine.implement(Task(path="calc.py", symbol="double", intent="edit"))
    assert result.status == "no_candidate"
    draws = [(bool(c.messages), c.temperature) for c in backend.calls]
    # infill greedy, chat greedy, context greedy, then the context prompt's two samples: five
    assert draws == [(False, 0.0), (True, 0.0), (False, 0.0)] + [(False, 0.6)] * 2


def test_an_instruct_retry_sends_the_failing_checks_in_a_chat_turn(tmp_path):
    engine, backend = make_engine(tmp_path, ["    return x + 1\n", FIXED_ANSWER], text=STUB,
                                  retries=1)
    result = engine.implement(Task(path="calc.py", symbol="double", intent="edit"))
    assert result.status == "verified", result.message
    first, retry = backend.calls
    assert not first.messages  # the stub: plain completion
    user = retry.messages[-1]["content"]
    assert "Your previous attempt failed these checks:\n- TEST FAIL: test_double" in user
    # the model sees what it wrote before, not only the stub
    assert ('Your previous attempt:\n```python\ndef double(x):\n    """Return x doubled."""\n'
            "    return x + 1\n```") in user


def test_a_fenced_answer_becomes_the_body_of_the_function():
    fenced = fenced_code('def f(x):\n    """Doc."""\n    y = x\n    return y\n```\nmore prose')
    assert fenced == 'def f(x):\n    """Doc."""\n    y = x\n    return y\n'
    assert function_body(fenced, "f", "    ") == "    y = x\n    return y\n"
    method = "class A:\n    def run(self):\n        return 1\n"
    assert function_body(method, "A.run", "        ") == "        return 1\n"
    assert function_body("def f(x): return x\n", "f", "    ") == "    return x\n"
    broken = "def f(x):\n    return (x\n\ndef g():\n    pass\n"
    assert function_body(broken, "f", "  ") == "  return (x\n\n"  # the gate says what broke
    assert function_body("    return 2\n", "f", "    ") == "    return 2\n"
    assert function_body("print('no function')\n", "f", "    ") == ""
    # an answer that repeats the original before the fixed version: the last one wins
    repeated = "def f(x):\n    return x + 1\n\n\ndef f(x):\n    return x * 2\n"
    assert function_body(repeated, "f", "    ") == "    return x * 2\n"


# --- the diff review -----------------------------------------------------------------------------


def test_instruct_review_is_a_chat_turn_with_a_grammar_and_a_reason(tmp_path):
    engine, backend = make_engine(tmp_path, [FIXED_ANSWER, "yes: it returns x * 2"],
                                  review_gate=True)
    result = engine.implement(Task(path="calc.py", symbol="double", intent="edit",
                                   instruction="return twice x"))
    assert result.status == "verified", result.message
    review_call = backend.calls[1]
    assert review_call.grammar == CHAT_REVIEW_GRAMMAR
    assert "-    return x + 1\n+    return x * 2" in review_call.messages[-1]["content"]
    gate = next(g for g in result.verdicts[-1].gates if g.gate == "review")
    assert gate.passed and gate.details["reason"] == "it returns x * 2"
    assert [c["chat"] for c in result.model_calls] == [True, True]
    assert result.model_calls[1]["purpose"] == "diff review of candidate 1"


@pytest.mark.parametrize("answer", ["maybe", "", "perhaps yes"])
def test_a_review_answer_that_is_neither_yes_nor_no_rejects_the_change(tmp_path, answer):
    engine, _ = make_engine(tmp_path, [FIXED_ANSWER, answer], review_gate=True)
    result = engine.implement(Task(path="calc.py", symbol="double", intent="edit",
                                   instruction="return twice x"))
    assert result.status == "no_candidate" and result.patches == []
    assert "REVIEW: review unanswered: the answer was neither yes nor no" in result.message
    assert (tmp_path / "calc.py").read_text() == CALC


class FailingChat(ScriptedBackend):
    def chat(self, messages, **kwargs):
        raise RuntimeError("decode failed")


def test_a_review_whose_model_call_fails_rejects_the_change():
    verdict = review(FailingChat(kind="instruct"), "double x", "-a\n+b\n", temperature=0.0,
                     form="chat")
    assert not verdict.passed and not verdict.skipped
    assert verdict.feedback == ["REVIEW: review unanswered: the model failed: decode failed"]


def test_a_review_that_could_not_load_the_model_rejects_the_change(tmp_path):
    def no_model():
        raise RuntimeError("no GGUF at /nowhere")

    (tmp_path / "calc.py").write_text(CALC)
    config = Config(verification=VerificationConfig(lint=False, type_check=False, test=False,
                                                    diff_review=True))
    gate = Gate(Workspace(tmp_path), config, backend=no_model)
    verdict = gate.verify(VerifyRequest("calc.py", CALC, task="double x"),
                          Candidate(1, "    return x * 2\n", CALC.replace("x + 1", "x * 2")))
    assert not verdict.passed
    assert verdict.feedback == ["REVIEW: review unanswered: the model did not load: "
                                "no GGUF at /nowhere"]


def test_the_review_sees_the_whole_diff_when_it_fits_and_says_when_it_was_cut():
    diff = "".join(f"+    line_{i} = {i}\n" for i in range(400))  # about 2,000 tokens
    seen: list[str] = []
    backend = ScriptedBackend(outputs=[lambda prompt: seen.append(prompt) or "yes"] * 3)
    whole = review(backend, "add lines", diff, temperature=0.0, context_length=8192)
    assert whole.passed and "line_399 = 399" in seen[0] and "diff cut" not in seen[0]
    cut = review(backend, "add lines", diff, temperature=0.0, context_length=1024)
    assert "line_399" not in seen[1] and "(diff cut: " in seen[1]
    assert not cut.passed and cut.details["diff_lines"] == 400
    assert cut.feedback[0].startswith("REVIEW: review unanswered: the diff (")
    assert f"it saw {cut.details['diff_lines_shown']} of 400 lines" in cut.feedback[0]
    backend.outputs = ["no"]
    rejected = review(backend, "add lines", diff, temperature=0.0, context_length=1024)
    assert not rejected.passed and "does not correctly address" in rejected.feedback[0]


def test_a_review_answer_no_keeps_the_reviewers_reason():
    backend = ScriptedBackend(outputs=["no: it adds one instead of doubling"], kind="instruct")
    verdict = review(backend, "double x", "-    return x\n+    return x + 1\n",
                     temperature=0.0, form="chat")
    assert not verdict.passed
    assert verdict.feedback[0].endswith("(reviewer: it adds one instead of doubling)")

