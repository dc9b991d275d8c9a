"""The only package that talks to a model. Everything above it sees `Backend`.

`create_backend` is cheap: it validates the configuration and returns an unloaded backend; the
GGUF is loaded on the first call that needs it. It keeps no cache: the Engine holds the one
backend of its workspace, which is how one process gets one model per model path.
"""

from __future__ import annotations

from pathlib import Path

from ..config import Config, resolve_model_path
from .backend import Backend, BackendError, ChatMessage, Completion, ModelInfo, StopRule
from .catalogue import AssemblyProgress

__all__ = [
    "Backend",
    "BackendError",
    "ChatMessage",
    "Completion",
    "LlamaCppBackend",
    "ModelInfo",
    "OpenAIBackend",
    "StopRule",
    "classify",
    "create_backend",
]


def __getattr__(name: str):  # keep `import localcode_lsp.inference` free of llama_cpp
    if name == "LlamaCppBackend":
        from .llama_backend import LlamaCppBackend

        return LlamaCppBackend
    if name == "OpenAIBackend":
        from .openai_backend import OpenAIBackend

        return OpenAIBackend
    raise AttributeError(name)


def create_backend(config: Config, project_root: Path | None,
                   progress: AssemblyProgress | None = None) -> Backend:
    """The backend `config.model` describes (not loaded yet). BackendError names a bad path/URL
    or a catalogue model that is not installed. A catalogue model is assembled into the user
    cache on first use (`progress` hears about it; later calls only check a stamp)."""
    model = config.model
    if model.backend == "openai":
        from .fim import TEMPLATES
        from .openai_backend import OpenAIBackend, api_key_from_env

        template = TEMPLATES.get(model.fim_template) if model.fim_template else None
        return OpenAIBackend(model.url, timeout=model.request_timeout, model=model.model,
                             api_key=api_key_from_env(model.api_key_env),
                             context_length=model.context_length, fim_template=template)
    from .catalogue import find_model, match_file, model_file
    from .llama_backend import LlamaCppBackend
    from .model_files import validate_gguf

    path = resolve_model_path(config, project_root)
    entry = find_model(model.name) if path is None else match_file(path)
    if path is None:
        assert entry is not None
        path = model_file(entry, progress)
    validate_gguf(path)
    return LlamaCppBackend(path, context_length=model.context_length,
                           n_gpu_layers=model.n_gpu_layers, n_threads=model.n_threads,
                           fim_template=model.fim_template, catalogue=entry)


def classify(backend: Backend, prompt: str, grammar: str, config: Config, *,
             max_tokens: int = 16, cancel=None) -> Completion:
    """One low-temperature, grammar-constrained answer (`temperature_classify`, one candidate)."""
    return backend.complete(prompt, max_tokens=max_tokens, grammar=grammar,
                            temperature=config.generation.temperature_classify, seed=0,
                            cancel=cancel)
