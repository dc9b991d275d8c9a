"""The inference layer against the real embedded model (gemma-3-270m)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from support.model_prompts import COMMENT_FIRST_PROMPT

from localcode_lsp.cancel import CancelToken
from localcode_lsp.config import load_config
from localcode_lsp.engine import Engine
from localcode_lsp.inference import BackendError, LlamaCppBackend, classify, create_backend
from localcode_lsp.inference.grammar import (
    ENVELOPE_STOPS,
    INTENT_GRAMMAR,
    LINE_RANGE_GRAMMAR,
    YES_NO_GRAMMAR,
    choice_grammar,
    parse_choice,
    parse_intent,
    parse_line_range,
    parse_python_function,
    parse_yes_no,
    python_function_grammar,
)
from localcode_lsp.inference.stops import stop_rule_for

pytestmark = pytest.mark.model

BODY_PROMPT = "import math\n\n\ndef circle_area(radius):\n    "


@pytest.fixture(scope="module")
def backend(model_path: Path) -> LlamaCppBackend:
    instance = LlamaCppBackend(model_path, context_length=2048)
    yield instance
    instance.close()


def test_tokenize_and_count(backend: LlamaCppBackend) -> None:
    tokens = backend.tokenize("def add(a, b):\n    return a + b\n")
    assert tokens and all(isinstance(t, int) for t in tokens)
    assert backend.count_tokens("def add(a, b):\n    return a + b\n") == len(tokens)
    assert backend.count_tokens("") == 0
    assert backend.detokenize(tokens) == "def add(a, b):\n    return a + b\n"
    info = backend.info
    assert info.family == "gemma3" and info.fim is None and info.context_length == 2048


def test_complete_respects_stop_and_max_tokens(backend: LlamaCppBackend) -> None:
    result = backend.complete(BODY_PROMPT, max_tokens=40, stop=["\n"])
    assert "\n" not in result.text and result.text.strip()
    assert result.finish_reason == "stop"
    assert result.prompt_tokens == len(backend.tokenize(BODY_PROMPT, add_bos=True))
    capped = backend.complete("Once upon a time", max_tokens=5, temperature=0.8, seed=3)
    assert capped.finish_reason == "length" and capped.completion_tokens == 5


def test_structural_stop_cuts_rambling(backend: LlamaCppBackend) -> None:
    free = backend.complete(BODY_PROMPT, max_tokens=60)
    rule = stop_rule_for("python", BODY_PROMPT)
    cut = backend.complete(BODY_PROMPT, max_tokens=60, stop_rule=rule)
    assert "\ndef " in free.text  # the model rambles on into a next function...
    assert cut.finish_reason == "structure"  # ...which the block rule cuts while decoding
    assert "def " not in cut.text and cut.completion_tokens < free.completion_tokens
    # every line the rule kept is inside the body (greedy text may differ slightly between a
    # cold and a KV-reused evaluation: llama.cpp batch numerics)
    assert all(not line.strip() or line.startswith(" ") for line in cut.text.split("\n")[1:])


def test_code_first_keeps_a_body_from_opening_with_comments(backend: LlamaCppBackend) -> None:
    free = backend.complete(COMMENT_FIRST_PROMPT, max_tokens=30)
    assert free.text.lstrip().startswith("#")  # greedy opens with `# TODO: ...` here
    for samples in ([backend.complete(COMMENT_FIRST_PROMPT, max_tokens=30, code_first="#")],
                    backend.candidates(COMMENT_FIRST_PROMPT, 3, max_tokens=30, temperature=0.8,
                                       code_first="#")):
        for result in samples:
            first = result.text.lstrip()
            assert first and not first.startswith("#"), result.text


def test_cancellation_is_prompt_and_backend_survives(backend: LlamaCppBackend) -> None:
    backend.load()  # the timer must not fire while the model is still loading
    token = CancelToken()
    timer = threading.Timer(0.4, token.cancel)
    timer.start()
    started = time.monotonic()
    result = backend.complete("Once upon a time", max_tokens=1000, temperature=0.9, seed=1,
                              cancel=token)
    elapsed = time.monotonic() - started
    assert result.finish_reason == "cancelled"
    assert elapsed < 0.4 + 0.5, elapsed  # one token step is ~25 ms here; allow a loaded machine
    assert 0 < result.completion_tokens < 1000
    already = CancelToken()
    already.cancel()
    assert backend.complete("x", cancel=already).finish_reason == "cancelled"
    again = backend.complete(BODY_PROMPT, max_tokens=8, stop=["\n"])
    assert again.finish_reason in ("stop", "length") and again.text.strip()


def test_cancel_interrupts_prompt_evaluation(backend: LlamaCppBackend) -> None:
    """A long prompt is evaluated inside llama_decode; the abort callback stops it mid-batch."""
    long_prompt = "".join(f"def helper_{i}(value):\n    return value * {i} + {i % 7}\n\n\n"
                          for i in range(90))
    backend.load()
    assert backend.count_tokens(long_prompt) > 1500  # well over a second to evaluate here
    token = CancelToken()
    cancelled_at: list[float] = []
    timer = threading.Timer(0.3, lambda: (cancelled_at.append(time.monotonic()), token.cancel()))
    timer.start()
    result = backend.complete(long_prompt, max_tokens=16, cancel=token)
    stopped_after = time.monotonic() - cancelled_at[0]
    assert result.finish_reason == "cancelled"
    assert result.completion_tokens == 0  # it never got past the prompt
    assert stopped_after < 0.2, stopped_after
    resumed = backend.complete(long_prompt + "def helper_last(value):\n    return", max_tokens=6)
    assert resumed.finish_reason in ("stop", "length")


def test_kv_reuse_counts_evaluated_tokens(backend: LlamaCppBackend) -> None:
    base = "".join(f"def helper_{i}(x):\n    return x * {i}\n\n" for i in range(20))
    first = backend.complete(base + "def target(", max_tokens=4)
    second = backend.complete(base + "def target(y", max_tokens=4)
    assert first.prompt_tokens > 200
    assert second.evaluated_tokens <= 5, second  # only the edited tail is evaluated again
    fresh = backend.complete("# unrelated\n" + base, max_tokens=2)
    assert fresh.evaluated_tokens >= fresh.prompt_tokens - 2


def test_candidates_distinct_merged_and_cheap(backend: LlamaCppBackend) -> None:
    results = backend.candidates(BODY_PROMPT, 5, max_tokens=12, temperature=0.9, stop=["\n\n"])
    assert 2 <= len(results) <= 5 and sum(r.votes for r in results) == 5
    texts = [r.text.rstrip() for r in results]
    assert len(set(texts)) == len(texts)
    assert all(r.evaluated_tokens <= 2 for r in results[1:])  # the prompt was evaluated once
    greedy = backend.candidates(BODY_PROMPT, 3, max_tokens=6, temperature=0.0)
    assert len(greedy) == 1 and greedy[0].votes == 3


GRAMMAR_CASES = [
    (INTENT_GRAMMAR, parse_intent, 6, [
        "Request: rename the variable x to count.\nIntent (edit, explain, fix or generate):",
        "Request: the test fails with KeyError, repair it.\nIntent:",
    ]),
    (YES_NO_GRAMMAR, parse_yes_no, 4, [
        "Does `return a + b` add two numbers? Answer yes or no:",
        "Is the sky green? Answer:",
    ]),
    (choice_grammar(["A", "B", "C"]), lambda t: parse_choice(t, ["A", "B", "C"]), 4, [
        "Which is a sorting algorithm?\nA) quicksort\nB) a cat\nC) a car\nAnswer:",
    ]),
    (LINE_RANGE_GRAMMAR, parse_line_range, 16, [
        "1 def f():\n2     return 1\n3\n4 def g():\n5     return 2\nThe lines of g are:",
    ]),
]


def test_grammar_outputs_always_parse(backend: LlamaCppBackend) -> None:
    """18 constrained calls over 3 temperatures: every output parses (grammar sampling is
    ~2x slower per token than free decoding on this 262k-token vocabulary, so keep them short)."""
    calls = failures = 0
    for grammar, parse, max_tokens, prompts in GRAMMAR_CASES:
        for prompt in prompts:
            for temperature in (0.0, 0.7, 1.0):
                result = backend.complete(prompt, grammar=grammar, temperature=temperature,
                                          seed=calls, max_tokens=max_tokens)
                calls += 1
                assert not result.grammar_incomplete, (prompt, result)
                try:
                    parse(result.text)
                except ValueError:
                    failures += 1
    assert calls == 18 and failures == 0


ENVELOPE_PROMPT = "def sub(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n\n\n"


def test_function_envelope_grammar(backend: LlamaCppBackend) -> None:
    grammar = python_function_grammar("add")
    finished = 0
    for temperature in (0.0, 0.7, 1.0):
        result = backend.complete(ENVELOPE_PROMPT, grammar=grammar,
                                  temperature=temperature, seed=7, max_tokens=48,
                                  stop=ENVELOPE_STOPS)
        assert result.grammar_incomplete == (result.finish_reason == "length")
        if result.grammar_incomplete:
            assert result.text.startswith(("def add(", "async def add(", "@"))
            continue
        finished += 1
        envelope = parse_python_function(result.text, "add")
        assert envelope.name == "add" and envelope.body_lines >= 1
    assert finished >= 1


def test_unsatisfiable_grammar_is_reported_not_hung(backend: LlamaCppBackend) -> None:
    grammar = 'root ::= "x" [a-z]{40}\n'
    started = time.monotonic()
    result = backend.complete("Write letters:", grammar=grammar, max_tokens=4)
    assert time.monotonic() - started < 20
    assert result.finish_reason == "length" and result.grammar_incomplete


def test_classify_uses_low_temperature(backend: LlamaCppBackend) -> None:
    config = load_config(None, user_file=None)
    result = classify(backend, "Request: explain this code.\nIntent:", INTENT_GRAMMAR, config)
    assert parse_intent(result.text) in ("edit", "explain", "fix", "generate")


def test_fim_falls_back_to_prefix_completion(backend: LlamaCppBackend) -> None:
    assert backend.fim_template is None
    suffix = "\n\ndef main():\n    print(circle_area(2.0))\n"
    result = backend.fim(BODY_PROMPT, suffix, max_tokens=48,
                         stop_rule=stop_rule_for("python", BODY_PROMPT))
    assert result.text.strip() and "<" not in result.text[:1]
    assert "def main" not in result.text
    assert result.prompt_tokens == len(backend.tokenize(BODY_PROMPT, add_bos=True))


def test_samples_with_a_suffix_stop_where_it_begins(backend: LlamaCppBackend) -> None:
    prompt = "first = 1\nsecond = 2\nthird = 3\n"
    plain = backend.candidates(prompt, 1, max_tokens=48, temperature=0.0)[0].text
    later = [line for line in plain.splitlines()[1:] if len(line.strip()) >= 4
             and not line[:1].isspace()]
    if not later:
        pytest.skip(f"the model wrote no second top-level line: {plain!r}")
    # without FIM tokens the suffix is not seen, but its first line ends the sample, as in `fim`
    cut = backend.candidates(prompt, 1, max_tokens=48, temperature=0.0,
                             suffix="\n" + later[0] + "\n")[0].text
    assert "\n" + later[0] not in cut and plain.startswith(cut)


def test_context_overflow_truncates_on_a_line(backend: LlamaCppBackend) -> None:
    huge = "".join(f"value_{i} = {i} * 2\n" for i in range(700)) + "total = value_1 +"
    assert backend.count_tokens(huge) > 2048
    result = backend.complete(huge, max_tokens=16, stop=["\n"])
    assert result.truncated and result.prompt_tokens + 16 < 2048
    fim = backend.fim(huge, "\nprint(total)\n" * 400, max_tokens=4, stop=["\n"])
    assert fim.truncated and fim.prompt_tokens + 4 < 2048


def test_corrupt_model_body_is_a_backend_error(model_path: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    with model_path.open("rb") as source, broken.open("wb") as target:
        target.write(source.read(16_000_000))  # header intact, tensors cut off
    backend = LlamaCppBackend(broken, context_length=512)
    with pytest.raises(BackendError, match="broken.gguf"):
        backend.complete("x", max_tokens=1)


def test_engine_complete_and_cli(tmp_path: Path, isolated_home: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    source = "import math\n\n\ndef circle_area(radius):\n    \n\n\ndef main():\n    pass\n"
    (project / "geo.py").write_text(source)
    engine = Engine(project)
    result = engine.complete("geo.py", 4, 4)
    assert result.multiline and result.text.strip() and "def main" not in result.text
    again = engine.complete("geo.py", 4, 4)
    assert again.evaluated_tokens <= 2  # same prompt: served from the KV cache
    engine.close()
    # the CLI, 1-based, in a fresh process (this test holds the model lock already)
    env = dict(os.environ, LOCALCODE_CONFIG_HOME=str(isolated_home))
    localcode = shutil.which("localcode", path=str(Path(sys.executable).parent))
    completed = subprocess.run(
        [localcode, "complete", "--project", str(project), "--file", "geo.py", "--line", "5",
         "--column", "5", "--json"], capture_output=True, text=True, timeout=120, env=env)
    assert completed.returncode == 0, completed.stderr
    payload = json.loads(completed.stdout)
    assert payload["text"].strip() and payload["multiline"] is True
    assert payload["prompt_tokens"] > 0 and payload["ms"] > 0
    assert payload["evaluated_tokens"] == payload["prompt_tokens"]  # a new process: cold
    bad = subprocess.run(
        [localcode, "complete", "--project", str(project), "--file", "geo.py", "--line", "99",
         "--column", "1"], capture_output=True, text=True, timeout=60, env=env)
    assert bad.returncode == 2 and "past the end" in bad.stderr


def test_create_backend_uses_embedded_model(isolated_home: Path, tmp_path: Path) -> None:
    backend = create_backend(load_config(tmp_path), tmp_path)
    assert isinstance(backend, LlamaCppBackend) and not backend.loaded
    assert backend.n_threads <= (os.cpu_count() or 1)


def test_backends_freed_in_any_order_do_not_crash(model_path: Path) -> None:
    """llama.cpp keeps C callbacks (logging, abort) past any one backend: freeing backends
    in any order, also through the garbage collector, must not call a freed callback."""
    script = f"""
import gc
from localcode_lsp.inference.llama_backend import LlamaCppBackend
first = LlamaCppBackend({str(model_path)!r}, context_length=512)
second = LlamaCppBackend({str(model_path)!r}, context_length=512)
first.load(); second.load()
second.complete("x = ", max_tokens=2)
del second
gc.collect()
print(first.complete("def f():\\n    return", max_tokens=3).finish_reason)
first.close()
del first
gc.collect()
print("clean exit")
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "clean exit" in proc.stdout
