"""Model files: validation and a pure-Python GGUF metadata reader (catalogue paths in `catalogue`).

Reading metadata here (no llama_cpp) keeps `doctor` and FIM detection cheap: no model load.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from .backend import BackendError

GGUF_MAGIC = b"GGUF"


def cache_dir() -> Path:
    """Where localcode keeps machine-wide caches (LOCALCODE_CACHE_DIR overrides)."""
    override = os.environ.get("LOCALCODE_CACHE_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_cache_dir("localcode"))


def tiny_model_path(progress: Callable[[str], None] | None = None) -> Path:
    """The tiny gemma-3-270m GGUF (the fast-test model), assembled into the user cache once."""
    from .catalogue import TINY_MODEL, find_model, model_file

    def report(message: str, done: int, total: int) -> None:
        if progress is not None and done == 0:
            progress(message + "...")

    return model_file(find_model(TINY_MODEL), report)


def default_model_path(progress: Callable[[str], None] | None = None) -> Path:
    """The default model's GGUF (the catalogue's DEFAULT_MODEL), assembled once."""
    from .catalogue import DEFAULT_MODEL, find_model, model_file

    def report(message: str, done: int, total: int) -> None:
        if progress is not None and done == 0:
            progress(message + "...")

    return model_file(find_model(DEFAULT_MODEL), report)


def validate_gguf(path: Path) -> Path:
    """Raise BackendError naming `path` unless it is a readable GGUF file."""
    if not path.exists():
        raise BackendError(f"model file not found: {path}")
    if not path.is_file():
        raise BackendError(f"model path is not a file: {path}")
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise BackendError(f"model file cannot be read: {path}: {exc}") from exc
    if magic != GGUF_MAGIC:
        raise BackendError(f"not a GGUF model file (bad magic {magic!r}): {path}")
    return path


@dataclass
class GGUFMetadata:
    """Selected GGUF header values plus the vocabulary's special-looking tokens."""

    path: Path
    size_bytes: int
    version: int
    values: dict[str, Any] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)  # only tokens that look special

    @property
    def architecture(self) -> str:
        return str(self.values.get("general.architecture", "unknown"))

    @property
    def name(self) -> str:
        return str(self.values.get("general.name", self.path.name))

    @property
    def context_length(self) -> int:
        return int(self.values.get(f"{self.architecture}.context_length", 0) or 0)

    def has_token(self, token: str) -> bool:
        return token in self.tokens


_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q",
            11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


def _looks_special(token: str) -> bool:
    return (token.startswith("<") and token.endswith(">") and len(token) <= 40) or (
        token.startswith("[") and token.endswith("]") and len(token) <= 20
    )


def read_gguf_metadata(path: Path) -> GGUFMetadata:
    """Parse the GGUF key/value header (not the tensors). Raises BackendError on a corrupt file."""
    validate_gguf(path)
    try:
        with path.open("rb") as handle:
            return _read_header(handle, path)
    except (struct.error, UnicodeDecodeError, ValueError, MemoryError) as exc:
        raise BackendError(f"corrupt GGUF header in {path}: {exc}") from exc


def _read_header(handle: BinaryIO, path: Path) -> GGUFMetadata:
    def read(fmt: str) -> Any:
        size = struct.calcsize(fmt)
        data = handle.read(size)
        if len(data) != size:
            raise ValueError("unexpected end of file")
        return struct.unpack(fmt, data)[0]

    def read_string() -> str:
        length = read("<Q")
        if length > 1 << 24:
            raise ValueError(f"string length {length} is implausible")
        return handle.read(length).decode("utf-8", errors="replace")

    def read_value(kind: int, keep: bool) -> Any:
        if kind in _SCALARS:
            return read(_SCALARS[kind])
        if kind == _STRING:
            return read_string()
        if kind == _ARRAY:
            item_kind, count = read("<I"), read("<Q")
            if count > 1 << 26:
                raise ValueError(f"array length {count} is implausible")
            if not keep and item_kind in _SCALARS:
                handle.seek(struct.calcsize(_SCALARS[item_kind]) * count, os.SEEK_CUR)
                return None
            return [read_value(item_kind, keep) for _ in range(count)]
        raise ValueError(f"unknown GGUF value type {kind}")

    handle.seek(4)
    version = read("<I")
    read("<Q")  # tensor count
    kv_count = read("<Q")
    metadata = GGUFMetadata(path=path, size_bytes=path.stat().st_size, version=version)
    for _ in range(kv_count):
        key = read_string()
        kind = read("<I")
        if key == "tokenizer.ggml.tokens":
            tokens = read_value(kind, True) or []
            metadata.tokens = {t: i for i, t in enumerate(tokens) if _looks_special(t)}
            continue
        keep = not key.startswith("tokenizer.ggml.") or kind != _ARRAY
        value = read_value(kind, keep)
        if keep:
            metadata.values[key] = value
    return metadata
