"""One workspace: its root, the documents overlay (open buffers win over disk), containment, trust.

Every path that reaches an edit goes through `Workspace.resolve`, which refuses anything outside
the root (after `..`, symlinks and URL escapes are resolved), anything under a `.git/` (the
root's or a nested repository's), and any URI that is not `file:`.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import quote, unquote, urlparse

from .logs import get_logger

log = get_logger("workspace")

STATE_DIR = ".localcode"
# A URI scheme ("file:", "untitled:", "http:"); two letters at least, so "C:" stays a path.
_URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]+:")


class OutsideWorkspace(ValueError):
    """A path or URI that is not an editable file inside the workspace root."""


@dataclass(frozen=True)
class Document:
    """An immutable snapshot of one open document."""

    path: str  # workspace-relative, "/" separated
    text: str
    version: int | None = None
    language_id: str = ""


class UnsafeStateDir(OSError):
    """`.localcode/` cannot be used: a link (a committed one may point anywhere), not a
    directory, or not writable."""


def state_dir_problem(root: Path) -> str:
    """Why `<root>/.localcode/` must not be used ("" = it may, or it does not exist yet)."""
    state = Path(root) / STATE_DIR
    if os.path.islink(state):
        return f"{state} is a symbolic link (to {os.readlink(state)}); localcode never follows it"
    if not os.path.lexists(state):
        return "" if os.access(root, os.W_OK) else f"{root} is not writable"
    if not state.is_dir():
        return f"{state} is not a directory"
    if not os.access(state, os.W_OK | os.X_OK):
        return f"{state} is not writable"
    return ""


def ensure_state_dir(root: Path) -> Path:
    """Create `<root>/.localcode/` (git-ignored by its own `.gitignore`) and return it.

    UnsafeStateDir when it is a link, not a directory or not writable: nothing is written
    through a link, and the caller runs without a cache.
    """
    problem = state_dir_problem(Path(root))
    if problem:
        raise UnsafeStateDir(problem)
    state = Path(root) / STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    ignore = state / ".gitignore"
    if not os.path.lexists(ignore):
        fd = os.open(ignore, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "w") as handle:
            handle.write("# localcode caches: safe to delete\n*\n")
    return state


@contextmanager
def state_lock(directory: Path, *, exclusive: bool, timeout: float = 10.0) -> Iterator[bool]:
    """An advisory lock (fcntl.flock) on `<directory>/.lock`, shared between processes.

    `exclusive=True` for writers (one at a time, and no reader in between), False for readers
    (any number together). Yields False when the lock could not be had within `timeout` or the
    lock file cannot be made: the caller then skips its cache work (no cache), never waits
    forever and never works unlocked.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: nothing to lock with
        yield True
        return
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o644)
    except OSError as exc:
        log.warning("cannot lock %s (%s): running without the cache", directory, exc)
        yield False
        return
    try:
        kind = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, kind | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    log.warning("%s is locked by another localcode process for %.0f s: "
                                "skipping this cache %s", directory, timeout,
                                "write" if exclusive else "read")
                    yield False
                    return
                time.sleep(0.05)
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _is_git(part: str) -> bool:
    """`.git` in any case; also with trailing dots or spaces, which some filesystems drop."""
    return part.lower().rstrip(". ") == ".git"


def uri_to_path(uri: str) -> Path:
    """`file:///a/b%20c.py` -> Path('/a/b c.py'); other schemes are refused."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        raise OutsideWorkspace(f"not a file URI: {uri!r}")
    if parsed.netloc not in ("", "localhost"):
        raise OutsideWorkspace(f"file URI with a remote host: {uri!r}")
    path = unquote(parsed.path)
    if "\x00" in path:
        raise OutsideWorkspace(f"NUL byte in URI: {uri!r}")
    if os.name == "nt" and len(path) > 2 and path[0] == "/" and path[2] == ":":
        path = path[1:]
    return Path(path)


def path_to_uri(path: Path | str) -> str:
    """Absolute path -> `file://` URI with percent escapes."""
    return "file://" + quote(str(Path(path).absolute()).replace(os.sep, "/"), safe="/:@")


class Workspace:
    """The root directory, the overlay of open documents and the trust decision."""

    def __init__(self, root: Path | str, *, trusted: bool = True) -> None:
        self.root = Path(root).expanduser().resolve()
        if not self.root.is_dir():
            raise FileNotFoundError(f"project directory does not exist: {root}")
        self.trusted = trusted
        self._documents: dict[str, Document] = {}
        self._lock = threading.Lock()
        self._fallback_state: Path | None = None

    # --- paths -----------------------------------------------------------------------------

    @property
    def state_dir(self) -> Path:
        """`.localcode/` under the root (created on demand by whoever writes there).

        When it cannot be used (a link, not a directory, not writable) this is a private
        temporary directory instead, made once per Workspace: the caches then last as long as
        the process (no persistent cache) and nothing is written through the link.
        """
        problem = state_dir_problem(self.root)
        if not problem:
            return self.root / STATE_DIR
        with self._lock:
            if self._fallback_state is None:
                self._fallback_state = Path(tempfile.mkdtemp(prefix="localcode-state-"))
                log.warning("%s: running without a persistent cache (in %s for this session)",
                            problem, self._fallback_state)
            return self._fallback_state

    def ensure_state_dir(self) -> Path:
        """Create `.localcode/` with a `.gitignore` of `*`, so git never sees the caches
        (the private fallback of `state_dir` when `.localcode/` cannot be used)."""
        state = self.state_dir
        if state == self.root / STATE_DIR:
            return ensure_state_dir(self.root)
        return state

    def resolve(self, path_or_uri: str | Path) -> Path:
        """An absolute, symlink-resolved path inside the root, or OutsideWorkspace.

        A URI is always read as a URI (also when it arrives as a Path, whose `//` pathlib
        collapsed), never joined to the root as a relative path. `.git` is refused in every
        component: of the path as written (`.git/..` passes through a repository) and of the
        path resolved.
        """
        text = os.fspath(path_or_uri)
        if "\x00" in text:
            raise OutsideWorkspace(f"NUL byte in path: {path_or_uri!r}")
        if _URI_SCHEME.match(text):
            candidate = uri_to_path(text)
        else:
            candidate = Path(text)
        # any .git, not only the root's: submodules and nested repositories have their own
        if any(_is_git(part) for part in candidate.parts):
            raise OutsideWorkspace(f"{path_or_uri} goes through .git/")
        if not candidate.is_absolute():
            candidate = self.root / candidate
        resolved = Path(os.path.realpath(candidate))
        try:
            relative = resolved.relative_to(self.root)
        except ValueError:
            raise OutsideWorkspace(f"{path_or_uri} is outside the workspace {self.root}") from None
        if any(_is_git(part) for part in relative.parts):
            raise OutsideWorkspace(f"{path_or_uri} is inside .git/")
        return resolved

    def relative(self, path_or_uri: str | Path) -> str:
        """Workspace-relative "/" path of a contained file (OutsideWorkspace otherwise)."""
        return PurePosixPath(*self.resolve(path_or_uri).relative_to(self.root).parts).as_posix()

    def uri(self, relative_path: str) -> str:
        """The `file://` URI of a contained path (OutsideWorkspace for anything `resolve`
        refuses: a URI given here is read as one, never joined to the root)."""
        return path_to_uri(self.resolve(relative_path))

    # --- overlay ---------------------------------------------------------------------------

    def open_document(self, path_or_uri: str | Path, text: str, version: int | None = None,
                      language_id: str = "") -> Document:
        rel = self.relative(path_or_uri)
        document = Document(rel, text, version, language_id)
        with self._lock:
            self._documents[rel] = document
        return document

    def update_document(self, path_or_uri: str | Path, text: str,
                        version: int | None = None) -> Document:
        rel = self.relative(path_or_uri)
        with self._lock:
            previous = self._documents.get(rel)
            document = Document(rel, text, version, previous.language_id if previous else "")
            self._documents[rel] = document
        return document

    def close_document(self, path_or_uri: str | Path) -> None:
        rel = self.relative(path_or_uri)
        with self._lock:
            self._documents.pop(rel, None)

    def document(self, path_or_uri: str | Path) -> Document | None:
        """The open document (overlay), or None when the editor does not have it open."""
        rel = self.relative(path_or_uri)
        with self._lock:
            return self._documents.get(rel)

    def open_documents(self) -> dict[str, Document]:
        with self._lock:
            return dict(self._documents)

    def snapshot(self, path_or_uri: str | Path) -> Document:
        """The text as the user sees it: the open buffer, else the file on disk."""
        rel = self.relative(path_or_uri)
        with self._lock:
            document = self._documents.get(rel)
        if document is not None:
            return document
        path = self.root / rel
        return Document(rel, path.read_text(encoding="utf-8", errors="surrogateescape"), None)

    def read_text(self, path_or_uri: str | Path) -> str:
        return self.snapshot(path_or_uri).text
