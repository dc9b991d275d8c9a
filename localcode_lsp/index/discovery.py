"""Which files of the workspace the index covers: .gitignore and .localcode/ignore respected,
binary and oversized files skipped (and counted); and which directories nothing walks into
(`NEVER_WALKED_DIRS`, also the verification copy's and the test finder's rule)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

from ..logs import get_logger

log = get_logger("index.discovery")

# Directories nothing walks into, wherever they are: VCS data, localcode's own state,
# environments and tool caches. The one list: the index's walk below, the verification copy
# (verify/workcopy.py) and the test finder (verify/testrun.py) all skip these.
NEVER_WALKED_DIRS = frozenset({
    ".git", ".hg", ".svn", ".localcode", ".venv", "venv", "node_modules", "__pycache__",
    ".mypy_cache", ".pytest_cache", ".ruff_cache", ".tox", ".nox",
})
# The index also passes over what is no source to index but a verification copy keeps: the
# hypothesis example database (tests run in a copy replay the examples that failed before) and
# *.egg-info build metadata (tests may read the package's version and entry points).
INDEX_ONLY_SKIPPED_DIRS = frozenset({".hypothesis"})
INDEX_ONLY_SKIPPED_SUFFIXES = (".egg-info",)

_BINARY_SNIFF_BYTES = 8192


@dataclass(frozen=True)
class FileEntry:
    """One indexable file: workspace-relative path and its stat fingerprint."""

    path: str
    size: int
    mtime_ns: int


@dataclass
class Discovery:
    """The result of walking the workspace."""

    files: list[FileEntry] = field(default_factory=list)
    skipped_binary: int = 0
    skipped_large: int = 0
    skipped_ignored: int = 0


def _read_patterns(path: Path, prefix: str) -> list[str]:
    """Lines of an ignore file, re-rooted under `prefix` (the file's directory)."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    patterns = []
    for raw in lines:
        line = raw.rstrip()
        if not line or line.lstrip().startswith("#"):
            continue
        if not prefix:
            patterns.append(line)
            continue
        negate = line.startswith("!")
        body = line[1:] if negate else line
        anchored = body.startswith("/") or "/" in body.rstrip("/")
        body = body.lstrip("/")
        rerooted = f"{prefix}/{body}" if anchored else f"{prefix}/**/{body}"
        patterns.append(("!" if negate else "") + rerooted)
    return patterns


def looks_binary(path: Path) -> bool:
    """A NUL byte in the first 8 KiB, or bytes that are not UTF-8 text."""
    try:
        with path.open("rb") as handle:
            head = handle.read(_BINARY_SNIFF_BYTES)
    except OSError:
        return True
    if b"\x00" in head:
        return True
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sniffed block is still text.
        return exc.start < len(head) - 4
    return False


def index_skips_dir(name: str) -> bool:
    """Whether the index's walk passes over a directory named `name`."""
    return name in NEVER_WALKED_DIRS or name in INDEX_ONLY_SKIPPED_DIRS \
        or name.endswith(INDEX_ONLY_SKIPPED_SUFFIXES)


def discover(root: Path, max_file_bytes: int, *,
             suffixes: tuple[str, ...] | None = None) -> Discovery:
    """Walk `root` and return the indexable files, sorted by path (only names ending in one of
    `suffixes` when given: the others are passed over unread and uncounted)."""
    result = Discovery()
    root_patterns = _read_patterns(root / ".gitignore", "")
    root_patterns += _read_patterns(root / ".localcode" / "ignore", "")
    spec = pathspec.GitIgnoreSpec.from_lines(root_patterns)
    for dirpath, dirnames, filenames in os.walk(root):
        directory = Path(dirpath)
        rel_dir = directory.relative_to(root).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir
        if rel_dir and (directory / ".gitignore").is_file():
            nested = _read_patterns(directory / ".gitignore", rel_dir)
            if nested:
                root_patterns = root_patterns + nested
                spec = pathspec.GitIgnoreSpec.from_lines(root_patterns)
        kept_dirs = []
        for name in sorted(dirnames):
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if index_skips_dir(name):
                continue
            if (directory / name).is_symlink():
                continue
            if spec.match_file(rel + "/"):
                result.skipped_ignored += 1
                continue
            kept_dirs.append(name)
        dirnames[:] = kept_dirs
        for name in sorted(filenames):
            if suffixes is not None and not name.endswith(suffixes):
                continue
            rel = f"{rel_dir}/{name}" if rel_dir else name
            path = directory / name
            if path.is_symlink() or spec.match_file(rel):
                result.skipped_ignored += 1
                continue
            try:
                stat = path.stat()
            except OSError:
                continue
            if stat.st_size > max_file_bytes:
                result.skipped_large += 1
                continue
            if looks_binary(path):
                result.skipped_binary += 1
                continue
            result.files.append(FileEntry(rel, stat.st_size, stat.st_mtime_ns))
    result.files.sort(key=lambda entry: entry.path)
    return result
