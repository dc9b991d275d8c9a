"""`localcode.toml` configuration: typed, layered, frozen, and strict.

Layers, lowest first: built-in defaults < user file (platform config dir) < project file
(`<root>/localcode.toml`) < editor initializationOptions. Every value remembers which layer set
it, so `doctor` can say where it came from. Unknown keys, wrong types and out-of-range values are
errors that name the file, the line, the key, what was expected and the nearest valid key.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .logs import get_logger

CONFIG_FILENAME = "localcode.toml"
DEFAULT_SOURCE = "default"
log = get_logger("config")


class ConfigError(ValueError):
    """A configuration problem, located as precisely as the source allows."""

    def __init__(
        self,
        message: str,
        *,
        source: str = "",
        line: int | None = None,
        key: str = "",
        expected: str = "",
        suggestion: str = "",
    ) -> None:
        self.source = source
        self.line = line
        self.key = key
        self.expected = expected
        self.suggestion = suggestion
        self.message = message
        where = source
        if source and line:
            where = f"{source}:{line}"
        parts = [f"{where}: " if where else "", message]
        if expected:
            parts.append(f" (expected {expected})")
        if suggestion:
            parts.append(f"; did you mean {suggestion}?")
        super().__init__("".join(parts))


@dataclass(frozen=True)
class ModelConfig:
    """[model]: which GGUF to load and how."""

    name: str = "qwen2.5-coder-1.5b-instruct"  # a catalogue entry (`localcode models`)
    path: str = ""  # any GGUF file; when set it wins over `name`
    prompt_family: str = "auto"  # "auto" (from the model's kind), "base" or "instruct"
    context_length: int = 8192
    n_gpu_layers: int = -1
    n_threads: int = 0  # 0 = one per core, never more than the cores
    backend: str = "llama.cpp"  # "llama.cpp" (in process) or "openai" (HTTP server)
    url: str = ""  # base URL of an OpenAI-compatible server when backend = "openai"
    request_timeout: float = 60.0
    fim_template: str = ""  # "" = detect from the vocabulary, "none" = prefix completion, or a name
    model: str = ""  # backend = "openai": the model name the server expects (vLLM, Ollama)
    api_key_env: str = ""  # backend = "openai": the environment variable holding the API key


@dataclass(frozen=True)
class GenerationConfig:
    """[generation]: sampling and retry policy."""

    candidates: int = 5
    max_retries: int = 3
    temperature: float = 0.6
    temperature_classify: float = 0.1
    max_tokens: int = 384


@dataclass(frozen=True)
class ContextConfig:
    """[context]: hard token budgets per prompt section."""

    system_budget: int = 256
    code_budget: int = 1536
    task_budget: int = 512
    few_shot_examples: int = 3


@dataclass(frozen=True)
class VerificationConfig:
    """[verification]: which gates run and their limits."""

    parse_check: bool = True
    lint: bool = True
    type_check: bool = False
    test: bool = True
    # Off by default: on 63 HumanEval problems with the 1.5B instruct model it rejected no
    # candidate and approved every wrong edit, at one call per passing candidate (issue 24).
    diff_review: bool = False
    # A function whose only checks are its docstring's examples: a passing candidate is compared
    # with a second one on inputs near those examples, and candidates vote when they differ.
    agreement: bool = True
    test_timeout: float = 30.0
    memory_limit_mb: int = 2048
    # Where no sandbox works (macOS, containers without user namespaces), run the project's
    # tests, doctests and type checker anyway, with no file, network or socket isolation.
    allow_unisolated: bool = False


@dataclass(frozen=True)
class IndexConfig:
    """[index]: what the codebase index covers and which embedder it uses."""

    # The original design named nomic-embed-text; it is not available offline, so the default
    # is the bundled all-MiniLM-L6-v2. A local directory path selects another model.
    embedding_model: str = "all-MiniLM-L6-v2"
    update_on_save: bool = True
    max_file_bytes: int = 1_000_000


@dataclass(frozen=True)
class KnowledgeConfig:
    """[knowledge]: the pattern library, error->fix cache and doc fragments under .localcode/."""

    enabled: bool = True
    max_mb: int = 32  # cap of .localcode/knowledge/ (least recently used entries evicted)


@dataclass(frozen=True)
class Config:
    """The whole configuration, frozen once loaded. `sources` maps "section.key" to its layer."""

    model: ModelConfig = field(default_factory=ModelConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    context: ContextConfig = field(default_factory=ContextConfig)
    verification: VerificationConfig = field(default_factory=VerificationConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    knowledge: KnowledgeConfig = field(default_factory=KnowledgeConfig)
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    def source_of(self, dotted_key: str) -> str:
        """Which layer set `section.key` ("default" when no file did)."""
        return self.sources.get(dotted_key, DEFAULT_SOURCE)

    def as_dict(self) -> dict[str, dict[str, Any]]:
        """Plain nested dict of every section (no provenance)."""
        return {name: dataclasses.asdict(getattr(self, name)) for name in SECTIONS}

    @property
    def generation_budget(self) -> int:
        """Tokens left for generation once every prompt section has its budget."""
        c = self.context
        return self.model.context_length - (c.system_budget + c.code_budget + c.task_budget)


SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "generation": GenerationConfig,
    "context": ContextConfig,
    "verification": VerificationConfig,
    "index": IndexConfig,
    "knowledge": KnowledgeConfig,
}

# (minimum, maximum) inclusive; None = unbounded on that side.
_RANGES: dict[str, tuple[float | None, float | None]] = {
    "model.context_length": (512, 1_048_576),
    "model.n_gpu_layers": (-1, None),
    "model.n_threads": (0, 1024),
    "model.request_timeout": (0.1, 3600),
    "generation.candidates": (1, 64),
    "generation.max_retries": (0, 20),
    "generation.temperature": (0.0, 2.0),
    "generation.temperature_classify": (0.0, 2.0),
    "generation.max_tokens": (1, 32_768),
    "context.system_budget": (0, None),
    "context.code_budget": (0, None),
    "context.task_budget": (0, None),
    "context.few_shot_examples": (0, 32),
    "verification.test_timeout": (0.1, 3600),
    "verification.memory_limit_mb": (64, 1_048_576),
    "index.max_file_bytes": (1, None),
    "knowledge.max_mb": (1, 65_536),
}

_CHOICES: dict[str, tuple[str, ...]] = {
    "model.backend": ("llama.cpp", "openai"),
    "model.prompt_family": ("auto", "base", "instruct"),
    "model.fim_template": ("", "none", "qwen", "codegemma", "starcoder", "codellama", "deepseek"),
}


def _type_name(tp: type) -> str:
    return {bool: "a boolean (true/false)", int: "an integer", float: "a number", str: "a string"}[tp]


class _LineLocator:
    """Finds the line of `[section]` / `key =` in TOML text (tomllib keeps no positions)."""

    _header = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\s*(#.*)?$")
    _assign = re.compile(r"^\s*([A-Za-z0-9_\-\"'.]+)\s*=")

    def __init__(self, text: str) -> None:
        self._lines = text.splitlines()

    def find(self, section: str, key: str | None = None) -> int | None:
        current = ""
        for number, line in enumerate(self._lines, start=1):
            header = self._header.match(line)
            if header:
                current = header.group(1).strip().strip("\"'")
                if key is None and current == section:
                    return number
                continue
            assign = self._assign.match(line)
            if assign and key is not None:
                name = assign.group(1).strip("\"'")
                if current == section and name == key:
                    return number
                if current == "" and name in (f"{section}.{key}",):
                    return number
        return None


def _suggest(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.5)
    return close[0] if close else ""


def _coerce(dotted: str, value: Any, tp: type, raise_error) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise_error(f"{dotted} has the wrong type: {value!r}", _type_name(tp))
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise_error(f"{dotted} has the wrong type: {value!r}", _type_name(tp))
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise_error(f"{dotted} has the wrong type: {value!r}", _type_name(tp))
    if tp is str:
        if isinstance(value, str):
            return value
        raise_error(f"{dotted} has the wrong type: {value!r}", _type_name(tp))
    raise AssertionError(tp)


def _field_types(section_cls: type) -> dict[str, type]:
    hints = {f.name: f.type for f in dataclasses.fields(section_cls)}
    mapping = {"bool": bool, "int": int, "float": float, "str": str}
    return {name: mapping[str(tp)] if isinstance(tp, str) else tp for name, tp in hints.items()}


def _apply_layer(
    values: dict[str, dict[str, Any]],
    sources: dict[str, str],
    layer: Mapping[str, Any],
    source: str,
    locator: _LineLocator | None,
) -> None:
    """Validate one layer's raw mapping and merge it into `values` (per key)."""

    def line_of(section: str, key: str | None = None) -> int | None:
        return locator.find(section, key) if locator else None

    if not isinstance(layer, Mapping):
        raise ConfigError("configuration must be a table of sections", source=source,
                          expected="a table like {\"generation\": {\"candidates\": 5}}")
    for section, table in layer.items():
        if section not in SECTIONS:
            raise ConfigError(
                f"unknown section [{section}]",
                source=source,
                line=line_of(section),
                key=section,
                expected="one of " + ", ".join(f"[{s}]" for s in SECTIONS),
                suggestion=(f"[{s}]" if (s := _suggest(section, list(SECTIONS))) else ""),
            )
        if not isinstance(table, Mapping):
            raise ConfigError(f"[{section}] must be a table", source=source,
                              line=line_of(section), key=section, expected="a table of keys")
        types = _field_types(SECTIONS[section])
        for key, raw in table.items():
            dotted = f"{section}.{key}"
            if key not in types:
                raise ConfigError(
                    f"unknown key '{key}' in [{section}]",
                    source=source,
                    line=line_of(section, key),
                    key=dotted,
                    expected="one of " + ", ".join(types),
                    suggestion=_suggest(key, list(types)),
                )

            def fail(message: str, expected: str, _key: str = key, _dotted: str = dotted,
                     _section: str = section) -> None:
                raise ConfigError(message, source=source, line=line_of(_section, _key),
                                  key=_dotted, expected=expected)

            value = _coerce(dotted, raw, types[key], fail)
            low, high = _RANGES.get(dotted, (None, None))
            if (low is not None and value < low) or (high is not None and value > high):
                bounds = (
                    f"between {low} and {high}" if low is not None and high is not None
                    else f">= {low}" if low is not None else f"<= {high}"
                )
                fail(f"{dotted} = {value!r} is out of range", bounds)
            choices = _CHOICES.get(dotted)
            if choices and value not in choices:
                fail(f"{dotted} = {value!r} is not a valid choice",
                     "one of " + ", ".join(repr(c) for c in choices))
            values[section][key] = value
            sources[dotted] = source


def _check_cross_fields(values: dict[str, dict[str, Any]], sources: dict[str, str],
                        locators: dict[str, _LineLocator]) -> None:
    context = values["context"]
    total = context["system_budget"] + context["code_budget"] + context["task_budget"]
    context_length = values["model"]["context_length"]
    if total >= context_length:
        blame = max(("system_budget", "code_budget", "task_budget"), key=lambda k: context[k])
        source = sources.get(f"context.{blame}", sources.get("model.context_length", DEFAULT_SOURCE))
        locator = locators.get(source)
        raise ConfigError(
            f"prompt budgets add up to {total} tokens, which leaves nothing for generation "
            f"within model.context_length = {context_length}",
            source=source,
            line=locator.find("context", blame) if locator else None,
            key=f"context.{blame}",
            expected=f"system_budget + code_budget + task_budget < {context_length}",
        )
    if values["model"]["backend"] == "openai" and not values["model"]["url"]:
        source = sources.get("model.backend", DEFAULT_SOURCE)
        locator = locators.get(source)
        raise ConfigError(
            "model.backend = 'openai' needs model.url",
            source=source,
            line=locator.find("model", "backend") if locator else None,
            key="model.url",
            expected="a base URL such as 'http://127.0.0.1:8080'",
        )


def read_toml(path: Path) -> tuple[dict[str, Any], _LineLocator]:
    """Parse one TOML file, turning syntax errors into a ConfigError with the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text: {exc}", source=str(path)) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line_match = re.search(r"line (\d+)", str(exc))
        raise ConfigError(
            f"invalid TOML: {exc}",
            source=str(path),
            line=int(line_match.group(1)) if line_match else None,
            expected="valid TOML",
        ) from exc
    return data, _LineLocator(text)


def user_config_path() -> Path:
    """The per-user `localcode.toml` (LOCALCODE_CONFIG_HOME overrides the platform dir)."""
    override = os.environ.get("LOCALCODE_CONFIG_HOME")
    if override:
        return Path(override) / CONFIG_FILENAME
    import platformdirs

    return Path(platformdirs.user_config_dir("localcode")) / CONFIG_FILENAME


def load_config(
    project_root: Path | str | None = None,
    *,
    user_file: Path | None | bool = True,
    overrides: Mapping[str, Any] | None = None,
    overrides_source: str = "initializationOptions",
    trusted: bool = True,
) -> Config:
    """Load and validate the layered configuration.

    `user_file=True` reads the platform user file if it exists; a Path reads that file; None or
    False skips the user layer. `overrides` is the editor's initializationOptions (nested dict).
    `trusted=False`: the project's `localcode.toml` sets only the keys of
    `UNTRUSTED_PROJECT_KEYS` (see `untrusted_project_layer`).
    """
    values: dict[str, dict[str, Any]] = {
        name: dataclasses.asdict(cls()) for name, cls in SECTIONS.items()
    }
    sources: dict[str, str] = {}
    locators: dict[str, _LineLocator] = {}

    files: list[Path] = []
    project_config: Path | None = None
    if user_file is True:
        candidate = user_config_path()
        if candidate.is_file():
            files.append(candidate)
    elif isinstance(user_file, Path):
        files.append(user_file)
    if project_root is not None:
        project_file = Path(project_root) / CONFIG_FILENAME
        if project_file.is_file():
            files.append(project_file)
            project_config = project_file

    for path in files:
        data, locator = read_toml(path)
        locators[str(path)] = locator
        if not trusted and path == project_config:
            data, dropped = untrusted_project_layer(data)
            for key in dropped:
                log.warning("%s: %s ignored: the workspace is not trusted (only harmless keys "
                            "apply)", path, key)
        _apply_layer(values, sources, data, str(path), locator)
    if overrides:
        _apply_layer(values, sources, overrides, overrides_source, None)
    _check_cross_fields(values, sources, locators)

    sections = {name: SECTIONS[name](**values[name]) for name in SECTIONS}
    return Config(**sections, sources=dict(sources))


# What an untrusted project's localcode.toml may set: sizes, budgets and switches that neither
# reach the network nor name a file or program. Everything else (the backend, URLs, model and
# embedder paths, API key variables, allow_unisolated, and any key added later) is ignored.
UNTRUSTED_PROJECT_KEYS: Mapping[str, frozenset[str]] = {
    "model": frozenset({"context_length"}),
    "generation": frozenset({"candidates", "max_retries", "temperature", "temperature_classify",
                             "max_tokens"}),
    "context": frozenset({"system_budget", "code_budget", "task_budget", "few_shot_examples"}),
    "verification": frozenset({"parse_check", "lint", "type_check", "test", "diff_review",
                               "agreement", "test_timeout", "memory_limit_mb"}),
    "index": frozenset({"update_on_save", "max_file_bytes"}),
    "knowledge": frozenset({"enabled", "max_mb"}),
}


def untrusted_project_layer(layer: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """An untrusted project's config layer cut down to `UNTRUSTED_PROJECT_KEYS`.

    Returns (the kept layer, the dotted keys dropped). A layer that is not a table of tables is
    returned as is, so validation reports it as usual.
    """
    if not isinstance(layer, Mapping):
        return layer, []
    kept: dict[str, Any] = {}
    dropped: list[str] = []
    for section, table in layer.items():
        allowed = UNTRUSTED_PROJECT_KEYS.get(section, frozenset())
        if not isinstance(table, Mapping):
            dropped.append(str(section))
            continue
        kept_table = {key: value for key, value in table.items() if key in allowed}
        dropped += [f"{section}.{key}" for key in table if key not in allowed]
        if kept_table:
            kept[section] = kept_table
    return kept, dropped


def resolve_model_path(config: Config, project_root: Path | None) -> Path | None:
    """The configured GGUF path made absolute (relative to the project root), or None = the
    catalogue model `[model] name`."""
    if not config.model.path:
        return None
    path = Path(os.path.expanduser(config.model.path))
    if not path.is_absolute() and project_root is not None:
        path = Path(project_root) / path
    return path


DEFAULT_TOML = """\
# localcode.toml (in project root). Every key is optional; these are the defaults.

[model]
name = "qwen2.5-coder-1.5b-instruct"  # a catalogue model (`localcode models`)
path = ""                 # any other GGUF file; when set it wins over name
prompt_family = "auto"    # "auto" (from the model's kind), "base" or "instruct"
context_length = 8192     # model's context window
n_gpu_layers = -1         # offload all layers to GPU (-1 = all)

[generation]
candidates = 5            # at most this many candidates an attempt (greedy first, lazily)
max_retries = 3           # verification retry limit
temperature = 0.6         # sampling temperature for code generation
temperature_classify = 0.1  # low temp for classification/verification

[context]
system_budget = 256       # tokens reserved for system prompt
code_budget = 1536        # tokens for retrieved code context
task_budget = 512         # tokens for task description
few_shot_examples = 3     # number of project patterns to include

[verification]
parse_check = true        # tree-sitter syntax validation
lint = true               # run project linter
type_check = false        # run type checker (slower, off by default)
test = true               # run relevant tests
diff_review = false       # second model call to verify semantics (off: it caught nothing)
agreement = true          # docstring examples the only checks: a second candidate must agree

[index]
embedding_model = "all-MiniLM-L6-v2"  # bundled offline; or a local model directory
update_on_save = true     # re-index changed files automatically
"""
