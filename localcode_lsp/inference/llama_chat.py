"""Chat turns rendered with a GGUF's own Jinja chat template, for the in-process model.

Owns how `LlamaCppBackend.chat` becomes a completion prompt: the template the GGUF ships
(`tokenizer.chat_template`), its BOS/EOS texts from the model's vocabulary, the prompt ending
where the assistant's turn begins (without the BOS that prompt fitting adds again), and the
strings that end that turn.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .backend import BackendError, ChatMessage


def chat_template(values: Mapping[str, Any]) -> str:
    """The Jinja chat template among a GGUF's metadata `values` ("" when it carries none)."""
    value = values.get("tokenizer.chat_template", "")
    return value if isinstance(value, str) else ""


def render_chat(messages: Sequence[ChatMessage], *, values: Mapping[str, Any],
                load: Callable[[], Any], model_name: str) -> tuple[str, list[str]]:
    """`messages` rendered with the chat template in the GGUF metadata `values`, ending where
    the assistant's turn begins, and the strings that end that turn. `load` returns the loaded
    `Llama` (for the BOS/EOS texts); BackendError for a model without a template."""
    template = chat_template(values)
    if not template:
        raise BackendError(f"{model_name} has no chat template "
                           "(tokenizer.chat_template): it is a base model; use completion")
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    llm = load()

    def token_text(key: str) -> str:
        if key not in values:
            return ""
        return llm.detokenize([int(values[key])], special=True).decode("utf-8", "replace")

    eos, bos = token_text("tokenizer.ggml.eos_token_id"), token_text("tokenizer.ggml.bos_token_id")
    formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos,
                                    add_generation_prompt=True)
    try:
        rendered = formatter(messages=[dict(m) for m in messages])  # type: ignore[misc]
    except Exception as exc:  # jinja2 errors of a template the GGUF ships
        raise BackendError(f"the chat template of {model_name} failed: {exc}") from exc
    prompt = rendered.prompt
    if bos and prompt.startswith(bos):
        prompt = prompt[len(bos):]  # fit_prompt adds BOS itself where the model wants one
    stops = [s for s in (rendered.stop if isinstance(rendered.stop, list)
                         else [rendered.stop] if rendered.stop else []) if s]
    for marker in (eos, "<|im_end|>", "<|endoftext|>"):
        if marker and marker not in stops and (marker == eos or marker in prompt):
            stops.append(marker)
    return prompt, stops
