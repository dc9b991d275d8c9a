"""The inference layer against the real default model, Qwen2.5-Coder-1.5B-Instruct: chat through
the GGUF's own template, grammars in chat, prefill, KV reuse between turns, FIM without sentinels."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from localcode_lsp.cancel import CancelToken
from localcode_lsp.config import load_config
from localcode_lsp.inference import BackendError, LlamaCppBackend, create_backend
from localcode_lsp.inference.grammar import YES_NO_GRAMMAR, parse_yes_no

pytestmark = [pytest.mark.model, pytest.mark.required_in_ci]

SENTINELS = ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|fim_pad|>",
             "<|endoftext|>", "<|im_end|>", "<|im_start|>", "<|file_sep|>", "<|repo_name|>")


@pytest.fixture(scope="module")
def qwen(tmp_path_factory: pytest.TempPathFactory) -> LlamaCppBackend:
    """The default backend exactly as a user with no [model] section gets it."""
    instance = create_backend(load_config(None, user_file=None), None)
    assert isinstance(instance, LlamaCppBackend)
    yield instance
    instance.close()


def test_the_default_backend_is_the_instruct_coder_model(qwen: LlamaCppBackend) -> None:
    info = qwen.info
    assert (info.catalogue_name, info.kind, info.family, info.fim) == (
        "qwen2.5-coder-1.5b-instruct", "instruct", "qwen2", "qwen")
    assert "<|im_start|>" in info.chat_template


def test_chat_renders_the_gguf_template_and_answers_code(qwen: LlamaCppBackend) -> None:
    prompt, stops = qwen.render_chat([{"role": "user", "content": "hi"}])
    assert prompt.startswith("<|im_start|>system\n") and prompt.endswith("<|im_start|>assistant\n")
    assert "<|im_end|>" in stops
    result = qwen.chat([{"role": "user", "content":
                         "Write a Python function is_even(n) that returns True for even n. "
                         "Answer with the code only."}],
                       max_tokens=96, prefill="```python\n", stop=["```"])
    assert result.finish_reason == "stop"
    assert not any(s in result.text for s in SENTINELS)
    namespace: dict = {}
    exec(result.text, namespace)  # the answer, after the prefilled fence, is runnable Python
    assert namespace["is_even"](4) is True and namespace["is_even"](7) is False


def test_chat_with_a_grammar_answers_yes_or_no_and_reuses_the_prompt(
        qwen: LlamaCppBackend) -> None:
    system = {"role": "system", "content": "You answer questions about Python. Answer yes or no."}
    first = qwen.chat([system, {"role": "user", "content":
                                "Does `def add(a, b): return a + b` add two numbers?"}],
                      max_tokens=4, grammar=YES_NO_GRAMMAR)
    assert first.text.strip().lower() in ("yes", "no") and parse_yes_no(first.text) is True
    second = qwen.chat([system, {"role": "user", "content":
                                 "Is `x = [1, 2` a complete, valid Python statement?"}],
                       max_tokens=4, grammar=YES_NO_GRAMMAR)
    assert second.text.strip().lower() in ("yes", "no")  # the grammar holds the answer
    # the system turn is a shared prefix: only the new tail is evaluated
    assert second.evaluated_tokens < second.prompt_tokens


def test_fim_fills_a_body_that_parses_and_no_sentinel_leaks(qwen: LlamaCppBackend) -> None:
    prefix = 'def clamp(value, low, high):\n    """Return value limited to [low, high]."""\n'
    suffix = "\n\nprint(clamp(5, 0, 3))\n"
    result = qwen.fim(prefix, suffix, max_tokens=64)
    assert result.text.strip()
    assert not any(s in result.text for s in SENTINELS)
    module = prefix + result.text + suffix
    ast.parse(module)
    namespace: dict = {}
    exec(prefix + result.text, namespace)
    assert namespace["clamp"](5, 0, 3) == 3 and namespace["clamp"](-1, 0, 3) == 0


def test_a_cancelled_chat_stops_at_once(qwen: LlamaCppBackend) -> None:
    token = CancelToken()
    token.cancel()
    result = qwen.chat([{"role": "user", "content": "Count to one hundred."}], max_tokens=200,
                       cancel=token)
    assert result.finish_reason == "cancelled" and result.completion_tokens <= 1


def test_a_base_model_refuses_chat_clearly(model_path: Path) -> None:
    tiny = LlamaCppBackend(model_path, context_length=512)
    try:
        if tiny.chat_template:  # gemma-3-270m may carry a template; it is still a base model
            assert tiny.info.kind == "base"
        else:
            with pytest.raises(BackendError, match="no chat template"):
                tiny.chat([{"role": "user", "content": "hi"}])
    finally:
        tiny.close()
